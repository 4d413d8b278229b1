// bookidx-elements.js: the bookidx web components' classes, defining no tags. Apache-2.0.
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
    imageButton: 'Search by image',
    imageChosen: 'The picture being searched for',
    imageClear: 'Remove the picture',
    notImage: '“{name}” is not a picture: choose an image file.',
    tooLarge: 'The picture is {size}, over the {limit} limit: choose a smaller one.',
    emptyImage: 'No images found like this picture.',
    exactMatch: 'Exact match',
    exactMatches: { one: '{n} exact match', other: '{n} exact matches' },
    withExact: '{results} ({exact})',
    weightLabel: 'Words ↔ picture',
    weightWords: 'Words',
    weightPicture: 'Picture',
    weightValue: '{picture} picture, {words} words',
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
    imageButton: 'Søk med bilde',
    imageChosen: 'Bildet det søkes etter',
    imageClear: 'Fjern bildet',
    notImage: '«{name}» er ikke et bilde: velg en bildefil.',
    tooLarge: 'Bildet er {size}, over grensen på {limit}: velg et mindre bilde.',
    emptyImage: 'Fant ingen bilder som ligner dette bildet.',
    exactMatch: 'Eksakt treff',
    exactMatches: { one: '{n} eksakt treff', other: '{n} eksakte treff' },
    withExact: '{results} ({exact})',
    weightLabel: 'Ord ↔ bilde',
    weightWords: 'Ord',
    weightPicture: 'Bilde',
    weightValue: '{picture} bilde, {words} ord',
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
    imageButton: 'Rechercher par image',
    imageChosen: 'L’image recherchée',
    imageClear: 'Retirer l’image',
    notImage: '«\u00a0{name}\u00a0» n’est pas une image\u00a0: choisissez un fichier image.',
    tooLarge: 'L’image fait {size}, au-delà de la limite de {limit}\u00a0: choisissez-en une plus petite.',
    emptyImage: 'Aucune image trouvée qui ressemble à celle-ci.',
    exactMatch: 'Correspondance exacte',
    exactMatches: { one: '{n} correspondance exacte', other: '{n} correspondances exactes' },
    withExact: '{results} ({exact})',
    weightLabel: 'Mots ↔ image',
    weightWords: 'Mots',
    weightPicture: 'Image',
    weightValue: '{picture} image, {words} mots',
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
  // A share of 0..1 as a whole percentage, written as the language writes one ("70%", "70 %").
  t.percent = (share) => new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 0 }).format(share);
  t.number = (x, digits) =>
    new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(x);
  // A file size in binary units, as the server's limits are counted (10 MB = 10 × 1024² bytes),
  // to one decimal under 10, rounded by `round` (Math.ceil, Math.floor; default the nearest).
  t.size = (bytes, round = Math.round) => {
    const [unit, per] = bytes < 1048576 ? ['kilobyte', 1024] : ['megabyte', 1048576];
    const scale = bytes / per < 10 ? 10 : 1;
    const n = round((bytes * scale) / per) / scale; // exact before rounding: `per` is a power of 2
    return new Intl.NumberFormat(lang, { style: 'unit', unit, maximumFractionDigits: scale === 10 ? 1 : 0 }).format(n);
  };
  t.lang = lang;
  return t;
}

// ---- widget/src/api.js ----
// Client for the bookidx JSON API (the blueprint's /api/search and /api/items routes; the
// contract is its OpenAPI document, {src}/openapi.json).
//
// Hit ids are decimal strings: 63-bit keys overflow JavaScript numbers, so ids are never parsed.

