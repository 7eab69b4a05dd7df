/* The Plan tab: the form built from GET /api/v1/plan/fields, the plan with its memory bars,
 * reasons and commands. */
'use strict';
/* == plan == */
// The plan request's fields come from the library's one table (GET /api/v1/plan/fields):
// types, ranges, defaults and help. Only filled fields are sent, numbers as JSON numbers; a
// field the page has no input for gets one under "More options".
let FIELDS = [];
const SHARED_GROUP = 'plan'; // what launch shares with plan: every field but the model's source
const WEB_SKIPS = ['vllm_log']; // a file on the machine that plans: CLI and Python only
async function loadFields() {
  try {
    FIELDS = ((await api('GET', '/api/v1/plan/fields')) || {}).fields || [];
  } catch (e) { FIELDS = []; showError('plan-error', 'plan fields: ' + errText(e)); }
  FIELDS = FIELDS.filter((f) => !WEB_SKIPS.includes(f.name));
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
