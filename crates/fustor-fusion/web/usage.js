// Fustor web console: the "Usage" page (issue 14), drawn from GET /views/{v}/report.
// Plain DOM and CSS bars: no chart library, no inline markup. Every server string goes in as
// text (the `h` helper of app.js), never as HTML.
'use strict';

(() => {
  /**
   * Renders one fs report (`Report` of the view) into `el`.
   * `ui` carries app.js's helpers: h, clear, fmtInt, fmtSize, fmtTime, isoTime, onPath.
   */
  function renderReport(el, r, ui) {
    const { h, fmtInt, fmtSize } = ui;
    const out = [];
    out.push(h('p', { class: 'usage-total', dataset: { files: String(r.files), bytes: String(r.bytes) } },
      h('strong', null, fmtSize(r.bytes)), ` in ${fmtInt(r.files)} file${r.files === 1 ? '' : 's'} below `,
      h('code', null, r.path),
      r.incremental ? h('span', { class: 'muted small', title: 'answered from the totals kept at every change, no scan' }, ' · kept totals') : null));
    const holders = (list) => (list || []).map((o) => ({
      key: o.id == null ? 'none' : String(o.id),
      label: o.id == null ? '(not reported)' : o.name || `#${o.id}`,
      title: o.id == null ? 'files whose agent reported no owner' : `id ${o.id}`,
      files: o.files,
      bytes: o.bytes,
    }));
    out.push(chart('owners', 'Owners by bytes', holders(r.owners), 'bytes', ui));
    out.push(chart('groups', 'Groups by bytes', holders(r.groups), 'bytes', ui));
    out.push(chart('size', 'Size histogram (files per power-of-two bucket)', (r.size_histogram || []).map((b) => ({
      key: String(b.min),
      label: b.max == null ? `≥ ${fmtSize(b.min)}` : `${fmtSize(b.min)} – ${fmtSize(b.max)}`,
      title: `${fmtInt(b.min)} ≤ size < ${b.max == null ? '∞' : fmtInt(b.max)} bytes`,
      files: b.files,
      bytes: b.bytes,
    })), 'files', ui));
    out.push(chart('age', 'Age histogram (by modification time)', (r.age_histogram || []).map((b) => ({
      key: b.label,
      label: b.label,
      title: b.max_age_seconds == null ? 'older than every bucket above' : `modified less than ${fmtInt(b.max_age_seconds)} s ago`,
      files: b.files,
      bytes: b.bytes,
    })), 'files', ui));
    out.push(fileList('largest', 'Largest files', r.largest, (f) => fmtSize(f.size), ui));
    out.push(fileList('oldest', 'Oldest files', r.oldest, (f) => ui.fmtTime(f.modified_time), ui));
    ui.clear(el).append(...out);
  }

  /** A horizontal bar chart: one row per item, the bar's length relative to the largest. */
  function chart(id, title, items, measure, ui) {
    const { h, fmtInt, fmtSize } = ui;
    const box = h('div', { class: 'chart', dataset: { chart: id } }, h('h3', null, title));
    if (!items.length) {
      box.append(h('p', { class: 'muted small' }, 'Nothing here.'));
      return box;
    }
    const top = Math.max(1, ...items.map((i) => i[measure]));
    for (const i of items) {
      const bar = h('span', { class: 'bar' });
      // CSSOM, not a style attribute: the CSP forbids inline styles
      bar.style.setProperty('--w', `${((100 * i[measure]) / top).toFixed(2)}%`);
      const value = measure === 'bytes'
        ? `${fmtSize(i.bytes)} · ${fmtInt(i.files)} file${i.files === 1 ? '' : 's'}`
        : `${fmtInt(i.files)} file${i.files === 1 ? '' : 's'} · ${fmtSize(i.bytes)}`;
      box.append(h('div', {
        class: 'bar-row',
        dataset: { k: i.key, files: String(i.files), bytes: String(i.bytes) },
        title: `${i.title}: ${fmtInt(i.bytes)} bytes in ${fmtInt(i.files)} files`,
      }, h('span', { class: 'bar-label' }, i.label), h('span', { class: 'bar-track' }, bar), h('span', { class: 'bar-value num' }, value)));
    }
    return box;
  }

  function fileList(id, title, files, figure, ui) {
    const { h } = ui;
    const box = h('div', { class: 'usage-list', dataset: { list: id } }, h('h3', null, title));
    if (!files || !files.length) {
      box.append(h('p', { class: 'muted small' }, 'No files.'));
      return box;
    }
    const ol = h('ol', null);
    for (const f of files) {
      ol.append(h('li', { dataset: { path: f.path } },
        h('span', { class: 'fig num', title: ui.isoTime(f.modified_time) }, figure(f)),
        h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); ui.onPath(f.path); } }, f.path),
        f.owner || f.uid != null ? h('span', { class: 'muted small' }, ` ${f.owner || `#${f.uid}`}`) : null));
    }
    box.append(ol);
    return box;
  }

  /**
   * Renders a report answer: an fs report, or a forest answer (`members`, `best`) where
   * `pick` names the member to show (`null`: the best one). Returns the member shown.
   */
  function render(el, answer, pick, ui) {
    if (!answer || !answer.members) {
      renderReport(el, answer, ui);
      return null;
    }
    const names = Object.keys(answer.members);
    const chosen = pick && names.includes(pick) ? pick : answer.best || names[0];
    const m = chosen ? answer.members[chosen] : null;
    if (!m || m.status !== 'ok') {
      ui.clear(el).append(ui.h('p', { class: 'muted' }, chosen ? `${chosen}: ${m ? m.status : 'no member'} at this path.` : 'No member.'));
      return chosen;
    }
    renderReport(el, m, ui);
    return chosen;
  }

  window.FustorUsage = { render };
})();
