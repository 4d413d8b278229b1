"""An index's metadata database: SQLite (WAL) with its FTS5 keyword index (``bookidx.json``,
what the vectors depend on, is info.py's).

``meta.sqlite`` is the source of truth of an index. Each region is one ``items`` row that holds
the region as JSON, the columns filters need, and its vector as a blob, so the usearch file
(store.py) can always be rebuilt from it. Keyword search is an FTS5 *external content* table
over ``items`` (caption, context, book title), kept in step by triggers (SQLite FTS5 §4.4.3,
https://www.sqlite.org/fts5.html#external_content_tables); fts.py makes the MATCH expression
from typed text, filters.py the WHERE of filtered searches (both stay importable from here).
``PRAGMA user_version`` holds the schema version; ``_MIGRATIONS`` upgrades older files one
version at a time (schema 2 added ``grp``, the near-duplicate group an item belongs to:
dedup.py; schema 3 the ``dropped`` table; schema 4 re-folds the searched text of items indexed
before fts.searchable folded the older umlaut).

``failures`` and ``dropped`` hold items that are not in ``items``, so that later runs know
them: a failure is retried by every run; an item left out by class (``--drop-class``,
runner.py) is skipped while the same classifier (``classifier``: ``Classifier.digest``) is used
and its class is still dropped. Indexing an item deletes its row in both.

``meta`` holds names and values: ``file_seq`` (the newest commit the vector file covers),
``removals`` (bumped by every removal of items, writes.py) and ``file_removals`` (the
``removals`` the vector file reflects); store.py reads them to know what the file lacks.

Concurrency: one writer connection (store.py holds a lock file) and any number of readers; WAL
lets readers read while the writer commits (https://www.sqlite.org/wal.html).
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import quote

import numpy as np

from .adapters.records import Region
from .errors import BadRequest, IndexMismatch
from .filters import Filters, year_of  # noqa: F401 (read as meta.* too)
from .fts import BM25_WEIGHTS, MAX_QUERY_TERMS, fts_query, searchable  # noqa: F401 (read as meta.* too)

SCHEMA_VERSION = 4
DB = "meta.sqlite"

# Items embedded and left out by class: the class, its score and the classifier that gave it.
# The drop set is not kept: the run that dropped an item dropped its class, and a later run with
# the same classifier skips the item exactly when its class is still in that run's drop set.
_DROPPED = """CREATE TABLE IF NOT EXISTS dropped (
    key INTEGER PRIMARY KEY,
    cls TEXT NOT NULL,
    score REAL NOT NULL,
    classifier TEXT NOT NULL,
    at REAL NOT NULL
)"""


def _add_groups(con: sqlite3.Connection) -> None:
    con.execute("ALTER TABLE items ADD COLUMN grp INTEGER")
    con.execute("CREATE INDEX items_grp ON items(grp)")


def _add_dropped(con: sqlite3.Connection) -> None:
    con.execute(_DROPPED)


def _fold_searched_text(con: sqlite3.Connection) -> None:
    """Searched columns as fts.searchable makes them now: the items_au trigger re-indexes them.
    Only rows holding U+0364 change (one scan; none at all in most collections)."""
    rows = con.execute(
        "SELECT key, caption, context, title FROM items WHERE caption || context || title LIKE ?", ("%\u0364%",)
    ).fetchall()
    con.executemany(
        "UPDATE items SET caption = ?, context = ?, title = ? WHERE key = ?",
        [(searchable(c), searchable(x), searchable(t), key) for key, c, x, t in rows],
    )


# Upgrades from schema N to N + 1, each run in the same transaction as its user_version bump.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _add_groups, 2: _add_dropped, 3: _fold_searched_text,
}

_DDL = """
CREATE TABLE IF NOT EXISTS items (
    key INTEGER PRIMARY KEY,
    region_json TEXT NOT NULL,
    manifest TEXT,
    canvas TEXT NOT NULL,
    book TEXT,
    kind TEXT NOT NULL,
    page INTEGER NOT NULL,
    caption TEXT NOT NULL,
    context TEXT NOT NULL,
    title TEXT NOT NULL,
    cls TEXT,
    cls_score REAL,
    grp INTEGER,
    year INTEGER,
    vector BLOB NOT NULL,
    seq INTEGER NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_manifest ON items(manifest, page);
CREATE INDEX IF NOT EXISTS items_book ON items(book);
CREATE INDEX IF NOT EXISTS items_canvas ON items(canvas);
CREATE INDEX IF NOT EXISTS items_seq ON items(seq);
CREATE INDEX IF NOT EXISTS items_kind ON items(kind);
CREATE INDEX IF NOT EXISTS items_year ON items(year);
CREATE INDEX IF NOT EXISTS items_cls ON items(cls);
CREATE INDEX IF NOT EXISTS items_grp ON items(grp);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
    caption, context, title,
    content='items', content_rowid='key',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS items_ai AFTER INSERT ON items BEGIN
    INSERT INTO items_fts(rowid, caption, context, title)
    VALUES (new.key, new.caption, new.context, new.title);
END;
CREATE TRIGGER IF NOT EXISTS items_ad AFTER DELETE ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, caption, context, title)
    VALUES ('delete', old.key, old.caption, old.context, old.title);