class ApiError extends Error {
  constructor(status, detail, parameter = null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status; // 0: the server could not be reached; null: the browser did not ask it
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

/** `inliers` from the server's geometric check (rerank=true) at or above which a hit is the
 * same picture as the query image: rerank.MIN_INLIERS, stated in the OpenAPI document's Hit. */
const EXACT_INLIERS = 12;

/** Whether the server verified `hit` as the very picture searched for (not just a look-alike). */
function isExact(hit) {
  return Number.isInteger(hit.inliers) && hit.inliers >= EXACT_INLIERS;
}

/**
 * GET a JSON document, or POST `form` (a FormData) when given. Resolves to {body, url} (url: the
 * final response URL, against which the server's relative links resolve). Rejects with
 * ApiError, or with the AbortError of `signal`.
 */
async function fetchJSON(url, signal, form = null) {
  const init = { signal, headers: { Accept: 'application/json' } };
  if (form) Object.assign(init, { method: 'POST', body: form });
  let response;
  try {
    response = await fetch(url, init);
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
[part~="root"][data-dropping] { outline: 2px dashed var(--_accent); outline-offset: 4px; border-radius: var(--_radius); }
.chip {
  display: inline-flex; align-items: center; gap: 0.25rem; padding: 0.2rem;
  border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_card);
}
.chip[hidden] { display: none; }
.chip-thumb {
  display: block; width: var(--bookidx-image-chip-size, 2.25rem); height: var(--bookidx-image-chip-size, 2.25rem);
  object-fit: cover; border-radius: calc(var(--_radius) / 2);
}
/* Words ↔ picture: a row of its own under the box (so the box does not narrow under the
   typing that shows it), while there are both. */
.weight { display: flex; align-items: center; gap: 0.5rem; flex: 1 1 100%; }
.weight[hidden] { display: none; }
.weight-end { font-size: 0.9em; color: var(--_muted); }
input[type="range"] {
  flex: 0 1 var(--bookidx-weight-width, 20rem); min-width: 6rem; padding: 0; border: 0; background: none;
  accent-color: var(--_accent);
}
button.chip-clear { padding: 0.1rem 0.45rem; line-height: 1; border-color: transparent; color: var(--_fg); }
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
  position: relative; display: flex; flex-direction: column; gap: 0.3rem; cursor: pointer; min-width: 0;
  padding: 0.45rem; background: var(--_card); border: 1px solid var(--_border); border-radius: var(--_radius);
}
[role="option"][aria-selected="true"] { border-color: var(--_accent); box-shadow: 0 0 0 2px var(--_accent); }
.thumb {
  display: block; width: 100%; aspect-ratio: 3 / 4; object-fit: contain;
  background: color-mix(in srgb, var(--_fg) 8%, var(--_bg)); border-radius: calc(var(--_radius) / 2);
}
/* Over the thumbnail's corner, where the eye lands first: the server verified the very picture. */
.exact {
  position: absolute; inset-block-start: 0.75rem; inset-inline-start: 0.75rem; max-width: calc(100% - 1.5rem);
  padding: 0.15rem 0.5rem; border-radius: 999px; font-size: 0.8em; font-weight: 600;
  background: var(--bookidx-exact-background, var(--_accent)); color: var(--bookidx-exact-color, var(--_on-accent));
  box-shadow: 0 0 0 2px var(--_bg);
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
  #more = false;
  #base = document.baseURI;
  #error = null;
  #refusal = null; // with #error.status null: (t) => why the browser did not send the request
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
    for (const attribute of this.constructor.observedAttributes) {
      const name = attribute.replace(/-([a-z])/g, (m, c) => c.toUpperCase()); // max-upload → maxUpload
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
    return this.#more;
  }

  /** The URL for result page `page`, or null when there is nothing to ask (subclasses). */
  requestUrl(page) {
    return null;
  }
  /** Ask `url` for a page of hits: {body, url (the one that answered)}; rejects with ApiError. */
  fetchPage(url, signal) {
    return fetchJSON(url, signal);
  }
  /** Whether the answer `body` says there is a next page (POST answers have no `next` link). */
  hasMore(body) {
    return typeof body.next === 'string';
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

  /** Back to page 1 and search again (after the current task, like an attribute change). */
  restart() {
    this.#page = 1;
    this.scheduleLoad();
  }

  /**
   * Say why the browser did not send a request, without asking the server: `message(t)` is the
   * reason in the interface language (a file it will not send). The hits shown, their page and
   * any search in flight stay as they were: state "error" until the next change of state.
   * Emits bookidx:error with status null.
   */
  refuse(message, parameter = null) {
    this.#error = new ApiError(null, '', parameter);
    this.#refusal = message;
    this.#setState('error');
    this.#emit('error', { url: null, status: null, detail: message(this.#t), parameter });
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
      const { body, url: answered } = await this.fetchPage(url, controller.signal);
      if (controller !== this.#controller) return;
      this.#base = answered;
      const hits = Array.isArray(body.hits) ? body.hits.filter((hit) => hit && typeof hit === 'object') : [];
      this.#show(hits.length ? 'results' : 'empty', hits, typeof body.next === 'string' ? body.next : null, this.hasMore(body));
      this.#emit('load', { url: answered, page: this.#page, hits: this.hits, next: this.#next, response: body });
      if (this.#focusAfterLoad && hits.length) this.grid.focus();
    } catch (err) {
      if (err.name === 'AbortError' || controller !== this.#controller) return;
      this.#error = err instanceof ApiError ? err : new ApiError(0, String(err && err.message));
      this.#refusal = null;
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

  #show(state, hits, next, more = false) {
    this.#clearTimer();
    this.#controller = null;
    this.grid.setBusy(false);
    this.#hits = hits;
    this.#next = next;
    this.#more = more;
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
    const exact = this.#hits.filter(isExact).length; // said too, so a screen reader hears it at once
    const counted = this.#page > 1 ? t.count('resultsPage', n, { p: this.#page }) : t.count('results', n);
    const messages = {
      idle: '',
      loading: t('loading'),
      slow: t('slow'),
      empty: this.emptyMessage(t),
      error: this.#errorMessage(t),
      results: exact ? t('withExact', { results: counted, exact: t.count('exactMatches', exact) }) : counted,
    };
    this.status.dataset.state = this.#state;
    this.statusText.textContent = messages[this.#state];
    // Trying again cannot help a file the browser refused to send.
    this.retryButton.hidden = this.#state !== 'error' || Boolean(this.#refusal);
    const paged = this.#page > 1 || this.#more;
    // After a refusal the hits it kept are still paged.
    const shown = this.#state === 'error' ? this.#hits.length > 0 : this.#state !== 'idle';
    this.pager.hidden = !paged || !shown;
    this.previousButton.disabled = this.#page <= 1;
    this.nextButton.disabled = !this.#more;
    this.pageNumber.textContent = t('pageNumber', { n: this.#page });
  }

  #errorMessage(t) {
    const err = this.#error;
    if (!err) return '';
    return this.#refusal ? this.#refusal(t) : t('error', { detail: this.#describe(err, t) });
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

// ---- widget/src/picker.js ----
// The search element's ways to take a picture: a file button, drag-and-drop anywhere on the
// element, paste of an image from the clipboard; and the chip that shows the chosen picture
// with a × to remove it.
//
// The file input stays hidden behind a labelled button (its native control cannot be themed or
// translated). Files come from the HTML drag-and-drop and clipboard models
// (https://html.spec.whatwg.org/multipage/dnd.html, https://w3c.github.io/clipboard-apis/):
// `dataTransfer.files` / `clipboardData.files`. What to do with a file is the owner's call.


/** The first file in `files` (a FileList or array) whose type says it is an image, else null. */
function firstImage(files) {
  return [...(files || [])].find((file) => file.type.startsWith('image/')) || null;
}

function carriesFiles(event) {
  return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes('Files');
}

class ImagePicker {
  /**
   * `onFile(file)`: a file was chosen, dropped or pasted (not necessarily an image: the owner
   * checks); `onClear()`: the × was pressed. `dropTarget` takes drops and pastes (the whole
   * element: a file dropped anywhere else on it would make the browser leave the page to open
   * it); `dropMark` carries `data-dropping` while a file is dragged over.
   */
  constructor({ onFile, onClear, dropTarget, dropMark }) {
    this.url = null; // the chip's object URL, revoked when the picture goes
    this.fileInput = h('input', {
      type: 'file',
      accept: 'image/*',
      hidden: true,
      tabindex: '-1',
      onchange: () => {
        const file = this.fileInput.files[0];
        this.fileInput.value = ''; // so choosing the same file again is a change again
        if (file) onFile(file);
      },
    });
    this.button = h('button', { part: 'image-button', type: 'button', onclick: () => this.fileInput.click() });
    this.thumbnail = null; // an <img> only while there is a picture: an empty one never loads
    this.alt = '';
    this.clearButton = h('button', { part: 'image-clear', class: 'chip-clear', type: 'button', onclick: () => onClear() },
      h('span', { 'aria-hidden': 'true', text: '×' }));
    this.chip = h('span', { part: 'image', class: 'chip', hidden: true }, this.clearButton);

    dropTarget.addEventListener('dragover', (event) => {
      if (!carriesFiles(event)) return; // text dragged into the box drops as usual
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
      dropMark.toggleAttribute('data-dropping', true);
    });
    dropTarget.addEventListener('dragleave', (event) => {
      if (!dropTarget.contains(event.relatedTarget)) dropMark.removeAttribute('data-dropping');
    });
    dropTarget.addEventListener('drop', (event) => {
      dropMark.removeAttribute('data-dropping');
      if (!carriesFiles(event)) return;
      event.preventDefault();
      const files = event.dataTransfer.files;
      const file = firstImage(files) || files[0];
      if (file) onFile(file);
    });
    dropTarget.addEventListener('paste', (event) => {
      const data = event.clipboardData;
      // Words copied from Word or Excel come with a picture of themselves too (image/png beside
      // text/plain and text/html): whenever there are words, the paste is theirs and they go
      // into the box as usual. Only a picture without words is ours.
      if (!data || data.getData('text/plain').trim()) return;
      const file = firstImage(data.files);
      if (!file) return;
      event.preventDefault();
      onFile(file);
    });
  }

  /** Show `blob` in the chip (null: hide the chip), revoking the previous object URL. */
  show(blob) {
    if (this.url) URL.revokeObjectURL(this.url);
    if (this.thumbnail) this.thumbnail.remove();
    this.url = blob ? URL.createObjectURL(blob) : null;
    this.thumbnail = blob ? h('img', { part: 'image-thumbnail', class: 'chip-thumb', src: this.url, alt: this.alt }) : null;
    if (this.thumbnail) this.chip.prepend(this.thumbnail);
    this.chip.hidden = !blob;
  }

  /** Redraw the strings in the interface language. */
  relabel(t) {
    this.button.textContent = t('imageButton');
    this.alt = t('imageChosen');
    if (this.thumbnail) this.thumbnail.alt = this.alt;
    this.clearButton.setAttribute('aria-label', t('imageClear'));
    this.clearButton.title = t('imageClear');
  }
}

// ---- widget/src/weight.js ----
// The search element's balance of words against a picture, for a search that has both: a range
// from 0 (the words alone) to 1 (the picture alone), sent as the API's `w`, the image's share of
// the mixed query vector (web/openapi.py, web/params.py weight(): 0..1, default 0.5).
//
// A native <input type="range">, so the browser gives it the WAI-ARIA slider role and its keys
// (arrows, Page Up/Down, Home, End); aria-valuetext says both shares in words. Moving it only
// updates the control: the owner hears of a value on `change` (the pointer let go, or a key
// pressed), never on every `input` of a drag, since each search uploads the picture again.


/** The server's default `w`: words and picture count alike. */
const DEFAULT_WEIGHT = 0.5;

/** One arrow key moves the picture's share by this much. */
const WEIGHT_STEP = 0.05;

/** An attribute value as a weight: a number clamped to 0..1, else DEFAULT_WEIGHT. */
function parseWeight(raw) {
  const n = raw === null || raw === undefined || String(raw).trim() === '' ? NaN : Number(raw);
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : DEFAULT_WEIGHT;
}

/** `w` as sent: at most three decimals, so 0.1 + 0.2 never travels as 0.30000000000000004. */
function formatWeight(w) {
  return String(Math.round(w * 1000) / 1000);
}

let controls = 0; // for unique ids (the built file is one module: names are shared)

class WeightControl {
  /** `onChange()`: the user set a value (debouncing is the owner's); `onCommit()`: Enter. */
  constructor({ onChange, onCommit }) {
    const id = `bookidx-w-${++controls}`;
    this.t = null;
    this.input = h('input', {
      part: 'weight-input',
      id,
      type: 'range',
      min: '0',
      max: '1',
      step: String(WEIGHT_STEP),
      value: String(DEFAULT_WEIGHT),
      oninput: () => this.#describe(),
      onchange: () => onChange(),
      onkeydown: (event) => {
        // A range is no text field, so Enter would not submit the form by itself.
        if (event.key !== 'Enter') return;
        event.preventDefault();
        onCommit();
      },
    });
    this.label = h('label', { part: 'weight-label', class: 'visually-hidden', for: id });
    // The ends, for the eye; the label and the value text say the same to a screen reader.
    this.words = h('span', { part: 'weight-words', class: 'weight-end', 'aria-hidden': 'true' });
    this.picture = h('span', { part: 'weight-picture', class: 'weight-end', 'aria-hidden': 'true' });
    this.el = h('div', { part: 'weight', class: 'weight', hidden: true }, this.label, this.words, this.input, this.picture);
  }

  /** The picture's share the control shows, 0..1. */
  get value() {
    return Number(this.input.value);
  }
  set value(w) {
    this.input.value = String(w);
    this.#describe();
  }

  show(visible) {
    this.el.hidden = !visible;
  }

  /** Redraw the strings in the interface language. */
  relabel(t) {
    this.t = t;
    this.label.textContent = t('weightLabel');
    this.words.textContent = t('weightWords');
    this.picture.textContent = t('weightPicture');
    this.#describe();
  }

  #describe() {
    if (!this.t) return;
    const w = this.value;
    this.input.setAttribute('aria-valuetext', this.t('weightValue', { picture: this.t.percent(w), words: this.t.percent(1 - w) }));
  }
}

// ---- widget/src/search.js ----
// <bookidx-search>: a search box over captions and pictures, with a grid of hits; a picture
// (chosen, dropped or pasted) searches for pages that show it.
//
// Calls GET {src}/api/search?q=&mode=&limit=&page=&manifest=&scores= (the bookidx web contract).
// Typing searches after a short pause; Enter searches at once; Escape clears. With a picture,
// typed words wait for Enter (each search posts the picture again and has the server re-rank):
// POST {src}/api/search?rerank=true&limit=&page=&manifest= with the multipart fields `image`
// and `q`, so the server checks the first hits against the picture (`inliers`). A server that
// does not re-rank answers 400 naming `rerank`; the element then asks again without it, and
// does not ask that server for it again. POST answers have no `next` link: `more` says whether
// page + 1 exists. With words and a picture, the form also carries `w` (the picture's share,
// 0..1; the `weight` attribute), set by a slider shown only then: a slider moved searches after
// the same pause as typing, counted from its release, so a drag uploads the picture once.


/** Pause after the last keystroke before a search starts, in milliseconds. */
const DEBOUNCE_MS = 300;

/** Largest request sent when there is no `max-upload` attribute: the server's default limit. */
const MAX_UPLOAD = 10 * 1024 * 1024;

/**
 * Part of `max-upload` kept for the multipart envelope around the picture (boundaries, part
 * headers, file name, the words): the server's limit counts the whole request body, so a
 * picture a few bytes under it would still be refused with a 413.
 */
const ENVELOPE_BYTES = 16 * 1024;

let serial = 0;

class BookidxSearch extends BookidxResults {
  static observedAttributes = [...BookidxResults.observedAttributes, 'q', 'mode', 'max-upload', 'weight'];
  static defaultTag = 'bookidx-search';

  #timer = 0;
  #weightTimer = 0; // the pause after the slider was set, before its search
  #weightMoved = false; // the slider holds a value the user set and `weight` does not have yet
  #image = null; // the Blob being searched for
  #rerank = true; // until the server says it does not re-rank

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
    this.form = h('form', { part: 'form', role: 'search', onsubmit: (event) => this.#submit(event) });
    this.picker = new ImagePicker({
      onFile: (file) => this.searchImage(file),
      onClear: () => {
        this.clearImage();
        this.input.focus(); // the × is gone: focus must not fall to the page
      },
      dropTarget: this, // the whole element, shadow tree included (its events reach the host)
      dropMark: this.rootPart,
    });
    this.weightControl = new WeightControl({
      onChange: () => this.#weighed(),
      onCommit: () => this.form.requestSubmit(),
    });
    this.form.append(
      this.label, this.picker.chip, this.input, this.picker.button, this.submitButton,
      this.weightControl.el, this.picker.fileInput,
    );
    this.rootPart.prepend(this.form);
  }

  connectedCallback() {
    if (this.#image && !this.picker.url) this.picker.show(this.#image);
    super.connectedCallback();
  }

  attributeChangedCallback(name, old, value) {
    if (name === 'max-upload') return; // read when a picture comes; nothing to search again
    if (name === 'src') this.#rerank = true; // another server may re-rank
    if (name === 'q' && this.input.value !== (value || '')) {
      this.input.value = value || '';
      this.#syncWeight();
    }
    if (name === 'weight') {
      if (!this.#weightMoved) this.weightControl.value = this.weight;
      if (!this.#mixed) return; // w only weighs words against a picture: nothing else changes
    }
    super.attributeChangedCallback(name, old, value);
  }

  disconnectedCallback() {
    clearTimeout(this.#timer);
    clearTimeout(this.#weightTimer);
    this.picker.show(null); // frees the object URL; connectedCallback makes a new one
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

  /**
   * The picture's share in a search with words and a picture, 0..1 (`weight`; default 0.5, the
   * server's): 0 ranks by the words alone, 1 by the picture alone. Sent as `w`.
   */
  get weight() {
    return parseWeight(this.getAttribute('weight'));
  }
  set weight(value) {
    if (value == null) this.removeAttribute('weight');
    else this.setAttribute('weight', String(value));
  }

  /** Largest request the element sends, in bytes (`max-upload`; default MAX_UPLOAD). */
  get maxUpload() {
    const n = Number(this.getAttribute('max-upload'));
    return Number.isFinite(n) && n > 0 ? n : MAX_UPLOAD;
  }
  set maxUpload(value) {
    if (value == null) this.removeAttribute('max-upload');
    else this.setAttribute('max-upload', String(value));
  }
  /** The picture being searched for (a Blob or File), or null. */
  get image() {
    return this.#image;
  }
  /** Whether the search is for words and a picture together, which `w` weighs. */
  get #mixed() {
    return Boolean(this.#image) && this.q.trim() !== '';
  }
  /** Largest picture sent, in bytes: `maxUpload` less the envelope (or a quarter of a limit under 64 KiB). */
  get #largestImage() {
    const max = this.maxUpload;
    return max - Math.min(ENVELOPE_BYTES, Math.floor(max / 4));
  }

  /** Empty the box, drop the picture and the results, and stop any search in flight. */
  clear() {
    clearTimeout(this.#timer);
    this.#dropWeightMove();
    this.input.value = '';
    this.#setImage(null);
    if (this.q) this.q = ''; // the attribute change aborts any search in flight and empties the grid
    else this.restart();
  }

  /**
   * Search for pages showing the picture `blob` (a File or Blob), with the words in the box if
   * any. A file that is not an image, or too large for `max-upload` once wrapped in the
   * request, is not sent: the element says why (state "error", bookidx:error with status null)
   * and keeps the picture and hits it had.
   */
  searchImage(blob) {
    if (!(blob instanceof Blob)) throw new TypeError('searchImage() takes a File or Blob');
    if (blob.type && !blob.type.startsWith('image/')) {
      this.refuse((t) => t('notImage', { name: blob.name || blob.type }), 'image');
      return;
    }
    const largest = this.#largestImage;
    if (blob.size > largest) {
      // Rounded apart (size up, limit down), so the two never read the same.
      this.refuse((t) => t('tooLarge', { size: t.size(blob.size, Math.ceil), limit: t.size(largest, Math.floor) }), 'image');
      return;
    }
    this.#setImage(blob);
    this.#commitPending();
    this.restart();
  }

  /** Drop the picture: the words in the box, if any, are searched for alone. */
  clearImage() {
    if (!this.#image) return;
    this.#setImage(null);
    this.#commitPending(); // words typed beside the picture waited for Enter; now they count
    this.restart();
  }

  requestUrl(page) {
    if (this.#image) {
      return apiUrl(this.src, '/api/search', {
        rerank: this.#rerank ? 'true' : null,
        limit: this.limit,
        page: page > 1 ? page : null,
        manifest: this.manifest,
        scores: this.scores ? 1 : null,
      });
    }
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

  async fetchPage(url, signal) {
    if (!this.#image) return fetchJSON(url, signal);
    const image = this.#image;
    const form = () => {
      const body = new FormData();
      body.append('image', image, image.name || 'image');
      if (this.q.trim()) {
        body.append('q', this.q.trim());
        body.append('w', formatWeight(this.weight)); // read from the form, not the URL (web/views.py)
      }
      return body;
    };
    try {
      return await fetchJSON(url, signal, form());
    } catch (err) {
      const refused = err instanceof ApiError && err.status === 400 && err.parameter === 'rerank';
      if (!refused || !url.searchParams.has('rerank')) throw err;
      // Re-ranking is off on this server (or it lacks OpenCV): plain embedding order, and no
      // more asking. The page the user waits for is the same one.
      this.#rerank = false;
      const plain = new URL(url);
      plain.searchParams.delete('rerank');
      return fetchJSON(plain, signal, form());
    }
  }

  hasMore(body) {
    return this.#image ? body.more === true : super.hasMore(body);
  }

  resultsLabel(t) {
    return t('searchResults');
  }

  emptyMessage(t) {
    return this.#image ? t('emptyImage') : t('emptyFor', { q: this.q.trim() });
  }

  gridEscaped() {
    this.input.focus();
  }

  labelControls(t) {
    this.label.textContent = t('searchLabel');
    this.input.placeholder = t('searchPlaceholder');
    this.submitButton.textContent = t('submit');
    this.picker.relabel(t);
    this.weightControl.relabel(t);
  }

  #setImage(blob) {
    this.#image = blob;
    // An object URL lives until revoked: only a connected element shows one, as
    // disconnectedCallback revokes it and connectedCallback makes it again.
    this.picker.show(this.isConnected ? blob : null);
    this.#syncWeight();
  }

  /**
   * Take what waits to be searched for into the attributes now: words typed (the pause not over,
   * or a picture there) into `q`, a slider set (its pause not over) into `weight`. Whether either
   * changed; changes in one task make one search.
   */
  #commitPending() {
    clearTimeout(this.#timer);
    let changed = false;
    const q = this.input.value.trim();
    if (q !== this.q) {
      this.q = q;
      changed = true;
    }
    if (this.#weightMoved) {
      const w = this.weightControl.value;
      this.#dropWeightMove();
      if (w !== this.weight) {
        this.weight = w;
        changed = true;
      }
    }
    return changed;
  }

  /** Forget a slider value not yet searched for; the slider shows `weight` again. */
  #dropWeightMove() {
    clearTimeout(this.#weightTimer);
    this.#weightMoved = false;
    this.weightControl.value = this.weight;
  }

  /** The slider shows while there are both a picture and words in the box. */
  #syncWeight() {
    this.weightControl.show(Boolean(this.#image) && this.input.value.trim() !== '');
  }

  /**
   * The slider was set (let go, or a key pressed): search after the typing pause, so a run of
   * key presses is one search. Like Enter, it searches for the words in the box as they are.
   */
  #weighed() {
    this.#weightMoved = true;
    clearTimeout(this.#weightTimer);
    this.#weightTimer = setTimeout(() => this.#commitPending(), DEBOUNCE_MS);
  }

  #typed() {
    this.#syncWeight();
    clearTimeout(this.#timer);
    // With a picture every search uploads it again and has the server re-rank: the words wait
    // for Enter or the Search button.
    if (this.#image) return;
    this.#timer = setTimeout(() => {
      this.q = this.input.value.trim();
    }, DEBOUNCE_MS);
  }

  #submit(event) {
    event.preventDefault();
    // The same words and weight again: the pause may already have started this search; only
    // search anew when there is nothing for them (first search of an attribute-given q, or
    // after an error).
    if (!this.#commitPending() && (this.state === 'idle' || this.state === 'error')) this.load();
  }

  #keydown(event) {
    if (event.key === 'Escape' && (this.input.value || this.q || this.#image)) {
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
