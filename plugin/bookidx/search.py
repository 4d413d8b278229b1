"""Queries over an index: text → image, image → similar, item → similar, keywords, and fusion.

One place for ranking logic, used by the CLI and the web API alike:

* ``vector``: the query's embedding (text, image, or both mixed by ``weight``) against the
  vector index; cosine similarity is the score.
* ``keyword``: BM25 over captions and context (SQLite FTS5).
* ``fused``: reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) of the two lists,
  score = Σ 1 / (60 + rank). RRF needs no score calibration between BM25 and cosine, which is
  why it is the default when both a text query and a text-capable model are present.

``collapse`` keeps the best hit of each near-duplicate group (dedup.py) and drops the rest,
fetching deeper until the page is full, so a woodcut reprinted in twenty chapbooks shows once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Literal, TypeVar

import numpy as np

from .dedup import collapse
from .embed import Embedder, normalize
from .errors import BadRequest
from .store import Filters, Hit, Index

Mode = Literal["fused", "vector", "keyword"]
RRF_K = 60
#: A collapsed query fetches at most this many times its page depth before giving up on filling it.
COLLAPSE_DEPTH = 8  # collapsing reads at most 8x the page depth, so one request stays bounded


T = TypeVar("T")  # an entry of a ranking that page() cuts


@dataclass(frozen=True)
class Query:
    """What a user asked for. At least one of text, image, vector or similar is set."""

    text: str | None = None
    image: Any | None = None  # a PIL image (uploaded or read from a file)
    similar: int | None = None  # an item key: "more like this"
    vector: np.ndarray | None = None  # a ready query vector (benchmarks, API clients)
    weight: float = 0.5  # share of the image in a text+image query
    mode: Mode = "fused"
    filters: Filters | None = None
    limit: int = 10
    offset: int = 0
    collapse: bool = False  # one hit per near-duplicate group


def run(index: Index, query: Query, embedder: Callable[[], Embedder] | Embedder | None = None) -> list[Hit]:
    """Hits for ``query``, best first, ``limit`` of them after ``offset``.

    ``embedder`` may be a zero-argument callable so the model is only loaded when the query
    needs it (keyword and item→similar queries never do).
    """
    if query.mode not in ("fused", "vector", "keyword"):
        raise BadRequest(f"mode must be fused, vector or keyword, not {query.mode!r}", "mode")
    if not (0.0 <= query.weight <= 1.0):
        raise BadRequest("weight must be between 0 and 1", "w")
    if query.limit < 1 or query.offset < 0:
        raise BadRequest("limit must be >= 1 and offset >= 0", "limit")
    has_text = bool(query.text and query.text.strip())

    if query.similar is None and query.image is None and query.vector is None and not has_text:
        raise BadRequest("give a text query, an image, or an item id to find similar images", "q")

    get_model = embedder if callable(embedder) and not isinstance(embedder, Embedder) else (lambda: embedder)
    text_vectors = query.mode != "keyword" and has_text and supports_text(index, get_model)
    visual = query.similar is not None or query.image is not None or query.vector is not None
    if query.mode == "vector" and has_text and not text_vectors and not visual:
        raise BadRequest(
            f"model {index.info['model']['model']!r} has no text encoder: use mode=keyword or fused",
            "mode",
        )

    vec = _query_vector(index, query, get_model, with_text=text_vectors) if visual or text_vectors else None
    keywords = has_text and query.mode != "vector" and not visual

    def ranked(depth: int) -> list[Hit]:
        vector_hits: list[Hit] = []
        if vec is not None:
            exclude = (query.similar,) if query.similar is not None else ()
            vector_hits = index.search(vec, k=depth, filters=query.filters, exclude=exclude)
        keyword_hits = index.text_search(query.text, k=depth, filters=query.filters) if keywords else []
        if query.mode == "fused" and keywords:
            # RRF scores whenever fused mode had a text query, even if one list came back
            # empty, so the scores of one mode are always on one scale.
            return fuse([hits for hits in (vector_hits, keyword_hits) if hits])
        return vector_hits or keyword_hits

    return page(ranked, query)


def page(ranked: Callable[[int], list[T]], query: Query, hit: Callable[[T], Hit] = lambda x: x, *,
         start: int | None = None) -> list[T]:
    """The page ``query.offset``/``query.limit`` of a ranking (``ranked(depth)``: its first
    ``depth`` entries, or fewer when there are no more; ``hit`` gives an entry's Hit), read
    ``start`` deep first (default: to the end of the page).

    With ``query.collapse``, each near-duplicate group shows once (its best-ranked member), so
    the ranking is read deeper, 4x at a time, until the page is full, the ranking runs out, or
    ``COLLAPSE_DEPTH`` times the page depth has been read.
    """
    want = query.offset + query.limit
    depth = max(want, start or 0)
    if not query.collapse:
        return ranked(depth)[query.offset : want]
    while True:
        entries = ranked(depth)
        kept = {id(h) for h in collapse([hit(e) for e in entries])}
        unique = [e for e in entries if id(hit(e)) in kept]
        if len(unique) >= want or len(entries) < depth or depth >= want * COLLAPSE_DEPTH:
            return unique[query.offset : want]
        depth *= 4


def supports_text(index: Index, get_model: Callable[[], Embedder | None]) -> bool:
    """Whether the index's model reads text: recorded in the index, else ask the model."""
    recorded = index.info["model"].get("supports_text")
    if recorded is not None:
        return bool(recorded)
    model = get_model()
    return bool(model is not None and model.supports_text)


def text_unread(index: Index, get_model: Callable[[], Embedder | None], what: str) -> str | None:
    """Why text queries may find nothing, when it is the model's doing, for the CLI's and the
    web API's notes; None when the index's model reads text.

    ``what`` says which queries, with their verb: ``"'a ship' was"``, ``"the 3 text queries were"``.
    A model that reads no text (efficientnet-lite0) leaves :func:`run` only the items' words.
    """
    if supports_text(index, get_model):
        return None
    return (f"model {index.info['model']['model']!r} cannot read text, so {what} only looked for as words "
            "in the items' captions, context and titles")


def _query_vector(index: Index, query: Query, get_model, *, with_text: bool) -> np.ndarray:
    """One normalised vector: item, image, text, or a weighted mix of text and image."""
    parts: list[tuple[float, np.ndarray]] = []
    if query.vector is not None:
        parts.append((1.0, np.asarray(query.vector, dtype=np.float32).reshape(-1)))
    if query.similar is not None:
        parts.append((1.0, index.vector(query.similar)))
    if query.image is not None:
        parts.append((1.0, get_model().embed_images([query.image.convert("RGB")])[0]))
    if with_text:
        text_vec = get_model().embed_texts([query.text])[0]
        if parts:  # text and image combined: weight is the image's share
            w = query.weight
            parts = [(w * p, v) for p, v in parts] + [(1.0 - w, text_vec)]
        else:
            parts.append((1.0, text_vec))
    mixed = sum(w * normalize(v) for w, v in parts)
    return normalize(np.asarray(mixed, dtype=np.float32))


def fuse(lists: list[list[Hit]], k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion: one ranking from several, score Σ 1/(k + rank), rank from 1."""
    scores: dict[int, float] = {}
    first: dict[int, Hit] = {}
    for hits in lists:
        for rank, hit in enumerate(hits, 1):
            scores[hit.key] = scores.get(hit.key, 0.0) + 1.0 / (k + rank)
            first.setdefault(hit.key, hit)
    order = sorted(scores, key=lambda key: (-scores[key], key))
    return [replace(first[key], score=scores[key]) for key in order]
