"""Crops: the pixels of one region, as a small RGB image, from a file, a IIIF service or a URL.

Decoding bounds indexing (STYLE.md §3 rule 3), so a crop never decodes more than it needs:

* A IIIF image (``ImageRef.service``) is asked to crop and shrink on the server
  (iiif_image.image_url, Image API 1.1/2.1/3.0 §4), through the fetcher's cache.
* A local page file is opened lazily (header only), checked against ``max_megapixels``, and
  shrunk *while decoding*: JPEG DCT scaling via ``Image.draft`` (1/2, 1/4, 1/8), JPEG 2000
  resolution levels via ``reduce``, and the reduced-resolution frames of pyramidal TIFFs
  (NewSubfileType bit 0, TIFF 6.0 §8). The shrink is chosen from the box size so the crop
  still has at least ``max_side`` pixels on its longest side; then crop and resample.
* A static image URL (``ImageRef.url``) is fetched whole once (cache, plus a small in-memory
  copy while its page's regions are read) and cropped like a local file.

Box coordinates are full-resolution image pixels (``ImageRef.width/height``); a file whose
pixel size differs (a derivative) gets the box rescaled. Every image comes back RGB with its
longest side <= ``max_side`` and is never enlarged. Unreadable, truncated, non-image or
oversized images raise :class:`SourceError` naming the image and the reason: the runner
records it as data and goes on.

:func:`open_bounded` and :func:`decoding` are the one pixel guard and the one mapping of
Pillow's failures to errors, also used for the web's query images.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from .adapters.records import ImageRef, Region
from .errors import BookidxError, SourceError
from .fetch import Fetcher
from .iiif_image import image_url, info_url, target_size

ImageSource = bytes | str | os.PathLike  # encoded bytes or a path
ErrorClass = type[BookidxError]
_FBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in (fractional) file pixels

_J2K_MAX_REDUCE = 5  # most encoders write 5 resolution levels; more fails to decode


class CropReader:
    """Reads region crops; safe to share between worker threads.

    Args:
        fetcher: HTTP and cache for IIIF and static images.
        max_side: longest side of a returned crop in pixels (smaller crops stay as they are).
        max_megapixels: refuse page images larger than this (decompression bombs).
        memory_bytes: bytes of whole static images kept in memory while their regions are read.
    """

    def __init__(self, fetcher: Fetcher, max_side: int, max_megapixels: float = 200.0, *,
                 memory_bytes: int = 128 * 2**20):
        if max_side < 1:
            raise ValueError("max_side must be at least 1")
        self.fetcher = fetcher
        self.max_side = max_side
        self.max_megapixels = max_megapixels
        self._memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._whole: OrderedDict[str, bytes] = OrderedDict()
        self._whole_size = 0
        self._url_locks: dict[str, list] = {}  # url -> [lock, users]: one download per image
        self._sizes: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def read(self, region: Region) -> Image.Image:
        """The region's pixels: RGB, longest side <= max_side, never enlarged.

        Raises:
            SourceError: the image cannot be read or decoded, is too large, or the box lies
                outside it.
            FetchError, PayloadTooLarge: a remote image could not be fetched.
        """
        ref = region.page.image
        if ref.path:
            return self._crop(ref.path, region)
        if ref.service:
            return self._iiif(region)
        if ref.url:
            return self._crop(self._fetch_whole(ref.url), region)
        raise SourceError("page has no image file, IIIF service or URL", parameter=region.page.id)

    def read_many(self, regions: Iterable[Region], workers: int = 4, *,
                  then: Callable[[Image.Image], Any] | None = None, window: int | None = None
                  ) -> Iterator[tuple[Region, Any]]:
        """Read crops in a thread pool, yielding ``(region, image or error)`` in input order.

        Pillow releases the GIL while decoding, so threads scale with cores. At most ``window``
        (default ``2 * workers``) crops are in flight; an error is returned as data, never
        raised. ``then`` runs on each crop in the same worker thread (the indexer passes the
        model's preprocessing, so it overlaps the forward pass too).
        """
        window = window or 2 * workers

        def job(region: Region) -> tuple[Region, Any]:
            try:
                image = self.read(region)
                return region, then(image) if then is not None else image
            except BookidxError as e:
                return region, e
            except Exception as e:  # a decoder bug on one file must not end a run of millions
                return region, SourceError(f"{type(e).__name__}: {e}", parameter=region.page.image.uri)

        pending: deque[Future] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bookidx-crop") as pool:
            try:
                for region in regions:
                    pending.append(pool.submit(job, region))
                    if len(pending) >= window:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # the consumer stopped early: do not decode what nobody will read
                for future in pending:
                    future.cancel()

    # -- local files and static images -------------------------------------------------------

    def _crop(self, source: ImageSource, region: Region) -> Image.Image:
        """Open lazily, check the size, shrink on load, crop, make RGB, resample."""
        name = region.page.image.uri
        with decoding(name):
            with open_bounded(source, self.max_megapixels * 1e6, name) as img:
                box = self._image_box(img.size, region)
                try:
                    return self._decode_box(img, box)
                except Exception:
                    if img.format != "JPEG2000":
                        raise
            # Perhaps fewer resolution levels than the reduce asked for: decode it fully.
            with open_bounded(source, self.max_megapixels * 1e6, name) as img:
                return self._decode_box(img, box, shrink=False)

    def _image_box(self, size: tuple[int, int], region: Region) -> _FBox:
        """The region's box in this file's pixels (fractional)."""
        width, height = size
        ref = region.page.image
        sized = bool(ref.width and ref.height)
        box = region.box.clip(ref.width, ref.height) if sized else region.box.clip(width, height)
        if box is None:
            raise SourceError(f"box {region.box.xywh()} lies outside the "
                              f"{ref.width or width}x{ref.height or height} image", parameter=ref.uri)
        # A derivative (the file is smaller or larger than the image the box was measured on):
        # scale without rounding, so the crop is exactly the same part of the picture.
        sx, sy = (width / ref.width, height / ref.height) if sized else (1.0, 1.0)
        return (box.x * sx, box.y * sy, min((box.x + box.w) * sx, width), min((box.y + box.h) * sy, height))

    def _decode_box(self, img: Image.Image, box: _FBox, shrink: bool = True) -> Image.Image:
        """Decode (shrunk when possible) and resample exactly ``box`` to the output size."""
        x0, y0, x1, y1 = box
        out = target_size(max(1, round(x1 - x0)), max(1, round(y1 - y0)), self.max_side)
        full = img.size
        scale = self._shrink_on_load(img, max(x1 - x0, y1 - y0)) if shrink else None
        img.load()
        # The decoder's own scale (1/8 exactly, not 319/2550): a fraction of a pixel off at 1/8
        # is a visible shift at full size.
        sx, sy = scale or (img.size[0] / full[0], img.size[1] / full[1])
        x0, x1, y0, y1 = x0 * sx, x1 * sx, y0 * sy, y1 * sy
        ix0, iy0 = int(x0), int(y0)
        ix1, iy1 = max(ix0 + 1, min(math.ceil(x1), img.size[0])), max(iy0 + 1, min(math.ceil(y1), img.size[1]))
        crop = _to_rgb(img.crop((ix0, iy0, ix1, iy1)))
        src = (x0 - ix0, y0 - iy0, min(x1, ix1) - ix0, min(y1, iy1) - iy0)
        if crop.size == out and src == (0, 0, *out):
            return crop
        # Resampling from the fractional box keeps edges exact after a DCT-scaled decode.
        return crop.resize(out, Image.Resampling.BICUBIC, box=src, reducing_gap=3.0)

    def _shrink_on_load(self, img: Image.Image, box_side: float) -> tuple[float, float] | None:
        """Decode at the smallest resolution that still gives the box max_side pixels.

        Returns the exact decode scale when the decoder defines one, else None (then the
        decoded size tells).
        """
        factor = box_side / self.max_side  # how much smaller the crop may be
        if factor < 2:
            return None
        width, height = img.size
        if img.format in ("JPEG", "MPO"):
            drafted = img.draft(img.mode if img.mode in ("RGB", "L") else None,
                                (math.ceil(width / factor), math.ceil(height / factor)))
            if drafted is not None:
                _, (_, _, w_scaled, h_scaled) = drafted  # the size as a fraction: W / scale
                return w_scaled / width, h_scaled / height
        elif img.format == "JPEG2000":
            levels = min(int(math.log2(factor)), _J2K_MAX_REDUCE)
            # Pillow sizes a reduced image as round(side / 2**n) where OpenJPEG gives
            # ceil(side / 2**n); where those differ the decode fails, so take a level that agrees.
            while levels and not all(_j2k_round_ok(side, levels) for side in (width, height)):
                levels -= 1
            if levels:
                img.reduce = levels
                return 1 / (1 << levels), 1 / (1 << levels)
        elif img.format == "TIFF" and getattr(img, "n_frames", 1) > 1:
            _pick_tiff_level(img, box_side, self.max_side)
        return None

    def _fetch_whole(self, url: str) -> bytes:
        """A static image's bytes, downloaded once even when several workers ask at once."""
        with self._lock:
            entry = self._url_locks.setdefault(url, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                with self._lock:
                    data = self._whole.get(url)
                    if data is not None:
                        self._whole.move_to_end(url)
                        return data
                data = self.fetcher.get(url)
                with self._lock:
                    self._whole[url] = data
                    self._whole_size += len(data)
                    while self._whole_size > self._memory_bytes and len(self._whole) > 1:
                        self._whole_size -= len(self._whole.popitem(last=False)[1])
                return data
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._url_locks[url]

    # -- IIIF ---------------------------------------------------------------------------------

    def _iiif(self, region: Region) -> Image.Image:
        ref = self._sized(region.page.image)
        box = region.box.clip(ref.width, ref.height)
        if box is None:
            raise SourceError(f"box {region.box.xywh()} lies outside the {ref.width}x{ref.height} image",
                              parameter=ref.uri)
        url = image_url(ref, box, self.max_side)
        data = self.fetcher.get(url)
        with decoding(url), open_bounded(data, self.max_megapixels * 1e6, url) as img:
            # A server that ignored the size (level 0, maxWidth) still decodes small.
            return self._decode_box(img, (0, 0, *img.size))

    def _sized(self, ref: ImageRef) -> ImageRef:
        """The ref with its full size, from info.json when the manifest did not say.

        Without it a 1.1/2.x server would enlarge small regions to the requested size.
        """
        if ref.width and ref.height:
            return ref
        url = info_url(ref)
        with self._lock:
            size = self._sizes.get(url)
        if size is None:
            try:
                info = json.loads(self.fetcher.get(url))
                size = int(info["width"]), int(info["height"])
            except (ValueError, KeyError, TypeError) as e:
                raise SourceError(f"info.json without a usable width and height ({e})",
                                  parameter=url) from None
            with self._lock:
                self._sizes[url] = size
                if len(self._sizes) > 4096:
                    self._sizes.popitem(last=False)
        return replace(ref, width=size[0], height=size[1])


def open_bounded(source: ImageSource, max_pixels: float, name: str, *, load: bool = False,
                 too_large: ErrorClass = SourceError, unreadable: ErrorClass = SourceError) -> Image.Image:
    """An image opened from its header only, refused before any pixel is decoded when too large.

    A 100 kB PNG can declare 50 000 x 50 000 pixels, so the byte size says nothing; the header's
    pixel count does. The caller closes the image (``with open_bounded(...) as img``).

    Args:
        source: the encoded bytes, or a path.
        max_pixels: refuse images with more pixels (width x height) than this.
        name: what errors name: the file, URL or request parameter.
        load: decode the pixels now; by default the image stays lazy, so that ``draft`` or
            ``reduce`` can shrink it while decoding.
        too_large, unreadable: the errors raised; the indexer records :class:`SourceError`,
            the web answers ``PayloadTooLarge`` (413) and ``BadRequest`` (400).

    Raises:
        too_large: more than ``max_pixels``, or over Pillow's own decompression-bomb limit.
        unreadable: not an image, or (with ``load``) a corrupt or truncated one.
        SourceError: a path that cannot be read.
    """
    with decoding(name, too_large=too_large, unreadable=unreadable):
        image = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise too_large(f"{width}x{height} image has {width * height / 1e6:.0f} megapixels, over the "
                        f"limit of {max_pixels / 1e6:g} (decompression bomb guard)", parameter=name)
    if load:
        with decoding(name, too_large=too_large, unreadable=unreadable):
            try:
                image.load()
            except BaseException:
                image.close()
                raise
    return image


@contextmanager
def decoding(name: str, *, too_large: ErrorClass = SourceError,
             unreadable: ErrorClass = SourceError) -> Iterator[None]:
    """Whatever Pillow raises while opening or decoding, as a :class:`BookidxError` naming ``name``.

    Pillow's decoders raise much more than ``OSError`` on hostile bytes (``IndexError`` for a
    truncated QOI, ``TypeError`` for a malformed IM header, ``NotImplementedError`` for an
    unknown DDS or BLP compression, ``EOFError``, ``KeyError``, ``struct.error``): each is the
    file's fault, so each is ``unreadable``, never a crash of the run or a 500.
    """
    try:
        yield
    except BookidxError:
        raise
    except Image.DecompressionBombError as e:
        raise too_large(f"decompression bomb: {e}", parameter=name) from None
    except UnidentifiedImageError:
        raise unreadable("not an image (no decoder recognises the bytes)", parameter=name) from None
    except FileNotFoundError:
        raise SourceError("image file not found", parameter=name) from None
    except OSError as e:
        if e.errno is None:  # Pillow's decoder errors carry no errno; the file system's do
            raise unreadable(f"corrupt or truncated image: {e}", parameter=name) from None
        raise SourceError(f"cannot read image file: {e.strerror}", parameter=name) from None
    except Exception as e:
        raise unreadable(f"corrupt or truncated image: {type(e).__name__}: {e}", parameter=name) from None


def _j2k_round_ok(side: int, levels: int) -> bool:
    power = 1 << levels
    return (side + (power >> 1)) // power == -(-side // power)


def _pick_tiff_level(img: Image.Image, box_side: float, max_side: int) -> None:
    """Seek a pyramidal TIFF to its smallest reduced-resolution frame still big enough."""
    width, height = img.size
    best = 0
    for frame in range(1, img.n_frames):
        img.seek(frame)
        fw, fh = img.size
        reduced = int(img.tag_v2.get(254, 0)) & 1  # NewSubfileType: reduced-resolution image
        same_page = abs(fw / fh - width / height) <= 0.02 * width / height
        if reduced and same_page and box_side * fw / width >= max_side:
            best = frame
    img.seek(best)


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB from any mode: alpha over white (a page), 16-bit and float scans to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        page = Image.new("RGB", rgba.size, (255, 255, 255))
        page.paste(rgba, mask=rgba.getchannel("A"))
        return page
    if img.mode.startswith("I") or img.mode == "F":
        # Pillow clips 16-bit values to 255 when converting; scale them instead.
        arr = np.asarray(img, dtype=np.float64)
        if arr.max(initial=0) > 255:
            arr = arr / 257.0
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")

