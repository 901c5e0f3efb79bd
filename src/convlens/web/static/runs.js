// 3. Runs: the runs folder as a table; open one, or two side by side; resume an interrupted one.
import { resumeRun } from './train.js';
import { api, bus, el, pct, recipeText, say, thousands } from './util.js';

const $ = (id) => document.getElementById(id);
const state = { runs: [], selected: [], details: new Map() };

export function initRuns() {
  bus.addEventListener('runs-changed', refresh);
  document.addEventListener('tab-shown', (event) => {
    if (event.detail === 'runs') refresh();
  });
  refresh();
}

/** Open a run from another tab (after training). */
export function openRun(name) {
  state.selected = [name];
  state.details.delete(name);
  refresh();
}

async function refresh() {
  try {
    const listing = await api('/api/runs');
    state.runs = listing.runs;
    $('r-dir').textContent = listing.runs_dir;
    state.selected = state.selected.filter((name) => state.runs.some((r) => r.name === name));
    drawTable();
    await drawDetails();
  } catch (error) {
    $('r-detail').replaceChildren(el('p', { class: 'message', text: error.message }));
  }
}

function drawTable() {
  const body = $('r-table').querySelector('tbody');
  body.replaceChildren();
  $('r-empty').hidden = state.runs.length > 0;
  for (const run of state.runs) {
    const row = el(
      'tr',
      { class: state.selected.includes(run.name) ? 'selected' : '', dataset: { name: run.name }, onclick: () => toggle(run.name) },
      el('td', { class: 'name', text: run.name }),
      el('td', { text: run.model || '–' }),
      el('td', {}, el('span', { class: `badge ${run.status}`, text: run.status, title: run.message || '' }), run.resumable ? ' ' : null, resumeButton(run)),
      el('td', { class: 'num', text: run.epochs ? `${run.epochs_done} / ${run.epochs}` : '–' }),
      el('td', { class: 'num train', text: pct(run.train_accuracy) }),
      el('td', { class: 'num test', text: pct(run.test_accuracy) }),
      el('td', { class: 'num', text: thousands(run.params) }),
      el('td', { class: 'num', text: run.seconds_per_epoch ? run.seconds_per_epoch.toFixed(1) : '–' }),
      el('td', {}, run.dataset || '–', run.is_sample ? el('span', { class: 'sample-flag', text: ' (10% sample)' }) : null),
    );
    body.append(row);
  }
}

/** "Resume" for an interrupted run with a completed epoch: on to its planned epochs, watched in Train. */
function resumeButton(run) {
  if (!run.resumable) return null;
  const click = async (event) => {
    event.stopPropagation(); // not a click on the row
    say($('r-message'), '');
    try {
      await resumeRun(run.name);
      location.hash = '#train';
    } catch (error) {
      say($('r-message'), error.message);
    }
  };
  return el('button', { type: 'button', class: 'secondary resume', title: 'continue from its last completed epoch', onclick: click }, 'Resume');
}

function toggle(name) {
  if (state.selected.includes(name)) state.selected = state.selected.filter((n) => n !== name);
  else state.selected = [...state.selected, name].slice(-2); // at most two, side by side
  drawTable();
  drawDetails();
}

async function drawDetails() {
  const box = $('r-detail');
  const names = [...state.selected];
  try {
    const details = await Promise.all(names.map(detail));
    if (names.join() !== state.selected.join()) return;
    box.replaceChildren(...details.map(card));
    verdict(details);
  } catch (error) {
    box.replaceChildren(el('p', { class: 'message', text: error.message }));
  }
}

async function detail(name) {
  const run = state.runs.find((r) => r.name === name);
  const cached = state.details.get(name);
  // Finished runs do not change; a running one is read again.
  if (cached && run && run.status === cached.status && run.epochs_done === cached.epochs_done) return cached;
  const fresh = await api(`/api/runs/${name}`);
  state.details.set(name, fresh);
  return fresh;
}

