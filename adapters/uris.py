"""References between sources: URLs, ``file:`` URIs and local paths, and reading local files.

A source names other sources: a collection its members, a manifest its ALTO, a METS file its
images, a ``.txt`` list one spec a line. :func:`resolve` says where such a reference points,
the one way every reader does it: URLs are kept, ``file:`` URIs become paths (RFC 8089), and
relative references are taken from the naming document, joined as URLs when it is remote
(RFC 3986 §5.2) and from its folder when it is local. :func:`read_local` is the one reader of
local files, for :func:`bookidx.adapters.sources.read_sources` by default and for
:meth:`bookidx.fetch.Fetcher.load`.

``file://./images/1.tif`` (BnL, Europeana-BnF METS) has "." as its host in RFC 8089 terms, but
is meant, and read, as the relative path ``./images/1.tif``; ``file://..`` likewise. A
``file:`` URI naming any other host is not read.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

from bookidx.errors import SourceError

_URL = re.compile(r"^([a-z][a-z0-9+.-]+)://", re.I)  # two letters at least: C://x is a drive


def is_url(ref: str) -> bool:
    """Whether ``ref`` is a URL (``scheme://...``) rather than a local path."""
    return bool(_URL.match(ref))


def is_http(ref: str) -> bool:
    """Whether ``ref`` is an http(s) URL."""
    match = _URL.match(ref)
    return bool(match) and match.group(1).lower() in ("http", "https")


def scheme(ref: str) -> str:
    """The scheme of a URL (``scheme://``) or ``file:`` URI, lower-cased; "" for a path, which
    may hold a colon (``C:\\scans``, ``notes:1.jpg``)."""
    match = _URL.match(ref)
    if match:
        return match.group(1).lower()
    return "file" if ref[:5].lower() == "file:" else ""


def uri_to_path(uri: str) -> str:
    """The local path a ``file:`` URI names, percent-escapes decoded; other strings unchanged.

    ``file:///a/b`` and ``file://localhost/a/b`` give ``/a/b``; ``file://./a`` gives ``./a``.

    Raises:
        SourceError: a ``file:`` URI on another host.
    """
    if scheme(uri) != "file":
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. an unbalanced "[" taken for an IPv6 host
        raise SourceError(f"not a valid file URI: {exc}", uri) from None
    path = url2pathname(parts.path)
    if parts.netloc in ("", "localhost"):
        return path
    if parts.netloc in (".", ".."):
        return parts.netloc + path
    raise SourceError(f"file URI on another host ({parts.netloc}) cannot be read", uri)


def resolve(ref: str, base: str, *, encoded: bool = False) -> str:
    """Where ``ref``, named in the document at ``base`` (a URL or a local path), points.

    Args:
        ref: a URL, a ``file:`` URI, or a path (relative to ``base``'s folder unless absolute).
        base: the naming document's URL or path.
        encoded: ``ref`` is a URI reference (an XML ``href``), so a relative one's
            percent-escapes are decoded when it becomes a local path.

    Returns:
        A URL or a local path. A ``file:`` URI gives a local path even when ``base`` is
        remote: the caller decides whether that document may name local files. One on another
        host is returned unchanged (reading it fails, naming it).
    """
    if scheme(ref) == "file":
        try:
            path = uri_to_path(ref)
        except SourceError:
            return ref
        if os.path.isabs(path):
            return path
        ref, encoded = path, False  # file://./x: a relative path, already decoded
    elif is_url(ref):
        return ref
    if is_url(base):
        return urljoin(base, ref)
    return os.path.normpath(os.path.join(os.path.dirname(base), unquote(ref) if encoded else ref))


def read_local(uri: str) -> bytes:
    """The bytes of a local file, named by a path or a ``file:`` URI.

    Raises:
        SourceError: a URL of another scheme (http(s) needs a fetcher, which the CLI supplies),
            a ``file:`` URI on another host, or a file that cannot be read.
    """
    if scheme(uri) not in ("", "file"):
        raise SourceError("remote source: a fetcher must be supplied as load= "
                          "(the CLI passes bookidx's HTTP fetcher)", uri)
    path = uri_to_path(uri)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", path) from None
    except ValueError:  # a NUL byte, e.g. from "%00" in a METS href
        raise SourceError("cannot read: the path holds a NUL byte", repr(path)) from None
