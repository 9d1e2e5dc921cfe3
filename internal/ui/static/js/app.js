import { h, clear } from './dom.js';
import { api, setCSRF, abortAll } from './api.js';
import { t, lang, setLang, langs } from './i18n.js';
import { overview } from './overview.js';
import { logs } from './logs.js';
import { keys } from './keys.js';
import { upstreams } from './upstreams.js';
import { playground } from './playground.js';

const root = document.getElementById('app');
// state is the page's memory: the session, and a gateway key the user chose
// for the playground (never written to any storage).
const state = { session: null, gatewayKey: '' };
let stopPage = null;

const pages = [
  { id: 'overview', render: overview, key: true },
  { id: 'logs', render: logs, key: true },
  { id: 'keys', render: keys, key: false },
  { id: 'upstreams', render: upstreams, key: false },
  { id: 'playground', render: playground, key: true },
];

async function boot() {
  try {
    const s = await api('session');
    if (!s.role) throw new Error('signed out');
    state.session = s;
    setCSRF(s.csrf_token);
    route();
  } catch {
    state.session = null;
    loginPage();
  }
}

function loginPage(msg) {
  if (stopPage) { stopPage(); stopPage = null; }
  let mode = 'token';
  const input = h('input', { type: 'password', id: 'login-secret', autocomplete: 'off', required: true });
  const err = h('div', { class: 'err', id: 'login-error' }, msg || '');
  const label = h('span', {});
  const tabs = h('div', { class: 'tabs' });
  const setMode = m => {
    mode = m;
    label.textContent = t(m === 'token' ? 'login.admin_token' : 'login.gateway_key');
    clear(tabs).append(
      h('button', { type: 'button', id: 'login-as-admin', class: m === 'token' ? 'on' : '', onclick: () => setMode('token') }, t('login.as_admin')),
      h('button', { type: 'button', id: 'login-as-key', class: m === 'key' ? 'on' : '', onclick: () => setMode('key') }, t('login.as_key')));
  };
  setMode(mode);
  const form = h('form', {
    onsubmit: async e => {
      e.preventDefault();
      err.textContent = '';
      const secret = input.value.trim();
      try {
        state.session = await api('login', { method: 'POST', body: mode === 'token' ? { token: secret } : { key: secret } });
        setCSRF(state.session.csrf_token);
        // A key holder's key may drive the playground; it stays in memory.
        state.gatewayKey = mode === 'key' ? secret : '';
        input.value = '';
        if (!location.hash || location.hash === '#/') location.hash = '#/overview';
        route();
      } catch (x) { err.textContent = x.message; }
    }
  }, label, input, h('button', { class: 'primary', id: 'login-submit' }, t('login.sign_in')), err);
  clear(root).append(h('div', { class: 'login' }, h('h1', {}, 'tollgate'), tabs, form, langSwitch()));
}

function langSwitch() {
  return h('select', { id: 'lang', onchange: e => { setLang(e.target.value); state.session ? route() : loginPage(); } },
    langs.map(l => h('option', { value: l.id, selected: l.id === lang() }, l.name)));
}

function route() {
  if (!state.session) return loginPage();
  const visible = pages.filter(p => state.session.role === 'admin' || p.key);
  const id = (location.hash.replace(/^#\/?/, '').split('?')[0]) || 'overview';
  const page = visible.find(p => p.id === id) || visible[0];
  if (stopPage) { stopPage(); stopPage = null; }
  const main = h('main', { id: 'page-' + page.id });
  const who = state.session.role === 'admin' ? t('role.admin') : t('role.key') + ': ' + (state.session.key_name || state.session.key_id);
  clear(root).append(
    h('header', {},
      h('span', { class: 'brand' }, 'tollgate'),
      h('nav', {}, visible.map(p => h('a', { href: '#/' + p.id, id: 'nav-' + p.id, class: p === page ? 'on' : '' }, t('nav.' + p.id)))),
      h('span', { class: 'who' }, who), langSwitch(),
      h('button', { id: 'logout', onclick: logout }, t('logout'))),
    main);
  document.title = t('nav.' + page.id) + ' · tollgate';
  stopPage = page.render(main, state) || null;
}

async function logout() {
  if (stopPage) { stopPage(); stopPage = null; } // no refresh may start after this
  abortAll();
  try { await api('logout', { method: 'POST' }); } catch { /* signed out either way */ }
  state.session = null; state.gatewayKey = ''; setCSRF('');
  loginPage();
}

window.addEventListener('hashchange', route);
window.addEventListener('tg-signed-out', () => { state.session = null; loginPage(t('login.expired')); });
document.documentElement.lang = lang();
boot();
