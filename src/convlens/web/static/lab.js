// The page: four tabs, each a module. The hash (#filters, #predict, ...) picks the tab,
// so a teacher can bookmark the one to show.
import { initFilters } from './filters.js';
import { initPredict } from './predict.js';
import { initRuns } from './runs.js';
import { initTrain } from './train.js';
import { api } from './util.js';

const TABS = ['filters', 'predict', 'runs', 'train'];
const shown = new Set();

function showTab() {
  const name = TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'filters';
  for (const section of document.querySelectorAll('section.tab')) {
    section.hidden = section.dataset.tab !== name;
  }
  for (const link of document.querySelectorAll('.tabs a')) {
    link.classList.toggle('active', link.dataset.tab === name);
  }
  document.dispatchEvent(new CustomEvent('tab-shown', { detail: name }));
  shown.add(name);
}

async function about() {
  try {
    const info = await api('/api');
    document.getElementById('version').textContent = info.convlens;
    document.getElementById('runs-dir').textContent = info.runs_dir;
  } catch {
    /* the footer is a nicety */
  }
}

window.addEventListener('hashchange', showTab);
showTab();
about();
initFilters();
initPredict();
initRuns();
initTrain();
