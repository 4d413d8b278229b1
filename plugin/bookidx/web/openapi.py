"""The OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0) of one mounted collection.

Built per request because the server URL (the blueprint's prefix), the caps (``limit``
maximum, paging depth) and what the server fetches or re-ranks are the collection's own
settings; every parameter a view reads is declared, with a schema admitting what this server
takes (tests/test_openapi_params.py observes the views to keep the two in step). Response
schemas are openapi_schemas.py's. The IIIF-out routes (web/iiif.py) are described here too,
when the blueprint has them.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .. import __version__
from . import params
from .openapi_schemas import ref, schemas
from .state import (
    external_url,
    iiif_served,
    rerank_depth,
    rerank_offered,
    setting,
    setting_list,
)

DESCRIPTION = """\
Image search over one collection of digitised books.

* `mode=keyword`: BM25 (SQLite FTS5) over captions and surrounding text.
* `mode=vector`: the text's embedding (needs a vision-language model such as SigLIP) against
  the images' embeddings; cosine similarity is the score.
* `mode=fused` (default): reciprocal rank fusion of the two lists, score = Σ 1/(60 + rank)
  (Cormack, Clarke & Büttcher 2009); keyword only when the model has no text encoder.
* Image queries (`similar`, `image_url`, or a POSTed `image`) are vector searches whatever
  `mode` says; with `q` as well, the query vector mixes image and text, `w` being the image's share.
* `rerank=true` (a query image needed: `image_url` or a POSTed `image`): the first
  `BOOKIDX_RERANK_DEPTH` hits of the vector search are checked against the image (ORB keypoints,
  an affine transform fitted by RANSAC) and re-ordered: those with enough inliers (the same
  picture, cropped, rotated or rescaled) first, most inliers first, then the rest in their
  order; pages past that depth go on in the embedding's order. Each checked hit's `inliers` says
  how many keypoints agreed. With `collapse`, groups are collapsed after re-ranking. Where the
  server cannot re-rank, the parameter's schema admits only false, and true is a 400 naming
  `rerank` that says why.

