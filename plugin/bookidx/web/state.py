"""Per-collection state of a mounted blueprint, and the helpers every bookidx view uses.

Flask's extension guide: no module-level state, everything per app in ``app.extensions``. Each
registration of a bookidx blueprint (one collection) gets a :class:`Collection` in
``app.extensions["bookidx"][<registered blueprint name>]``, so two collections in one app, or
two apps in one process, never share an index, a model or settings.

The index is opened on first use and then shared by all request threads; the query model is
loaded at most once, on the first query that needs it (keyword and item→similar queries never
do), and so is the geometric re-ranker (rerank.py), on the first query with ``rerank``. A
concurrent ``bookidx index`` run's commits are picked up by ``Index.refresh()``, called at most
every ``BOOKIDX_REFRESH_SECONDS``.

All helpers here need a request context of a bookidx blueprint.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request, url_for

from ..errors import BadRequest, ConfigError, IndexMismatch
from . import config as defaults

if TYPE_CHECKING:  # the store and the models are imported when first used, not at import
    from ..adapters.records import Region
    from ..embed import Embedder
    from ..rerank import Reranker
    from ..store import Hit, Index

EXTENSION = "bookidx"


class Collection:
    """One mounted collection: where its index is, its setting overrides, and what is loaded."""

    def __init__(self, index_dir: str | None, overrides: dict[str, Any]):
        self.index_dir = index_dir
        self.overrides = overrides
        self.index: Index | None = None
        self.embedder: Embedder | None = None
        self.refreshed = 0.0
        # Separate locks: a model load (seconds) must not hold up opening or refreshing the index.
        self.index_lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.rerank_lock = threading.Lock()
        self.reranker: Reranker | None = None
        self.crop_lock = threading.Lock()
        self.crop_reader: Any = None  # bookidx.crops.CropReader, built on the first crop served
        self.crop_cache: dict[int, bytes] = {}  # insertion-ordered: oldest first (FIFO)
        self.crop_bytes = 0


def normalise_settings(config: dict[str, Any]) -> dict[str, Any]:
    """``max_results=5`` or ``BOOKIDX_MAX_RESULTS=5`` → ``{"BOOKIDX_MAX_RESULTS": 5}``, each
    value checked (web/config.py's ``check``: its type, finite, in range).

    Raises:
        ConfigError: for a name that is not a bookidx setting (a typo would otherwise be
            ignored), or a value the setting does not take; names it.
    """
    known = set(defaults.names())
    out = {}
    for key, value in config.items():
        name = defaults.full_name(key)
        if name not in known:
            raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}", key)
        out[name] = defaults.check(name, value)
    return out


def register(setup_state: Any, index_dir: str | None, overrides: dict[str, Any]) -> None:
    """Create the state of one registration (called by the blueprint's ``record`` hook).

    The host's ``BOOKIDX_*`` config is checked here, so a bad value stops the app at start-up
    (``register_blueprint``) rather than failing every request that reads it.

    Raises:
        ConfigError: a ``BOOKIDX_*`` value in ``app.config`` that its setting does not take.
    """
    config = setup_state.app.config
    for key in defaults.names():
        if key in config and key not in overrides:
            defaults.check(key, config[key])
    name = f"{setup_state.name_prefix}.{setup_state.name}".lstrip(".")
    states = setup_state.app.extensions.setdefault(EXTENSION, {})
    states[name] = Collection(index_dir, overrides)


def collection() -> Collection:
    """The state of the collection that is serving the current request."""
    try:
        return current_app.extensions[EXTENSION][request.blueprint]
    except KeyError:
        raise ConfigError(f"no bookidx collection is mounted as {request.blueprint!r}") from None


def setting(name: str) -> Any:
    """A ``BOOKIDX_*`` setting: the blueprint's override, else ``app.config``, else the default."""
    state = collection()
    if name in state.overrides:
        return state.overrides[name]
    if name in current_app.config:
        return current_app.config[name]
    try:
        return getattr(defaults, name)
    except AttributeError:
        raise ConfigError(f"unknown setting {name!r}", name) from None


def setting_list(name: str) -> list[str]:
    """A list setting; a string is split on commas (values from environment files come so)."""
    value = setting(name)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value or ())


def current_index() -> Index:
    """The collection's index, opened read-only on first use and refreshed now and then."""
    state = collection()
    if state.index is None:
        with state.index_lock:
            if state.index is None:
                state.index = _open_index(state)
                state.refreshed = time.monotonic()
        return state.index
    period = setting("BOOKIDX_REFRESH_SECONDS")
    if period is not None and time.monotonic() - state.refreshed >= period:
        # One thread refreshes; the others go on with the view they have instead of queueing.
        if state.index_lock.acquire(blocking=False):
            try:
                if time.monotonic() - state.refreshed >= period:
                    state.index.refresh()
                    state.refreshed = time.monotonic()
            finally:
                state.index_lock.release()
    return state.index


def _open_index(state: Collection) -> Index:
    from ..store import Index

    path = state.index_dir or setting("BOOKIDX_INDEX_PATH")
    if not path:
        raise ConfigError("no index directory: pass one to create_blueprint or set BOOKIDX_INDEX_PATH", "BOOKIDX_INDEX_PATH")
    if not (Path(path) / "bookidx.json").is_file():
        raise ConfigError(f"{path} is not a bookidx index (no bookidx.json)", "BOOKIDX_INDEX_PATH")
    return Index.open(path, readonly=True)


def current_embedder() -> Embedder:
    """The model the index was built with, loaded once (on ``BOOKIDX_DEVICE``) and shared,
    with the preprocessing the index recorded (``embed.load_for_index``).

    Raises:
        IndexMismatch: when the loaded model's dimension is not the index's.
    """
    state = collection()
    if state.embedder is None:
        info = current_index().info["model"]
        with state.model_lock:
            if state.embedder is None:
                from ..embed import load_for_index

                model = load_for_index(info, device=setting("BOOKIDX_DEVICE"))
                if model.ndim != info["ndim"]:
                    raise IndexMismatch(
                        f"model {info['model']!r} gives {model.ndim}-d vectors, the index holds {info['ndim']}-d",
                        "model",
                    )
                state.embedder = model
    return state.embedder


def rerank_depth() -> int:
    """``BOOKIDX_RERANK_DEPTH``: hits a re-ranked query checks; 0 when re-ranking is off.

    Raises:
        ConfigError: a negative or non-integer setting (one set in ``app.config`` after the
            blueprint was registered; earlier ones were checked then).
    """
    return defaults.check("BOOKIDX_RERANK_DEPTH", setting("BOOKIDX_RERANK_DEPTH"))


def rerank_offered() -> bool:
    """Whether ``rerank`` can work here: on, and OpenCV installed (the OpenAPI document then
    declares the parameter)."""
    import importlib.util

    return rerank_depth() > 0 and importlib.util.find_spec("cv2") is not None


def current_reranker() -> Reranker:
    """The collection's geometric re-ranker (rerank.py), built on first use and shared by threads.

    Candidates are read from the sources the index records for them (page files, IIIF
    services, image URLs), never from anything a client names. There is no disk cache, so the
    index directory is never written; features stay in the re-ranker's own LRU cache.

    Raises:
        BadRequest: re-ranking is off (``BOOKIDX_RERANK_DEPTH`` is 0) or OpenCV is missing.
    """
    depth = rerank_depth()
    if not depth:
        raise BadRequest("this server does not re-rank (its operator set BOOKIDX_RERANK_DEPTH to 0)", "rerank")
    state = collection()
    if state.reranker is None:
        with state.rerank_lock:
            if state.reranker is None:
                from ..rerank import WORKERS, Reranker, candidate_reader

                # A visitor is waiting: candidates not read within the budget are not checked
                # (an unreadable one is then left alone for a minute).
                budget = defaults.check("BOOKIDX_RERANK_SECONDS", setting("BOOKIDX_RERANK_SECONDS"))
                reader = candidate_reader()
                try:
                    state.reranker = Reranker(reader, depth=depth, workers=WORKERS, budget=budget)
                except ConfigError as e:  # OpenCV missing (no eval extra): for the client, a 400
                    reader.fetcher.close()
                    raise BadRequest(f"this server cannot re-rank: {e.detail}", "rerank") from None
    return state.reranker


def model_loaded() -> bool:
    """Whether the query model is in memory (health checks report it; loading takes seconds)."""
    return collection().embedder is not None


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL for ``endpoint`` ("." + view name for this blueprint's views).

    Built on ``BOOKIDX_PUBLIC_URL`` when set, else on the request's own scheme and host.
    """
    base = setting("BOOKIDX_PUBLIC_URL")
    if base is None:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)[len(request.script_root):]
    return base.rstrip("/") + path


def item_url(key: int) -> str:
    """The absolute URL of an item's JSON record."""
    return item_link(".item", key)


def item_link(endpoint: str, key: int) -> str:
    """``external_url(endpoint, item_id=key)``, built once per request and endpoint."""
    return _link(endpoint, "item_id", str(key))


def _link(endpoint: str, name: str, value: str) -> str:
    """``external_url(endpoint, **{name: value})`` for a one-variable route, from a template
    built once per request.

    ``url_for`` costs tens of microseconds; a page of hits needs three links per hit, which
    made link building a third of an item→similar request. The value is substituted instead.
    """
    templates = g.setdefault("_bookidx_links", {})
    template = templates.get(endpoint)
    if template is None:
        template = templates[endpoint] = external_url(endpoint, **{name: _SLOT})
    return template.replace(_SLOT, value)


_SLOT = "__bookidx_id__"  # a path segment url_for leaves as it is


def iiif_served() -> bool:
    """Whether this blueprint has the IIIF-out routes (web/iiif.py, which may be left out)."""
    return f"{request.blueprint}.iiif_manifest" in current_app.view_functions


#: The IIIF-out routes of one stored manifest (web/iiif.py), by the name /api/manifests gives them.
MANIFEST_LINKS = (("manifest", ".iiif_manifest"), ("search", ".iiif_search"), ("search1", ".iiif_search1"))


def manifest_links(manifest_id: str) -> tuple[str, dict[str, str]] | None:
    """The slug of a manifest the index keeps (manifests.py) and the URLs this blueprint serves
    it at: the annotated manifest and its Content Search 2.0 and 1.0 services, the same URLs the
    served manifest advertises. None when it is not kept (a folder's or a METS file's "manifest"
    is a book id) or the blueprint has no IIIF routes.
    """
    from ..manifests import manifest_path, slug

    manifest_slug = slug(manifest_id)
    if not iiif_served() or not manifest_path(current_index().path, manifest_slug).is_file():
        return None
    return manifest_slug, {name: _link(endpoint, "slug", manifest_slug) for name, endpoint in MANIFEST_LINKS}


def thumbnail(region: Region) -> str:
    """A thumbnail URL: the IIIF server's own region URL, else the crop this blueprint serves."""
    image = region.page.image
    if image.service:
        from ..iiif_image import thumbnail_url

        return thumbnail_url(image, region.box, setting("BOOKIDX_THUMBNAIL_SIZE"))
    return item_link(".crop", region.key)


def hit_json(hit: Hit, inliers: int | None = None) -> dict[str, Any]:
    """One hit as the API's HIT object (see the OpenAPI document's ``Hit`` schema).

    Ids are decimal strings: 63-bit keys do not fit in a JavaScript number. ``region`` is in
    canvas coordinates, the space IIIF viewers and ``#xywh=`` fragments use. ``group`` is the
    near-duplicate group (dedup.py) the item belongs to, ``group_size`` how many items it has.
    ``inliers`` is the geometric check's count in a re-ranked search (rerank.py), else None.
    """
    out = region_json(hit.region)
    out["score"] = float(hit.score)
    out["class"] = hit.cls
    out["group"] = None if hit.group is None else str(hit.group)
    out["group_size"] = hit.group_size
    out["inliers"] = inliers
    return out


def region_json(region: Region) -> dict[str, Any]:
    """The HIT fields that depend on the region only (score and class are the query's)."""
    box = region.canvas_box()
    book = region.book
    return {
        "id": str(region.key),
        "score": None,
        "manifest": region.page.manifest,
        "canvas": region.page.id,
        "region": {"x": box.x, "y": box.y, "w": box.w, "h": box.h},
        "xywh": box.xywh(),
        "thumbnail": thumbnail(region),
        "caption": region.caption,
        "kind": region.kind,
        "class": None,
        "group": None,
        "group_size": 1,
        "inliers": None,
        "page": {"index": region.page.index, "label": region.page.label},
        "book": None if book is None else {"id": book.id, "title": book.title, "creator": book.creator, "date": book.date},
        "links": {"self": item_url(region.key), "similar": item_link(".item_similar", region.key)},
    }
