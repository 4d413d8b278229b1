"""Schema upgrades of an index folder: the SQLite schema (meta.ensure_schema, one transaction)
and the ``schema`` field of ``bookidx.json`` beside it.

A writer (store.Index opened for writing) migrates on open; ``bookidx upgrade`` migrates without
loading the vectors, so an index made by an older bookidx can be served read-only again.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from . import meta
from .errors import IndexMismatch, NotFound
from .info import INFO, read_info, write_json
from .writerlock import release_lock, take_lock


def migrate(path: Path, con: sqlite3.Connection, info: dict) -> None:
    """Bring ``con`` (the index's open, writable SQLite) and ``info`` (its ``bookidx.json``) to
    this bookidx's schema; the caller holds the writer lock.

    Raises:
        IndexMismatch: the index is newer than this bookidx, or no migration path exists.
    """
    meta.ensure_schema(con, str(path))
    if info["schema"] != meta.SCHEMA_VERSION:
        info["schema"] = meta.SCHEMA_VERSION
        write_json(path / INFO, info)


def upgrade(path: str | Path) -> tuple[int, int]:
    """Migrate the index in ``path`` under its writer lock, vectors untouched; returns the schema
    before and after.

    Raises:
        NotFound: no index there, or one whose creation was cut short.
        IndexMismatch: the metadata file is not a readable database, or is newer than bookidx.
        BookidxError: another process holds the writer lock.
    """
    path = Path(path)
    if not (path / INFO).is_file() or not (path / meta.DB).is_file():
        raise NotFound(f"no bookidx index in {path}", "index")
    fd = take_lock(path)
    try:
        with contextlib.closing(meta.connect(path / meta.DB, readonly=False)) as con:
            before = meta.schema_version(con)
            if before == 0:
                raise NotFound(f"{path} holds no index yet (its creation was cut short)", "index")
            migrate(path, con, read_info(path))
    except sqlite3.DatabaseError as e:
        raise IndexMismatch(f"{path / meta.DB} cannot be read as an index ({e})", str(path)) from None
    finally:
        release_lock(fd)
    return before, meta.SCHEMA_VERSION
