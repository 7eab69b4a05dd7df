/* peerscope web, the dashboard's front end (docs/web-api.yaml): shared state, DOM helpers,
 * formatting, the session and the API, tabs. The page loads base.js, machine.js, bandwidth.js,
 * plan.js, run.js, then app.js, as classic scripts sharing their top-level names. Plain DOM:
 * strings from the server only ever reach textContent or setAttribute, never innerHTML. */
'use strict';
const $ = (id) => document.getElementById(id);
const TABS = ['machine', 'bandwidth', 'plan', 'run', 'diagnose'];
const LOG_MAX = 2000;
const ACTIVE = ['starting', 'ready', 'stopping'];
const S = { report: null, bench: null, pairs: new Map(), chosen: new Set(), sel: null, job: false, jobT: 0,
  launch: null, launchT: 0, docStale: true, svgGen: 0, svgUrl: null, es: null };

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

/* == session and API ==
 * The session is an HttpOnly cookie the server set when the start-up URL (?token=) was opened,
 * or when the token box posted the token: this script never holds or stores the token. */
async function login(token) {
  const res = await fetch('/api/v1/session', { method: 'POST', cache: 'no-store', credentials: 'same-origin',
    headers: { 'X-Peerscope-Token': token, 'Content-Type': 'application/json' }, body: '{}' });
  if (!res.ok) throw new Error(res.status === 401 ? 'wrong token' : 'HTTP ' + res.status);
}
function askToken(msg) {
  $('token-box').hidden = false;
  showError('global-error', msg);
}

async function api(method, path, body, type) {
  const opts = { method, headers: {}, cache: 'no-store', credentials: 'same-origin' };
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
    if (res.status === 401) askToken('Not logged in: open the URL that peerscope web printed, or enter its token.');
    else if (res.status === 403) showError('global-error', 'Refused (403): ' + msg);
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
