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

export const LANGUAGES = Object.keys(STRINGS);

/** The `lang` of the element or its nearest ancestor, crossing shadow-root boundaries. */
export function nearestLang(el) {
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
export function pickLanguage(tag) {
  const primary = String(tag || '').toLowerCase().split(/[-_]/)[0];
  const code = ALIASES[primary] || primary;
  return code in STRINGS ? code : 'en';
}

/** A translator for one language: t(key, {vars}) and t.count(key, n, {vars}). */
export function translator(tag) {
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
