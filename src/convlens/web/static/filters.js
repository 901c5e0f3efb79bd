// 1. Filter playground: a picture, a kernel, and the arithmetic of any pixel.
// The server convolves with convlens.ops (the same code as `convlens filter`); this
// module only asks, shows, and maps the mouse to pixel coordinates.
import { api, cellGrid, el, fraction, num, say, signClass } from './util.js';

const $ = (id) => document.getElementById(id);
const state = {
  image: null,
  kernel: 'vertical', // a library name, or 'custom' for the grid's numbers
  result: null,
  scale: 1,
  held: null, // [row, col] of the output pixel being explained
};
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
  const room = Math.max(320, $('f-out-frame').closest('.stage').clientWidth - 200);
  const across = image.width + filtered.width + (pooled ? pooled.width : 0);
  let scale = Math.min(room / across, 340 / image.height);
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
  explain(Math.min(held[0], filtered.height - 1), Math.min(held[1], filtered.width - 1));
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
  const k = result.kernel.values.length;
  const { height, width } = result.filtered;
  let row = y;
  let col = x;
  if (kind === 'input') { // the output pixel whose window is centred here
    row = y - Math.floor(k / 2);
    col = x - Math.floor(k / 2);
  } else if (kind === 'pooled') { // the top-left pixel of the pooling window
    row = y * result.pool;
    col = x * result.pool;
  }
  row = Math.max(0, Math.min(height - 1, row));
  col = Math.max(0, Math.min(width - 1, col));
  if (state.held && state.held[0] === row && state.held[1] === col) return;
  explain(row, col);
}

let inflight = false;
let wanted = null;

function explain(row, col) {
  state.held = [row, col];
  drawMarks(row, col);
  wanted = [row, col];
  if (!inflight) pump();
}

async function pump() {
  inflight = true;
  while (wanted) {
    const [row, col] = wanted;
    wanted = null;
    try {
      const weight = Number($('f-weight').value);
      const work = await api('/api/pixel', {
        json: { image: state.image, kernel: kernelSpec(), weight: Number.isFinite(weight) ? weight : 1, row, col },
      });
      if (!wanted) renderArithmetic(work);
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
  box('f-in-mark', row, col, k);
  box('f-out-mark', row, col, 1);
  if (pool && state.result.pooled) {
    const pr = Math.min(Math.floor(row / pool), state.result.pooled.height - 1);
    const pc = Math.min(Math.floor(col / pool), state.result.pooled.width - 1);
    box('f-pool-mark', pr, pc, 1);
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
    lead,
    block('neighbourhood', neighbourhood),
    el('span', { class: 'sign', text: '×' }),
    block('filter', weights),
    el('span', { class: 'sign', text: '=' }),
    block('products', products),
    result,
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
