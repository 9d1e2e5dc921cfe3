import { h, clear, badge } from './dom.js';
import { api } from './api.js';
import { t } from './i18n.js';
import { int, ms, pct, time } from './fmt.js';

// Known fields get columns; anything else the server adds (per-model health
// and whatever comes next) is shown as-is, so a newer server never breaks
// this page.
const known = new Set(['name', 'base_url', 'models', 'weight', 'state', 'open_until', 'in_flight', 'max_parallel', 'latency_ms',
  'error_ratio', 'consecutive_failures', 'requests', 'failures', 'last_error', 'last_error_at', 'model']);

export function upstreams(main) {
  const err = h('div', { class: 'err' });
  const msg = h('span', { class: 'muted', id: 'reload-msg' });
  const list = h('div', { id: 'upstreams-list' }, t('loading'));
  const reload = h('button', { id: 'reload', onclick: async () => {
    msg.textContent = ''; err.textContent = '';
    try { await api('admin/reload', { method: 'POST' }); msg.textContent = t('reloaded') + ' ' + new Date().toLocaleTimeString(); load(); }
    catch (x) { err.textContent = x.message; }
  } }, t('reload_config'));
  main.append(h('h1', {}, t('nav.upstreams')), h('div', { class: 'bar' }, reload, msg), err, list);

  const cols = [t('name'), t('state'), t('latency'), t('error_ratio'), t('in_flight'), t('requests'), t('failures'), t('last_error'), ''];
  function line(u, sub) {
    const state = u.state || (u.healthy === false ? 'open' : u.healthy === true ? 'closed' : '');
    const extra = Object.entries(u).filter(([k, v]) => !known.has(k) && (typeof v !== 'object' || v === null));
    return h('tr', { class: sub ? 'sub' : '', 'data-upstream': u.name || u.model || '' },
      h('td', {}, sub ? '↳ ' + (u.model || u.name || '') : h('b', {}, u.name), !sub && u.base_url ? h('div', { class: 'muted' }, u.base_url) : null),
      h('td', {}, state ? badge(t('state.' + state), state) : '', u.open_until ? h('div', { class: 'muted' }, t('until') + ' ' + time(u.open_until)) : null),
      h('td', { class: 'num' }, u.latency_ms ? ms(u.latency_ms) : '—'),
      h('td', { class: 'num' }, u.error_ratio !== undefined ? pct(u.error_ratio) : ''),
      h('td', { class: 'num' }, u.in_flight !== undefined ? int(u.in_flight) + (u.max_parallel ? ' / ' + int(u.max_parallel) : '') : ''),
      h('td', { class: 'num' }, u.requests !== undefined ? int(u.requests) : ''),
      h('td', { class: 'num' }, u.failures !== undefined ? int(u.failures) : ''),
      h('td', {}, u.last_error ? h('span', { title: u.last_error }, u.last_error.slice(0, 60)) : '', u.last_error_at ? h('div', { class: 'muted' }, time(u.last_error_at)) : null),
      h('td', { class: 'muted' }, extra.map(([k, v]) => k + ': ' + v).join(' · ')));
  }

  async function load() {
    try {
      const { data } = await api('admin/upstreams');
      const rows = [];
      for (const u of data || []) {
        rows.push(line(u, false));
        // Per-model health, in whichever array of objects the server uses.
        for (const v of Object.values(u)) {
          if (Array.isArray(v) && v.length && typeof v[0] === 'object') for (const m of v) rows.push(line(m, true));
        }
        if (Array.isArray(u.models) && u.models.length && typeof u.models[0] === 'string') {
          rows.push(h('tr', { class: 'sub' }, h('td', { colspan: cols.length, class: 'muted' }, t('models') + ': ' + u.models.join(', '))));
        }
      }
      clear(list).append(h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, cols.map(c => h('th', {}, c)))), h('tbody', {}, rows))));
      if (!rows.length) list.append(h('p', { class: 'muted' }, t('no_rows')));
    } catch (x) { err.textContent = x.message; }
  }
  load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
