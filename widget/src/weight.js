// The search element's balance of words against a picture, for a search that has both: a range
// from 0 (the words alone) to 1 (the picture alone), sent as the API's `w`, the image's share of
// the mixed query vector (web/openapi.py, web/params.py weight(): 0..1, default 0.5).
//
// A native <input type="range">, so the browser gives it the WAI-ARIA slider role and its keys
// (arrows, Page Up/Down, Home, End); aria-valuetext says both shares in words. Moving it only
// updates the control: the owner hears of a value on `change` (the pointer let go, or a key
// pressed), never on every `input` of a drag, since each search uploads the picture again.

import { h } from './dom.js';

/** The server's default `w`: words and picture count alike. */
export const DEFAULT_WEIGHT = 0.5;

/** One arrow key moves the picture's share by this much. */
export const WEIGHT_STEP = 0.05;

/** An attribute value as a weight: a number clamped to 0..1, else DEFAULT_WEIGHT. */
export function parseWeight(raw) {
  const n = raw === null || raw === undefined || String(raw).trim() === '' ? NaN : Number(raw);
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : DEFAULT_WEIGHT;
}

/** `w` as sent: at most three decimals, so 0.1 + 0.2 never travels as 0.30000000000000004. */
export function formatWeight(w) {
  return String(Math.round(w * 1000) / 1000);
}

let controls = 0; // for unique ids (the built file is one module: names are shared)

export class WeightControl {
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
