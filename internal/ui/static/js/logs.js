import { h, clear, badge } from './dom.js';
import { api, query } from './api.js';
import { t } from './i18n.js';
import { money, int, ms, time } from './fmt.js';

const outcomes = ['', 'ok', 'client_error', 'upstream_error', 'timeout', 'cancelled', 'rate_limited', 'unauthorized', 'forbidden', 'quota_exceeded'];

export function logs(main, state) {
  const admin = state.session.role === 'admin';
  const f = { since: '24h', model: '', key: '', user: '', outcome: '', status: '', upstream: '', stream: '' };
  let cursor = null, tail = false, seen = new Set();
  const text = (name, ph) => h('input', { id: 'lf-' + name, placeholder: ph || t('f.' + name), size: 12, onchange: e => { f[name] = e.target.value.trim(); reload(); } });
  const sel = (name, opts) => h('select', { id: 'lf-' + name, onchange: e => { f[name] = e.target.value; reload(); } },
    opts.map(([v, l]) => h('option', { value: v, selected: v === f[name] }, l)));
  const err = h('div', { class: 'err' });
  const tbody = h('tbody', { id: 'logs-rows' });
  const more = h('button', { id: 'logs-more', onclick: () => page(false) }, t('load_more'));
  const csv = h('a', { id: 'logs-csv', download: 'tollgate-logs.csv' }, t('export_csv'));
  const tailBox = h('input', { type: 'checkbox', id: 'logs-tail', onchange: e => { tail = e.target.checked; } });
  const detail = h('div', { id: 'log-detail' });
  main.append(h('h1', {}, t('nav.logs')),
    h('div', { class: 'bar' },
      sel('since', ['15m', '1h', '24h', '7d', '30d'].map(r => [r, t('range.' + r)])),
      text('model'), admin ? text('key') : null, text('user'),
      sel('outcome', outcomes.map(o => [o, o ? t('outcome.' + o) : t('f.outcome')])),
      text('status'), text('upstream'),
      sel('stream', [['', t('f.stream')], ['true', t('streamed')], ['false', t('not_streamed')]]),
      h('label', {}, tailBox, t('live_tail')), csv),
    err,
    h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, [
      t('time'), t('model'), t('key'), t('user'), t('status'), t('tokens.input'), t('tokens.cached'), t('tokens.output'),
      t('cost'), t('duration'), t('ttfb'), t('upstream'), t('stream')].map((c, i) => h('th', { class: i >= 5 && i <= 10 ? 'num' : '' }, c)))), tbody)),
    h('div', { class: 'bar' }, more), detail);

  function row(r, fresh) {
    const tr = h('tr', { class: 'click' + (fresh ? ' new' : ''), 'data-id': r.id, onclick: () => open(r.id) },
      h('td', {}, time(r.time)), h('td', {}, r.model), h('td', {}, r.key_name || r.key_id), h('td', {}, r.user),
      h('td', {}, badge(String(r.status), r.outcome === 'ok' ? 'ok' : 'bad'), ' ', h('span', { class: 'muted' }, t('outcome.' + r.outcome))),
      h('td', { class: 'num' }, int(r.prompt_tokens)), h('td', { class: 'num' }, int(r.cached_tokens)), h('td', { class: 'num' }, int(r.completion_tokens)),
      h('td', { class: 'num' }, r.priced ? money(r.cost_nano_usd) : '—'), h('td', { class: 'num' }, ms(r.duration_ms)), h('td', { class: 'num' }, ms(r.ttfb_ms)),
      h('td', {}, r.upstream), h('td', {}, r.stream ? '✓' : ''));
    return tr;
  }

  function params(extra) { return query({ ...f, ...extra }); }

  async function page(first) {
    err.textContent = '';
    try {
      const p = await api('admin/logs' + params({ limit: 100, cursor: first ? '' : cursor }));
      if (first) { clear(tbody); seen = new Set(); }
      for (const r of p.data) { seen.add(r.id); tbody.append(row(r)); }
      cursor = p.next_cursor;
      more.hidden = !cursor;
      if (first && p.data.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 13, class: 'muted' }, t('no_rows'))));
    } catch (x) { err.textContent = x.message; }
  }

  function reload() {
    csv.href = '/ui/api/admin/logs' + params({ format: 'csv' });
    page(true);
  }

  async function poll() {
    if (!tail) return;
    try {
      const p = await api('admin/logs' + params({ limit: 50 }));
      const fresh = p.data.filter(r => !seen.has(r.id));
      if (fresh.length && tbody.firstChild && !tbody.firstChild.dataset.id) clear(tbody);
      for (const r of fresh.reverse()) { seen.add(r.id); tbody.prepend(row(r, true)); }
    } catch (x) { err.textContent = x.message; }
  }

  // open loads one row with its bodies; the list never carries bodies.
  async function open(id) {
    clear(detail).append(h('div', { class: 'drawer' }, t('loading')));
    try {
      const r = await api('admin/logs/' + encodeURIComponent(id));
      const body = v => v === undefined || v === null ? h('p', { class: 'muted' }, t('body_not_stored'))
        : h('pre', {}, typeof v === 'string' ? v : JSON.stringify(v, null, 2));
      const fields = [
        ['id', r.id], [t('time'), time(r.time)], [t('key'), (r.key_name || '') + ' ' + r.key_id], [t('user'), r.user],
        [t('endpoint'), r.endpoint], [t('model'), r.model], [t('model_used'), r.model_used], [t('upstream'), r.upstream],
        [t('stream'), r.stream ? t('streamed') : t('not_streamed')], [t('outcome'), t('outcome.' + r.outcome)], [t('status'), r.status],
        [t('attempts'), r.attempts], [t('tokens.input'), int(r.prompt_tokens)], [t('tokens.cached'), int(r.cached_tokens)],
        [t('tokens.output'), int(r.completion_tokens)], [t('tokens.reasoning'), int(r.reasoning_tokens)],
        [t('tokens.total'), int(r.total_tokens) + (r.estimated ? ' (' + t('estimated') + ')' : '')],
        [t('cost'), r.priced ? money(r.cost_nano_usd) : t('unpriced')], [t('duration'), ms(r.duration_ms)], [t('ttfb'), ms(r.ttfb_ms)],
        [t('client_ip'), r.client_ip], [t('error'), r.error],
      ];
      clear(detail).append(h('div', { class: 'drawer', id: 'log-drawer' },
        h('div', { class: 'bar' }, h('h2', {}, t('request')), h('button', { id: 'log-close', onclick: () => clear(detail) }, '×')),
        h('dl', {}, fields.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v === '' || v === undefined ? '—' : String(v))])),
        h('h2', {}, t('request_body')), body(r.request_body), h('h2', {}, t('response_body')), body(r.response_body)));
    } catch (x) { clear(detail).append(h('div', { class: 'drawer' }, h('div', { class: 'err' }, x.message), h('button', { onclick: () => clear(detail) }, '×'))); }
  }

  reload();
  const timer = setInterval(poll, 2000);
  return () => clearInterval(timer);
}
