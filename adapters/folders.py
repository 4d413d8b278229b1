"""Which files of a folder belong together: layout files paired with their page images.

Used by sources.py for folders and lone layout files. OCR workstations name things every way:
an ALTO names its image in ``sourceImageInformation/fileName`` (ALTO 2.0+ §"Description"), a
PAGE file in ``Page@imageFilename``; either may name a file that has since been renamed or
converted (METS says .jp2, the folder holds .jpg). A layout is paired with an image by the
file name it names, then by its own stem, then by the last number in both names when that
number is unique among the images and among the layouts of that kind. Folders are walked in
natural order (``p2`` before ``p10``), hidden files skipped and symlink cycles cut.

A file named like a source (``.json``, ``.xml``, ``.alto``) that is none is either another kind
of document, which a folder may well hold (metadata, annotations) and is passed over, or
broken (empty, cut short, not JSON or XML at all): :func:`unreadable` says why, with the
parsers' own messages, so the reader can report it instead of indexing the folder without it.
A broken layout file still names its page by its stem (:func:`beside`), and that page is left
out. :func:`classify` sorts a folder's files so, leaving those under a METS file's folder to it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bookidx.errors import SourceError

from .iiif import parse_json
from .records import IMAGE_EXTENSIONS, Problem, Report
from .sniff import not_a_source, sniff
from .xml import parse_xml

LAYOUT_EXTENSIONS = (".xml", ".alto")

_ALTO_FILENAME = re.compile(rb"<(?:\w+:)?fileName>\s*([^<]*?)\s*</", re.S)
_PAGE_FILENAME = re.compile(rb"imageFilename\s*=\s*[\"']([^\"']*)[\"']")


@dataclass(frozen=True)
class Contents:
    """A folder's files by what they are, in natural order."""

    mets: tuple[str, ...]
    #: (path, "alto" or "page", the image file it names) of layouts no METS file claims.
    layouts: tuple[tuple[str, str, str], ...]
    #: Images no METS file claims and no broken layout file beside them holds back.
    images: tuple[str, ...]
    #: IIIF manifests and collections.
    iiif: tuple[str, ...]


def classify(folder: str, read: Callable[[str], bytes | None], say: Report) -> Contents:
    """The METS, layout, image and IIIF files under ``folder``. A METS file says which files of
    its folder (and below) belong together, so those are left to it (it reads them, and reports
    a broken one, once). Other broken files are reported to ``say``; a broken layout file's page
    image is left out with it.

    Args:
        read: a file's bytes, or None when it cannot be read (``read`` has reported why).
    """
    images, layouts, mets, iiif, broken = [], [], [], [], []
    for path in walk(folder):
        lower = path.lower()
        if lower.endswith(IMAGE_EXTENSIONS):
            images.append(path)
        elif lower.endswith(LAYOUT_EXTENSIONS + (".json",)):
            data = read(path)
            if data is None:
                continue
            kind = sniff(data, path)
            if kind in ("alto", "page"):
                layouts.append((path, kind, named_image(data, kind)))
            elif kind == "mets":
                mets.append(path)
            elif kind.startswith("iiif"):
                iiif.append(path)
            elif kind == "unknown" and (why := unreadable(data, path)) is not None:
                broken.append((path, why))
    claimed = tuple(os.path.dirname(path) + os.sep for path in mets)
    images = [p for p in images if not p.startswith(claimed)]
    layouts = [item for item in layouts if not item[0].startswith(claimed)]
    for path, why in [item for item in broken if not item[0].startswith(claimed)]:
        # A broken p1.xml beside p1.jpg leaves that page out, not indexed whole: a later run
        # with the file mended adds the right regions.
        held = beside(path, images) if path.lower().endswith(LAYOUT_EXTENSIONS) else []
        images = [p for p in images if p not in held]
        say(Problem(path, "", f"not a source: {why}; skipped" + "".join(
            f", and its page image {os.path.basename(p)} with it" for p in held)))
    return Contents(tuple(mets), tuple(layouts), tuple(images), tuple(iiif))


def named_image(data: bytes, kind: str) -> str:
    """The image file an ALTO (sourceImageInformation/fileName) or PAGE (imageFilename) names."""
    match = (_ALTO_FILENAME if kind == "alto" else _PAGE_FILENAME).search(data[:262144])
    return match.group(1).decode("utf-8", "replace").strip() if match else ""


def unreadable(data: bytes, path: str) -> str | None:
    """Why a folder's file named like a source, which sniffing found to be none, is broken:
    empty, JSON or XML that does not parse (with line and column, and "cut short?" when it just
    stops), or neither. None for a well-formed document of some other kind."""
    head = data[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return "empty file"
    try:
        if head.startswith((b"{", b"[")):
            parse_json(data, source=path)
        elif head.startswith(b"<") or data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 XML
            parse_xml(data, path)
        else:
            return not_a_source(data)
    except SourceError as exc:
        return exc.detail
    return None


def beside(path: str, images: Sequence[str]) -> list[str]:
    """The images in the folder of ``path`` with its stem (``p1.xml``: ``p1.jpg``, ``p1.tif``)."""
    stem = os.path.splitext(path)[0].lower()
    return [p for p in images if os.path.splitext(p)[0].lower() == stem]


def match_layouts(layouts: Sequence[tuple[str, str, str]], images: Sequence[str]) -> dict[str, str]:
    """Layout path -> image path for (path, kind, named image) layouts: by the file name the
    layout names, then by the layout's own stem, then by the last number in both names when
    that number is unique among the images and among the layouts of that kind."""
    by_name = {os.path.basename(p).lower(): p for p in images}
    by_stem = {_stem(p): p for p in images}
    numbers = [_number(p) for p in images]
    by_number = {n: p for n, p in zip(numbers, images) if n is not None and numbers.count(n) == 1}
    layout_numbers = [(kind, _number(path)) for path, kind, _ in layouts]
    found = {}
    for (path, kind, named), key in zip(layouts, layout_numbers):
        base = re.split(r"[/\\]", named)[-1].lower() if named else ""
        image = (by_name.get(base) or by_stem.get(_stem(base))) if base else None
        image = image or by_stem.get(_stem(path))
        if image is None and key[1] is not None and layout_numbers.count(key) == 1:
            image = by_number.get(key[1])
        if image:
            found[path] = image
    return found


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0].lower()


def _number(path: str) -> int | None:
    digits = re.findall(r"\d+", _stem(path))
    return int(digits[-1]) if digits else None


def same_stem(path: str) -> list[str]:
    """Other image files with the same stem (METS says .jp2, the folder holds .jpg)."""
    stem = os.path.splitext(path)[0]
    return [stem + ext for ext in IMAGE_EXTENSIONS if stem + ext != path]


def natural_key(path: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


def walk(folder: str, max_depth: int = 64) -> list[str]:
    """Files under a folder (hidden ones skipped), in natural order."""
    found, visited = [], set()
    base_depth = folder.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:  # a symlinked folder seen before: a link cycle or a duplicate
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if root.count(os.sep) - base_depth >= max_depth:
            dirs[:] = []
        found += [os.path.join(root, f) for f in files if not f.startswith(".")]
    return sorted(found, key=natural_key)
