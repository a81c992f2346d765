// Fustor console, Config page (the registry): agent configuration documents and Fusion's own
// files, edited with optimistic locking (If-Match), with the server's validation problems shown
// at their lines and a line diff between two stored versions. Also the admin pages' tabs
// (Agents, Config, Audit). Same rules as app.js: server text goes in with text nodes only.
'use strict';

(() => {
  const MAX_DIFF_LINES = 4000;
  const st = {
    key: null,
    kind: null, // 'agent' | 'fusion'
    name: null, // agent target or Fusion file name
    etag: null, // what a save sends as If-Match; null: a new agent document
    isNew: false,
    versions: [],
    problems: [],
  };
  const $ = (id) => document.getElementById(id);
  const { h, clear, fmtTime } = window.FustorDom;

  const short = (d) => (d ? String(d).slice(0, 12) : '—');

  /** One admin request; never throws on an HTTP status (the caller decides per status). */
  async function call(method, path, opts) {
    const o = opts || {};
    const headers = { 'X-API-Key': st.key || '' };
    if (o.ifMatch) headers['If-Match'] = o.ifMatch;
    if (o.body != null) headers['Content-Type'] = 'application/yaml';
    const r = await fetch(path, { method, headers, body: o.body, cache: 'no-store' });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    return { status: r.status, etag: r.headers.get('ETag'), body };
  }
  const detailText = (b, status) => (b && typeof b.detail === 'string' ? b.detail : `HTTP ${status}`);
  const agentPath = (t) => `/api/v1/admin/agent-configs/${encodeURIComponent(t)}`;
  const filePath = (f) => `/api/v1/admin/fusion-config/${encodeURIComponent(f)}`;

  function status(kind, text) {
    const el = $('config-status');
    el.className = `config-status ${kind || ''}`;
    el.textContent = text || '';
  }

  // ------------------------------------------------------------------ lists

  async function loadLists() {
    const targets = await call('GET', '/api/v1/admin/agent-configs');
    const ul = clear($('config-targets'));
    if (targets.status === 200) {
      for (const t of targets.body.targets) {
        ul.append(h('li', { class: st.kind === 'agent' && st.name === t.target ? 'open' : null, dataset: { target: t.target } },
          h('button', { type: 'button', title: `version ${t.version} by ${t.author}`, onclick: () => openAgent(t.target) }, t.target)));
      }
      if (!targets.body.targets.length) ul.append(h('li', { class: 'muted' }, 'none yet'));
    } else {
      ul.append(h('li', { class: 'error' }, detailText(targets.body, targets.status)));
    }
    const set = await call('GET', '/api/v1/admin/fusion-config');
    const fl = clear($('fusion-files'));
    if (set.status === 200) {
      for (const f of set.body.files) {
        fl.append(h('li', { class: st.kind === 'fusion' && st.name === f.name ? 'open' : null, dataset: { file: f.name } },
          h('button', { type: 'button', onclick: () => openFile(f.name) }, f.name)));
      }
    } else {
      fl.append(h('li', { class: 'error' }, detailText(set.body, set.status)));
    }
    return set;
  }

  // ------------------------------------------------------------------ editor

  function renderGutter() {
    const text = $('config-text').value;
    const n = Math.max(1, text.split('\n').length);
    const byLine = new Map();
    for (const p of st.problems) {
      if (p.line && (st.kind !== 'fusion' || !p.file || p.file === st.name)) {
        byLine.set(p.line, [...(byLine.get(p.line) || []), p.message]);
      }
    }
    const g = clear($('config-gutter'));
    for (let i = 1; i <= n; i += 1) {
      const msgs = byLine.get(i);
      g.append(h('span', { class: msgs ? 'bad' : null, title: msgs ? msgs.join('\n') : null, dataset: { line: i } }, msgs ? `! ${i}` : i));
    }
    g.scrollTop = $('config-text').scrollTop;
  }

  function showProblems(problems) {
    st.problems = problems || [];
    const ul = clear($('config-problems'));
    for (const p of st.problems) {
      const where = [p.file, p.line ? `line ${p.line}` : null, p.key || null].filter(Boolean).join(', ');
      ul.append(h('li', { dataset: { line: p.line || '' } }, h('span', { class: 'where' }, where), `: ${p.message}`));
    }
    renderGutter();
  }

  function setEditor(title, text, etag, isNew) {
    $('config-title').textContent = title;
    $('config-text').value = text;
    $('config-text').disabled = false;
    st.etag = etag;
    st.isNew = isNew;
    $('config-etag').textContent = etag ? `ETag ${short(etag.replace(/"/g, ''))}` : (isNew ? 'new' : '');
    for (const id of ['config-save', 'config-reload']) $(id).disabled = false;
    $('config-delete').hidden = st.kind !== 'fusion';
    $('config-delete').disabled = st.kind !== 'fusion' || isNew;
    showProblems([]);
  }

  async function openAgent(target) {
    st.kind = 'agent';
    st.name = target;
    const r = await call('GET', agentPath(target));
    if (r.status === 200) {
      setEditor(`Agent configuration ${target}`, r.body.yaml, r.etag, false);
      status('', `version ${r.body.version} by ${r.body.author}, ${fmtTime(r.body.at)}`);
    } else if (r.status === 404) {
      setEditor(`Agent configuration ${target}`, '', null, true);
      status('', 'No document yet: write one and save.');
    } else {
      status('bad', detailText(r.body, r.status));
      return;
    }
    await Promise.all([loadLists(), loadVersions()]);
  }

  async function openFile(name) {
    st.kind = 'fusion';
    st.name = name;
    const set = await loadLists();
    if (set.status !== 200) { status('bad', detailText(set.body, set.status)); return; }
    const f = set.body.files.find((x) => x.name === name);
    setEditor(`Fusion file ${name}`, f ? f.yaml : '', set.etag, !f);
    status('', f ? `set version ${set.body.version}` : 'New file: write it and save (applied by a reload).');
    await loadVersions();
  }

  function reopen() {
    return st.kind === 'agent' ? openAgent(st.name) : openFile(st.name);
  }

  async function save() {
    const text = $('config-text').value;
    const path = st.kind === 'agent' ? agentPath(st.name) : filePath(st.name);
    $('config-save').disabled = true;
    status('', 'Saving…');
    let r;
    try {
      r = await call('PUT', path, { body: text, ifMatch: st.etag });
    } finally {
      $('config-save').disabled = false;
    }
    await afterChange(r, 'Saved');
  }

  async function remove() {
    $('config-delete').disabled = true;
    const r = await call('DELETE', filePath(st.name), { ifMatch: st.etag });
    await afterChange(r, 'Deleted');
  }

  async function afterChange(r, verb) {
    const b = r.body || {};
    const detail = b.detail;
    if (r.status === 200 || r.status === 201) {
      st.etag = r.etag;
      st.isNew = false;
      $('config-etag').textContent = `ETag ${short((r.etag || '').replace(/"/g, ''))}`;
      $('config-delete').disabled = st.kind !== 'fusion' || verb === 'Deleted';
      showProblems([]);
      status('ok', st.kind === 'agent' ? `${verb}: version ${b.version}.` : `${verb} and applied by the reload: set version ${b.version}.`);
      await Promise.all([loadLists(), loadVersions()]);
      return;
    }
    if (r.status === 422 && detail && Array.isArray(detail.problems)) {
      showProblems(detail.problems);
      status('bad', `Refused: ${detail.problems.length} problem(s); nothing was changed.`);
    } else if (r.status === 412) {
      status('warn', 'Changed by someone else since you opened it: nothing was saved. Your text stays here; “Reload” shows theirs, then re-apply your change.');
    } else if (r.status === 428) {
      status('warn', 'This document already exists: “Reload” to edit its newest version.');
    } else if (r.status === 409 && detail && detail.reason) {
      status('bad', `The reload refused it: ${detail.reason}. The file was restored; the previous configuration keeps running.`);
    } else {
      status('bad', detailText(b, r.status));
    }
  }

  // ------------------------------------------------------------------ versions and diff

  async function loadVersions() {
    const path = st.kind === 'agent' ? `${agentPath(st.name)}/versions` : '/api/v1/admin/fusion-config/versions';
    const r = await call('GET', path);
    st.versions = r.status === 200 ? r.body.versions : [];
    const body = clear($('config-version-rows'));
    for (const v of st.versions) {
      body.append(h('tr', { dataset: { version: v.version } },
        h('td', { class: 'num' }, v.version),
        h('td', null, v.author),
        h('td', null, fmtTime(v.at)),
        h('td', null, v.change || ''),
        h('td', { class: 'audit-digest', title: v.digest }, short(v.digest))));
    }
    const opts = () => st.versions.map((v) => h('option', { value: v.version }, `v${v.version}`));
    clear($('diff-from')).append(...opts());
    clear($('diff-to')).append(...opts());
    if (st.versions.length) {
      $('diff-to').value = String(st.versions[0].version);
      $('diff-from').value = String(st.versions[Math.min(1, st.versions.length - 1)].version);
    }
    $('diff-btn').disabled = st.versions.length < 1;
    $('config-diff').hidden = true;
  }

  /** The text of one version of what is open: an agent document, or one Fusion file. */
  async function versionText(n) {
    if (st.kind === 'agent') {
      const r = await call('GET', `${agentPath(st.name)}/versions/${n}`);
      if (r.status !== 200) throw new Error(detailText(r.body, r.status));
      return r.body.yaml;
    }
    const r = await call('GET', `/api/v1/admin/fusion-config/versions/${n}`);
    if (r.status !== 200) throw new Error(detailText(r.body, r.status));
    const f = r.body.files.find((x) => x.name === st.name);
    return f ? f.yaml : '';
  }

  /** Line diff by longest common subsequence: `[[' '|'+'|'-', line], …]`. */
  function lineDiff(a, b) {
    const x = a.split('\n');
    const y = b.split('\n');
    if (x.length > MAX_DIFF_LINES || y.length > MAX_DIFF_LINES) {
      return [...x.map((l) => ['-', l]), ...y.map((l) => ['+', l])];
    }
    const n = x.length;
    const m = y.length;
    const w = m + 1;
    const lcs = new Int32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i -= 1) {
      for (let j = m - 1; j >= 0; j -= 1) {
        lcs[i * w + j] = x[i] === y[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    const out = [];
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (x[i] === y[j]) { out.push([' ', x[i]]); i += 1; j += 1; } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) { out.push(['-', x[i]]); i += 1; } else { out.push(['+', y[j]]); j += 1; }
    }
    while (i < n) { out.push(['-', x[i]]); i += 1; }
    while (j < m) { out.push(['+', y[j]]); j += 1; }
    return out;
  }

  async function showDiff() {
    const from = $('diff-from').value;
    const to = $('diff-to').value;
    const el = clear($('config-diff'));
    el.hidden = false;
    try {
      const [a, b] = await Promise.all([versionText(from), versionText(to)]);
      el.append(h('span', { class: 'file' }, `${st.name}: v${from} → v${to}`));
      for (const [op, line] of lineDiff(a, b)) {
        el.append(h('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : null }, `${op} ${line}`));
      }
    } catch (e) {
      el.append(h('span', { class: 'del' }, e.message));
    }
  }

  // ------------------------------------------------------------------ pages and tabs

  const PAGES = { agents: 'agents-main', configs: 'configs-main', audit: 'audit-main' };

  async function showPage(page) {
    for (const [p, id] of Object.entries(PAGES)) {
      const m = $(id);
      if (m) m.hidden = p !== page;
    }
    for (const b of document.querySelectorAll('#admin-tabs button')) {
      b.setAttribute('aria-selected', String(b.dataset.page === page));
    }
    if (page === 'configs') await loadLists();
    if (page === 'audit' && window.FustorAudit) await window.FustorAudit.show(st.key);
  }

  /** After agents.js opened the Agents page with an admin key: the tabs to the other pages. */
  function open(key) {
    st.key = key;
    $('admin-tabs').hidden = false;
    showPage('agents');
  }

  function close() {
    $('admin-tabs').hidden = true;
    $('configs-main').hidden = true;
    $('audit-main').hidden = true;
  }

  function bind() {
    for (const b of document.querySelectorAll('#admin-tabs button')) {
      b.addEventListener('click', () => showPage(b.dataset.page));
    }
    $('config-text').addEventListener('input', renderGutter);
    $('config-text').addEventListener('scroll', () => { $('config-gutter').scrollTop = $('config-text').scrollTop; });
    $('config-save').addEventListener('click', save);
    $('config-reload').addEventListener('click', reopen);
    $('config-delete').addEventListener('click', remove);
    $('diff-btn').addEventListener('click', showDiff);
    $('config-new-target').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('config-new-target-name').value.trim();
      if (t) openAgent(t);
    });
    $('fusion-new-file').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = $('fusion-new-file-name').value.trim();
      if (f) openFile(f);
    });
  }

  document.addEventListener('DOMContentLoaded', bind);
  window.FustorAdmin = { open, close, showPage };
})();
