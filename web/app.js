/* peerscope web: the dashboard's front end (docs/web-api.yaml). Plain DOM: strings from the
 * server only ever reach textContent or setAttribute, never innerHTML. */
'use strict';
(function () {
const $ = (id) => document.getElementById(id);
const TABS = ['machine', 'bandwidth', 'plan', 'run', 'diagnose'];
const TOKEN_KEY = 'peerscope-token';
const LOG_MAX = 2000;
const ACTIVE = ['starting', 'ready', 'stopping'];
const S = { report: null, bench: null, pairs: new Map(), chosen: new Set(), sel: null, job: false, jobT: 0,
  launch: null, launchT: 0, docStale: true, svgGen: 0, svgUrl: null, es: null };
let token = '';
let metaToken = false;

/* == DOM helpers: el(tag, props or class name, ...children) == */
function mk(e, props, kids) {
  if (typeof props === 'string') props = { class: props };
  for (const k in props || {}) {
    const v = props[k];
    if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  return e;
}
const el = (tag, props, ...kids) => mk(document.createElement(tag), props, kids);
const svg = (tag, props, ...kids) => mk(document.createElementNS('http://www.w3.org/2000/svg', tag), props, kids);
const nil = (v) => v === null || v === undefined;
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
function setText(id, s) { $(id).textContent = s; }
function showError(id, msg) { const e = $(id); e.textContent = msg || ''; e.hidden = !msg; }
function dlRows(dl, rows) {
  for (const [k, v] of rows) if (!nil(v) && v !== '' && v !== false) dl.append(el('dt', 0, k), el('dd', 0, v));
  return dl;
}
function table(t, heads) {
  clear(t).appendChild(el('thead', 0, el('tr', 0, heads.map((h) => h[0] === '#' ? el('th', 'num', h.slice(1)) : el('th', 0, h)))));
  return t.appendChild(el('tbody'));
}
const badge = (cls, text, props) => el('span', Object.assign({ class: 'badge ' + cls }, props), text);
const link = (href) => el('a', { href, rel: 'noreferrer', target: '_blank' }, href);

/* == formatting == */
const gib = (b) => nil(b) ? '?' : (b / 1073741824).toFixed(1) + ' GiB';
const num = (v, d) => typeof v === 'number' && isFinite(v) ? v.toFixed(d) : '-';
const plural = (n, w) => n + ' ' + w + (n === 1 ? '' : 's');
function sizeLabel(b) {
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (b >= 1024 && b % 1024 === 0 && i < 3) { b /= 1024; i++; }
  return b + ' ' + u[i];
}

/* == token and API == */
function initToken() {
  const m = document.querySelector('meta[name="peerscope-token"]');
  const t = m ? (m.getAttribute('content') || '').trim() : '';
  if (t && t !== '{{TOKEN}}') { token = t; metaToken = true; return; }
  try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { token = ''; }
  $('token-box').hidden = false;
  $('token-input').value = token;
}
function authHeaders() { return token ? { 'X-Peerscope-Token': token } : {}; }

async function api(method, path, body, type) {
  const opts = { method, headers: authHeaders(), cache: 'no-store', credentials: 'same-origin' };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = type || 'application/json';
    opts.body = body === undefined ? '{}' : typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try { res = await fetch(path, opts); } catch (e) { throw new Error('cannot reach the peerscope server'); }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const msg = data && typeof data.error === 'string' ? data.error : 'HTTP ' + res.status;
    if (res.status === 401 || res.status === 403) {
      $('token-box').hidden = false;
      showError('global-error', 'Refused (' + res.status + '): ' + msg + '. Enter the token that peerscope web printed.');
    }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return data;
}
const errText = (e) => e && e.message ? e.message : String(e);

/* == tabs == */
function showTab(name, setHash) {
  if (TABS.indexOf(name) < 0) name = 'machine';
  for (const t of TABS) {
    $('tab-' + t).setAttribute('aria-selected', String(t === name));
    $('panel-' + t).classList.toggle('active', t === name);
  }
  if (setHash && location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  if (name === 'diagnose' && S.docStale && S.report) loadDoctor();
  if (name === 'run') launchUses();
}
const activeTab = () => TABS.find((t) => $('panel-' + t).classList.contains('active'));

/* == machine == */
async function loadTopology() {
  try {
    renderReport(await api('GET', '/api/v1/topology'));
    showError('global-error', '');
  } catch (e) { showError('global-error', 'Could not load the topology: ' + errText(e)); }
}

function renderReport(rep) {
  S.report = rep;
  S.bench = rep.bench || null;
  S.pairs = new Map((rep.pairs || []).map((p) => [p.from + '-' + p.to, p]));
  renderSource(rep);
  renderGpus(rep.gpus || []);
  renderMatrix(rep.gpus || []);
  renderBench();
  updateButtons();
  S.docStale = true;
  if (activeTab() === 'diagnose') loadDoctor();
}

function renderSource(rep) {
  const src = rep.source || {};
  const drv = rep.driver || {};
  const ver = rep.verification || {};
  const machine = src.machine || (rep.host || {}).hostname || 'unnamed machine';
  setText('machine-name', machine);
  const kind = src.kind === 'live' ? 'Live: this machine\'s GPUs'
    : src.kind === 'fixture' ? (/example/i.test(src.origin || '') ? 'The bundled example machine' : 'Fixture') + ' (SIMULATED: fake drivers, no real GPU)'
      : 'Imported file: nothing was tested here';
  const bits = [];
  if (drv.version) bits.push('driver ' + drv.version);
  if (drv.cuda_driver_version) bits.push('CUDA ' + Math.floor(drv.cuda_driver_version / 1000) + '.' + Math.floor(drv.cuda_driver_version % 1000 / 10));
  bits.push(ver.ran ? 'P2P verified by real transfers' + (ver.cache_used ? ' (some from the cache)' : '') : 'not verified: amber cells are only the driver\'s claim');
  if (ver.hang_workers) bits.push(plural(ver.hang_workers, 'worker') + ' killed at a deadline');
  if (rep.cuda_visible_devices) bits.push('CUDA_VISIBLE_DEVICES=' + rep.cuda_visible_devices);
  mk(clear($('source-note')), 0, [el('strong', 0, kind), ' \u2014 ' + machine,
    src.origin && src.origin !== 'upload' ? [' \u2014 ', el('code', 0, src.origin)] : null, '. ' + bits.join('; ') + '.']);
}

function pcieText(p) {
  p = p || {};
  if (!p.gen_current && !p.width_current && !p.gen_max && !p.width_max) return 'PCIe link unknown';
  const cur = 'Gen' + (p.gen_current || '?') + ' x' + (p.width_current || '?');
  const max = 'Gen' + (p.gen_max || '?') + ' x' + (p.width_max || '?');
  return 'PCIe ' + cur + (cur !== max ? ' (max ' + max + ')' : '');
}

function renderGpus(gpus) {
  const list = clear($('gpu-list'));
  if (!gpus.length) list.appendChild(el('p', 'empty', 'No GPUs in this report.'));
  for (const g of gpus) {
    const total = g.memory_total_bytes;
    const free = g.memory_free_bytes;
    const mem = nil(total) ? 'Memory unknown' : nil(free) ? 'Memory ' + gib(total) + ' (use unknown)'
      : 'Memory ' + gib(total - free) + ' used of ' + gib(total);
    const card = el('div', { class: 'gpu', 'data-gpu': g.index },
      el('div', 'gpu-title', el('span', 'idx', g.index), g.name || 'unknown GPU'), el('div', 'line mem', mem));
    if (total && !nil(free)) {
      const bar = el('span');
      bar.style.width = Math.max(0, Math.min(100, (total - free) / total * 100)).toFixed(1) + '%';
      card.appendChild(el('div', { class: 'mem-bar', title: mem }, bar));
    }
    card.append(el('div', 'line pcie', pcieText(g.pcie)), el('div', 'line numa',
      ['NUMA ' + (nil(g.numa_node) ? '?' : g.numa_node), g.compute_capability && 'CC ' + g.compute_capability, g.pci_bus_id].filter(Boolean).join(' \u00b7 ')));
    const lc = g.local_copy || {};
    if (lc.verdict && lc.verdict !== 'ok' && lc.verdict !== 'not_run') {
      card.appendChild(el('div', 'line', badge('bad', 'local copy ' + lc.verdict), lc.reason ? ' ' + lc.reason : ''));
    }
    list.appendChild(card);
  }
  applyChosen();
}

function pairClass(p) {
  if (p.verdict === 'ok') return 'verified';
  if (['corrupt', 'error', 'hang'].indexOf(p.verdict) >= 0) return 'failed';
  if (p.verdict === 'not_run' && p.claims && p.claims.read === 'OK' && p.claims.write === 'OK') return 'claimed';
  return 'unsupported';
}
const WORD = { verified: 'verified', failed: 'FAILED', unsupported: 'no P2P / not tested', claimed: 'claimed, not verified' };
const getPair = (from, to) => S.pairs.get(from + '-' + to) || { from, to, verdict: 'not_run', link: null, claims: null };

function benchFind(pred) {
  let best = null;
  for (const r of (S.bench && S.bench.results) || []) {
    if (pred(r) && (!best || (best.outcome !== 'ok' && r.outcome === 'ok') ||
        (r.outcome === best.outcome && (r.bytes || 0) > (best.bytes || 0)))) best = r;
  }
  return best;
}
const copyResult = (from, to, p2p) => benchFind((r) => r.kind === 'copy_ce' && r.p2p === p2p && !r.bidirectional && r.src === from && r.dst === to);
const resultText = (r) => r.outcome === 'ok' && r.gbps ? num(r.gbps, 1) + ' GB/s' : r.outcome + (r.reason ? ': ' + r.reason : '');

function pairRows(p) {
  const on = copyResult(p.from, p.to, true);
  const off = copyResult(p.from, p.to, false);
  const nv = p.nvlink;
  const c = p.claims;
  return [
    ['Link', (p.link || 'unknown') + (p.link_class && p.link_class !== 'nvlink' ? ' (' + p.link_class + ')' : '') +
      (nv && nv.count ? ' \u2014 ' + plural(nv.count, 'NVLink') + (nv.version ? ', version ' + nv.version : '') + (nv.nvswitch ? ', through NVSwitch' : '') : '')],
    ['Driver claims', c ? ['read', 'write', 'nvlink', 'atomics'].map((k) => k + ' ' + (c[k] || '?')).join(', ') : 'not read'],
    ['cuDeviceCanAccessPeer', nil(p.cuda_can_access) ? 'not asked' : p.cuda_can_access ? 'yes' : 'no'],
    ['Verdict', p.verdict + (p.from_cache ? ' (from the verification cache)' : '')],
    ['Reason', p.reason],
    ['Error', p.error_name],
    ['Corrupt byte', p.corrupt && 'offset ' + p.corrupt.offset + ': expected 0x' + p.corrupt.expected.toString(16) + ', saw 0x' + p.corrupt.seen.toString(16)],
    ['Verification copy', nil(p.copy_us) ? null : num(p.copy_us, 1) + ' us'],
    ['Measured bandwidth', on ? resultText(on) + ' (copy engine, P2P on, one direction, ' + sizeLabel(on.bytes || 0) + ')' : S.bench ? 'not measured' : 'no benchmark yet'],
    ['Through host memory', off && resultText(off) + ' (P2P off)'],
  ];
}
function cellTitle(p) {
  return ['GPU ' + p.from + ' \u2192 GPU ' + p.to + ': ' + WORD[pairClass(p)]]
    .concat(pairRows(p).filter((r) => !nil(r[1]) && r[1] !== false).map((r) => r[0] + ': ' + r[1])).join('\n');
}

function renderMatrix(gpus) {
  const t = clear($('matrix'));
  if (!gpus.length) { showDetail(null); return; }
  const th = (cls, g) => el('th', { class: cls, scope: cls === 'col-h' ? 'col' : 'row', 'data-gpu': g.index, title: g.name }, 'GPU ' + g.index);
  t.appendChild(el('thead', 0, el('tr', 0, el('th', { class: 'corner', title: 'rows = source GPU, columns = destination' }, 'from \\ to'),
    gpus.map((g) => th('col-h', g)))));
  const body = t.appendChild(el('tbody'));
  for (const a of gpus) {
    const tr = body.appendChild(el('tr', 0, th('row-h', a)));
    for (const b of gpus) {
      if (a.index === b.index) {
        const lc = a.local_copy || {};
        tr.appendChild(el('td', { class: 'self' + (['corrupt', 'error', 'hang'].indexOf(lc.verdict) >= 0 ? ' local-failed' : ''),
          'data-gpu': a.index, title: 'GPU ' + a.index + ' itself: local copy ' + (lc.verdict || '?') + (lc.reason ? ' (' + lc.reason + ')' : '') }, 'X'));
        continue;
      }
      const p = getPair(a.index, b.index);
      tr.appendChild(el('td', { class: 'cell ' + pairClass(p), 'data-from': a.index, 'data-to': b.index, 'data-verdict': p.verdict,
        tabindex: 0, title: cellTitle(p) }, p.link || '?'));
    }
  }
  applyChosen();
  const s = S.sel;
  const cell = s && t.querySelector('td.cell[data-from="' + s.from + '"][data-to="' + s.to + '"]');
  if (cell) selectCell(cell); else showDetail(null);
}

function showDetail(content) {
  const d = clear($('cell-detail'));
  d.classList.toggle('filled', !!content);
  if (content) d.appendChild(content);
  else { d.textContent = 'Rows copy to columns. Hover or click a cell for the driver\'s claim, the verdict, the reason and the measured bandwidth.'; S.sel = null; }
}
function selectCell(td) {
  for (const c of $('matrix').querySelectorAll('td.selected')) c.classList.remove('selected');
  td.classList.add('selected');
  const p = getPair(Number(td.getAttribute('data-from')), Number(td.getAttribute('data-to')));
  const cls = pairClass(p);
  const f = document.createDocumentFragment();
  f.append(el('strong', 0, 'GPU ' + p.from + ' \u2192 GPU ' + p.to + ' '),
    badge({ verified: 'ok', failed: 'bad', claimed: 'warn', unsupported: '' }[cls], WORD[cls]), dlRows(el('dl'), pairRows(p)));
  showDetail(f);
  S.sel = { from: p.from, to: p.to };
}

function applyChosen() {
  for (const e of document.querySelectorAll('#matrix th[data-gpu], #gpu-list .gpu')) {
    e.classList.toggle('chosen', S.chosen.has(Number(e.getAttribute('data-gpu'))));
  }
}
function updateButtons() {
  const imported = !!(S.report && S.report.source && S.report.source.kind === 'file');
  for (const id of ['verify-btn', 'bench-btn']) {
    $(id).disabled = S.job || imported || !S.report;
    $(id).title = imported ? 'An imported topology: there are no GPUs here to test.' : S.job ? 'A job is running' : '';
  }
}

/* == background jobs (verify, bench) == */
function renderJob(j) {
  const bar = $('job-bar');
  const what = { bench: 'Benchmark', verify: 'Verification' }[j.kind] || 'Job';
  $('job-progress').hidden = false;
  $('job-progress').classList.toggle('failed', j.state === 'failed');
  if (j.state === 'running' && j.total > 0) { bar.max = j.total; bar.value = Math.min(j.done, j.total); }
  else if (j.state === 'running') bar.removeAttribute('value');
  else { bar.max = 1; bar.value = j.state === 'done' ? 1 : 0; }
  setText('job-label', j.state === 'running' ? what + ': ' + (j.label || 'running') + (j.total > 0 ? ' (' + j.done + '/' + j.total + ')' : '')
    : j.state === 'done' ? what + ' done.' : j.state === 'failed' ? what + ' failed: ' + (j.error || 'unknown error') : 'idle');
  /* A finished job's strip goes after a moment; a failure stays until the next job. */
  clearTimeout(S.jobHide);
  if (j.state === 'done') S.jobHide = setTimeout(() => { $('job-progress').hidden = true; }, 4000);
}
async function startJob(path, body) {
  if (S.job) return;
  S.job = true;
  updateButtons();
  try {
    renderJob(await api('POST', path, body));
    pollJob();
  } catch (e) {
    S.job = false;
    updateButtons();
    renderJob({ kind: path.endsWith('bench') ? 'bench' : 'verify', state: 'failed', error: 'could not start: ' + errText(e) });
  }
}
function pollJob() {
  clearTimeout(S.jobT);
  S.jobT = setTimeout(async () => {
    let j;
    try { j = await api('GET', '/api/v1/job'); } catch (e) { setText('job-label', 'Lost the job: ' + errText(e) + ' (retrying)'); pollJob(); return; }
    renderJob(j);
    if (j.state === 'running') { pollJob(); return; }
    S.job = false;
    await loadTopology();
    updateButtons();
  }, 500);
}
async function loadJob() {
  try {
    const j = await api('GET', '/api/v1/job');
    if (j.state === 'running') { S.job = true; updateButtons(); renderJob(j); pollJob(); }
  } catch (e) { /* the topology load reports errors */ }
}

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
    const res = await fetch('/api/v1/bench?format=svg', { headers: authHeaders(), cache: 'no-store', credentials: 'same-origin' });
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

/* == plan == */
// The plan request's fields come from the library's one table (GET /api/v1/plan/fields):
// types, ranges, defaults and help. Only filled fields are sent, numbers as JSON numbers; a
// field the page has no input for gets one under "More options".
let FIELDS = [];
const SHARED_GROUP = 'plan'; // what launch shares with plan: every field but the model's source
async function loadFields() {
  try {
    FIELDS = ((await api('GET', '/api/v1/plan/fields')) || {}).fields || [];
  } catch (e) { FIELDS = []; showError('plan-error', 'plan fields: ' + errText(e)); }
  for (const f of FIELDS) {
    let input = $(f.name);
    if (!input) {
      input = el('input');
      input.id = f.name;
      input.type = f.type === 'integer' || f.type === 'number' ? 'number' : 'text';
      $('plan-more').appendChild(el('label', 0, f.flag.replace(/^--/, ''), input));
    }
    input.title = f.help + (f.default !== null ? ' (default ' + f.default + ')' : '');
    if (input.tagName === 'INPUT' && f.min !== null) { input.min = f.min; input.max = f.max; }
    if (input.tagName === 'INPUT' && f.default !== null) input.placeholder = f.default;
  }
}

function readField(f, out, errors) {
  const input = $(f.name);
  const key = f.name;
  if (!input) return;
  const raw = String(input.value || '').trim();
  if (input.validity && input.validity.badInput) return errors.push(key + ': not a number');
  if (raw === '') return;
  if (f.type === 'string') { out[key] = raw; return; }
  if (f.type === 'enum') {
    if (f.choices.indexOf(raw) < 0) return errors.push(key + ': ' + f.expect);
    out[key] = raw;
    return;
  }
  if (f.type === 'boolean') { out[key] = raw === 'true' || raw === 'on'; return; }
  if (f.type === 'gpus') {
    const v = raw.split(/[\s,]+/).filter(Boolean).map(Number);
    if (v.some((n) => !Number.isInteger(n) || n < f.min || n > f.max)) return errors.push(key + ': GPU indexes such as 0,1,2,3');
    out[key] = v;
    return;
  }
  const n = Number(raw);
  if (!isFinite(n) || (f.type === 'integer' && !Number.isInteger(n)) || n < f.min || n > f.max) return errors.push(key + ': ' + f.expect);
  out[key] = n;
}
function collect(group) {
  const body = {};
  const errors = [];
  for (const f of FIELDS) if (!group || f.group === group) readField(f, body, errors);
  return { body, errors };
}

async function submitPlan(ev) {
  ev.preventDefault();
  showError('plan-error', '');
  const { body, errors } = collect(null);
  if (!FIELDS.some((f) => f.group === 'model' && f.name !== 'dtype' && f.name in body)) errors.unshift('Give a model directory, a weights size in GB or a number of parameters.');
  if (errors.length) { showError('plan-error', errors.join('\n')); return; }
  $('plan-btn').disabled = true;
  try { renderPlan(await api('POST', '/api/v1/plan', body)); } catch (e) { showError('plan-error', errText(e)); }
  $('plan-btn').disabled = false;
}

function renderPlan(resp) {
  const plan = resp.plan || resp;
  const m = plan.memory || {};
  const gpus = plan.gpus || [];
  $('plan-result').hidden = false;
  mk(clear($('plan-feasible')), { class: 'badge ' + (plan.feasible ? 'ok' : 'bad') }, [plan.feasible ? 'fits' : 'does not fit']);
  setText('plan-summary', plan.summary || '');
  setText('plan-gpus', (gpus.join(', ') || 'none') + ' \u00b7 TP=' + plan.tp + ' PP=' + plan.pp + (plan.replicas > 1 ? ' \u00b7 ' + plan.replicas + ' replicas' : ''));
  setText('plan-context', (plan.max_model_len ? plan.max_model_len + ' tokens \u00d7 ' + plural(plan.max_num_seqs || 1, 'sequence')
    : plan.feasible ? 'left to vLLM' : 'none fits') + (m.kv_tokens ? ' (KV room ' + m.kv_tokens + ' tokens)' : ''));
  S.chosen = new Set(plan.feasible ? gpus : []);
  applyChosen();
  renderMemory(plan, m);
  const ul = clear($('plan-reasons'));
  for (const r of plan.reasons || []) ul.appendChild(el('li', 0, r));
  const items = (plan.env || []).concat(plan.args || []);
  const tb = table($('plan-items'), ['Setting', 'Value', 'Why']);
  for (const x of items) tb.appendChild(el('tr', 0, el('td', 0, el('code', 0, x.name)), el('td', 0, el('code', 0, x.value)), el('td', 0, x.why)));
  $('plan-items').hidden = !items.length;
  const ab = table($('plan-alternatives'), ['#TP', '#PP', 'GPUs', 'Fits', 'Why']);
  for (const a of plan.alternatives || []) {
    ab.appendChild(el('tr', /^chosen/.test(a.why) ? 'is-chosen' : 0, el('td', 'num', a.tp), el('td', 'num', a.pp), el('td', 0, (a.gpus || []).join(',')),
      el('td', 0, badge(a.feasible ? 'ok' : 'bad', a.feasible ? 'yes' : 'no')), el('td', 0, a.why)));
  }
  setText('plan-shell', resp.shell || plan.command || '');
  setText('plan-yaml', resp.yaml || '');
  setText('plan-args', resp.args || '');
  launchUses();
}

function renderMemory(plan, m) {
  const box = clear($('memory-bars'));
  const budget = m.budget_bytes || 0;
  const w = m.weights_bytes || 0;
  const o = m.overhead_bytes || 0;
  const kv = m.kv_bytes || 0;
  const used = w + o + kv;
  for (const i of plan.gpus || []) {
    const g = (S.report && S.report.gpus[i]) || {};
    const all = Math.max(g.memory_total_bytes || 0, budget, used) || 1;
    const track = el('div', 'mtrack');
    const seg = (cls, bytes, what) => {
      if (bytes <= 0) return;
      const e = track.appendChild(el('span', { class: cls, title: what + ': ' + gib(bytes) }));
      e.style.width = (bytes / all * 100).toFixed(2) + '%';
    };
    seg('m-weights', w, 'weights');
    seg('m-overhead', o, 'overhead');
    seg('m-kv', kv, 'KV cache');
    seg('m-free', budget - used, 'unused budget');
    seg('m-reserved', all - Math.max(budget, used), 'outside vLLM\'s budget');
    if (budget > 0 && budget < all) {
      const cap = track.appendChild(el('span', { class: 'budget-cap' + (used > budget ? ' over' : ''), title: 'the budget ends here: ' + gib(budget) }));
      cap.style.left = (budget / all * 100).toFixed(2) + '%';
    }
    box.appendChild(el('div', { class: 'mrow', 'data-gpu': i }, el('div', { class: 'mlabel', title: g.name }, 'GPU ' + i), track));
  }
  setText('memory-note', 'Each GPU: ' + gib(w) + ' weights + ' + gib(o) + ' overhead + ' + gib(kv) + ' KV cache, of a ' + gib(budget) +
    ' budget (memory x ' + plan.gpu_memory_utilization + ')' + (used > budget ? ': over the budget by ' + gib(used - budget) : '') + '.');
}

async function copyPre(btn) {
  const pre = $(btn.getAttribute('data-copy'));
  const done = (msg) => { btn.textContent = msg; setTimeout(() => { btn.textContent = 'Copy'; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(pre.textContent); done('Copied'); return; } catch (e) { /* select instead */ }
  }
  const range = document.createRange();
  range.selectNodeContents(pre);
  getSelection().removeAllRanges();
  getSelection().addRange(range);
  let ok = false;
  try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
  done(ok ? 'Copied' : 'Selected: press Ctrl+C');
}

/* == run == */
function launchUses() {
  const { body } = collect(SHARED_GROUP);
  const keys = Object.keys(body);
  setText('launch-uses', keys.length ? keys.map((k) => k + '=' + body[k]).join(', ') : 'nothing set, the planner chooses.');
  $('launch-model').placeholder = $('model_dir').value.trim() || 'the Plan tab\'s model';
}

async function submitLaunch(ev) {
  ev.preventDefault();
  showError('launch-error', '');
  const { body, errors } = collect(SHARED_GROUP);
  const model = $('launch-model').value.trim() || $('model_dir').value.trim();
  if (model) body.model_dir = model; else errors.unshift('Give the model directory or Hugging Face id (here or in the Plan tab).');
  readField('launch-port', 'i', 'port', body, errors);
  if (body.port !== undefined && !(body.port >= 1 && body.port <= 65535)) errors.push('port: 1 to 65535');
  if (errors.length) { showError('launch-error', errors.join('\n')); return; }
  $('launch-btn').disabled = true;
  try {
    renderLaunch(await api('POST', '/api/v1/launch', body));
    openLog();
  } catch (e) {
    showError('launch-error', errText(e));
    renderLaunch(S.launch);
  }
}
async function stopLaunch() {
  showError('launch-error', '');
  $('stop-btn').disabled = true;
  try { renderLaunch(await api('POST', '/api/v1/stop')); } catch (e) { showError('launch-error', errText(e)); renderLaunch(S.launch); }
}
async function loadLaunch(stream) {
  try {
    const st = await api('GET', '/api/v1/launch');
    renderLaunch(st);
    if (stream && (st.state !== 'idle' || st.lines > 0)) openLog();
  } catch (e) { /* the topology load reports errors */ }
}

const tone = (s) => ({ ready: 'ok', ok: 'ok', failed: 'bad', starting: 'warn', stopping: 'warn', waiting: 'warn' })[s] || '';
function renderLaunch(st) {
  const active = !!st && ACTIVE.indexOf(st.state) >= 0;
  $('launch-btn').disabled = active;
  $('stop-btn').disabled = !active;
  if (!st) return;
  S.launch = st;
  mk(clear($('launch-state')), 0, [badge(tone(st.state), st.state, { 'data-state': st.state }),
    badge(tone(st.health), 'health ' + st.health, { 'data-health': st.health })]);
  const sm = st.summary || {};
  const car = sm.custom_all_reduce;
  const dl = dlRows(clear($('launch-summary')), [
    ['URL', st.url && (/^https?:\/\//i.test(st.url) ? link(st.url) : st.url)],
    ['PID', st.pid],
    ['Command', st.command && el('code', 0, st.command)],
    ['Exit code', st.exit_code],
    ['Error', st.error],
    ['Ready', sm.ready === undefined ? null : sm.ready ? 'yes' : 'not yet'],
    ['Custom all-reduce', car === true ? 'on' : car === false ? 'off' + (sm.custom_all_reduce_reason ? ': ' + sm.custom_all_reduce_reason : '') : null],
    ['NCCL transports', (sm.nccl_transports || []).join(', ')],
    ['KV cache', nil(sm.kv_cache_tokens) ? null : sm.kv_cache_tokens + ' tokens'],
    ['Max concurrency', nil(sm.max_concurrency) ? null : num(sm.max_concurrency, 2) + '\u00d7'],
    ['Failure', sm.failure],
    ['Suggestion', sm.suggestion],
    ['Log lines', st.lines],
  ]);
  if (st.state === 'idle' && !st.lines) clear(dl).appendChild(el('dd', 'empty', 'vLLM has not been launched.'));
  clearTimeout(S.launchT);
  if (active) S.launchT = setTimeout(() => loadLaunch(false), 2000);
}

function closeLog() { if (S.es) { S.es.close(); S.es = null; } }
function openLog() {
  closeLog();
  clear($('launch-log'));
  // EventSource cannot send headers: the server takes the token as ?token= on this route
  const es = new EventSource('/api/v1/launch/log' + (token ? '?token=' + encodeURIComponent(token) : ''));
  S.es = es;
  es.addEventListener('open', () => { if (S.es === es) clear($('launch-log')); });
  es.addEventListener('line', (e) => appendLog(e.data));
  es.addEventListener('message', (e) => appendLog(e.data));
  es.addEventListener('status', (e) => { try { renderLaunch(JSON.parse(e.data)); } catch (err) { /* a bad event */ } });
  es.addEventListener('error', () => {
    // The stream ends once vLLM exited and every line was sent: close it, or EventSource would
    // reconnect and replay the log; reopen only while vLLM still runs.
    if (S.es !== es) return;
    closeLog();
    const running = () => S.launch && ACTIVE.indexOf(S.launch.state) >= 0;
    if (running()) setTimeout(() => { if (!S.es && running()) openLog(); }, 2000);
  });
}
function appendLog(line) {
  const pre = $('launch-log');
  const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  pre.appendChild(document.createTextNode(line + '\n'));
  while (pre.childNodes.length > LOG_MAX) pre.removeChild(pre.firstChild);
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

/* == diagnose == */
async function loadDoctor() {
  S.docStale = false;
  const box = $('doctor');
  if (!box.firstChild) box.appendChild(el('p', 'empty', 'Loading...'));
  try { renderDoctor(await api('GET', '/api/v1/doctor')); } catch (e) {
    S.docStale = true;
    clear(box).appendChild(el('div', 'error', 'Could not run the diagnosis: ' + errText(e)));
  }
}
function renderDoctor(d) {
  const box = clear($('doctor'));
  const s = d.summary || {};
  box.appendChild(el('p', 'doctor-summary', el('strong', 0, d.machine || 'this machine'),
    ' (' + d.source + (d.origin ? ': ' + d.origin : '') + ')' + (d.verified ? ', verified by real transfers' : ', not verified') +
    ' \u2014 ' + plural(s.errors || 0, 'error') + ', ' + plural(s.warnings || 0, 'warning') + ', ' + plural(s.infos || 0, 'note') + '.'));
  if (!(d.findings || []).length) box.appendChild(el('p', 'empty', 'No findings: nothing stands in the way of P2P.'));
  for (const f of d.findings || []) {
    const sev = ['error', 'warning', 'info'].indexOf(f.severity) >= 0 ? f.severity : 'info';
    box.appendChild(el('div', { class: 'finding sev-' + sev, 'data-code': f.code },
      el('h4', 0, badge('sev-' + sev, sev), f.title, el('span', 'code-name', f.code)),
      dlRows(el('dl'), [['Evidence', f.evidence], ['Breaks', f.breaks], ['Fix', f.fix], ['GPUs', (f.gpus || []).join(', ')],
        ['More', /^https:\/\//i.test(f.link || '') ? link(f.link) : null]])));
  }
  box.appendChild(el('h3', 0, 'Checks'));
  const t = box.appendChild(el('div', 'table-wrap', el('table', { id: 'doctor-checks', class: 'data' }))).firstChild;
  const tb = table(t, ['Check', 'State', 'Note']);
  for (const c of d.checks || []) {
    tb.appendChild(el('tr', 0, el('td', 0, c.name), el('td', 0, badge({ ok: 'ok', finding: 'bad' }[c.state] || '', c.state)), el('td', 0, c.note)));
  }
}

/* == upload == */
async function upload() {
  showError('upload-error', '');
  const f = $('topology-file').files[0];
  if (!f) { showError('upload-error', 'Choose a file first.'); return; }
  if (f.size > 1048576) { showError('upload-error', f.name + ': over the 1 MiB limit.'); return; }
  $('upload-btn').disabled = true;
  try {
    const text = await f.text();
    let type = 'application/json';
    try { JSON.parse(text); } catch (e) { type = 'text/plain'; }
    const rep = await api('POST', '/api/v1/topology', text, type);
    S.chosen = new Set();
    S.sel = null;
    $('plan-result').hidden = true;
    renderReport(rep);
  } catch (e) { showError('upload-error', f.name + ': ' + errText(e)); }
  $('upload-btn').disabled = false;
}

/* == start == */
function on(id, ev, fn) { $(id).addEventListener(ev, fn); }
function wire() {
  for (const t of TABS) on('tab-' + t, 'click', () => showTab(t, true));
  addEventListener('hashchange', () => showTab(location.hash.slice(1), false));
  on('matrix', 'click', (e) => { const td = e.target.closest('td.cell'); if (td) selectCell(td); });
  on('matrix', 'keydown', (e) => {
    const td = (e.key === 'Enter' || e.key === ' ') && e.target.closest('td.cell');
    if (td) { e.preventDefault(); selectCell(td); }
  });
  on('verify-btn', 'click', () => startJob('/api/v1/verify'));
  on('bench-btn', 'click', () => startJob('/api/v1/bench', { quick: $('bench-quick').checked }));
  on('upload-btn', 'click', upload);
  on('plan-form', 'submit', submitPlan);
  on('plan-form', 'input', launchUses);
  on('launch-form', 'submit', submitLaunch);
  on('stop-btn', 'click', stopLaunch);
  on('doctor-refresh', 'click', loadDoctor);
  document.addEventListener('click', (e) => { const b = e.target.closest('.copy-btn'); if (b) copyPre(b); });
  on('token-box', 'submit', (e) => {
    e.preventDefault();
    token = $('token-input').value.trim();
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch (err) { /* storage off */ }
    showError('global-error', '');
    loadAll();
  });
  $('bench-svg').hidden = true;
  $('stop-btn').disabled = true;
  showDetail(null);
}

async function loadAll() {
  if (!token && !metaToken) {
    // off loopback every /api request needs the token: ask for it before anything
    showError('global-error', 'Enter the token that peerscope web printed at start.');
    return;
  }
  await Promise.all([loadTopology(), loadJob(), loadLaunch(true), loadFields()]);
}

initToken();
wire();
showTab(location.hash.slice(1) || 'machine', false);
updateButtons();
loadAll();
})();
