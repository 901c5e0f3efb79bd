// 3. Runs: the runs folder as a table; open one, or two side by side; resume an interrupted one;
// download or delete one; open a cell of its confusion matrix to see those test images.
import { accuracyChart, floorOf } from './charts.js';
import { confusionMatrix } from './confusion.js';
import { resumeRun } from './train.js';
import { api, bus, el, pct, recipeText, say, thousands } from './util.js';

const $ = (id) => document.getElementById(id);
const state = { runs: [], selected: [], details: new Map() };

export function initRuns() {
  bus.addEventListener('runs-changed', refresh);
  bus.addEventListener('open-run', (event) => openRun(event.detail));
  $('r-import').addEventListener('change', importModel);
  document.addEventListener('tab-shown', (event) => {
    if (event.detail === 'runs') refresh();
  });
  refresh();
}

/** Open a run from another tab (the Train tab's "open", through the bus). */
function openRun(name) {
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
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('#r-table tr');
  const keep = focused ? focused.dataset.name : null;
  body.replaceChildren();
  $('r-empty').hidden = state.runs.length > 0;
  $('r-keys').hidden = state.runs.length === 0;
  for (const run of state.runs) {
    const chosen = state.selected.includes(run.name);
    const row = el(
      'tr',
      { class: chosen ? 'selected' : '', tabindex: '0', 'aria-selected': chosen ? 'true' : 'false', dataset: { name: run.name }, onclick: () => toggle(run.name), onkeydown: (event) => rowKey(event, run.name) },
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
  if (keep) {
    const again = body.querySelector(`tr[data-name="${CSS.escape(keep)}"]`);
    if (again) again.focus();
  }
}

/** Enter or Space opens (or closes) a run; the arrow keys move between rows. */
function rowKey(event, name) {
  if (event.target !== event.currentTarget) return; // a key on the Resume button inside
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    toggle(name);
  } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    event.preventDefault();
    const next = event.key === 'ArrowDown' ? event.currentTarget.nextElementSibling : event.currentTarget.previousElementSibling;
    if (next) next.focus();
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
  return el('button', { type: 'button', class: 'secondary resume', title: 'continue from its last completed epoch', onclick: click, onkeydown: (e) => e.stopPropagation() }, 'Resume');
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
    const floor = floorOf(details.map((d) => d.history || [])); // one y scale for both
    box.replaceChildren(...details.map((d) => card(d, floor)));
    verdict(details);
    overlay(details, floor);
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
  // Two numbers alone cannot say which model is better: that takes a paired test on the
  // same test images (McNemar's, as convlens compare runs it), so no winner is named here.
  box.replaceChildren(
    el('b', { text: win.name }), ` ${pct(win.test_accuracy, 2)} and `, el('b', { text: lose.name }),
    ` ${pct(lose.test_accuracy, 2)} on their test sets: ${points} points apart. `,
    'Whether the gap is more than noise takes a paired test on the same test images: ',
    el('code', { text: 'convlens compare MODEL MODEL' }), ' trains both alike and decides with McNemar\'s exact test. ',
    speedLine(win, lose),
  );
  box.hidden = false;
}

/** Seconds per epoch are compared only between runs that did the same work per epoch. */
function speedLine(win, lose) {
  if (!win.seconds_per_epoch || !lose.seconds_per_epoch) return '';
  const same = win.train_count === lose.train_count && win.train && lose.train && win.train.batch_size === lose.train.batch_size;
  if (!same) {
    return el('span', { class: 'note', text: `Their seconds per epoch are not compared: ${win.name} trained on ${thousands(win.train_count)} images an epoch at batch ${win.train ? win.train.batch_size : '?'}, ${lose.name} on ${thousands(lose.train_count)} at batch ${lose.train ? lose.train.batch_size : '?'}.` });
  }
  const ratio = win.seconds_per_epoch / lose.seconds_per_epoch;
  return el('span', { text: `${win.name} takes ${ratio.toFixed(1)}× the time per epoch of ${lose.name} (both ${thousands(win.train_count)} training images at batch ${win.train.batch_size}; timed on this computer when each ran, so a busy machine counts too).` });
}

/** Both runs' curves on one chart: the same axes, one solid and one dashed. */
function overlay(details, floor) {
  const box = $('r-overlay');
  const both = details.filter((d) => d.history && d.history.length);
  if (details.length < 2 || both.length < 2) {
    box.hidden = true;
    return;
  }
  const epochs = Math.max(...both.map((d) => d.epochs || d.history.length));
  box.replaceChildren(
    el('h2', { text: 'Both runs on one chart' }),
    el('div', { class: 'chart' }, accuracyChart({ series: both.map((d) => ({ name: d.name, history: d.history })), epochs, floor, label: `accuracy per epoch of ${both.map((d) => d.name).join(' and ')}` })),
  );
  box.hidden = false;
}

function card(run, floor) {
  const metrics = run.metrics || {};
  const gap = metrics.overfit_gap;
  const history = run.history || [];
  return el(
    'article',
    { class: 'card run-card', dataset: { name: run.name } },
    el('h2', {}, run.name, el('span', { class: `badge ${run.status}`, text: run.status }), resumeButton(run)),
    run.message ? el('p', { class: 'note', text: run.message }) : null,
    run.imported ? el('p', { class: 'note', text: `Imported from ${run.imported.file || 'a file'} (${run.imported.format || 'another framework'}) on ${run.imported.imported || 'an earlier day'}.` }) : null,
    run.train ? el('p', { class: 'note recipe', text: recipeLine(run) }) : null,
    el('div', { class: 'spec', text: run.spec || '' }),
    actions(run),
    el('div', { class: 'kpis' },
      kpi(`Test accuracy${run.test_views > 1 ? ` (${run.test_views} views)` : ''}`, pct(run.test_accuracy, 2), 'test'),
      kpi(`Train accuracy${run.train_views > 1 ? ` (${run.train_views} views)` : ''}`, pct(run.train_accuracy, 2), 'train'),
      kpi('Train − test', gap == null ? '–' : `${(100 * gap).toFixed(1).replace(/^-0\.0$/, '0.0')} pts`, 'gap'),
      kpi('Epochs', run.epochs ? `${run.epochs_done} / ${run.epochs}` : '–'),
      kpi('Seconds / epoch', run.seconds_per_epoch ? run.seconds_per_epoch.toFixed(1) : '–'),
      kpi('Parameters', thousands(run.params))),
    gap == null ? null : el('p', { class: 'kpi-note', text: gapNote(gap, run) }),
    run.seconds_per_epoch ? el('p', { class: 'kpi-note', text: `Seconds per epoch: ${thousands(run.train_count)} training images at batch ${run.train ? run.train.batch_size : '?'}, on the computer as busy as it was then.` }) : null,
    history.length
      ? el('div', { class: 'chart' }, accuracyChart({ series: [{ name: run.name, history }], epochs: run.epochs, floor, label: `accuracy per epoch of ${run.name}` }))
      : el('p', { class: 'note', text: noCurves(run) }),
    viewsNote(history),
    sampleNote(history, run),
    confusionPart(run),
    el('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': `layers of ${run.name}` }, layersTable(run.summary)),
    run.summary_text ? el('details', {}, el('summary', { text: 'Why each shape is what it is (summary.txt)' }), el('pre', { text: run.summary_text })) : null,
  );
}

