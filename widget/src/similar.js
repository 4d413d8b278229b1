// <bookidx-similar item="ID">: the images most like one indexed region.
//
// Calls GET {src}/api/items/{item}/similar?limit=&page=&manifest=&scores= (the bookidx web
// contract). `item` is the hit id, a decimal string (63-bit keys do not fit a JS number).

import { BookidxResults } from './base.js';
import { apiUrl } from './api.js';

export class BookidxSimilar extends BookidxResults {
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
