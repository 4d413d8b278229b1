"""Defaults for the ``BOOKIDX_*`` settings of the web blueprint, one documented constant each.

A setting is looked up (see :func:`bookidx.web.state.setting`) in the keyword arguments given to
``create_blueprint(index_dir, **config)``, then in the host's ``app.config``, then here. Flask's
extension guide asks for prefixed keys ("Configuration keys should start with the extension's
name"), so a host can keep all of its own settings beside these without clashes. Settings are
read at request time and never written by bookidx.
"""

from __future__ import annotations

#: Index directory, when ``create_blueprint`` is called without one (one collection per app).
BOOKIDX_INDEX_PATH: str | None = None

#: Largest ``limit`` (hits per page) a client may ask for; more is a 400.
BOOKIDX_MAX_RESULTS: int = 100

#: Hits per page when the client gives no ``limit``.
BOOKIDX_DEFAULT_LIMIT: int = 24

#: How deep results go: ``page`` may be at most ``BOOKIDX_MAX_DEPTH // BOOKIDX_MAX_RESULTS``
#: (20 by default; more is a 400), so no page ends past this many hits. Every page re-runs the
#: query for all hits up to its end, so deep pages cost more than the first.
BOOKIDX_MAX_DEPTH: int = 2000

#: Device for the query encoder (text and uploaded images); queries are single items, so the
#: CPU is usually fast enough and leaves the GPU to the indexer.
BOOKIDX_DEVICE: str = "cpu"

#: Origins allowed to call the API and load the widget from other sites (CORS), e.g.
#: ``["https://catalogue.example.org"]``; ``["*"]`` allows any origin. Empty: same origin only.
BOOKIDX_CORS_ORIGINS: tuple[str, ...] = ()

#: Largest accepted upload (request body) for image search, in bytes; more is a 413.
BOOKIDX_MAX_UPLOAD_BYTES: int = 10 * 1024 * 1024

#: Largest accepted uploaded image, in pixels (width x height); more is a 413. A small JPEG can
#: decode to gigabytes (a decompression bomb), so the byte limit alone is not enough.
BOOKIDX_MAX_UPLOAD_PIXELS: int = 40_000_000

#: URL prefixes the server may fetch when a client names an image by URL (``image_url``), e.g.
#: ``["https://iiif.example.org/"]``. Empty (the default): the server never fetches a URL a
#: client names, and ``image_url`` is refused with 400.
BOOKIDX_FETCH_ALLOWLIST: tuple[str, ...] = ()

#: Longest side, in pixels, of the thumbnails that hits link to (IIIF ``!n,n`` or served crops).
BOOKIDX_THUMBNAIL_SIZE: int = 256

#: Seconds between checks for items a concurrent ``bookidx index`` run has committed to the
#: same index; ``None`` never checks (a read-only, finished index).
BOOKIDX_REFRESH_SECONDS: float | None = 2.0

#: Bytes of served crops (JPEG) kept in memory per collection; 0 keeps none.
BOOKIDX_CROP_CACHE_BYTES: int = 32 * 1024 * 1024

#: How many of an image query's first hits ``rerank=true`` checks geometrically (ORB keypoints +
#: RANSAC, rerank.py) and re-orders; later pages go on in the embedding's order. docs/quality.md:
#: exact-image Top-1 54 % → 98 % at 100, for 120–305 ms more per query (2 cores). Needs OpenCV
#: (``pip install 'bookidx[eval]'``). 0 turns re-ranking off: ``rerank=true`` is then a 400 that
#: says so (as is ``rerank=true`` without OpenCV), and the OpenAPI document leaves it out. The
#: features of up to 4096 recent candidates stay in memory (about 100 MB per collection).
BOOKIDX_RERANK_DEPTH: int = 100

#: Seconds a re-ranked query may spend reading its candidates' pixels (from the index's own
#: files or IIIF servers). Candidates not read by then are answered unchecked (``inliers``
#: null), so a slow or unreachable image server delays a query by this much at most.
BOOKIDX_RERANK_SECONDS: float = 5.0

#: The site's external base URL (what ``request.url_root`` is behind the proxy), e.g.
#: ``"https://library.example.org/"``; links in responses are built on it. ``None``: from the
#: request, so a proxy must pass the Host header (or the host must use werkzeug's ProxyFix).
BOOKIDX_PUBLIC_URL: str | None = None


def names() -> list[str]:
    """All setting names, for validating keyword arguments and documenting them."""
    return sorted(name for name in globals() if name.startswith("BOOKIDX_"))
