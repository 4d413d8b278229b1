// Side effect: define <bookidx-search> and <bookidx-similar> unless the page already has them
// (a second copy of this module, loaded from another URL, must not throw).

import { BookidxSearch, BookidxSimilar } from './index.js';

for (const element of [BookidxSearch, BookidxSimilar]) {
  if (!customElements.get(element.defaultTag)) element.define();
}

export * from './index.js';