function verdict(details) {
  const box = $('r-verdict');
  const [a, b] = details;
  if (!b || a.test_accuracy == null || b.test_accuracy == null) {
    box.hidden = true;
    return;
  }
  const [win, lose] = a.test_accuracy >= b.test_accuracy ? [a, b] : [b, a];
  const points = (100 * (win.test_accuracy - lose.test_accuracy)).toFixed(2);
  const speed = win.seconds_per_epoch && lose.seconds_per_epoch ? win.seconds_per_epoch / lose.seconds_per_epoch : null;
  // Two numbers alone cannot say which model is better: that takes a paired test on the
  // same test images (McNemar's, as convlens compare runs it), so no winner is named here.
  box.replaceChildren(
    el('b', { text: win.name }), ` ${pct(win.test_accuracy, 2)} and `, el('b', { text: lose.name }),
    ` ${pct(lose.test_accuracy, 2)} on their test sets: ${points} points apart`,
    speed ? `; ${win.name} takes ${speed.toFixed(1)}× the time per epoch. ` : '. ',
    'Whether the gap is more than noise takes a paired test on the same test images: ',
    el('code', { text: 'convlens compare MODEL MODEL' }), ' trains both alike and decides with McNemar\'s exact test.',
  );
  box.hidden = false;
}

function card(run) {
  const metrics = run.metrics || {};
  const gap = metrics.overfit_gap;
  const figures = [];
  if (run.files && run.files.curves) figures.push(el('img', { class: 'figure', src: `${run.files.curves}?v=${run.epochs_done}`, alt: `learning curves of ${run.name}` }));
  if (run.files && run.files.confusion) figures.push(el('img', { class: 'figure', src: `${run.files.confusion}?v=${run.epochs_done}`, alt: `confusion matrix of ${run.name}` }));
  if (!figures.length) figures.push(el('p', { class: 'note', text: 'The curves and the confusion matrix are drawn when the run ends.' }));
  return el(
    'article',
    { class: 'card run-card' },
    el('h2', {}, run.name, el('span', { class: `badge ${run.status}`, text: run.status }), resumeButton(run)),
    run.message ? el('p', { class: 'note', text: run.message }) : null,
    run.train ? el('p', { class: 'note recipe', text: recipeLine(run) }) : null,
    el('div', { class: 'spec', text: run.spec || '' }),
    el('div', { class: 'kpis' },
      kpi('Test accuracy', pct(run.test_accuracy, 2), 'test'),
      kpi('Train accuracy', pct(run.train_accuracy, 2), 'train'),
      kpi('Train − test', gap == null ? '–' : `${(100 * gap).toFixed(1).replace(/^-0\.0$/, '0.0')} pts`),
      kpi('Epochs', run.epochs ? `${run.epochs_done} / ${run.epochs}` : '–'),
      kpi('Seconds / epoch', run.seconds_per_epoch ? run.seconds_per_epoch.toFixed(1) : '–'),
      kpi('Parameters', thousands(run.params))),
    ...figures,
    layersTable(run.summary),
    run.summary_text ? el('details', {}, el('summary', { text: 'Why each shape is what it is (summary.txt)' }), el('pre', { text: run.summary_text })) : null,
  );
}

/** Which preset the model is and whose recipe it trained with, then the recipe itself. */
function recipeLine(run) {
  const model = run.preset ? `preset ${run.preset}` : 'its own layers';
  let recipe = "recipe from the lesson's defaults";
  if (!run.recipe_recorded) recipe = 'recipe (its starting preset not recorded: an older run)';
  else if (run.recipe) recipe = `recipe from ${run.recipe}`;
  return `${model} · ${recipe}: ${recipeText(run.train)}`;
}

function kpi(label, value, kind = '') {
  return el('div', { class: `kpi ${kind}` }, el('span', { class: 'k', text: label }), el('span', { class: 'v', text: value }));
}

function layersTable(summary) {
  if (!summary) return null;
  const shape = (s) => (s.length === 3 ? `(None, ${s[1]}, ${s[2]}, ${s[0]})` : `(None, ${s.join(', ')})`);
  return el(
    'table',
    { class: 'layers-table' },
    el('thead', {}, el('tr', {}, el('th', { text: 'Layer (type)' }), el('th', { text: 'Output shape' }), el('th', { class: 'num', text: 'Param #' }))),
    el('tbody', {}, ...summary.layers.map((l) => el('tr', {}, el('td', { text: `${l.name} (${l.type})` }), el('td', { text: shape(l.output_shape) }), el('td', { class: 'num', text: thousands(l.params) })))),
    el('tfoot', {}, el('tr', {}, el('td', { text: 'Total' }), el('td'), el('td', { class: 'num', text: thousands(summary.total_params) }))),
  );
}

