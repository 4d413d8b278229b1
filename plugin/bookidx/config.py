"""IndexConfig: the one configuration record of the library and CLI (web config is BOOKIDX_*).

Built from CLI flags or a TOML file; the parts that vectors depend on are saved in the index's
``bookidx.json`` so a later run cannot silently mix models or settings.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .adapters.records import RegionFilter
from .errors import ConfigError


@dataclass(frozen=True)
class IndexConfig:
    """How a collection is turned into an index.

    Attributes:
        model: embedder name, Hugging Face id or local folder (see embed.load_embedder).
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N" or "mps".
        batch_size: images per forward pass; None takes the model's default.
        dtype: usearch scalar kind for stored vectors: "f32", "f16", "bf16" or "i8".
        connectivity, expansion_add, expansion_search: usearch HNSW parameters (M, efC, efS).
        keep_aspect: letterbox crops into the model's square (pad, don't stretch or crop).
        crop_size: longest side (px) fetched for each crop; None: twice the model's input size.
        max_megapixels: refuse to decode page images larger than this (decompression bombs).
        workers: threads that fetch, decode and preprocess while the model runs.
        per_host: concurrent HTTP requests to one host (polite by default).
        timeout: seconds per HTTP request; retries: attempts per request before giving up.
        deadline: seconds one fetch may take in all, retries and a dripping body included
            (a server that sends a byte every few seconds never trips ``timeout``); 0: none.
        cache_dir: on-disk cache for fetched crops and documents; None: <index>/cache.
        cache_max_bytes: least recently used files leave the cache beyond this size; 0: no bound.
        commit_every: items per SQLite commit (and per progress report).
        max_failure_rate: exit non-zero when more than this fraction of items failed.
        region_filter: which picture blocks are kept (separators and specks are dropped).
        drop_classes: classes whose items are left out after embedding, e.g. ("blank-page",
            "segmentation-anomaly"), as told by ``classifier`` (see classify.py).
        classifier: a saved classifier for drop_classes; None: the index's ``classifier.json``.
    """

    model: str = "siglip"
    device: str = "auto"
    batch_size: int | None = None
    dtype: str = "f16"
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 64
    crop_size: int | None = None
    keep_aspect: bool = False
    max_megapixels: float = 200.0
    workers: int = 4
    per_host: int = 4
    timeout: float = 30.0
    retries: int = 4
    deadline: float = 120.0
    cache_dir: str | None = None
    cache_max_bytes: int = 4 * 2**30
    commit_every: int = 256
    max_failure_rate: float = 0.5
    region_filter: RegionFilter = field(default_factory=RegionFilter)
    drop_classes: tuple[str, ...] = ()
    classifier: str | None = None

    def __post_init__(self) -> None:
        # A bare string (TOML drop_classes = "map") would otherwise be read as its letters.
        drop = self.drop_classes
        object.__setattr__(self, "drop_classes", (drop,) if isinstance(drop, str) else tuple(drop))
        if self.dtype not in {"f32", "f16", "bf16", "i8"}:
            raise ConfigError(f"dtype must be f32, f16, bf16 or i8, not {self.dtype!r}", "dtype")
        for name in ("workers", "per_host", "commit_every", "connectivity"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1", name)
        for name in ("deadline", "cache_max_bytes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 (no limit) or more", name)

    def with_(self, **changes: Any) -> "IndexConfig":
        """A copy with the non-None ``changes`` applied (CLI flags left unset stay default)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def recorded_in(self, info: dict[str, Any]) -> "IndexConfig":
        """This config with the settings an existing index was built with (its ``bookidx.json``).

        Resuming must embed and store exactly as before; flags given on top of this are then
        checked against the index, which refuses a mismatch by name.
        """
        usearch = info.get("usearch", {})
        preprocess = info.get("model", {}).get("preprocess", {})
        return self.with_(
            model=info.get("model", {}).get("model"),
            keep_aspect=preprocess.get("keep_aspect"),
            dtype=usearch.get("dtype"),
            connectivity=usearch.get("connectivity"),
            expansion_add=usearch.get("expansion_add"),
            expansion_search=usearch.get("expansion_search"),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> "IndexConfig":
        """Read ``[index]`` (or top-level keys) and ``[index.filter]`` from a TOML file."""
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(str(e), parameter=str(path)) from e
        table = doc.get("index", doc)
        known = {f.name for f in fields(cls)} - {"region_filter"}
        unknown = set(table) - known - {"filter"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", parameter=str(path))
        flt = table.get("filter", {})
        if "kinds" in flt:
            flt = {**flt, "kinds": frozenset(flt["kinds"])}
        try:
            region_filter = RegionFilter(**flt)
        except TypeError as e:
            raise ConfigError(f"[index.filter]: {e}", parameter=str(path)) from e
        return cls(**{k: v for k, v in table.items() if k in known}, region_filter=region_filter)
