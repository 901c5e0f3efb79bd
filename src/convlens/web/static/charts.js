// Accuracy per epoch as an SVG chart: train blue, test red, one line style per run.
// Used live in the Train tab and for one run, two runs side by side (one y scale for
// both) or two runs overlaid in the Runs tab. Epochs are whole numbers on the x axis.
import { svgEl } from './util.js';

const NARROW = window.matchMedia('(max-width: 700px)');
// A phone draws on a narrower canvas, so the labels keep a readable size.
const size = () => (NARROW.matches ? [400, 300] : [640, 280]);
const M = { l: 52, r: 16, b: 40 }; // the legend sits above the plot (one line a run), clear of ticks
const DASHES = ['', '7 5']; // first run solid, second dashed

/** The lowest accuracy shown for some histories: below their lowest value, on a round tick. */
export function floorOf(histories) {
  const values = histories.flat().flatMap((r) => [r.train_accuracy, r.test_accuracy, r.running_accuracy, r.tta_train_accuracy, r.tta_test_accuracy]).filter((v) => v != null);
  if (!values.length) return 0;
  const rough = Math.max(0, Math.floor(Math.min(...values) * 10) / 10 - 0.1);
  const step = tickStep(1 - rough);
  return Math.max(0, 1 - step * Math.ceil((1 - rough) / step - 1e-9));
}

/** Accuracy ticks every 5, 10 or 20 points: at most six lines. */
const tickStep = (range) => (range <= 0.25 ? 0.05 : range <= 0.5 ? 0.1 : 0.2);

/**
 * series: [{ name, history: [{epoch, train_accuracy, test_accuracy}] }] (one or two); the
 * lines are the image alone, and an epoch judged with test-time views too (the last of a
 * recipe with views: tta_views, tta_train_accuracy, tta_test_accuracy) adds a diamond each;
 * epochs: the x axis' last epoch; floor: the y axis' lowest accuracy (shared when comparing).
 */
export function accuracyChart({ series, epochs, floor = null, label = 'accuracy per epoch' }) {
  const [W, H] = size();
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  const last = Math.max(1, epochs || 1, ...series.flatMap((s) => s.history.map((r) => r.epoch)));
  const low = floor === null ? floorOf(series.map((s) => s.history)) : floor;
  const top = 16 + 18 * series.length;
  const plotW = W - M.l - M.r;
  // One epoch: a single column in the middle; otherwise epoch 1 at the left, the last at the right.
  const x = (e) => (last === 1 ? M.l + plotW / 2 : M.l + ((e - 1) / (last - 1)) * plotW);
  const y = (a) => H - M.b - ((a - low) / (1 - low)) * (H - top - M.b);
  const step = tickStep(1 - low);
  for (let a = 1; a >= low - 1e-9; a -= step) {
    svg.append(svgEl('line', { class: 'gridline', x1: M.l, x2: W - M.r, y1: y(a), y2: y(a) }));
    svg.append(svgEl('text', { x: M.l - 6, y: y(a) + 4, 'text-anchor': 'end' }, `${Math.round(100 * a)}%`));
  }
  const every = Math.max(1, Math.ceil(last / 10));
  for (let e = 1; e <= last; e += every) {
    svg.append(svgEl('text', { class: 'tick', x: x(e), y: H - M.b + 16, 'text-anchor': 'middle' }, String(e)));
  }
  svg.append(svgEl('text', { x: M.l + plotW / 2, y: H - 4, 'text-anchor': 'middle' }, 'epoch'));
  svg.append(svgEl('line', { class: 'axis', x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
  series.forEach((s, i) => {
    for (const [key, cls] of [[trainKey(s.history), 'train'], ['test_accuracy', 'test']]) {
      const rows = s.history.filter((r) => r[key] != null);
      if (!rows.length) continue;
      const d = rows.map((r, j) => `${j ? 'L' : 'M'}${x(r.epoch).toFixed(1)},${y(r[key]).toFixed(1)}`).join(' ');
      svg.append(svgEl('path', { class: cls, d, 'stroke-dasharray': DASHES[i] || '' }));
      for (const r of rows) {
        const dot = svgEl('circle', { class: i ? `${cls} hollow` : cls, cx: x(r.epoch), cy: y(r[key]), r: i ? 3.5 : 4 });
        const what = cls === 'test' && r.test_sampled ? `test (${r.test_images} sampled)` : cls;
        dot.append(svgEl('title', {}, `${s.name || ''} epoch ${r.epoch}: ${what} ${(100 * r[key]).toFixed(2)}%`));
        svg.append(dot);
      }
      for (const r of s.history.filter((row) => row[`tta_${key}`] != null)) {
        const [cx, cy] = [x(r.epoch), y(r[`tta_${key}`])];
        const diamond = svgEl('path', { class: `${cls} views`, d: diamondPath(cx, cy, 6) });
        diamond.append(svgEl('title', {}, `${s.name || ''} epoch ${r.epoch}: ${cls} with ${r.tta_views} views ${(100 * r[`tta_${key}`]).toFixed(2)}%`));
        svg.append(diamond);
      }
    }
  });
  legend(svg, series, W);
  return svg;
}

const diamondPath = (cx, cy, r) => `M${cx.toFixed(1)},${(cy - r).toFixed(1)} l${r},${r} l${-r},${r} l${-r},${-r} Z`;

/** The test-time views of the epochs judged with them (0: none). */
const viewsOf = (history) => Math.max(0, ...history.map((r) => r.tta_views || 0));

/** Runs before convlens measured train accuracy have only the running mean over the steps. */
const trainKey = (history) => (history.some((r) => r.train_accuracy != null) || !history.some((r) => r.running_accuracy != null) ? 'train_accuracy' : 'running_accuracy');

function legend(svg, series, W) {
  series.forEach((s, i) => {
    const line = 14 + 18 * i;
    let at = M.l;
    const put = (text, cls) => {
      svg.append(svgEl('line', { class: `key ${cls}`, x1: at, x2: at + 22, y1: line, y2: line, 'stroke-dasharray': DASHES[i] || '' }));
      svg.append(svgEl('text', { class: `legend ${cls}`, x: at + 28, y: line + 4 }, text));
      at += 40 + 7.5 * text.length;
    };
    put(trainKey(s.history) === 'train_accuracy' ? 'train accuracy' : 'train (running mean)', 'train');
    put('test accuracy', 'test');
    const views = viewsOf(s.history);
    if (views) { // the lines are the image alone; the diamonds the same epoch with the views
      const text = `◆ ${views} views`;
      const label = svgEl('text', { class: 'legend views', x: at, y: line + 4 }, text);
      if (at + 8 * text.length > W - 4) label.setAttribute('x', W - 4), label.setAttribute('text-anchor', 'end');
      svg.append(label);
      at += 12 + 7.5 * text.length;
    }
    if (series.length > 1) {
      const name = svgEl('text', { class: 'legend', x: at, y: line + 4 }, `${s.name}${i ? ' (dashed)' : ' (solid)'}`);
      if (at > W - 120) name.setAttribute('x', W - 4), name.setAttribute('text-anchor', 'end');
      svg.append(name);
    }
  });
}
