// Client for the bookidx JSON API (the blueprint's /api/search and /api/items routes; the
// contract is its OpenAPI document, {src}/openapi.json).
//
// Hit ids are decimal strings: 63-bit keys overflow JavaScript numbers, so ids are never parsed.

export class ApiError extends Error {
  constructor(status, detail, parameter = null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status; // 0: the server could not be reached; null: the browser did not ask it
    this.detail = detail;
    this.parameter = parameter;
  }
}

/** An absolute URL for `path` under the blueprint base `src`, with the non-empty params set. */
export function apiUrl(src, path, params = {}) {
  const base = String(src || '/bookidx').replace(/\/+$/, '');
  const url = new URL(base + path, document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '' && value !== false) {
      url.searchParams.set(name, String(value));
    }
  }
  return url;
}

/** `inliers` from the server's geometric check (rerank=true) at or above which a hit is the
 * same picture as the query image: rerank.MIN_INLIERS, stated in the OpenAPI document's Hit. */
export const EXACT_INLIERS = 12;

/** Whether the server verified `hit` as the very picture searched for (not just a look-alike). */
export function isExact(hit) {
  return Number.isInteger(hit.inliers) && hit.inliers >= EXACT_INLIERS;
}

/**
 * GET a JSON document, or POST `form` (a FormData) when given. Resolves to {body, url} (url: the
 * final response URL, against which the server's relative links resolve). Rejects with
 * ApiError, or with the AbortError of `signal`.
 */
export async function fetchJSON(url, signal, form = null) {
  const init = { signal, headers: { Accept: 'application/json' } };
  if (form) Object.assign(init, { method: 'POST', body: form });
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, '', null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    if (err.name === 'AbortError') throw err;
  }
  if (!response.ok || body === null || typeof body !== 'object') {
    const detail = body && typeof body.detail === 'string' ? body.detail : '';
    const parameter = body && typeof body.parameter === 'string' ? body.parameter : null;
    throw new ApiError(response.ok ? 502 : response.status, detail, parameter);
  }
  return { body, url: response.url || String(url) };
}

/** `link` resolved against `base`, or null unless it is an http(s) URL (no javascript: or data:). */
export function safeUrl(link, base) {
  if (typeof link !== 'string' || !link) return null;
  try {
    const url = new URL(link, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}
