// What a learner trips over on a phone, in the tab shown (test_browser.fits_a_phone):
// anything wider than the screen, a tap target under 24x24 CSS pixels (WCAG 2.2's
// minimum; a control wrapped in its label counts the label), a confusion matrix with
// columns scrolled out of sight, a number broken across lines.
(tab) => {
  const root = document.querySelector(tab), width = document.documentElement.clientWidth;
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const wide = [], small = [], hidden = [], broken = [];
  const name = (e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`;
  for (const e of root.querySelectorAll('*')) {
    if (!shown(e) || e.closest('.table-scroll, .strip')) continue;  // scrollers on purpose
    const box = e.getBoundingClientRect();
    if (box.right > width + 0.5 || box.left < -0.5) wide.push(name(e));
  }
  const targets = 'button, a.button, select, textarea, summary, [tabindex="0"],'
    + ' input:not([type="hidden"]):not(.visually-hidden)';
  for (const e of root.querySelectorAll(targets)) {
    if (!shown(e)) continue;
    const label = e.closest('label'), box = (label || e).getBoundingClientRect();
    if (box.width < 24 || box.height < 24) small.push(`${name(label || e)} ${Math.round(box.width)}x${Math.round(box.height)}`);
  }
  for (const e of root.querySelectorAll('.confusion-wrap')) {
    if (shown(e) && e.scrollWidth > e.clientWidth + 1) hidden.push(`${e.scrollWidth} > ${e.clientWidth}`);
  }
  for (const e of root.querySelectorAll('.layers-table .num')) {
    const range = document.createRange(); range.selectNodeContents(e);
    if (shown(e) && new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1) broken.push(e.textContent);
  }
  return {wide, small, hidden, broken};
}
