"""ALTO: the picture blocks of each page, in page-image pixels, with caption and context text.

Implements the layout part of ALTO 1.x–4.x (https://www.loc.gov/standards/alto/, schema
documentation for 4.4 §"Layout"): ``Layout/Page`` > ``TopMargin``/``LeftMargin``/
``RightMargin``/``BottomMargin``/``PrintSpace`` > blocks, where ``ComposedBlock`` nests further
blocks. Pictures are ``Illustration``, ``GraphicalElement`` and ``ComposedBlock TYPE=
"Illustration"`` (how docWORKS marks pictures; its OCR'd TextBlocks are picture noise and are
neither caption nor context). ``TAGREFS`` are resolved to the ``LABEL`` of ``Tags/*`` entries.

Elements are matched by local name, so the CCS 1.x namespace, ``ns-v2#``..``ns-v4#``, the BnF
``alto_prod`` dialect, no namespace and a prefixed root read alike.

Units (``Description/MeasurementUnit``): ``pixel``, ``mm10`` (1/10 mm) or ``inch1200``. The scan
resolution is not in ALTO and image dpi tags lie (LSU's JPEGs say 72 for a 300 dpi scan), so
when the page image size is known each axis is scaled by image size / ``Page@WIDTH``/``HEIGHT``,
which also fixes pixel ALTO made on a differently sized image (KB: exactly half). Only without
an image size does ``dpi`` apply. Boxes are rounded to whole pixels and clipped to the image.

Bad coordinates (non-numeric such as ``HEIGHT="1999;x_wconf"``, negative sizes, NaN, or beyond
2**31 pixels once scaled) skip that block with a :class:`Problem` naming the line and attribute;
they never fail the file. No :class:`RegionFilter` is applied: callers count what they filter.
A page without picture blocks is no problem (most pages have none), so it is only logged, at
DEBUG (``bookidx -vv``), naming the other ``ComposedBlock`` types it has: docWORKS marks
newspaper advertisements ``TYPE="Advertisement"``, and those are text (LSU 1923: the OCR'd
words of the ad), not pictures, unless they hold an ``Illustration`` of their own.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import replace

from bookidx.errors import SourceError

from .records import MAX_PIXELS, Book, Box, ImageRef, Page, Problem, Region, Report
from .text import Block, Picture, picture_regions
from .xml import local, parse_xml

_PER_INCH = {"pixel": None, "mm10": 254.0, "inch1200": 1200.0}
_PICTURES = ("Illustration", "GraphicalElement")
_PICTURE_TYPES = {"illustration"}  # ComposedBlock@TYPE values that mean "a picture"
_CONTAINERS = {"TopMargin", "LeftMargin", "RightMargin", "BottomMargin", "PrintSpace"}
_BOX = ("HPOS", "VPOS", "WIDTH", "HEIGHT")

log = logging.getLogger(__name__)


def read_alto(data: bytes, *, source: str, page: Page | None = None, book: Book | None = None,
              report: Report | None = None, dpi: float = 300.0) -> list[Region]:
    """Every picture block of an ALTO file, as regions in page-image pixels.

    Args:
        data: the ALTO document's bytes.
        source: its path or URL; names it in Problems and errors and is each region's
            ``source``. A local path also locates ``sourceImageInformation/fileName``.
        page: the page this ALTO describes (from IIIF or METS). Its image size, when known,
            sets the scale. With several ``<Page>`` elements each gets id
            ``"{page.id}#{PageID}"`` and index ``page.index + n``. Without it a page is built
            per ``<Page>``: id ``"{source}#{PageID}"``, image next to the ALTO if present, size
            from the ALTO page size.
        book: attached to every region.
        report: receives a :class:`Problem` for each skipped block and repaired quirk.
        dpi: scan resolution for ``mm10``/``inch1200`` when the image size is unknown.

    Returns:
        One region per picture block in document order (identical boxes once), unfiltered.

    Raises:
        SourceError: the bytes are not well-formed XML or the root is not ``alto``.
    """
    say = report or (lambda problem: None)
    root = parse_xml(data, source, say)
    if local(root.tag) != "alto":
        raise SourceError(f"not an ALTO document (root element <{local(root.tag)}>)", source)
    per_inch = _unit(root, source, say)
    tags = {el.get("ID"): el.get("LABEL") or el.get("ID") for el in _children(root, "Tags")}
    image_path = _image_path(root, source)
    pages = [el for el in _children(root, "Layout") if local(el.tag) == "Page"]
    regions: list[Region] = []
    for n, el in enumerate(pages):
        size = _page_size(el, source, say)
        record = _page_record(el, n, len(pages), page, size, per_inch, dpi, source, image_path)
        sx, sy = _scale(record.image, size, per_inch, dpi, el, source, say)
        regions.extend(_page_regions(el, record, sx, sy, book, tags, source, say))
    return regions


def _children(el, name: str):
    return (c for parent in el if local(parent.tag) == name for c in parent)


def _unit(root, source: str, say: Report) -> float | None:
    """Units per inch of the document's coordinates; None for pixels."""
    unit_el = next((c for d in root if local(d.tag) == "Description"
                    for c in d if local(c.tag) == "MeasurementUnit"), None)
    unit = (unit_el.text or "").strip().lower() if unit_el is not None else "pixel"
    if unit not in _PER_INCH:
        say(Problem(source, f"line {unit_el.sourceline}: MeasurementUnit",
                    f"unknown unit {unit!r}; read as pixel"))
        return None
    return _PER_INCH[unit]


