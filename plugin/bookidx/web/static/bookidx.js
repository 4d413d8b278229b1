// bookidx.js: the bookidx web components, defined on import as <bookidx-search> and <bookidx-similar>. Apache-2.0.
// Built by widget/build.sh from widget/src/*.js: edit those, not this file.
// Side effect: define <bookidx-search> and <bookidx-similar> unless the page already has them
// (a second copy of this module, loaded from another URL, must not throw).

import { BookidxSearch, BookidxSimilar } from './bookidx-elements.js';

for (const element of [BookidxSearch, BookidxSimilar]) {
  if (!customElements.get(element.defaultTag)) element.define();
}

export * from './bookidx-elements.js';
