// bookidx.js: the bookidx web components, defined on import as <bookidx-search> and <bookidx-similar>. Apache-2.0.
// Built by widget/build.sh from widget/src/*.js: edit those, not this file.

// ---- widget/src/i18n.js ----
// Interface strings in English, Norwegian Bokmål and French, chosen from the nearest `lang`.
//
// BCP 47 tags (RFC 5646) are matched on their primary subtag; "no" and "nn" fall back to
// Bokmål because a Norwegian reader is better served by it than by English.

const STRINGS = {
  en: {
    searchLabel: 'Search the illustrations',
    searchPlaceholder: 'Words in captions, or a description of a picture',
    submit: 'Search',
    clear: 'Clear',
    searchResults: 'Search results',
    similarResults: 'Similar images',
    pages: 'Pages: {what}',
    previous: 'Previous',
    next: 'Next',
    pageNumber: 'Page {n}',
    loading: 'Searching…',
    slow: 'Still searching… the server is slow to answer.',
    empty: 'No images found.',
    emptyFor: 'No images found for “{q}”.',
    error: 'The search failed: {detail}',
    errorStatus: 'HTTP {status}',
    network: 'the server could not be reached',
    retry: 'Try again',
    results: { one: '{n} result', other: '{n} results' },
    resultsPage: { one: '{n} result, page {p}', other: '{n} results, page {p}' },
    pageLabel: 'page {n}',
    score: 'score {s}',
    untitled: 'Untitled',
  },
  nb: {
    searchLabel: 'Søk i illustrasjonene',
    searchPlaceholder: 'Ord i bildetekster, eller en beskrivelse av et bilde',
    submit: 'Søk',
    clear: 'Tøm',
    searchResults: 'Søkeresultater',
    similarResults: 'Lignende bilder',
    pages: 'Sider: {what}',
    previous: 'Forrige',
    next: 'Neste',
    pageNumber: 'Side {n}',
    loading: 'Søker…',
    slow: 'Søker fortsatt … tjeneren svarer sakte.',
    empty: 'Fant ingen bilder.',
    emptyFor: 'Fant ingen bilder for «{q}».',
    error: 'Søket mislyktes: {detail}',
    errorStatus: 'HTTP {status}',
    network: 'fikk ikke kontakt med tjeneren',
    retry: 'Prøv igjen',
    results: { one: '{n} treff', other: '{n} treff' },
    resultsPage: { one: '{n} treff, side {p}', other: '{n} treff, side {p}' },
    pageLabel: 'side {n}',
    score: 'poeng {s}',
    untitled: 'Uten tittel',
  },
  fr: {
    searchLabel: 'Rechercher dans les illustrations',
    searchPlaceholder: 'Mots des légendes, ou description d’une image',
    submit: 'Rechercher',
    clear: 'Effacer',
    searchResults: 'Résultats de la recherche',
    similarResults: 'Images similaires',
    pages: 'Pages\u00a0: {what}',
    previous: 'Précédent',
    next: 'Suivant',
    pageNumber: 'Page {n}',
    loading: 'Recherche en cours…',
    slow: 'Recherche toujours en cours… le serveur tarde à répondre.',
    empty: 'Aucune image trouvée.',
    emptyFor: 'Aucune image trouvée pour «\u00a0{q}\u00a0».',
    error: 'La recherche a échoué\u00a0: {detail}',
    errorStatus: 'HTTP {status}',
    network: 'le serveur est injoignable',
    retry: 'Réessayer',
    results: { one: '{n} résultat', other: '{n} résultats' },
    resultsPage: { one: '{n} résultat, page {p}', other: '{n} résultats, page {p}' },
    pageLabel: 'page {n}',
    score: 'score {s}',
    untitled: 'Sans titre',
  },
};

const ALIASES = { no: 'nb', nn: 'nb' };

const LANGUAGES = Object.keys(STRINGS);

/** The `lang` of the element or its nearest ancestor, crossing shadow-root boundaries. */
function nearestLang(el) {
  let node = el;
  while (node) {
    const found = node.closest ? node.closest('[lang]') : null;
    if (found && found.getAttribute('lang')) return found.getAttribute('lang');
    const root = (found || node).getRootNode();
    node = root && root.host ? root.host : null;
  }
  return document.documentElement.lang || 'en';
}