def _image_path(root, source: str) -> str | None:
    name = next((el.text for el in root.iter("{*}fileName") if el.text), "")
    return find_image(source, name)


def find_image(source: str, name: str) -> str | None:
    """The local image file a layout file names, or None when it is not there.

    ``name`` is what the OCR workstation wrote: a relative path, a Windows or UNC path, or a URL.
    Its trailing path parts are tried (up to three) next to a local ``source`` and one folder
    up, where OCR-D workspaces keep ``OCR-D-IMG/`` beside ``OCR-D-GT-PAGE/``.
    """
    name = name.strip().replace("\\", "/")
    if not name or "://" in source:
        return None
    if name.startswith("file://"):
        name = name[len("file://"):]
    parts = [p for p in name.split("/") if p and p not in (".", "..")]
    folder = os.path.dirname(source)
    for base in (folder, os.path.dirname(folder)):
        for n in range(min(3, len(parts)), 0, -1):
            path = os.path.join(base, *parts[-n:])
            if os.path.isfile(path):
                return path
    return None


def _page_size(el, source: str, say: Report) -> tuple[float, float] | None:
    """``Page@WIDTH``/``HEIGHT`` in ALTO units, or None when either is missing or bad."""
    values = []
    for attr in ("WIDTH", "HEIGHT"):
        value = _number(el.get(attr))
        if value is None or not 0 < value <= MAX_PIXELS:
            say(Problem(source, f"line {el.sourceline}: Page {el.get('ID', '')} {attr}",
                        f"page size {el.get(attr)!r} is not a positive number; "
                        "scaling by unit and dpi instead"))
            return None
        values.append(value)
    return values[0], values[1]


def _page_record(el, n: int, count: int, page: Page | None, size, per_inch: float | None,
                 dpi: float, source: str, image_path: str | None) -> Page:
    page_id = el.get("ID") or f"p{n + 1}"
    if page is not None:
        if count == 1:
            return page
        return replace(page, id=f"{page.id}#{page_id}", index=page.index + n)
    factor = 1.0 if per_inch is None else dpi / per_inch
    w, h = (round(size[0] * factor), round(size[1] * factor)) if size else (0, 0)
    return Page(id=f"{source}#{page_id}", index=n, image=ImageRef(w, h, path=image_path),
                width=w, height=h, label=el.get("PRINTED_IMG_NR", ""))


def _scale(image: ImageRef, size, per_inch: float | None, dpi: float, el, source: str,
           say: Report) -> tuple[float, float]:
    """ALTO units to image pixels, per axis (see the module docstring)."""
    if size and image.width and image.height:
        sx, sy = image.width / size[0], image.height / size[1]
        if abs(sx / sy - 1) > 0.03:
            say(Problem(source, f"line {el.sourceline}: Page {el.get('ID', '')}",
                        f"image {image.width}x{image.height} and ALTO page {size[0]:g}x"
                        f"{size[1]:g} differ in shape; wrong image?"))
        return sx, sy
    factor = 1.0 if per_inch is None else dpi / per_inch
    return factor, factor


