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

// The recipe's number fields with a control of their own (beyond epochs, batch size, lr,
// ema): the field, its input, and when it applies (left out of the request when it does
// not, so the recipe's own value is what config.json records).
const NUMBERS = [
  ['momentum', 't-momentum', () => $('t-optimizer').value === 'sgd'],
  ['norm_lr_scale', 't-norm-lr', () => true],
  ['warmup', 't-warmup', oneCycle],
  ['final_lr_scale', 't-final-lr', oneCycle],
  ['epoch_images', 't-epoch-images', () => true],
];

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
  const labels = {};
  for (const box of document.querySelectorAll('#t-form [data-field]')) {
    labels[box.dataset.field] = box.firstChild.textContent.trim();
  }
  const named = (text) => text.replace(/--([a-z-]+)/g, (flag, name) => {
    const label = labels[name.replace(/-/g, '_')];
    return label ? `"${label}"` : flag;
  });
  for (const box of document.querySelectorAll('#t-form [data-field]')) {
    const option = options[box.dataset.field];
    if (!option) continue;
    box.title = named(option.help);
    const select = box.querySelector('select');
    if (select && option.choices) {
      select.replaceChildren(...option.choices.map((value) => el('option', { value, text: OPTIMIZERS[value] || value })));
    }
  }
}

function fill(recipe) {
  recipeShown = recipe;
  $('t-epochs').value = recipe.epochs;
  $('t-batch').value = recipe.batch_size;
  $('t-lr').value = num(recipe.lr);
  $('t-optimizer').value = recipe.optimizer;
  $('t-schedule').value = recipe.schedule;
  $('t-anneal').value = recipe.anneal;
  for (const [key, id] of NUMBERS) $(id).value = recipe[key] == null ? '' : num(recipe[key]);
  $('t-flip').value = recipe.flip || 'random';
  $('t-ema').value = num(recipe.ema || 0);
  $('t-augment').checked = Boolean(recipe.augment);
  $('t-tta').checked = Boolean(recipe.tta_flip);
  $('t-tta-shift').checked = Boolean(recipe.tta_shift);
  flipNeedsAugment();
  showWhatApplies();
  const rest = [
    recipeText({ weight_decay: recipe.weight_decay, label_smoothing: recipe.label_smoothing, resize: recipe.resize }),
    !recipe.weight_decay && 'no weight decay',
    !recipe.label_smoothing && 'no label smoothing',
  ];
  $('t-recipe-rest').textContent = `And from this recipe: ${rest.filter(Boolean).join(' · ')}.`;
}

function oneCycle() {
  return $('t-schedule').value === 'onecycle';
}

/** Momentum only means something to SGD, and the warm-up, decay shape and final factor
 * only to the one-cycle schedule: they show only there (and are sent only there). An
 * emptied "Images an epoch" trains the recipe's number (all, unless it names one). */
function showWhatApplies() {
  $('t-momentum-box').hidden = $('t-optimizer').value !== 'sgd';
  for (const box of document.querySelectorAll('#t-form .onecycle')) box.hidden = !oneCycle();
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
  const model = chosenModel() === 'custom' ? $('t-spec').value : chosenModel();
  const body = { model };
  if ($('t-recipe').value !== ownRecipe(chosenModel())) body.preset = $('t-recipe').value; // '' is the lesson's
  for (const [key, id] of [['epochs', 't-epochs'], ['batch_size', 't-batch'], ['lr', 't-lr'], ['ema', 't-ema']]) {
    const value = $(id).value.trim();
    if (value) body[key] = Number(value); // left empty: the recipe's
  }
  body.optimizer = $('t-optimizer').value;
  body.schedule = $('t-schedule').value;
  if (oneCycle()) body.anneal = $('t-anneal').value;
  for (const [key, id, applies] of NUMBERS) {
    const value = $(id).value.trim();
    if (value && applies()) body[key] = Number(value); // left empty, or not applying: the recipe's
  }
  body.flip = $('t-flip').value;
  body.augment = $('t-augment').checked;
  body.tta_flip = $('t-tta').checked;
  body.tta_shift = $('t-tta-shift').checked;
  const subset = $('t-subset').value.trim();
  if (subset) body.train_subset = Number(subset);
  if ($('t-name').value.trim()) body.name = $('t-name').value.trim();
  try {
    say($('t-message'), '');
    $('t-title').textContent = 'Starting…'; // the last run's ending is no longer the news
    $('t-log').replaceChildren();
    apply(await api('/api/train', { json: body }));
    watch();
  } catch (error) {
    say($('t-message'), error.message);
  }
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
  on('status', apply);
  on('start', apply);
  on('epoch', (d) => update({ epoch: d.epoch, epochs: d.epochs, step: 0, steps: d.steps, phase: 'train', status: job.status === 'starting' ? 'running' : job.status }));
  // After the steps: the evaluation (and, after the last epoch, the final one and the figures).
  on('phase', (d) => update({ phase: d.phase, phase_done: d.done, phase_total: d.total }));
  on('step', (d) => update({ step: d.step, steps: d.steps, loss: d.loss, accuracy: d.accuracy }));
  on('epoch_end', (row) => update({ history: [...job.history.filter((r) => r.epoch !== row.epoch), row] }));
  on('note', (d) => update({ notes: [...job.notes, d.text] }));
  on('done', (d) => { apply(d); bus.dispatchEvent(new Event('runs-changed')); });
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