END;
CREATE TRIGGER IF NOT EXISTS items_au AFTER UPDATE OF caption, context, title ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, caption, context, title)
    VALUES ('delete', old.key, old.caption, old.context, old.title);
    INSERT INTO items_fts(rowid, caption, context, title)
    VALUES (new.key, new.caption, new.context, new.title);
END;
CREATE TABLE IF NOT EXISTS failures (
    key INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value);
""" + _DROPPED + ";\n"

_COLUMNS = (
    "key, region_json, manifest, canvas, book, kind, page, caption, context, title, year, vector, seq, added_at"
)
# An upsert that keeps a class label and a duplicate group (set by later passes) across a re-embed.
UPSERT = f"""
INSERT INTO items ({_COLUMNS}) VALUES ({", ".join("?" * len(_COLUMNS.split(",")))})
ON CONFLICT(key) DO UPDATE SET
    region_json = excluded.region_json, manifest = excluded.manifest, canvas = excluded.canvas,
    book = excluded.book, kind = excluded.kind, page = excluded.page, caption = excluded.caption,
    context = excluded.context, title = excluded.title, year = excluded.year,
    vector = excluded.vector, seq = excluded.seq, added_at = excluded.added_at
"""


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection usable from any thread (callers serialise use of one connection)."""
    if readonly:
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        con = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30.0)
        con.execute("PRAGMA query_only = 1")
    else:
        # Transactions are managed explicitly (BEGIN in add, commit in Index.commit).
        con = sqlite3.connect(path, check_same_thread=False, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        # NORMAL is crash-safe in WAL mode: a killed process loses nothing committed.
        con.execute("PRAGMA synchronous = NORMAL")
    return con


def schema_version(con: sqlite3.Connection) -> int:
    return con.execute("PRAGMA user_version").fetchone()[0]


def ensure_schema(con: sqlite3.Connection, where: str) -> None:
    """Create the tables in a new file, or migrate an older schema up to SCHEMA_VERSION.

    Both happen in one transaction with the user_version bump, so a crash leaves either the
    old schema or the new one, never half of it.
    """
    version = schema_version(con)
    if version > SCHEMA_VERSION:
        raise IndexMismatch(
            f"index schema {version} is newer than this bookidx (schema {SCHEMA_VERSION}); upgrade bookidx",
            where,
        )
    if version == SCHEMA_VERSION:
        return
    try:
        if version == 0:  # a new file: DDL is transactional in SQLite
            con.executescript(f"BEGIN IMMEDIATE;\n{_DDL}PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
            return
        con.execute("BEGIN IMMEDIATE")
        while version < SCHEMA_VERSION:
            if version not in _MIGRATIONS:
                raise IndexMismatch(f"no migration from index schema {version} to {version + 1}", where)
            _MIGRATIONS[version](con)
            version += 1
        con.execute(f"PRAGMA user_version = {int(version)}")
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


@contextmanager
def read_together(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction around reads that must agree with each other, unless ``con`` is inside
    one already (a writer's, which sees its own uncommitted rows): then that one serves."""
    begun = not con.in_transaction
    if begun:
        con.execute("BEGIN")
    try:
        yield con
    finally:
        if begun:
            con.execute("COMMIT")


def get_meta(con: sqlite3.Connection, name: str, default: Any = None) -> Any:
    row = con.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return default if row is None else row[0]


def set_meta(con: sqlite3.Connection, name: str, value: Any) -> None:
    con.execute("INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)", (name, value))


def item_row(region: Region, blob: bytes, seq: int, now: float) -> tuple:
    """The ``items`` row for one region, in ``_COLUMNS`` order."""
    book = region.book
    manifest = region.page.manifest or (book.id if book else None)
    return (
        region.key,
        json.dumps(region.to_dict(), ensure_ascii=False, separators=(",", ":")),
        manifest,
        region.page.id,
        book.id if book else None,
        region.kind,
        region.page.index,
        searchable(region.caption),
        searchable(region.context),
        searchable(book.title if book else ""),
        year_of(book.date) if book else None,
        blob,
        seq,
        now,
    )


def key_list(keys: Iterable[int]) -> str:
    """Keys as one JSON parameter for ``IN (SELECT value FROM json_each(?))`` of any length."""
    return json.dumps([int(k) for k in keys])


def existing(con: sqlite3.Connection, keys: Sequence[int]) -> set[int]:
    rows = con.execute("SELECT key FROM items WHERE key IN (SELECT value FROM json_each(?))", (key_list(keys),))
    return {r[0] for r in rows}


#: Columns of a search hit after key, region_json and cls: the duplicate group and its size.
GROUP_COLUMNS = "items.grp, (SELECT count(*) FROM items AS g WHERE g.grp = items.grp)"


def regions(con: sqlite3.Connection, keys: Sequence[int]) -> dict[int, tuple[Region, str | None, int | None, int]]:
    """Region, class label, duplicate group and group size (1 outside a group) for each key that exists."""
    rows = con.execute(
        f"SELECT key, region_json, cls, {GROUP_COLUMNS} FROM items WHERE key IN (SELECT value FROM json_each(?))",
        (key_list(keys),),
    )
    return {key: (Region.from_dict(json.loads(js)), cls, grp, max(size, 1)) for key, js, cls, grp, size in rows}


def vectors(con: sqlite3.Connection, where: str, params: Sequence[Any], ndim: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, int]:
    """Keys (int64), stored vectors (rows of ``dtype``) and the newest seq of items ``WHERE where``."""
    keys: list[int] = []
    blobs: list[bytes] = []
    newest = 0
    for key, blob, seq in con.execute(f"SELECT key, vector, seq FROM items WHERE {where}", params):
        keys.append(key)
        blobs.append(blob)
        newest = max(newest, seq)
    mat = np.frombuffer(b"".join(blobs), dtype=dtype).reshape(len(keys), ndim)
    return np.asarray(keys, dtype=np.int64), mat, newest


def failures(con: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = con.execute("SELECT key, source, stage, reason, attempts, at FROM failures ORDER BY at")
    names = ("key", "source", "stage", "reason", "attempts", "at")
    return [dict(zip(names, row)) for row in rows]


def record_failure(con: sqlite3.Connection, key: int, source: str, stage: str, reason: str) -> None:
    con.execute(
        """INSERT INTO failures(key, source, stage, reason, attempts, at) VALUES (?, ?, ?, ?, 1, ?)
           ON CONFLICT(key) DO UPDATE SET source = excluded.source, stage = excluded.stage,
           reason = excluded.reason, attempts = failures.attempts + 1, at = excluded.at""",
        (int(key), source, stage, reason, time.time()),
    )
    # An item is in at most one of items, failures and dropped: a dropped item that now fails
    # (its image gone, or fetched again for a new classifier) is a failure, retried next run.
    con.execute("DELETE FROM dropped WHERE key = ?", (int(key),))


def forget_outcomes(con: sqlite3.Connection, keys: Sequence[int]) -> None:
    """Delete the failure and drop records of items now indexed."""
    for table in ("failures", "dropped"):
        con.execute(f"DELETE FROM {table} WHERE key IN (SELECT value FROM json_each(?))", (key_list(keys),))


def record_drops(
    con: sqlite3.Connection, keys: Sequence[int], labels: Sequence[str], scores: Sequence[float], classifier: str
) -> None:
    """Remember items left out because ``classifier`` put them in a dropped class; not failures."""
    if not len(keys) == len(labels) == len(scores):
        raise BadRequest(f"{len(keys)} keys, {len(labels)} labels and {len(scores)} scores", "labels")
    now = time.time()
    con.executemany(
        "INSERT OR REPLACE INTO dropped(key, cls, score, classifier, at) VALUES (?, ?, ?, ?, ?)",
        [(int(k), str(c), float(s), classifier, now) for k, c, s in zip(keys, labels, scores)],
    )
    con.execute("DELETE FROM failures WHERE key IN (SELECT value FROM json_each(?))", (key_list(keys),))


def still_dropped(con: sqlite3.Connection, keys: Sequence[int], classifier: str, classes: Sequence[str]) -> dict[int, str]:
    """Of ``keys``, those ``classifier`` dropped as one of ``classes``, with their class."""
    rows = con.execute(
        """SELECT key, cls FROM dropped WHERE key IN (SELECT value FROM json_each(?))
           AND classifier = ? AND cls IN (SELECT value FROM json_each(?))""",
        (key_list(keys), classifier, json.dumps(list(classes))),
    )
    return dict(rows.fetchall())


def counts(con: sqlite3.Connection) -> dict[str, int]:
    """How many items are indexed, failed and dropped: ``bookidx.json``'s ``counts``."""
    return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("items", "failures", "dropped")}


def dropped_by_class(con: sqlite3.Connection) -> dict[str, int]:
    return dict(con.execute("SELECT cls, count(*) FROM dropped GROUP BY cls ORDER BY cls").fetchall())