/** The supported language a BCP 47 tag falls back to ("nb-NO" → "nb", "de" → "en"). */
function pickLanguage(tag) {
  const primary = String(tag || '').toLowerCase().split(/[-_]/)[0];
  const code = ALIASES[primary] || primary;
  return code in STRINGS ? code : 'en';
}

/** A translator for one language: t(key, {vars}) and t.count(key, n, {vars}). */
function translator(tag) {
  const lang = pickLanguage(tag);
  const table = STRINGS[lang];
  const plural = new Intl.PluralRules(lang);
  const fill = (text, vars = {}) => text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  const t = (key, vars) => fill(table[key], vars);
  t.count = (key, n, vars = {}) => {
    const forms = table[key];
    return fill(forms[plural.select(n)] || forms.other, { n: new Intl.NumberFormat(lang).format(n), ...vars });
  };
  t.number = (x, digits) =>
    new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(x);
  t.lang = lang;
  return t;
}

// ---- widget/src/api.js ----
// Client for the bookidx JSON API (the blueprint's /api/search and /api/items routes).
//
// Hit ids are decimal strings: 63-bit keys overflow JavaScript numbers, so ids are never parsed.

class ApiError extends Error {
  constructor(status, detail, parameter = null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status; // 0 when the server could not be reached
    this.detail = detail;
    this.parameter = parameter;
  }
}

/** An absolute URL for `path` under the blueprint base `src`, with the non-empty params set. */
function apiUrl(src, path, params = {}) {
  const base = String(src || '/bookidx').replace(/\/+$/, '');
  const url = new URL(base + path, document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '' && value !== false) {
      url.searchParams.set(name, String(value));
    }
  }
  return url;
}

/**
 * GET a JSON document. Resolves to {body, url} (url: the final response URL, against which the
 * server's relative links resolve). Rejects with ApiError, or with the AbortError of `signal`.
 */
async function getJSON(url, signal) {
  let response;
  try {
    response = await fetch(url, { signal, headers: { Accept: 'application/json' } });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, '', null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    if (err.name === 'AbortError') throw err;
  }
  if (!response.ok || body === null || typeof body !== 'object') {
    const detail = body && typeof body.detail === 'string' ? body.detail : '';
    const parameter = body && typeof body.parameter === 'string' ? body.parameter : null;
    throw new ApiError(response.ok ? 502 : response.status, detail, parameter);
  }
  return { body, url: response.url || String(url) };
}

