// The search element's ways to take a picture: a file button, drag-and-drop anywhere on the
// element, paste of an image from the clipboard; and the chip that shows the chosen picture
// with a × to remove it.
//
// The file input stays hidden behind a labelled button (its native control cannot be themed or
// translated). Files come from the HTML drag-and-drop and clipboard models
// (https://html.spec.whatwg.org/multipage/dnd.html, https://w3c.github.io/clipboard-apis/):
// `dataTransfer.files` / `clipboardData.files`. What to do with a file is the owner's call.

import { h } from './dom.js';

/** The first file in `files` (a FileList or array) whose type says it is an image, else null. */
function firstImage(files) {
  return [...(files || [])].find((file) => file.type.startsWith('image/')) || null;
}

function carriesFiles(event) {
  return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes('Files');
}

export class ImagePicker {
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
