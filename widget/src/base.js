// What <bookidx-search> and <bookidx-similar> share: fetching one page of hits from the JSON
// API, the loading/slow/empty/error states, paging, events and interface language.
//
// Shape borrowed from github/auto-complete-element: `static define(tag, registry)`, events named
// after the fetch life cycle (bookidx:loadstart, bookidx:load, bookidx:error) plus
// bookidx:select, and an ARIA live region that says how many results arrived.

import { nearestLang, translator } from './i18n.js';
import { ApiError, fetchJSON, isExact } from './api.js';
import { adoptStyles, h } from './dom.js';
import { CSS } from './styles.js';
import { ResultGrid } from './grid.js';

/** After this long without an answer the status says "still searching". */
export const SLOW_MS = 1500;

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

export class BookidxResults extends HTMLElement {
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
