"""PAGE-XML: the picture regions of a page, in page-image pixels, with caption and context text.

Implements the region part of the PRImA PAGE content schema
(https://github.com/PRImA-Research-Lab/PAGE-XML, ``pagecontent.xsd`` 2010-03-19 to 2019-07-15):
``PcGts/Page@imageFilename/imageWidth/imageHeight`` and, at any nesting depth (2013+ allows
regions inside regions), the picture regions ``ImageRegion``, ``GraphicRegion``, ``MapRegion``
and ``ChartRegion``. Outlines are ``Coords@points`` ("x,y x,y ...", 2013+) or ``Coords/Point@x/y``
children (2009/2010); a region's box is its polygon's bounding box. A region's ``type``
(``GraphicRegion type="stamp"``, ``ChartRegion type="pie"``) becomes its tag.

PAGE coordinates are image pixels of ``imageFilename``; when the caller's page image has
another size (a IIIF derivative) boxes are scaled per axis by image size / ``imageWidth``/
``imageHeight``. Caption and context come from ``TextRegion`` text (``TextEquiv/Unicode`` of
the region, else of its lines, else of its words) by the rules in text.py; PAGE ``Relations``
are not read (the schema gives no fixed relation type for captions).
"""

from __future__ import annotations

import math
from dataclasses import replace

from bookidx.errors import SourceError

from .alto import find_image
from .records import MAX_PIXELS, Book, Box, ImageRef, Page, Problem, Region, Report, non_negative_int
from .text import Block, Picture, picture_regions
from .xml import local, parse_xml

_PICTURES = {"ImageRegion", "GraphicRegion", "MapRegion", "ChartRegion"}


def read_page(data: bytes, *, source: str, page: Page | None = None, book: Book | None = None,
              report: Report | None = None) -> list[Region]:
    """Every picture region of a PAGE-XML file, as regions in page-image pixels.

    Args:
        data: the PAGE document's bytes.
        source: its path or URL; names it in Problems and errors and is each region's
            ``source``. A local path also locates ``imageFilename``.
        page: the page this file describes (from IIIF or METS); its image size, when known,
            sets the scale. Without it a page is built: id ``"{source}#p1"``, image
            ``imageFilename`` when found locally, size ``imageWidth`` x ``imageHeight``.
        book: attached to every region.
        report: receives a :class:`Problem` for each skipped region and repaired quirk.

    Returns:
        One region per picture region in document order (identical boxes once), unfiltered.

    Raises:
        SourceError: the bytes are not well-formed XML or the root is not ``PcGts``.
    """
    say = report or (lambda problem: None)
    root = parse_xml(data, source, say)
    if local(root.tag) != "PcGts":
        raise SourceError(f"not a PAGE document (root element <{local(root.tag)}>)", source)
    pages = [el for el in root if local(el.tag) == "Page"]
    regions: list[Region] = []
    for n, el in enumerate(pages):
        width, height = (non_negative_int(el.get(a)) for a in ("imageWidth", "imageHeight"))
        if not (width and height):
            say(Problem(source, f"line {el.sourceline}: Page imageWidth/imageHeight",
                        f"{el.get('imageWidth')!r} x {el.get('imageHeight')!r} is not a pixel "
                        "size; boxes are not scaled to the page image"))
        record = _page_record(el, n, len(pages), page, width, height, source)
        img = record.image
        sx = img.width / width if img.width and width else 1.0
        sy = img.height / height if img.height and height else 1.0
        regions.extend(_page_regions(el, record, sx, sy, book, source, say))
    return regions


def _page_record(el, n: int, count: int, page: Page | None, width: int, height: int,
                 source: str) -> Page:
    if page is not None:
        return page if count == 1 else replace(page, id=f"{page.id}#p{n + 1}",
                                               index=page.index + n)
    path = find_image(source, el.get("imageFilename", ""))
    return Page(id=f"{source}#p{n + 1}", index=n, image=ImageRef(width, height, path=path),
                width=width, height=height)


def _page_regions(page_el, page: Page, sx: float, sy: float, book: Book | None, source: str,
                  say: Report) -> list[Region]:
    texts: list[Block] = []
    pictures: list[Picture] = []
    for el in page_el.iter():
        name = local(el.tag)
        if name != "TextRegion" and name not in _PICTURES:
            continue
        box = _box(el, name, sx, sy, source, say)
        if box is None:
            continue
        if name == "TextRegion":
            texts.append(Block(box, _text(el)))
        else:
            kind_type = el.get("type")
            pictures.append(Picture(box, name, el.get("id", ""), (kind_type,) if kind_type else (),
                                    f"line {el.sourceline}: {name} {el.get('id', '')}"))
    return picture_regions(page, pictures, lambda: texts, book=book, source=source, say=say)


def _box(el, kind: str, sx: float, sy: float, source: str, say: Report) -> Box | None:
    """Bounding box of the region's outline in image pixels, or None (with a Problem)."""
    coords = next((c for c in el if local(c.tag) == "Coords"), None)
    where = f"line {el.sourceline}: {kind} {el.get('id', '')} Coords"
    if coords is None:
        say(Problem(source, where, "no Coords; region skipped"))
        return None
    points = _points(coords)
    if points is None:
        say(Problem(source, where, f"points {coords.get('points', '')[:60]!r} are not a list of "
                                   "x,y numbers; region skipped"))
        return None
    if len(points) < 2:
        say(Problem(source, where, "fewer than two points; region skipped"))
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    box = Box.from_edges(min(xs) * sx, min(ys) * sy, max(xs) * sx, max(ys) * sy)
    if box is None:
        say(Problem(source, where, f"outline beyond {MAX_PIXELS} pixels once scaled to the "
                                   "page image; region skipped"))
    return box


def _points(coords) -> list[tuple[float, float]] | None:
    """The outline as (x, y) pairs from ``points`` (2013+) or ``Point`` children (2009/2010)."""
    try:
        if coords.get("points") is not None:
            pairs = [p.split(",") for p in coords.get("points").split()]
            points = [(float(x), float(y)) for x, y in pairs]
        else:
            points = [(float(p.get("x")), float(p.get("y")))
                      for p in coords if local(p.tag) == "Point"]
    except (TypeError, ValueError):  # missing x/y, "12;3", a pair without a comma
        return None
    if not all(math.isfinite(v) for p in points for v in p):
        return None
    return points


def _text(region) -> str:
    """The region's text: its own TextEquiv, else its lines', else its words'."""
    own = _equiv(region)
    if own:
        return own
    lines = []
    for line in _kids(region, "TextLine"):
        text = _equiv(line) or " ".join(filter(None, (_equiv(w) for w in _kids(line, "Word"))))
        if text:
            lines.append(text)
    return " ".join(" ".join(lines).split())


def _kids(el, name: str):
    return [c for c in el if local(c.tag) == name]


def _equiv(el) -> str:
    """Text of the element's first TextEquiv (lowest ``index``), whitespace collapsed."""
    equivs = _kids(el, "TextEquiv")
    if not equivs:
        return ""
    first = min(equivs, key=lambda e: non_negative_int(e.get("index")))
    unicode = next((c.text for c in first if local(c.tag) == "Unicode"), None) or ""
    return " ".join(unicode.split())
