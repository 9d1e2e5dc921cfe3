import { h, clear, table, badge, meter } from './dom.js';
import { api } from './api.js';
import { t } from './i18n.js';
import { money, int, time, currency } from './fmt.js';

export function keys(main) {
  const err = h('div', { class: 'err', id: 'keys-error' });
  const shown = h('div', { id: 'key-shown' });
  const formBox = h('div', {});
  const list = h('div', { id: 'keys-list' }, t('loading'));
  main.append(h('h1', {}, t('nav.keys')),
    h('div', { class: 'bar' }, h('button', { class: 'primary', id: 'key-new', onclick: () => form(null) }, t('keys.create'))),
    shown, formBox, err, list);

  async function load() {
    try {
      const { data } = await api('admin/keys');
      clear(list).append(table([
        { label: t('name'), cell: k => k.name },
        { label: t('prefix'), cell: k => h('code', {}, k.prefix + '…') },
        { label: t('status'), cell: k => badge(t('status.' + k.status), k.status) },
        { label: t('models'), cell: k => (k.models && k.models.length) ? k.models.join(', ') : t('all_models') },
        { label: 'RPM', num: true, cell: k => k.rpm ? int(k.rpm) : t('default') },
        { label: 'TPM', num: true, cell: k => k.tpm ? int(k.tpm) : t('default') },
        { label: t('parallel'), num: true, cell: k => k.max_parallel ? int(k.max_parallel) : t('default') },
        { label: t('spent'), num: true, cell: k => money(k.spend_this_period_nano_usd) },
        { label: t('budget'), num: true, cell: k => k.budget_nano_usd ? money(k.budget_nano_usd) + ' / ' + t('period.' + k.budget_period) : '—' },
        { label: '', cell: k => k.budget_nano_usd ? meter(k.spend_this_period_nano_usd / k.budget_nano_usd) : '' },
        { label: t('last_used'), cell: k => k.last_used ? time(k.last_used) : t('never') },
        { label: t('expires'), cell: k => k.expires_at ? time(k.expires_at) : t('never') },
        { label: '', cell: actions },
      ], data));
    } catch (x) { err.textContent = x.message; }
  }

  function actions(k) {
    if (k.status === 'revoked') return '';
    const revoke = h('button', { class: 'danger', 'data-act': 'revoke', 'data-key': k.name });
    revoke.textContent = t('revoke');
    // Two clicks instead of a confirm() dialog: no modal, same safety.
    revoke.addEventListener('click', async () => {
      if (!revoke.dataset.armed) { revoke.dataset.armed = '1'; revoke.textContent = t('confirm_revoke'); return; }
      await act(() => api('admin/keys/' + k.id + '/revoke', { method: 'POST' }));
    });
    return h('span', {},
      h('button', { 'data-act': 'edit', 'data-key': k.name, onclick: () => form(k) }, t('edit')), ' ',
      h('button', { 'data-act': 'rotate', 'data-key': k.name, onclick: () => act(async () => showKey(await api('admin/keys/' + k.id + '/rotate', { method: 'POST' }), true)) }, t('rotate')), ' ',
      revoke);
  }

  async function act(f) {
    err.textContent = '';
    try { await f(); await load(); } catch (x) { err.textContent = x.message; }
  }

  // showKey shows a new secret once; it is not kept anywhere after the box
  // is closed.
  function showKey(k, rotated) {
    const code = h('code', { id: 'new-key' }, k.key);
    const copy = h('button', { id: 'copy-key', onclick: async () => {
      try { await navigator.clipboard.writeText(k.key); copy.textContent = t('copied'); } catch { getSelection().selectAllChildren(code); }
    } }, t('copy'));
    clear(shown).append(h('div', { class: 'note' },
      h('b', {}, t(rotated ? 'keys.rotated' : 'keys.created', k.name)), h('div', {}, t('keys.once')),
      h('div', { class: 'secret' }, code, copy, h('button', { onclick: () => clear(shown) }, t('done')))));
  }

  function form(k) {
    const v = k || {};
    const budgetUSD = v.budget_nano_usd ? (v.budget_nano_usd / 1e9).toString() : '';
    const inp = (id, val, attrs) => h('input', { id: 'kf-' + id, value: val ?? '', ...attrs });
    const name = inp('name', v.name, { required: true });
    const models = inp('models', (v.models || []).join(', '), { placeholder: 'gpt-4o-mini, openai/*' });
    const rpm = inp('rpm', v.rpm || '', { type: 'number', min: 0 });
    const tpm = inp('tpm', v.tpm || '', { type: 'number', min: 0 });
    const par = inp('parallel', v.max_parallel || '', { type: 'number', min: 0 });
    const budget = inp('budget', budgetUSD, { type: 'number', min: 0, step: 'any', placeholder: currency() });
    const period = h('select', { id: 'kf-period' }, ['day', 'month', 'total'].map(p => h('option', { value: p, selected: p === (v.budget_period || 'month') }, t('period.' + p))));
    const expires = inp('expires', '', { placeholder: k ? t('keys.expires_keep') : '30d, 12h, never' });
    const lab = (l, el) => h('label', {}, l, el);
    const f = h('form', { class: 'form', id: 'key-form', onsubmit: async e => {
      e.preventDefault();
      const n = el => el.value === '' ? 0 : parseInt(el.value, 10);
      const body = {
        name: name.value, models: models.value.split(',').map(s => s.trim()).filter(Boolean),
        rpm: n(rpm), tpm: n(tpm), max_parallel: n(par),
        budget: budget.value && parseFloat(budget.value) > 0 ? budget.value + currency() + '/' + period.value : 'none',
      };
      if (expires.value.trim() || !k) body.expires = expires.value.trim() || 'never';
      await act(async () => {
        if (k) await api('admin/keys/' + k.id, { method: 'PATCH', body });
        else showKey(await api('admin/keys', { method: 'POST', body }), false);
        clear(formBox);
      });
    } },
    lab(t('name'), name), lab(t('models'), models), lab('RPM', rpm), lab('TPM', tpm), lab(t('parallel'), par),
    lab(t('budget') + ' (' + currency() + ')', budget), lab(t('period'), period), lab(t('expires'), expires),
    h('div', { class: 'actions' }, h('button', { class: 'primary', id: 'kf-save' }, k ? t('save') : t('keys.create')),
      h('button', { type: 'button', onclick: () => clear(formBox) }, t('cancel'))));
    clear(formBox).append(h('h2', {}, k ? t('edit') + ': ' + k.name : t('keys.create')), f);
    name.focus();
  }

  load();
  return null;
}
