"""``bookidx.json``: what an index's vectors depend on, written with it and checked on every open.

An index is a versioned artifact (STYLE.md §3 rule 7). Its ``bookidx.json`` records the schema
version (the one of meta.sqlite, ``meta.SCHEMA_VERSION``), the bookidx version that created it,
the model (id, dimension, preprocessing; ``supports_text`` is informative), the usearch dtype and
graph parameters, and the item, failure and dropped-item counts at the last save.
``check_model`` refuses to mix models; ``read_info`` refuses a schema newer than the code. Files
are written to a temporary name, flushed and renamed into place, so a crash never leaves half a
file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import meta
from .config import IndexConfig
from .embed import model_identity
from .errors import ConfigError, IndexMismatch

INFO = "bookidx.json"


def new_info(model_info: dict, config: IndexConfig) -> dict:
    """The ``bookidx.json`` of a new index for ``model_info`` (``Embedder.info``) and ``config``."""
    from . import __version__

    return {
        "schema": meta.SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bookidx": __version__,
        "model": plain({k: model_info.get(k) for k in ("model", "ndim", "preprocess", "supports_text")}),
        "usearch": {
            "metric": "cos",
            "dtype": config.dtype,
            "connectivity": config.connectivity,
            "expansion_add": config.expansion_add,
            "expansion_search": config.expansion_search,
        },
        "counts": {"items": 0, "failures": 0, "dropped": 0},
    }


def read_info(path: Path) -> dict:
    """The ``bookidx.json`` of the index in ``path``.

    Raises:
        ConfigError: the file is missing, not JSON, or lacks the model or usearch fields.
        IndexMismatch: its schema is newer than this code.
    """
    try:
        info = json.loads((path / INFO).read_text(encoding="utf-8"))
        schema = int(info["schema"])
        info["model"]["ndim"], info["usearch"]["dtype"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"unreadable: {e}", str(path / INFO)) from e
    if schema > meta.SCHEMA_VERSION:
        raise IndexMismatch(
            f"index schema {schema} is newer than this bookidx (schema {meta.SCHEMA_VERSION}); upgrade bookidx",
            str(path / INFO),
        )
    return info


def check_model(path: Path, info: dict, model_info: dict, config: IndexConfig) -> None:
    """Refuse to add vectors of another model, dimension, preprocessing or dtype to an index.

    Raises:
        IndexMismatch: naming what the index holds and what this run uses.
    """
    old, new = plain(model_identity(info["model"])), plain(model_identity(model_info))
    if plain(old) != new:
        describe = lambda m: f"{m['model']!r} ({m['ndim']}-d, preprocess {json.dumps(m['preprocess'], sort_keys=True)})"  # noqa: E731
        raise IndexMismatch(
            f"{path} was built with model {describe(old)}; this run uses {describe(new)}: "
            "use another index directory, or the index's model",
            "model",
        )
    if info["usearch"]["dtype"] != config.dtype:
        raise IndexMismatch(f"{path} stores {info['usearch']['dtype']} vectors; config asks for {config.dtype}", "dtype")


def plain(value: Any) -> Any:
    """JSON's view of a value (tuples become lists), so saved and live model info compare equal."""
    return json.loads(json.dumps(value, sort_keys=True))


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    fsync(tmp)
    os.replace(tmp, path)


def fsync(path: Path) -> None:
    """Flush a file before it is renamed into place, so a power cut cannot leave it empty."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
