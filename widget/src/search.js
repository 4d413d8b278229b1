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

import { BookidxResults } from './base.js';
import { ApiError, apiUrl, fetchJSON } from './api.js';
import { h } from './dom.js';
import { ImagePicker } from './picker.js';
import { WeightControl, formatWeight, parseWeight } from './weight.js';

/** Pause after the last keystroke before a search starts, in milliseconds. */
export const DEBOUNCE_MS = 300;

/** Largest request sent when there is no `max-upload` attribute: the server's default limit. */
export const MAX_UPLOAD = 10 * 1024 * 1024;

/**
 * Part of `max-upload` kept for the multipart envelope around the picture (boundaries, part
 * headers, file name, the words): the server's limit counts the whole request body, so a
 * picture a few bytes under it would still be refused with a 413.
 */
export const ENVELOPE_BYTES = 16 * 1024;

let serial = 0;

export class BookidxSearch extends BookidxResults {
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
