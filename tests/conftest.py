"""Shared fixtures: the real corpus beside the checkout, and a tiny deterministic embedder.

``../shared`` holds real files from real institutions (see its SOURCES.md); tests read them in
place. ``PixelEmbedder`` is a real, if crude, image embedder (a 16x16 grey thumbnail, centred and
normalised) so the whole index/search path runs in CI with no weights and no GPU, and similar
images really are near each other.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bookidx.embed import Embedder, normalize, register_embedder

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BOOKIDX_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"
CHAPBOOKS = SHARED / "corpus-images" / "nls-chapbooks-printed-in-scotland"


class PixelEmbedder(Embedder):
    """16x16 greyscale thumbnail, mean-centred, as a 256-d unit vector. Image only."""

    model_id = "test-pixels"
    ndim = 256
    batch_size = 16

    def __init__(self, **options):
        self.device = "cpu"

    def preprocess_info(self):
        return {"size": 64, "resize": "thumbnail16", "mode": "L"}

    def preprocess(self, image):
        small = image.convert("L").resize((16, 16))
        arr = np.asarray(small, dtype=np.float32).reshape(-1)
        return arr - arr.mean()

    def embed_arrays(self, batch):
        return normalize(batch)


register_embedder("test-pixels", PixelEmbedder)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"real corpus not found at {SHARED} (set BOOKIDX_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def corpus(shared) -> Path:
    return shared / "corpus"


@pytest.fixture(scope="session")
def chapbooks(shared) -> Path:
    return shared / "corpus-images" / "nls-chapbooks-printed-in-scotland"


@pytest.fixture(scope="session")
def regions(chapbooks):
    """webindex.py's 20 chapbook regions (a module may ask for other ones under this name)."""
    from webindex import chapbook_regions

    return chapbook_regions(chapbooks)


@pytest.fixture(scope="session")
def pixel_index(tmp_path_factory, chapbooks, regions) -> Path:
    """Those regions indexed with test-pixels, built once for every module that only reads it."""
    from bookidx.embed import load_embedder
    from webindex import build_index

    path = tmp_path_factory.mktemp("pixels") / "idx"
    build_index(path, chapbooks, load_embedder("test-pixels"), regions)
    return path
