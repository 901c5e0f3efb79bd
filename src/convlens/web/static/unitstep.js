// Step through a learned convolution: one pixel of a conv layer's map, worked out as the
// layer works it out. On the first conv layer that is nine products summed (like the
// Filters tab, plus a bias); on conv2d_1 it is one small sum per input map (64 of them
// for the lesson's cnn), added up. The arrow keys or Play move the window.
import { api, cellGrid, el, num, signClass } from './util.js';

const PLAY_MS = 450;

/**
 * The panel for map `index` of conv layer `layer` (shape [C, H, W]); `source()` gives the
 * request's picture ({pixels} or {image}); `run` is the run's name; `mapPng` the map drawn.
 */
export function unitStepper({ run, layer, index, shape, mapPng, source }) {
  const [, height, width] = shape;
  const at = { row: Math.floor(height / 2), col: Math.floor(width / 2) };
  let timer = null;
  let seq = 0;
  const mark = el('div', { class: 'mark' });
  const where = el('div', { class: 'where', tabindex: '0', role: 'group', 'aria-label': `${layer} map ${index}: the arrow keys move the pixel worked out` }, el('img', { src: mapPng, alt: `${layer} map ${index}` }), mark);
  const play = el('button', { type: 'button', class: 'secondary', 'aria-pressed': 'false', text: 'Play' });
  const work = el('div', { class: 'unit-work', 'aria-live': 'polite' });
  const panel = el(
    'div',
    { class: 'unit-step', dataset: { layer, index } },
    el('h3', { text: 'Step through the convolution' }),
    el('p', { class: 'note', text: 'The marked pixel of this map, worked out. Click the map and use the arrow keys, or press Play.' }),
    el('div', { class: 'stepper' }, where, play),
    work,
  );

  const move = (dr, dc) => {
    at.col += dc;
    at.row += dr;
    if (at.col >= width) { at.col = 0; at.row += 1; }
    if (at.col < 0) { at.col = width - 1; at.row -= 1; }
    at.row = (at.row + height) % height;
    show();
  };
  where.addEventListener('keydown', (event) => {
    const steps = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    if (!steps[event.key]) return;
    event.preventDefault();
    move(...steps[event.key]);
  });
  where.addEventListener('click', (event) => {
    const box = where.getBoundingClientRect();
    at.col = Math.min(width - 1, Math.floor(((event.clientX - box.left) / box.width) * width));
    at.row = Math.min(height - 1, Math.floor(((event.clientY - box.top) / box.height) * height));
    show();
  });
  play.addEventListener('click', () => {
    if (timer) { stop(); return; }
    play.textContent = 'Pause';
    play.setAttribute('aria-pressed', 'true');
    timer = setInterval(() => (panel.isConnected ? move(0, 1) : stop()), PLAY_MS);
  });
  function stop() {
    clearInterval(timer);
    timer = null;
    play.textContent = 'Play';
    play.setAttribute('aria-pressed', 'false');
  }

  async function show() {
    const mine = ++seq;
    Object.assign(mark.style, {
      top: `${(100 * at.row) / height}%`, left: `${(100 * at.col) / width}%`,
      width: `${100 / width}%`, height: `${100 / height}%`,
    });
    try {
      const unit = await api('/api/unit', { json: { run, ...source(), layer, index, row: at.row, col: at.col } });
      if (mine === seq) work.replaceChildren(...describe(unit));
    } catch (error) {
      if (mine === seq) work.replaceChildren(el('p', { class: 'message', text: error.message }));
    }
  }
  show();
  return panel;
}

function describe(unit) {
  const k = unit.kernel.join('×'); // kh×kw
  const lead = el('p', { class: 'lead', dataset: { row: unit.row, col: unit.col } });
  const activation = unit.activation || 'no activation';
  const after = unit.activation ? `${unit.activation}(${num(round(unit.pre_activation))}) = ` : '';
  const total = el('p', { class: 'unit-total', dataset: { value: unit.value, layerValue: unit.layer_value } },
    `sum ${num(round(unit.pre_activation - unit.bias))} + bias ${num(round(unit.bias))} = ${num(round(unit.pre_activation))} → ${after}`,
    el('b', { class: 'unit-value', text: num(round(unit.value)) }),
    ` (the layer's own output: ${num(round(unit.layer_value))})`);
  if (unit.channels.length === 1) {
    const [ch] = unit.channels;
    lead.append(`Pixel [${unit.row}, ${unit.col}] of ${unit.layer} = the ${k} window of ${unit.input} at [${unit.top}, ${unit.left}] (values 0..1), times the learned weights, summed, plus the bias, then ${activation}.`);
    const block = (title, rows, fill) => el('div', { class: 'block' }, el('span', { class: 'title', text: title }), cellGrid(rows, fill));
    return [
      lead,
      el('div', { class: 'arith' },
        block('window', ch.window, (v) => [num(round(v, 3)), '', gray(v)]),
        el('span', { class: 'sign', text: '×' }),
        block('weights', ch.weights, (v) => [num(round(v, 3)), signClass(v)]),
        el('span', { class: 'sign', text: '=' }),
        block('products', ch.products, (v) => [num(round(v, 3)), signClass(v)])),
      total,
    ];
  }
  lead.append(`Pixel [${unit.row}, ${unit.col}] of ${unit.layer} looks at all ${unit.channels.length} maps of ${unit.input} at once: for each, its ${k} window times that map's ${k} weights, summed (one small sum each, below); the ${unit.channels.length} sums are added, plus the bias, then ${activation}.`);
  const sums = el('div', { class: 'channel-sums' });
  for (const ch of unit.channels) {
    sums.append(el('div', { class: `ch ${signClass(round(ch.sum, 3))}`, title: `map ${ch.channel}: ${num(round(ch.sum, 5))}` }, el('span', { text: `#${ch.channel}` }), el('br'), num(round(ch.sum, 3))));
  }
  return [lead, sums, total];
}

const round = (v, digits = 4) => Number(Number(v).toFixed(digits));
const gray = (v) => {
  const g = Math.round(255 * Math.max(0, Math.min(1, v)));
  return `rgb(${g}, ${g}, ${g})`;
};
