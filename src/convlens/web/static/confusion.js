// A run's confusion matrix as buttons: a cell off the diagonal opens its test images, the
// network's most confident mistakes first; one of them opens in Predict & journey.
import { api, bus, el, pct } from './util.js';

/** The matrix (rows: true class, columns: predicted) of run.metrics.confusion, clickable. */
export function confusionMatrix(run) {
  const matrix = run.metrics.confusion;
  const names = run.metrics.class_names || run.classes || matrix.map((_, k) => String(k));
  const panel = el('div', { class: 'mistakes-panel', 'aria-live': 'polite' });
  const table = el('table', { class: 'confusion' });
  table.append(el('thead', {}, el('tr', {}, el('td'), ...names.map((n) => el('th', { scope: 'col', text: n })))));
  const body = el('tbody');
  matrix.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const tr = el('tr', {}, el('th', { scope: 'row', text: names[t] }));
    row.forEach((count, p) => {
      const share = count / total;
      const right = t === p;
      const button = el('button', {
        type: 'button',
        class: `${right ? 'right' : 'wrong'}`,
        text: String(count),
        'aria-label': `${count} ${names[t]} test images ${right ? 'classified correctly' : `classified as ${names[p]}`}`,
        disabled: right || count === 0 ? true : null,
        dataset: { true: t, predicted: p },
        onclick: () => openCell(run, names, t, p, table, panel),
      });
      shade(button, share, right);
      tr.append(el('td', {}, button));
    });
    body.append(tr);
  });
  table.append(body);
  return el(
    'div',
    { class: 'confusion-part' },
    el('h3', { text: 'Confusion matrix (test set)' }),
    el('p', { class: 'note', text: 'Rows: the true class · columns: what the network said. Pick a cell off the diagonal to see those test images.' }),
    el('div', { class: 'confusion-wrap', tabindex: '0', role: 'region', 'aria-label': `confusion matrix of ${run.name}` }, table),
    panel,
  );
}

/** Blue for the diagonal, orange off it, darker for a larger share of the row; text stays readable. */
function shade(button, share, right) {
  const t = Math.min(1, right ? share : share * 4); // mistakes are rarer: stretch them
  const [r, g, b] = right ? [31, 119, 180] : [181, 71, 8];
  const mix = (x) => Math.round(255 + (x - 255) * t);
  button.style.background = `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
  button.style.color = t > 0.55 ? '#fff' : '#1f2933';
  button.style.opacity = '1';
}

async function openCell(run, names, t, p, table, panel) {
  for (const b of table.querySelectorAll('button.picked')) b.classList.remove('picked');
  table.querySelector(`button[data-true="${t}"][data-predicted="${p}"]`).classList.add('picked');
  panel.replaceChildren(el('p', { class: 'note', text: `Finding the ${names[t]} test images taken for ${names[p]} (the first time, the run answers its whole test set)…` }));
  try {
    const cell = await api(`/api/runs/${run.name}/mistakes?true=${t}&predicted=${p}&limit=24`);
    const views = [cell.tta_flip && 'its mirror image', cell.tta_shift && 'shifted copies'].filter(Boolean);
    const flip = views.length ? ` (each averaged with ${views.join(' and ')}, as the run was evaluated)` : '';
    panel.replaceChildren(
      el('p', { class: 'note', text: `${cell.count} of the ${cell.of} test images of “${cell.true_label}” were called “${cell.predicted_label}”${flip}; the ${cell.items.length} it was surest of, most confident first. Pick one to follow it through the network.` }),
      el('div', { class: 'mistakes' }, ...cell.items.map((item) => el(
        'button',
        { type: 'button', class: 'mistake', dataset: { index: item.index }, 'aria-label': `test image ${item.index}: ${cell.predicted_label} ${pct(item.confidence)}, truly ${cell.true_label}`, onclick: () => openInPredict(run, cell, item) },
        el('img', { src: item.png, alt: '' }),
        el('span', { text: `#${item.index}` }),
        el('span', { text: `“${cell.predicted_label}” ${pct(item.confidence)}` }),
      ))),
    );
  } catch (error) {
    panel.replaceChildren(el('p', { class: 'message', text: error.message }));
  }
}

function openInPredict(run, cell, item) {
  const note = `Test image ${item.index} of ${run.name}'s test set: truly ${cell.true_label}, which the run called ${cell.predicted_label} (${pct(item.confidence)} in the Runs tab's evaluation).`;
  bus.dispatchEvent(new CustomEvent('open-picture', { detail: { run: run.name, png: item.png, note } }));
  location.hash = '#predict';
}
