"""Safe XML parsing for every XML source (ALTO, PAGE, METS), with real-world byte quirks repaired.

Parses with lxml under the settings the lxml FAQ recommends for untrusted input
(https://lxml.de/FAQ.html#how-do-i-use-lxml-safely-as-a-web-service-endpoint): no entity
resolution, no network, no DTD loading, libxml2's default size limits (``huge_tree=False``).
A document that *declares* entities (``<!DOCTYPE x [<!ENTITY ...>]>``) is refused outright:
libxml2 expands internal entities inside attribute values whatever ``resolve_entities`` says, and
no library file needs them, so refusing is the only choice that cannot be tricked (XXE, "billion
laughs").

Repairs, each reported as a :class:`Problem` and never silent (XML 1.0 §2.8 "Prolog", §4.3.3
"Character Encoding in Entities", Appendix F "Autodetection of Character Encodings"):

* blank lines before ``<?xml`` (the declaration must be the first bytes);
* a second XML declaration straight after the first (NLN ``testAlto.raw.xml``);
* a UTF-8 byte order mark with a different declared encoding: the BOM wins (BnF La Croix
  declares ``iso-8859-1`` over UTF-8 bytes); likewise a Latin-1 declaration over bytes that are
  valid, non-ASCII UTF-8;
* bytes that are not UTF-8 in a document declared (or defaulting to) UTF-8: read as Windows-1252.

Repairs keep every element on its original line, so ``sourceline`` in Problems matches the file.
"""

from __future__ import annotations

import re
import threading

from bookidx.errors import SourceError
from lxml import etree

from .records import Problem, Report

_BOM8 = b"\xef\xbb\xbf"
_NL = b"\n"
# version/encoding/standalone pseudo-attributes only, so this cannot run past the first "?>"
_DECL = re.compile(rb"<\?xml[ \t\r\n][^?>]*\?>")
_ENCODING = re.compile(rb"""(encoding[ \t\r\n]*=[ \t\r\n]*)(["'])([A-Za-z0-9._-]*)\2""")
_LATIN = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "iso-8859-15", "windows-1252",
          "cp1252", "us-ascii", "ascii"}
_UTF8 = {"utf-8", "utf8"}
_NO_ENTITIES = "entity declarations are not allowed (XXE / entity expansion risk)"
_tls = threading.local()


def local(tag: object) -> str:
    """The local name of an element tag (``{ns}Page``, ``a:Page`` or ``Page`` all give ``Page``).

    Returns "" for comments and processing instructions, whose ``tag`` is not a string.
    """
    if not isinstance(tag, str):
        return ""
    return tag[tag.rfind("}") + 1:] if tag[:1] == "{" else tag


def parse_xml(data: bytes, source: str, report: Report | None = None) -> etree._Element:
    """Parse untrusted XML bytes into an element tree, repairing known encoding quirks.

    Args:
        data: the document's bytes, as read from disk or the network.
        source: its path or URL, named in errors and Problems.
        report: receives one :class:`Problem` per repair made (leading blank lines, duplicated
            declaration, wrong declared encoding).

    Returns:
        The root element. Comments and processing instructions are dropped.

    Raises:
        SourceError: the bytes are not well-formed XML (the message names the line), or the
            document declares entities.
    """
    say = report or (lambda problem: None)
    doctype = data.find(b"<!DOCTYPE")
    # checked before parsing so a billion-laughs document costs nothing; the check after
    # parsing catches the same in encodings this byte search cannot see (UTF-16)
    if doctype >= 0 and data.find(b"<!ENTITY", doctype) >= 0:
        raise SourceError(_NO_ENTITIES, source)
    data = _repair(data, source, say)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or (exc.position[0] if exc.position else 0)
        raise SourceError(f"not well-formed XML at line {line}: {exc.msg or exc}",
                          source) from None
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise SourceError(_NO_ENTITIES, source)
    return root


def _parser() -> etree.XMLParser:
    # lxml advises one parser per thread; the web app and thread pools both parse concurrently
    parser = getattr(_tls, "parser", None)
    if parser is None:
        parser = _tls.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
            remove_comments=True, remove_pis=True)
    return parser


def _repair(data: bytes, source: str, say: Report) -> bytes:
    """Fix the prolog quirks listed in the module docstring; bytes come back otherwise unchanged."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data  # UTF-16/32: libxml2 detects these itself from the BOM
    bom = data.startswith(_BOM8)
    body = data[3:] if bom else data
    stripped = body.lstrip(b" \t\r\n")
    decl = _DECL.match(stripped)
    if decl is None:
        return _fix_encoding(data, bom, None, source, say)
    gap = body[: len(body) - len(stripped)]
    if gap:
        say(Problem(source, "line 1", f"{gap.count(_NL)} blank line(s) before the XML "
                                      "declaration; moved the declaration to the top"))
    rest = stripped[decl.end():]
    second = _DECL.match(rest.lstrip(b" \t\r\n"))
    if second is not None:
        lead = len(rest) - len(rest.lstrip(b" \t\r\n"))
        dup = rest[lead: lead + second.end()]
        line = 1 + gap.count(_NL) + stripped[: decl.end() + lead].count(_NL)
        say(Problem(source, f"line {line}", "duplicated XML declaration; ignored the second"))
        # keep its newlines so the elements below stay on their original lines
        rest = rest[:lead] + _NL * dup.count(_NL) + rest[lead + second.end():]
    # the gap's newlines go after the declaration, again to keep line numbers
    fixed = decl.group(0) + gap.replace(b" ", b"").replace(b"\t", b"") + rest
    return _fix_encoding((_BOM8 if bom else b"") + fixed, bom, decl.group(0), source, say)


def _fix_encoding(data: bytes, bom: bool, decl: bytes | None, source: str, say: Report) -> bytes:
    """Make the declared encoding agree with the bytes (see the module docstring)."""
    m = _ENCODING.search(decl) if decl else None
    declared = m.group(3).decode("ascii").lower() if m else ""
    if declared in _UTF8 or not declared:
        if bom or data.isascii() or _is_utf8(data):
            return data
        say(Problem(source, "line 1", f"bytes are not {declared or 'UTF-8 (the default)'}; "
                                      "read as Windows-1252"))
        text = data.decode("cp1252", errors="replace")
        return _redeclare(text.encode("utf-8"), m)
    if bom:
        say(Problem(source, "line 1", f"UTF-8 byte order mark but encoding=\"{declared}\" "
                                      "declared; read as UTF-8"))
        return _redeclare(data, m)
    if declared in _LATIN and not data.isascii() and _is_utf8(data):
        say(Problem(source, "line 1", f"encoding=\"{declared}\" declared but the bytes are "
                                      "UTF-8; read as UTF-8"))
        return _redeclare(data, m)
    return data


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _redeclare(data: bytes, m: re.Match[bytes] | None) -> bytes:
    """The same bytes with the (first) declaration's encoding set to UTF-8."""
    if m is None:
        return data
    start = data.find(b"<?xml")
    end = data.index(b"?>", start)
    decl = _ENCODING.sub(rb'\1"UTF-8"', data[start:end], count=1)
    return data[:start] + decl + data[end:]
