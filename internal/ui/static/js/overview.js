import { h, clear, table, meter, badge } from './dom.js';
import { api, query } from './api.js';
import { t } from './i18n.js';
import { money, int, pct, ms, time, currency } from './fmt.js';
import { lineChart } from './chart.js';

const ranges = ['1h', '24h', '7d', '30d', 'custom'];

export function overview(main, state) {
  const admin = state.session.role === 'admin';
  const st = { range: '24h', group: 'model', from: '', to: '', auto: true };
  const rangeSel = h('select', { id: 'ov-range', onchange: e => { st.range = e.target.value; custom.hidden = st.range !== 'custom'; load(); } },
    ranges.map(r => h('option', { value: r, selected: r === st.range }, t('range.' + r))));
  const fromIn = h('input', { type: 'datetime-local', onchange: e => { st.from = e.target.value; load(); } });
  const toIn = h('input', { type: 'datetime-local', onchange: e => { st.to = e.target.value; load(); } });
  const custom = h('span', { hidden: true }, fromIn, ' – ', toIn);
  const groupSel = h('select', { id: 'ov-group', onchange: e => { st.group = e.target.value; load(); } },
    (admin ? ['model', 'key', 'user', 'upstream'] : ['model', 'user', 'upstream']).map(g => h('option', { value: g }, t('group.' + g))));
  const autoBox = h('input', { type: 'checkbox', checked: true, onchange: e => { st.auto = e.target.checked; } });
  const updated = h('span', { class: 'muted', id: 'ov-updated' });
  const body = h('div', { id: 'ov-body' }, h('p', { class: 'muted' }, t('loading')));
  main.append(h('h1', {}, t('nav.overview')),
    h('div', { class: 'bar' }, h('label', {}, t('range'), rangeSel), custom, h('label', {}, t('group_by'), groupSel),
      h('label', {}, autoBox, t('auto_refresh')), updated),
    body);

  function span() {
    if (st.range !== 'custom') return { since: st.range, bucket: st.range === '30d' ? 'day' : 'hour' };
    const since = st.from ? new Date(st.from).toISOString() : '24h';
    const until = st.to ? new Date(st.to).toISOString() : '';
    const s = st.from ? new Date(st.from) : new Date(Date.now() - 864e5);
    const e = st.to ? new Date(st.to) : new Date();
    return { since, until, bucket: e - s > 7 * 864e5 ? 'day' : 'hour' };
  }

  let seq = 0;
  let renders = 0;
  async function load() {
    const my = ++seq;
    const sp = span();
    // Aggregates only: estimated percentiles keep the overview off the raw log table.
    const base = { since: sp.since, until: sp.until, percentiles: 'estimate' };
    try {
      const [series, grouped, keyList, spenders] = await Promise.all([
        api('admin/usage' + query({ ...base, group_by: sp.bucket })),
        api('admin/usage' + query({ ...base, group_by: st.group })),
        api('admin/keys').catch(() => ({ data: [] })), // no keys when auth is off
        admin ? api('admin/usage' + query({ ...base, group_by: 'key' })) : null,
      ]);
      if (my !== seq) return;
      render(series, grouped, keyList.data || [], spenders);
      updated.textContent = t('updated') + ' ' + new Date().toLocaleTimeString();
    } catch (x) {
      if (my === seq) clear(body).append(h('div', { class: 'err' }, x.message));
    }
  }

  // pms marks percentiles estimated from the hourly histogram with "~".
  const pms = (row, x) => (row.exact_percentiles || !row.requests ? '' : '~') + ms(x);
  // ttft is the mean time to first token, "—" when no request had one.
  const ttft = row => row.ttft_ms_avg === null || row.ttft_ms_avg === undefined ? '—' : ms(row.ttft_ms_avg);

  function render(series, grouped, keyList, spenders) {
    const tot = series.total;
    const names = Object.fromEntries(keyList.map(k => [k.id, k.name]));
    const label = g => st.group === 'key' ? (names[g] ? names[g] + ' (' + g + ')' : g || '—') : (g || '—');
    const cards = h('div', { class: 'cards', id: 'ov-cards' }, [
      [t('requests'), int(tot.requests)],
      [t('tokens.input'), int(tot.prompt_tokens)],
      [t('tokens.cached'), int(tot.cached_tokens)],
      [t('tokens.output'), int(tot.completion_tokens)],
      [t('cost'), money(tot.cost_nano_usd)],
      [t('error_rate'), pct(tot.requests ? tot.errors / tot.requests : 0)],
      [t('latency.p50'), pms(tot, tot.p50_ms)],
      [t('latency.p95'), pms(tot, tot.p95_ms)],
      [t('latency.ttft'), ttft(tot)],
    ].map(([k, v]) => h('div', { class: 'card' }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v))));
    const g = series.groups || [];
    const xs = g.map(r => Date.parse(r.group) / 1000);
    const charts = h('div', { class: 'charts' });
    const parts = [cards, charts];
    if (tot.unpriced_requests) parts.push(h('p', { class: 'muted' }, t('unpriced_note', int(tot.unpriced_requests))));
    parts.push(h('h2', {}, t('breakdown') + ' · ' + t('group.' + st.group)),
      table([
        { label: t('group.' + st.group), cell: r => label(r.group) },
        { label: t('requests'), num: true, cell: r => int(r.requests) },
        { label: t('tokens.input'), num: true, cell: r => int(r.prompt_tokens) },
        { label: t('tokens.cached'), num: true, cell: r => int(r.cached_tokens) },
        { label: t('tokens.output'), num: true, cell: r => int(r.completion_tokens) },
        { label: t('cost'), num: true, cell: r => money(r.cost_nano_usd) },
        { label: t('error_rate'), num: true, cell: r => pct(r.requests ? r.errors / r.requests : 0) },
        { label: t('latency.p50'), num: true, cell: r => pms(r, r.p50_ms) },
        { label: t('latency.p95'), num: true, cell: r => pms(r, r.p95_ms) },
        { label: t('latency.ttft'), num: true, cell: ttft },
      ], grouped.groups || []));
    if (spenders) {
      parts.push(h('h2', {}, t('top_spenders')),
        table([
          { label: t('key'), cell: r => names[r.group] || r.group || '—' },
          { label: t('cost'), num: true, cell: r => money(r.cost_nano_usd) },
          { label: t('requests'), num: true, cell: r => int(r.requests) },
        ], (spenders.groups || []).slice(0, 10)));
    }
    const budgeted = keyList.filter(k => k.budget_nano_usd > 0);
    if (!admin && keyList[0]) parts.push(myKey(keyList[0]));
    parts.push(h('h2', {}, t('budgets')), budgeted.length ? table([
      { label: t('key'), cell: k => k.name },
      { label: t('status'), cell: k => badge(t('status.' + k.status), k.status) },
      { label: t('spent'), num: true, cell: k => money(k.spend_this_period_nano_usd) },
      { label: t('budget'), num: true, cell: k => money(k.budget_nano_usd) + ' / ' + t('period.' + k.budget_period) },
      { label: t('remaining'), num: true, cell: k => money(Math.max(0, k.budget_nano_usd - k.spend_this_period_nano_usd)) },
      { label: '', cell: k => meter(k.spend_this_period_nano_usd / k.budget_nano_usd) },
    ], budgeted) : h('p', { class: 'muted' }, t('no_budgets')));
    clear(body).append(...parts);
    const w = Math.max(300, Math.floor((charts.clientWidth || 900) / 2) - 30);
    charts.append(
      lineChart(t('chart.requests'), xs, [[t('requests'), g.map(r => r.requests)], [t('errors'), g.map(r => r.errors)]], w),
      lineChart(t('chart.tokens'), xs, [[t('tokens.input'), g.map(r => r.prompt_tokens)], [t('tokens.cached'), g.map(r => r.cached_tokens)], [t('tokens.output'), g.map(r => r.completion_tokens)]], w),
      lineChart(t('chart.cost', currency()), xs, [[t('cost') + ' (' + currency() + ')', g.map(r => r.cost_nano_usd / 1e9)]], w),
      lineChart(t('chart.latency'), xs, [[t('latency.p50'), g.map(r => r.p50_ms)], [t('latency.p95'), g.map(r => r.p95_ms)],
        [t('latency.ttft') + ' ' + t('axis.right'), g.map(r => r.ttft_ms_avg ?? null), { right: true }]], w, 'ov-chart-latency'));
    // data-ready: every panel has its data and the charts are drawn (this
    // frame callback runs after the charts' own), for tests and the
    // first-render benchmark.
    requestAnimationFrame(() => {
      if (!renders) performance.mark('ov-ready'); // the first view's render time, since navigation
      body.dataset.ready = String(++renders);
    });
  }

  function myKey(k) {
    const lim = v => v ? int(v) : t('default');
    return h('div', { id: 'ov-mykey' }, h('h2', {}, t('my_key')), h('div', { class: 'cards' }, [
      [t('key'), k.name + ' (' + k.prefix + '…)'],
      [t('status'), t('status.' + k.status)],
      ['RPM', lim(k.rpm)], ['TPM', lim(k.tpm)], [t('parallel'), lim(k.max_parallel)],
      [t('models'), (k.models && k.models.length) ? k.models.join(', ') : t('all_models')],
      [t('budget'), k.budget_nano_usd ? money(k.budget_nano_usd) + ' / ' + t('period.' + k.budget_period) : t('none')],
      [t('remaining'), k.budget_nano_usd ? money(Math.max(0, k.budget_nano_usd - k.spend_this_period_nano_usd)) : '∞'],
      [t('expires'), k.expires_at ? time(k.expires_at) : t('never')],
    ].map(([a, b]) => h('div', { class: 'card' }, h('div', { class: 'k' }, a), h('div', { class: 'v' }, b)))));
  }

  load();
  const timer = setInterval(() => { if (st.auto) load(); }, 30000);
  return () => { clearInterval(timer); seq++; };
}
