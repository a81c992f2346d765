// Fustor console: the DOM helpers the admin pages (agents.js, configs.js, audit.js) share.
// Loaded first. Server text goes in as text nodes only, never as markup.
'use strict';

window.FustorDom = (() => {
  /** Creates an element; strings among `kids` become text nodes, `on*` functions listeners. */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat()) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const clear = (el) => { el.replaceChildren(); return el; };
  const pad = (n) => String(n).padStart(2, '0');
  /** Epoch seconds as local time `YYYY-MM-DD HH:MM:SS`; '—' for none. */
  function fmtTime(epoch) {
    if (!Number.isFinite(Number(epoch)) || Number(epoch) <= 0) return '—';
    const d = new Date(Number(epoch) * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  return Object.freeze({ h, clear, pad, fmtTime });
})();
