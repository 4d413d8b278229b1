"""IIIF Presentation JSON-LD as documents write it: ids, types, values, language maps, canvases.

The one reading of these shared by everything that walks a manifest (adapters/iiif.py reading
it, annotate.py adding annotations to it), so both see the same canvases at the same positions.

Implements Presentation 3.0 (https://iiif.io/api/presentation/3.0/) §3.3 ``id``/``type``,
§4.4 language maps and §3.3 ``items`` of a Manifest; Presentation 2.1
(https://iiif.io/api/presentation/2.1/) §5.2 ``@id``/``@type`` with their JSON-LD prefixes
(``sc:Manifest``, ``oa:Choice``), ``@value``/``@language`` objects (§4.3 "Language of
Property Values") and §5.1 ``sequences``, whose first is the default reading order. Tolerated
in the wild: ``type`` as a one-element list (``["Canvas"]``), RFC 6570 URI templates in ids
(``{?fields}``, NLN), non-standard v2 language maps (``{"en": "..."}``), HTML in values.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

TEMPLATE = re.compile(r"\{[?&/#+.;]?[A-Za-z0-9_,*:%]+\}")  # RFC 6570 expressions, e.g. {?fields}
_TAG = re.compile(r"<[^>]+>")


def as_list(value: Any) -> list:
    """A property that may hold one value or a list of them, as a list ([] for None)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def raw_id(obj: Any) -> str:
    """The id (v3) or @id (v2) of an object, or a bare URI string, exactly as written ("" if none).

    Annotation targets must repeat a canvas id character for character, templates included.
    """
    ident = (obj.get("id") or obj.get("@id")) if isinstance(obj, Mapping) else obj
    return ident if isinstance(ident, str) else ""


def id_of(obj: Any) -> str:
    """The id of an object or a bare URI string, URI templates stripped and trimmed."""
    ident = raw_id(obj)
    return TEMPLATE.sub("", ident).strip() if "{" in ident else ident.strip()


def type_of(obj: Any) -> str:
    """The type without a JSON-LD prefix: "sc:Manifest" -> "Manifest", ["Canvas"] -> "Canvas"."""
    if not isinstance(obj, Mapping):
        return ""
    declared = obj.get("type") or obj.get("@type") or ""
    declared = declared[0] if isinstance(declared, list) and declared else declared
    return str(declared).rsplit(":", 1)[-1] if "/" not in str(declared) else str(declared)


def canvases(doc: Mapping) -> list[Mapping]:
    """The canvases of a manifest in reading order: v2's first sequence, else v3's ``items``.

    A canvas's position in this list is its index everywhere (``Page.index``, annotation pages).
    """
    sequences = [s for s in as_list(doc.get("sequences")) if isinstance(s, Mapping)]
    if sequences:  # v2: the first sequence is the default reading order
        found = as_list(sequences[0].get("canvases"))
    else:
        found = [c for c in as_list(doc.get("items")) if type_of(c) in ("Canvas", "")]
    return [c for c in found if isinstance(c, Mapping)]


def plain_text(value: Any) -> str:
    """Plain text of a v2 or v3 property value, preferring English, then no language, then the first.

    Handles strings, ``{"@value", "@language"}`` objects and lists of them (v2), language maps
    (v3 and the non-standard v2 ``{"en": "..."}``), and strips the HTML that values may carry.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return html.unescape(_TAG.sub("", value)).strip()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Mapping):
        if "@value" in value:
            return plain_text(value["@value"])
        keys = [k for k in ("en", "none", "@none") if k in value] or list(value)
        return plain_text(value[keys[0]]) if keys else ""
    if isinstance(value, list):
        tagged = [v for v in value if isinstance(v, Mapping) and "@language" in v]
        if tagged:
            english = [v for v in tagged if str(v["@language"]).lower().startswith("en")]
            value = english or [v for v in value if v not in tagged] or tagged[:1]
        return "; ".join(t for t in (plain_text(v) for v in value) if t)
    return str(value)
