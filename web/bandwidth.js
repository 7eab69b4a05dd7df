/* The Bandwidth tab: the benchmark's heatmaps, the all-reduce table and curves. */
'use strict';
/* == bandwidth == */
function renderBench() {
  const b = S.bench;
  $('bench-empty').hidden = !!b;
  $('bench-body').hidden = !b;
  $('bench-simulated').hidden = !(b && b.simulated);
  if (!b) { setText('bench-meta', ''); setSvg(null); return; }
  const rs = b.results || [];
  const v = b.nccl_version;
  const bad = rs.filter((r) => r.outcome !== 'ok' && r.outcome !== 'waived').length;
  const waived = rs.filter((r) => r.outcome === 'waived').length;
  setText('bench-meta', [b.started && 'Run ' + b.started.replace('T', ' ').replace('Z', ' UTC'),
    typeof b.wall_ms === 'number' && 'took ' + (b.wall_ms / 1000).toFixed(1) + ' s',
    b.kernels ? 'copy kernels built in' : 'no CUDA kernels (SM copies and one-shot waived)',
    v ? 'NCCL ' + Math.floor(v / 10000) + '.' + Math.floor(v % 10000 / 100) + '.' + v % 100 : 'no NCCL' + (b.nccl_note ? ': ' + b.nccl_note : ''),
    plural(rs.length, 'measurement') + (bad ? ', ' + bad + ' failed' : '') + (waived ? ', ' + waived + ' waived' : '')].filter(Boolean).join(' \u00b7 ') + '.');
  loadSvg();
  const ar = rs.filter((r) => r.kind === 'allreduce_nccl' || r.kind === 'allreduce_oneshot');
  arTable(ar);
  arChart(ar.filter((r) => r.group && r.group.length));
  for (const td of $('matrix').querySelectorAll('td.cell')) {
    td.title = cellTitle(getPair(Number(td.getAttribute('data-from')), Number(td.getAttribute('data-to'))));
  }
}

function setSvg(url) {
  const img = $('bench-svg');
  if (S.svgUrl) URL.revokeObjectURL(S.svgUrl);
  S.svgUrl = url;
  img.hidden = !url;
  if (url) img.src = url; else img.removeAttribute('src');
}
async function loadSvg() {
  // only called when the report has a benchmark, so that no 404 reaches the console
  const gen = ++S.svgGen;
  try {
    const res = await fetch('/api/v1/bench?format=svg', { cache: 'no-store', credentials: 'same-origin' });
    const blob = res.ok ? await res.blob() : null;
    if (gen === S.svgGen) setSvg(blob ? URL.createObjectURL(new Blob([blob], { type: 'image/svg+xml' })) : null);
  } catch (e) { if (gen === S.svgGen) setSvg(null); }
}

const arKey = (r) => [(r.group || []).join(','), r.virtual_ranks, r.dtype, r.graph].join('|');
const arName = (r) => 'GPUs ' + (r.group || []).join(',') + ' (' + plural(r.ranks || 0, 'rank') + (r.virtual_ranks ? ', virtual' : '') + '), ' +
  (r.dtype || '?') + ', ' + (r.graph ? 'CUDA graph' : 'eager');
function arCell(r) {
  if (!r) return [el('td', 'num', '-'), null];
  if (r.outcome !== 'ok' || !r.us) return [el('td', { class: 'num', title: r.reason }, r.outcome === 'waived' ? 'waived' : r.outcome.toUpperCase()), null];
  return [el('td', { class: 'num', title: 'p10 ' + num(r.us.p10, 2) + ', p90 ' + num(r.us.p90, 2) + ' us; algbw ' + num(r.gbps, 1) +
    ' GB/s, busbw ' + num(r.bus_gbps, 1) + ' GB/s' }, r.us.median.toFixed(2)), r.us.median];
}
function arTable(ar) {
  const t = $('bench-table');
  if (!ar.length) { clear(t).appendChild(el('caption', 0, 'No all-reduce measurements.')); return; }
  table(t, ['Size', '#NCCL us', '#one-shot us', '#speed-up']).remove();
  const groups = new Map();
  for (const r of ar) {
    const k = arKey(r);
    if (!groups.has(k)) groups.set(k, { r, nccl: new Map(), one: new Map() });
    const g = groups.get(k);
    if (r.kind === 'allreduce_oneshot') g.one.set(r.bytes, r);
    else {
      if (!g.nccl.has(r.env || 'default')) g.nccl.set(r.env || 'default', new Map());
      g.nccl.get(r.env || 'default').set(r.bytes, r);
    }
  }
  for (const g of [...groups.values()].sort((a, b) => (b.r.ranks || 0) - (a.r.ranks || 0))) {
    for (const env of g.nccl.size ? [...g.nccl.keys()] : [null]) {
      const nm = env ? g.nccl.get(env) : new Map();
      const tb = t.appendChild(el('tbody', 0, el('tr', 'group-row', el('th', { colspan: 4 }, arName(g.r) + ', ' + (env ? 'NCCL env ' + env : 'no NCCL measurement')))));
      for (const size of [...new Set([...nm.keys(), ...g.one.keys()])].sort((a, b) => a - b)) {
        const [ca, a] = arCell(nm.get(size));
        const [cb, b] = arCell(g.one.get(size));
        const x = a && b ? a / b : 0;
        tb.appendChild(el('tr', 0, el('td', 0, sizeLabel(size)), ca, cb, x ? el('td', { class: 'num ' + (x > 1.005 ? 'faster' : x < 0.995 ? 'slower' : ''),
          title: 'NCCL time / one-shot time: above 1 the one-shot kernel is faster' }, x.toFixed(2) + '\u00d7') : el('td', 'num', '-')));
      }
    }
  }
}

