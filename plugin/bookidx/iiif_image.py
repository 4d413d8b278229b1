"""The one IIIF Image API URL builder: a region of a page image, shrunk on the server.

Implements the image request URI syntax of IIIF Image API 1.1 §4
(https://iiif.io/api/image/1.1/#parameters), 2.1 §4 (https://iiif.io/api/image/2.1/#image-request-parameters)
and 3.0 §4 (https://iiif.io/api/image/3.0/#4-image-requests)::

    {service}/{region}/{size}/{rotation}/{quality}.{format}

and the image information request ``{service}/info.json`` (1.1 §5, 2.1 §5, 3.0 §5).

Decisions:

* The target size is computed here, not left to the server: the box is shrunk so its longest
  side is at most ``max_side`` and it is *never* enlarged (3.0 refuses upscaling without ``^``;
  1.1 and 2.x servers would silently upscale). The size is sent as best-fit ``!w,h``, which
  every version and every compliance level above 0 understands; when no shrink is needed it is
  ``max`` (3.0) or ``full`` (1.1, 2.x, where ``max`` only exists from 2.1 on).
* A box covering the whole image is sent as region ``full``, which servers cache best.
* The quality is ``native`` for 1.1 and ``default`` for 2.x and 3.0; rotation is always 0.
* A service of unknown version is treated as 2.x, the commonest in the wild.
* An image with no service but a static ``url`` is returned as that url: the caller fetches
  the whole file and crops it locally (crops.py).

Pure: strings in, strings out; no network.
"""

from __future__ import annotations

from bookidx.errors import BadRequest

from .adapters.records import Box, ImageRef

_SUFFIXES = ("/info.json", "/")


def service_base(service: str) -> str:
    """A service id without a trailing ``/`` or ``/info.json`` (manifests carry both forms)."""
    base = service.strip()
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                changed = True
    return base


def info_url(ref: ImageRef) -> str:
    """The ``info.json`` URL of the image's service.

    Raises:
        BadRequest: the image has no IIIF service.
    """
    if not ref.service:
        raise BadRequest("image has no IIIF Image service", parameter=ref.uri or None)
    return f"{service_base(ref.service)}/info.json"


def target_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    """The size a w x h region is shrunk to so its longest side is <= max_side; never larger.

    Each side is at least 1 pixel, so thin boxes still produce an image.
    """
    if max_side is None or max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def image_url(ref: ImageRef, box: Box | None = None, max_side: int | None = None, *,
              fmt: str = "jpg") -> str:
    """The Image API URL of ``box`` (full-image pixels) of ``ref``, longest side <= ``max_side``.

    Args:
        ref: the page image; ``service`` and ``api`` (1, 2 or 3) are used, or else ``url``.
        box: the region in full-resolution image pixels; None for the whole image. It is
            clipped to ``ref.width``/``ref.height`` when those are known.
        max_side: longest side of the returned image; None for no shrinking.
        fmt: the format extension (``jpg``, ``png``, ``webp``...).

    Returns:
        The request URL; for an image without a service, its static ``url`` unchanged.

    Raises:
        BadRequest: the image has neither a service nor a url, the box lies outside the image,
            or max_side is not positive.
    """
    if max_side is not None and max_side < 1:
        raise BadRequest(f"max_side must be positive, not {max_side}", parameter="max_side")
    if not ref.service:
        if ref.url:
            return ref.url
        raise BadRequest("image has neither a IIIF Image service nor a URL", parameter=ref.uri or None)
    api = ref.api or 2
    region, (w, h) = _region(ref, box)
    size = _size(api, w, h, max_side)
    quality = "native" if api == 1 else "default"
    return f"{service_base(ref.service)}/{region}/{size}/0/{quality}.{fmt}"


def thumbnail_url(ref: ImageRef, box: Box | None, side: int) -> str:
    """A thumbnail of ``box`` for web hits: the same request as a crop, longest side ``side``."""
    return image_url(ref, box, side)


def _region(ref: ImageRef, box: Box | None) -> tuple[str, tuple[int, int]]:
    """The region parameter and the region's pixel size (0, 0 when not known)."""
    if box is None:
        return "full", (ref.width, ref.height)
    clipped = box.clip(ref.width, ref.height)
    if clipped is None:
        raise BadRequest(f"box {box.xywh()} lies outside the {ref.width}x{ref.height} image",
                         parameter=ref.uri or None)
    if ref.width and ref.height and clipped == Box(0, 0, ref.width, ref.height):
        return "full", (ref.width, ref.height)
    return clipped.xywh(), (clipped.w, clipped.h)


def _size(api: int, w: int, h: int, max_side: int | None) -> str:
    """The size parameter: best fit within the shrunk size, or the version's "as is" keyword."""
    unscaled = "max" if api >= 3 else "full"
    if max_side is None:
        return unscaled
    if not (w and h):
        # Unknown region size: best fit in a square. 3.0 never enlarges for !w,h without ^;
        # a 1.1/2.x server may, so crops.py reads info.json first when the size is unknown.
        return f"!{max_side},{max_side}"
    tw, th = target_size(w, h, max_side)
    if (tw, th) == (w, h):
        return unscaled
    return f"!{tw},{th}"
