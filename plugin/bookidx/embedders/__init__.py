"""The built-in embedders, registered by name with ``bookidx.embed.register_embedder``.

* ``hf``: any transformers checkpoint (``model=`` a hub id or local folder); ``load_embedder``
  sends every name containing "/" and every existing folder here.
* ``siglip`` (google/siglip-base-patch16-256-multilingual), ``clip``
  (openai/clip-vit-base-patch32), ``vit`` (google/vit-base-patch16-224): ``hf`` with a default id.
* ``efficientnet-lite0``: ImageNet EfficientNet-Lite0 from PyPI packages; works offline.
  ``efficientnet-lite0-rmac``: the same network with regional (R-MAC) pooling, for exact retrieval.

Every factory takes ``device="auto"``, ``batch_size=None``, ``dtype=None`` and
``keep_aspect=False``. Modules with torch in them are imported only when a model is built, so
listing the names stays instant.
"""

from __future__ import annotations

from typing import Any

from ..embed import Embedder, register_embedder
from ..errors import ConfigError

#: Registry name → the hub id it loads. The index records the registry name.
DEFAULT_IDS = {
    "siglip": "google/siglip-base-patch16-256-multilingual",
    "clip": "openai/clip-vit-base-patch32",
    "vit": "google/vit-base-patch16-224",
}


def hf(model: str | None = None, **options: Any) -> Embedder:
    """A transformers checkpoint by hub id or folder (see :class:`.hf.HFEmbedder`)."""
    from .hf import HFEmbedder

    if not model:
        raise ConfigError("the hf embedder needs model= (a Hugging Face id or a local folder)", parameter="model")

    return HFEmbedder(model, **options)


def efficientnet_lite0(**options: Any) -> Embedder:
    """EfficientNet-Lite0 with its ImageNet weights (see :class:`.efficientnet.EfficientNetLite0`)."""
    from .efficientnet import EfficientNetLite0

    return EfficientNetLite0(**options)


def _named(name: str):
    def factory(**options: Any) -> Embedder:
        return hf(DEFAULT_IDS[name], model_id=name, **options)

    factory.__doc__ = f"{DEFAULT_IDS[name]} through transformers, recorded in indexes as {name!r}."
    return factory


register_embedder("hf", hf)
for _name in DEFAULT_IDS:
    register_embedder(_name, _named(_name))
register_embedder("efficientnet-lite0", efficientnet_lite0)
register_embedder("efficientnet-lite0-rmac", lambda **options: efficientnet_lite0(pooling="rmac", **options))
