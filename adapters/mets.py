"""METS: which image and which ALTO belong to each physical page, plus MODS/DC book metadata.

Implements the parts of METS 1.12 (https://www.loc.gov/standards/mets/docs/mets.v1-9.html)
that link pages to files: ``fileSec`` (``fileGrp`` nested to any depth, ``file@MIMETYPE``,
``FLocat@xlink:href``) and ``structMap TYPE="PHYSICAL"`` (page ``div`` > ``fptr@FILEID`` or
``fptr`` > ``par``/``seq`` > ``area@FILEID``); book metadata comes from MODS 3
(https://www.loc.gov/standards/mods/) ``titleInfo``, ``name``, ``originInfo/dateIssued``,
``language`` or from simple Dublin Core in a ``dmdSec``.

Every institution names its file groups differently (OCR-D-IMG / OCR-D-GT-ALTO, Images / Text,
PreservationMaster / Fulltext, DEFAULT, MAX ...), so a file's role is decided by its
``MIMETYPE`` (``image/*``, ``application/alto+xml``) and, for generic XML, by sniffing group
names and file names — never by a fixed ``USE`` value. A page's layout file is its ALTO, or
failing that its PAGE XML or an XML file of unknown kind, which sources.py sniffs on loading. Element names are matched by local name,
so ``mets:``, ``METS:`` and default-namespace documents read alike (and the wrong xlink namespace
of docWORKS files does not matter).

Pure: hrefs are resolved against the METS location (uris.resolve: ``file://./`` and relative
hrefs from its folder or URL) but not checked; sources.py checks that files exist. MPEG-21
DIDL and BnF refNum are recognised and refused with a clear SourceError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple

from bookidx.errors import SourceError

from .records import IMAGE_EXTENSIONS, Book, Problem, Report, non_negative_int
from .uris import resolve
from .xml import local, parse_xml


class MetsPage(NamedTuple):
    """One physical page: its position, METS div ID, label and resolved file locations.

    ``alto`` is the page's layout file: its ALTO, or failing that a PAGE or otherwise unnamed
    XML file, which the caller sniffs when it loads it.
    """

    order: int
    page_id: str
    label: str
    image: str | None
    alto: str | None


@dataclass(frozen=True)
class MetsInfo:
    book: Book
    pages: tuple[MetsPage, ...]


_ALTO_HINT = re.compile(r"alto|fulltext|full_text|ocr|text", re.I)
_OTHER_XML_HINT = re.compile(r"tei|hocr|mods|mix|premis", re.I)
_PAGE_HINT = re.compile(r"(?<![a-z])page(?![a-z])", re.I)
_THUMB_HINT = re.compile(r"thumb|min\b|small|preview|icon|target", re.I)
_BEST_HINT = re.compile(r"max|master|original|archive|preservation", re.I)
_LAYOUT_RANK = {"alto": 3, "page": 2, "xml": 1}
_AUTHOR_ROLES = {"aut", "cre", "author", "creator", "verfasser", "auteur"}


def read_mets(data: bytes, *, source: str, report: Report | None = None) -> MetsInfo:
    """Link every physical page of a METS document to its image and its ALTO.

    Args:
        data: the METS document's bytes.
        source: its path or URL; relative and ``file://./`` hrefs are resolved against it.
        report: receives a :class:`Problem` for pages without an image, unknown FILEIDs, etc.

    Raises:
        SourceError: not XML, not METS (DIDL and refNum are named), or no pages at all.
    """
    root = parse_xml(data, source, report)
    say = report or (lambda problem: None)
    name = local(root.tag)
    if name == "DIDL":
        raise SourceError("MPEG-21 DIDL container is not supported; index its ALTO and image "
                          "files (or a folder of them) instead", source)
    if name == "refNum":
        raise SourceError("BnF refNum descriptor is not supported; index the ALTO folder (X/) "
                          "beside it instead", source)
    if name != "mets":
        raise SourceError(f"not a METS document (root element <{name}>)", source)
    files = _files(root, source)
    pages = _pages(root, files, source, say)
    if not pages:
        raise SourceError("METS lists no physical pages with an image or ALTO", source)
    return MetsInfo(_book(root, source), tuple(pages))


def _files(root, source: str) -> dict[str, tuple[str, str]]:
    """FILE ID -> (role "image" | "alto" | "", resolved href) for every file in the fileSec."""
    files: dict[str, tuple[str, str]] = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or local(el.tag) != "file":
            continue
        href = next((_href(loc) for loc in el if isinstance(loc.tag, str)
                     and local(loc.tag) == "FLocat" and _href(loc)), "")
        uses = " ".join(g.get("USE", "") + " " + g.get("ID", "")
                        for g in el.iterancestors() if local(g.tag) == "fileGrp")
        files[el.get("ID", "")] = (_role(el.get("MIMETYPE", ""), uses, href), resolve(href, source, encoded=True) if href else "")
    return files


def _href(flocat) -> str:
    # xlink:href, whatever namespace the document bound "xlink" to (docWORKS uses a wrong one)
    return next((v for k, v in flocat.attrib.items() if local(k) == "href"), "").strip()


def _role(mimetype: str, uses: str, href: str) -> str:
    """"image", "alto", "page" (PAGE XML), "xml" (XML of unknown kind) or "" (anything else)."""
    mimetype = mimetype.lower().strip()
    name = href.rsplit("/", 1)[-1].lower()
    if mimetype.startswith("image/") or (not mimetype and name.endswith(IMAGE_EXTENSIONS)):
        return "image"
    if "alto" in mimetype:
        return "alto"
    if "prima.page" in mimetype:
        return "page"
    if mimetype in ("text/xml", "application/xml") or (not mimetype and name.endswith(".xml")):
        if "alto" in name or "alto" in uses.lower():
            return "alto"
        if _PAGE_HINT.search(uses + " " + name):
            return "page"
        return "alto" if _ALTO_HINT.search(uses) and not _OTHER_XML_HINT.search(uses) else "xml"
    return ""


def _pages(root, files: dict[str, tuple[str, str]], source: str, say: Report) -> list[MetsPage]:
    maps = [el for el in root.iter() if isinstance(el.tag, str) and local(el.tag) == "structMap"]
    physical = [m for m in maps if m.get("TYPE", "").upper() == "PHYSICAL"] or maps[:1]
    if not physical:
        say(Problem(source, "structMap", "no PHYSICAL structMap; pairing images and ALTO by order"))
        return _pages_by_order(files)
    divs = [d for d in physical[0].iter() if isinstance(d.tag, str) and local(d.tag) == "div"]
    page_divs = [d for d in divs if d.get("TYPE", "").lower() == "page"]
    if not page_divs:  # untyped: the innermost divs that point at files
        page_divs = [d for d in divs if _file_ids(d) and not any(
            local(c.tag) == "div" for c in d if isinstance(c.tag, str))]
    pages = []
    for position, div in enumerate(page_divs, start=1):
        where = f"structMap div {div.get('ID', position)}"
        image = alto = None
        for file_id in _file_ids(div):
            if file_id not in files:
                say(Problem(source, where, f"FILEID {file_id} is not in the fileSec"))
                continue
            role, href = files[file_id]
            if role == "image" and href and (image is None or _better(file_id, image, files)):
                image = file_id
            elif role in _LAYOUT_RANK and href and (
                    alto is None or _LAYOUT_RANK[role] > _LAYOUT_RANK[files[alto][0]]):
                alto = file_id
        if image is None and alto is None:
            say(Problem(source, where, "page has no image and no ALTO; skipped"))
            continue
        order = non_negative_int(div.get("ORDER")) or position
        label = div.get("ORDERLABEL") or div.get("LABEL") or ""
        pages.append(MetsPage(order, div.get("ID", f"page{order}"), label,
                              files[image][1] if image else None, files[alto][1] if alto else None))
    return pages


def _file_ids(div) -> list[str]:
    """FILEIDs under a div, in document order: fptr@FILEID and area@FILEID (in par/seq too)."""
    ids: list[str] = []
    for el in div.iter():
        if isinstance(el.tag, str) and local(el.tag) in ("fptr", "area"):
            for file_id in el.get("FILEID", "").split():
                if file_id not in ids:
                    ids.append(file_id)
    return ids


def _better(candidate: str, current: str, files: dict[str, tuple[str, str]]) -> bool:
    """Whether one image file of a page is a better source than another (masters over thumbnails)."""
    def rank(file_id: str) -> int:
        text = file_id + " " + files[file_id][1]
        return -1 if _THUMB_HINT.search(text) else 1 if _BEST_HINT.search(text) else 0
    return rank(candidate) > rank(current)


def _pages_by_order(files: dict[str, tuple[str, str]]) -> list[MetsPage]:
    images = [href for role, href in files.values() if role == "image" and href]
    altos = [href for role, href in files.values() if role == "alto" and href]
    paired = altos if len(altos) == len(images) else [None] * len(images)
    return [MetsPage(i, f"page{i}", "", image, alto)
            for i, (image, alto) in enumerate(zip(images, paired), start=1)]


def _book(root, source: str) -> Book:
    """Book metadata from the dmdSecs that describe the whole object (not its articles)."""
    sections = {d.get("ID", ""): d for d in root.iter()
                if isinstance(d.tag, str) and local(d.tag) == "dmdSec"}
    chosen = [sections[i] for i in _book_dmd_ids(root) if i in sections]
    records = chosen or list(sections.values())[:1]
    fields: dict[str, list[str]] = {}
    for section in records:
        for key, values in _describe(section).items():
            fields.setdefault(key, []).extend(v for v in values if v not in fields.get(key, []))

    def first(key: str) -> str:
        return next(iter(fields.get(key, [])), "")

    ident = root.get("OBJID") or first("identifier") or source
    metadata = tuple((k, v) for k in ("publisher", "place", "identifier") for v in fields.get(k, []))
    return Book(ident, first("title"), "; ".join(fields.get("creator", [])[:3]),
                first("date"), first("language"), metadata)


def _book_dmd_ids(root) -> list[str]:
    """DMDIDs of the object itself, most specific first: the top of the logical structMap down
    its single-child chain (newspaper > volume > issue), then the physical root div."""
    found: list[str] = []
    for smap in (el for el in root.iter() if isinstance(el.tag, str) and local(el.tag) == "structMap"):
        divs = [c for c in smap if isinstance(c.tag, str) and local(c.tag) == "div"]
        chain: list[str] = []
        while len(divs) == 1:
            chain = divs[0].get("DMDID", "").split() + chain
            if smap.get("TYPE", "").upper() != "LOGICAL":
                break
            divs = [c for c in divs[0] if isinstance(c.tag, str) and local(c.tag) == "div"]
        found += [i for i in chain if i not in found]
    return found


def _describe(section) -> dict[str, list[str]]:
    """title/creator/date/language/publisher/place/identifier values from MODS or DC."""
    out: dict[str, list[str]] = {}

    def add(key: str, value: str | None) -> None:
        value = " ".join((value or "").split())
        if value:
            out.setdefault(key, []).append(value)

    for el in _own(section):
        name = local(el.tag)
        if name == "titleInfo" and not el.get("type"):
            add("title", " ".join(_text(c) for c in el if local(c.tag) in ("nonSort", "title")))
        elif name == "name" and _is_author(el):
            display = [_text(c) for c in el if local(c.tag) == "displayForm"]
            parts = {c.get("type", ""): _text(c) for c in el if local(c.tag) == "namePart"}
            family, given = parts.pop("family", ""), parts.pop("given", "")
            add("creator", display[0] if display else ", ".join(
                p for p in (family, given, *parts.values()) if p))
        elif name == "originInfo" and el.get("eventType", "").lower() != "digitization":
            for c in el:
                key = {"dateIssued": "date", "publisher": "publisher"}.get(local(c.tag))
                if key and (key != "date" or c.get("point") != "end"):
                    add(key, _text(c))
                elif local(c.tag) == "place":
                    add("place", _text(c))
        elif name == "languageTerm" or (name == "language" and not len(el)):
            add("language", _text(el))
        elif name in ("recordIdentifier", "identifier"):
            add("identifier", _text(el))
        elif name in ("title", "creator", "date") and el.getparent() is not None \
                and local(el.getparent().tag) in ("dc", "xmlData", "record"):  # Dublin Core
            add(name, _text(el))
    return out


def _own(section) -> Iterable:
    """Descendant elements that describe the object, skipping MODS relatedItem (series, host)."""
    stack = [section]
    while stack:
        el = stack.pop()
        for child in reversed(el):
            if isinstance(child.tag, str) and local(child.tag) != "relatedItem":
                stack.append(child)
        if el is not section:
            yield el


def _is_author(name_el) -> bool:
    roles = [_text(r).lower() for r in name_el.iter() if isinstance(r.tag, str)
             and local(r.tag) == "roleTerm"]
    return not roles or any(r in _AUTHOR_ROLES for r in roles)


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split())