Item ids are decimal strings (63-bit integers do not fit in a JavaScript number). Regions are
in canvas coordinates. Errors are `{"error": status, "detail": text, "parameter": name|null}`.
"""


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): ref(f"responses/E{code}") for code in codes}


def parameters() -> dict[str, Any]:
    max_results, max_depth = setting("BOOKIDX_MAX_RESULTS"), setting("BOOKIDX_MAX_DEPTH")
    year = {"type": "integer", "minimum": -params.YEAR_LIMIT, "maximum": params.YEAR_LIMIT}
    many = {"type": "array", "items": {"type": "string"}}

    def query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}

    out = {
        "q": query("q", {"type": "string", "maxLength": params.MAX_QUERY_CHARS}, "Text query; blank is the same as absent"),
        "mode": query("mode", {"enum": list(params.MODES), "default": "fused"}, "Ranking (see the API description)"),
        "w": query("w", {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}, "Image share in a text+image query"),
        "similar": query("similar", {"type": "string", "pattern": "^[0-9]{1,19}$"}, "Find items similar to this item id"),
        "image_url": _image_url(query),
        "collapse": query("collapse", {"type": "boolean", "default": False}, "One hit per near-duplicate group (its best)"),
        "limit": query("limit", {"type": "integer", "minimum": 1, "maximum": max_results, "default": setting("BOOKIDX_DEFAULT_LIMIT")}, "Hits per page"),
        "page": query("page", {"type": "integer", "minimum": 1, "maximum": params.max_pages(max_results, max_depth), "default": 1}, "Page number, from 1"),
        "manifest": query("manifest", {"type": "string"}, "Only items from this IIIF manifest id"),
        "book": query("book", {"type": "string"}, "Only items from this book id"),
        "canvas": query("canvas", {"type": "string"}, "Only items on this canvas (page) id"),
        "kind": query("kind", many, "Only items of these kinds (repeat the parameter)", style="form", explode=True),
        "class": query("class", many, "Only items of these classes (repeat the parameter)", style="form", explode=True),
        "date_from": query("date_from", year, "Only items from books dated this year or later"),
        "date_to": query("date_to", year, "Only items from books dated this year or earlier (a range ending before date_from is empty)"),
        "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}, "description": "Item id"},
    }
    # Two rerank parameters, alike where the server fetches: GET has a query image only by URL.
    out["rerank"] = _rerank(query, fetching=True)
    out["rerank_by_url"] = _rerank(query, fetching=bool(setting_list("BOOKIDX_FETCH_ALLOWLIST")))
    return out


def _image_url(query: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """``image_url``, declared whether or not this server fetches (so clients know it exists),
    its schema admitting what the server takes: URLs under the allow-list, else only an empty
    value (the same as none)."""
    prefixes = setting_list("BOOKIDX_FETCH_ALLOWLIST")
    if not prefixes:
        return query("image_url", {"type": "string", "maxLength": 0},
                     "Find items similar to the image at this URL. This server fetches no URLs (its "
                     "BOOKIDX_FETCH_ALLOWLIST is empty): any URL is a 400; POST the image instead")
    return query("image_url", {"type": "string", "pattern": _prefixes_pattern(prefixes)},
                 "Find items similar to the image at this URL, which must be under one of the prefixes this "
                 f"server may fetch from: {', '.join(prefixes)}")


def _rerank(query: Callable[..., dict[str, Any]], *, fetching: bool) -> dict[str, Any]:
    """``rerank``: a boolean where the server re-ranks and the operation can have a query image,
    else only false (true is a 400 naming rerank, which says why)."""
    depth = rerank_depth()
    if not depth:
        why = "this server does not re-rank (BOOKIDX_RERANK_DEPTH is 0)"
    elif not rerank_offered():
        why = "this server cannot re-rank (OpenCV is not installed)"
    elif not fetching:
        why = "this server fetches no image_url, so GET has no query image to check hits against; POST the image"
    else:
        return query("rerank", {"type": "boolean", "default": False},
                     f"Check the first {depth} hits against the query image (image_url or the upload) "
                     "and put the same picture first (see the API description)")
    return query("rerank", {"type": "boolean", "const": False, "default": False},
                 f"Re-rank by the query image: only false here, as {why}")


def responses() -> dict[str, Any]:
    error = ref("schemas/Error")
    texts = {
        400: "Invalid parameter (named in `parameter`)",
        404: "No such item",
        413: "Upload or image over the server's limits",
        422: "The item's source image cannot be read",
        500: "Server misconfigured (index missing) or internal error",
        502: "A remote image server failed",
    }
    out = {f"E{code}": _json(error, text) for code, text in texts.items()}
    # Where a path parameter can fail the route's own converter (a newline in a file name), the
    # 404 is the host app's page, not bookidx's JSON.
    out["E404route"] = {"description": "No such file, or a URL that matches no route (then the host app's HTML 404)",
                        "content": {"application/json": {"schema": error}, "text/html": {"schema": {"type": "string"}}}}
    return out


def _prefixes_pattern(prefixes: list[str]) -> str:
    """A regular expression for URLs starting with one of ``prefixes``, or empty (= absent)."""
    return "^($|" + "|".join(_SPECIAL.sub(r"\\\1", p) for p in prefixes) + ")"


# Escaped by hand, not with re.escape: that also escapes "-" and "#", which ECMA-262 (JSON
# Schema's regular expression dialect) refuses to see escaped outside a class in unicode mode.
_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")


def paths() -> dict[str, Any]:
    p = lambda *names: [ref(f"parameters/{n}") for n in names]  # noqa: E731
    filters = p(*params.FILTER_PARAMS)
    search_json = _json(ref("schemas/SearchResponse"), "Hits, best first")
    return {
        "/": {"get": {
            "operationId": "page", "summary": "A search page with the widget",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}, **_errors(500)},
        }},
        "/api/search": {
            "get": {
                "operationId": "search", "summary": "Search by text, by item (similar) or by image URL",
                "description": "Give q, similar or image_url, or more than one: with none of them "
                               "there is nothing to search for, a 400 naming q.",
                # Every parameter the view reads; image_url and rerank_by_url say what this server takes.
                "parameters": p("q", "mode", "w", "similar", "image_url", "limit", "page", "collapse",
                                "rerank_by_url") + filters,
                "responses": {"200": search_json, **_errors(400, 404, 413, 422, 500, 502)},
            },
            "post": {
                "operationId": "searchImage", "summary": "Search by an uploaded image, optionally with text",
                "parameters": p("mode", "limit", "page", "collapse", "rerank") + filters,
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {
                        "type": "object", "required": ["image"],
                        "properties": {
                            "image": {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"},
                            "q": {"type": "string", "maxLength": params.MAX_QUERY_CHARS},
                            "w": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                    "encoding": {"image": {"contentType": "image/*, application/octet-stream"}},
                }}},
                "responses": {"200": search_json, **_errors(400, 413, 500)},
            },
        },
        "/api/items/{id}": {"get": {
            "operationId": "item", "summary": "One item's record", "parameters": p("id"),
            "responses": {"200": _json(ref("schemas/Item"), "The item"), **_errors(404, 500)},
        }},
        "/api/items/{id}/similar": {"get": {
            "operationId": "itemSimilar", "summary": "Items whose images are most like this one's",
            "parameters": p("id", "limit", "page", "collapse") + filters,
            "responses": {"200": search_json, **_errors(400, 404, 500)},
        }},
        "/api/items/{id}/duplicates": {"get": {
            "operationId": "itemDuplicates", "summary": "The other items of its near-duplicate group (`bookidx duplicates`), most similar first",
            "parameters": p("id"),
            "responses": {"200": _json(ref("schemas/Duplicates"), "The group"), **_errors(404, 500)},
        }},
        "/api/manifests": {"get": {
            "operationId": "manifests",
            "summary": "The IIIF manifests (books) in the index, with the URLs of the annotated copies served here",
            "responses": {"200": _json(ref("schemas/Manifests"), "Manifests"), **_errors(500)},
        }},
        "/api/stats": {"get": {
            "operationId": "stats", "summary": "Counts and the model",
            "responses": {"200": _json(ref("schemas/Stats"), "Statistics"), **_errors(500)},
        }},
        "/api/health": {"get": {
            "operationId": "health", "summary": "Liveness: the index opens",
            "responses": {"200": _json(ref("schemas/Health"), "Healthy"), **_errors(500)},
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},
        "/crops/{id}.jpg": {"get": {
            "operationId": "crop", "summary": "A thumbnail of the item (redirects to the IIIF server when there is one)",
            "parameters": p("id"),
            "responses": {
                "200": {"description": "JPEG", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                "302": {"description": "The IIIF Image API URL of the thumbnail", "headers": {"Location": {"schema": {"type": "string"}}}},
                "304": {"description": "Not modified (If-None-Match)"},
                **_errors(404, 422, 500, 502),
            },
        }},
        "/static/{filename}": {"get": {
            "operationId": "static", "summary": "The widget's files (bookidx.js: <bookidx-search>, <bookidx-similar>)",
            "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The file"}, "304": {"description": "Not modified"}, "404": ref("responses/E404route")},
        }},
    }


def iiif_paths() -> dict[str, Any]:
    """The IIIF-out routes (web/iiif.py): manifests, annotations, Content Search 2.0 and 1.0."""
    slug = {"name": "slug", "in": "path", "required": True, "description": "First 16 hex digits of sha256(manifest id)",
            "schema": {"type": "string"}}
    canvas = {"name": "canvas", "in": "path", "required": True, "description": "Canvas index, from 0",
              "schema": {"type": "integer", "minimum": 0}}
    search_params = [
        slug, ref("parameters/q"),
        {"name": "motivation", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Space-separated motivations to keep (e.g. painting commenting)"},
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
         "description": "Result page, from 1; past the last page is a 404"},
    ]

    def ld(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/ld+json": {"schema": {"type": "object"}}}}

    return {
        "/iiif/{slug}/manifest.json": {"get": {
            "operationId": "iiifManifest", "summary": "The indexed manifest, with bookidx annotations and Content Search services",
            "parameters": [slug], "responses": {"200": ld("IIIF Presentation 2.1 or 3.0 manifest"), **_errors(404, 422, 500)},
        }},
        "/iiif/{slug}/annotations/{canvas}": {"get": {
            "operationId": "iiifAnnotations", "summary": "One canvas's annotations (AnnotationPage, or sc:AnnotationList for 2.1)",
            "parameters": [slug, canvas],
            "responses": {"200": ld("Annotations"), **_errors(404, 422, 500)},
        }},
        "/iiif/{slug}/search": {"get": {
            "operationId": "iiifSearch2", "summary": "IIIF Content Search 2.0 within one manifest",
            "parameters": search_params, "responses": {"200": ld("AnnotationPage of results"), **_errors(400, 404, 422, 500)},
        }},
        "/iiif/{slug}/search1": {"get": {
            "operationId": "iiifSearch1", "summary": "IIIF Content Search 1.0 within one manifest (Mirador, UV)",
            "parameters": search_params, "responses": {"200": ld("sc:AnnotationList of results"), **_errors(400, 404, 422, 500)},
        }},
    }


def document() -> dict[str, Any]:
    """The whole document for the collection serving the current request."""
    root = external_url(".openapi")[: -len("/openapi.json")]
    all_paths = paths()
    if iiif_served():
        all_paths.update(iiif_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "bookidx", "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": root}],
        "paths": all_paths,
        "components": {"schemas": schemas(), "parameters": parameters(), "responses": responses()},
    }
