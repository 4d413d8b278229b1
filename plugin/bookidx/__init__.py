"""bookidx: image search for digitised books.

Public API (kept small on purpose)::

    from bookidx import IndexConfig, Embedder, load_embedder, open_index, index

Everything else lives in the modules named after the pipeline stages: adapters (read),
crops (fetch and decode), embed (model), store (index), runner (glue), web (blueprint), cli.
"""

from .config import IndexConfig
from .embed import Embedder, load_embedder, register_embedder

__version__ = "0.1.0"

__all__ = ["IndexConfig", "Embedder", "load_embedder", "register_embedder", "__version__"]
