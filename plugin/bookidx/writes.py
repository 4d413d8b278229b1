"""Changing an index: adding, labelling, grouping and removing items, and recording the items
that failed or were left out; the write side of :class:`bookidx.store.Index`, as a mixin.

Every change goes into SQLite (meta.py) inside the writer's open transaction and is visible
after ``commit()``. Vectors reach the usearch graph only after SQLite has committed them
(store.py's crash-safety rule): ``add`` queues them in ``_pending``, ``remove`` queues keys in
``_removed``, and ``commit()`` applies both, removals first, then saves the vector file.

Removal: the rows go from ``items`` (and so, by trigger, from the FTS5 table), ``failures`` and
``dropped``; a near-duplicate group left with one member is no group any more. The same
transaction bumps the ``removals`` counter in ``meta``; the vector file records the count it
reflects (``file_removals``), so an open after a crash between the SQLite commit and the file
save, and any reader whose file predates the removal, finds keys the file still holds and
SQLite no longer does (store.py's ``_load``) and leaves them out of every search.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Callable, Mapping, Sequence

import numpy as np

from . import meta
from .adapters.records import Region
from .errors import BadRequest, NotFound
from .vectors import unit_rows


class Writes:
    """The write-side methods of :class:`bookidx.store.Index` (which provides the attributes below)."""

    ndim: int
    _con: sqlite3.Connection  # the write connection
    _lock: threading.RLock
    _blob: np.dtype
    _seq: int  # the newest commit sequence number handed out
    _pending: list[tuple[np.ndarray, np.ndarray]]  # committed-to-be vectors, for the graph
    _removed: list[np.ndarray]  # keys deleted from SQLite, to leave the graph at commit
    _begin: Callable[[], None]
    _check_writable: Callable[[str], None]

    def add(self, regions: Sequence[Region], vectors: np.ndarray) -> None:
        """Insert or replace regions with their (normalised) vectors; visible after commit()."""
        self._check_writable("add")
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.shape != (len(regions), self.ndim):
            raise BadRequest(f"vectors have shape {vecs.shape}, expected ({len(regions)}, {self.ndim})", "vectors")
        if not len(regions):
            return
        stored = unit_rows(vecs, "vectors").astype(self._blob)
        keys = [r.key for r in regions]
        with self._lock:
            rows = [meta.item_row(r, stored[i].tobytes(), self._seq + 1, time.time()) for i, r in enumerate(regions)]
            self._begin()
            self._con.execute("SAVEPOINT add_items")  # one add() is all or nothing
            try:
                self._con.executemany(meta.UPSERT, rows)
                meta.forget_outcomes(self._con, keys)
            except BaseException:
                self._con.execute("ROLLBACK TO add_items")
                raise
            finally:
                self._con.execute("RELEASE add_items")
            self._seq += 1
            # The graph gets exactly what SQLite holds (rounded to the blob dtype).
            self._pending.append((np.asarray(keys, np.int64), stored.astype(np.float32)))

    def remove(self, keys: Sequence[int]) -> dict[str, int]:
        """Delete items (and any failure or drop record) by key; gone from searches after commit().

        Keys the index does not hold are ignored. A removed item indexed again later is an
        item like any other.

        Returns:
            How many rows went from ``items``, ``failures`` and ``dropped``.
        """
        self._check_writable("remove")
        gone = np.unique(np.fromiter((int(k) for k in keys), np.int64))
        with self._lock:
            self._begin()
            removed = _delete(self._con, gone)
            if not removed["items"]:
                return removed  # failure and drop records have no vectors
            # Vectors of these keys added in this transaction went with their rows.
            kept = [~np.isin(k, gone) for k, _ in self._pending]
            self._pending = [(k[keep], v[keep]) for (k, v), keep in zip(self._pending, kept)]
            self._removed.append(gone)
        return removed

    def record_failure(self, key: int, source: str, stage: str, reason: str) -> None:
        """Keep a failed item as data (stage: fetch, crop, embed...); a later add() clears it."""
        self._check_writable("record_failure")
        with self._lock:
            self._begin()
            meta.record_failure(self._con, key, source, stage, reason)

    def record_drops(self, keys: Sequence[int], labels: Sequence[str], scores: Sequence[float], classifier: str) -> None:
        """Remember items left out by class (runner.py); a later add() forgets them."""
        self._check_writable("record_drops")
        with self._lock:
            self._begin()
            meta.record_drops(self._con, keys, labels, scores, classifier)

    def set_class(self, keys: Sequence[int], labels: Sequence[str | None], scores: Sequence[float] | None = None) -> None:
        """Store a class label (and its score) per item; None clears it. Visible after commit()."""
        self._check_writable("set_class")
        keys = [int(k) for k in keys]
        scores = [None] * len(keys) if scores is None else [None if s is None else float(s) for s in scores]
        if not (len(keys) == len(labels) == len(scores)):
            raise BadRequest(f"{len(keys)} keys, {len(labels)} labels and {len(scores)} scores", "labels")
        with self._lock:
            missing = set(keys) - meta.existing(self._con, keys)
            if missing:
                raise NotFound(f"no item with id {min(missing)} ({len(missing)} unknown)", "id")
            self._begin()
            self._con.executemany("UPDATE items SET cls = ?, cls_score = ? WHERE key = ?", zip(labels, scores, keys))

    def set_groups(self, groups: Mapping[int, int]) -> None:
        """Replace every near-duplicate group: ``{item key: group id}``; items left out are in
        none. Visible after commit()."""
        self._check_writable("set_groups")
        pairs = [(int(g), int(k)) for k, g in groups.items()]
        with self._lock:
            missing = {k for _, k in pairs} - meta.existing(self._con, [k for _, k in pairs])
            if missing:
                raise NotFound(f"no item with id {min(missing)} ({len(missing)} unknown)", "id")
            self._begin()
            self._con.execute("UPDATE items SET grp = NULL WHERE grp IS NOT NULL")
            self._con.executemany("UPDATE items SET grp = ? WHERE key = ?", pairs)


def _delete(con: sqlite3.Connection, keys: np.ndarray) -> dict[str, int]:
    """Delete these keys from ``items`` (the FTS5 rows by trigger), ``failures`` and ``dropped``,
    and bump the ``removals`` counter when items went (store.py reloads vectors on it).

    A near-duplicate group left with one member is no group any more (dedup.py's groups have two
    or more). Returns how many rows each table lost.
    """
    keys_json = meta.key_list(keys)
    chosen = "key IN (SELECT value FROM json_each(?))"
    groups = [g for (g,) in con.execute(f"SELECT DISTINCT grp FROM items WHERE grp IS NOT NULL AND {chosen}", (keys_json,))]
    removed = {table: con.execute(f"DELETE FROM {table} WHERE {chosen}", (keys_json,)).rowcount
               for table in ("items", "failures", "dropped")}
    con.execute(
        """UPDATE items SET grp = NULL WHERE grp IN (SELECT g.value FROM json_each(?) AS g
           WHERE (SELECT count(*) FROM items AS m WHERE m.grp = g.value) = 1)""",
        (json.dumps(groups),),
    )
    if removed["items"]:
        meta.set_meta(con, "removals", int(meta.get_meta(con, "removals", 0)) + 1)
    return removed
