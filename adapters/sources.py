"""The I/O edge of the adapters: turn paths and URLs into illustration regions.

A *spec* is a local path or a URL naming one of: a folder (images; ALTO or PAGE files with
their images; METS files), an ALTO / METS / PAGE XML file, a IIIF Presentation manifest or
collection (JSON), an image file, or a ``.txt`` list of further specs, one a line (``#``
comments). Everything is read through one ``load(uri) -> bytes`` callable, so the same code
reads local files in tests and goes through bookidx's HTTP fetcher (cache, retries, politeness)
in the CLI. Images are never decoded here: their size comes from the file header (a remote
image is loaded for that only when no layout file and no manifest states its size).

What each page yields:

* a page with a layout file (ALTO, or PAGE XML) yields the picture blocks ``read_alto`` /
  ``read_page`` find, unfiltered, in the pixel space of the page image;
* a page without one (a lone image, an image-only METS, a IIIF canvas without ALTO) yields
  one region of kind "image" covering the whole image (or the part a canvas shows);
* a page whose layout file or image cannot be read is skipped, with a :class:`Problem`,
  rather than indexed as a whole page: a later run with the file present then adds the right
  regions instead of leaving a misleading whole-page entry.

Ids are served (the API's ``canvas`` and ``book``), so a page read from a local file gets an
id relative to the folder of the spec it was found through (``book%20one/p1.jpg``,
``mets.xml#PHYS_0001``), never the server's absolute path; ``ImageRef.path`` stays absolute for
cropping, and region keys (made from it) are what they were.

A document fetched from the web may name only http(s) URLs (its relative references are
resolved against its URL): a ``file:`` URI or a local image there is refused with a Problem
naming the document and the reference, so a remote source can never make the indexer read, crop
or serve a local file. Local sources may name anything.

A manifest's ALTO files are loaded a few at a time on worker threads (:mod:`.ahead`), ahead of
the canvas being read; its pages, regions and Problems still come in canvas order.

Broken sources never stop a run: each is reported as a Problem naming the file, and reading
goes on with the next one. IIIF collections are followed recursively with a visited set (so
loops end) and a depth limit.
"""

from __future__ import annotations

import io
import os
import re
from typing import Callable, Iterable, Iterator
from dataclasses import replace
from urllib.parse import quote, urlparse

from PIL import Image

from bookidx.errors import BookidxError, SourceError

from .ahead import Loader, loaded_ahead
from .alto import find_image, read_alto
from .folders import classify, match_layouts, named_image, natural_key, same_stem, unreadable, walk
from .iiif import ManifestInfo, read_collection, read_manifest
from .mets import read_mets
from .page import read_page
from .records import IMAGE_EXTENSIONS, Book, Box, ImageRef, Page, Problem, Region, Report
from .sniff import not_a_source, sniff
from .uris import is_http, is_url, read_local, resolve, uri_to_path

MAX_DEPTH = 8  # nesting of collections and lists; real collections are 2-3 deep
WINDOW = 4  # ALTO files of a manifest loaded at once: the Fetcher's (and IndexConfig's) per_host


def read_sources(specs: Iterable[str], *, load: Loader | None = None, report: Report | None = None,
                 dpi: float = 300.0, window: int = WINDOW) -> Iterator[Region]:
    """Every region of every source, in order; broken sources become problems.

    Args:
        specs: local paths (files or folders) and URLs.
        load: reads a path or URL to bytes; defaults to :func:`read_local`. It is called from
            worker threads (a manifest's ALTO files), so it must be thread-safe, as bookidx's
            Fetcher is.
        report: receives a :class:`Problem` for each skipped file, page or block; always called
            on the caller's thread, in source order.
        dpi: scan resolution assumed for ALTO measured in mm10 / inch1200 without image sizes.
        window: how many of a manifest's ALTO files are loaded at once (see :mod:`.ahead`); the
            fetcher's ``per_host`` is the useful most. 1: one after another, on this thread.
    """
    reader = _Reader(load or read_local, report or (lambda problem: None), dpi, window)
    for spec in specs:
        reader.root = _root(spec)
        yield from reader.spec(spec, 0)


def whole_image(page: Page, *, book: Book | None = None, source: str = "") -> Region | None:
    """The region covering all of a page image, or the part of it the page shows
    (``Page.image_box``); None if that is unknown or lies outside the image."""
    width, height = page.image.width, page.image.height
    if page.image_box is not None:
        box = page.image_box.clip(width, height)
    else:
        box = Box(0, 0, width, height) if width and height else None
    return Region(page=page, box=box, kind="image", book=book, source=source) if box else None


