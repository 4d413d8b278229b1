// <bookidx-search>: a search box over captions and pictures, with a grid of hits.
//
// Calls GET {src}/api/search?q=&mode=&limit=&page=&manifest=&scores= (the bookidx web contract).
// Typing searches after a short pause; Enter searches at once; Escape clears.

import { BookidxResults } from './base.js';
import { apiUrl } from './api.js';
import { h } from './dom.js';

/** Pause after the last keystroke before a search starts, in milliseconds. */
export const DEBOUNCE_MS = 300;

let serial = 0;

export class BookidxSearch extends BookidxResults {
  static observedAttributes = [...BookidxResults.observedAttributes, 'q', 'mode'];
  static defaultTag = 'bookidx-search';

  #timer = 0;

  constructor() {
    super();
    const id = `bookidx-q-${++serial}`;
    this.label = h('label', { part: 'label', class: 'visually-hidden', for: id });
    this.input = h('input', {
      part: 'input',
      id,
      type: 'search',
      name: 'q',
      autocomplete: 'off',
      spellcheck: 'false',
      enterkeyhint: 'search',
      oninput: () => this.#typed(),
      onkeydown: (event) => this.#keydown(event),
    });
    this.submitButton = h('button', { part: 'submit', type: 'submit' });
    this.form = h(
      'form',
      { part: 'form', role: 'search', onsubmit: (event) => this.#submit(event) },
      this.label,
      this.input,
      this.submitButton,
    );
    this.rootPart.prepend(this.form);
  }

  attributeChangedCallback(name, old, value) {
    if (name === 'q' && this.input.value !== (value || '')) this.input.value = value || '';
    super.attributeChangedCallback(name, old, value);
  }

  disconnectedCallback() {
    clearTimeout(this.#timer);
    super.disconnectedCallback();
  }

  get q() {
    return this.getAttribute('q') || '';
  }
  set q(value) {
    if (value) this.setAttribute('q', value);
    else this.removeAttribute('q');
  }
  /** "fused" (default), "vector" or "keyword": passed through to the server. */
  get mode() {
    return this.getAttribute('mode') || '';
  }
  set mode(value) {
    if (value) this.setAttribute('mode', value);
    else this.removeAttribute('mode');
  }

  /** Empty the box and the results, and stop any search in flight. */
  clear() {
    clearTimeout(this.#timer);
    this.input.value = '';
    this.q = ''; // the attribute change aborts any search in flight and empties the grid
  }

  requestUrl(page) {
    const q = this.q.trim();
    if (!q) return null;
    return apiUrl(this.src, '/api/search', {
      q,
      mode: this.mode,
      limit: this.limit,
      page: page > 1 ? page : null,
      manifest: this.manifest,
      scores: this.scores ? 1 : null,
    });
  }

  resultsLabel(t) {
    return t('searchResults');
  }

  emptyMessage(t) {
    return t('emptyFor', { q: this.q.trim() });
  }

  gridEscaped() {
    this.input.focus();
  }

  labelControls(t) {
    this.label.textContent = t('searchLabel');
    this.input.placeholder = t('searchPlaceholder');
    this.submitButton.textContent = t('submit');
  }

  #typed() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.q = this.input.value.trim();
    }, DEBOUNCE_MS);
  }

  #submit(event) {
    event.preventDefault();
    clearTimeout(this.#timer);
    const q = this.input.value.trim();
    if (q !== this.q) this.q = q;
    // The same words again: the pause may already have started this search; only search anew
    // when there is nothing for them (first search of an attribute-given q, or after an error).
    else if (this.state === 'idle' || this.state === 'error') this.load();
  }

  #keydown(event) {
    if (event.key === 'Escape' && (this.input.value || this.q)) {
      event.preventDefault(); // also stops the search input's own clearing, which skips our state
      this.clear();
    }
  }
}
