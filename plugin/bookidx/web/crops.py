"""Thumbnails of items whose pages have no IIIF Image service (local files, plain image URLs).

IIIF pages need none of this: the image server cuts thumbnails itself (``thumbnail_url``). For
the rest the blueprint cuts the crop with the indexer's own ``CropReader`` (the same pixels the
model saw) and keeps the JPEG bytes in a per-collection first-in-first-out cache bounded by
``BOOKIDX_CROP_CACHE_BYTES``; browsers cache them too (the view sends ETag and max-age).
"""

from __future__ import annotations

import io

from PIL import Image

from ..adapters.records import Region
from .state import Collection, collection, setting

JPEG_QUALITY = 85


def crop_jpeg(region: Region, side: int) -> bytes:
    """The region's crop as JPEG, its longer side at most ``side`` pixels."""
    state = collection()
    with state.crop_lock:
        data = state.crop_cache.get(region.key)
    if data is not None:
        return data
    image = _reader(state, side).read(region)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    data = buf.getvalue()
    _remember(state, region.key, data, setting("BOOKIDX_CROP_CACHE_BYTES"))
    return data


def _remember(state: Collection, key: int, data: bytes, budget: int) -> None:
    if len(data) > budget:
        return
    with state.crop_lock:
        if key in state.crop_cache:  # another thread cut the same crop meanwhile
            return
        state.crop_cache[key] = data
        state.crop_bytes += len(data)
        while state.crop_bytes > budget:
            oldest = next(iter(state.crop_cache))
            state.crop_bytes -= len(state.crop_cache.pop(oldest))


def _reader(state: Collection, side: int):
    """The collection's CropReader, built on first use (it holds a pooled HTTP session)."""
    with state.crop_lock:
        if state.crop_reader is None:
            from ..crops import CropReader
            from ..fetch import Fetcher

            state.crop_reader = CropReader(Fetcher(), side)
        return state.crop_reader
