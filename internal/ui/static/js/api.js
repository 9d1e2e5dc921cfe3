// The page's only channel to the server. The session cookie is HttpOnly;
// the CSRF token lives in this module's memory and goes in a header on
// every unsafe request.
import { setCurrency } from './fmt.js';

let csrf = '';
export function setCSRF(t) { csrf = t || ''; }

export class APIError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

// inflight are the requests not answered yet, so signing out can cancel
// them: an answer arriving after the session ended would be a 401.
const inflight = new Set();

export function abortAll() {
  for (const c of inflight) c.abort();
  inflight.clear();
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const ctrl = new AbortController();
  inflight.add(ctrl);
  let r;
  try {
    r = await fetch('/ui/api/' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', signal: ctrl.signal });
  } finally {
    inflight.delete(ctrl);
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    if (r.status === 401 && !path.startsWith('login')) window.dispatchEvent(new Event('tg-signed-out'));
    throw new APIError(r.status, (data && data.error && data.error.message) || r.statusText);
  }
  if (data && typeof data.currency === 'string') setCurrency(data.currency);
  return data;
}

// query builds a query string from the non-empty fields of o.
export function query(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}
