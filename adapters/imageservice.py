"""The IIIF Image API service of a painted image: its base URI, its API version, its full size.

A manifest links a painted image to its image server through ``service`` (Presentation 3.0
https://iiif.io/api/presentation/3.0/#service, Presentation 2.1 §3.4
https://iiif.io/api/presentation/2.1/#linking-properties). This module reads that link in all
three Image API versions, from the technical properties each one's image information carries:

* 1.1 §5 (https://iiif.io/api/image/1.1/#image-information-request): ``@context`` or
  ``profile`` under ``library.stanford.edu/iiif/image-api/1.1``;
* 2.1 §5.2 (https://iiif.io/api/image/2.1/#technical-properties): ``@context``/``profile``
  under ``iiif.io/api/image/2``, or ``protocol`` ``http://iiif.io/api/image`` alone;
* 3.0 §5.2 (https://iiif.io/api/image/3.0/#52-technical-properties): ``type``
  ``ImageService3``; the ``ImageService1``/``ImageService2`` types name older services in
  Presentation 3 (Registry of Services), and a bare compliance level (``level0``–``level2``,
  3.0 §6) is read as the manifest's own generation.

Decisions:

* The first service that is an Image API service wins; search, auth and other services are
  passed over. Its id is normalised as :func:`bookidx.iiif_image.service_base` does.
* The image's full size is the service's ``width``/``height`` when stated, else the painted
  resource's, unless the resource is itself an Image API derivative (``.../full/!800,800/...``),
  whose size is not the image's; then the canvas size stands in.
* An image with no Image API service keeps its static ``url`` (crops.py fetches it whole).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bookidx.iiif_image import service_base

from .jsonld import as_list, id_of
from .records import ImageRef, non_negative_int

_IMAGE_API = re.compile(r"iiif\.io/api/image/(\d)")


def painted_image(res: Mapping, version: int, cw: int, ch: int) -> ImageRef:
    """The painted image ``res``: its service (or static URL) and its full pixel size.

    Args:
        res: the painting annotation's body (v3) or resource (v2), Choice and
            SpecificResource already unwrapped.
        version: the manifest's Presentation API major version (2 or 3).
        cw, ch: the canvas size, for when nothing states the image's.
    """
    url = id_of(res)
    rw, rh = non_negative_int(res.get("width")), non_negative_int(res.get("height"))
    service = _image_service(res, version)
    if service is None:
        w, h = (rw, rh) if rw and rh else (cw, ch)
        return ImageRef(w, h, url=url)
    sid, api, sw, sh = service
    if sw and sh:
        w, h = sw, sh
    elif rw and rh and not _scaled(url, sid):
        w, h = rw, rh
    else:  # the resource is a derivative (e.g. .../full/!800,800/...): its size is not the image's
        w, h = cw, ch
    return ImageRef(w, h, service=sid, api=api)


def image_api(service: Mapping, version: int) -> int | None:
    """Image API major version of a service, or None when it is not an image service."""
    declared = str(service.get("type") or service.get("@type") or "")
    if declared.startswith("ImageService") and declared[-1:] in "123":
        return int(declared[-1])
    hints = [str(c) for c in as_list(service.get("@context"))]
    hints += [str(p) for p in as_list(service.get("profile")) if isinstance(p, str)]
    for hint in hints:
        match = _IMAGE_API.search(hint)
        if match:
            return int(match.group(1))
        if "library.stanford.edu/iiif/image-api/1.1" in hint:
            return 1
    if hints and hints[-1] in ("level0", "level1", "level2"):
        return 3 if version == 3 else 2
    if service.get("protocol") == "http://iiif.io/api/image":
        return 2
    return None


def _image_service(res: Mapping, version: int) -> tuple[str, int, int, int] | None:
    """(base URI, API version, width, height) of the resource's first Image API service."""
    for service in as_list(res.get("service")):
        if not isinstance(service, Mapping):
            continue
        api = image_api(service, version)
        sid = service_base(id_of(service))
        if api and sid:
            return sid, api, non_negative_int(service.get("width")), non_negative_int(service.get("height"))
    return None


def _scaled(url: str, service_id: str) -> bool:
    """Whether an Image API URL under this service asks for a region or a smaller size."""
    if not url.startswith(service_id + "/"):
        return False
    parts = url[len(service_id) + 1:].split("/")
    return len(parts) >= 2 and (parts[0] != "full" or parts[1] not in ("full", "max"))
