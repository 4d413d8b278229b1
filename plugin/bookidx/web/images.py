"""Query images a client supplies: an upload, or a URL on a host the operator allowed.

Both are untrusted, so both are bounded before decoding: the body by
``BOOKIDX_MAX_UPLOAD_BYTES`` (413) and the decoded size by ``BOOKIDX_MAX_UPLOAD_PIXELS`` (413,
checked from the header before any pixel is decoded — a 100 kB PNG can claim 50k x 50k pixels).
The server fetches a client-named URL only when it starts with one of the operator's
``BOOKIDX_FETCH_ALLOWLIST`` prefixes (same scheme, same host and port, path under the prefix);
with an empty list, the default, it fetches nothing, so it cannot be used to probe the network
behind it (server-side request forgery). The fetch is the indexer's :class:`~bookidx.fetch.Fetcher`
with every hop, redirects included, checked against the allow-list before it is requested.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import request
from PIL import Image

from .. import __version__
from ..crops import open_bounded
from ..errors import BadRequest, FetchError, PayloadTooLarge
from ..fetch import WAITING_CONNECT_TIMEOUT, WAITING_READ_TIMEOUT, Fetcher
from .state import setting, setting_list

MAX_REDIRECTS = 3
# Seconds for the whole fetch (body included; headers are bounded per read): a visitor waits.
# Longer than a re-ranked candidate's (rerank.READ_DEADLINE): without its query image there is
# no answer at all, while a candidate not read in time is merely left unchecked.
DEADLINE = 30.0
USER_AGENT = f"bookidx/{__version__} (query image fetch)"


def uploaded_image() -> Image.Image:
    """The ``image`` field of a multipart/form-data request, decoded.

    Raises:
        PayloadTooLarge: body or image over the configured limits.
        BadRequest: no ``image`` field, or not an image Pillow can read.
    """
    limit = setting("BOOKIDX_MAX_UPLOAD_BYTES")
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"upload is {request.content_length} bytes; the limit is {limit}", "image")
    # Flask >= 3.1: also bounds bodies sent without Content-Length (chunked), while parsing the form.
    request.max_content_length = limit
    upload = request.files.get("image")
    if upload is None:
        raise BadRequest("send the query image as the multipart/form-data field 'image'", "image")
    return decode(upload.stream.read(limit + 1), "image")


def fetched_image(url: str) -> Image.Image:
    """The image at a client-named ``url``, fetched only when the allow-list covers it.

    Raises:
        BadRequest: fetching is off, or the URL (or a redirect) is outside the allow-list.
        FetchError: the remote server failed or did not answer in time.
        PayloadTooLarge: the image is over the configured limits.
    """
    allowlist = setting_list("BOOKIDX_FETCH_ALLOWLIST")
    if not allowlist:
        raise BadRequest(
            "this server does not fetch images by URL (BOOKIDX_FETCH_ALLOWLIST is empty); upload the image with POST",
            "image_url",
        )

    def check(hop: str) -> None:
        if not any(allowed(hop, prefix) for prefix in allowlist):
            raise BadRequest("image_url is not on a host this server may fetch from", "image_url")

    limit = setting("BOOKIDX_MAX_UPLOAD_BYTES")
    # No retries and no cache: a visitor is waiting, and a client-named URL is not worth keeping.
    fetcher = Fetcher(retries=0, connect_timeout=WAITING_CONNECT_TIMEOUT, timeout=WAITING_READ_TIMEOUT, deadline=DEADLINE,
                      max_bytes=limit, max_redirects=MAX_REDIRECTS, check_url=check, user_agent=USER_AGENT)
    with fetcher:
        try:
            data = fetcher.get(url)
        except FetchError as e:  # the fetcher names the URL; the API names the parameter
            raise FetchError(f"image_url could not be fetched: {e.detail}", "image_url") from None
        except PayloadTooLarge:
            raise PayloadTooLarge(f"image is over {limit} bytes", "image_url") from None
    return decode(data, "image_url")


def allowed(url: str, prefix: str) -> bool:
    """Whether ``url`` is under ``prefix``: same scheme and host:port, path below the prefix's.

    A plain ``startswith`` would let ``https://iiif.example.org.evil.net/`` pass for
    ``https://iiif.example.org``; dot segments could climb out of the prefix's path.
    """
    u, p = urlsplit(url), urlsplit(prefix)
    if u.scheme not in ("http", "https") or u.scheme != p.scheme or "@" in u.netloc:
        return False
    if u.netloc.lower() != p.netloc.lower():
        return False
    if any(seg in (".", "..") for seg in unquote(u.path).split("/")):
        return False
    base = p.path if p.path.endswith("/") else p.path + "/"
    return p.path in ("", "/") or u.path == p.path or u.path.startswith(base)


def decode(data: bytes, parameter: str) -> Image.Image:
    """Bytes to a loaded PIL image, refusing more than the byte and pixel limits."""
    limit = setting("BOOKIDX_MAX_UPLOAD_BYTES")
    if len(data) > limit:
        raise PayloadTooLarge(f"image is over {limit} bytes", parameter)
    return open_bounded(data, setting("BOOKIDX_MAX_UPLOAD_PIXELS"), parameter, load=True,
                        too_large=PayloadTooLarge, unreadable=BadRequest)

