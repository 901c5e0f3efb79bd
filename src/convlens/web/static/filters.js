// 1. Filter playground: a picture, a kernel, and the arithmetic of any pixel.
// The server convolves with convlens.byhand (the same code as `convlens filter`); this
// module only asks, shows, and maps the mouse to pixel coordinates.
import { api, cellGrid, el, fraction, num, say, signClass } from './util.js';

const $ = (id) => document.getElementById(id);
const state = {
  image: null,
  kernel: 'vertical', // a library name, or 'custom' for the grid's numbers
  result: null,
  scale: 1,
  held: null, // [row, col] of the output pixel being explained
  heldPool: null, // [row, col] of the pooled pixel being explained, when one is
};
const PLAY_MS = 300;
let player = null;
let kernels = [];
let filterSeq = 0;

export async function initFilters() {
  buildGrid();
  $('f-weight').addEventListener('input', debounce(update, 200));
  $('f-pool').addEventListener('change', update);
  $('f-upload').addEventListener('change', upload);
  for (const [frame, kind] of [['f-in-frame', 'input'], ['f-out-frame', 'output'], ['f-pool-frame', 'pooled']]) {
    $(frame).addEventListener('mousemove', (event) => hover(event, kind));
  }
  $('f-out-frame').addEventListener('keydown', (event) => stepKey(event, 'output'));
  $('f-pool-frame').addEventListener('keydown', (event) => stepKey(event, 'pooled'));
  $('f-prev').addEventListener('click', () => step(-1));
  $('f-next').addEventListener('click', () => step(1));
  $('f-play').addEventListener('click', togglePlay);
  document.addEventListener('tab-shown', (event) => {
    if (event.detail === 'filters' && state.result) show(state.result); // sizes need a visible tab
  });
  try {
    const [library, samples] = await Promise.all([api('/api/kernels'), api('/api/samples')]);
    kernels = library.kernels;
    buildChips();
    for (const sample of samples.samples) addThumb(sample);
    const boot = samples.samples.find((s) => s.label === 'Ankle boot') || samples.samples[0];
    if (samples.notice) say($('f-message'), samples.notice, 'info');
    pickKernel('vertical', false);
    selectImage(boot.id);
  } catch (error) {
    say($('f-message'), error.message);
  }
}

/** Use a kernel from elsewhere (a learned filter from the journey) and show it here. */
export function useKernel(values, label) {
  setGrid(values.map((row) => row.map((v) => Number(v.toFixed(3)))));
  state.kernel = 'custom';
  markChips();
  $('f-kernel-desc').textContent = label;
  location.hash = '#filters';
  update();
}

// --- controls ---------------------------------------------------------------------------

function buildGrid() {
  const grid = $('f-grid');
  for (let i = 0; i < 9; i += 1) {
    const input = el('input', { type: 'text', inputmode: 'decimal', 'aria-label': `weight ${Math.floor(i / 3) + 1},${(i % 3) + 1}` });
    input.addEventListener('input', () => {
      state.kernel = 'custom';
      markChips();
      $('f-kernel-desc').textContent = 'your own filter: type any numbers, fractions like 1/9 too';
      colourGrid();
      debouncedUpdate();
    });
    grid.append(input);
  }
}
const debouncedUpdate = debounce(() => update(), 250);

function buildChips() {
  const chips = $('f-kernels');
  for (const kernel of kernels) {
    chips.append(el('button', { type: 'button', class: 'chip', dataset: { name: kernel.name }, text: kernel.name, onclick: () => pickKernel(kernel.name) }));
  }
}

function pickKernel(name, refresh = true) {
  const kernel = kernels.find((k) => k.name === name);
  if (!kernel) return;
  state.kernel = name;
  setGrid(kernel.values);
  markChips();
  $('f-kernel-desc').textContent = kernel.description;
  if (refresh) update();
}

function setGrid(values) {
  const inputs = $('f-grid').querySelectorAll('input');
  values.flat().forEach((v, i) => {
    if (inputs[i]) inputs[i].value = fraction(v);
  });
  colourGrid();
}

function colourGrid() {
  for (const input of $('f-grid').querySelectorAll('input')) {
    const value = parseCell(input.value);
    input.classList.toggle('bad', Number.isNaN(value));
    input.classList.toggle('pos', value > 0);
    input.classList.toggle('neg', value < 0);
  }
}

