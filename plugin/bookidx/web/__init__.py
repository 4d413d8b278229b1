"""The bookidx Flask blueprint: a search API, IIIF routes and the widget for one collection.

Follows Flask's extension guide (docs/extensiondev.rst, docs/blueprints.rst): an application
factory style with no module-level state, so any number of collections can be mounted in any
number of apps::

    from bookidx.web import create_blueprint

    app.register_blueprint(create_blueprint("/data/idx/books"))               # at /bookidx
    app.register_blueprint(create_blueprint("/data/idx/maps", name="maps"))   # at /maps
    app.register_blueprint(create_blueprint("/data/idx/maps", name="m2"), url_prefix="/x/maps")

Settings are ``BOOKIDX_*`` keys (defaults and meaning in web/config.py): keyword arguments of
``create_blueprint`` win over the host's ``app.config``. Errors raised in bookidx's views are
JSON ``{"error", "detail", "parameter"}`` with their status; 404/405 for URLs that match no
route are the host app's (a Flask blueprint cannot handle those). CORS headers are added for
``BOOKIDX_CORS_ORIGINS`` only, so hosts need no flask-cors.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import BookidxError
from . import state, views

log = logging.getLogger("bookidx.web")

__all__ = ["create_blueprint"]


def create_blueprint(index_dir: str | None = None, *, name: str = "bookidx", **config: Any) -> Blueprint:
    """A new blueprint serving the index in ``index_dir``.

    Args:
        index_dir: the index directory; None reads ``BOOKIDX_INDEX_PATH`` from the app's config.
        name: the blueprint's name, also its default URL prefix (``/<name>``) and the first part
            of its endpoint names (``url_for("maps.search")``).
        **config: ``BOOKIDX_*`` settings for this collection only, with or without the prefix
            (``max_results=50`` or ``BOOKIDX_MAX_RESULTS=50``).

    Raises:
        ConfigError: a keyword that is not a bookidx setting.
    """
    overrides = state.normalise_settings(config)
    bp = Blueprint(name, __name__, url_prefix=f"/{name}", static_folder="static", template_folder="templates")
    # record, not record_once: each registration (each name) is a collection of its own.
    bp.record(lambda setup: state.register(setup, index_dir, overrides))
    views.add_routes(bp)
    if importlib.util.find_spec(f"{__name__}.iiif") is not None:
        from .iiif import add_iiif_routes

        add_iiif_routes(bp)
    bp.register_error_handler(BookidxError, _bookidx_error)
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(Exception, _internal_error)
    bp.after_request(_cors)
    return bp


def _bookidx_error(e: BookidxError) -> Any:
    if e.code >= 500:
        log.error("%s %s: %s", request.method, request.path, e)
    return jsonify(e.to_dict()), e.code


def _http_error(e: HTTPException) -> Any:
    """werkzeug's own errors in our views (413 from form parsing, 404 from static files)."""
    if e.code is None or e.code < 400:  # a redirect or other non-error raised on purpose
        return e
    return jsonify({"error": e.code, "detail": e.description, "parameter": None}), e.code


def _internal_error(e: Exception) -> Any:
    log.error("%s %s failed", request.method, request.path, exc_info=e)
    return jsonify({"error": 500, "detail": f"internal error ({type(e).__name__})", "parameter": None}), 500


def _cors(response: Any) -> Any:
    """CORS (https://fetch.spec.whatwg.org/#http-cors-protocol) for the allowed origins only."""
    allowed = state.setting_list("BOOKIDX_CORS_ORIGINS")
    if not allowed:
        return response
    if "*" not in allowed:  # the answer depends on the Origin: shared caches must key on it
        response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or ("*" not in allowed and origin not in allowed):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
    if request.method == "OPTIONS":  # preflight, e.g. for a POST with an image
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        asked = request.headers.get("Access-Control-Request-Headers")
        if asked:
            response.headers["Access-Control-Allow-Headers"] = asked
        response.headers["Access-Control-Max-Age"] = "600"
    return response
