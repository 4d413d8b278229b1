"""The index store: a usearch HNSW graph beside the SQLite metadata database (meta.py).

An index is a directory, a versioned artifact (STYLE.md §3 rule 7)::

    bookidx.json     schema version, model id/ndim/preprocess, usearch parameters, counts
    meta.sqlite      items with their vectors, FTS5 keywords, failures, drops: the source of truth
    vectors.usearch  the HNSW graph, a cache of the vectors in meta.sqlite
    writer.lock      held (flock, writerlock.py) by the one writing process; the OS drops it on any exit

Crash safety: SQLite commits first; only then do vectors enter the graph, and the graph is
saved now and then (``save_interval``, stretched to 10x the last save's duration, and always at
close) to a temporary file renamed over the old one. ``file_seq`` in SQLite names the newest
commit the saved file covers, so on open every row committed after it is (re)added from its
stored blob. A ``kill -9`` at any instant leaves an index that opens with every committed item.

Removing items (writes.py) commits the deletion to SQLite, takes the keys out of the graph and
saves the file at once; SQLite's ``removals`` counter against the file's (``file_removals``)
tells every open whether the file still holds removed keys (a crash before the save, a reader's
older file): a writer takes them out, a reader leaves them out of its searches.

Readers (``Index.open``) memory-map the file (usearch ``view``) and search rows committed after
it exactly, from an overlay. ``refresh()`` picks up new commits (PRAGMA data_version), new
files (inode, size, mtime) and removals (the counter moved: the snapshot is reloaded). A search
works on one immutable snapshot, so many threads can search while another refreshes. A writer's
graph changes in place, so its searches take its lock.

How an index is searched (exhaustive, HNSW, filtered; keywords) is queries.py's part.

usearch: https://unum-cloud.github.io/usearch/python/ · SQLite WAL: https://www.sqlite.org/wal.html
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from usearch.index import Index as _Graph

from . import meta
from .config import IndexConfig
from .errors import BookidxError, ConfigError, IndexMismatch, NotFound
from .info import INFO, check_model, fsync, new_info, read_info, write_json
from .meta import DB, SCHEMA_VERSION, Filters
from .migrate import migrate
from .queries import EXACT_BELOW, EXACT_FILTERED, Hit, Queries
from .vectors import Snapshot, upsert
from .writerlock import release_lock, take_lock
from .writes import Writes

__all__ = ["SCHEMA_VERSION", "Filters", "Hit", "Index", "EXACT_BELOW", "EXACT_FILTERED"]

log = logging.getLogger(__name__)

VECTORS = "vectors.usearch"


class Index(Writes, Queries):
    """One index directory. Build with :meth:`create_or_open` (writer) or :meth:`open`.

    Searching, listing and counting are :class:`~bookidx.queries.Queries` methods; adding,
    labelling and removing are :class:`~bookidx.writes.Writes` methods.
    """

    #: Least seconds between vector-file saves at commit (0: every commit). Close always saves.
    save_interval: float = 30.0

    def __init__(self, path: Path, info: dict, con: sqlite3.Connection, *, lock_fd: int | None):
        self.path = path
        self.info = info
        self.ndim = int(info["model"]["ndim"])
        self._con = con  # writer: the write connection; reader: the refresh connection
        self._writable = lock_fd is not None
        self._lock_fd = lock_fd
        self._lock = threading.RLock()
        self._pool_lock = threading.Lock()  # apart from _lock, so a long refresh blocks no reads
        self._idle: list[sqlite3.Connection] = []
        self._opened: list[sqlite3.Connection] = []
        self._blob = np.dtype(np.float32 if info["usearch"]["dtype"] == "f32" else np.float16)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._removed: list[np.ndarray] = []
        self._unsaved = 0
        self._last_save, self._save_seconds = time.monotonic(), 0.0
        self._closed = False
        self._data_version = con.execute("PRAGMA data_version").fetchone()[0]
        self._snap = self._load()
        self._seq = self._snap.seq

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create_or_open(cls, path: str | Path, *, model_info: dict, config: IndexConfig) -> "Index":
        """Open ``path`` for writing, creating it for ``model_info`` if needed.

        Raises:
            IndexMismatch: the index holds another model, dimension, preprocessing or dtype, or
                a schema newer than this code.
            BookidxError (409): another process is writing the index.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if not (path / INFO).exists():
            if (path / DB).exists():
                raise ConfigError(f"{DB} without {INFO}: not an index this code can trust", str(path))
            write_json(path / INFO, new_info(model_info, config))
        return cls._writer(path, model_info, config)

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = True) -> "Index":
        """Open an existing index: read-only (search, serve) or as its writer (labels, repair)."""
        path = Path(path)
        if not (path / INFO).is_file() or not (path / DB).is_file():
            raise NotFound(f"no bookidx index in {path}", "index")
        if not readonly:
            return cls._writer(path, None, None)
        info = read_info(path)
        con = meta.connect(path / DB, readonly=True)
        try:
            version = meta.schema_version(con)
            if version == 0:
                raise NotFound(f"{path} holds no index yet (its creation was cut short)", "index")
            if version != meta.SCHEMA_VERSION:
                raise IndexMismatch(
                    f"index schema {version}, this bookidx schema {meta.SCHEMA_VERSION}: "
                    + ("upgrade bookidx" if version > meta.SCHEMA_VERSION
                       else f"run `bookidx upgrade {path}` once (any `bookidx index` run into it migrates it too)"),
                    str(path),
                )
            return cls(path, info, con, lock_fd=None)
        except BaseException:
            con.close()
            raise

    @classmethod
    def _writer(cls, path: Path, model_info: dict | None, config: IndexConfig | None) -> "Index":
        fd = take_lock(path)
        con = None
        try:
            info = read_info(path)
            if model_info is not None and config is not None:
                check_model(path, info, model_info, config)
            con = meta.connect(path / DB, readonly=False)
            migrate(path, con, info)
            for stale in path.glob(f"{VECTORS}.*.tmp"):  # a save cut short
                stale.unlink()
            return cls(path, info, con, lock_fd=fd)
        except BaseException:
            if con is not None:
                con.close()
            release_lock(fd)
            raise

    def _graph(self) -> _Graph:
        u = self.info["usearch"]
        return _Graph(
            ndim=self.ndim,
            metric="cos",
            dtype=u["dtype"],
            connectivity=u["connectivity"],
            expansion_add=u["expansion_add"],
            expansion_search=u["expansion_search"],
        )

    def _load(self) -> Snapshot:
        """Read the vector file and every row committed after it (see the module docstring)."""
        con, file = self._con, self.path / VECTORS
        file_seq = int(meta.get_meta(con, "file_seq", 0))  # before the file: never newer than it
        file_removals = int(meta.get_meta(con, "file_removals", 0))
        stat, graph = _stat(file), self._graph()
        if stat is not None:
            try:
                (graph.load if self._writable else graph.view)(str(file))
                if graph.ndim != self.ndim:
                    raise RuntimeError(f"holds {graph.ndim}-d vectors, not {self.ndim}-d")
                graph.expansion_search = self.info["usearch"]["expansion_search"]
            except RuntimeError as e:
                log.warning("%s: %s; using the vectors stored in %s", file, e, DB)
                graph, file_seq = self._graph(), 0
        with meta.read_together(con):  # one consistent read of the rows and their count
            keys, rows, seq = meta.vectors(con, "seq > ?", (file_seq,), self.ndim, self._blob)
            n_items = con.execute("SELECT count(*) FROM items").fetchone()[0]
            removals = int(meta.get_meta(con, "removals", 0))
            seq, gone = max(seq, file_seq), np.zeros(0, np.int64)
            new = ~graph.contains(keys) if len(keys) else np.zeros(0, bool)
            removed = len(graph) > 0 and removals != file_removals  # items removed since the file
            if removed or len(graph) + int(new.sum()) != n_items:  # or a file from elsewhere, a lost commit
                if not removed:
                    log.warning("%s holds %d vectors for %d items: checking every key", file, len(graph), n_items)
                all_keys = np.fromiter((r[0] for r in con.execute("SELECT key FROM items")), np.int64)
                gone = np.setdiff1d(np.asarray(graph.keys, np.int64), all_keys) if len(graph) else gone
                if self._writable:  # readers view the file, so they leave those keys out (Snapshot.gone)
                    graph.remove(gone.astype(np.uint64))
                    self._unsaved += len(gone) + int(removed)  # saved at close, file_removals with it
                    gone = np.zeros(0, np.int64)
                lost = np.setdiff1d(all_keys[~graph.contains(all_keys)], keys)
                more_keys, more_rows, _ = meta.vectors(
                    con, "key IN (SELECT value FROM json_each(?))", (meta.key_list(lost),), self.ndim, self._blob
                )
                keys, rows = np.concatenate([keys, more_keys]), np.vstack([rows, more_rows])
        rows = rows.astype(np.float32)
        if self._writable:
            upsert(graph, keys, rows)
            self._unsaved += len(keys)
            return Snapshot(graph, np.zeros(0, np.int64), np.zeros((0, self.ndim), np.float32), seq, stat, removals=removals)
        return Snapshot(graph, keys, rows, seq, stat, gone, removals)

    def refresh(self) -> bool:
        """Readers: take in what a writer committed or saved since. Cheap when nothing changed.

        Returns True when the index changed (call it per request, or every few seconds).
        """
        if self._writable:
            return False  # a writer's own commits are in its graph already
        with self._lock:
            self._check_open()
            version = self._con.execute("PRAGMA data_version").fetchone()[0]
            snap, stat = self._snap, _stat(self.path / VECTORS)
            if version == self._data_version and stat == snap.stat:
                return False
            self._data_version = version
            if stat != snap.stat or int(meta.get_meta(self._con, "removals", 0)) != snap.removals:
                self._snap = self._load()  # a new file, or items removed: what the graph holds changed
                return True
            keys, rows, seq = meta.vectors(self._con, "seq > ?", (snap.seq,), self.ndim, self._blob)
            if len(keys):
                old = ~np.isin(snap.keys, keys)  # a re-added key's new vector replaces its old one
                self._snap = replace(
                    snap,
                    keys=np.concatenate([snap.keys[old], keys]),
                    rows=np.vstack([snap.rows[old], rows.astype(np.float32)]),
                    seq=max(seq, snap.seq),
                )
            return True

    # -- writing -------------------------------------------------------------------------------

    def commit(self) -> None:
        """Commit to SQLite, then move the vectors into the graph; save the file when due, and
        at once after a removal (readers reload the file; until then they leave the keys out)."""
        self._check_writable("commit")
        with self._lock:
            if self._con.in_transaction:
                self._con.execute("COMMIT")
            removed = bool(self._removed)
            if self._removed:  # before the adds: a key removed, then added again, is in
                gone = np.unique(np.concatenate(self._removed)).astype(np.uint64)
                self._snap.base.remove(gone[self._snap.base.contains(gone)])
                self._unsaved += len(gone)
                self._removed.clear()
            if self._pending:  # kept until the graph has them: a retried commit redoes this
                upsert(self._snap.base, np.concatenate([k for k, _ in self._pending]), np.vstack([v for _, v in self._pending]))
                self._unsaved += sum(len(k) for k, _ in self._pending)
                self._pending.clear()
            due = max(self.save_interval, 10 * self._save_seconds)
            if self._unsaved and (removed or time.monotonic() - self._last_save >= due):
                self._save()

    def _save(self) -> None:
        t0 = time.monotonic()
        tmp = self.path / f"{VECTORS}.{os.getpid()}.tmp"
        self._snap.base.save(str(tmp))
        fsync(tmp)
        os.replace(tmp, self.path / VECTORS)
        meta.set_meta(self._con, "file_seq", self._seq)  # after the rename: never ahead of the file
        meta.set_meta(self._con, "file_removals", meta.get_meta(self._con, "removals", 0))
        self.info["counts"] = meta.counts(self._con)
        write_json(self.path / INFO, self.info)
        self._unsaved = 0
        self._last_save = time.monotonic()
        self._save_seconds = self._last_save - t0

    def close(self) -> None:
        """Writers commit and save; everyone releases files. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._writable:
                    self.commit()
                    if self._unsaved:
                        self._save()
            finally:
                self._closed = True
                for con in [self._con, *self._opened]:
                    con.close()
                if self._lock_fd is not None:
                    release_lock(self._lock_fd)

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read: the writer's own (under its lock), or a pooled one."""
        self._check_open()
        if self._writable:
            with self._lock:
                yield self._con
            return
        with self._pool_lock:
            con = self._idle.pop() if self._idle else None
        if con is None:
            con = meta.connect(self.path / DB, readonly=True)
            with self._pool_lock:
                self._opened.append(con)
        try:
            yield con
        finally:
            with self._pool_lock:
                self._idle.append(con)

    @contextlib.contextmanager
    def _searching(self) -> Iterator[Snapshot]:
        self._check_open()
        if self._writable:  # the graph changes in place at commit
            with self._lock:
                yield self._snap
        else:
            yield self._snap

    def _begin(self) -> None:
        if not self._con.in_transaction:
            self._con.execute("BEGIN IMMEDIATE")

    def _check_open(self) -> None:
        if self._closed:
            raise BookidxError("index is closed", str(self.path))

    def _check_writable(self, what: str) -> None:
        self._check_open()
        if not self._writable:
            raise BookidxError(f"{what}: index opened read-only", str(self.path), code=409)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