function parseCell(text) {
  const t = text.trim();
  if (!t) return NaN;
  const parts = t.split('/');
  const v = parts.length === 2 ? Number(parts[0]) / Number(parts[1]) : Number(t);
  return parts.length > 2 ? NaN : v;
}

function markChips() {
  for (const chip of $('f-kernels').querySelectorAll('.chip')) {
    chip.classList.toggle('selected', chip.dataset.name === state.kernel);
  }
}

function kernelSpec() {
  if (state.kernel !== 'custom') return state.kernel;
  const cells = [...$('f-grid').querySelectorAll('input')].map((i) => i.value.trim() || '0');
  return [0, 1, 2].map((r) => cells.slice(3 * r, 3 * r + 3).join(' ')).join('; ');
}

function addThumb(sample, select = false) {
  const box = $('f-samples');
  const existing = box.querySelector(`[data-id="${sample.id}"]`);
  if (existing) existing.remove();
  const thumb = el(
    'button',
    { type: 'button', class: `thumb ${sample.width > 28 ? 'photo' : ''}`, title: sample.label, dataset: { id: sample.id }, onclick: () => selectImage(sample.id) },
    el('img', { src: sample.png, alt: sample.label }),
  );
  if (sample.id.startsWith('upload:')) box.prepend(thumb);
  else box.append(thumb);
  if (select) selectImage(sample.id);
}

function selectImage(id) {
  state.image = id;
  state.held = null;
  state.heldPool = null;
  for (const thumb of $('f-samples').querySelectorAll('.thumb')) {
    thumb.classList.toggle('selected', thumb.dataset.id === id);
  }
  update();
}

