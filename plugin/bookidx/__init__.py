"""bookidx: image search for digitised books.

Public API (kept small on purpose)::

    from bookidx import IndexConfig, Embedder, load_embedder, create_blueprint

Everything else lives in the modules named after the pipeline stages: adapters (read),
crops (fetch and decode), embed (model), store (index), runner (glue), web (blueprint), cli.
"""

from .config import IndexConfig
from .embed import Embedder, load_embedder, register_embedder


def create_blueprint(*args, **kwargs):
    """A Flask blueprint serving one index: see :func:`bookidx.web.create_blueprint`."""
    from .web import create_blueprint as factory  # Flask views are imported only when a site mounts one

    return factory(*args, **kwargs)

__version__ = "0.1.0"

__all__ = ["IndexConfig", "Embedder", "create_blueprint", "load_embedder", "register_embedder", "__version__"]
