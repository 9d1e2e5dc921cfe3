// h builds an element. Attributes starting with "on" become listeners;
// children are nodes or text (never parsed as HTML, so data cannot inject
// markup).
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const c of kids) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

// table renders rows with column specs {label, cell(row), num}.
export function table(cols, rows, onRow) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map(c => h('th', { class: c.num ? 'num' : '' }, c.label)))),
    h('tbody', {}, rows.map(r => {
      const tr = h('tr', { class: onRow ? 'click' : '' }, cols.map(c => h('td', { class: c.num ? 'num' : '' }, c.cell(r))));
      if (onRow) tr.addEventListener('click', () => onRow(r, tr));
      return tr;
    }))));
}

export function badge(text, cls) { return h('span', { class: 'badge ' + (cls || text) }, text); }

export function meter(frac) {
  const f = Math.max(0, Math.min(1, frac || 0));
  const i = h('i', { class: f >= 0.9 ? 'hot' : '' });
  i.style.width = (f * 100).toFixed(1) + '%';
  return h('div', { class: 'meter', title: (f * 100).toFixed(1) + '%' }, i);
}
