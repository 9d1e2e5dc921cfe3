import { h, clear } from './dom.js';
import { api } from './api.js';
import { t } from './i18n.js';
import { money, int, ms } from './fmt.js';

// The playground calls the gateway's own /v1 API from the page, with a
// gateway key held only in page memory: the call goes through the same
// keys, limits and ledger as any client.
export function playground(main, state) {
  const keyIn = h('input', { type: 'password', id: 'pg-key', placeholder: 'tg-…', value: state.gatewayKey, autocomplete: 'off', size: 34,
    onchange: e => { state.gatewayKey = e.target.value.trim(); loadModels(); } });
  const modelSel = h('select', { id: 'pg-model' });
  const sys = h('input', { id: 'pg-system', placeholder: t('pg.system'), size: 40 });
  const input = h('textarea', { id: 'pg-input', placeholder: t('pg.placeholder') });
  const send = h('button', { class: 'primary', id: 'pg-send' }, t('pg.send'));
  const stop = h('button', { id: 'pg-stop', disabled: true }, t('pg.stop'));
  const chat = h('div', { class: 'chatlog', id: 'pg-chat' });
  const err = h('div', { class: 'err', id: 'pg-error' });
  const stats = h('dl', { id: 'pg-stats' });
  const history = [];
  let ctrl = null;

  main.append(h('h1', {}, t('nav.playground')),
    h('div', { class: 'bar' }, h('label', {}, t('pg.key'), keyIn), h('label', {}, t('model'), modelSel), sys,
      h('button', { onclick: () => { history.length = 0; clear(chat); clear(stats); } }, t('pg.clear'))),
    h('div', { class: 'play' },
      h('div', {}, chat, h('div', { class: 'compose' }, input, h('div', {}, send, h('br', {}), stop)), err),
      h('div', { class: 'card' }, h('b', {}, t('pg.last_call')), stats)));

  const auth = () => state.gatewayKey ? { Authorization: 'Bearer ' + state.gatewayKey } : {};

  async function loadModels() {
    err.textContent = '';
    if (!state.gatewayKey) return; // /v1/models answers 401 without a key, as OpenAI's does
    try {
      const r = await fetch('/v1/models', { headers: auth() });
      const j = await r.json();
      if (!r.ok) throw new Error((j.error && j.error.message) || r.statusText);
      const ids = (j.data || []).map(m => m.id).sort();
      const cur = modelSel.value;
      clear(modelSel).append(...ids.map(id => h('option', { value: id, selected: id === cur }, id)));
    } catch (x) { err.textContent = t('pg.models_failed') + ': ' + x.message; }
  }

  function showStats(s) {
    clear(stats).append(...Object.entries(s).flatMap(([k, v]) => [h('dt', {}, t(k)), h('dd', { 'data-stat': k }, v)]));
  }

  async function run() {
    const text = input.value.trim();
    if (!text || ctrl) return;
    err.textContent = '';
    input.value = '';
    history.push({ role: 'user', content: text });
    chat.append(h('div', { class: 'msg' }, h('b', {}, t('pg.you')), text));
    const out = h('span', { class: 'answer' });
    chat.append(h('div', { class: 'msg' }, h('b', {}, modelSel.value), out));
    const msgs = sys.value.trim() ? [{ role: 'system', content: sys.value.trim() }, ...history] : history;
    ctrl = new AbortController();
    send.disabled = true; stop.disabled = false;
    const t0 = performance.now();
    let ttft = 0, usage = null, answer = '', reqID = '';
    try {
      const r = await fetch('/v1/chat/completions', {
        method: 'POST', signal: ctrl.signal,
        headers: { 'Content-Type': 'application/json', ...auth() },
        body: JSON.stringify({ model: modelSel.value, messages: msgs, stream: true, stream_options: { include_usage: true } }),
      });
      reqID = r.headers.get('X-Request-Id') || '';
      if (!r.ok) {
        const j = await r.json().catch(() => ({}));
        throw new Error((j.error && j.error.message) || r.statusText);
      }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
          const ev = buf.slice(0, i); buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
          const data = ev.split(/\r?\n/).filter(l => l.startsWith('data:')).map(l => l.slice(5).trimStart()).join('\n');
          if (!data || data === '[DONE]') continue;
          let j; try { j = JSON.parse(data); } catch { continue; }
          if (j.error) throw new Error(j.error.message || 'stream error');
          const d = j.choices && j.choices[0] && j.choices[0].delta && j.choices[0].delta.content;
          if (d) { if (!ttft) ttft = performance.now() - t0; answer += d; out.textContent = answer; chat.scrollTop = chat.scrollHeight; }
          if (j.usage) usage = j.usage;
        }
      }
      history.push({ role: 'assistant', content: answer });
    } catch (x) {
      if (x.name !== 'AbortError') err.textContent = x.message;
    } finally {
      ctrl = null; send.disabled = false; stop.disabled = true;
    }
    const total = performance.now() - t0;
    const s = { 'pg.request_id': reqID || '—', 'ttfb': ms(ttft), 'duration': ms(total) };
    if (usage) {
      s['tokens.input'] = int(usage.prompt_tokens);
      s['tokens.cached'] = int((usage.prompt_tokens_details && usage.prompt_tokens_details.cached_tokens) || 0);
      s['tokens.output'] = int(usage.completion_tokens);
    }
    s.cost = t('loading');
    showStats(s);
    if (reqID) s.cost = await cost(reqID);
    showStats(s);
  }

  // cost reads the call's record from the live ring (filled as the call
  // ends, before the ledger writer's batch reaches the database).
  async function cost(id) {
    for (let i = 0; i < 10; i++) {
      try {
        const { data } = await api('admin/recent?limit=1&id=' + encodeURIComponent(id));
        if (data.length) return data[0].priced ? money(data[0].cost_nano_usd) : t('unpriced');
      } catch { return '—'; }
      await new Promise(res => setTimeout(res, 300));
    }
    return '—';
  }

  send.addEventListener('click', run);
  stop.addEventListener('click', () => ctrl && ctrl.abort());
  input.addEventListener('keydown', e => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
  loadModels();
  return () => ctrl && ctrl.abort();
}