def _page_regions(page_el, page: Page, sx: float, sy: float, book: Book | None,
                  tags: dict, source: str, say: Report) -> list[Region]:
    text_els = []
    pictures: list[Picture] = []
    for el, kind, in_picture in _blocks(page_el, False):
        if kind == "TextBlock":
            if not in_picture:
                text_els.append(el)
            continue
        box = _box(el, kind, sx, sy, source, say)
        if box is not None:
            refs = (el.get("TAGREFS") or "").split()
            pictures.append(Picture(box, kind, el.get("ID", ""), tuple(tags.get(r, r) for r in refs),
                                    f"line {el.sourceline}: {kind} {el.get('ID', '')}"))

    if not pictures:
        _no_pictures(page_el, source)

    def texts() -> list[Block]:
        return [Block(box, _block_text(el)) for el in text_els
                if (box := _box(el, "TextBlock", sx, sy, source, say)) is not None]

    return picture_regions(page, pictures, texts, book=book, source=source, say=say)


def _no_pictures(page_el, source: str) -> None:
    """Say (at DEBUG: ``bookidx -vv``) that a page has no picture blocks, and which other composed
    blocks it has. Not INFO: a newspaper run has many such pages, a line each amid the progress bar."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    types = Counter((el.get("TYPE") or "").strip() for el in page_el.iter("{*}ComposedBlock"))
    others = ", ".join(f"{n} ComposedBlock TYPE={t!r}" for t, n in sorted(types.items()) if t)
    page = f"page {page_el.get('ID')}: " if page_el.get("ID") else ""
    log.debug("%s: %sno picture blocks (Illustration, GraphicalElement, ComposedBlock TYPE='Illustration')%s",
              source, page, f"; not taken as pictures: {others}" if others else "")


def _blocks(parent, in_picture: bool):
    """(element, kind, inside a picture ComposedBlock) for every block below ``parent``."""
    for el in parent:
        name = local(el.tag)
        if name == "TextBlock" or name in _PICTURES:
            yield el, name, in_picture
        elif name == "ComposedBlock":
            picture = (el.get("TYPE") or "").strip().lower() in _PICTURE_TYPES
            if picture:
                yield el, name, in_picture
            yield from _blocks(el, in_picture or picture)
        elif name in _CONTAINERS:
            yield from _blocks(el, in_picture)


def _box(el, kind: str, sx: float, sy: float, source: str, say: Report) -> Box | None:
    """The block's box in image pixels, or None (with a Problem) when its attributes are bad."""
    x, y, w, h = (_number(el.get(a)) for a in _BOX)
    for attr, value in zip(_BOX, (x, y, w, h)):
        bad = value is None or (attr in ("WIDTH", "HEIGHT") and value < 0)
        if bad:
            what = "size" if attr in ("WIDTH", "HEIGHT") else "position"
            say(Problem(source, f"line {el.sourceline}: {kind} {el.get('ID', '')} {attr}",
                        f"{el.get(attr)!r} is not a valid {what}; block skipped"))
            return None
    box = Box.from_edges(x * sx, y * sy, (x + w) * sx, (y + h) * sy)
    if box is None:
        say(Problem(source, f"line {el.sourceline}: {kind} {el.get('ID', '')}",
                    f"box {x:g},{y:g},{w:g},{h:g} is out of range once scaled to image pixels; "
                    "block skipped"))
    return box


def _number(raw: str | None) -> float | None:
    """A finite float from an attribute ("15416.0" is fine), or None."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _block_text(block) -> str:
    """A TextBlock's words joined by spaces, hyphenated words rejoined from ``SUBS_CONTENT``."""
    words: list[str] = []
    joined = False  # the previous HypPart1 already gave the whole word
    for s in block.iter("{*}String"):
        subs = s.get("SUBS_TYPE")
        if subs == "HypPart1" and s.get("SUBS_CONTENT"):
            words.append(s.get("SUBS_CONTENT"))
            joined = True
            continue
        if subs == "HypPart2" and joined:
            joined = False
            continue
        joined = False
        content = s.get("CONTENT")
        if content:
            words.append(content)
    return " ".join(" ".join(words).split())
