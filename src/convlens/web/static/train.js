// 4. Train from the page: pick a model and its recipe, start, watch live (server-sent
// events), cancel; resume an interrupted run (the Runs tab's Resume button).
import { useRun } from './predict.js';
import { accuracyChart } from './charts.js';
import { OPTIMIZERS, api, bus, el, num, pct, plainText, recipeText, say, thousands } from './util.js';

const $ = (id) => document.getElementById(id);
let source = null;
let job = null;
let clock = Date.now(); // when the shown training started, by this computer's clock
let presets = []; // from /api/presets: name, description, params, recipe (what it changes)
let lesson = {}; // the lesson's recipe: what a preset without a recipe trains with
let recipeModel = null; // the model whose own recipe the form last filled in
let recipeShown = {}; // the recipe the form was last filled in from (its epoch_images for the placeholder)

// Every recipe field (convlens.recipe.RECIPE_FIELDS) and its control: the field, its
// input, its kind, and when it applies. A number or text left empty, or a field that does
// not apply, is left out of the request, so the recipe's own value is what config.json
// records; a flag is always sent (a disabled one unchecked: off).
const FIELDS = [
  ['epochs', 't-epochs', 'number'],
  ['batch_size', 't-batch', 'number'],
  ['lr', 't-lr', 'number'],
  ['optimizer', 't-optimizer', 'choice'],
  ['momentum', 't-momentum', 'number', () => $('t-optimizer').value === 'sgd'],
  ['weight_decay', 't-weight-decay', 'number'],
  ['norm_lr_scale', 't-norm-lr', 'number'],
  ['schedule', 't-schedule', 'choice'],
  ['warmup', 't-warmup', 'number', oneCycle],
  ['anneal', 't-anneal', 'choice', oneCycle],
  ['final_lr_scale', 't-final-lr', 'number', oneCycle],
  ['label_smoothing', 't-label-smoothing', 'number'],
  ['epoch_images', 't-epoch-images', 'number'],
  ['ema', 't-ema', 'number'],
  ['lookahead', 't-lookahead', 'number'],
  ['lookahead_alpha', 't-lookahead-alpha', 'number', lookingAhead],
  ['resize', 't-resize', 'text'],
  ['flip', 't-flip', 'choice'],
  ['augment', 't-augment', 'flag'],
  ['tta_flip', 't-tta', 'flag'],
  ['tta_shift', 't-tta-shift', 'flag'],
];
// The other fields the server may refuse by name, and their controls.
const OTHER_CONTROLS = { train_subset: 't-subset', name: 't-name' };
let labels = {}; // field -> the words of its label, for the one lines that name --flags

