// 2. Predict and journey: draw (or pick, or upload), see the answer, follow the layers.
// The server runs convlens.predict and convlens.introspect on the run you pick.
import { useKernel } from './filters.js';
import { unitStepper } from './unitstep.js';
import { api, bus, cellGrid, el, num, pct, say, signClass } from './util.js';

const $ = (id) => document.getElementById(id);
const state = { run: null, run2: '', features: null, filter: 0, selected: null, drawing: false, last: null, seq: 0, note: '' };
let ctx = null;
let firstSample = null; // the picture a page opens with; also once the first run appears

export async function initPredict() {
  const canvas = $('p-canvas');
  ctx = canvas.getContext('2d', { willReadFrequently: true });
  clearCanvas();
  canvas.addEventListener('pointerdown', (e) => { canvas.setPointerCapture(e.pointerId); state.drawing = true; state.last = point(e); stroke(state.last, state.last); });
  canvas.addEventListener('pointermove', (e) => { if (!state.drawing) return; const p = point(e); stroke(state.last, p); state.last = p; livePredict(); });
  const finish = () => { if (!state.drawing) return; state.drawing = false; lookAll(); };
  canvas.addEventListener('pointerup', finish);
  canvas.addEventListener('pointercancel', finish);
  $('p-clear').addEventListener('click', () => { clearCanvas(); state.note = ''; lookAll(); });
  $('p-upload').addEventListener('change', upload);
  $('p-run').addEventListener('change', () => { state.run = $('p-run').value; lookAll(); });
  $('p-run2').addEventListener('change', () => { state.run2 = $('p-run2').value; lookAll(); });
  bus.addEventListener('open-picture', (event) => openPicture(event.detail));
  $('p-filter').addEventListener('input', () => { state.filter = Number($('p-filter').value); drawStrip(); });
  bus.addEventListener('runs-changed', loadRuns);
  document.addEventListener('tab-shown', (event) => {
    if (event.detail === 'predict') loadRuns().catch(() => {}); // runs made meanwhile, e.g. by the CLI
  });
  try {
    const samples = await api('/api/samples');
    for (const sample of samples.samples.filter((s) => s.id.startsWith('fashion:'))) {
      $('p-samples').append(el('button', { type: 'button', class: 'thumb', title: sample.label, onclick: () => { state.note = ''; paint(sample.png); } }, el('img', { src: sample.png, alt: sample.label })));
    }
    const first = samples.samples.find((s) => s.id.startsWith('fashion:'));
    firstSample = first ? first.png : null;
    await loadRuns();
  } catch (error) {
    say($('p-message'), error.message);
  }
}

async function loadRuns() {
  const { runs } = await api('/api/runs');
  const usable = runs.filter((r) => r.has_weights);
  const select = $('p-run');
  const keep = state.run;
  const option = (r) => el('option', { value: r.name, text: `${r.name}  ·  ${r.model}  ·  test ${pct(r.test_accuracy)}` });
  select.replaceChildren(...usable.map(option));
  $('p-run2').replaceChildren(el('option', { value: '', text: 'no second run' }), ...usable.map(option));
  state.run2 = usable.some((r) => r.name === state.run2) ? state.run2 : '';
  $('p-run2').value = state.run2;
  if (!usable.length) {
    state.run = null;
    say($('p-message'), 'No trained run yet: train one in the Train tab (cnn for 1 epoch on 6,000 images takes well under a minute), then come back.', 'info');
    return;
  }
  say($('p-message'), '');
  state.run = usable.some((r) => r.name === keep) ? keep : usable[0].name;
  select.value = state.run;
  // The first run to appear (at start, or trained on this page from an empty folder)
  // answers a sample at once, rather than waiting on an empty canvas.
  if (!keep && firstSample && blank(pixels())) paint(firstSample);
}

/** Select a run from another tab (after training, or "predict with it"). */
export function useRun(name) {
  loadRuns().then(() => {
    if ([...$('p-run').options].some((o) => o.value === name)) {
      state.run = name;
      $('p-run').value = name;
      lookAll();
    }
  });
}

/** A test image from the Runs tab's confusion matrix: its run, the picture, what it is. */
function openPicture({ run, png, note }) {
  state.note = note;
  loadRuns().then(() => {
    if ([...$('p-run').options].some((o) => o.value === run)) {
      state.run = run;
      $('p-run').value = run;
    }
    paint(png);
  });
}

// --- the canvas: 28x28 real pixels, shown ten times larger ----------------------------

function clearCanvas() {
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, 28, 28);
}

function point(event) {
  const box = event.currentTarget.getBoundingClientRect();
  return [((event.clientX - box.left) / box.width) * 28, ((event.clientY - box.top) / box.height) * 28];
}