/** `link` resolved against `base`, or null unless it is an http(s) URL (no javascript: or data:). */
function safeUrl(link, base) {
  if (typeof link !== 'string' || !link) return null;
  try {
    const url = new URL(link, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

// ---- widget/src/dom.js ----
// Building shadow-DOM nodes without innerHTML: server text only ever reaches textContent or
// attribute values, so a caption cannot inject markup (and Trusted Types policies need no hook).

/**
 * h('button', {part: 'next', type: 'button', onclick: fn}, 'Next') → <button part="next" …>.
 * `text` sets textContent; `on*` adds listeners; true gives an empty attribute; null/false skip.
 */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') el.textContent = String(value);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

let sheet = null;

/** Give a shadow root the shared stylesheet (parsed once per page, not once per element). */
function adoptStyles(root, css) {
  if ('adoptedStyleSheets' in root && typeof CSSStyleSheet.prototype.replaceSync === 'function') {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
    }
    root.adoptedStyleSheets = [sheet];
  } else {
    root.append(h('style', { text: css }));
  }
}

// ---- widget/src/styles.js ----
// The elements' shadow-DOM styles. Hosts theme them with the --bookidx-* custom properties
// below (they inherit through the shadow boundary) or restyle any piece through ::part().

const CSS = `
:host {
  --_fg: var(--bookidx-color, CanvasText);
  --_bg: var(--bookidx-background, Canvas);
  --_muted: var(--bookidx-muted-color, color-mix(in srgb, var(--_fg) 68%, var(--_bg)));
  --_accent: var(--bookidx-accent-color, #0b5cad);
  --_on-accent: var(--bookidx-on-accent-color, #fff);
  --_card: var(--bookidx-card-background, color-mix(in srgb, var(--_fg) 4%, var(--_bg)));
  --_border: var(--bookidx-border-color, color-mix(in srgb, var(--_fg) 22%, var(--_bg)));
  --_error: var(--bookidx-error-color, #b00020);
  --_radius: var(--bookidx-radius, 6px);
  --_gap: var(--bookidx-gap, 0.75rem);
  --_thumb: var(--bookidx-thumbnail-size, 10rem);
  --_focus: var(--bookidx-focus-ring, 3px solid var(--_accent));
  display: block;
  color: var(--_fg);
  font: var(--bookidx-font, inherit);
  container-type: inline-size;
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
form { display: flex; gap: 0.5rem; flex-wrap: wrap; margin-block-end: var(--_gap); }
input {
  flex: 1 1 16rem; min-width: 0; font: inherit; color: var(--_fg); background: var(--_bg);
  padding: 0.5rem 0.65rem; border: 1px solid var(--_border); border-radius: var(--_radius);
}
button {
  font: inherit; cursor: pointer; padding: 0.5rem 0.9rem; border-radius: var(--_radius);
  border: 1px solid var(--_accent); background: var(--_bg); color: var(--_accent);
}
button[part~="submit"] { background: var(--_accent); color: var(--_on-accent); }
button:disabled { cursor: default; opacity: 0.45; }
input:focus-visible, button:focus-visible, [role="option"]:focus-visible {
  outline: var(--_focus); outline-offset: 2px;
}
.status { display: flex; align-items: center; gap: 0.75rem; min-height: 1.5em; margin-block-end: 0.5rem; color: var(--_muted); }
.status[data-state="error"] { color: var(--_error); }
.status[data-state="slow"]::before {
  content: ""; width: 0.9em; height: 0.9em; border-radius: 50%;
  border: 2px solid var(--_border); border-top-color: var(--_accent);
  animation: spin 0.9s linear infinite;
}
@keyframes spin { to { transform: rotate(1turn); } }
@media (prefers-reduced-motion: reduce) { .status[data-state="slow"]::before { animation: none; } }
.grid {
  display: grid; gap: var(--_gap); padding: 0; margin: 0;
  grid-template-columns: repeat(auto-fill, minmax(min(var(--_thumb), 100%), 1fr));
}
.grid[aria-busy="true"] { opacity: 0.55; }
.grid:empty { display: none; }
[role="option"] {
  display: flex; flex-direction: column; gap: 0.3rem; cursor: pointer; min-width: 0;
  padding: 0.45rem; background: var(--_card); border: 1px solid var(--_border); border-radius: var(--_radius);
}
[role="option"][aria-selected="true"] { border-color: var(--_accent); box-shadow: 0 0 0 2px var(--_accent); }
.thumb {
  display: block; width: 100%; aspect-ratio: 3 / 4; object-fit: contain;
  background: color-mix(in srgb, var(--_fg) 8%, var(--_bg)); border-radius: calc(var(--_radius) / 2);
}
.caption {
  display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3; overflow: hidden;
  overflow-wrap: anywhere; hyphens: auto;
}
.meta, .score { font-size: 0.85em; color: var(--_muted); overflow-wrap: anywhere; }
.score { font-variant-numeric: tabular-nums; }
nav { display: flex; align-items: center; justify-content: center; gap: 0.75rem; margin-block-start: var(--_gap); }
nav[hidden] { display: none; }
`;

// ---- widget/src/grid.js ----
// The result grid: a single-select ARIA listbox laid out as a grid, with roving focus.
//
// Pattern: WAI-ARIA Authoring Practices "Listbox" (https://www.w3.org/WAI/ARIA/apg/patterns/listbox/).
// One option is in the tab order at a time (tabindex 0, the rest -1); the arrow keys move it
// in two dimensions, Home/End jump, Enter/Space select and Escape hands back to the element.


const text = (value) => (typeof value === 'string' ? value.trim() : value == null ? '' : String(value));

class ResultGrid {
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
    const score =
      scores && typeof hit.score === 'number'
        ? h('span', { part: 'score', class: 'score', text: t('score', { s: t.number(hit.score, 3) }) })
        : null;
    return h(
      'div',
      {
        part: 'hit',
        role: 'option',
        'aria-selected': String(i === this.selected),
        tabindex: i === this.active ? '0' : '-1',
        'data-id': text(hit.id),
      },
      thumb,
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

// ---- widget/src/base.js ----
// What <bookidx-search> and <bookidx-similar> share: fetching one page of hits from the JSON
// API, the loading/slow/empty/error states, paging, events and interface language.
//
// Shape borrowed from github/auto-complete-element: `static define(tag, registry)`, events named
// after the fetch life cycle (bookidx:loadstart, bookidx:load, bookidx:error) plus
// bookidx:select, and an ARIA live region that says how many results arrived.


/** After this long without an answer the status says "still searching". */
const SLOW_MS = 1500;

// Connected elements, relabelled when the `lang` of any ancestor changes.
const connected = new Set();
let langObserver = null;

function watchLang(el, on) {
  if (on) connected.add(el);
  else connected.delete(el);
  if (on && !langObserver) {
    langObserver = new MutationObserver(() => connected.forEach((e) => e.relabel()));
    langObserver.observe(document.documentElement, { attributes: true, attributeFilter: ['lang'], subtree: true });
  } else if (!connected.size && langObserver) {
    langObserver.disconnect();
    langObserver = null;
  }
}

class BookidxResults extends HTMLElement {
  static observedAttributes = ['src', 'limit', 'manifest', 'scores', 'lang'];
  static defaultTag = '';

  /** Register under `tag` in `registry`; another tag for the same class gets a subclass. */
  static define(tag = this.defaultTag, registry = customElements) {
    try {
      registry.define(tag, this);
      return this;
    } catch (err) {
      if (registry.get(tag)) throw err; // the tag is taken; this is not the subclass case
      const cls = class extends this {};
      registry.define(tag, cls);
      return cls;
    }
  }

  #t = translator('en');
  #state = 'idle';
  #page = 1;
  #hits = [];
  #next = null;
  #base = document.baseURI;
  #error = null;
  #controller = null;
  #slowTimer = 0;
  #scheduled = false;
  #focusAfterLoad = false;
  #internals = null;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    adoptStyles(root, CSS);
    try {
      this.#internals = this.attachInternals();
    } catch {
      this.#internals = null; // custom states are an optional styling hook
    }
    this.grid = new ResultGrid({
      onSelect: (hit) => this.#selected(hit),
      onEscape: () => this.gridEscaped(),
    });
    this.statusText = h('span', { part: 'status-text', role: 'status' });
    this.retryButton = h('button', { part: 'retry', type: 'button', hidden: true, onclick: () => this.retry() });
    this.status = h('div', { part: 'status', class: 'status', 'data-state': 'idle' }, this.statusText, this.retryButton);
    this.previousButton = h('button', { part: 'previous', type: 'button', onclick: () => this.goToPage(this.#page - 1, true) });
    this.nextButton = h('button', { part: 'next', type: 'button', onclick: () => this.goToPage(this.#page + 1, true) });
    this.pageNumber = h('span', { part: 'page-number' });
    this.pager = h('nav', { part: 'pager', hidden: true }, this.previousButton, this.pageNumber, this.nextButton);
    this.rootPart = h('div', { part: 'root' }, this.status, this.grid.el, this.pager);
    root.append(this.rootPart);
  }

  connectedCallback() {
    // A property set before the element was defined is an own data property that hides the
    // accessor; move it through the setter (the "lazy properties" upgrade rule).
    for (const name of this.constructor.observedAttributes) {
      if (Object.prototype.hasOwnProperty.call(this, name)) {
        const value = this[name];
        delete this[name];
        this[name] = value;
      }
    }
    watchLang(this, true);
    this.relabel();
    this.scheduleLoad();
  }

  disconnectedCallback() {
    watchLang(this, false);
    this.#abort();
  }

  attributeChangedCallback(name, old, value) {
    if (old === value) return;
    if (name === 'lang') {
      this.relabel();
      return;
    }
    if (name !== 'scores') this.#page = 1;
    this.scheduleLoad();
  }

  get src() {
    return this.getAttribute('src') || '/bookidx';
  }
  set src(value) {
    this.setAttribute('src', value);
  }
  get limit() {
    const n = parseInt(this.getAttribute('limit'), 10);
    return n > 0 ? n : null;
  }
  set limit(value) {
    if (value == null) this.removeAttribute('limit');
    else this.setAttribute('limit', String(value));
  }
  get manifest() {
    return this.getAttribute('manifest') || '';
  }
  set manifest(value) {
    if (value) this.setAttribute('manifest', value);
    else this.removeAttribute('manifest');
  }
  get scores() {
    return this.hasAttribute('scores');
  }
  set scores(value) {
    this.toggleAttribute('scores', Boolean(value));
  }
  /** "idle", "loading", "slow", "results", "empty" or "error". */
  get state() {
    return this.#state;
  }
  get page() {
    return this.#page;
  }
  get hits() {
    return this.#hits.slice();
  }
  get hasNext() {
    return Boolean(this.#next);
  }

  /** The URL for result page `page`, or null when there is nothing to ask (subclasses). */
  requestUrl(page) {
    return null;
  }
  /** The listbox's accessible name (subclasses). */
  resultsLabel(t) {
    return t('searchResults');
  }
  /** The status text for no hits (subclasses can name the query). */
  emptyMessage(t) {
    return t('empty');
  }
  /** Escape pressed in the grid (the selection is already cleared). */
  gridEscaped() {}
  /** Relabel subclass controls in the interface language. */
  labelControls(t) {}

  /** Reload after the current task, once however many attributes changed in it. */
  scheduleLoad() {
    if (this.#scheduled || !this.isConnected) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      if (this.isConnected) this.load();
    });
  }

  goToPage(page, focusResults = false) {
    if (page < 1 || page === this.#page) return;
    this.#page = page;
    this.#focusAfterLoad = focusResults;
    this.load();
  }

  retry() {
    this.load();
  }

  /** Fetch and show the current page; a newer call aborts an older one still in flight. */
  async load() {
    this.#abort();
    const url = this.requestUrl(this.#page);
    if (!url) {
      this.#show('idle', [], null);
      return;
    }
    const controller = new AbortController();
    this.#controller = controller;
    this.grid.setBusy(true);
    this.#setState('loading');
    this.#slowTimer = setTimeout(() => this.#setState('slow'), SLOW_MS);
    this.#emit('loadstart', { url: url.href, page: this.#page });
    try {
      const { body, url: answered } = await getJSON(url, controller.signal);
      if (controller !== this.#controller) return;
      this.#base = answered;
      const hits = Array.isArray(body.hits) ? body.hits.filter((hit) => hit && typeof hit === 'object') : [];
      this.#show(hits.length ? 'results' : 'empty', hits, typeof body.next === 'string' ? body.next : null);
      this.#emit('load', { url: url.href, page: this.#page, hits: this.hits, next: this.#next, response: body });
      if (this.#focusAfterLoad && hits.length) this.grid.focus();
    } catch (err) {
      if (err.name === 'AbortError' || controller !== this.#controller) return;
      this.#error = err instanceof ApiError ? err : new ApiError(0, String(err && err.message));
      this.#show('error', [], null);
      const { status, detail, parameter } = this.#error;
      this.#emit('error', { url: url.href, status, detail, parameter });
    } finally {
      if (controller === this.#controller) this.#focusAfterLoad = false;
    }
  }

  /** Re-read the interface language and redraw every string in it. */
  relabel() {
    this.#t = translator(nearestLang(this));
    const t = this.#t;
    this.rootPart.setAttribute('lang', t.lang);
    this.grid.setLabel(this.resultsLabel(t));
    this.retryButton.textContent = t('retry');
    this.previousButton.textContent = t('previous');
    this.nextButton.textContent = t('next');
    // Named after its grid: two elements on one page must not give two identical landmarks.
    this.pager.setAttribute('aria-label', t('pages', { what: this.resultsLabel(t) }));
    this.labelControls(t);
    this.#renderStatus();
    this.grid.render(this.#hits, this.#gridContext(), true);
  }

  #gridContext() {
    return { t: this.#t, base: this.#base, scores: this.scores };
  }

  #show(state, hits, next) {
    this.#clearTimer();
    this.#controller = null;
    this.grid.setBusy(false);
    this.#hits = hits;
    this.#next = next;
    this.grid.render(hits, this.#gridContext());
    this.#setState(state);
  }

  #setState(state) {
    const states = this.#internals && this.#internals.states;
    if (states) {
      try {
        states.delete(this.#state);
        states.add(state);
      } catch {
        // CustomStateSet without plain identifiers (Chrome < 125): states stay unstyled.
      }
    }
    this.#state = state;
    this.#renderStatus();
  }

  #renderStatus() {
    const t = this.#t;
    const n = this.#hits.length;
    const messages = {
      idle: '',
      loading: t('loading'),
      slow: t('slow'),
      empty: this.emptyMessage(t),
      error: this.#error ? t('error', { detail: this.#describe(this.#error, t) }) : '',
      results: this.#page > 1 ? t.count('resultsPage', n, { p: this.#page }) : t.count('results', n),
    };
    this.status.dataset.state = this.#state;
    this.statusText.textContent = messages[this.#state];
    this.retryButton.hidden = this.#state !== 'error';
    const paged = this.#page > 1 || Boolean(this.#next);
    this.pager.hidden = !paged || this.#state === 'error' || this.#state === 'idle';
    this.previousButton.disabled = this.#page <= 1;
    this.nextButton.disabled = !this.#next;
    this.pageNumber.textContent = t('pageNumber', { n: this.#page });
  }

  #describe(err, t) {
    if (!err.status) return t('network');
    const status = t('errorStatus', { status: err.status });
    return err.detail ? `${err.detail} (${status})` : status;
  }

  #selected(hit) {
    const region = hit.region && typeof hit.region === 'object' ? hit.region : null;
    this.#emit('select', {
      id: String(hit.id),
      manifest: hit.manifest || null,
      canvas: hit.canvas || null,
      region,
      xywh: hit.xywh || (region ? `${region.x},${region.y},${region.w},${region.h}` : null),
      hit,
    });
  }

  #emit(name, detail) {
    this.dispatchEvent(new CustomEvent(`bookidx:${name}`, { bubbles: true, composed: true, detail }));
  }

  #clearTimer() {
    clearTimeout(this.#slowTimer);
    this.#slowTimer = 0;
  }

  #abort() {
    this.#clearTimer();
    if (this.#controller) this.#controller.abort();
    this.#controller = null;
  }
}

// ---- widget/src/search.js ----
// <bookidx-search>: a search box over captions and pictures, with a grid of hits.
//
// Calls GET {src}/api/search?q=&mode=&limit=&page=&manifest=&scores= (the bookidx web contract).
// Typing searches after a short pause; Enter searches at once; Escape clears.


/** Pause after the last keystroke before a search starts, in milliseconds. */
const DEBOUNCE_MS = 300;

let serial = 0;

class BookidxSearch extends BookidxResults {
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

// ---- widget/src/similar.js ----
// <bookidx-similar item="ID">: the images most like one indexed region.
//
// Calls GET {src}/api/items/{item}/similar?limit=&page=&manifest=&scores= (the bookidx web
// contract). `item` is the hit id, a decimal string (63-bit keys do not fit a JS number).


class BookidxSimilar extends BookidxResults {
  static observedAttributes = [...BookidxResults.observedAttributes, 'item'];
  static defaultTag = 'bookidx-similar';

  get item() {
    return this.getAttribute('item') || '';
  }
  set item(value) {
    if (value) this.setAttribute('item', String(value));
    else this.removeAttribute('item');
  }

  requestUrl(page) {
    const item = this.item.trim();
    if (!item) return null;
    return apiUrl(this.src, `/api/items/${encodeURIComponent(item)}/similar`, {
      limit: this.limit,
      page: page > 1 ? page : null,
      manifest: this.manifest,
      scores: this.scores ? 1 : null,
    });
  }

  resultsLabel(t) {
    return t('similarResults');
  }
}

// ---- widget/src/index.js ----
// The elements, without defining them: import this to register under tags of your own with
// BookidxSearch.define('my-search', registry). The default build (bookidx.js) also defines them.

export { BookidxResults, SLOW_MS };
export { BookidxSearch, DEBOUNCE_MS };
export { BookidxSimilar };
export { LANGUAGES };

// ---- widget/src/define.js ----
// Side effect: define <bookidx-search> and <bookidx-similar> unless the page already has them
// (a second copy of this module, loaded from another URL, must not throw).


for (const element of [BookidxSearch, BookidxSimilar]) {
  if (!customElements.get(element.defaultTag)) element.define();
}

