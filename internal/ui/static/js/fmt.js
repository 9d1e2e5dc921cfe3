import { lang } from './i18n.js';

// money renders nano-USD exactly (the ledger's unit is 1e-9 USD): at least
// two decimals, up to nine, no float rounding.
export function money(nano) {
  if (nano === undefined || nano === null) return '';
  let n = BigInt(Math.trunc(nano));
  const neg = n < 0n; if (neg) n = -n;
  const whole = n / 1000000000n;
  let frac = (n % 1000000000n).toString().padStart(9, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return (neg ? '-$' : '$') + Number(whole).toLocaleString(lang()) + '.' + frac;
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