async function upload(event) {
  const file = event.target.files[0];
  event.target.value = '';
  if (!file) return;
  try {
    const picture = await api('/api/images', { method: 'POST', body: file, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
    say($('f-message'), '');
    addThumb(picture, true);
  } catch (error) {
    say($('f-message'), error.message);
  }
}

// --- filtering ----------------------------------------------------------------------------

async function update() {
  if (!state.image) return;
  const seq = ++filterSeq;
  const weight = Number($('f-weight').value);
  try {
    const result = await api('/api/filter', {
      json: { image: state.image, kernel: kernelSpec(), weight: Number.isFinite(weight) ? weight : 1, pool: Number($('f-pool').value) },
    });
    if (seq !== filterSeq) return; // a newer request is on its way
    say($('f-message'), '');
    show(result);
  } catch (error) {
    if (seq === filterSeq) say($('f-message'), error.message);
  }
}

function show(result) {
  state.result = result;
  const { image, filtered, pooled } = result;
  // One scale for all three pictures, so the shrinking from conv and pooling is visible.
  // On a phone the pictures stack (one a row), so each may take the whole width.
  const stacked = getComputedStyle($('f-in-frame').closest('.panels')).flexDirection === 'column';
  const width = $('f-out-frame').closest('.stage').clientWidth;
  const room = stacked ? width - 24 : Math.max(320, width - 280); // less the two operators between
  const across = stacked ? image.width : image.width + filtered.width + (pooled ? pooled.width : 0);
  let scale = Math.min(room / across, (stacked ? 300 : 340) / image.height);
  if (scale >= 1) scale = Math.floor(scale);
  state.scale = scale;
  place('f-in', image, scale);
  place('f-out', filtered, scale);
  $('f-pool-panel').hidden = !pooled;
  $('f-pool-op').hidden = !pooled;
  if (pooled) place('f-pooled', pooled, scale);
  $('f-in-size').textContent = `${image.height}×${image.width}`;
  $('f-out-size').textContent = `${filtered.height}×${filtered.width}`;
  $('f-pool-size').textContent = pooled ? `${pooled.height}×${pooled.width}` : '';
  $('f-pool-label').textContent = pooled ? `max pool ${result.pool}` : '';
  $('f-pipeline').textContent = result.pipeline;
  const held = state.held || [Math.floor(filtered.height / 2), Math.floor(filtered.width / 2)];
  if (state.heldPool && pooled) {
    const [pr, pc] = state.heldPool;
    state.heldPool = null; // asked again: the numbers changed with the filter
    explainPooled(Math.min(pr, pooled.height - 1), Math.min(pc, pooled.width - 1));
  } else {
    state.heldPool = null;
    explain(Math.min(held[0], filtered.height - 1), Math.min(held[1], filtered.width - 1));
  }
}

function place(id, picture, scale) {
  const img = $(id);
  img.src = picture.png;
  img.width = Math.round(picture.width * scale);
  img.height = Math.round(picture.height * scale);
}

// --- one pixel's arithmetic ------------------------------------------------------------

function hover(event, kind) {
  const result = state.result;
  if (!result) return;
  const box = event.currentTarget.getBoundingClientRect();
  const x = Math.floor((event.clientX - box.left) / state.scale);
  const y = Math.floor((event.clientY - box.top) / state.scale);
  if (kind === 'pooled') {
    explainPooled(y, x);
    return;
  }
  const k = result.kernel.values.length;
  let row = y;
  let col = x;
  if (kind === 'input') { // the output pixel whose window is centred here
    row = y - Math.floor(k / 2);
    col = x - Math.floor(k / 2);
  }
  explainAt(row, col);
}

/** Explain filtered pixel (row, col), clamped into the picture; nothing if it is shown already. */
function explainAt(row, col) {
  const { height, width } = state.result.filtered;
  const r = Math.max(0, Math.min(height - 1, row));
  const c = Math.max(0, Math.min(width - 1, col));
  if (!state.heldPool && state.held && state.held[0] === r && state.held[1] === c) return;
  state.heldPool = null;
  explain(r, c);
}

/** A pooled pixel: the largest of its block of filtered pixels, that pixel worked out. */
function explainPooled(row, col) {
  const pooled = state.result.pooled;
  if (!pooled) return;
  const r = Math.max(0, Math.min(pooled.height - 1, row));
  const c = Math.max(0, Math.min(pooled.width - 1, col));
  if (state.heldPool && state.heldPool[0] === r && state.heldPool[1] === c) return;
  state.heldPool = [r, c];
  drawMarks(null, null);
  wanted = { pool_row: r, pool_col: c };
  if (!inflight) pump();
}

// --- stepping: the arrow keys, the buttons, Play -------------------------------------------

function stepKey(event, kind) {
  const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  const move = moves[event.key];
  if (!move || !state.result) return;
  event.preventDefault();
  if (kind === 'pooled' && state.result.pooled) {
    const [r, c] = state.heldPool || [0, 0];
    explainPooled(r + move[0], c + move[1]);
  } else {
    const [r, c] = state.held || [0, 0];
    explainAt(r + move[0], c + move[1]);
  }
}

/** One pixel on, row by row (the way the filter slides): pooled pixels when one is held. */
function step(direction) {
  if (!state.result) return;
  if (state.heldPool && state.result.pooled) {
    const { height, width } = state.result.pooled;
    const at = (state.heldPool[0] * width + state.heldPool[1] + direction + height * width) % (height * width);
    explainPooled(Math.floor(at / width), at % width);
    return;
  }
  const { height, width } = state.result.filtered;
  const [r, c] = state.held || [0, -1];
  const at = (r * width + c + direction + height * width) % (height * width);
  explainAt(Math.floor(at / width), at % width);
}

function togglePlay() {
  const button = $('f-play');
  if (player) {
    clearInterval(player);
    player = null;
  } else {
    player = setInterval(() => (document.getElementById('tab-filters').hidden ? togglePlay() : step(1)), PLAY_MS);
  }
  button.textContent = player ? 'Pause' : 'Play';
  button.setAttribute('aria-pressed', player ? 'true' : 'false');
}

let inflight = false;
let wanted = null; // {row, col} or {pool_row, pool_col}: the latest pixel asked for

function explain(row, col) {
  state.held = [row, col];
  drawMarks(row, col);
  wanted = { row, col };
  if (!inflight) pump();
}

async function pump() {
  inflight = true;
  while (wanted) {
    const where = wanted;
    wanted = null;
    try {
      const weight = Number($('f-weight').value);
      const body = { image: state.image, kernel: kernelSpec(), weight: Number.isFinite(weight) ? weight : 1, ...where };
      if ('pool_row' in where) body.pool = state.result.pool;
      const work = await api('/api/pixel', { json: body });
      if (wanted) continue;
      if (work.pooling) {
        state.held = [work.row, work.col];
        drawMarks(work.row, work.col);
      }
      renderArithmetic(work);
    } catch (error) {
      say($('f-message'), error.message);
    }
  }
  inflight = false;
}

function drawMarks(row, col) {
  const s = state.scale;
  const k = state.result.kernel.values.length;
  const pool = state.result.pool;
  const box = (id, top, left, size) => {
    const mark = $(id);
    mark.hidden = false;
    Object.assign(mark.style, { top: `${top * s}px`, left: `${left * s}px`, width: `${size * s}px`, height: `${size * s}px` });
  };
  if (row !== null) {
    box('f-in-mark', row, col, k);
    box('f-out-mark', row, col, 1);
  }
  $('f-out-block').hidden = true;
  if (pool && state.result.pooled) {
    const [pr, pc] = state.heldPool || [
      Math.min(Math.floor(row / pool), state.result.pooled.height - 1),
      Math.min(Math.floor(col / pool), state.result.pooled.width - 1),
    ];
    box('f-pool-mark', pr, pc, 1);
    if (state.heldPool) box('f-out-block', pr * pool, pc * pool, pool);
  }
}

function renderArithmetic(work) {
  const [cr, cc] = work.centre;
  const gray = (v) => `rgb(${v}, ${v}, ${v})`;
  const block = (title, grid) => el('div', { class: 'block' }, el('span', { class: 'title', text: title }), grid);
  const neighbourhood = cellGrid(work.neighbourhood, (v) => [num(v), '', gray(Math.max(0, Math.min(255, Math.round(v))))]);
  const weights = cellGrid(work.weights, (v) => [fraction(v), signClass(v)]);
  const products = cellGrid(work.products, (v) => [num(v), signClass(v)]);
  const n = work.weights.length * work.weights[0].length;
  const result = el(
    'div',
    { class: 'result' },
    el('span', { text: `sum of the ${n} products` }),
    el('b', { class: 'total', id: 'f-sum', text: num(work.total) }),
    work.weight !== 1 ? [el('span', { class: 'sign', text: '×' }), el('span', { text: `weight ${num(work.weight)} =` }), el('b', { text: num(work.weighted) })] : null,
    el('span', { class: 'sign', text: '→' }),
    el('span', { text: 'clamped to 0..255:' }),
    el('b', { id: 'f-clamped', text: String(work.clamped) }),
    swatch(work.clamped),
  );
  const lead = el('p', { class: 'lead', id: 'f-pixel', dataset: { row: work.row, col: work.col } });
  lead.append(
    'Filtered pixel ', el('b', { text: `[${work.row}, ${work.col}]` }),
    ` = the ${work.weights.length}×${work.weights.length} neighbourhood of input pixel `,
    el('b', { text: `[${cr}, ${cc}]` }), ', times the filter cell by cell, added up.',
  );
  $('f-arith').replaceChildren(
    ...(work.pooling ? [poolingStep(work.pooling)] : []),
    lead,
    block('neighbourhood', neighbourhood),
    el('span', { class: 'sign', text: '×' }),
    block('filter', weights),
    el('span', { class: 'sign', text: '=' }),
    block('products', products),
    result,
  );
}

/** The pooling step: the block of filtered values, its largest marked, and where it came from. */
function poolingStep(pooling) {
  const k = pooling.size;
  const lead = el('p', { class: 'lead', id: 'f-pool-pixel', dataset: { row: pooling.row, col: pooling.col } });
  lead.append(
    'Pooled pixel ', el('b', { text: `[${pooling.row}, ${pooling.col}]` }),
    ` = the largest of the ${k}×${k} block of filtered pixels from `, el('b', { text: `[${pooling.top}, ${pooling.left}]` }),
    ' (before clamping). The largest is ', el('b', { text: `[${pooling.at[0]}, ${pooling.at[1]}]` }), ', worked out below.',
  );
  const [mr, mc] = [pooling.at[0] - pooling.top, pooling.at[1] - pooling.left];
  const shown = pooling.shown; // the pooled picture's gray level
  const grid = cellGrid(pooling.block, (v, i) => [num(v), Math.floor(i / k) === mr && i % k === mc ? 'max' : '', null]);
  return el(
    'div',
    { class: 'pool-step' },
    lead,
    el('div', { class: 'block' }, el('span', { class: 'title', text: 'filtered block' }), grid),
    el('span', { class: 'sign', text: '→' }),
    el('div', { class: 'result' }, el('span', { text: 'max' }), el('b', { id: 'f-pool-max', text: num(pooling.max) }),
      el('span', { class: 'sign', text: '→' }), el('span', { text: 'clamped:' }), el('b', { text: String(shown) }), swatch(shown)),
  );
}

function swatch(v) {
  const node = el('span', { class: 'swatch', title: `gray level ${v}` });
  node.style.background = `rgb(${v}, ${v}, ${v})`;
  return node;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
