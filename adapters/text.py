"""Picture regions of a layout page, with caption and context chosen from its text blocks.

Shared by the ALTO and PAGE-XML readers: they find the picture blocks (:class:`Picture`) and text
blocks (:class:`Block`, a box in page-image pixels and its text) of a page, and
:func:`picture_regions` turns them into regions the same way for both. Pure functions.

Neither format links a picture to its caption (ALTO 4
``Illustration`` and PAGE ``ImageRegion`` carry no caption reference), so the caption is found
by layout:

* **caption**: text printed *inside* the picture's box comes first: blocks in its bottom third,
  one of them at least half the picture's width (a narrower word is an artist's signature,
  Vogue 1920 "VERLAINE"), together form the caption. BnF boxes an illustration with its printed
  caption (La Croix 1903: "PROMESSES" + "de Notre-Seigneur Jésus-Christ" inside the Sacred
  Heart picture). Otherwise the nearest block directly *below* the picture, or *above* it when
  that one is under a third of the distance (below is the convention; running heads sit just
  above pictures). Last resort: blocks inside the picture's top third.
  "Directly" means the two share at least half of the narrower one's width (a centred caption
  is narrower than its picture, a heading may be wider). The gap may be at most 3 % of the page
  height: on the corpus (BnF La Croix and Vogue, the Europeana/SBB newspaper of the IIIF
  cookbook) real captions sit 0.1–2.2 % of the page height away (4–116 px on 5000–7000 px
  pages); a quarter of a page, the usual rule of thumb, attached unrelated text.
  A block over 500 characters is body text, not a caption (the longest captions seen, Vogue
  fashion notes, are about 320). A picture over several text columns (blocks side by side at
  the same distance, none half as wide as the picture) has no single caption on that side:
  newspaper mastheads are the usual case.
* **context**: the text of the blocks nearest the picture (edge-to-edge distance), in reading
  order, up to about 1000 characters, for full-text search around pictures without captions.

Text is kept as the source spells it (long s, the older umlaut with a small e above); the
index folds it for search (bookidx.fts.searchable).
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, Sequence

from .records import Book, Box, Page, Problem, Region, Report

MAX_GAP = 0.03  # of the page height; see the module docstring
MAX_CAPTION = 500  # characters
ABOVE_PENALTY = 3.0  # an above block wins only when under a third of the below one's gap
CONTEXT_LIMIT = 1000  # characters


class Block(NamedTuple):
    """One text block: its box in page-image pixels and its text (words joined by spaces)."""

    box: Box
    text: str


class Picture(NamedTuple):
    """One picture block as a layout file gives it: its box in page-image pixels (not yet
    clipped), kind (element name), block id, tags, and where it is (``"line 12: Illustration
    I3"``) for Problems."""

    box: Box
    kind: str
    block_id: str
    tags: tuple[str, ...]
    where: str


def picture_regions(page: Page, pictures: Iterable[Picture], texts: Callable[[], Sequence[Block]],
                    *, book: Book | None, source: str, say: Report) -> list[Region]:
    """One region per picture of ``page``, clipped to its image, with caption and context.

    A picture wholly outside the image, or outside the part of it a IIIF canvas shows
    (``Page.image_box``), is skipped with a Problem; one partly outside is cut to it. Identical boxes are kept once
    (docWORKS wraps a GraphicalElement in a same-sized picture block). ``texts`` is only called
    when a picture is kept: most pages have none, and reading their text is half the time.
    """
    img_w, img_h = page.image.width, page.image.height
    shown = page.image_box  # a IIIF canvas may show only part of its image
    outside = (f"the {img_w}x{img_h} page image" if shown is None
               else f"the part {shown.xywh()} of the page image that its canvas shows")
    kept: list[tuple[Picture, Box]] = []
    for picture in pictures:
        box = picture.box.clip(img_w, img_h)
        if box is not None and shown is not None:
            box = box.intersect(shown)
        if box is None:
            say(Problem(source, picture.where, f"box {picture.box.xywh()} lies outside {outside}; skipped"))
            continue
        kept.append((picture, box))
    if not kept:
        return []
    blocks = texts()
    height = img_h or max((b.box.y + b.box.h for b in blocks), default=0)
    regions: list[Region] = []
    seen: set[Box] = set()
    for picture, box in kept:
        if box in seen:
            continue
        seen.add(box)
        caption, context = caption_and_context(box, blocks, height)
        regions.append(Region(page=page, box=box, kind=picture.kind, block_id=picture.block_id,
                              caption=caption, context=context, book=book, source=source,
                              tags=picture.tags))
    return regions


def caption_and_context(picture: Box, blocks: Sequence[Block], page_height: int,
                        limit: int = CONTEXT_LIMIT) -> tuple[str, str]:
    """The caption of ``picture`` and the context text around it ("" when there is none).

    The caption's blocks are left out of the context, so the two never repeat each other.
    """
    caption = find_caption(picture, blocks, page_height)
    rest = [b for b in blocks if not any(b is c for c in caption)]
    return " ".join(b.text for b in caption), context_text(picture, rest, limit)


def find_caption(picture: Box, blocks: Sequence[Block], page_height: int) -> list[Block]:
    """The caption blocks of ``picture``, top to bottom, by the module docstring's rules.

    Usually one block; several when the caption is printed inside the picture's frame.
    """
    height = page_height or max((b.box.y + b.box.h for b in blocks), default=0)
    if height <= 0:
        return []
    max_gap = MAX_GAP * height
    tolerance = 0.005 * height  # OCR boxes of a caption may overlap the picture by a few pixels
    p_top, p_bottom = picture.y, picture.y + picture.h
    inner_bottom: list[Block] = []
    inner_top: list[Block] = []
    below: list[tuple[float, Block]] = []
    above: list[tuple[float, Block]] = []
    for block in blocks:
        if not block.text or not _under(picture, block.box):
            continue
        top, bottom = block.box.y, block.box.y + block.box.h
        if _inside(block.box, picture, tolerance):
            if top >= p_top + picture.h * 2 / 3:
                inner_bottom.append(block)
            elif bottom <= p_top + picture.h / 3:
                inner_top.append(block)
        elif len(block.text) > MAX_CAPTION:
            continue
        elif -tolerance <= top - p_bottom <= max_gap:
            below.append((max(top - p_bottom, 0), block))
        elif -tolerance <= p_top - bottom <= max_gap:
            above.append((max(p_top - bottom, 0), block))
    if _short(inner_bottom) and _spans(inner_bottom, picture):
        return _reading_order(inner_bottom)
    best_below = _single(picture, below)
    best_above = _single(picture, above)
    if best_below and best_above:
        return [best_above[1] if best_above[0] * ABOVE_PENALTY < best_below[0] else best_below[1]]
    chosen = best_below or best_above
    if chosen:
        return [chosen[1]]
    return _reading_order(inner_top) if _short(inner_top) and _spans(inner_top, picture) else []


def context_text(picture: Box, blocks: Sequence[Block], limit: int = CONTEXT_LIMIT) -> str:
    """Text of the blocks nearest ``picture``, in reading order, at most ``limit`` characters.

    The farthest block taken is the one cut short (at a word), never a near one.
    """
    chosen: list[Block] = []
    room = limit
    for block in sorted((b for b in blocks if b.text), key=lambda b: _distance(picture, b.box)):
        text = block.text if len(block.text) <= room else _cut(block.text, room)
        if text:
            chosen.append(Block(block.box, text))
        room -= len(text) + 1
        if room <= 0:
            break
    return " ".join(b.text for b in _reading_order(chosen))


def _cut(text: str, size: int) -> str:
    """At most ``size`` characters of ``text``, ending at a word boundary when there is one."""
    if size <= 0:
        return ""
    cut = text.rfind(" ", 0, size + 1)
    return text[: cut if cut > 0 else size].rstrip()


def _short(blocks: list[Block]) -> bool:
    """Whether these blocks are a caption's length (text inside a picture may be OCR noise)."""
    return bool(blocks) and sum(len(b.text) + 1 for b in blocks) <= MAX_CAPTION + 1


def _spans(blocks: list[Block], picture: Box) -> bool:
    """Whether one of the blocks is at least half as wide as the picture.

    Text inside a picture's frame is its caption when it runs across the picture; a narrow
    word in a corner is the artist's signature (Vogue 1920: "VERLAINE").
    """
    return any(b.box.w >= picture.w / 2 for b in blocks)


def _reading_order(blocks: list[Block]) -> list[Block]:
    # top-to-bottom, then left-to-right: the order a reader meets them in a column
    return sorted(blocks, key=lambda b: (b.box.y, b.box.x))


def _inside(box: Box, picture: Box, tolerance: float) -> bool:
    return (box.x >= picture.x - tolerance and box.y >= picture.y - tolerance
            and box.x + box.w <= picture.x + picture.w + tolerance
            and box.y + box.h <= picture.y + picture.h + tolerance)


def _under(picture: Box, box: Box) -> bool:
    """Whether ``box`` and the picture share at least half of the narrower one's width."""
    overlap = min(picture.x + picture.w, box.x + box.w) - max(picture.x, box.x)
    return box.w > 0 and overlap >= 0.5 * min(box.w, picture.w)


def _single(picture: Box, found: list[tuple[float, Block]]) -> tuple[float, Block] | None:
    """The nearest candidate, unless the picture spans columns of text on that side."""
    if not found:
        return None
    found.sort(key=lambda gb: gb[0])
    gap, block = found[0]
    if block.box.w < 0.5 * picture.w:
        band = block.box.h
        for other_gap, other in found[1:]:
            side_by_side = (other.box.x >= block.box.x + block.box.w
                            or other.box.x + other.box.w <= block.box.x)
            if side_by_side and other_gap - gap <= band:
                return None
    return gap, block


def _distance(a: Box, b: Box) -> float:
    """Edge-to-edge distance between two boxes (0 when they touch or overlap)."""
    dx = max(b.x - (a.x + a.w), a.x - (b.x + b.w), 0)
    dy = max(b.y - (a.y + a.h), a.y - (b.y + b.h), 0)
    return (dx * dx + dy * dy) ** 0.5
