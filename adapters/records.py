"""The records every adapter yields: one region type, in page-image pixel coordinates.

A :class:`Region` is one picture on one page. Its :class:`Box` is always in the pixel space of
the page *image* (``Page.image``), never in ALTO units or canvas units, so a crop needs no
further conversion. Canvas coordinates (for IIIF annotations, Presentation API 3.0 §5.3
"Canvas") are derived with :meth:`Region.canvas_box`.

All records are frozen dataclasses made of plain values, so they hash, compare, pickle across
worker processes and round-trip through JSON (:meth:`Region.to_dict` / :meth:`Region.from_dict`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

# Beyond any real scan (JPEG stops at 65535 px, TIFF at 2**32): larger sizes and coordinates are
# garbage, and 1e308 scaled up (or 1e400 in JSON) is infinity, which no integer box can hold.
MAX_PIXELS = 2**31
# File name endings of the page images bookidx reads (JPEG, JPEG 2000, TIFF, PNG, GIF, WebP).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jp2", ".j2k", ".jpf", ".tif", ".tiff", ".png", ".gif",
                    ".webp")


def non_negative_int(value: Any) -> int:
    """A size, coordinate or count as a document states it: a non-negative integer (floats and
    numeric strings rounded), 0 for anything unusable (missing, text, negative, beyond
    :data:`MAX_PIXELS`, NaN, infinity)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: ints beyond a double
        return 0
    return max(0, round(number)) if abs(number) <= MAX_PIXELS else 0


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle: x, y of the top-left corner, width and height, in integers."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def from_edges(cls, x0: float, y0: float, x1: float, y1: float) -> "Box | None":
        """The box between these edges, each rounded to the nearest pixel (so boxes that touch
        still touch); None when an edge is not a number within :data:`MAX_PIXELS` (garbage in the
        file, or infinity or NaN once scaled)."""
        if not all(abs(edge) <= MAX_PIXELS for edge in (x0, y0, x1, y1)):  # also false for NaN
            return None
        left, top = round(x0), round(y0)
        return cls(left, top, round(x1) - left, round(y1) - top)

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def aspect(self) -> float:
        """Long side over short side (>= 1); infinite for a degenerate box."""
        short = min(self.w, self.h)
        return float("inf") if short <= 0 else max(self.w, self.h) / short

    def scale(self, sx: float, sy: float) -> "Box":
        """Scale by sx, sy, rounding outwards-then-nearest so edges stay on whole pixels."""
        x0, y0 = round(self.x * sx), round(self.y * sy)
        x1, y1 = round((self.x + self.w) * sx), round((self.y + self.h) * sy)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def clip(self, width: int, height: int) -> "Box | None":
        """The part inside a width x height page, or None when nothing of it is inside.

        A width or height of 0 means "unknown" and leaves that axis unclipped (but >= 0).
        """
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = self.x + self.w, self.y + self.h
        if width > 0:
            x1 = min(x1, width)
        if height > 0:
            y1 = min(y1, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0)

    def offset(self, dx: int, dy: int) -> "Box":
        """The same box moved by dx, dy."""
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def intersect(self, other: "Box") -> "Box | None":
        """The part of this box inside ``other``, or None when they do not overlap."""
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.x + self.w, other.x + other.w), min(self.y + self.h, other.y + other.h)
        return Box(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None

    def xywh(self) -> str:
        """The ``x,y,w,h`` form used by IIIF regions and media fragments (``#xywh=``)."""
        return f"{self.x},{self.y},{self.w},{self.h}"


@dataclass(frozen=True)
class ImageRef:
    """Where a page's pixels are.

    Exactly one of ``path`` (a local file), ``service`` (a IIIF Image API service id, no
    trailing slash, with its major ``api`` version 1, 2 or 3) or ``url`` (a static image file
    on the web) is normally set. ``width``/``height`` are the full image's pixel size, 0 when
    not known (then IIIF info.json or the file header tells).
    """

    width: int = 0
    height: int = 0
    path: str | None = None
    service: str | None = None
    api: int | None = None
    url: str | None = None

    @property
    def uri(self) -> str:
        """A stable identity for the image, used in region keys."""
        return self.service or self.url or self.path or ""


@dataclass(frozen=True)
class Book:
    """Book-level (or issue-level) metadata, as far as the source gives it."""

    id: str
    title: str = ""
    creator: str = ""
    date: str = ""
    language: str = ""
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Page:
    """One page (IIIF canvas, METS physical div, ALTO Page, or a lone image file).

    ``width``/``height`` are the page's own coordinate space: the canvas size for IIIF, the
    image size otherwise. ``manifest`` is the IIIF manifest id when the page came from one.

    How the image lies on a IIIF canvas (Presentation 3.0 §3 "SpecificResource", §5.3
    "Canvas"): ``image_box`` is the part of the image, in image pixels, that the canvas shows
    (an ``ImageApiSelector`` region or an ``xywh`` fragment of the painted resource); ``target``
    is where on the canvas, in canvas units, it is painted (the painting annotation's
    ``#xywh=`` target). None: all of the image, all of the canvas.
    """

    id: str
    index: int
    image: ImageRef
    width: int = 0
    height: int = 0
    label: str = ""
    manifest: str | None = None
    image_box: Box | None = None
    target: Box | None = None


@dataclass(frozen=True)
class Region:
    """One illustration (or other picture) on one page, ready to crop and embed."""

    page: Page
    box: Box
    kind: str
    block_id: str = ""
    caption: str = ""
    context: str = ""
    book: Book | None = None
    source: str = ""
    tags: tuple[str, ...] = ()

    @property
    def key(self) -> int:
        """A stable 63-bit key: the same image and box give the same key on every run."""
        ident = f"{self.page.image.uri}#xywh={self.box.xywh()}".encode("utf-8")
        return int.from_bytes(hashlib.blake2b(ident, digest_size=8).digest(), "big") >> 1

    def canvas_box(self) -> Box:
        """The box in the page's (canvas) coordinates, for ``#xywh=`` annotation targets.

        The part of the image the page shows (``Page.image_box``) is mapped onto where the
        canvas paints it (``Page.target``) and the result clipped to that; a box with nothing
        there (beyond the image, or thinner than a canvas unit) comes back empty (0x0) at the
        nearest point of it. Without the sizes to map it the box is returned as it is.
        """
        page, img = self.page, self.page.image
        shown = page.image_box or (Box(0, 0, img.width, img.height) if img.width and img.height else None)
        target = page.target or (Box(0, 0, page.width, page.height) if page.width and page.height else None)
        if shown is None or target is None or shown == target or shown.w <= 0 or shown.h <= 0:
            return self.box
        box = self.box.offset(-shown.x, -shown.y).scale(target.w / shown.w, target.h / shown.h)
        box = box.offset(target.x, target.y)
        inside = box.intersect(target)
        if inside is not None:
            return inside
        x = min(max(box.x, target.x), target.x + target.w)
        y = min(max(box.y, target.y), target.y + target.h)
        return Box(x, y, 0, 0)

    def with_(self, **changes: Any) -> "Region":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["key"] = self.key
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Region":
        page = dict(d["page"])
        page["image"] = ImageRef(**page["image"])
        for name in ("image_box", "target"):  # absent from regions stored before they existed
            page[name] = Box(**page[name]) if page.get(name) else None
        book = d.get("book")
        if book is not None:
            book = dict(book)
            book["metadata"] = tuple(tuple(kv) for kv in book.get("metadata", ()))
            book = Book(**book)
        return cls(
            page=Page(**page),
            box=Box(**d["box"]),
            kind=d["kind"],
            block_id=d.get("block_id", ""),
            caption=d.get("caption", ""),
            context=d.get("context", ""),
            book=book,
            source=d.get("source", ""),
            tags=tuple(d.get("tags", ())),
        )


@dataclass(frozen=True)
class Problem:
    """Something wrong in a source that was skipped rather than fatal (a bad block, a quirk).

    ``where`` names the element, line or field (``"line 12: GraphicalElement GE3 HPOS"``).
    """

    source: str
    where: str
    message: str

    def __str__(self) -> str:
        loc = f"{self.source}: {self.where}" if self.where else self.source
        return f"{loc}: {self.message}"


# Parsers report skipped items through a callback so callers decide: log, count, or collect.
Report = Callable[[Problem], None]


@dataclass(frozen=True)
class RegionFilter:
    """Which picture-like blocks are kept. ALTO tags rules and specks as pictures too.

    ``max_aspect``: drop separator rules (long side / short side at or above this).
    ``min_side``: drop boxes whose short side is under this many image pixels.
    ``min_area_frac``: drop boxes smaller than this fraction of the page image.

    The aspect limit is set by what the corpus shows. Pictures are far less elongated than the
    rules printed between a title and the text: of NLN's labelled regions (CHR24, 2000 boxes),
    the most elongated "Illustration or photograph" is 14.5 (1367x94), "Graphical element"
    (ornaments, headpieces) 17.8 and "Musical notation" 21.0 (one staff across the page); BnF's
    La Croix ornament is 11.4 (775x68), the Europeana newspaper masthead 10.0. The rules the
    OCR-D Kant pages tag as GraphicalElement are 25.3 to 48.8 (785x31, 801x29, 780x16), too thick
    for ``min_side``, as are NLN's "Segmentation anomaly" rules (634x24, 827x17). 24 lies between.
    """

    max_aspect: float = 24.0
    min_side: int = 16
    min_area_frac: float = 0.0005
    kinds: frozenset[str] = field(default_factory=frozenset)  # empty: all kinds

    def reason(self, region: Region) -> str | None:
        """Why this region is filtered out, or None to keep it."""
        b = region.box
        if self.kinds and region.kind not in self.kinds:
            return f"kind {region.kind} not selected"
        if b.aspect >= self.max_aspect:
            return f"separator (aspect {b.aspect:.0f} >= {self.max_aspect:g})"
        if min(b.w, b.h) < self.min_side:
            return f"too small ({b.w}x{b.h} px < {self.min_side} px)"
        img = region.page.image
        if img.width and img.height and b.area < self.min_area_frac * img.width * img.height:
            return f"too small ({b.area / (img.width * img.height):.5f} of the page)"
        return None
