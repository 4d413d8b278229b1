"""Reading an index: vector search (exhaustive, HNSW, filtered), keyword search (FTS5 BM25),
listings and statistics; the read side of :class:`bookidx.store.Index`, as a mixin.

Search: below EXACT_BELOW items usearch searches exhaustively (perfect recall, milliseconds);
above, HNSW. With filters, SQLite names the candidates: few (EXACT_FILTERED) or rare ones are
ranked exactly from their stored vectors, others by oversampling HNSW until k pass the filter.
Scores are cosine similarity for vectors and minus BM25 for keywords (SQLite FTS5 §5.1.1,
https://www.sqlite.org/fts5.html#the_bm25_function), higher is better in both.

Every read takes a connection from ``_reading()`` (the writer's own, or one from the readers'
pool) and a vector snapshot from ``_searching()``; store.py owns both, and the opening,
refreshing and writing of the index. A reader counts stats() once per commit (``_counts``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from . import meta, removal
from .adapters.records import Region
from .errors import BadRequest, NotFound
from .meta import Filters
from .vectors import Snapshot, exact_top, keep_mask, nearest, unit_rows

EXACT_BELOW = 20_000  # items; exhaustive search under this is fast and has perfect recall
# Filtered search ranks up to EXACT_FILTERED candidates exactly from their SQLite blobs (about
# 6 us a row), and more by HNSW oversampled k * 2 * total/candidates, unless that would fetch
# over HNSW_FETCH_LIMIT results (a rare filter in a huge index): then exactly, too.
EXACT_FILTERED = 2_000
HNSW_FETCH_LIMIT = 2_000
_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "i8": 1}


@dataclass(frozen=True)
class Hit:
    """One search result. ``score``: cosine similarity (vectors) or -BM25 (keywords); higher is better.

    ``group``: the near-duplicate group (dedup.py) the item is in, None when in none;
    ``group_size``: how many items that group holds (1 outside a group).
    """

    key: int
    score: float
    region: Region
    cls: str | None = None
    group: int | None = None
    group_size: int = 1


class Queries:
    """The read-side methods of :class:`bookidx.store.Index` (which provides the attributes below)."""

    path: Path
    info: dict
    ndim: int
    _blob: np.dtype  # dtype of the stored vector blobs
    _snap: Snapshot  # the vectors searched now
    _reading: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _searching: Callable[[], AbstractContextManager[Snapshot]]
    _check_open: Callable[[], None]
    _writable: bool
    _pool_lock: threading.Lock  # guards the readers' connections, _opened, and _counted
    _opened: list[sqlite3.Connection]  # every reader connection, closed at close()
    _counted: _Counted | None = None  # stats()'s counts, made on first use (readers only)

    def __len__(self) -> int:
        with self._reading() as con:
            return con.execute("SELECT count(*) FROM items").fetchone()[0]

    def has(self, keys: Sequence[int]) -> np.ndarray:
        """Whether each key is indexed (a writer counts its own uncommitted adds)."""
        keys = [int(k) for k in keys]
        with self._reading() as con:
            found = meta.existing(con, keys)
        return np.fromiter((k in found for k in keys), dtype=bool, count=len(keys))

    def still_dropped(self, keys: Sequence[int], classifier: str, classes: Sequence[str]) -> dict[int, str]:
        """Of ``keys``, the items ``classifier`` (a digest) left out as one of ``classes``, with their class."""
        with self._reading() as con:
            return meta.still_dropped(con, keys, classifier, classes)

    def get(self, key: int) -> Region:
        with self._reading() as con:
            row = con.execute("SELECT region_json FROM items WHERE key = ?", (int(key),)).fetchone()
        if row is None:
            raise NotFound(f"no item with id {key}", "id")
        return Region.from_dict(json.loads(row[0]))

    def vector(self, key: int) -> np.ndarray:
        """The stored (unit) vector of an item, as float32."""
        with self._reading() as con:
            row = con.execute("SELECT vector FROM items WHERE key = ?", (int(key),)).fetchone()
        if row is None:
            raise NotFound(f"no item with id {key}", "id")
        return np.frombuffer(row[0], dtype=self._blob).astype(np.float32)

    def group(self, key: int) -> list[int]:
        """The keys of the near-duplicate group ``key`` is in, itself included; [] when in none."""
        sql = "SELECT g.key FROM items AS i JOIN items AS g ON g.grp = i.grp WHERE i.key = ? ORDER BY g.key"
        with self._reading() as con:
            if not meta.existing(con, [int(key)]):
                raise NotFound(f"no item with id {key}", "id")
            return [row[0] for row in con.execute(sql, (int(key),))]

    def vector_batches(self, size: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every item's key (int64) and stored vector (float32 rows), ``size`` at a time, by key.

        Each batch is its own read, so a writer may update items (set_class) between batches.
        """
        after = -1
        while True:
            with self._reading() as con:
                keys, rows, _ = meta.vectors(
                    con, "key > ? ORDER BY key LIMIT ?", (after, int(size)), self.ndim, self._blob
                )
            if not len(keys):
                return
            yield keys, rows.astype(np.float32)
            after = int(keys[-1])

    def neighbours(self, vectors: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Keys and cosine similarities of the ``k`` nearest items to each row, best first.

        Bulk jobs (duplicate groups) use this instead of :meth:`search`: no regions are read.
        """
        rows = unit_rows(np.asarray(vectors, dtype=np.float32).reshape(-1, self.ndim), "vectors")
        if k < 1:
            raise BadRequest("k must be at least 1", "k")
        with self._searching() as snap:
            return nearest(snap, rows, k, np.zeros(0, np.int64), exact_below=EXACT_BELOW)

    def search(
        self, vector: np.ndarray, k: int = 10, *, filters: Filters | None = None, exclude: Iterable[int] = ()
    ) -> list[Hit] | list[list[Hit]]:
        """Nearest items by cosine similarity: one vector gives a list, a matrix a list per row.

        ``exclude`` drops keys (the query item itself for "more like this").
        """
        query = np.asarray(vector, dtype=np.float32)
        if query.ndim not in (1, 2) or query.shape[-1] != self.ndim:
            raise BadRequest(f"query has shape {query.shape}, expected ({self.ndim},) or (n, {self.ndim})", "vector")
        if k < 1:
            raise BadRequest("k must be at least 1", "k")
        rows = unit_rows(query.reshape(-1, self.ndim), "vector")
        drop = np.unique(np.fromiter((int(x) for x in exclude), dtype=np.int64))
        with self._searching() as snap:
            if filters is None or filters.empty:
                found = nearest(snap, rows, k, drop, exact_below=EXACT_BELOW)
            else:
                found = self._nearest_filtered(snap, rows, k, drop, filters)
        hits = self._hits(found)
        return hits[0] if query.ndim == 1 else hits

    def _nearest_filtered(self, snap: Snapshot, rows: np.ndarray, k: int, drop: np.ndarray, filters: Filters):
        where, params = filters.sql()
        with self._reading() as con:
            n = con.execute(f"SELECT count(*) FROM items WHERE {where}", params).fetchone()[0]
            oversample = 2 * math.ceil((len(snap.base) + len(snap.keys)) / max(n, 1))
            if n <= EXACT_FILTERED or k * oversample > HNSW_FETCH_LIMIT:  # few, or rare: exact
                keys, mat, _ = meta.vectors(con, where, params, self.ndim, self._blob)
                return exact_top(rows, keys, mat, k, keep_mask(keys, drop, None, None))

        def allowed(keys: np.ndarray) -> np.ndarray:  # the sorted subset of keys passing the filter
            sql = f"SELECT key FROM items WHERE key IN (SELECT value FROM json_each(?)) AND {where} ORDER BY key"
            with self._reading() as con:
                return np.fromiter((r[0] for r in con.execute(sql, [meta.key_list(keys), *params])), np.int64)

        return nearest(snap, rows, k, drop, allowed, oversample=oversample, exact_below=EXACT_BELOW)

    def _hits(self, found: list[tuple[np.ndarray, np.ndarray]]) -> list[list[Hit]]:
        with self._reading() as con:
            known = meta.regions(con, sorted({int(key) for keys, _ in found for key in keys}))
        # A key missing from SQLite is not in the index: removed since the snapshot (a reader
        # until its next refresh; a writer between remove() and commit()), or from a vector
        # file ahead of a lost commit. Such a search returns fewer than k hits.
        return [
            [Hit(int(key), float(sim), *known[int(key)]) for key, sim in zip(keys, sims) if int(key) in known]
            for keys, sims in found
        ]

    def text_search(self, query: str, k: int = 10, *, filters: Filters | None = None, offset: int = 0) -> list[Hit]:
        """BM25 keyword search over captions (weighted most), book titles and page text.

        Any user input is safe (see meta.fts_query); a query without words finds nothing.
        """
        if k < 1 or offset < 0:
            raise BadRequest("k must be at least 1 and offset at least 0", "k")
        match = meta.fts_query(query)
        if match is None:
            return []
        where, params = (filters or Filters()).sql()
        weights = ", ".join(str(w) for w in meta.BM25_WEIGHTS)
        # Rank the matches first and read region JSON for the page of hits only: a common word
        # matches a large share of the index (bench/serve_latency.py: 438k of 1M rows), and
        # carrying every match's row through the sort was 2.6x slower. Unfiltered queries skip
        # the join entirely. Ties break by key, so OFFSET pages neither repeat nor skip hits.
        join = "" if where == "1" else "JOIN items ON items.key = items_fts.rowid"
        sql = f"""SELECT items.key, items.region_json, items.cls, {meta.GROUP_COLUMNS}, ranked.rank
                  FROM (SELECT items_fts.rowid AS key, bm25(items_fts, {weights}) AS rank FROM items_fts {join}
                        WHERE items_fts MATCH ? AND {where} ORDER BY rank, key LIMIT ? OFFSET ?) AS ranked
                  JOIN items ON items.key = ranked.key ORDER BY ranked.rank, ranked.key"""
        with self._reading() as con:
            rows = con.execute(sql, [match, *params, k, offset]).fetchall()
        return [
            Hit(key, -rank, Region.from_dict(json.loads(js)), cls, grp, max(size, 1))
            for key, js, cls, grp, size, rank in rows
        ]

    def items(self, *, manifest: str | None = None, canvas: str | None = None, limit: int | None = None, offset: int = 0) -> list[tuple[int, Region]]:
        """Items in reading order (manifest or book, page, key), optionally of one manifest/canvas."""
        where, params = Filters(manifest=manifest, canvas=canvas).sql()
        sql = f"SELECT key, region_json FROM items WHERE {where} ORDER BY manifest, page, key LIMIT ? OFFSET ?"
        with self._reading() as con:
            rows = con.execute(sql, [*params, -1 if limit is None else int(limit), int(offset)]).fetchall()
        return [(key, Region.from_dict(json.loads(js))) for key, js in rows]

    def manifests(self) -> list[dict]:
        """One entry per manifest (or book, when the source had no manifest): id, title, count."""
        sql = """SELECT manifest, max(title), count(*) FROM items WHERE manifest IS NOT NULL
                 GROUP BY manifest ORDER BY manifest"""
        with self._reading() as con:
            return [{"id": m, "title": t, "count": n} for m, t, n in con.execute(sql)]

    def select(self, selection: removal.Selection) -> list[removal.Entry]:
        """The items (and failure or drop records) a removal by ``selection`` takes (removal.py)."""
        with self._reading() as con:
            return removal.select(con, selection)

    def failures(self) -> list[dict]:
        with self._reading() as con:
            return meta.failures(con)

    def stats(self) -> dict:
        """Counts (items, manifests, books, kinds, classes, groups, failures, drops), then the
        vectors and the files; the counts are cached until the next commit (see _counts)."""
        counts = self._counts()
        out = {**counts, **{name: dict(counts[name]) for name in ("kinds", "classes", "dropped")}}
        snap = self._snap
        dtype = self.info["usearch"]["dtype"]
        out["vectors_in_file"] = len(snap.base)
        out["vectors_overlay"] = len(snap.keys)
        out["vector_bytes"] = counts["items"] * self.ndim * _BYTES[dtype]
        out["files"] = {p.name: p.stat().st_size for p in sorted(self.path.iterdir()) if p.is_file()}
        return out

    def _counts(self) -> dict:
        """stats()'s counts: index scans (0.15 s at 1M items), so a reader counts once per commit.

        The key is ``PRAGMA data_version``, which moves when another connection commits
        (https://www.sqlite.org/pragma.html#pragma_data_version). Its values are per connection,
        so one connection is kept to read it; it is read before counting, under the lock, so a
        cached count is never older than a commit any earlier read of this Index could see. A
        writer counts every time: its reads see its own uncommitted changes, which do not move
        its data_version.
        """
        self._check_open()
        if self._writable:
            with self._reading() as con:
                return _count(con)
        with self._pool_lock:
            if self._counted is None:
                self._counted = _Counted(meta.connect(self.path / meta.DB, readonly=True))
                self._opened.append(self._counted.watch)  # closed with the pool's connections
            cache = self._counted
        with cache.lock:  # one thread counts after a commit; the others wait for its counts
            version = cache.watch.execute("PRAGMA data_version").fetchone()[0]
            if version != cache.version:
                with self._reading() as con:
                    cache.counts = _count(con)
                cache.version = version
            return cache.counts


class _Counted:
    """A reader's cached counts and the data_version (of ``watch``) they were counted at."""

    def __init__(self, watch: sqlite3.Connection):
        self.watch = watch
        self.lock = threading.Lock()
        self.version: int | None = None
        self.counts: dict = {}


def _count(con: sqlite3.Connection) -> dict:
    """The counts of stats(), read in one transaction so that they agree with each other."""

    def by(column: str) -> dict[str, int]:
        rows = con.execute(f"SELECT {column}, count(*) FROM items WHERE {column} IS NOT NULL GROUP BY 1")
        return dict(rows.fetchall())

    one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    with meta.read_together(con):
        return {
            "items": one("SELECT count(*) FROM items"),
            "manifests": one("SELECT count(DISTINCT manifest) FROM items"),
            "books": one("SELECT count(DISTINCT book) FROM items"),
            "kinds": by("kind"),
            "classes": by("cls"),
            "duplicate_groups": one("SELECT count(DISTINCT grp) FROM items"),
            "failures": one("SELECT count(*) FROM failures"),
            "dropped": meta.dropped_by_class(con),
        }
