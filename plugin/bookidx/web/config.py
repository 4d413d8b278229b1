"""Defaults for the ``BOOKIDX_*`` settings of the web blueprint, one documented constant each.

A setting is looked up (see :func:`bookidx.web.state.setting`) in the keyword arguments given to
``create_blueprint(index_dir, **config)``, then in the host's ``app.config``, then here. Flask's
extension guide asks for prefixed keys ("Configuration keys should start with the extension's
name"), so a host can keep all of its own settings beside these without clashes. Settings are
read at request time and never written by bookidx.

Each constant's type hint is the type its setting takes; :func:`check` holds a value to it and
to the setting's range, and is the one check every value goes through: ``create_blueprint``'s
keywords and the host's ``app.config`` when the blueprint is registered (so a bad value stops
the app from starting, naming the setting), and ``bookidx serve``'s environment and ``--set``.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import typing
from types import NoneType, UnionType
from typing import Any

from ..errors import ConfigError

#: Index directory, when ``create_blueprint`` is called without one (one collection per app);
#: a ``pathlib.Path`` is taken too (Flask hosts often build paths so).
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
#: exact-image Top-1 56 % → 98 % at 100, for 120–305 ms more per query (2 cores). Needs OpenCV
#: (``pip install 'bookidx[eval]'``). 0 (or None in ``app.config``) turns re-ranking off:
#: ``rerank=true`` is then a 400 that says so (as is ``rerank=true`` without OpenCV), and the
#: OpenAPI document leaves it out. The features of up to 4096 recent candidates stay in memory
#: (about 100 MB per collection).
BOOKIDX_RERANK_DEPTH: int = 100

#: Seconds a re-ranked query may spend reading its candidates' pixels (from the index's own
#: files or IIIF servers). Candidates not read by then are answered unchecked (``inliers``
#: null), so a slow or unreachable image server delays a query by this much at most.
BOOKIDX_RERANK_SECONDS: float = 5.0

#: The site's external base URL (what ``request.url_root`` is behind the proxy), e.g.
#: ``"https://library.example.org/"``; links in responses are built on it. ``None``: from the
#: request, so a proxy must pass the Host header (or the host must use werkzeug's ProxyFix).
BOOKIDX_PUBLIC_URL: str | None = None


#: Number settings that must be more than 0, and those that may be 0 as well (each one's comment
#: says what 0 does). Every number must be finite: ``inf`` or ``nan`` seconds break timeouts.
_POSITIVE = frozenset({"BOOKIDX_MAX_RESULTS", "BOOKIDX_DEFAULT_LIMIT", "BOOKIDX_MAX_DEPTH", "BOOKIDX_MAX_UPLOAD_BYTES",
                       "BOOKIDX_MAX_UPLOAD_PIXELS", "BOOKIDX_THUMBNAIL_SIZE", "BOOKIDX_RERANK_SECONDS"})
_NOT_NEGATIVE = frozenset({"BOOKIDX_REFRESH_SECONDS", "BOOKIDX_CROP_CACHE_BYTES", "BOOKIDX_RERANK_DEPTH"})

#: Settings that take a path: an ``os.PathLike`` is taken as its string.
_PATHS = frozenset({"BOOKIDX_INDEX_PATH"})

#: What None means for settings whose type has no None: the reading code took None as off
#: (``int(depth or 0)``, ``list(value or ())``) before values were checked, and hosts kept it.
_NONE_IS = {"BOOKIDX_RERANK_DEPTH": 0, "BOOKIDX_CORS_ORIGINS": (), "BOOKIDX_FETCH_ALLOWLIST": ()}


def names() -> list[str]:
    """All setting names, for validating keyword arguments and documenting them."""
    return sorted(name for name in globals() if name.startswith("BOOKIDX_"))


def full_name(key: str) -> str:
    """A setting's name as given to ``create_blueprint`` or ``--set``: ``max_results`` or
    ``BOOKIDX_MAX_RESULTS`` → ``BOOKIDX_MAX_RESULTS``."""
    return key if key.startswith("BOOKIDX_") else "BOOKIDX_" + key.upper()


def kind(name: str) -> tuple[Any, bool]:
    """The type the setting ``name`` (full name) takes, and whether it may be None.

    Raises:
        ConfigError: ``name`` is not a setting.
    """
    hint = _hints().get(name)
    if hint is None:
        raise ConfigError(f"not a bookidx setting; known: {', '.join(names())}", name)
    options = typing.get_args(hint) if isinstance(hint, UnionType) else (hint,)
    return next(option for option in options if option is not NoneType), NoneType in options


@functools.cache
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(sys.modules[__name__])


def check(name: str, value: Any) -> Any:
    """``value``, when the setting ``name`` (full name) takes it: its type (a list setting also
    takes a comma-separated string, as environment files give it), a finite number, in range.
    A path-like value of a path setting comes back as its string, and None where a setting
    reads None as off (``_NONE_IS``) as that setting's off value.

    Raises:
        ConfigError: ``name`` is not a setting, or ``value`` is not one it takes; names the setting.
    """
    base, optional = kind(name)
    if value is None:
        if optional:
            return value
        if name in _NONE_IS:
            return _NONE_IS[name]
        raise ConfigError("None is not allowed here", name)
    if name in _PATHS and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if typing.get_origin(base) is tuple:  # BOOKIDX_CORS_ORIGINS
        if isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
            return value
        raise ConfigError(f"{value!r} is not a list of strings", name)
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # 2 seconds is 2.0 seconds
    if not isinstance(value, base) or (base is int and isinstance(value, bool)):
        what = {int: "a whole number", float: "a number", str: "a string"}.get(base, base.__name__)
        raise ConfigError(f"{value!r} is not {what}" + (" or None" if optional else ""), name)
    if base in (int, float):
        if not math.isfinite(value):
            raise ConfigError(f"{value!r} is not a finite number", name)
        if name in _POSITIVE and not value > 0:
            raise ConfigError(f"must be more than 0, not {value!r}", name)
        if name in _NOT_NEGATIVE and value < 0:
            raise ConfigError(f"must be 0 or more, not {value!r}", name)
    return value