class _Reader:
    """One read_sources call: the loader, the report, and what has been read already."""

    def __init__(self, load: Loader, say: Report, dpi: float, window: int) -> None:
        self.load, self.say, self.dpi, self.window = load, say, dpi, window
        self.seen: set[str] = set()
        self.root = os.getcwd()  # the folder local page ids are relative to (see public_id)

    def public_id(self, path: str) -> str:
        """The id of a page read from a local file: its path relative to the folder of the
        source spec it was found through, as a relative URI reference. Page ids are served
        (the API's ``canvas``); the server's absolute paths are not (``ImageRef.path`` keeps
        the absolute path for cropping)."""
        absolute = os.path.abspath(path)
        try:
            relative = os.path.relpath(absolute, self.root)
        except ValueError:  # on another Windows drive
            relative = os.path.basename(absolute)
        return quote(relative.replace(os.sep, "/"))

    def published(self, regions: Iterable[Region], where: str) -> Iterator[Region]:
        """Regions whose page, manifest or book id a reader made from the local file ``where``
        (``"{where}#p1"``, METS without OBJID, a manifest without id), with public ids instead."""
        if is_url(where):
            yield from regions
            return
        public = self.public_id(where)

        def rename(ident: str | None) -> str | None:
            if ident == where or (ident or "").startswith(where + "#"):
                return public + ident[len(where):]
            return ident

        for r in regions:
            page, book = r.page, r.book
            if (rename(page.id), rename(page.manifest)) != (page.id, page.manifest):
                page = replace(page, id=rename(page.id), manifest=rename(page.manifest))
            if book is not None and rename(book.id) != book.id:
                book = replace(book, id=rename(book.id))
            yield r if page is r.page and book is r.book else r.with_(page=page, book=book)

    def spec(self, spec: str, depth: int) -> Iterator[Region]:
        try:
            spec = uri_to_path(spec.strip())
        except SourceError as exc:
            self.say(_problem(exc, spec))
            return
        if spec in self.seen:
            self.say(Problem(spec, "", "already read; skipped (listed twice, or a collection loop)"))
            return
        self.seen.add(spec)
        try:
            if not is_url(spec) and os.path.isdir(spec):
                yield from self.folder(spec)
            else:
                yield from self.document(self.load(spec), spec, depth)
        except (BookidxError, OSError) as exc:
            self.say(_problem(exc, spec))

    def document(self, data: bytes, where: str, depth: int) -> Iterator[Region]:
        kind = sniff(data, where)
        if kind == "alto" or kind == "page":
            yield from self.layout(data, where, kind, self.image_beside(data, where, kind))
        elif kind == "mets":
            yield from self.mets(data, where)
        elif kind == "iiif-manifest":
            yield from self.manifest(data, where)
        elif kind == "iiif-collection":
            yield from self.collection(data, where, depth)
        elif kind == "image":
            yield from _some(whole_image(self.image_page(where, data, 0), source=where))
        elif kind == "list":
            yield from self.listing(data, where, depth)
        else:
            raise SourceError(f"not a source: {not_a_source(data)}", where)

    def layout(self, data: bytes, where: str, kind: str, page: Page | None,
               book: Book | None = None) -> list[Region]:
        if page is None:
            # Still yield the regions (in the layout's own pixel space) so they can be inspected;
            # indexing records each as failed ("no page image") instead of losing them silently.
            self.say(Problem(where, "", "no image found for this layout file; its regions cannot be cropped"))
        read = read_alto if kind == "alto" else read_page
        options = {"dpi": self.dpi} if kind == "alto" else {}
        regions = read(data, source=where, page=page, book=book, report=self.say, **options)
        return regions if page is not None else list(self.published(regions, where))

    def image_beside(self, data: bytes, where: str, kind: str) -> Page | None:
        """The image a lone ALTO/PAGE file describes: the file it names (found as the layout
        readers find it), else a sibling matched as in a folder, else a URL it names."""
        if is_url(where):  # a remote layout file can only name a remote image
            return self.remote(data, kind)
        named = find_image(where, named_image(data, kind))
        if named is None:
            folder = os.path.dirname(where) or "."
            images = [p for p in walk(folder, max_depth=2) if p.lower().endswith(IMAGE_EXTENSIONS)]
            named = match_layouts([(where, kind, "")], images).get(where)
        return self.image_page(named, None, 0) if named else self.remote(data, kind)

    def remote(self, data: bytes, kind: str) -> Page | None:
        """A page for a layout file whose image is named by an http(s) URL (size unknown)."""
        named = named_image(data, kind)
        if re.match(r"^https?://", named, re.I):
            return Page(named, 0, ImageRef(url=named))
        return None

    def image_page(self, where: str, data: bytes | None, index: int, label: str = "") -> Page:
        """A page for one image file, its size read from the header only (never decoded)."""
        width, height = _image_size(where, data)
        path = None if is_url(where) else os.path.abspath(where)
        image = ImageRef(width, height, path=path, url=where if path is None else None)
        label = label or os.path.splitext(os.path.basename(urlparse(where).path))[0]
        return Page(self.public_id(path) if path else where, index, image, width, height, label)

    def folder(self, folder: str) -> Iterator[Region]:
        """The METS files under a folder, then the ALTO/PAGE files (with their images) and the
        images that no METS file claims, then IIIF documents; broken ones are reported."""
        found = classify(folder, self.loaded, self.say)
        for path in found.mets:
            yield from self.spec(path, 0)
        # One layout per image: ALTO before PAGE when both describe the same scan.
        layouts = sorted(found.layouts, key=lambda item: item[1] != "alto")
        matched = match_layouts(layouts, found.images)
        used: set[str] = set()
        work = [(natural_key(path), "image", path, "") for path in found.images if path not in matched.values()]
        for path, kind, _ in layouts:
            image = matched.get(path)
            if image is not None and image in used:
                self.say(Problem(path, "", f"{image} already has a layout file; skipped"))
                continue
            used.add(image)
            work.append((natural_key(image or path), kind, path, image))
        for _, kind, path, image in sorted(work, key=lambda item: item[0]):
            yield from self.guarded(lambda: self.folder_item(kind, path, image), path)
        for path in found.iiif:
            yield from self.spec(path, 0)

    def loaded(self, path: str) -> bytes | None:
        """A folder file's bytes, or None once the reason it cannot be read is reported."""
        try:
            return self.load(path)
        except (BookidxError, OSError) as exc:
            self.say(_problem(exc, path))
            return None

    def folder_item(self, kind: str, path: str, image: str | None) -> list[Region]:
        if kind == "image":
            return list(_some(whole_image(self.image_page(path, None, 0), source=path)))
        data = self.load(path)
        page = self.image_page(image, None, 0) if image else self.remote(data, kind)
        return self.layout(data, path, kind, page)

    def mets(self, data: bytes, where: str) -> Iterator[Region]:
        info = read_mets(data, source=where, report=self.say)
        for mets_page in info.pages:
            regions = self.guarded(lambda: self.mets_page(mets_page, info.book, where),
                                   f"{where}#{mets_page.page_id}")
            yield from self.published(regions, where)

    def mets_page(self, entry, book: Book, where: str) -> list[Region]:
        if not (self.allowed(entry.image, where, entry.page_id) and self.allowed(entry.alto, where, entry.page_id)):
            return []
        image = entry.image
        if image and not is_url(image) and not os.path.isfile(image):
            other = next((c for c in same_stem(image) if os.path.isfile(c)), None)
            self.say(Problem(where, entry.page_id, f"image {image} does not exist" + (
                f"; using {other}" if other else "; page skipped")))
            image = other
        if not image:
            if entry.image is None:
                self.say(Problem(where, entry.page_id, "page has no image; skipped"))
            return []
        index, label = entry.order - 1, entry.label
        if entry.alto:
            data = self.load(entry.alto)
            kind = sniff(data, entry.alto)
            if kind in ("alto", "page"):
                page = (Page(image, index, ImageRef(url=image), label=label) if is_url(image)
                        else self.image_page(image, None, index, label))
                return self.layout(data, entry.alto, kind, replace(page, id=f"{where}#{entry.page_id}"), book)
            why = unreadable(data, entry.alto)
            if why is not None:  # left out, as in a folder: a later run with the file mended adds its regions
                self.say(Problem(entry.alto, "", f"not a source: {why}; skipped, and its page {entry.page_id} with it"))
                return []
            self.say(Problem(entry.alto, "", f"{kind} document, not ALTO or PAGE; page indexed whole"))
        page = self.image_page(image, self.load(image) if is_url(image) else None, index, label)
        return list(_some(whole_image(replace(page, id=f"{where}#{entry.page_id}"), book=book, source=where)))

    def manifest(self, data: bytes, where: str) -> Iterator[Region]:
        info = read_manifest(data, source=where, report=self.say)
        self.seen.add(info.id)
        yield from self.published(self.canvases(info, where), where)

    def canvases(self, info: ManifestInfo, where: str) -> Iterator[Region]:
        # Which ALTO files to load is decided first, quietly, by the same canvas_link that then
        # reports refusals in canvas order, so the loads can run ahead without changing a thing.
        quiet: Report = lambda problem: None
        planned = [self.canvas_link(page, alto, where, quiet) for page, alto in zip(info.pages, info.alto)]
        bodies = loaded_ahead(self.load, [uri for uri in planned if uri], self.window)
        try:
            for page, alto in zip(info.pages, info.alto):
                uri = self.canvas_link(page, alto, where, self.say)
                if uri:
                    body = next(bodies)
                    yield from self.guarded(lambda: self.linked_layout(uri, body(), page, info.book), uri)
                elif uri == "":
                    region = whole_image(page, book=info.book, source=where)
                    if region is None:
                        self.say(Problem(where, page.id, "image size unknown (or the part shown lies outside "
                                                         "the image); canvas skipped"))
                    else:
                        yield region
        finally:
            bodies.close()  # the reader stopped early: loads not yet started are cancelled

    def canvas_link(self, page: Page, alto: str | None, where: str, say: Report) -> str | None:
        """The ALTO file to load for a canvas; "" when it has none (indexed whole); None when
        the canvas is skipped because ``where`` may not name its image or ALTO file."""
        if not self.allowed(page.image.uri, where, page.id, say=say):
            return None
        return self.follow(alto, where, page.id, say=say) if alto else ""

    def linked_layout(self, uri: str, data: bytes, page: Page, book: Book) -> list[Region]:
        kind = sniff(data, uri)
        if kind not in ("alto", "page"):
            raise SourceError(f"linked as ALTO but is {kind}", uri)
        return self.layout(data, uri, kind, page, book)

    def collection(self, data: bytes, where: str, depth: int) -> Iterator[Region]:
        members = read_collection(data, source=where, report=self.say)
        if depth >= MAX_DEPTH:
            self.say(Problem(where, "", f"nested deeper than {MAX_DEPTH} levels; members skipped"))
            return
        for member in members:
            uri = self.follow(member, where)
            if uri is not None:
                yield from self.spec(uri, depth + 1)

    def listing(self, data: bytes, where: str, depth: int) -> Iterator[Region]:
        if depth >= MAX_DEPTH:
            self.say(Problem(where, "", f"nested deeper than {MAX_DEPTH} levels; skipped"))
            return
        for line in data.decode("utf-8-sig", errors="replace").splitlines():
            line = line.strip()
            uri = self.follow(line, where) if line and not line.startswith("#") else None
            if uri is not None:
                yield from self.spec(uri, depth + 1)

    def follow(self, ref: str, where: str, what: str = "", *, say: Report | None = None) -> str | None:
        """Where a reference made in the document at ``where`` points, if it may be followed."""
        uri = resolve(ref, where)
        return uri if self.allowed(uri, where, what, ref, say=say) else None

    def allowed(self, uri: str | None, where: str, what: str = "", written: str | None = None, *,
                say: Report | None = None) -> bool:
        """Whether the document at ``where`` may name ``uri``: one fetched from the web may name
        only http(s) URLs, so that a remote source cannot make bookidx read local files. A
        refusal goes to ``say`` (default: the report)."""
        if not uri or not is_url(where) or is_http(uri):
            return True
        (say or self.say)(Problem(where, what, f"names {written or uri!r}, which is not an http(s) URL: "
                                               "a document from the web may not name local files; skipped"))
        return False

    def guarded(self, regions: Callable[[], Iterable[Region]], where: str) -> Iterator[Region]:
        """The regions of one page or file; an error there becomes a problem, not a crash."""
        try:
            yield from regions()
        except (BookidxError, OSError) as exc:
            self.say(_problem(exc, where))


def _problem(exc: Exception, where: str) -> Problem:
    if isinstance(exc, BookidxError):
        return Problem(exc.parameter or where, "", exc.detail)
    return Problem(where, "", f"{type(exc).__name__}: {exc}")


def _some(region: Region | None) -> list[Region]:
    return [region] if region is not None else []


def _image_size(where: str, data: bytes | None) -> tuple[int, int]:
    try:
        # Image.open reads the header only; a multi-frame (pyramidal) TIFF opens at frame 0.
        with Image.open(io.BytesIO(data) if data is not None else where) as image:
            return image.size
    except Image.DecompressionBombError as exc:
        raise SourceError(f"image too large to open safely: {exc}", where) from None
    except OSError as exc:
        raise SourceError(f"not a readable image: {exc}", where) from None


def _root(spec: str) -> str:
    """The folder of a local source spec (a folder's parent): page ids are relative to it."""
    try:
        path = uri_to_path(spec.strip())
    except SourceError:
        return os.getcwd()
    return os.getcwd() if is_url(path) else os.path.dirname(os.path.abspath(path))