/** What the chart's lines and diamonds are, for a run whose last epoch was judged with test-time views. */
function viewsNote(history) {
  const judged = history.filter((r) => r.tta_views);
  if (!judged.length) return null;
  const views = judged[judged.length - 1].tta_views;
  return el('p', { class: 'kpi-note', text: `The lines judge every epoch on each image alone, so the epochs compare like with like; the diamonds are epoch ${judged.map((r) => r.epoch).join(', ')} judged again with this recipe's ${views} test-time views averaged (mirrored or shifted copies of each image), the figures the run reports.` });
}

/** What the test line is, for a small run that judged its epochs on a fixed test sample. */
function sampleNote(history, run) {
  const last = history[history.length - 1];
  if (!last || !last.test_sampled) return null;
  const all = run.test_count ? `${thousands(run.test_count)} ` : '';
  return el('p', { class: 'kpi-note sample-note', text: `The test line judges every epoch on the same ${thousands(last.test_images)} of the ${all}test images, a fixed sample: this run's steps were shorter than a pass over all of them. The test accuracy above is the final weights on all ${all}test images.` });
}

/** The final "train − test" gap in words: which way it goes and what that usually means. */
function gapNote(gap, run) {
  const points = Math.abs(100 * gap).toFixed(1);
  const what = 'Train − test is the last epoch\'s train accuracy minus its test accuracy.';
  if (gap > 0.005) return `${what} Train is ${points} points higher: the network does better on the pictures it learned from; a gap that keeps growing is overfitting.`;
  if (Math.abs(gap) <= 0.005) return `${what} They are about equal: no sign of overfitting.`;
  const measured = (run.history || []).some((r) => r.running_accuracy != null);
  if (measured) {
    const one = run.test_count ? ` One test image is ${(100 / run.test_count).toFixed(2)} points.` : '';
    const sample = (run.metrics || {}).train_sample_images;
    const alike = run.train_views > 1 && run.train_views === run.test_views ? `, both with the recipe's ${run.train_views} test-time views` : '';
    return `${what} Test is ${points} points higher. Both are measured alike at the end of the epoch${alike}, the train accuracy on a fixed sample of ${sample ? `${thousands(sample)} ` : ''}training images: the network got more of the test images right than of that sample, so it does not (yet) fit its training images better than new ones.${one}`;
  }
  const extras = run.train && run.train.augment ? ', on shifted and mirrored pictures' : '';
  return `${what} Test is ${points} points higher: this older run's train accuracy is the average over the epoch's steps, while the network was still learning (with dropout where the model has it${extras}); its test accuracy is measured once, at the end of the epoch.`;
}

