/* The Run tab (launch with the plan, the live log, stop), the Diagnose tab, uploads. */
'use strict';
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
  // Same origin: EventSource sends the session cookie
  const es = new EventSource('/api/v1/launch/log');
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
