// Fustor console, Audit page (the registry): every admin action, filtered by who, action,
// target (prefixes) and time, as `GET /api/v1/admin/audit` answers it. Same rules as app.js:
// server text goes in with text nodes only.
'use strict';

(() => {
  const st = { key: null };
  const $ = (id) => document.getElementById(id);
  const { h, fmtTime } = window.FustorDom;

  const digest = (d) => h('td', { class: 'audit-digest', title: d || null }, d ? String(d).slice(0, 12) : '—');

  /** The filters as a query string; `since` is the browser's local time. */
  function query() {
    const q = new URLSearchParams();
    for (const [param, id] of [['actor', 'audit-actor'], ['action', 'audit-action'], ['target', 'audit-target']]) {
      const v = $(id).value.trim();
      if (v) q.set(param, v);
    }
    const since = $('audit-since').value;
    if (since) {
      const t = new Date(since).getTime();
      if (Number.isFinite(t)) q.set('since', String(t / 1000));
    }
    q.set('limit', $('audit-limit').value);
    return q.toString();
  }

  async function load() {
    const box = $('audit-error');
    let r;
    let body = null;
    try {
      r = await fetch(`/api/v1/admin/audit?${query()}`, { headers: { 'X-API-Key': st.key || '' }, cache: 'no-store' });
      body = await r.json();
    } catch (e) {
      box.textContent = String(e.message || e);
      box.hidden = false;
      return;
    }
    if (!r.ok) {
      box.textContent = body && typeof body.detail === 'string' ? body.detail : `HTTP ${r.status}`;
      box.hidden = false;
      return;
    }
    box.hidden = true;
    const rows = $('audit-rows');
    rows.replaceChildren(...body.entries.map((e) => h('tr', { dataset: { id: e.id, result: e.result } },
      h('td', null, fmtTime(e.at)),
      h('td', null, e.who),
      h('td', null, e.action),
      h('td', null, e.target),
      digest(e.before_digest),
      digest(e.after_digest),
      h('td', { class: e.result === 'ok' ? null : 'error-text' }, e.result))));
    $('audit-count').textContent = `${body.entries.length} entr${body.entries.length === 1 ? 'y' : 'ies'}`;
  }

  function show(key) {
    st.key = key;
    return load();
  }

  function bind() {
    $('audit-filters').addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  }

  document.addEventListener('DOMContentLoaded', bind);
  window.FustorAudit = { show };
})();
