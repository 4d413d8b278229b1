"""The response bodies of the JSON API as JSON Schema 2020-12 (the dialect OpenAPI 3.1 uses):
``components/schemas`` of the document openapi.py builds.

They say what the views really return: tests validate live responses against them, so
schema-driven fuzzers and client generators can rely on them.
"""

from __future__ import annotations

from typing import Any

from ..rerank import MIN_INLIERS
from . import params
from .state import MANIFEST_LINKS


def ref(name: str) -> dict[str, str]:
    """A reference to ``#/components/<name>`` (``"schemas/Hit"``, ``"parameters/q"``)."""
    return {"$ref": f"#/components/{name}"}


def nullable(type_: str) -> dict[str, Any]:
    return {"type": [type_, "null"]}


def schemas() -> dict[str, Any]:
    """Component schemas: Error, Hit, Item, SearchResponse, and the small endpoints' bodies."""
    string, integer = {"type": "string"}, {"type": "integer"}
    box = {"type": "object", "required": ["x", "y", "w", "h"], "properties": {k: integer for k in "xywh"}}
    book = {
        "type": ["object", "null"],
        "required": ["id", "title", "creator", "date"],
        "properties": {
            "id": string, "title": string, "creator": string, "date": string, "language": string,
            "metadata": {"type": "array", "items": {"type": "array", "items": string, "minItems": 2, "maxItems": 2}},
        },
    }
    hit_props = {
        "id": {"type": "string", "pattern": "^[0-9]{1,19}$", "description": "Item key, decimal"},
        "score": {"type": ["number", "null"], "description": "Higher is better; null outside a search"},
        "manifest": nullable("string"),
        "canvas": string,
        "region": {**box, "description": "Canvas coordinates"},
        "xywh": {"type": "string", "pattern": "^-?[0-9]+,-?[0-9]+,[0-9]+,[0-9]+$"},
        "thumbnail": {"type": "string", "format": "uri"},
        "caption": string,
        "kind": string,
        "class": nullable("string"),
        "group": {"type": ["string", "null"], "pattern": "^[0-9]{1,19}$", "description": "Near-duplicate group id, null when in none"},
        "group_size": {"type": "integer", "minimum": 1, "description": "Items in the near-duplicate group (1 outside one)"},
        "inliers": {"type": ["integer", "null"], "minimum": 0, "description": (
            f"rerank=true: keypoint matches one affine transform explains; {MIN_INLIERS} or more is the same "
            "picture (an exact match). Null when not checked (no rerank, past its depth, or unreadable)")},
        "page": {"type": "object", "required": ["index", "label"], "properties": {"index": integer, "label": string}},
        "book": book,
        "links": {
            "type": "object", "required": ["self", "similar"],
            "properties": {"self": {"type": "string", "format": "uri"}, "similar": {"type": "string", "format": "uri"}},
        },
    }
    hit = {"type": "object", "required": sorted(hit_props), "properties": hit_props}
    uri = {"type": "string", "format": "uri"}
    manifest = {"type": "object", "required": ["id", "title", "count", "slug", "links"], "properties": {
        "id": {**string, "description": "The IIIF manifest id, or the book id where the source had no manifest"},
        "title": string,
        "count": {**integer, "description": "Items indexed from it"},
        "slug": {"type": ["string", "null"], "pattern": "^[0-9a-f]{16}$",
                 "description": "The {slug} of the /iiif routes (first 16 hex digits of sha256(id)); "
                                "null when the index keeps no copy of it (not a IIIF manifest)"},
        "links": {
            "type": ["object", "null"], "required": [name for name, _ in MANIFEST_LINKS],
            "properties": {
                "manifest": {**uri, "description": "The manifest with bookidx annotations and search services"},
                "search": {**uri, "description": "Its IIIF Content Search 2.0 service"},
                "search1": {**uri, "description": "Its IIIF Content Search 1.0 service (Mirador, UV)"},
            },
            "description": "Where this server serves it; null with slug",
        },
    }}
    item_props = {
        **hit_props,
        "page": {
            "type": "object", "required": ["index", "label", "id", "width", "height"],
            "properties": {"index": integer, "label": string, "id": string, "width": integer, "height": integer},
        },
        "box": {**box, "description": "Page-image pixels"},
        "image": {
            "type": "object", "required": ["width", "height", "service", "api", "url"],
            "properties": {"width": integer, "height": integer, "service": nullable("string"),
                           "api": nullable("integer"), "url": nullable("string")},
        },
        "context": string,
        "tags": {"type": "array", "items": string},
        "duplicates": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                       "description": "The other items of its near-duplicate group"},
    }
    return {
        "Error": {
            "type": "object", "required": ["error", "detail", "parameter"],
            "properties": {"error": integer, "detail": string, "parameter": nullable("string")},
        },
        "Hit": hit,
        "Item": {"type": "object", "required": sorted(item_props), "properties": item_props},
        "SearchResponse": {
            "type": "object", "required": ["query", "mode", "page", "limit", "hits", "next", "more", "warnings"],
            "properties": {
                "query": {"type": "object", "description": "The parameters as understood"},
                "mode": {"enum": list(params.MODES)},
                "page": integer, "limit": integer,
                "hits": {"type": "array", "items": ref("schemas/Hit")},
                "next": {"type": ["string", "null"], "format": "uri", "description": "The next page; null on the last (and for POST)"},
                "more": {"type": "boolean", "description": "Whether a next page exists and may be asked for "
                                                            "(false on the last page BOOKIDX_MAX_DEPTH allows)"},
                "warnings": {"type": "array", "items": string, "description": (
                    "Why the answer may not be what was meant, in words for a person; usually empty. So far one: a "
                    "text query that found nothing because the index's model reads no text (only the items' words "
                    "were searched)")},
            },
        },
        "Duplicates": {
            "type": "object", "required": ["id", "group", "group_size", "hits"],
            "properties": {
                "id": hit_props["id"], "group": hit_props["group"], "group_size": hit_props["group_size"],
                "hits": {"type": "array", "items": ref("schemas/Hit"), "description": "The group's other items; score: cosine similarity to this one"},
            },
        },
        "Manifests": {
            "type": "object", "required": ["manifests"],
            "properties": {"manifests": {"type": "array", "items": manifest}},
        },
        "Stats": {
            "type": "object", "required": ["items", "model", "stats"],
            "properties": {"items": integer, "model": {"type": "object"}, "stats": {"type": "object"}},
        },
        "Health": {
            "type": "object", "required": ["status", "items", "model", "model_loaded"],
            "properties": {"status": {"const": "ok"}, "items": integer, "model": string, "model_loaded": {"type": "boolean"}},
        },
    }
