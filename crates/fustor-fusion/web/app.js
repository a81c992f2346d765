// Fustor web console: plain JavaScript, no build step, no external resources.
//
// Everything that comes from the server (file names, paths, agent ids, error details) is put
// into the page with textContent / text nodes only: never innerHTML. The page's CSP allows
// scripts from this origin only, so markup in a file name can never run.
'use strict';

(() => {
  const KEY_STORE = 'fustor.console.key';
  const REFRESH_MS = 5000;
  const USAGE_REFRESH_MS = 30000;
  const JOB_POLL_MS = 2000;
  const MAX_ROWS = 500; // rows rendered per directory / list before a "show more" button

  const state = {
    key: null,
    resolved: null, // what the key resolves to (view or pipe id)
    views: [], // [{view_id, driver, loaded}]
    view: null,
    driver: null,
    gen: 0, // bumped on every view switch: answers for an older view are dropped
    timer: null,
    jobTimer: null,
    notReady: false,
    clock: null, // {epoch, monotonic, at}: Fusion's clocks and when we read them
    tree: new Map(), // path -> entry {node, depth, row, group, expanded, loading}
    selected: null,
    blind: new Set(),
    refreshing: false,
    agents: null, // active sessions of the view, once known
    link: null, // {sel, q} of the address this page was opened with, applied once
    inflight: 0, // requests under way (the loading indicator)
    search: null, // the pattern of the search shown, for the address bar
    forest: { path: '/', strategy: 'file_count', cards: new Map() },
    tab: 'files', // 'files' or 'usage' (the address's `tab=`)
    usageMember: null, // forest views: the member the Usage page shows (null: the best)
  };

  // ------------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);

  // File names are bytes. Fusion writes a byte that is not valid UTF-8 as a lone surrogate
  // U+DC80–U+DCFF (Python's surrogateescape, PEP 383), so JSON.parse gives a string that keeps
  // `caf\xe9.txt` and `caf\xe8.txt` apart. Such a byte is shown as a visible `\xE9` and sent
  // back as `%E9`: a browser would otherwise draw both as U+FFFD and encode both as %EF%BF%BD.
  // A fresh regex per use: a shared /g regex carries lastIndex from one call into the next.
  const loneBytes = () => /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;
  const byteOf = (c) => c.charCodeAt(0) & 0xff;
  const hex2 = (b) => b.toString(16).toUpperCase().padStart(2, '0');

  // What a name may hold that must not be drawn as is: undecodable bytes, and control
  // characters (a newline in a file name would otherwise break a row in two).
  const oddChars = () => /[\u0000-\u001F\u007F]|(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;
  const CONTROL = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  const isLoneByte = (c) => c.charCodeAt(0) >= 0xdc80 && c.charCodeAt(0) <= 0xdcff;
  /** The visible form of one odd char: `\xE9` for a byte, `\n` or `\x07` for a control. */
  const escOf = (c) => (isLoneByte(c) ? `\\x${hex2(byteOf(c))}` : CONTROL[c] || `\\x${hex2(c.charCodeAt(0))}`);

  /** A name for display: undecodable bytes as `\xE9`, control characters as `\n`, `\x07`. */
  const shown = (s) => String(s).replace(oddChars(), escOf);

  /** Percent-encodes a query value; an undecodable name byte goes out as that byte (`%E9`). */
  function encodeParam(v) {
    const s = String(v);
    let out = '';
    let last = 0;
    for (const m of s.matchAll(loneBytes())) {
      out += encodeURIComponent(s.slice(last, m.index)) + `%${hex2(byteOf(m[0]))}`;
      last = m.index + 1;
    }
    return out + encodeURIComponent(s.slice(last));
  }

  /** Text with odd chars marked up as `<span class="esc">\xE9</span>` (text nodes only). */
  function textNodes(s) {
    const str = String(s);
    if (!oddChars().test(str)) return [document.createTextNode(str)];
    const out = [];
    let last = 0;
    for (const m of str.matchAll(oddChars())) {
      if (m.index > last) out.push(document.createTextNode(str.slice(last, m.index)));
      const c = m[0];
      const esc = document.createElement('span');
      esc.className = 'esc';
      esc.title = isLoneByte(c)
        ? `byte 0x${hex2(byteOf(c))}: not valid UTF-8`
        : `control character U+00${hex2(c.charCodeAt(0))} in the name`;
      esc.textContent = escOf(c);
      out.push(esc);
      last = m.index + 1;
    }
    if (last < str.length) out.push(document.createTextNode(str.slice(last)));
    return out;
  }

  /** Creates an element. Strings among `kids` become text nodes (never markup). */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = shown(v);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'style' || k === 'innerHTML') throw new Error('not allowed: ' + k);
        else el.setAttribute(k, v === true ? '' : shown(v));
      }
    }
    for (const c of kids.flat()) {
      if (c == null || c === false) continue;
      if (c instanceof Node) el.append(c);
      else el.append(...textNodes(c));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function fmtInt(n) {
    if (n == null || Number.isNaN(Number(n))) return '—';
    return Number(n).toLocaleString('en-US');
  }

  function fmtSize(n) {
    if (n == null || Number.isNaN(Number(n))) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
    let v = Number(n);
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    if (i === 0) return `${v} B`;
    return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
  }

  const pad = (n) => String(n).padStart(2, '0');

  /** Epoch seconds as local time `YYYY-MM-DD HH:MM:SS`. */
  function fmtTime(epoch) {
    if (epoch == null || !Number.isFinite(Number(epoch)) || Number(epoch) <= 0) return '—';
    const d = new Date(Number(epoch) * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function isoTime(epoch) {
    if (epoch == null || !Number.isFinite(Number(epoch)) || Number(epoch) <= 0) return '';
    return `${new Date(Number(epoch) * 1000).toISOString()} (epoch ${epoch})`;
  }

  function fmtAge(secs) {
    if (secs == null || !Number.isFinite(Number(secs))) return '—';
    const s = Math.max(0, Number(secs));
    if (s < 1) return '<1 s';
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.round(s / 60)} min`;
    if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
    if (s < 365.25 * 86400) return `${(s / 86400).toFixed(1)} d`;
    return `${(s / (365.25 * 86400)).toFixed(1)} y`;
  }

  function fmtLatency(ms) {
    if (ms == null || !Number.isFinite(Number(ms))) return '—';
    return ms < 1000 ? `${Math.round(ms)} ms` : fmtAge(ms / 1000);
  }

  function joinPath(parent, name) {
    return parent === '/' ? `/${name}` : `${parent}/${name}`;
  }

  function parentOf(path) {
    const i = path.lastIndexOf('/');
    return i <= 0 ? '/' : path.slice(0, i);
  }

  /** `/a/b/c` -> [`/`, `/a`, `/a/b`, `/a/b/c`]. */
  function ancestry(path) {
    const out = ['/'];
    let cur = '';
    for (const part of path.split('/').filter(Boolean)) {
      cur += `/${part}`;
      out.push(cur);
    }
    return out;
  }

  function byDirThenName(a, b) {
    const da = a.content_type === 'directory' ? 0 : 1;
    const db = b.content_type === 'directory' ? 0 : 1;
    if (da !== db) return da - db;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  }

  // ------------------------------------------------------------------ HTTP

  class ApiError extends Error {
    constructor(status, detail, retryAfter, body) {
      super(detail);
      this.status = status;
      this.detail = detail;
      this.retryAfter = retryAfter;
      this.body = body;
    }
  }

  function detailText(d) {
    if (d == null) return '';
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) return d.map((e) => (e && e.msg ? `${(e.loc || []).join('.')}: ${e.msg}` : JSON.stringify(e))).join('; ');
    if (typeof d === 'object' && d.error) {
      const parts = [d.error];
      if (d.current_count != null) parts.push(`${fmtInt(d.current_count)} items, limit ${fmtInt(d.limit)}`);
      if (d.suggestion) parts.push(d.suggestion);
      return parts.join('. ');
    }
    return JSON.stringify(d);
  }

  async function api(path, params) {
    return (await request(path, params)).body;
  }

  // The body and the response headers (search answers say how many files matched).
  async function request(path, params) {
    const url = new URL(path, window.location.origin);
    if (params) {
      url.search = Object.entries(params)
        .filter(([, v]) => v != null)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeParam(v)}`)
        .join('&');
    }
    let resp;
    let text;
    busy(1);
    try {
      resp = await fetch(url, { headers: { 'X-API-Key': state.key || '' }, cache: 'no-store' });
      text = await resp.text();
    } catch (e) {
      throw new ApiError(0, `Fusion is unreachable (${e.message})`);
    } finally {
      busy(-1);
    }
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = text;
    }
    if (!resp.ok) {
      // `message` is Fusion's English text where `detail` keeps the reference's wording
      const detail = body && typeof body === 'object' && typeof body.message === 'string' ? body.message
        : body && typeof body === 'object' && 'detail' in body ? body.detail : text || resp.statusText;
      throw new ApiError(resp.status, detailText(detail) || `HTTP ${resp.status}`, resp.headers.get('Retry-After'), body);
    }
    return { body, headers: resp.headers };
  }

  /** The loading indicator: shown while any request is under way (after a short delay, so
   *  quick answers do not make it flicker). */
  let busyTimer = null;
  function busy(delta) {
    state.inflight += delta;
    const el = $('loading');
    if (!el) return;
    if (state.inflight > 0) {
      document.body.setAttribute('aria-busy', 'true');
      if (!busyTimer && el.hidden) busyTimer = setTimeout(() => { busyTimer = null; if (state.inflight > 0) el.hidden = false; }, 150);
    } else {
      document.body.removeAttribute('aria-busy');
      clearTimeout(busyTimer);
      busyTimer = null;
      el.hidden = true;
    }
  }

  const viewUrl = (what) => `/api/v1/views/${encodeURIComponent(state.view)}/${what}`;

  // ------------------------------------------------------------------ banners, prompt

  function showBanner(kind, text, sub) {
    const b = $('banner');
    clear(b);
    b.className = `banner ${kind}`;
    b.append(h('strong', null, text));
    if (sub) b.append(' ', h('span', { class: 'small' }, sub));
    b.hidden = false;
  }

  function hideBanner() {
    $('banner').hidden = true;
  }

  let noticeTimer = null;
  function notice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
  }

  function showKeyPrompt(message) {
    stopTimers();
    if (window.FustorAgents) window.FustorAgents.close();
    if (window.FustorAdmin) window.FustorAdmin.close();
    $('main').hidden = true;
    for (const id of ['view-pick', 'view-driver', 'auto-label', 'refresh-btn']) $(id).hidden = true;
    $('forget-key').hidden = !state.key;
    $('key-message').textContent = message || 'Enter the query key of a view (sent as X-API-Key).';
    $('key-prompt').hidden = false;
    $('key-input').value = '';
    $('key-input').focus();
  }

  /** Readiness (503) is a banner; 401 is the key prompt; the rest is returned for the panel. */
  function handleError(err) {
    if (err.status === 401) {
      showKeyPrompt(`The key was refused: ${err.detail}`);
      return null;
    }
    if (err.status === 503) {
      state.notReady = true;
      const retry = `Fusion says: retry after ${err.retryAfter || 'a few'} s. This page retries by itself.`;
      showBanner('warn', `View “${state.view}” is not ready: ${err.detail}`, retry);
      return 'Not ready yet (see the banner above).';
    }
    return err.detail || String(err);
  }

  /** An error inside a panel; 403 offers another key. */
  function panelError(el, err) {
    const msg = handleError(err);
    if (msg == null) return;
    clear(el);
    const box = h('div', { class: 'error' }, msg);
    if (err.status === 403) {
      box.append(' ', h('button', { type: 'button', class: 'small', onclick: () => showKeyPrompt('Enter a key of this view.') }, 'Use another key'));
    }
    el.append(box);
  }

  function markReady() {
    if (state.notReady) {
      state.notReady = false;
      hideBanner();
      if (state.driver !== 'forest-fs') loadTree();
    }
  }

  // ------------------------------------------------------------------ start, key, views

  async function connect() {
    $('key-prompt').hidden = true;
    // An admin key opens the Agents page (agents.js) instead of the views.
    if (window.FustorAgents && (await window.FustorAgents.open(state.key))) {
      if (window.FustorAdmin) window.FustorAdmin.open(state.key);
      $('forget-key').hidden = false;
      return undefined;
    }
    let who;
    try {
      who = await api('/api/v1/pipe/session/');
    } catch (e) {
      if (e.status === 401 || e.status === 403) return showKeyPrompt(`The key was refused: ${e.detail}`);
      showBanner('error', e.detail, 'Reload the page to retry.');
      return undefined;
    }
    state.resolved = who && who.view_id;
    let views;
    try {
      views = await api('/api/v1/views');
    } catch (e) {
      if (e.status === 401) return showKeyPrompt(`The key was refused: ${e.detail}`);
      views = [{ view_id: state.resolved, driver: 'fs', loaded: true }];
    }
    state.views = Array.isArray(views) ? views : [];
    const sel = clear($('view-select'));
    for (const v of state.views) {
      sel.append(h('option', { value: v.view_id }, `${v.view_id}  (${v.driver}${v.loaded === false ? ', not loaded' : ''})`));
    }
    const hash = new URLSearchParams(window.location.hash.slice(1));
    const ids = state.views.map((v) => v.view_id);
    let pick = hash.get('view');
    if (!ids.includes(pick)) pick = ids.includes(state.resolved) ? state.resolved : ids[0];
    if (hash.get('path')) state.forest.path = hash.get('path');
    state.tab = hash.get('tab') === 'usage' ? 'usage' : 'files';
    if (pick === hash.get('view')) state.link = { sel: hash.get('sel'), q: hash.get('q') };
    for (const id of ['view-pick', 'auto-label', 'refresh-btn', 'forget-key', 'tabs']) $(id).hidden = false;
    $('main').hidden = false;
    if (!pick) {
      showBanner('warn', 'No view is configured on this Fusion.');
      return undefined;
    }
    sel.value = pick;
    selectView(pick);
    return undefined;
  }

  /** The address bar says what is shown (view, forest path, selection, search), so a link can
   *  be shared and a reload comes back to the same place. */
  function setHash() {
    if (state.link) return; // still applying the address the page was opened with
    const p = new URLSearchParams();
    p.set('view', state.view);
    if (state.driver === 'forest-fs' && state.forest.path !== '/') p.set('path', state.forest.path);
    if (state.driver !== 'forest-fs' && state.selected) p.set('sel', state.selected);
    if (state.driver !== 'forest-fs' && state.search) p.set('q', state.search);
    if (state.tab === 'usage') p.set('tab', 'usage');
    window.history.replaceState(null, '', `#${p.toString()}`);
  }

  /** Applies the selection and search of the address the page was opened with, once. */
  async function applyLink() {
    const link = state.link;
    if (!link) return;
    const g = state.gen;
    try {
      if (link.q) {
        $('search-input').value = link.q;
        await runSearch(link.q);
      }
      if (link.sel && g === state.gen) await reveal(link.sel);
    } finally {
      state.link = null;
      if (g === state.gen) setHash();
    }
  }

  function selectView(id) {
    state.gen += 1;
    state.view = id;
    const v = state.views.find((x) => x.view_id === id) || { driver: 'fs' };
    state.driver = v.driver;
    state.notReady = false;
    state.selected = null;
    state.search = null;
    state.agents = null;
    state.tree.clear();
    state.blind = new Set();
    hideBanner();
    $('notice').hidden = true;
    const forest = state.driver === 'forest-fs';
    document.body.classList.toggle('is-forest', forest);
    for (const el of document.querySelectorAll('[data-kind]')) {
      el.hidden = el.dataset.kind !== (forest ? 'forest' : 'fs');
    }
    const pill = $('view-driver');
    pill.textContent = forest ? 'forest (many servers)' : 'fs view';
    pill.hidden = false;
    if (v.loaded === false) {
      showBanner('error', `View “${id}” is configured but was not loaded by Fusion (see its log).`);
    }
    for (const el of ['stats', 'sessions', 'jobs', 'blind', 'suspects', 'members', 'diff', 'best-summary']) clear($(el));
    $('search-results').hidden = true;
    $('detail').textContent = 'Click a file or directory.';
    $('detail').className = 'body muted';
    if (!forest) state.forest.path = '/';
    state.usageMember = null;
    clear($('usage'));
    loadIdentity();
    applyTab();
    setHash();
    if (forest) {
      state.link = null;
      loadForest();
    } else {
      loadTree().then(applyLink);
    }
    refreshPanels();
    startTimer();
  }

  function startTimer() {
    stopTimers();
    state.timer = setInterval(() => {
      // a slow Fusion must not pile up requests: skip a tick while the last one runs
      if (!$('auto-refresh').checked || document.hidden || state.refreshing) return;
      state.refreshing = true;
      refreshPanels().finally(() => { state.refreshing = false; });
    }, REFRESH_MS);
  }

  function stopTimers() {
    clearInterval(state.timer);
    clearTimeout(state.jobTimer);
    state.timer = null;
    state.jobTimer = null;
  }

  function refreshPanels() {
    const done = () => { $('updated').textContent = `updated ${fmtTime(Date.now() / 1000).slice(11)}`; };
    if (state.driver === 'forest-fs') {
      return Promise.all([loadSessions(), refreshForestStats(), loadUsage(true)]).then(done);
    }
    // blind spots read whether an agent is connected: after the sessions
    const sessions = loadSessions();
    return Promise.all([loadStats(), sessions, loadJobs(), sessions.then(loadBlindSpots), loadSuspects(), loadUsage(true)]).then(done);
  }

  async function readClock() {
    try {
      const c = await api('/api/v1/ui/clock');
      state.clock = { epoch: c.epoch, monotonic: c.monotonic, at: performance.now() };
    } catch (_) {
      // older Fusion without the clock route: ages are not shown
    }
  }

  /** Fusion's monotonic clock now, estimated from the last reading. */
  function monoNow() {
    if (!state.clock) return null;
    return state.clock.monotonic + (performance.now() - state.clock.at) / 1000;
  }

  // ------------------------------------------------------------------ stats (fs)

  async function loadStats() {
    const g = state.gen;
    const el = $('stats');
    let s;
    try {
      s = await api(viewUrl('stats'));
    } catch (e) {
      if (g === state.gen) panelError(el, e);
      return;
    }
    if (g !== state.gen) return;
    markReady();
    const rows = [
      ['total_files', 'Files', fmtInt(s.total_files)],
      ['total_directories', 'Directories', fmtInt(s.total_directories)],
      ['item_count', 'Items', fmtInt(s.item_count), 'files + directories, root included'],
      ['total_size', 'Total size', fmtSize(s.total_size), `${fmtInt(s.total_size)} bytes`],
      // staleness_seconds and latency_ms are ages of mtimes (query-api §3.3), not delays of
      // Fustor: right after a scan of old files they read in years.
      ['staleness_seconds', 'Oldest dir change', s.oldest_item_path ? `${fmtAge(s.staleness_seconds)} ago` : '—',
        `staleness_seconds: how long ago the least recently modified directory changed${s.oldest_item_path ? ` (${s.oldest_item_path})` : ''}. The age of your data, not a delay of Fustor.`],
      ['latency_ms', 'Last row age', fmtLatency(s.latency_ms),
        'latency_ms: logical clock minus the mtime of the last row applied. For a realtime change this is the delay from the write to the view; after a scan it is only the age of the last file scanned.'],
      ['has_blind_spot', 'Blind spots', s.has_blind_spot ? 'yes' : 'no', 'changes an audit found that no agent reported', s.has_blind_spot ? 'warn' : 'ok'],
      ['suspect_file_count', 'Suspect files', fmtInt(s.suspect_file_count), 'files that may still be written', s.suspect_file_count ? 'warn' : null],
      ['is_auditing', 'Audit', s.is_auditing ? 'running' : 'idle', null, s.is_auditing ? 'info' : null],
      ['audit_cycle_count', 'Audit cycles', fmtInt(s.audit_cycle_count)],
      ['last_audit_finished_at', 'Last audit end', s.last_audit_finished_at ? fmtTime(s.last_audit_finished_at) : 'never', isoTime(s.last_audit_finished_at), null, true],
      ['logical_now', 'Logical clock', fmtTime(s.logical_now), isoTime(s.logical_now), null, true],
    ];
    if (s.capacity_exceeded) rows.push(['capacity_exceeded', 'Capacity', 'exceeded: new nodes refused', 'limits.max_nodes reached', 'bad']);
    const dl = h('dl', { class: 'kv' });
    for (const [k, label, value, title, cls, span] of rows) {
      const c = [cls ? `st-${cls}` : '', span ? 'span' : ''].join(' ').trim();
      dl.append(h('div', { dataset: { k }, title, class: c || null }, h('dt', null, label), h('dd', null, value)));
    }
    const old = s.oldest_item_path
      ? h('p', { class: 'small muted oldest' }, 'Oldest directory: ', h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); reveal(s.oldest_item_path); } }, s.oldest_item_path))
      : null;
    clear(el).append(dl);
    if (old) el.append(old);
  }

  // ------------------------------------------------------------------ sessions

  async function loadSessions() {
    const g = state.gen;
    const el = $('sessions');
    let d;
    try {
      [d] = await Promise.all([api(viewUrl('sessions')), readClock()]);
    } catch (e) {
      if (g === state.gen) {
        $('sessions-count').textContent = '';
        panelError(el, e);
      }
      return;
    }
    if (g !== state.gen) return;
    const list = (d && d.active_sessions) || [];
    state.agents = list.length;
    $('sessions-count').textContent = `${list.length} active`;
    clear(el);
    if (!list.length) {
      el.append(h('p', { class: 'muted' }, 'No agent is connected to this view.'));
      return;
    }
    const mono = monoNow();
    const tbody = h('tbody');
    list.sort((a, b) => (a.role === b.role ? String(a.agent_id).localeCompare(String(b.agent_id)) : a.role === 'leader' ? -1 : 1));
    for (const s of list) {
      const age = mono != null && s.last_activity != null ? mono - s.last_activity : null;
      const late = age != null && s.session_timeout_seconds && age > s.session_timeout_seconds / 2;
      const pipe = s.pipe_id || (String(s.task_id || '').split(':')[1] || '');
      tbody.append(h('tr', { title: `session ${s.session_id}\ntask ${s.task_id}\nclient ${s.client_ip || '—'}\nsource ${s.source_uri || '—'}\ncreated ${fmtTime(s.created_at)}` },
        h('td', { class: 'ellipsis' }, s.agent_id),
        h('td', null, h('span', { class: `role ${s.role}` }, s.role)),
        h('td', null, s.can_realtime ? h('span', { class: 'yes' }, 'yes') : h('span', { class: 'no' }, 'no')),
        h('td', { class: late ? 'late' : null, title: `timeout ${s.session_timeout_seconds} s` }, age == null ? '—' : `${fmtAge(age)} ago`),
        h('td', { class: 'ellipsis' }, pipe)));
    }
    el.append(h('table', { class: 'grid' },
      h('thead', null, h('tr', null, h('th', null, 'Agent'), h('th', null, 'Role'), h('th', null, 'Realtime'), h('th', null, 'Heartbeat'), h('th', null, 'Pipe'))),
      tbody));
  }

  // ------------------------------------------------------------------ jobs

  async function loadJobs() {
    const g = state.gen;
    const el = $('jobs');
    let d;
    try {
      d = await api(viewUrl('jobs'));
    } catch (e) {
      if (g === state.gen) panelError(el, e);
      return;
    }
    if (g !== state.gen) return;
    const jobs = ((d && d.jobs) || []).slice().sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
    clear(el);
    if (!jobs.length) {
      el.append(h('p', { class: 'muted' }, 'None yet. Use “scan” on a directory to ask the agents to re-read it.'));
    } else {
      const ul = h('ul', { class: 'list jobs' });
      for (const j of jobs.slice(0, 50)) {
        const pct = j.progress && j.progress.percentage != null ? j.progress.percentage : null;
        const bar = h('span', { class: 'bar' }, h('span', { class: 'fill' }));
        bar.firstChild.style.width = `${Math.max(0, Math.min(100, pct || 0))}%`;
        ul.append(h('li', { dataset: { job: j.job_id }, title: `job ${j.job_id}, created ${fmtTime(j.created_at)}${j.completed_at ? `, completed ${fmtTime(j.completed_at)}` : ''}` },
          h('span', { class: `status ${String(j.status).toLowerCase()}` }, j.status),
          ' ',
          h('span', { class: 'path' }, j.path),
          bar,
          h('span', { class: 'small muted' }, pct == null ? '' : `${pct}% (${fmtInt(j.progress.completed_pipes)}/${fmtInt(j.progress.total_pipes)})`)));
      }
      el.append(ul);
    }
    clearTimeout(state.jobTimer);
    if (jobs.some((j) => j.status === 'RUNNING')) state.jobTimer = setTimeout(loadJobs, JOB_POLL_MS);
  }

  async function scan(path, btn) {
    if (btn) btn.disabled = true;
    try {
      const d = await api(viewUrl('tree'), { path, on_demand_scan: true, max_depth: 0 });
      if (d && d.job_id) notice(`Scan of ${path} requested (job ${d.job_id}).`);
      else notice(`No agent is connected: nothing was asked to scan ${path}.`);
      loadJobs();
    } catch (e) {
      const msg = handleError(e);
      if (msg) notice(`Scan of ${path} failed: ${msg}`);
    } finally {
      if (btn) setTimeout(() => { btn.disabled = false; }, 1500);
    }
  }

  // ------------------------------------------------------------------ blind spots, suspects

  function pathLink(path, extra) {
    return h('li', null, h('button', { type: 'button', class: 'link', title: `show ${path} in the tree`, onclick: () => reveal(path) }, path), extra || null);
  }

  async function loadBlindSpots() {
    const g = state.gen;
    const el = $('blind');
    let d;
    try {
      d = await api(viewUrl('blind-spots'));
    } catch (e) {
      if (g === state.gen) panelError(el, e);
      return;
    }
    if (g !== state.gen) return;
    const adds = (d && d.additions) || [];
    const dels = (d && d.deletions) || [];
    state.blind = new Set(adds.map((n) => n.path));
    for (const [p, entry] of state.tree) entry.row.classList.toggle('blind', state.blind.has(p));
    $('blind-count').textContent = `${fmtInt(d.additions_count ?? adds.length)} added, ${fmtInt(d.deletion_count ?? dels.length)} deleted`;
    clear(el);
    // Blind spots are what audits found that no agent reported; with no agent connected there
    // are no audits either, so "none" would claim more than anyone knows.
    const noAgent = state.agents === 0;
    if (noAgent) {
      el.append(h('p', { class: 'st-warn', id: 'blind-no-agent' }, 'No agent is connected: changes made now are seen by no one until an agent reconnects (its snapshot and audits then find them).'));
    }
    if (!adds.length && !dels.length) {
      el.append(h('p', { class: 'muted' }, noAgent ? 'None found so far.' : 'None: the audits found no change that the agents had missed.'));
      return;
    }
    if (adds.length) {
      el.append(h('h3', null, 'Found by audit only'));
      const ul = h('ul', { class: 'list' });
      for (const n of adds.slice(0, MAX_ROWS)) ul.append(pathLink(n.path, h('span', { class: 'small muted' }, ` ${fmtSize(n.size)}`)));
      if (adds.length > MAX_ROWS) ul.append(h('li', { class: 'muted' }, `… ${fmtInt(adds.length - MAX_ROWS)} more`));
      el.append(ul);
    }
    if (dels.length) {
      el.append(h('h3', null, 'Gone, no agent reported it'));
      const ul = h('ul', { class: 'list' });
      for (const p of dels.slice(0, MAX_ROWS)) ul.append(h('li', { class: 'deleted' }, p));
      if (dels.length > MAX_ROWS) ul.append(h('li', { class: 'muted' }, `… ${fmtInt(dels.length - MAX_ROWS)} more`));
      el.append(ul);
    }
  }

  async function loadSuspects() {
    const g = state.gen;
    const el = $('suspects');
    let list;
    try {
      list = await api(viewUrl('suspect-list'));
    } catch (e) {
      if (g === state.gen) panelError(el, e);
      return;
    }
    if (g !== state.gen) return;
    list = Array.isArray(list) ? list : [];
    $('suspects-count').textContent = `${fmtInt(list.length)}`;
    clear(el);
    if (!list.length) {
      el.append(h('p', { class: 'muted' }, 'None: no file is being written.'));
      return;
    }
    const mono = monoNow();
    list.sort((a, b) => (a.path < b.path ? -1 : 1));
    const ul = h('ul', { class: 'list' });
    for (const s of list.slice(0, MAX_ROWS)) {
      const left = mono != null && s.suspect_until != null ? s.suspect_until - mono : null;
      ul.append(pathLink(s.path, h('span', { class: 'small muted' }, left == null ? '' : left > 0 ? ` re-check in ${fmtAge(left)}` : ' due for re-check')));
    }
    if (list.length > MAX_ROWS) ul.append(h('li', { class: 'muted' }, `… ${fmtInt(list.length - MAX_ROWS)} more`));
    el.append(ul);
  }

  // ------------------------------------------------------------------ tree (fs)

  function badges(node) {
    const out = [];
    if (node.integrity_suspect) out.push(h('span', { class: 'badge suspect', title: 'integrity suspect: may still be written' }, 'suspect'));
    if (node.agent_missing && node.path !== '/') out.push(h('span', { class: 'badge noagent', title: 'agent_missing: no agent saw this node change' }, 'no agent'));
    out.push(h('span', { class: 'badge blind', title: 'blind-spot addition: found by an audit only' }, 'blind spot'));
    if (node.audit_skipped) out.push(h('span', { class: 'badge skipped', title: 'audit_skipped: unchanged at the last audit, files not listed' }, 'audit skipped'));
    return out;
  }

  /** A file's size; a directory's total size and file count below it (`dir_stats`). */
  function sizeCell(node, isDir) {
    if (!isDir) return h('span', { class: 'num size', title: node.size == null ? '' : `${fmtInt(node.size)} bytes` }, fmtSize(node.size));
    const sub = node.subtree;
    if (!sub) return h('span', { class: 'num size' });
    const dirs = Math.max(0, (sub.dir_count || 0) - 1);
    return h('span', { class: 'num size', title: `${fmtInt(sub.total_size)} bytes in ${fmtInt(sub.file_count)} files and ${fmtInt(dirs)} directories below` },
      fmtSize(sub.total_size), h('span', { class: 'count' }, `${fmtInt(sub.file_count)} file${sub.file_count === 1 ? '' : 's'}`));
  }

  function makeRow(node, depth) {
    const path = node.path;
    const isDir = node.content_type === 'directory';
    const name = path === '/' ? '/' : node.name;
    const twisty = isDir
      ? h('span', { class: 'twisty', 'aria-hidden': 'true' }, '▸')
      : h('span', { class: 'twisty none', 'aria-hidden': 'true' });
    const scanBtn = isDir
      ? h('button', { type: 'button', class: 'scan small', title: `ask the agents to re-scan ${path}`, onclick: (ev) => { ev.stopPropagation(); scan(path, ev.currentTarget); } }, 'scan')
      : null;
    const row = h('div', {
      class: `row row-grid ${isDir ? 'dir' : 'file'}${state.blind.has(path) ? ' blind' : ''}`,
      role: 'treeitem',
      tabindex: '0',
      dataset: { path },
      'aria-expanded': isDir ? 'false' : null,
      title: path,
    },
    h('span', { class: 'name' }, twisty, h('span', { class: `icon ${isDir ? 'dir' : 'file'}` }), h('span', { class: 'label' }, name), ...badges(node)),
    ownerCell(node, isDir),
    sizeCell(node, isDir),
    h('span', { class: 'mtime', title: isoTime(node.modified_time) }, fmtTime(node.modified_time)),
    h('span', { class: 'actions' }, scanBtn));
    row.querySelector('.name').style.setProperty('--depth', String(depth));
    row.addEventListener('click', () => {
      select(path);
      if (isDir) toggle(path);
    });
    row.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        select(path);
        if (isDir) toggle(path);
      }
    });
    const group = isDir ? h('div', { class: 'group', role: 'group', hidden: true }) : null;
    return { row, group };
  }

  function addEntry(node, depth, container) {
    const { row, group } = makeRow(node, depth);
    container.append(row);
    if (group) container.append(group);
    const entry = { node, depth, row, group, expanded: false, loading: null };
    state.tree.set(node.path, entry);
    return entry;
  }

  function forgetBelow(path) {
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const p of [...state.tree.keys()]) {
      if (p !== path && p.startsWith(prefix)) state.tree.delete(p);
    }
  }

  function renderChildren(entry, children) {
    const group = clear(entry.group);
    forgetBelow(entry.node.path);
    children.sort(byDirThenName);
    const first = children.slice(0, MAX_ROWS);
    for (const c of first) addEntry(c, entry.depth + 1, group);
    if (!children.length) {
      const empty = h('div', { class: 'row row-grid empty' }, h('span', { class: 'name muted' }, '(empty)'));
      empty.querySelector('.name').style.setProperty('--depth', String(entry.depth + 1));
      group.append(empty);
    }
    if (children.length > MAX_ROWS) {
      const more = h('div', { class: 'row row-grid more' });
      const btn = h('button', { type: 'button', class: 'link' }, `show ${fmtInt(children.length - MAX_ROWS)} more`);
      btn.addEventListener('click', () => {
        more.remove();
        for (const c of children.slice(MAX_ROWS)) addEntry(c, entry.depth + 1, group);
      });
      const cell = h('span', { class: 'name' }, btn);
      cell.style.setProperty('--depth', String(entry.depth + 1));
      more.append(cell);
      group.append(more);
    }
  }

  async function expand(path) {
    const entry = state.tree.get(path);
    if (!entry || !entry.group) return;
    if (entry.loading) {
      await entry.loading;
      return;
    }
    const g = state.gen;
    entry.row.classList.add('loading');
    entry.loading = (async () => {
      try {
        const node = await api(viewUrl('tree'), { path, max_depth: 1, dir_stats: true });
        if (g !== state.gen) return;
        markReadyQuiet();
        entry.node = Object.assign(entry.node, node, { children: undefined });
        renderChildren(entry, node.children || []);
        entry.expanded = true;
        entry.group.hidden = false;
        entry.row.setAttribute('aria-expanded', 'true');
        entry.row.querySelector('.twisty').textContent = '▾';
      } catch (e) {
        if (g !== state.gen) return;
        if (e.status === 404) {
          notice(`${path} is no longer in the view.`);
        } else {
          const msg = handleError(e);
          if (msg) notice(`${path}: ${msg}`);
        }
      } finally {
        entry.row.classList.remove('loading');
        entry.loading = null;
      }
    })();
    await entry.loading;
  }

  function collapse(path) {
    const entry = state.tree.get(path);
    if (!entry || !entry.group) return;
    entry.expanded = false;
    entry.group.hidden = true;
    entry.row.setAttribute('aria-expanded', 'false');
    entry.row.querySelector('.twisty').textContent = '▸';
  }

  function toggle(path) {
    const entry = state.tree.get(path);
    if (!entry) return undefined;
    if (entry.expanded) return collapse(path);
    return expand(path);
  }

  // A gated query answered: the view is ready (without reloading the tree we are building).
  function markReadyQuiet() {
    if (state.notReady) {
      state.notReady = false;
      hideBanner();
    }
  }

  async function loadTree(keepOpen) {
    const g = state.gen;
    const el = $('tree');
    if (!state.tree.size) clear(el).append(h('p', { class: 'muted pad', id: 'tree-loading' }, 'Loading…'));
    const open = keepOpen
      ? [...state.tree.values()].filter((e) => e.expanded).map((e) => e.node.path).sort((a, b) => a.split('/').length - b.split('/').length)
      : [];
    let root;
    try {
      root = await api(viewUrl('tree'), { path: '/', max_depth: 1, dir_stats: true });
    } catch (e) {
      if (g !== state.gen) return;
      if (e.status === 404) {
        clear(el).append(h('p', { class: 'muted pad' }, 'The view is empty.'));
        return;
      }
      panelError(clear(el), e);
      return;
    }
    if (g !== state.gen) return;
    markReadyQuiet();
    state.tree.clear();
    clear(el);
    const entry = addEntry(Object.assign({}, root, { children: undefined, path: '/' }), 0, el);
    renderChildren(entry, root.children || []);
    entry.expanded = true;
    entry.group.hidden = false;
    entry.row.setAttribute('aria-expanded', 'true');
    entry.row.querySelector('.twisty').textContent = '▾';
    for (const p of open) {
      if (p !== '/' && state.tree.has(p) && g === state.gen) await expand(p);
    }
    if (state.selected && state.tree.has(state.selected)) state.tree.get(state.selected).row.classList.add('selected');
  }

  function select(path) {
    for (const r of document.querySelectorAll('.tree .row.selected')) r.classList.remove('selected');
    const entry = state.tree.get(path);
    if (entry) entry.row.classList.add('selected');
    state.selected = path;
    setHash();
    showDetail(path);
    loadUsage();
  }

  /** Opens every ancestor of `path`, then selects and shows it. */
  async function reveal(path) {
    if (!state.tree.has('/')) await loadTree();
    const chain = ancestry(path);
    for (const p of chain.slice(0, -1)) {
      const entry = state.tree.get(p);
      if (!entry) break;
      if (!entry.expanded) await expand(p);
    }
    let entry = state.tree.get(path);
    if (!entry) {
      // beyond the first MAX_ROWS of its directory: render the rest
      const parent = state.tree.get(parentOf(path));
      const more = parent && parent.group && parent.group.querySelector(':scope > .more button');
      if (more) more.click();
      entry = state.tree.get(path);
    }
    if (!entry) {
      notice(`${path} is not in the view (any more).`);
      return;
    }
    select(path);
    entry.row.scrollIntoView({ block: 'center' });
    entry.row.classList.remove('flash');
    void entry.row.offsetWidth; // restart the animation
    entry.row.classList.add('flash');
  }

  async function showDetail(path) {
    const g = state.gen;
    const el = $('detail');
    el.className = 'body';
    let m;
    try {
      m = await api(viewUrl('metadata'), { path });
    } catch (e) {
      if (g !== state.gen || state.selected !== path) return;
      if (e.status === 404) {
        clear(el).append(h('p', { class: 'muted' }, `${path}: not in the view.`));
        return;
      }
      panelError(el, e);
      return;
    }
    if (g !== state.gen || state.selected !== path) return;
    const isDir = m.content_type === 'directory';
    const rows = [
      ['Path', m.path, 'span path'],
      ['Type', m.content_type],
      ['Size', isDir ? '—' : `${fmtSize(m.size)} (${fmtInt(m.size)} bytes)`],
      ['Modified', `${fmtTime(m.modified_time)}`],
      ['Created', `${fmtTime(m.created_time)}`],
      ['Last agent', m.last_agent_id || '—'],
      ['Flags', [m.integrity_suspect ? 'suspect' : null, m.agent_missing ? 'no agent' : null, state.blind.has(m.path) ? 'blind spot' : null, m.audit_skipped ? 'audit skipped' : null].filter(Boolean).join(', ') || 'none'],
      ['Source', m.source_uri || '—'],
    ];
    const sub = m.subtree;
    if (isDir && sub) {
      rows.push(['Below', `${fmtInt(sub.file_count)} files, ${fmtInt(Math.max(0, (sub.dir_count || 0) - 1))} dirs, ${fmtSize(sub.total_size)}`, 'span']);
      if (sub.latest_mtime) rows.push(['Latest change below', fmtTime(sub.latest_mtime)]);
    }
    const dl = h('dl', { class: 'kv detail' });
    for (const [k, v, cls] of rows) dl.append(h('div', { class: cls || null }, h('dt', null, k), h('dd', null, v)));
    clear(el).append(dl);
    if (isDir) {
      el.append(h('button', { type: 'button', class: 'small', onclick: (ev) => scan(path, ev.currentTarget) }, `On-demand scan of ${path}`));
    }
  }

  // ------------------------------------------------------------------ search (fs)

  async function runSearch(pattern) {
    const el = $('search-results');
    const g = state.gen;
    state.search = pattern;
    setHash();
    el.hidden = false;
    clear(el).append(h('p', { class: 'muted' }, `Searching ${pattern} …`));
    let list, total;
    try {
      // The first MAX_ROWS paths in path order and the number of matches: a pattern that
      // matches millions of files answers as fast as one that matches ten.
      const r = await request(viewUrl('search'), { pattern, limit: MAX_ROWS });
      list = Array.isArray(r.body) ? r.body : [];
      total = Number(r.headers.get('X-Total-Count') ?? list.length);
    } catch (e) {
      if (g !== state.gen) return;
      panelError(el, e);
      return;
    }
    if (g !== state.gen) return;
    list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    clear(el);
    const head = h('div', { class: 'results-head' },
      h('span', { id: 'search-count' }, `${fmtInt(total)} file${total === 1 ? '' : 's'} match “${pattern}”`),
      h('button', { type: 'button', class: 'small', onclick: () => { el.hidden = true; state.search = null; setHash(); } }, 'Close'));
    el.append(head);
    const ul = h('ul', { class: 'list results', id: 'search-list' });
    for (const n of list.slice(0, MAX_ROWS)) {
      ul.append(h('li', { dataset: { path: n.path } },
        h('button', { type: 'button', class: 'link', title: 'show in the tree', onclick: () => reveal(n.path) }, n.path),
        h('span', { class: 'small muted' }, ` ${fmtSize(n.size)} · ${fmtTime(n.modified_time)} `),
        n.integrity_suspect ? h('span', { class: 'badge suspect' }, 'suspect') : null,
        n.agent_missing ? h('span', { class: 'badge noagent' }, 'no agent') : null));
    }
    if (total > list.length) ul.append(h('li', { class: 'muted' }, `… ${fmtInt(total - list.length)} more; refine the pattern`));
    el.append(ul);
  }

  // ------------------------------------------------------------------ forest

  function bestValueText(best) {
    if (!best) return '';
    switch (best.reason) {
      case 'total_size': return fmtSize(best.value);
      case 'latest_mtime': return fmtTime(best.value);
      case 'file_count': return `${fmtInt(best.value)} files`;
      default: return String(best.value);
    }
  }

  function renderCrumbs() {
    const nav = clear($('crumbs'));
    const chain = ancestry(state.forest.path);
    chain.forEach((p, i) => {
      const label = p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1);
      if (i > 0 && chain[i - 1] !== '/') nav.append(h('span', { class: 'sep' }, '/'));
      if (i === chain.length - 1) nav.append(h('span', { class: 'crumb current' }, label));
      else nav.append(h('button', { type: 'button', class: 'link crumb', onclick: () => forestGo(p) }, label));
    });
    $('forest-path').value = state.forest.path;
  }

  function forestGo(path) {
    state.forest.path = path || '/';
    setHash();
    loadForest();
    loadUsage();
  }

  function memberStatsDl(m) {
    const dl = h('dl', { class: 'kv compact' });
    if (!m) return dl;
    if (m.status === 'error') {
      dl.append(h('div', { class: 'st-bad' }, h('dt', null, 'Error'), h('dd', null, m.error || 'unknown')));
      return dl;
    }
    if (m.file_count == null && m.dir_count == null) {
      dl.append(h('div', null, h('dt', null, 'Path'), h('dd', { class: 'muted' }, 'absent on this member')));
      return dl;
    }
    dl.append(
      h('div', { dataset: { k: 'file_count' } }, h('dt', null, 'Files'), h('dd', null, fmtInt(m.file_count))),
      h('div', { dataset: { k: 'dir_count' } }, h('dt', null, 'Directories'), h('dd', null, fmtInt(m.dir_count))),
      h('div', { dataset: { k: 'total_size' }, title: `${fmtInt(m.total_size)} bytes` }, h('dt', null, 'Size'), h('dd', null, fmtSize(m.total_size))),
      h('div', { dataset: { k: 'latest_mtime' }, title: isoTime(m.latest_mtime) }, h('dt', null, 'Latest'), h('dd', null, fmtTime(m.latest_mtime))));
    if (m.capacity_exceeded) dl.append(h('div', { class: 'st-bad' }, h('dt', null, 'Capacity'), h('dd', null, 'exceeded')));
    return dl;
  }

  function applyForestStats(stats) {
    const f = state.forest;
    const best = stats && stats.best;
    const summary = clear($('best-summary'));
    if (stats && stats.warning) summary.append(h('div', { class: 'error small' }, stats.warning));
    if (best) {
      summary.append(h('span', null, 'Best copy of ', h('code', null, stats.path), ' by ', h('strong', null, best.reason.replace('_', ' ')), ': ',
        h('span', { class: 'best-name' }, best.view_id), ` (${bestValueText(best)})`));
    } else {
      summary.append(h('span', { class: 'muted' }, 'No member holds this path yet.'));
    }
    const byId = new Map(((stats && stats.members) || []).map((m) => [m.view_id, m]));
    for (const [id, card] of f.cards) {
      const isBest = !!best && best.view_id === id;
      card.el.classList.toggle('best', isBest);
      card.badge.hidden = !isBest;
      card.badge.textContent = isBest ? `best · ${best.reason.replace('_', ' ')} ${bestValueText(best)}` : '';
      const fresh = memberStatsDl(byId.get(id));
      card.stats.replaceWith(fresh);
      card.stats = fresh;
    }
  }

  async function refreshForestStats() {
    const g = state.gen;
    const f = state.forest;
    let stats;
    try {
      stats = await api(viewUrl('stats'), { path: f.path, best: f.strategy });
    } catch (e) {
      if (g === state.gen) {
        const msg = handleError(e);
        if (msg) clear($('best-summary')).append(h('div', { class: 'error' }, msg));
      }
      return;
    }
    if (g !== state.gen || stats.path !== f.path) return;
    const ids = (stats.members || []).map((m) => m.view_id);
    if (ids.some((id) => !f.cards.has(id))) {
      loadForest();
      return;
    }
    applyForestStats(stats);
  }

  async function loadForest() {
    const g = state.gen;
    const f = state.forest;
    const path = f.path;
    renderCrumbs();
    const [st, tr] = await Promise.allSettled([
      api(viewUrl('stats'), { path, best: f.strategy }),
      api(viewUrl('tree'), { path, max_depth: 1 }),
    ]);
    if (g !== state.gen || path !== f.path) return;
    const box = clear($('members'));
    f.cards = new Map();
    for (const r of [st, tr]) {
      if (r.status === 'rejected') {
        const msg = handleError(r.reason);
        if (msg == null) return;
        box.append(h('div', { class: 'error' }, msg));
      }
    }
    const stats = st.status === 'fulfilled' ? st.value : null;
    const tree = tr.status === 'fulfilled' ? tr.value : null;
    const ids = [];
    for (const m of (stats && stats.members) || []) if (!ids.includes(m.view_id)) ids.push(m.view_id);
    for (const id of Object.keys((tree && tree.members) || {})) if (!ids.includes(id)) ids.push(id);
    if (!ids.length) {
      box.append(h('p', { class: 'muted' }, 'No member has sent data yet: the forest has a member per pipe once its agent connects.'));
      applyForestStats(stats);
      loadDiff();
      return;
    }
    // The union of the children of every member, aligned row by row.
    const nodes = {};
    const union = new Map();
    for (const id of ids) {
      const m = tree && tree.members && tree.members[id];
      const data = m && m.status === 'ok' ? m.data : null;
      nodes[id] = { m, data, kids: new Map() };
      if (data && data.content_type === 'directory') {
        for (const c of data.children || []) {
          nodes[id].kids.set(c.name, c);
          const u = union.get(c.name);
          if (!u) union.set(c.name, { name: c.name, content_type: c.content_type });
          else if (c.content_type === 'directory') u.content_type = 'directory';
        }
      }
    }
    const rows = [...union.values()].sort(byDirThenName);
    box.style.setProperty('--members', String(Math.min(ids.length, 4)));
    for (const id of ids) {
      const { m, data, kids } = nodes[id];
      const badge = h('span', { class: 'best-badge', hidden: true });
      const statsDl = memberStatsDl(null);
      const list = h('div', { class: 'mlist' });
      if (m && m.status === 'error') {
        list.append(h('p', { class: 'error small' }, m.error || 'error'));
      } else if (!data) {
        list.append(h('p', { class: 'muted small' }, `${path} is absent on this member.`));
      } else if (data.content_type !== 'directory') {
        list.append(h('div', { class: 'mrow file' }, h('span', { class: 'icon file' }), h('span', { class: 'label' }, data.name), h('span', { class: 'num' }, fmtSize(data.size))));
      } else if (!rows.length) {
        list.append(h('p', { class: 'muted small' }, '(empty directory)'));
      }
      for (const u of rows.slice(0, MAX_ROWS)) {
        const c = kids.get(u.name);
        if (!c) {
          list.append(h('div', { class: 'mrow missing', title: `${u.name} is missing on ${id}` }, h('span', { class: `icon ${u.content_type === 'directory' ? 'dir' : 'file'}` }), h('span', { class: 'label' }, u.name), h('span', { class: 'num' }, 'missing')));
          continue;
        }
        const isDir = c.content_type === 'directory';
        let differs = false;
        if (!isDir) {
          for (const other of ids) {
            const o = nodes[other].kids.get(u.name);
            if (o && o.content_type !== 'directory' && (o.size !== c.size || Math.abs((o.modified_time || 0) - (c.modified_time || 0)) > 1e-6)) differs = true;
          }
        }
        const row = h(isDir ? 'button' : 'div', {
          type: isDir ? 'button' : null,
          class: `mrow ${isDir ? 'dir' : 'file'}${differs ? ' differs' : ''}`,
          title: `${joinPath(path, c.name)}\nmodified ${fmtTime(c.modified_time)}${differs ? '\ndiffers between members' : ''}`,
          dataset: { name: c.name },
        },
        h('span', { class: `icon ${isDir ? 'dir' : 'file'}` }),
        h('span', { class: 'label' }, c.name),
        c.integrity_suspect ? h('span', { class: 'badge suspect', title: 'may still be written' }, 'S') : null,
        c.agent_missing ? h('span', { class: 'badge noagent', title: 'not seen by an agent' }, 'A') : null,
        differs ? h('span', { class: 'badge differs', title: 'size or mtime differs from another member' }, '≠') : null,
        h('span', { class: 'num' }, isDir ? '' : fmtSize(c.size)));
        if (isDir) row.addEventListener('click', () => forestGo(joinPath(path, c.name)));
        list.append(row);
      }
      if (rows.length > MAX_ROWS) list.append(h('p', { class: 'muted small' }, `… ${fmtInt(rows.length - MAX_ROWS)} more entries`));
      const el = h('article', { class: 'member', dataset: { member: id } },
        h('header', null, h('h3', { title: id }, id), badge),
        statsDl,
        list);
      box.append(el);
      f.cards.set(id, { el, badge, stats: statsDl });
    }
    applyForestStats(stats);
    loadDiff();
  }

  async function loadDiff() {
    const g = state.gen;
    const path = state.forest.path;
    const el = $('diff');
    let d;
    try {
      d = await api(viewUrl('diff'), { path, max_items: 500 });
    } catch (e) {
      if (g === state.gen) panelError(el, e);
      return;
    }
    if (g !== state.gen || path !== state.forest.path) return;
    clear(el);
    const dl = h('dl', { class: 'kv inline' },
      h('div', { dataset: { k: 'compared_files' } }, h('dt', null, 'Compared files'), h('dd', null, fmtInt(d.compared_files))),
      h('div', { dataset: { k: 'difference_count' }, class: d.difference_count ? 'st-warn' : 'st-ok' }, h('dt', null, 'Differences'), h('dd', null, fmtInt(d.difference_count))),
      h('div', { dataset: { k: 'only_in_count' } }, h('dt', null, 'Not on every member'), h('dd', null, fmtInt(d.only_in_count))),
      h('div', { dataset: { k: 'mismatched_count' } }, h('dt', null, 'Size/mtime differ'), h('dd', null, fmtInt(d.mismatched_count))));
    el.append(dl);
    if (!d.difference_count) {
      el.append(h('p', { class: 'muted' }, (d.members || []).length > 1 ? 'All members hold the same files here.' : 'Fewer than two members: nothing to compare.'));
      return;
    }
    const onlyIn = d.only_in || {};
    const withOnly = Object.entries(onlyIn).filter(([, v]) => v && v.length);
    if (withOnly.length) {
      el.append(h('h3', null, 'Only on some members'));
      const grid = h('div', { class: 'only-in' });
      for (const [member, paths] of withOnly) {
        const ul = h('ul', { class: 'list' });
        for (const p of paths.slice(0, 200)) ul.append(h('li', null, h('button', { type: 'button', class: 'link', title: `open ${parentOf(p)}`, onclick: () => forestGo(parentOf(p)) }, p)));
        if (paths.length > 200) ul.append(h('li', { class: 'muted' }, `… ${fmtInt(paths.length - 200)} more`));
        grid.append(h('div', null, h('h4', null, member, h('span', { class: 'muted small' }, ` ${fmtInt(paths.length)}`)), ul));
      }
      el.append(grid);
    }
    const mism = d.mismatched || [];
    if (mism.length) {
      el.append(h('h3', null, 'Different size or mtime'));
      const members = d.members || [];
      const ul = h('ul', { class: 'list mism' });
      for (const m of mism.slice(0, 200)) {
        const who = h('div', { class: 'who' });
        for (const id of members) {
          const v = m.members && m.members[id];
          who.append(h('span', null, id), h('span', { title: v ? `${fmtInt(v.size)} bytes, ${isoTime(v.modified_time)}` : '' }, v ? `${fmtSize(v.size)} · ${fmtTime(v.modified_time)}` : 'missing'));
        }
        ul.append(h('li', { dataset: { path: m.path } }, h('button', { type: 'button', class: 'link', title: `open ${parentOf(m.path)}`, onclick: () => forestGo(parentOf(m.path)) }, m.path), who));
      }
      if (mism.length > 200) ul.append(h('li', { class: 'muted' }, `… ${fmtInt(mism.length - 200)} more`));
      el.append(ul);
    }
    if (d.truncated) el.append(h('p', { class: 'muted small' }, 'More differences exist; open a deeper path.'));
  }

  // ------------------------------------------------------------------ wiring

  // ------------------------------------------------------------------ owners, identity, usage

  /** `rwxr-x---` from the permission bits (`st_mode & 0o7777`), set-id and sticky included. */
  function modeText(mode, isDir) {
    const bit = (b, c) => ((mode & b) ? c : '-');
    const x = (b, special, on, off) => {
      if (mode & special) return (mode & b) ? on : off;
      return bit(b, 'x');
    };
    return (isDir ? 'd' : '-')
      + bit(0o400, 'r') + bit(0o200, 'w') + x(0o100, 0o4000, 's', 'S')
      + bit(0o040, 'r') + bit(0o020, 'w') + x(0o010, 0o2000, 's', 'S')
      + bit(0o004, 'r') + bit(0o002, 'w') + x(0o001, 0o1000, 't', 'T');
  }

  /** Owner and group names as the agent's host resolved them; the mode in the tooltip. */
  function ownerCell(node, isDir) {
    if (node.uid == null) return h('span', { class: 'owner muted', title: 'no owner reported (Python agent, or found by an audit)' });
    const user = node.owner || `#${node.uid}`;
    const group = node.group || (node.gid == null ? '' : `#${node.gid}`);
    const mode = node.mode == null ? '' : modeText(node.mode, isDir);
    return h('span', { class: 'owner', title: `${mode}  ${user} (uid ${node.uid})  ${group} (gid ${node.gid})`.trim(), dataset: { mode } },
      h('span', { class: 'user' }, user), group ? h('span', { class: 'group muted' }, ` ${group}`) : null);
  }

  /** Whom the key stands for (`GET /whoami`): the answers are filtered to what that user may
   *  read through the mode bits, so the console says so. */
  async function loadIdentity() {
    const g = state.gen;
    const el = $('identity');
    el.hidden = true;
    let w;
    try {
      w = await api(viewUrl('whoami'));
    } catch (_) {
      return; // an older Fusion without the route: nothing to say
    }
    if (g !== state.gen) return;
    const name = (id, n) => (n ? `${id} (${n})` : String(id));
    if (w.scope === 'user') {
      const groups = w.groups.map((x) => name(x.gid, x.name)).join(', ');
      el.textContent = `as uid ${name(w.uid, w.user)}${groups ? `, groups ${groups}` : ''}`;
      el.title = 'this key is bound to a user: every answer shows only what that user may read (POSIX mode bits, no ACLs)';
      el.className = 'pill identity user';
    } else if (w.scope === 'admin') {
      el.textContent = 'admin key: sees everything';
      el.title = 'this key is bound with admin: true';
      el.className = 'pill identity admin';
    } else {
      el.textContent = 'whole view';
      el.title = 'this key is not bound to a user: it sees every entry of the view';
      el.className = 'pill identity';
    }
    el.dataset.scope = w.scope;
    el.hidden = false;
  }

  /** Shows the Files or the Usage page: Usage replaces the details (fs) and sits below the
   *  members (forest); the tree and the path stay, so a selection chooses the report's path. */
  function applyTab() {
    const usage = state.tab === 'usage';
    const forest = state.driver === 'forest-fs';
    for (const b of document.querySelectorAll('#tabs [data-tab]')) {
      b.setAttribute('aria-selected', String(b.dataset.tab === state.tab));
    }
    document.body.classList.toggle('tab-usage', usage);
    $('usage-panel').hidden = !usage;
    $('detail-panel').hidden = forest || usage;
    if (usage) loadUsage();
  }

  /** The directory the Usage page reports on: the selected directory, a selected file's
   *  directory, or the forest's path. */
  function usagePath() {
    if (state.driver === 'forest-fs') return state.forest.path;
    const sel = state.selected;
    if (!sel) return '/';
    const e = state.tree.get(sel);
    return e && e.node.content_type !== 'directory' ? parentOf(sel) : sel;
  }

  /** A report may scan a large subtree, so the periodic refresh (`periodic`) asks again only
   *  when the path changed or the shown one is USAGE_REFRESH_MS old; the Refresh button, a new
   *  selection and the tab itself ask at once. */
  async function loadUsage(periodic = false) {
    if (state.tab !== 'usage' || !state.view || !window.FustorUsage) return;
    const g = state.gen;
    const path = usagePath();
    const last = state.usageLoaded;
    if (periodic && last && last.gen === g && last.path === path && Date.now() - last.at < USAGE_REFRESH_MS) return;
    state.usageLoaded = { gen: g, path, at: Date.now() };
    const el = $('usage');
    $('usage-path').textContent = shown(path);
    let r;
    try {
      r = await api(viewUrl('report'), { path, top: 10 });
    } catch (e) {
      if (g !== state.gen || path !== usagePath()) return;
      if (e.status === 404) clear(el).append(h('p', { class: 'muted' }, `${path}: not in the view.`));
      else panelError(el, e);
      return;
    }
    if (g !== state.gen || path !== usagePath()) return;
    const ui = { h, clear, fmtInt, fmtSize, fmtTime, isoTime, onPath: (p) => (state.driver === 'forest-fs' ? forestGo(parentOf(p)) : reveal(p)) };
    const chosen = window.FustorUsage.render(el, r, state.usageMember, ui);
    const pick = $('usage-member');
    $('usage-member-pick').hidden = !(r && r.members);
    if (r && r.members) {
      clear(pick);
      for (const m of Object.keys(r.members)) {
        pick.append(h('option', { value: m }, m === r.best ? `${m} (best: most bytes)` : m));
      }
      pick.value = chosen || '';
    }
    el.dataset.path = path;
  }

  function bind() {
    $('key-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const k = $('key-input').value.trim();
      if (!k) return;
      state.key = k;
      sessionStorage.setItem(KEY_STORE, k);
      connect();
    });
    $('forget-key').addEventListener('click', () => {
      sessionStorage.removeItem(KEY_STORE);
      state.key = null;
      state.gen += 1;
      state.tree.clear();
      hideBanner();
      for (const el of ['tree', 'stats', 'sessions', 'jobs', 'blind', 'suspects', 'members', 'diff', 'detail', 'best-summary', 'usage', 'identity']) clear($(el));
      $('identity').hidden = true;
      // the next key picks its own view
      state.view = null;
      state.forest.path = '/';
      window.history.replaceState(null, '', window.location.pathname);
      showKeyPrompt('Key forgotten. Enter a key to continue.');
    });
    $('view-select').addEventListener('change', (ev) => {
      state.forest.path = '/';
      selectView(ev.target.value);
    });
    $('refresh-btn').addEventListener('click', () => {
      refreshPanels();
      if (state.driver === 'forest-fs') loadForest();
      else loadTree(true);
    });
    $('tree-reload').addEventListener('click', () => loadTree(true));
    for (const b of document.querySelectorAll('#tabs [data-tab]')) {
      b.addEventListener('click', () => {
        state.tab = b.dataset.tab;
        applyTab();
        setHash();
      });
    }
    $('usage-refresh').addEventListener('click', () => loadUsage());
    $('usage-member').addEventListener('change', (ev) => {
      state.usageMember = ev.target.value;
      loadUsage();
    });
    $('search-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const p = $('search-input').value.trim();
      if (p) runSearch(p);
    });
    $('forest-path-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      let p = $('forest-path').value.trim() || '/';
      if (!p.startsWith('/')) p = `/${p}`;
      if (p.length > 1) p = p.replace(/\/+$/, '');
      forestGo(p);
    });
    $('strategy').addEventListener('change', (ev) => {
      state.forest.strategy = ev.target.value;
      refreshForestStats();
    });
    // a link pasted into the address bar of an open console: start over from it
    window.addEventListener('hashchange', () => {
      takeKeyFromHash();
      state.key = sessionStorage.getItem(KEY_STORE) || state.key;
      if (state.key) connect();
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && state.view && state.timer) refreshPanels();
    });
  }

  /** `fustor demo` prints a link with `#key=…`: keep the key for this tab, then drop it from
   *  the address bar so it is not left in history or screenshots. */
  function takeKeyFromHash() {
    const hash = new URLSearchParams(window.location.hash.slice(1));
    const k = hash.get('key');
    if (!k) return;
    sessionStorage.setItem(KEY_STORE, k);
    hash.delete('key');
    const rest = hash.toString();
    history.replaceState(null, '', window.location.pathname + window.location.search + (rest ? '#' + rest : ''));
  }

  function start() {
    bind();
    takeKeyFromHash();
    state.key = sessionStorage.getItem(KEY_STORE);
    if (!state.key) {
      showKeyPrompt();
      return;
    }
    connect();
  }

  start();
})();
