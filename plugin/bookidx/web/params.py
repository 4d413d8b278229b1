"""Query-string parsing for the JSON API: paging, filters, ids, modes — pure, no Flask.

Every function takes a werkzeug ``MultiDict`` (``request.args``) or a string and returns plain
values, raising :class:`~bookidx.errors.BadRequest` that names the offending parameter, so the
400 a client gets says exactly what to fix. The parameters are the ones the OpenAPI document
(web/openapi.py) declares; the two are kept in step by tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import BadRequest

MODES = ("fused", "vector", "keyword")
MAX_QUERY_CHARS = 500
YEAR_LIMIT = 9999
MAX_KEY = 2**63 - 1  # keys are 63-bit (adapters/records.py Region.key)
_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)
SINGLE = ("q", "mode", "w", "similar", "image_url", "limit", "page", "collapse", "rerank", "manifest", "book", "canvas",
          "date_from", "date_to")
FILTER_PARAMS = ("manifest", "book", "canvas", "kind", "class", "date_from", "date_to")


@dataclass(frozen=True)
class Paging:
    """Hits per page and 1-based page number, already checked against the server's caps."""

    limit: int
    page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def once(args: Any) -> None:
    """Refuse a repeated single-valued parameter (``q=a&q=b``): which one was meant is unknown."""
    for name, values in args.lists():
        if len(values) > 1 and name in SINGLE:
            raise BadRequest(f"give {name} once (only kind and class repeat)", name)


def paging(args: Mapping[str, Any], *, default_limit: int, max_results: int, max_depth: int) -> Paging:
    """``limit`` and ``page``: a limit over ``max_results`` or a page over
    ``max_depth // max_results`` is a 400 (fixed caps, so the OpenAPI schema can state them)."""
    limit = integer(args, "limit", default_limit, minimum=1, maximum=max_results)
    page = integer(args, "page", 1, minimum=1, maximum=max_pages(max_results, max_depth))
    return Paging(limit, page)


def max_pages(max_results: int, max_depth: int) -> int:
    return max(1, max_depth // max_results)


def integer(
    args: Mapping[str, Any], name: str, default: int | None, *, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    """An optional integer parameter (``default`` when absent; empty is a 400 like any non-number)."""
    raw = args.get(name)
    if raw is None:
        return default
    # Not int(): it also takes "1_000", " 7 " and non-ASCII digits, which the schema does not.
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer, not {str(raw)[:40]!r}", name)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise BadRequest(f"{name} must be at least {minimum}", name)
    if maximum is not None and value > maximum:
        raise BadRequest(f"{name} must be at most {maximum}", name)
    return value


def weight(args: Mapping[str, Any]) -> float:
    """``w``: the image's share in a text+image query, 0..1 (default 0.5)."""
    raw = args.get("w")
    if raw is None:
        return 0.5
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"w must be a number between 0 and 1, not {str(raw)[:40]!r}", "w") from None
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise BadRequest("w must be between 0 and 1", "w")
    return value


def flag(args: Mapping[str, Any], name: str) -> bool:
    """A boolean parameter: ``true``/``1`` or ``false``/``0`` (absent: false)."""
    raw = args.get(name)
    if raw is None:
        return False
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true, false, 1 or 0", name)


def mode(args: Mapping[str, Any]) -> str:
    value = args.get("mode", "fused")
    if value not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, not {str(value)[:40]!r}", "mode")
    return value


def text(args: Mapping[str, Any]) -> str | None:
    """``q``, stripped; None when absent or blank."""
    value = args.get("q") or ""
    if len(value) > MAX_QUERY_CHARS:  # as sent, as the OpenAPI maxLength says (not after strip)
        raise BadRequest(f"q must be at most {MAX_QUERY_CHARS} characters", "q")
    return value.strip() or None


def key(raw: str, parameter: str, *, missing: type[Exception] = BadRequest) -> int:
    """An item id: the decimal form of a 63-bit key.

    ``missing`` is the error for something that cannot be an id: a 404 for ids in paths (no such
    item), a 400 for ids in query parameters (a malformed request).
    """
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_KEY:
        raise missing(f"{raw[:40]!r} is not an item id (a decimal number below 2**63)", parameter)
    return int(raw)


def filters(args: Any) -> dict[str, Any] | None:
    """Keyword arguments for ``store.Filters``, or None when no filter is given.

    ``kind`` and ``class`` repeat (``kind=Illustration&kind=Map``); an item passes when it has
    any of them. ``date_from``/``date_to`` are years, both ends included (a reversed range is
simply empty).
    """
    out: dict[str, Any] = {}
    for name in ("manifest", "book", "canvas"):
        value = args.get(name)
        if value:
            out[name] = value
    kinds = tuple(v for v in args.getlist("kind") if v)
    if kinds:
        out["kinds"] = kinds
    classes = tuple(v for v in args.getlist("class") if v)
    if classes:
        out["classes"] = classes
    for name in ("date_from", "date_to"):
        value = integer(args, name, None, minimum=-YEAR_LIMIT, maximum=YEAR_LIMIT)
        if value is not None:
            out[name] = value
    return out or None


def satisfiable(filters: dict[str, Any] | None) -> bool:
    """False for a date range that ends before it starts: valid, but nothing can match it."""
    start, end = (filters or {}).get("date_from"), (filters or {}).get("date_to")
    return start is None or end is None or start <= end


#: What a search echoes in its response's ``query`` member, and what an upload's URL may hold
#: (its q and w are form fields; the URL's similar and image_url are not read).
ECHOED = ("q", "similar", "image_url", "mode", "w", "collapse", "rerank", *FILTER_PARAMS)
UPLOAD_ECHOED = ("mode", "collapse", "rerank", *FILTER_PARAMS)


def echo(args: Any, names: tuple[str, ...] = ECHOED) -> dict[str, Any]:
    """The query as understood, for the response's ``query`` member (repeated ones as lists)."""
    out: dict[str, Any] = {}
    for name in names:
        values = [v for v in args.getlist(name) if v != ""]
        if values:
            out[name] = values if name in ("kind", "class") else values[0]
    return out
