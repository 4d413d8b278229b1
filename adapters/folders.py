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
A broken layout file still names its page by its stem (:func:`beside`).
"""

from __future__ import annotations

import os
import re

from bookidx.errors import SourceError

from .iiif import parse_json
from .records import IMAGE_EXTENSIONS
from .sniff import not_a_source
from .xml import parse_xml

_ALTO_FILENAME = re.compile(rb"<(?:\w+:)?fileName>\s*([^<]*?)\s*</", re.S)
_PAGE_FILENAME = re.compile(rb"imageFilename\s*=\s*[\"']([^\"']*)[\"']")


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


def beside(path: str, images: list[str]) -> list[str]:
    """The images in the folder of ``path`` with its stem (``p1.xml``: ``p1.jpg``, ``p1.tif``)."""
    stem = os.path.splitext(path)[0].lower()
    return [p for p in images if os.path.splitext(p)[0].lower() == stem]


def match_layouts(layouts: list[tuple[str, str, str]], images: list[str]) -> dict[str, str]:
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
