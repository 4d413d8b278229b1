"""The IIIF manifests an index was built from, kept beside it so the blueprint can serve them.

Layout: ``<index_dir>/manifests/<slug>.json``, where the slug is the first 16 hex digits of the
SHA-256 of the manifest's id (``id`` in Presentation 3, ``@id`` in 2.1) exactly as the document
states it. The slug is what the IIIF-out routes (``/iiif/<slug>/manifest.json``, web/iiif.py)
use instead of the id itself, which is a URL and does not fit in a path segment.

Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a blueprint
serving the index while ``bookidx index`` re-saves a manifest reads the old or the new
document, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .adapters.iiif import parse_json
from .errors import NotFound, SourceError

FOLDER = "manifests"
_SLUG = re.compile(r"[0-9a-f]{16}")


def slug(manifest_id: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``manifest_id`` (UTF-8)."""
    return hashlib.sha256(manifest_id.encode("utf-8")).hexdigest()[:16]


def manifest_path(index_dir: str | Path, manifest_slug: str) -> Path:
    """Where the manifest with this slug is stored.

    Raises:
        NotFound: the slug is not 16 lower-case hex digits (so it can never name another file).
    """
    if not _SLUG.fullmatch(manifest_slug):
        raise NotFound(f"no manifest {manifest_slug[:40]!r}: a slug is 16 hex digits", "slug")
    return Path(index_dir) / FOLDER / f"{manifest_slug}.json"


def save_manifest(index_dir: str | Path, manifest_id: str, doc: dict[str, Any]) -> Path:
    """Store ``doc`` as the manifest ``manifest_id`` (replacing an older copy) and return its path."""
    path = manifest_path(index_dir, slug(manifest_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_manifest(index_dir: str | Path, manifest_slug: str) -> dict[str, Any]:
    """The stored manifest with this slug, as parsed JSON.

    Raises:
        NotFound: no manifest with this slug was stored with the index.
        SourceError: the stored file is not a JSON object.
    """
    path = manifest_path(index_dir, manifest_slug)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no manifest {manifest_slug} in this index", "slug") from None
    doc = parse_json(data, source=str(path))
    if not isinstance(doc, dict):
        raise SourceError("stored manifest is not a JSON object", str(path))
    return doc

