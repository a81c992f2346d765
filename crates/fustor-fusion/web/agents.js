// Fustor console, Agents page (the registry): shown instead of the views when the console is
// opened with an admin key. Same rules as app.js: server text goes in with text nodes only.
'use strict';

(() => {
  const REFRESH_MS = 5000;
  const st = { key: null, timer: null, agents: [], open: null, filter: '', show: 'all', panel: null };
  const ACTIONS = ['reload', 'rescan', 'restart_pipe', 'stop_pipe', 'start_pipe'];
  const $ = (id) => document.getElementById(id);
  const { h, clear, fmtTime } = window.FustorDom;

  function fmtAge(epoch) {
    if (!Number.isFinite(Number(epoch)) || Number(epoch) <= 0) return '—';
    const s = Math.max(0, Date.now() / 1000 - Number(epoch));
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
    return `${(s / 86400).toFixed(1)} d ago`;
  }
  const dash = (v) => (v == null ? '—' : String(v));

  async function get(path) {
    const r = await fetch(path, { headers: { 'X-API-Key': st.key || '' }, cache: 'no-store' });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = new Error(body && typeof body.detail === 'string' ? body.detail : `HTTP ${r.status}`);
      e.status = r.status;
      throw e;
    }
    return body;
  }

  async function post(path, body) {
    const r = await fetch(path, {
      method: 'POST', cache: 'no-store', body: JSON.stringify(body),
      headers: { 'X-API-Key': st.key || '', 'Content-Type': 'application/json' },
    });
    let out = null;
    try { out = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const d = out && out.detail;
      const msg = typeof d === 'string' ? d : Array.isArray(d) ? d.map((x) => x.msg).join('; ') : `HTTP ${r.status}`;
      const e = new Error(msg);
      e.status = r.status;
      throw e;
    }
    return out;
  }

  /** The configuration version an agent runs, as the table and the detail show it. */
  function configText(a) {
    if (!a.steered) return 'not steered by the registry';
    const v = a.config_version == null ? 'version unknown' : `version ${a.config_version}`;
    const d = a.config_digest ? ` (${String(a.config_digest).slice(0, 12)})` : '';
    return `${v}${d}`;
  }

  /** A pipe's problems, for the table's error column and the "with errors" filter. */
  const pipeErrors = (a) => Object.values(a.pipes || {}).filter((p) => p.health && (p.health.last_error || p.health.realtime_degraded));

  function matches(a) {
    if (st.show === 'connected' && !a.connected) return false;
    if (st.show === 'disconnected' && a.connected) return false;
    if (st.show === 'errors' && pipeErrors(a).length === 0 && !a.config_error) return false;
    const f = st.filter.toLowerCase();
    if (!f) return true;
    const hay = [a.agent_id, a.host, a.version, a.client_ip, ...Object.keys(a.pipes || {})].join(' ').toLowerCase();
    return hay.includes(f);
  }

  function renderTable() {
    const body = clear($('agents-rows'));
    const shownAgents = st.agents.filter(matches);
    $('agents-count').textContent = `${shownAgents.length} of ${st.agents.length}`;
    for (const a of shownAgents) {
      const errs = pipeErrors(a);
      const tr = h('tr', { class: `agent-row${st.open === a.agent_id ? ' open' : ''}`, tabindex: 0, dataset: { agent: a.agent_id },
        onclick: () => { st.open = a.agent_id; renderTable(); renderDetail(); } },
      h('td', null, a.agent_id),
      h('td', null, dash(a.host)),
      h('td', { class: 'config-cell', title: configText(a) }, dash(a.version),
        a.steered ? h('span', { class: 'small muted' }, ` · cfg v${dash(a.config_version)}`) : null),
      h('td', null, h('span', { class: `pill ${a.connected ? 'ok' : 'off'}` }, a.connected ? 'connected' : 'disconnected')),
      h('td', { class: 'num' }, `${(a.connected_pipes || []).length}/${Object.keys(a.pipes || {}).length}`),
      h('td', { title: fmtTime(a.last_seen) }, fmtAge(a.last_seen)),
      h('td', { class: errs.length || a.config_error ? 'error-text' : 'muted' },
        [errs.length ? `${errs.length} pipe(s)` : null, a.config_error ? 'configuration' : null].filter(Boolean).join(', ') || 'none'));
      body.append(tr);
    }
  }

  function renderDetail() {
    const el = clear($('agent-detail'));
    const a = st.agents.find((x) => x.agent_id === st.open);
    if (!a) { el.append(h('p', { class: 'muted' }, 'Click an agent to see its pipes.')); return; }
    el.append(h('h3', null, a.agent_id),
      h('p', { class: 'small muted' }, `host ${dash(a.host)} · ${dash(a.client_ip)} · version ${dash(a.version)} · first seen ${fmtTime(a.first_seen)} · last seen ${fmtTime(a.last_seen)}`),
      h('p', { class: 'small agent-config' }, `Configuration: ${configText(a)}`,
        a.config_error ? h('span', { class: 'error-text config-error' }, ` — version ${dash(a.config_tried)} failed: ${a.config_error}`) : null));
    const rows = Object.values(a.pipes || {}).map((p) => {
      const hh = p.health || {};
      const watches = hh.watches_used == null ? '—' : `${hh.watches_used} / ${dash(hh.watch_limit)}`;
      return h('tr', { class: 'pipe-row', dataset: { pipe: p.pipe_id } },
        h('td', null, p.pipe_id),
        h('td', null, p.fusion_pipe),
        h('td', null, `${dash(p.source_type)} ${dash(p.source_uri)}`),
        h('td', null, dash(hh.role)),
        h('td', null, dash(hh.state)),
        h('td', { title: fmtTime(hh.last_heartbeat) }, fmtAge(hh.last_heartbeat)),
        h('td', { class: 'num' }, hh.events_per_sec == null ? '—' : hh.events_per_sec.toFixed(1)),
        h('td', { class: 'num' }, dash(hh.queue_depth)),
        h('td', null, watches),
        h('td', null, `${hh.initial_snapshot_done ? 'snapshot done' : 'snapshot pending'}${hh.audit_running ? ', auditing' : ''}`),
        h('td', { class: hh.last_error ? 'error-text last-error' : 'muted last-error' }, hh.last_error ? `${hh.last_error} (${dash(hh.consecutive_errors)}×)` : 'none'));
    });
    el.append(h('table', { class: 'agents-table' },
      h('thead', null, h('tr', null, ...['Pipe', 'Fusion pipe', 'Source', 'Role', 'State', 'Heartbeat', 'Events/s', 'Queue', 'Watches', 'Progress', 'Last error'].map((t) => h('th', null, t)))),
      h('tbody', null, rows)));
    el.append(actionsPanel(a));
  }

  /** The Actions panel of the open agent: kept across refreshes so a half-filled form stays. */
  function actionsPanel(a) {
    const pipes = Object.keys(a.pipes || {});
    if (st.panel && st.panel.agent === a.agent_id) {
      const sel = st.panel.pipe;
      const known = [...sel.options].map((o) => o.value);
      if (known.join('\n') !== ['', ...pipes].join('\n')) {
        const keep = sel.value;
        sel.replaceChildren(h('option', { value: '' }, '(any pipe)'), ...pipes.map((p) => h('option', { value: p }, p)));
        sel.value = pipes.includes(keep) ? keep : '';
      }
      renderActions();
      return st.panel.node;
    }
    const pipe = h('select', { id: 'action-pipe', 'aria-label': 'pipe' },
      h('option', { value: '' }, '(any pipe)'), ...pipes.map((p) => h('option', { value: p }, p)));
    const path = h('input', { id: 'action-path', type: 'text', placeholder: 'path for rescan, e.g. /', 'aria-label': 'path' });
    const msg = h('div', { id: 'action-message', class: 'small', role: 'status' });
    const list = h('div', { id: 'action-list' });
    const ask = async (action) => {
      const body = { action };
      if (pipe.value) body.pipe = pipe.value;
      if (action === 'rescan' && path.value.trim()) body.path = path.value.trim();
      msg.className = 'small';
      msg.textContent = `requesting ${action}…`;
      try {
        const rec = await post(`/api/v1/admin/agents/${encodeURIComponent(a.agent_id)}/actions`, body);
        msg.textContent = `${rec.action} #${rec.id} requested: ${rec.outcome}`;
        renderActions();
      } catch (e) {
        msg.className = 'small error-text';
        msg.textContent = `${action} refused: ${e.message}`;
      }
    };
    const buttons = ACTIONS.map((x) => h('button', { type: 'button', class: 'action-button', dataset: { action: x }, onclick: () => ask(x) }, x.replace('_', ' ')));
    const node = h('section', { id: 'agent-actions', class: 'agent-actions' },
      h('h4', null, 'Actions'),
      h('div', { class: 'action-form' }, pipe, path, ...buttons),
      msg, list);
    st.panel = { agent: a.agent_id, node, pipe, list };
    renderActions();
    return node;
  }

  async function renderActions() {
    const p = st.panel;
    if (!p) return;
    try {
      const res = await get(`/api/v1/admin/actions?agent=${encodeURIComponent(p.agent)}&limit=20`);
      if (st.panel !== p) return;
      clear(p.list);
      if (!res.actions.length) { p.list.append(h('p', { class: 'muted' }, 'No action yet.')); return; }
      p.list.append(h('table', { class: 'agents-table actions-table' },
        h('thead', null, h('tr', null, ...['#', 'Action', 'Pipe', 'Path', 'By', 'Requested', 'Outcome', 'Message'].map((t) => h('th', null, t)))),
        h('tbody', null, res.actions.map((x) => h('tr', { class: 'action-row', dataset: { id: x.id, outcome: x.outcome } },
          h('td', { class: 'num' }, x.id),
          h('td', null, x.action),
          h('td', null, dash(x.pipe)),
          h('td', null, dash(x.path)),
          h('td', null, x.requested_by),
          h('td', { title: fmtTime(x.requested_at) }, fmtAge(x.requested_at)),
          h('td', null, h('span', { class: `pill ${x.outcome === 'ok' ? 'ok' : 'off'}${x.outcome === 'failed' ? ' error-text' : ''}` }, x.outcome)),
          h('td', { class: x.outcome === 'failed' ? 'error-text' : '' }, dash(x.message)))))));
    } catch (e) {
      clear(p.list).append(h('div', { class: 'error' }, e.message));
    }
  }

  async function renderAudit() {
    const el = $('audit-log');
    try {
      const log = await get('/api/v1/admin/audit?limit=20');
      clear(el);
      if (!log.entries.length) { el.append(h('p', { class: 'muted' }, 'No admin action yet.')); return; }
      el.append(h('ul', { class: 'audit' }, log.entries.map((e) => h('li', null,
        `${fmtTime(e.at)} ${e.who}: ${e.action} ${e.target} → ${e.result}`))));
    } catch (e) {
      clear(el).append(h('div', { class: 'error' }, e.message));
    }
  }

  async function refresh() {
    try {
      const list = await get('/api/v1/admin/agents');
      st.agents = list.agents || [];
      $('agents-error').hidden = true;
      renderTable();
      renderDetail();
      renderAudit();
      return true;
    } catch (e) {
      if (e.status === 401 || e.status === 403) return false;
      const box = $('agents-error');
      box.textContent = e.message;
      box.hidden = false;
      return true;
    }
  }

  function close() {
    clearInterval(st.timer);
    st.timer = null;
    st.panel = null;
    const m = $('agents-main');
    if (m) m.hidden = true;
  }

  /** Opens the page if `key` is an admin key; false otherwise (the caller tries the views). */
  async function open(key) {
    close();
    st.key = key;
    let ok;
    try {
      await get('/api/v1/admin/agents');
      ok = true;
    } catch (e) {
      ok = e.status === 503; // an admin key; the registry says what is wrong
    }
    if (!ok) return false;
    $('agents-main').hidden = false;
    await refresh();
    st.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
    return true;
  }

  function bind() {
    $('agents-filter').addEventListener('input', (ev) => { st.filter = ev.target.value.trim(); renderTable(); });
    $('agents-show').addEventListener('change', (ev) => { st.show = ev.target.value; renderTable(); });
  }

  document.addEventListener('DOMContentLoaded', bind);
  window.FustorAgents = { open, close };
})();
