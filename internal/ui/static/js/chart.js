import { h } from './dom.js';

const colors = ['#2f6fed', '#c0352b', '#1a7f4b', '#b26a00'];

// lineChart draws series over unix-second xs with the vendored uPlot (a
// global from uPlot.iife.min.js). Times are shown in the browser's zone;
// null values are gaps. A series [label, values, { right: true }] has its
// own scale on a right-hand axis (time to first token is far below p95).
// data-points counts each series' non-null values (for tests: the canvas
// itself cannot be read back).
export function lineChart(title, xs, series, width, id) {
  const box = h('div', { class: 'chart', id }, h('div', { class: 't' }, title));
  box.dataset.points = series.map(s => s[1].filter(v => v !== null && v !== undefined).length).join(',');
  if (!window.uPlot || xs.length === 0) {
    box.append(h('p', { class: 'muted' }, '—'));
    return box;
  }
  const opts = {
    width, height: 180,
    series: [{}, ...series.map(([label, , o], i) => ({ label, stroke: colors[i % colors.length], width: 1.5,
      points: { show: xs.length < 50 }, scale: o && o.right ? 'r' : 'y' }))],
    axes: [{}, { size: 60 }, ...(series.some(s => s[2] && s[2].right) ? [{ scale: 'r', side: 1, size: 60, grid: { show: false } }] : [])],
    legend: { show: true },
  };
  // uPlot needs its box in the document to measure; draw on the next frame.
  requestAnimationFrame(() => { new window.uPlot(opts, [xs, ...series.map(s => s[1])], box); });
  return box;
}
