// The elements, without defining them: import this to register under tags of your own with
// BookidxSearch.define('my-search', registry). The default build (bookidx.js) also defines them.

export { BookidxResults, SLOW_MS } from './base.js';
export { BookidxSearch, DEBOUNCE_MS } from './search.js';
export { BookidxSimilar } from './similar.js';
export { LANGUAGES } from './i18n.js';
