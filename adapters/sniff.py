"""What a document is, from its first bytes: ALTO, METS, PAGE, a IIIF manifest or collection,
an image, or a ``.txt`` list of sources.

XML is told by its root element's local name (any prefix or namespace, after declarations,
comments and a doctype; UTF-16 by its byte order mark), JSON by IIIF's ``kind_of``, images by
their magic numbers (JPEG, PNG, TIFF, GIF, JPEG 2000 as JP2 and as a codestream, WebP). The
content decides, not the name (an ``.xml`` file may hold any of the three XML formats, or
something else); only lists, which have no signature, are known by their name.
"""

from __future__ import annotations

import json
import re

from bookidx.errors import SourceError

from .iiif import json_syntax_error, kind_of, parse_json

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"GIF8",
          b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")
_ROOT = re.compile(rb"<(?![?!])(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")


def sniff(data: bytes, name: str) -> str:
    """What a document is: "alto", "mets", "page", "iiif-manifest", "iiif-collection",
    "image", "list" or "unknown", from its first bytes (and, for lists, its name)."""
    if data.startswith(_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    head = data[:65536]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 XML, which libxml2 reads from the BOM
        head = head.decode("utf-16", errors="replace").encode("utf-8")
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return {"alto": "alto", "mets": "mets", "PcGts": "page"}.get(_xml_root(head), "unknown")
    if head.startswith((b"{", b"[")):
        try:
            kind = kind_of(parse_json(data, source=name))
        except SourceError:
            return "unknown"
        return f"iiif-{kind}" if kind else "unknown"
    if name.lower().endswith((".txt", ".lst")):
        return "list"
    return "unknown"


def _xml_root(head: bytes) -> str:
    """The local name of the first element after declarations, comments and doctype."""
    body = re.sub(rb"<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>]*>", b"", head, flags=re.S)
    match = _ROOT.search(body)
    return match.group(1).decode("ascii", "replace") if match else ""


def not_a_source(data: bytes) -> str:
    """Why a document is not a source, for the error message: for JSON that does not parse
    (a manifest cut short), the parser's reason with its line and column."""
    head = data[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return f"XML with root <{_xml_root(head)}>, not ALTO, METS or PAGE"
    if head.startswith((b"{", b"[")):
        text = data.decode("utf-8-sig", errors="replace")
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return json_syntax_error(exc, text)
        except RecursionError:  # well-formed as far as it was read, but no IIIF document is that deep
            pass
        return "JSON that is not a IIIF Presentation manifest or collection"
    return "not XML, JSON, an image or a .txt list"
