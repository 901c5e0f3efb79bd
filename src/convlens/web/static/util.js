// Small helpers shared by the four tabs: the API call, element building, number formats.

/** Call the JSON API; on a 4xx/5xx throw an Error whose message is the server's one line. */
export async function api(path, options = {}) {
  const init = { ...options };
  if (init.json !== undefined) {
    init.method = init.method || 'POST';
    init.headers = { 'Content-Type': 'application/json', ...(init.headers || {}) };
    init.body = JSON.stringify(init.json);
    delete init.json;
  }
  const response = await fetch(path, init);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.body = body;
    throw error;
  }
  return body;
}

/** el('div', {class: 'x', text: 'hi', onclick: f}, child, ...) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svgEl(tag, attrs = {}, text = null) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

export const pct = (x, digits = 1) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(digits)}%`);

/** Numbers as people write them (as convlens' format_number): 12, -0.5, 0.333333. */
export function num(value) {
  if (value === null || value === undefined) return '–';
  if (Number.isInteger(value)) return String(value);
  const text = Number(value).toPrecision(6);
  return text.includes('e') ? text : String(Number(text));
}

/** Kernel weights as typed: 1/9 and 1/16 stay fractions, the rest plain numbers. */
export function fraction(value) {
  if (Number.isInteger(value)) return String(value);
  for (let d = 2; d <= 16; d += 1) {
    const n = value * d;
    if (Math.abs(n - Math.round(n)) < 1e-9) return `${Math.round(n)}/${d}`;
  }
  return num(value);
}

/** The optimizers as people write them (TrainConfig's choices are their lower-case names). */
export const OPTIMIZERS = { adam: 'Adam', adamw: 'AdamW', sgd: 'SGD' };

/** A training recipe (config.json's "train") in one line: "Adam · batch 32 · lr 0.001 · constant". */
export function recipeText(train) {
  if (!train) return '';
  const parts = [
    train.optimizer && (OPTIMIZERS[train.optimizer] || train.optimizer),
    train.batch_size != null && `batch ${train.batch_size}`,
    train.lr != null && `lr ${num(train.lr)}`,
    train.schedule && (train.schedule === 'onecycle' ? 'one-cycle' : train.schedule),
    train.optimizer === 'sgd' && train.momentum != null && `momentum ${num(train.momentum)}`,
    train.weight_decay > 0 && `weight decay ${num(train.weight_decay)}`,
    train.schedule === 'onecycle' && train.warmup != null && train.warmup !== 0.25 && `warm-up ${num(train.warmup)}`,
    train.schedule === 'onecycle' && train.anneal === 'linear' && 'linear decay',
    train.schedule === 'onecycle' && train.final_lr_scale != null && train.final_lr_scale !== 0.001 && `ending at lr ×${num(train.final_lr_scale)}`,
    train.label_smoothing > 0 && `label smoothing ${num(train.label_smoothing)}`,
    train.augment && 'augment',
    train.augment && train.flip === 'alternate' && 'alternating flips',
    train.tta_flip && 'flip at test time',
    train.tta_shift && 'shifts at test time',
    train.ema > 0 && `weight average ${num(train.ema)}`,
    train.lookahead > 0 && `lookahead every ${train.lookahead} steps, keeping ${num(train.lookahead_alpha)}`,
    train.norm_lr_scale != null && train.norm_lr_scale !== 1 && `batchnorm and biases at ${num(train.norm_lr_scale)}x lr`,
    train.epoch_images != null && `${thousands(train.epoch_images)} images an epoch`,
    train.resize && resizeText(train.resize),
  ];
  return parts.filter(Boolean).join(' · ');
}

/** "16:0.25,22:0.25" (TrainConfig.resize) -> "first 16×16 for 25% of the epochs, then 22×22 for 25%". */
function resizeText(stages) {
  const parts = stages.split(',').map((stage) => {
    const [size, fraction] = stage.split(':');
    return `${size}×${size} for ${num(Number(fraction) * 100)}%`;
  });
  return `first ${parts.join(', then ').replace('%', '% of the epochs')}`;
}

export const thousands = (n) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));

/** Show a one-line message in a .message element, or hide it with an empty text. */
export function say(node, text, kind = 'error') {
  node.textContent = text || '';
  node.hidden = !text;
  node.classList.toggle('info', kind === 'info');
}

/** The class for a signed number: pos, neg or zero (green, purple, gray). */
export const signClass = (v) => (v > 0 ? 'pos' : v < 0 ? 'neg' : 'zero');

/** A k x k grid of cells; fill(value, index) gives [text, class, css background]. */
export function cellGrid(rows, fill) {
  const k = rows[0].length;
  const grid = el('div', { class: 'cells' });
  grid.style.gridTemplateColumns = `repeat(${k}, auto)`;
  rows.flat().forEach((value, index) => {
    const [text, cls, background] = fill(value, index);
    const cell = el('div', { class: `cell ${cls || ''}`, text });
    if (background) {
      cell.style.background = background;
      cell.style.color = background.startsWith('rgb(') && grayOf(background) < 128 ? '#fff' : '#111';
    }
    grid.append(cell);
  });
  return grid;
}

function grayOf(rgb) {
  return Number(rgb.slice(4).split(',')[0]);
}

/** A tiny event bus between tabs: 'runs-changed' after a training ends, 'open-run' (detail:
 * the run's name) from Train to Runs, so tab modules need not import each other. */
export const bus = new EventTarget();

/**
 * A preset's description as the page shows it: plain words. The library writes them for
 * the terminal and the docs, with *emphasis* and pointers such as "(see BENCHMARKS.md)"
 * that mean nothing in a browser.
 */
export function plainText(text) {
  return String(text || '')
    .replace(/\s*\((?:see|in) [^()]*\.md\)/gi, '')
    .replace(/\*\*([^*]+)\*\*|\*([^*]+)\*|`([^`]+)`|_([^_]+)_/g, (m, a, b, c, d) => a || b || c || d)
    .replace(/\s+([.,;:])/g, '$1')
    .trim();
}