export async function initTrain() {
  $('t-form').addEventListener('submit', start);
  $('t-cancel').addEventListener('click', cancel);
  $('t-form').addEventListener('change', (event) => { if (event.target.name === 'model') followModel(); });
  // Typing layers means "my own layers"; only passing through (Tab) changes nothing.
  $('t-spec').addEventListener('input', () => {
    const custom = $('t-form').querySelector('input[value="custom"]');
    if (!custom.checked) {
      custom.checked = true;
      followModel();
    }
  });
  $('t-recipe').addEventListener('change', () => fill(recipeOf($('t-recipe').value)));
  $('t-augment').addEventListener('change', flipNeedsAugment);
  $('t-optimizer').addEventListener('change', showWhatApplies);
  $('t-schedule').addEventListener('change', showWhatApplies);
  $('t-lookahead').addEventListener('input', showWhatApplies);
  $('t-explain').addEventListener('click', () => {
    const on = $('t-form').classList.toggle('explained');
    $('t-explain').setAttribute('aria-pressed', String(on));
  });
  // Chromium's number fields drop a typed comma ("0,001" would send 1): a decimal comma (a
  // European keyboard's number pad) becomes the point they read.
  $('t-form').addEventListener('keydown', (event) => {
    if (event.key !== ',' || event.target.type !== 'number') return;
    event.preventDefault();
    document.execCommand('insertText', false, '.');
  });
  // A refused value's line goes once the learner changes it.
  $('t-form').addEventListener('input', (event) => unrefuse(event.target));
  $('t-form').addEventListener('change', (event) => unrefuse(event.target));
  // The Runs tab listens for this (it imports this module for Resume, so not the reverse).
  $('t-open').addEventListener('click', () => job && bus.dispatchEvent(new CustomEvent('open-run', { detail: job.run })));
  $('t-try').addEventListener('click', () => job && useRun(job.run));
  $('t-resume').addEventListener('click', () => job && resumeRun(job.run).catch((error) => say($('t-message'), error.message)));
  try {
    const [listing, info, snapshot] = await Promise.all([api('/api/presets'), api('/api'), api('/api/train')]);
    presets = listing.presets;
    lesson = listing.defaults;
    describe(listing.options || {});
    for (const preset of presets) {
      $('t-presets').append(el(
        'label',
        { class: 'choice' },
        el('input', { type: 'radio', name: 'model', value: preset.name, checked: preset.name === 'cnn' }),
        el('span', {}, el('b', { text: preset.name }), ` · ${thousands(preset.params)} parameters`, el('small', { text: plainText(preset.description) })),
      ));
    }
    $('t-recipe').replaceChildren(
      el('option', { value: '', text: "the lesson's defaults" }),
      ...presets.filter(hasRecipe).map((p) => el('option', { value: p.name, text: `${p.name}'s recipe` })),
    );
    followModel();
    const data = info.data;
    $('t-data').textContent = `Trains on ${data.dataset}${data.data_dir ? ` from ${data.data_dir}` : ''}. Fewer training images train faster.`;
    apply(snapshot);
    if (snapshot.active) watch();
  } catch (error) {
    say($('t-message'), error.message);
  }
}

const hasRecipe = (preset) => Object.keys(preset.recipe || {}).length > 0;

/** The chosen model: a preset's name, or 'custom' for the typed layers. */
function chosenModel() {
  const choice = $('t-form').querySelector('input[name="model"]:checked');
  return !choice || choice.value === 'custom' ? 'custom' : choice.value;
}

/** The recipe a model trains with unless told otherwise: its own, if it is a preset with one. */
function ownRecipe(model) {
  const preset = presets.find((p) => p.name === model);
  return preset && hasRecipe(preset) ? preset.name : '';
}

/** The whole recipe of a choice in the select: the lesson's, changed by the preset's. */
function recipeOf(name) {
  const preset = presets.find((p) => p.name === name);
  return { ...lesson, ...(preset ? preset.recipe : {}) };
}

/** A new model choice brings its own recipe, so the fields show what will run. */
function followModel() {
  const model = chosenModel();
  if (model === recipeModel) return;
  recipeModel = model;
  $('t-recipe').value = ownRecipe(model);
  fill(recipeOf($('t-recipe').value));
}

/** Each recipe control with a data-field says what the library's option says (its help
 * on hover, the --flags in it named by the page's labels), and a select offers the
 * library's choices. */
function describe(options) {
  labels = {};
  for (const box of document.querySelectorAll('#t-form [data-field]')) labels[box.dataset.field] = labelText(box);
  for (const box of document.querySelectorAll('#t-form [data-field]')) {
    const option = options[box.dataset.field];
    if (!option) continue;
    box.title = named(option.help);
    // The same words under the control, for a phone (no hover) once "Explain each field" is on.
    const control = box.querySelector('input, select');
    const help = el('p', { class: 'help', id: `${control.id}-help`, text: named(option.help) });
    box.after(help);
    control.setAttribute('aria-describedby', help.id);
    const select = box.querySelector('select');
    if (select && option.choices) { // the page's words for a choice it knows ("one-cycle"), else the library's
      const words = Object.fromEntries([...select.options].map((o) => [o.value, o.textContent]));
      select.replaceChildren(...option.choices.map((value) => el('option', { value, text: words[value] || OPTIMIZERS[value] || value })));
    }
  }
}

