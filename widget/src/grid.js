// The result grid: a single-select ARIA listbox laid out as a grid, with roving focus.
//
// Pattern: WAI-ARIA Authoring Practices "Listbox" (https://www.w3.org/WAI/ARIA/apg/patterns/listbox/).
// One option is in the tab order at a time (tabindex 0, the rest -1); the arrow keys move it
// in two dimensions, Home/End jump, Enter/Space select and Escape hands back to the element.

import { h } from './dom.js';
import { isExact, safeUrl } from './api.js';

const text = (value) => (typeof value === 'string' ? value.trim() : value == null ? '' : String(value));

export class ResultGrid {
  /** `onSelect(hit, index)` runs when an option is chosen; `onEscape()` on Escape. */
  constructor({ onSelect, onEscape }) {
    this.onSelect = onSelect;
    this.onEscape = onEscape;
    this.hits = [];
    this.active = 0;
    this.selected = -1;
    this.el = h('div', { part: 'grid', class: 'grid', role: 'listbox', hidden: true });
    this.el.addEventListener('keydown', (event) => this.#keydown(event));
    this.el.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option) this.select(this.#options().indexOf(option), true);
    });
  }

  /**
   * Show `hits`. `ctx`: {t (translator), base (URL relative links resolve against), scores
   * (bool)}. Keeps the selection when `keep` is true (a relabel) and clears it otherwise.
   */
  render(hits, ctx, keep = false) {
    this.hits = hits;
    if (!keep) {
      this.active = 0;
      this.selected = -1;
    }
    this.el.replaceChildren(...hits.map((hit, i) => this.#option(hit, i, ctx)));
    this.el.hidden = hits.length === 0;
  }

  setLabel(label) {
    this.el.setAttribute('aria-label', label);
  }

  setBusy(busy) {
    if (busy) this.el.setAttribute('aria-busy', 'true');
    else this.el.removeAttribute('aria-busy');
  }

  /** Move keyboard focus to the active option (the first one after a new page). */
  focus() {
    const option = this.#options()[this.active];
    if (option) option.focus();
  }

  /** Select option `index` (and focus it when `focus`); -1 clears the selection. */
  select(index, focus = false) {
    const options = this.#options();
    this.selected = index;
    options.forEach((option, i) => option.setAttribute('aria-selected', String(i === index)));
    if (index < 0 || index >= options.length) return;
    this.#moveTo(index, focus);
    this.onSelect(this.hits[index], index);
  }

  #options() {
    return [...this.el.children];
  }

  #option(hit, i, { t, base, scores }) {
    const src = safeUrl(hit.thumbnail, base);
    const thumb = src
      ? h('img', { part: 'thumbnail', class: 'thumb', src, alt: '', loading: 'lazy', decoding: 'async' })
      : h('span', { part: 'thumbnail', class: 'thumb' });
    const book = hit.book && typeof hit.book === 'object' ? hit.book : {};
    const page = hit.page && typeof hit.page === 'object' ? hit.page : {};
    const pageLabel =
      text(page.label) || (Number.isInteger(page.index) ? t('pageLabel', { n: page.index + 1 }) : '');
    const meta = [text(book.title), text(book.date), pageLabel].filter(Boolean).join(' · ');
    // Inside the option, so its accessible name (from its content) says it too.
    const exact = isExact(hit) ? h('span', { part: 'exact', class: 'exact', text: t('exactMatch') }) : null;
    const score =
      scores && typeof hit.score === 'number'
        ? h('span', { part: 'score', class: 'score', text: t('score', { s: t.number(hit.score, 3) }) })
        : null;
    return h(
      'div',
      {
        part: exact ? 'hit exact-hit' : 'hit',
        role: 'option',
        'aria-selected': String(i === this.selected),
        tabindex: i === this.active ? '0' : '-1',
        'data-id': text(hit.id),
      },
      thumb,
      exact,
      h('span', { part: 'caption', class: 'caption', text: text(hit.caption) || text(hit.kind) || t('untitled') }),
      meta ? h('span', { part: 'meta', class: 'meta', text: meta }) : null,
      score,
    );
  }

  #moveTo(index, focus = true) {
    const options = this.#options();
    if (!options.length) return;
    this.active = Math.max(0, Math.min(index, options.length - 1));
    options.forEach((option, i) => option.setAttribute('tabindex', i === this.active ? '0' : '-1'));
    if (focus) options[this.active].focus();
  }

  /** How many options share the first row, so Up/Down move a whole row in the layout. */
  #columns() {
    const options = this.#options();
    const top = options.length ? options[0].offsetTop : 0;
    const n = options.findIndex((option) => option.offsetTop !== top);
    return n === -1 ? options.length || 1 : n;
  }

  #keydown(event) {
    const index = this.#options().indexOf(event.target);
    if (index === -1) return;
    const moves = {
      ArrowRight: index + 1,
      ArrowLeft: index - 1,
      ArrowDown: index + this.#columns(),
      ArrowUp: index - this.#columns(),
      Home: 0,
      End: this.hits.length - 1,
    };
    if (event.key in moves) {
      this.#moveTo(moves[event.key]);
    } else if (event.key === 'Enter' || event.key === ' ') {
      this.select(index, true);
    } else if (event.key === 'Escape') {
      this.select(-1);
      this.onEscape();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }
}