const COLORS = ['#2e9e5b', '#2f6fde', '#d99400', '#c0392b', '#8e44ad', '#16a085', '#7f8c8d'];
function arChart(ar) {
  const box = clear($('allreduce-chart'));
  if (!ar.length) return;
  // the largest group; real ranks before virtual ones; eager before CUDA graph
  const score = (r) => (r.ranks || 0) * 4 + (r.virtual_ranks ? 0 : 2) + (r.graph ? 0 : 1);
  const pick = ar.reduce((a, r) => score(r) > score(a) ? r : a);
  const series = new Map();
  for (const r of ar) {
    if (arKey(r) !== arKey(pick) || r.outcome !== 'ok' || !r.us || !r.bytes) continue;
    const env = r.env && r.env !== 'default' ? ' ' + r.env : '';
    const name = r.kind === 'allreduce_oneshot' ? 'one-shot' + env : 'NCCL' + (env || ' default');
    if (!series.has(name)) series.set(name, []);
    series.get(name).push([r.bytes, r.us.median, r]);
  }
  if (!series.size) { box.appendChild(el('p', 'empty', 'No all-reduce of ' + arName(pick) + ' gave a number.')); return; }
  const pts = [].concat(...series.values());
  const xs = [...new Set(pts.map((p) => p[0]))];
  const x0 = Math.log2(Math.min(...xs));
  const x1 = Math.max(Math.log2(Math.max(...xs)), x0 + 1);
  const ymax = Math.max(...pts.map((p) => p[1])) || 1;
  const raw = ymax / 4;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = mag * [1, 2, 5, 10].find((f) => f * mag >= raw);
  const ytop = Math.ceil(ymax / step) * step;
  const W = 640; const H = 260; const L = 54; const R = 14; const T = 12; const B = 36;
  const X = (b) => (L + (Math.log2(b) - x0) / (x1 - x0) * (W - L - R)).toFixed(1);
  const Y = (u) => (T + (1 - u / ytop) * (H - T - B)).toFixed(1);
  const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'All-reduce time per size, ' + arName(pick) });
  for (let v = 0; v <= ytop + step / 2; v += step) {
    s.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: Y(v), y2: Y(v) }),
      svg('text', { x: L - 6, y: +Y(v) + 4, 'text-anchor': 'end' }, +v.toPrecision(6)));
  }
  for (const b of xs) {
    s.append(svg('line', { class: 'grid', x1: X(b), x2: X(b), y1: T, y2: H - B }),
      svg('text', { x: X(b), y: H - B + 15, 'text-anchor': 'middle' }, sizeLabel(b)));
  }
  const my = (T + H - B) / 2;
  s.append(svg('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, 'size per rank (log scale)'),
    svg('text', { x: 12, y: my, 'text-anchor': 'middle', transform: 'rotate(-90 12 ' + my + ')' }, 'us per all-reduce'),
    svg('path', { class: 'axis', fill: 'none', d: 'M' + L + ' ' + T + 'V' + (H - B) + 'H' + (W - R) }));
  const legend = el('div', 'chart-legend');
  const names = [...series.keys()].sort((a, b) => (b[0] === 'o') - (a[0] === 'o') || a.localeCompare(b));
  let k = 2;
  for (const name of names) {
    const color = name === 'one-shot' ? COLORS[0] : name === 'NCCL default' ? COLORS[1] : COLORS[k++ % COLORS.length];
    const ps = series.get(name).sort((a, b) => a[0] - b[0]);
    s.appendChild(svg('polyline', { class: 'series', 'data-series': name, stroke: color, 'stroke-dasharray': / .*=/.test(name) ? '7 4' : null, points: ps.map((p) => X(p[0]) + ',' + Y(p[1])).join(' ') }));
    for (const [b, u, r] of ps) {
      s.appendChild(svg('circle', { cx: X(b), cy: Y(u), r: 3, fill: color },
        svg('title', 0, name + ', ' + sizeLabel(b) + ': ' + u.toFixed(2) + ' us (busbw ' + num(r.bus_gbps, 1) + ' GB/s)')));
    }
    const sw = el('i');
    sw.style.background = color;
    legend.appendChild(el('span', 0, sw, name));
  }
  box.append(el('p', 'note', arName(pick) + ': time per all-reduce, lower is better.'), s, legend);
}