/** A label's own words, without its control's: "Augment", "Momentum (SGD)". */
const labelText = (box) => [...box.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join(' ').trim();

/** The library's words with each --flag (a CLI option) named by the page's label for it. */
function named(text) {
  return text.replace(/--([a-z-]+)/g, (flag, name) => {
    const label = labels[name.replace(/-/g, '_')];
    return label ? `"${label}"` : flag;
  });
}

function fill(recipe) {
  recipeShown = recipe;
  for (const [key, id, kind] of FIELDS) {
    const value = recipe[key];
    if (kind === 'flag') $(id).checked = Boolean(value);
    else if (kind === 'choice') $(id).value = value;
    else if (kind === 'text') $(id).value = value == null ? '' : value;
    else $(id).value = value == null ? '' : num(value);
  }
  for (const id of FIELDS.map(([, id]) => id)) unrefuse($(id));
  flipNeedsAugment();
  showWhatApplies();
}

function oneCycle() {
  return $('t-schedule').value === 'onecycle';
}

/** Lookahead is on with a number of steps above 0 (empty: the recipe's, which may be on). */
function lookingAhead() {
  const steps = $('t-lookahead').value.trim();
  return steps === '' ? recipeShown.lookahead > 0 : Number(steps) > 0;
}

/** Momentum only means something to SGD, the warm-up, decay shape and final factor only
 * to the one-cycle schedule, and the share Lookahead keeps only with Lookahead on: they
 * show only there (and are sent only there). An emptied "Images an epoch" trains the
 * recipe's number (all, unless it names one). */
function showWhatApplies() {
  $('t-momentum-box').hidden = $('t-optimizer').value !== 'sgd';
  for (const box of document.querySelectorAll('#t-form .onecycle')) box.hidden = !oneCycle();
  $('t-lookahead-alpha-box').hidden = !lookingAhead();
  const own = recipeShown.epoch_images;
  $('t-epoch-images').placeholder = own == null ? 'all' : `the recipe's ${thousands(own)}`;
}

/** Flips, and averaging over flips or shifts, only mean something for a model that saw
 * mirror and shifted images in training (the library refuses test-time views otherwise). */
function flipNeedsAugment() {
  const off = !$('t-augment').checked;
  for (const id of ['t-tta', 't-tta-shift']) {
    $(id).disabled = off;
    if (off) $(id).checked = false;
  }
  $('t-flip').disabled = off;
}

async function start(event) {
  event.preventDefault();
  unrefuseAll();
  say($('t-message'), '');
  const model = chosenModel() === 'custom' ? $('t-spec').value : chosenModel();
  const body = { model };
  if ($('t-recipe').value !== ownRecipe(chosenModel())) body.preset = $('t-recipe').value; // '' is the lesson's
  for (const [key, id, kind, applies = () => true] of FIELDS) {
    const control = $(id);
    if (kind === 'flag') {
      body[key] = control.checked;
      continue;
    }
    if (!applies()) continue; // not shown: the recipe's
    if (control.validity.badInput) return refuse(`"${labels[key]}" needs a number, such as ${control.placeholder || num(recipeShown[key] ?? 0)}`, key);
    const value = control.value.trim();
    if (kind === 'choice') body[key] = value;
    else if (value) body[key] = kind === 'number' ? Number(value) : value; // left empty: the recipe's
  }
  if ($('t-subset').validity.badInput) return refuse(`"${labels.train_subset}" needs a whole number, or nothing for all`, 'train_subset');
  const subset = $('t-subset').value.trim();
  if (subset) body.train_subset = Number(subset);
  if ($('t-name').value.trim()) body.name = $('t-name').value.trim();
  try {
    apply(await api('/api/train', { json: body })); // the card shows the new run from here
    watch();
  } catch (error) {
    refuse(error.message, error.body && error.body.field); // the last run's card stays as it was
  }
  return undefined;
}

/** The control of a field the server named, where the page has one. */
function controlOf(field) {
  const entry = FIELDS.find(([key]) => key === field);
  const id = entry ? entry[1] : OTHER_CONTROLS[field];
  return id ? $(id) : null;
}

/** Show the server's one line beside the control it is about (marked invalid, described
 * by the line, and focused, so it scrolls into view and a screen reader reads both), or
 * under the form where no shown control is (a model that does not parse, a busy server). */
function refuse(message, field) {
  const control = field ? controlOf(field) : null;
  const box = control && control.closest('label');
  if (!box || box.hidden || control.disabled) {
    say($('t-message'), message);
    return;
  }
  unrefuse(control);
  const line = el('p', { class: 'field-error', id: `${control.id}-error`, text: named(message) });
  box.after(line);
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-describedby', [line.id, helpOf(control)].filter(Boolean).join(' '));
  control.focus();
}

function unrefuse(control) {
  if (!control || control.getAttribute('aria-invalid') !== 'true') return;
  control.removeAttribute('aria-invalid');
  const help = helpOf(control);
  if (help) control.setAttribute('aria-describedby', help);
  else control.removeAttribute('aria-describedby');
  const line = $(`${control.id}-error`);
  if (line) line.remove();
}

/** The id of a control's help line (the library's words for its field), if it has one. */
const helpOf = (control) => ($(`${control.id}-help`) ? `${control.id}-help` : '');

function unrefuseAll() {
  for (const control of document.querySelectorAll('#t-form [aria-invalid="true"]')) unrefuse(control);
}

/** Continue an interrupted run to its planned epochs; a refusal is thrown to the caller. */
export async function resumeRun(name) {
  apply(await api('/api/train/resume', { json: { run: name } }));
  watch();
}

async function cancel() {
  try {
    apply(await api('/api/train/cancel', { json: {} }));
  } catch (error) {
    say($('t-message'), error.message);
  }
}

function watch() {
  if (source) source.close();
  source = new EventSource('/api/train/events');
  const on = (kind, fn) => source.addEventListener(kind, (e) => fn(JSON.parse(e.data)));
  // A run that fails on a field (resize on a flatten head, found once the data is known)
  // marks that control; a fast failure arrives as the stream's first snapshot, not 'done'.
  const ended = (d) => {
    apply(d);
    if (d.status === 'failed' && d.field) refuse(d.message, d.field);
  };
  on('status', ended);
  on('start', apply);
  on('epoch', (d) => update({ epoch: d.epoch, epochs: d.epochs, step: 0, steps: d.steps, phase: 'train', status: job.status === 'starting' ? 'running' : job.status }));
  // After the steps: the evaluation (and, after the last epoch, the final one and the figures).
  on('phase', (d) => update({ phase: d.phase, phase_done: d.done, phase_total: d.total }));
  on('step', (d) => update({ step: d.step, steps: d.steps, loss: d.loss, accuracy: d.accuracy }));
  on('epoch_end', (row) => update({ history: [...job.history.filter((r) => r.epoch !== row.epoch), row] }));
  on('note', (d) => update({ notes: [...job.notes, d.text] }));
  on('done', (d) => { ended(d); bus.dispatchEvent(new Event('runs-changed')); });
  on('end', () => { source.close(); source = null; });
}

function update(changes) {
  if (!job) return;
  apply({ ...job, ...changes, seconds: undefined }); // events carry no time; keep the clock
}

function apply(snapshot) {
  job = snapshot.status === 'idle' ? null : snapshot;
  if (job && job.seconds !== undefined) clock = Date.now() - 1000 * job.seconds;
  const active = Boolean(job && job.active);
  $('t-start').disabled = active;
  $('t-cancel').disabled = !active || job.status === 'cancelling';
  const badge = $('train-badge');
  badge.hidden = !active;
  if (!job) return;
  badge.textContent = `training ${job.run} · epoch ${job.epoch || 0}/${job.epochs}`;
  const titles = {
    starting: `Starting ${job.run}…`,
    running: `Training ${job.run}`,
    cancelling: `Cancelling ${job.run}…`,
    complete: `${job.run} is done`,
    stopped: `${job.run} stopped early`,
    interrupted: `${job.run} was cancelled`,
    diverged: `${job.run} diverged`,
    failed: `${job.run} failed`,
  };
  $('t-title').textContent = titles[job.status] || job.run;
  const phase = active ? phaseText(job) : '';
  $('t-sub').textContent = active
    ? `${job.model}, epoch ${job.epoch || 0} of ${job.epochs}${phase ? ` · ${phase}` : ''} · ${Math.round((Date.now() - clock) / 1000)}s so far`
    : job.message || (job.test_accuracy != null ? `test accuracy ${pct(job.test_accuracy, 2)}` : '');
  $('t-running-recipe').textContent = job.train ? `recipe${job.recipe ? ` from ${job.recipe}` : ''}: ${recipeText(job.train)}` : '';
  const fraction = job.phase && job.phase !== 'train' ? 1 : (job.steps ? job.step / job.steps : 0);
  const done = job.active ? ((Math.max(job.epoch, 1) - 1 + fraction) / job.epochs) : (job.status === 'complete' || job.status === 'stopped' ? 1 : (job.history.length / job.epochs));
  $('t-epoch-bar').style.width = `${(100 * Math.min(1, done)).toFixed(1)}%`;
  $('t-epoch').textContent = job.epoch ? `${job.epoch} / ${job.epochs}` : '–';
  const evaluating = active && job.phase && job.phase !== 'train';
  $('t-step-label').textContent = evaluating ? (job.phase === 'finish' ? 'final evaluation' : 'evaluation') : 'step';
  $('t-step').textContent = evaluating ? `${job.phase_done || 0} / ${job.phase_total || '…'}` : (job.steps ? `${job.step} / ${job.steps}` : '–');
  $('t-loss').textContent = job.loss == null ? '–' : job.loss.toFixed(4);
  $('t-acc').textContent = pct(job.accuracy);
  chart(job.history, job.epochs);
  const log = $('t-log');
  log.replaceChildren(
    ...job.notes.map((n) => el('li', { text: n })),
    ...job.history.map((r) => el('li', { text: epochLine(r) })),
  );
  if (!active) {
    const good = job.status === 'complete' || job.status === 'stopped';
    const views = job.test_views > 1 ? ` (${job.test_views} views)` : '';
    log.append(el('li', { class: good ? 'done' : 'bad', text: good ? `finished: test accuracy ${pct(job.test_accuracy, 2)}${views}` : job.message || job.status }));
  }
  log.hidden = !log.childElementCount; // an empty log is no stop for the Tab key
  $('t-after').hidden = active || !(job.status === 'complete' || job.status === 'stopped');
  const resumable = !active && job.status === 'interrupted' && job.resumable;
  $('t-resume-box').hidden = !resumable;
  $('t-resume-note').textContent = !resumable ? '' : job.history.length ? `goes on from epoch ${job.history.length + 1} to ${job.epochs}` : `starts again from epoch 1, to ${job.epochs}`;
  tell(liveLine(job, active));
}

/** An epoch in the log: the image alone, the views where it was judged with them, the seconds of steps and of evaluation. */
function epochLine(r) {
  const views = r.tta_views ? ` · with ${r.tta_views} views: train ${pct(r.tta_train_accuracy)} · test ${pct(r.tta_test_accuracy)}` : '';
  const evaluating = r.eval_seconds != null ? ` + ${r.eval_seconds.toFixed(1)}s evaluating` : '';
  const test = r.test_sampled ? `test (${thousands(r.test_images)} sampled)` : 'test';
  return `epoch ${r.epoch}: train ${pct(r.train_accuracy)} · ${test} ${pct(r.test_accuracy)}${views} · ${r.seconds.toFixed(1)}s${evaluating}`;
}

/** What a screen reader hears: a line per epoch and per ending, not one per step. */
function liveLine(job, active) {
  if (!active) return $('t-title').textContent + (job.message ? `: ${job.message}` : '');
  const phase = phaseText(job);
  if (phase) return `${job.run}: epoch ${job.epoch || 0} of ${job.epochs}, ${phase}`;
  return `${job.run}: epoch ${job.epoch || 0} of ${job.epochs}`;
}

/** The evaluation phases in words ('' while the steps run): what the frozen step counter hid. */
function phaseText(job) {
  if (job.phase === 'evaluate') return 'evaluating (the test images and a training sample)';
  if (job.phase === 'finish') return 'final evaluation and figures';
  return '';
}

function tell(text) {
  if ($('t-live').textContent !== text) $('t-live').textContent = text;
}

function chart(history, epochs) {
  $('t-chart').replaceChildren(accuracyChart({ series: [{ name: job ? job.run : '', history }], epochs }));
}
