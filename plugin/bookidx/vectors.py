"""Vector arithmetic for the store: snapshots, exact top-k, masks and merges (numpy only).

Cosine similarity of unit vectors is their dot product; usearch reports cosine *distance*,
1 − similarity (https://unum-cloud.github.io/usearch/python/reference.html, ``MetricKind.Cos``).
Keys are int64 here (Region.key is 63-bit), uint64 inside usearch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from usearch.index import MetricKind
from usearch.index import search as _brute

from .errors import BadRequest

TopK = tuple[np.ndarray, np.ndarray]  # keys (int64), similarities (float32), best first


@dataclass(frozen=True)
class Snapshot:
    """What one search sees: the graph (from the vector file) plus an exact-search overlay.

    ``keys``/``rows`` are items committed after the file was saved (readers only); they replace
    any vector the graph holds for the same key. ``seq`` is the newest commit covered and
    ``stat`` the file's (inode, size, mtime_ns) when read, None when there was none.
    ``gone``: keys the graph holds that SQLite no longer does (items removed since the file was
    saved; readers only), left out of its hits. ``removals``: the SQLite ``removals`` count read.
    """

    base: Any  # usearch.index.Index
    keys: np.ndarray
    rows: np.ndarray
    seq: int
    stat: tuple[int, int, int] | None
    gone: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    removals: int = 0


_MIN_NORM = 1e-6  # below this a vector has no direction to compare by cosine


def usable_rows(rows: np.ndarray) -> np.ndarray:
    """A bool per row: finite and not (nearly) zero, i.e. what :func:`unit_rows` accepts."""
    finite = np.isfinite(rows).all(axis=1)
    return finite & (np.linalg.norm(np.where(finite[:, None], rows, 0), axis=1) >= _MIN_NORM)


def unit_rows(rows: np.ndarray, parameter: str) -> np.ndarray:
    """Rows scaled to length 1, refusing NaN, infinity and zero rows (no direction to compare)."""
    if not np.isfinite(rows).all():
        raise BadRequest("vectors contain NaN or infinity", parameter)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if len(rows) and float(norms.min()) < _MIN_NORM:
        raise BadRequest("a zero vector has no direction to compare by cosine", parameter)
    return (rows / norms).astype(np.float32)


def rows_of(matches: Any, n: int) -> list[TopK]:
    """usearch Matches (one query) or BatchMatches (several) as (keys, similarities) per query."""
    if n == 1 and not hasattr(matches, "counts"):
        return [(matches.keys.astype(np.int64), (1.0 - matches.distances).astype(np.float32))]
    return [
        (matches.keys[i, :c].astype(np.int64), (1.0 - matches.distances[i, :c]).astype(np.float32))
        for i, c in enumerate(matches.counts)
    ]


def keep_mask(keys: np.ndarray, drop: np.ndarray, hidden: np.ndarray | None, allow: np.ndarray | None) -> np.ndarray:
    """True for keys not in ``drop`` or ``hidden`` and, when given, in the sorted ``allow``."""
    keep = np.ones(len(keys), dtype=bool)
    if len(drop):
        keep &= ~np.isin(keys, drop)
    if hidden is not None and len(hidden):
        keep &= ~np.isin(keys, hidden)
    if allow is not None:
        at = np.minimum(np.searchsorted(allow, keys), max(len(allow) - 1, 0))
        keep &= (allow[at] == keys) if len(allow) else False
    return keep


def exact_top(queries: np.ndarray, keys: np.ndarray, rows: np.ndarray, k: int, keep: np.ndarray) -> list[TopK]:
    """The k most similar of ``rows`` (where ``keep``) for each unit query, by brute force.

    usearch's exhaustive search works on float16 rows directly with SIMD, about 10x faster
    than widening them for a numpy product; it asks for enough rows to survive ``keep``.
    """
    if not keep.any():
        return [(keys[:0], np.zeros(0, np.float32)) for _ in queries]
    count = min(len(keys), k + int((~keep).sum()))
    matches = _brute(rows, queries.astype(rows.dtype), count, MetricKind.Cos, exact=True, threads=1)
    out = []
    for at, sims in rows_of(matches, len(queries)):
        ok = keep[at]
        out.append(_top(keys[at[ok]], sims[ok], k))
    return out


def merge_top(a: TopK, b: TopK, k: int) -> TopK:
    """The best k of two disjoint result lists."""
    return _top(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), k)


def _top(keys: np.ndarray, sims: np.ndarray, k: int) -> TopK:
    if len(keys) > k:
        part = np.argpartition(-sims, k - 1)[:k]
        keys, sims = keys[part], sims[part]
    order = np.lexsort((keys, -sims))  # ties broken by key, so results are reproducible
    return keys[order], sims[order]


def nearest(
    snap: Snapshot,
    rows: np.ndarray,
    k: int,
    drop: np.ndarray,
    allowed: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    oversample: int = 1,
    exact_below: int = 0,
) -> list[TopK]:
    """The k nearest of a snapshot for each unit query row, keys in ``drop`` left out.

    The graph is searched by HNSW (exhaustively when it holds fewer than ``exact_below``),
    asking for ``k * oversample`` and widening 4x until k pass the masks; ``allowed`` (a filter)
    maps found keys to the sorted subset that may be returned. Then merged with the overlay.
    The graph's keys that the overlay replaces or that are gone are never taken from it.
    """
    n = len(snap.base)
    hidden = np.union1d(snap.keys, snap.gone) if len(snap.gone) else snap.keys
    graph_hits = [(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(rows)
    count, exact = min(n, k * oversample + len(drop) + len(snap.gone)), n < exact_below
    while count:
        graph_hits = []
        short = False
        found = rows_of(snap.base.search(rows, count, exact=exact), len(rows))
        allow = allowed(np.unique(np.concatenate([keys for keys, _ in found]))) if allowed else None
        for keys, sims in found:
            keep = keep_mask(keys, drop, hidden, allow)
            graph_hits.append((keys[keep], sims[keep]))
            short |= int(keep.sum()) < k
        if not short or count >= n:
            break
        count = min(n, count * 4)
        exact = exact or count * 2 >= n  # nearly everything: the exhaustive scan is cheaper
    if len(snap.keys):
        allow = allowed(np.sort(snap.keys)) if allowed else None
        overlay = exact_top(rows, snap.keys, snap.rows, k, keep_mask(snap.keys, drop, None, allow))
        return [merge_top(a, b, k) for a, b in zip(graph_hits, overlay)]
    return [merge_top(a, (a[0][:0], a[1][:0]), k) for a in graph_hits]


def upsert(graph: Any, keys: np.ndarray, rows: np.ndarray) -> None:
    """Put vectors in the graph, replacing any it has for those keys (the last one given wins)."""
    if not len(keys):
        return
    last = len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]
    keys, rows = keys[last].astype(np.uint64), rows[last]
    present = graph.contains(keys)
    if present.any():
        graph.remove(keys[present])
    graph.add(keys, rows)
