import { lang } from './i18n.js';

// cur is the deployment currency; every admin API answer with amounts names
// it (api.js passes it to setCurrency).
let cur = 'USD';
export function setCurrency(c) { if (c) cur = c; }
export const currency = () => cur;

// money renders nano-units of the deployment currency exactly (the ledger's
// unit is 1e-9 of it): at least two decimals, up to nine, no float rounding;
// "$1.50" in USD, "1.50 CNY" in any other currency.
export function money(nano) {
  if (nano === undefined || nano === null) return '';
  let n = BigInt(Math.trunc(nano));
  const neg = n < 0n; if (neg) n = -n;
  const whole = n / 1000000000n;
  let frac = (n % 1000000000n).toString().padStart(9, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  const num = Number(whole).toLocaleString(lang()) + '.' + frac;
  if (cur === 'USD') return (neg ? '-$' : '$') + num;
  return (neg ? '-' : '') + num + ' ' + cur;
}

export const int = n => (n ?? 0).toLocaleString(lang());
export const pct = x => (isFinite(x) ? (x * 100).toFixed(x < 0.1 ? 2 : 1) : '0') + '%';
export const ms = x => x === undefined || x === null ? '' : (x >= 10000 ? (x / 1000).toFixed(1) + ' s' : Math.round(x) + ' ms');

// time shows an instant in the browser's time zone.
export function time(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString(lang(), { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
