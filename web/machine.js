/* The Machine tab: GPU cards, the verified P2P matrix and its cell details; the background
 * jobs (verify, bench) and their progress strip. */
'use strict';
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
