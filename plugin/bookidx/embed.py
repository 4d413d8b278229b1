"""The one embedder interface, and the registry of named models.

The contract mirrors llm's ``EmbeddingModel.embed_batch``: a model turns a batch of images (and,
for vision-language models, texts) into L2-normalised float32 rows of ``ndim`` columns, in the
same vector space. Preprocessing is split from the forward pass (``preprocess`` runs in reader
threads, ``embed_arrays`` on the device) so decoding overlaps the model.

Models are looked up by name (``siglip``, ``clip``, ``vit``, ``efficientnet-lite0``), by a
Hugging Face model id, or by a local folder holding a saved transformers model.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np

from .errors import BadRequest, ConfigError

try:  # PIL is a hard dependency; the import is for type hints only.
    from PIL.Image import Image
except ImportError:  # pragma: no cover
    Image = Any  # type: ignore


class Embedder(ABC):
    """A model that embeds images (and maybe texts) into one normalised vector space."""

    #: Registry name or model id; recorded in the index so other models are refused.
    model_id: str = ""
    #: Output dimension.
    ndim: int = 0
    #: Default batch size for this model on its device.
    batch_size: int = 32
    #: Whether ``embed_texts`` is meaningful (vision-language models).
    supports_text: bool = False
    #: Device the model runs on ("cpu", "cuda", "cuda:1", "mps").
    device: str = "cpu"

    @property
    def info(self) -> dict[str, Any]:
        """What the index records about the model: id, dimension, preprocessing, text support."""
        return {
            "model": self.model_id,
            "ndim": self.ndim,
            "preprocess": self.preprocess_info(),
            "supports_text": self.supports_text,  # lets servers answer keyword-only without loading it
        }

    def preprocess_info(self) -> dict[str, Any]:
        """The preprocessing (size, mean, std, resize mode) that vectors depend on."""
        return {}

    @property
    def input_size(self) -> int:
        """The side (pixels) images are shrunk to before preprocessing; crops need no more."""
        return int(self.preprocess_info().get("size", 224))

    @abstractmethod
    def preprocess(self, image: Image) -> np.ndarray:
        """One RGB PIL image to one model input array (CHW float32). Thread-safe, CPU only."""

    @abstractmethod
    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        """A stacked batch of ``preprocess`` outputs to normalised float32 rows (N x ndim)."""

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.ndim), dtype=np.float32)
        return self.embed_arrays(np.stack([self.preprocess(im) for im in images]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise BadRequest(
            f"model {self.model_id!r} embeds images only; text search needs a vision-language "
            "model such as siglip or clip (keyword search on captions still works)",
            parameter="q",
        )


def normalize(rows: np.ndarray) -> np.ndarray:
    """L2-normalise rows as float32 (zero rows stay zero)."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


# name -> factory(**options) -> Embedder. Built-ins are added by bookidx.embedders.
_REGISTRY: dict[str, Callable[..., Embedder]] = {}
_ALIASES: dict[str, str] = {}


def register_embedder(name: str, factory: Callable[..., Embedder], *aliases: str) -> None:
    """Make ``load_embedder(name)`` build models with ``factory(**options)``."""
    _REGISTRY[name] = factory
    for alias in aliases:
        _ALIASES[alias] = name


def available_embedders() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def load_embedder(name: str, **options: Any) -> Embedder:
    """Build a model by registry name, alias, Hugging Face id or local folder.

    Options (``device``, ``batch_size``, ``dtype``...) are passed to the factory.
    """
    _load_builtins()
    key = _ALIASES.get(name, name)
    if key in _REGISTRY:
        return _REGISTRY[key](**options)
    if os.path.isdir(name) or "/" in name:
        # Any transformers checkpoint: a local folder or a hub id such as "google/siglip-so400m-patch14-384".
        return _REGISTRY["hf"](model=name, **options)
    raise ConfigError(
        f"unknown model {name!r}; known: {', '.join(available_embedders())}, "
        "or a Hugging Face id or local model folder",
        parameter="model",
    )


#: What vectors depend on: two records with the same identity make comparable vectors.
IDENTITY = ("model", "ndim", "preprocess")


def model_identity(model_info: dict[str, Any]) -> dict[str, Any]:
    """The parts of a model record (``Embedder.info`` or an index's ``info["model"]``) that
    vectors depend on; other fields (such as ``supports_text``) may differ."""
    return {key: model_info.get(key) for key in IDENTITY}


def load_for_index(model_info: dict[str, Any], **options: Any) -> Embedder:
    """The query-time model for an index: the recorded model with its recorded preprocessing.

    ``model_info`` is ``Index.info["model"]``. Vectors only compare when queries are embedded
    exactly as the items were (a letterboxed index needs letterboxed queries).
    """
    preprocess = model_info.get("preprocess") or {}
    if "keep_aspect" in preprocess:
        options.setdefault("keep_aspect", bool(preprocess["keep_aspect"]))
    return load_embedder(model_info["model"], **options)


def _load_builtins() -> None:
    if "hf" not in _REGISTRY:
        from . import embedders  # noqa: F401  (registers the built-in models)
