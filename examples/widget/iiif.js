// Helpers the OpenSeadragon, Mirador and Universal Viewer examples share: find a hit's page in the manifest the
// blueprint serves (with bookidx's annotations added), and read region annotations.
//
// IIIF Presentation 3.0 (https://iiif.io/api/presentation/3.0/) and 2.1 are both read, since
// the blueprint serves a stored manifest in the version it was published in.

/** The blueprint's slug for a manifest id: the first 16 hex digits of its SHA-256. */
export async function manifestSlug(manifestId) {
  const bytes = new TextEncoder().encode(manifestId);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, 16);
}

/** The URL of the annotated copy of `manifestId` that the blueprint at `src` serves. */
export async function servedManifestUrl(src, manifestId) {
  return new URL(`${src.replace(/\/+$/, '')}/iiif/${await manifestSlug(manifestId)}/manifest.json`, document.baseURI).href;
}

/** The blueprint's AnnotationPage (v3) or AnnotationList (v2) for canvas `index` of a served manifest. */
export function servedAnnotationsUrl(servedManifest, index) {
  return servedManifest.replace(/manifest\.json$/, `annotations/${index}`);
}

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

const idOf = (thing) => (thing && (thing.id || thing['@id'])) || null;
const first = (value) => (Array.isArray(value) ? value[0] : value);

/** The canvases of a v3 or v2 manifest, in order. */
export function canvases(manifest) {
  if (Array.isArray(manifest.items)) return manifest.items;
  const sequence = first(manifest.sequences);
  return (sequence && sequence.canvases) || [];
}

/**
 * What OpenSeadragon should open for a canvas: the image service's info.json when there is
 * one, else the image itself; with the image's pixel size relative to the canvas.
 */
export function canvasImage(canvas) {
  const v3 = first(first(canvas.items || []) && first(canvas.items).items);
  const resource = v3 ? v3.body : first(canvas.images || []) && first(canvas.images).resource;
  const body = first(resource) || {};
  const service = first(body.service);
  const serviceId = idOf(service);
  const scaleX = body.width && canvas.width ? body.width / canvas.width : 1;
  const scaleY = body.height && canvas.height ? body.height / canvas.height : 1;
  const tileSource = serviceId ? `${serviceId.replace(/\/+$/, '')}/info.json` : { type: 'image', url: idOf(body) };
  return { tileSource, scaleX, scaleY };
}

/** Regions of an AnnotationPage (v3) or AnnotationList (v2): [{x, y, w, h, id, label}]. */
export function regions(page) {
  const annotations = page.items || page.resources || [];
  const out = [];
  for (const annotation of annotations) {
    const target = annotation.target || annotation.on;
    const xywh = fragment(target);
    if (!xywh) continue;
    const [x, y, w, h] = xywh;
    out.push({ x, y, w, h, id: itemId(annotation), label: annotationText(annotation) });
  }
  return out;
}

function fragment(target) {
  const t = first(target);
  const text = typeof t === 'string' ? t : t && ((t.selector && (first(t.selector).value || '')) || idOf(t) || '');
  const match = /xywh=(?:pixel:)?(\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)/.exec(text || '');
  return match ? match.slice(1).map(Number) : null;
}

/** The bookidx item id an annotation points at (its links name /api/items/ID). */
function itemId(annotation) {
  const match = /\/api\/items\/(\d+)/.exec(JSON.stringify(annotation));
  return match ? match[1] : null;
}

function annotationText(annotation) {
  const body = first(annotation.body || annotation.resource);
  const value = body && (body.value || body.chars || (body.label && JSON.stringify(body.label)));
  return typeof value === 'string' ? value : '';
}