function stroke(from, to) {
  ctx.strokeStyle = '#fff';
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.lineWidth = Number($('p-brush').value);
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0] + 0.01, to[1]);
  ctx.stroke();
}

let paints = 0; // the latest picture asked for wins, whichever loads first
function paint(src) {
  const img = new Image();
  const mine = ++paints;
  img.onload = () => {
    if (mine !== paints) return;
    clearCanvas();
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(img, 0, 0, 28, 28);
    lookAll();
  };
  img.src = src;
}

function pixels() {
  const data = ctx.getImageData(0, 0, 28, 28).data;
  const rows = [];
  for (let r = 0; r < 28; r += 1) {
    const row = [];
    for (let c = 0; c < 28; c += 1) row.push(data[(r * 28 + c) * 4]);
    rows.push(row);
  }
  return rows;
}

async function upload(event) {
  const file = event.target.files[0];
  event.target.value = '';
  if (!file || !state.run) return;
  try {
    const picture = await api('/api/images', { method: 'POST', body: file, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
    const prepared = await api('/api/predict', { json: { run: state.run, image: picture.id } });
    paint(prepared.image.png); // prepared like the training data; draw on it if you like
  } catch (error) {
    say($('p-message'), error.message);
  }
}

// --- asking the network ---------------------------------------------------------------

let liveTimer = null;
function livePredict() {
  if (liveTimer) return;
  liveTimer = setTimeout(async () => {
    liveTimer = null;
    if (!state.run) return;
    try { showAnswer(await api('/api/predict', { json: { run: state.run, pixels: pixels() } })); } catch { /* the full look follows */ }
  }, 250);
}

/** A canvas of one gray level holds no drawing: the network's answer would mean nothing. */
function blank(rows) {
  const values = rows.flat();
  return Math.max(...values) - Math.min(...values) < 8;
}

function showNothing() {
  $('p-label').textContent = 'nothing yet';
  $('p-answer-note').textContent = 'Nothing is drawn: draw a piece of clothing in white on the black square, or pick a sample.';
  $('p-bars').replaceChildren();
  $('p-second').hidden = true;
  $('p-compare').hidden = true;
  $('p-seen').removeAttribute('src');
  $('p-saliency').removeAttribute('src');
  $('p-saliency-cap').textContent = '';
  $('p-saliency-note').textContent = 'With nothing drawn there is nowhere to look.';
}

async function lookAll() {
  if (!state.run) return;
  const seq = ++state.seq;
  const drawn = pixels();
  if (blank(drawn)) {
    showNothing();
    return;
  }
  const body = { run: state.run, pixels: drawn };
  const second = state.run2 && state.run2 !== state.run ? { ...body, run: state.run2 } : null;
  try {
    // /api/features answers with the prediction too: one forward pass for both.
    const [features, saliency, features2] = await Promise.all([
      api('/api/features', { json: body }),
      api('/api/saliency', { json: body }),
      second ? api('/api/features', { json: { ...second, max_maps: 8 } }) : null,
    ]);
    if (seq !== state.seq) return;
    const answer = features.prediction;
    const answer2 = features2 ? features2.prediction : null;
    say($('p-message'), '');
    showAnswer(answer);
    showSaliency(saliency, answer);
    showFeatures(features);
    showSecond(answer, answer2, features, features2);
  } catch (error) {
    if (seq === state.seq) say($('p-message'), error.message);
  }
}

/** The same picture through a second run: its answer, and both runs layer by layer. */
function showSecond(answer, answer2, features, features2) {
  const box = $('p-second');
  const grid = $('p-compare');
  box.hidden = !answer2;
  grid.hidden = !answer2;
  if (!answer2) return;
  const top = (a) => `${a.label} ${pct(a.probabilities[a.predicted])}`;
  box.replaceChildren(el('p', { class: 'second-answer' }, el('b', { text: state.run2 }), ' says ', el('strong', { class: 'answer-label', id: 'p-label2', text: answer2.label }), ` (${pct(answer2.probabilities[answer2.predicted])}); `, el('b', { text: state.run }), ` says ${top(answer)}.`));
  const rows = [];
  const depth = Math.max(features.layers.length, features2.layers.length);
  for (let i = 0; i < depth; i += 1) {
    const [a, b] = [features.layers[i], features2.layers[i]];
    const maps = (layer) => el('div', { class: 'maps' }, ...(layer ? layer.maps.slice(0, 8).map((m) => el('img', { src: m.png, alt: `${layer.name} map ${m.index}` })) : [el('span', { class: 'note', text: '(no layer here)' })]));
    const name = (layer) => (layer ? `${layer.name} ${layer.shape[1]}×${layer.shape[2]}×${layer.shape[0]}` : '–');
    rows.push(el('div', { class: 'name', text: `layer ${i + 1}: ${name(a)} · ${name(b)}` }), maps(a), maps(b));
  }
  if (!depth) rows.push(el('p', { class: 'note', text: 'Neither run has conv or pool layers to compare.' }));
  grid.replaceChildren(
    el('h2', { text: 'Two runs, one picture, layer by layer' }),
    el('p', { class: 'note', text: 'The first 8 maps of each conv and pool layer, the same picture in both runs. Their filters were learned separately, so map 3 of one run has nothing to do with map 3 of the other: compare what kind of features survive each layer.' }),
    el('div', { class: 'compare-grid' }, el('span', { class: 'head', text: 'layer' }), el('span', { class: 'head', text: state.run }), el('span', { class: 'head', text: state.run2 }), ...rows),
  );
}

function showAnswer(answer) {
  $('p-label').textContent = answer.label;
  $('p-answer-note').textContent = state.note;
  const bars = $('p-bars');
  bars.replaceChildren();
  answer.classes.forEach((name, k) => {
    const p = answer.probabilities[k];
    const win = k === answer.predicted ? 'win' : '';
    const fill = el('div', { class: `bar-fill ${win}` });
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bars.append(
      el('span', { class: `bar-name ${win}`, text: name }),
      el('div', { class: 'bar-track' }, fill),
      el('span', { class: `bar-value ${win}`, text: pct(p) }),
    );
  });
  $('p-seen').src = answer.image.png;
}

function showSaliency(saliency, answer) {
  $('p-saliency').src = saliency.png;
  $('p-saliency-cap').textContent = saliency.method === 'Grad-CAM' ? `Grad-CAM (${saliency.layer})` : 'Input gradients';
  $('p-saliency-note').textContent = saliency.method === 'Grad-CAM'
    ? `Orange marks the places whose features raised the score for “${answer.label}” the most.`
    : `This model has no conv layer, so orange marks the pixels that change the score for “${answer.label}” the most.`;
}

// --- the journey ---------------------------------------------------------------------------

function showFeatures(features) {
  state.features = features;
  $('p-shapes').textContent = features.shape_line;
  const layers = features.layers;
  const slider = $('p-filter');
  const most = layers.length ? Math.min(...layers.map((l) => l.maps.length)) - 1 : 0;
  slider.max = String(Math.max(0, most));
  slider.disabled = !layers.length;
  if (state.filter > most) state.filter = 0;
  slider.value = String(state.filter);
  drawStrip();
  const box = $('p-layers');
  box.replaceChildren();
  if (!layers.length) {
    box.append(el('p', { class: 'note', text: features.note }));
  }
  for (const layer of layers) {
    const [c, h, w] = layer.shape;
    const tiles = el('div', { class: 'tiles' });
    for (const map of layer.maps) {
      tiles.append(el(
        'button',
        { type: 'button', class: 'tile', title: `${layer.name} map ${map.index}: ${num(map.min)} to ${num(map.max)}`, dataset: { layer: layer.name, index: map.index }, onclick: () => select(layer.name, map.index, true) },
        el('img', { src: map.png, alt: `${layer.name} map ${map.index}` }),
      ));
    }
    const shown = layer.maps.length < c ? ` (first ${layer.maps.length} shown)` : '';
    box.append(el(
      'div',
      { class: 'layer' },
      el('div', { class: 'layer-head' }, el('h3', { text: layer.name }), el('span', { text: `${layer.type} · ${h}×${w}×${c} · ${c} maps${shown}` })),
      tiles,
    ));
  }
  if (state.selected && layers.some((l) => l.name === state.selected[0])) select(...state.selected);
  else if (layers.length) select(layers[0].name, Math.min(state.filter, layers[0].maps.length - 1));
  else $('p-detail').replaceChildren(el('p', { class: 'note', text: 'No feature maps for this model.' }));
}

function drawStrip() {
  $('p-filter-out').textContent = String(state.filter);
  const strip = $('p-strip');
  strip.replaceChildren();
  const features = state.features;
  if (!features || !features.layers.length) return;
  strip.append(el('figure', {}, el('img', { src: features.image.png, alt: 'input' }), el('figcaption', {}, el('b', { text: 'input' }))));
  for (const layer of features.layers) {
    const map = layer.maps[state.filter];
    if (!map) continue;
    strip.append(
      el('span', { class: 'arrow', text: '→' }),
      el('figure', {}, el('img', { src: map.png, alt: `${layer.name} map ${state.filter}` }), el('figcaption', {}, el('b', { text: layer.name }), ` ${layer.shape[1]}×${layer.shape[2]}`)),
    );
  }
}

/** Show one map beside its filter; `tapped`: bring the detail into view where it is not beside. */
async function select(layerName, index, tapped = false) {
  state.selected = [layerName, index];
  for (const tile of $('p-layers').querySelectorAll('.tile')) {
    tile.classList.toggle('selected', tile.dataset.layer === layerName && Number(tile.dataset.index) === index);
  }
  const layers = state.features.layers;
  const at = layers.findIndex((l) => l.name === layerName);
  const layer = layers[at];
  const map = layer.maps[index];
  const detail = $('p-detail');
  const [c, h, w] = layer.shape;
  detail.replaceChildren(
    el('h3', { text: `${layerName} · map ${index}` }),
    el('img', { class: 'big', src: map.png, alt: `${layerName} map ${index}` }),
    el('p', { class: 'note', text: map.scale
      ? `${h}×${w}, value ${num(map.min)}, coloured on the layer's ${num(map.scale[0])} (black) to ${num(map.scale[1])} (yellow).`
      : `${h}×${w}, values ${num(map.min)} (black) to ${num(map.max)} (yellow).` }),
  );
  if (tapped && getComputedStyle($('p-layers').parentElement).gridTemplateColumns.split(' ').length < 2) {
    detail.scrollIntoView({ block: 'start' }); // one column (a phone): the detail is below all the maps
  }
  if (!layer.conv) {
    const before = layers[at - 1];
    const source = before && before.maps[index];
    if (source) {
      detail.append(
        el('p', { text: `Made by max pooling map ${index} of ${before.name}: each pixel keeps the largest of a block of the map before, so ${before.shape[1]}×${before.shape[2]} becomes ${h}×${w}.` }),
        el('div', { class: 'beside' },
          el('figure', {}, el('img', { src: source.png, alt: 'before pooling' }), `${before.name} · ${before.shape[1]}×${before.shape[2]}`),
          el('figure', {}, el('img', { src: map.png, alt: 'after pooling' }), `${layerName} · ${h}×${w}`)),
      );
    }
    return;
  }
  try {
    const filter = await api(`/api/runs/${state.run}/filters/${layerName}?index=${index}`);
    if (!state.selected || state.selected[0] !== layerName || state.selected[1] !== index) return;
    detail.append(...describeFilter(filter, layers[at - 1], c));
    const drawn = pixels();
    detail.append(unitStepper({ run: state.run, layer: layerName, index, shape: layer.shape, mapPng: map.png, source: () => ({ pixels: drawn }) }));
  } catch (error) {
    detail.append(el('p', { class: 'note', text: error.message }));
  }
}

function describeFilter(filter, before, channels) {
  const [inputs, k] = filter.shape;
  if (inputs === 1) {
    const grid = cellGrid(filter.weights[0], (v) => [num(Number(v.toFixed(3))), signClass(v)]);
    return [
      el('p', { text: `The filter that made it: ${k}×${k} weights learned in training. Like the hand-made filters on the Filters tab, it slides over the picture; the products are summed, a bias added, and relu keeps what is positive.` }),
      el('div', { class: 'learned' }, grid),
      el('button', { type: 'button', class: 'secondary', text: 'Try this filter on the Filters tab', onclick: () => useKernel(filter.weights[0], `learned filter ${filter.index} of ${filter.layer}, rounded to 3 decimals`) }),
    ];
  }
  const patches = el('div', { class: 'patches' });
  const limit = Math.max(Math.abs(filter.min), Math.abs(filter.max)) || 1;
  for (const plane of filter.weights) patches.append(patch(plane, limit));
  return [
    el('p', { text: `The filter that made it looks at all ${inputs} maps of ${before ? before.name : 'the layer before'} at once: one ${k}×${k} grid of weights for each, ${inputs * k * k} weights in all (green positive, purple negative).` }),
    patches,
  ];
}

function patch(plane, limit) {
  const k = plane.length;
  const canvas = el('canvas', { width: k, height: k });
  const g = canvas.getContext('2d');
  plane.forEach((row, r) => row.forEach((v, c) => {
    const t = Math.min(1, Math.abs(v) / limit);
    const [R, G, B] = v >= 0 ? [27, 120, 55] : [118, 42, 131];
    const mix = (x) => Math.round(255 + (x - 255) * t);
    g.fillStyle = `rgb(${mix(R)}, ${mix(G)}, ${mix(B)})`;
    g.fillRect(c, r, 1, 1);
  }));
  return canvas;
}
