/* peerscope web: wiring and start-up; the rest of the page's code is in base.js, machine.js,
 * bandwidth.js, plan.js and run.js, loaded before this file. */
'use strict';
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
  on('token-box', 'submit', async (e) => {
    e.preventDefault();
    const input = $('token-input');
    try { await login(input.value.trim()); } catch (err) { showError('global-error', 'Log in: ' + errText(err)); return; }
    input.value = '';
    $('token-box').hidden = true;
    showError('global-error', '');
    loadAll();
  });
  $('bench-svg').hidden = true;
  $('stop-btn').disabled = true;
  showDetail(null);
}

async function loadAll() {
  await Promise.all([loadTopology(), loadJob(), loadLaunch(true), loadFields()]);
}

wire();
showTab(location.hash.slice(1) || 'machine', false);
updateButtons();
loadAll();