function noCurves(run) {
  if (run.imported) return 'Imported, not trained here: no learning curves. Pick it in Predict & journey to see its answers and feature maps.';
  return run.status === 'running' ? 'The curves appear after the first epoch.' : 'No epoch was completed, so there are no curves.';
}

function confusionPart(run) {
  if (run.metrics && run.metrics.confusion) return confusionMatrix(run);
  if (run.imported) return null;
  const why = run.status === 'running'
    ? 'The confusion matrix is worked out when the run ends.'
    : `No confusion matrix: the run ended ${run.status} before its final evaluation.`;
  return el('p', { class: 'note', text: why });
}

/** Download the weights (safetensors), an ONNX or a Keras export; delete the run. */
function actions(run) {
  const base = `/api/runs/${run.name}/download/`;
  const downloads = run.downloads || {};
  const box = el('div', { class: 'run-actions' });
  if (run.has_weights) {
    box.append(el('a', { class: 'button secondary', href: `${base}weights`, download: '', text: 'Download weights (.safetensors)' }));
    // Exports are made on request and may be refused (a layer Keras has no word for): fetched,
    // so a refusal is a line here rather than a page of JSON.
    if (downloads.onnx) box.append(el('button', { type: 'button', class: 'secondary', text: 'Download ONNX', onclick: () => exported(run, 'onnx', box) }));
    if (downloads.keras) box.append(el('button', { type: 'button', class: 'secondary', text: 'Download Keras (.keras)', onclick: () => exported(run, 'keras', box) }));
  }
  box.append(el('button', { type: 'button', class: 'danger', text: 'Delete run…', onclick: () => remove(run, box) }));
  return box;
}

async function exported(run, kind, box) {
  const note = el('p', { class: 'note', text: `Exporting ${run.name} to ${kind === 'onnx' ? 'ONNX' : 'Keras'} and checking it against the run…` });
  box.append(note);
  try {
    const response = await fetch(`/api/runs/${run.name}/download/${kind}`);
    if (!response.ok) throw new Error((await response.json()).error);
    const link = el('a', { href: URL.createObjectURL(await response.blob()), download: `${run.name.replace('/', '-')}.${kind}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    note.remove();
  } catch (error) {
    note.className = 'message';
    note.textContent = error.message;
  }
}

/** A .keras, .h5 or .onnx file from this computer, imported into a run, then opened. */
async function importModel(event) {
  const file = event.target.files[0];
  event.target.value = '';
  if (!file) return;
  const message = $('r-import-message');
  const dot = file.name.lastIndexOf('.');
  const format = dot > 0 ? file.name.slice(dot + 1).toLowerCase().replace('hdf5', 'h5') : '';
  const name = (dot > 0 ? file.name.slice(0, dot) : file.name).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '') || 'imported';
  say(message, `Importing ${file.name}…`, 'info');
  try {
    const run = await api(`/api/models?format=${encodeURIComponent(format)}&name=${encodeURIComponent(name)}`, { method: 'POST', body: file, headers: { 'Content-Type': 'application/octet-stream' } });
    say(message, `Imported ${file.name} as run ${run.name}: ${run.model}, ${thousands(run.params)} parameters. Pick it in Predict & journey to look inside it.`, 'info');
    state.selected = [run.name];
    bus.dispatchEvent(new Event('runs-changed'));
  } catch (error) {
    say(message, error.message);
  }
}

async function remove(run, box) {
  // The browser's own dialog: modal, read out by screen readers, answered with the keyboard.
  if (!window.confirm(`Delete run ${run.name} and its folder for good? This cannot be undone.`)) return;
  try {
    await api(`/api/runs/${run.name}`, { method: 'DELETE', json: { confirm: run.name } });
    state.selected = state.selected.filter((n) => n !== run.name);
    state.details.delete(run.name);
    say($('r-message'), `Deleted run ${run.name}.`, 'info');
    bus.dispatchEvent(new Event('runs-changed'));
  } catch (error) {
    box.append(el('p', { class: 'message', text: error.message }));
  }
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
