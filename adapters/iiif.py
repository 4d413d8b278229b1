"""IIIF Presentation 2.1 and 3.0 manifests and collections: pages, book metadata, ALTO links.

Implements what an image indexer needs from
Presentation 3.0 (https://iiif.io/api/presentation/3.0/): §3 resource types (Collection,
Manifest, Canvas, Annotation, Choice, SpecificResource), §3.2 ``seeAlso``/``rendering``, §4.4
language maps; Presentation 2.1 (https://iiif.io/api/presentation/2.1/) §5: sequences, canvases,
``images`` annotations, ``oa:Choice``, ``collections``/``manifests``/``members``. The image
service of a painted image (Image API 1.1, 2.x and 3.0) is read by :mod:`.imageservice`.

Decisions:

* One :class:`Page` per canvas. ``Page.width/height`` is the canvas (its coordinate space);
  ``ImageRef.width/height`` is the painted image's full pixel size. They often differ
  (cookbook 0004). When a manifest states only one of them, the other is assumed equal, since
  an image painted without ``#xywh`` fills its canvas.
* The ALTO of a canvas is found in its ``seeAlso``/``rendering`` (or those of its image, or in
  embedded annotation pages) by ``format`` or ``profile``; the caller loads it (this module
  never touches the network) and reads the regions with ``read_alto(page=...)``.
* How the image lies on its canvas is kept on the page: ``Page.image_box``, the part of the
  image the canvas shows (a SpecificResource's ``ImageApiSelector`` region or ``xywh``
  fragment, cookbook 0299), and ``Page.target``, where the painting annotation puts it
  (``#xywh=`` target, cookbook 0036), so ``Region.canvas_box`` maps image pixels to the canvas.
* A canvas *without* ALTO is indexed as one whole-image region of kind "image" (the part of
  the image it shows): that is how image-only collections (manuscripts, photographs,
  chapbooks) enter the index. sources.py does this.
* Common defects are tolerated and reported as a :class:`Problem`: missing or wrong
  ``@context`` (the version is sniffed from ``type``/``@type``/``items``/``sequences``), zero or
  missing sizes, URI templates such as ``{?fields}`` in ids (stripped), v2 manifests with v3
  properties, manifests without canvases, choices (first/default item) and compositions of
  several images (the largest full-canvas image). Unrendered cookbook templates
  (``{{ id.url }}``), non-JSON and non-IIIF documents raise :class:`SourceError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bookidx.errors import SourceError

from .imageservice import painted_image
from .jsonld import TEMPLATE, as_list, canvases, id_of, plain_text, type_of
from .records import MAX_PIXELS, Book, Box, Page, Problem, Report, non_negative_int


@dataclass(frozen=True)
class ManifestInfo:
    """What a manifest says: ``pages`` and ``alto`` hold one entry per canvas that paints an
    image (``Page.index`` keeps the canvas's position among all canvases).

    ``alto[i]`` is the URI of page i's ALTO (or None).
    """

    id: str
    version: int
    book: Book
    pages: tuple[Page, ...] = ()
    alto: tuple[str | None, ...] = ()

    @property
    def crops(self) -> tuple[Box | None, ...]:
        """The part of its image, in image pixels, that each canvas shows; None for all of it."""
        return tuple(page.image_box for page in self.pages)


_XYWH = re.compile(r"xywh=(?:pixel:)?(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)", re.A)
_TOO_DEEP = "JSON nested too deeply to be a IIIF document"
# Metadata labels (lower-cased, preferred language) that carry the Book fields.
_DATE_LABELS = {"date", "dato", "datering", "date issued", "issued", "published", "publisert",
                "publishdate", "publication date", "date of publication", "published/created date",
                "created published", "date created", "date statement"}
_CREATOR_LABELS = {"creator", "creators", "author", "authors", "forfatter", "artist",
                   "photographer", "verfasser", "auteur"}
_LANGUAGE_LABELS = {"language", "languages", "text language", "språk", "sprache", "langue"}


def parse_json(data: bytes, *, source: str, report: Report | None = None) -> Any:
    """Decode a JSON document, falling back to cp1252 for the non-UTF-8 files found in the wild.

    Raises:
        SourceError: the bytes are not JSON (names the line and column).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = data.decode("cp1252", errors="replace")
        if report:
            report(Problem(source, f"byte {exc.start}", "not UTF-8; decoded as cp1252"))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(json_syntax_error(exc, text), source) from None
    except RecursionError:  # [[[[... 100 000 deep: the decoder's own stack guard
        raise SourceError(_TOO_DEEP, source) from None


def json_syntax_error(exc: json.JSONDecodeError, text: str) -> str:
    """What is wrong with the JSON ``text``, where (line and column), and whether it simply
    stops: a download or copy cut short ends inside a string or before the value is complete."""
    detail = f"not JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
    if exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip()):
        detail += f"; the document ends before it is complete ({len(text)} characters; cut short?)"
    return detail


def kind_of(doc: Any) -> str | None:
    """"manifest", "collection" or None, from the declared type or, failing that, the shape."""
    if not isinstance(doc, Mapping):
        return None
    declared = type_of(doc)
    if declared in ("Manifest", "Collection"):
        return declared.lower()
    if "sequences" in doc:
        return "manifest"
    if any(k in doc for k in ("manifests", "collections", "members")):
        return "collection"
    item_types = {type_of(i) for i in as_list(doc.get("items")) if isinstance(i, Mapping)}
    if "Canvas" in item_types:
        return "manifest"
    if item_types & {"Manifest", "Collection"}:
        return "collection"
    return None


def read_collection(doc: Mapping | bytes, *, source: str, report: Report | None = None) -> list[str]:
    """The ids of a collection's member manifests and collections, in order, without repeats.

    Raises:
        SourceError: the document is not a IIIF collection.
    """
    doc = _document(doc, "collection", source, report)
    members: list[str] = []
    for key in ("collections", "manifests", "members", "items"):
        for item in as_list(doc.get(key)):
            if key == "items" and type_of(item) not in ("Manifest", "Collection"):
                continue
            ident = id_of(item)
            if ident and ident not in members:
                members.append(ident)
    return members


def read_manifest(doc: Mapping | bytes, *, source: str, report: Report | None = None) -> ManifestInfo:
    """Read a manifest's book metadata, one page per canvas and each canvas's ALTO link.

    Args:
        doc: the parsed JSON, or its bytes.
        source: the manifest's file or URL, named in problems and errors.
        report: receives a :class:`Problem` for every tolerated defect.

    Raises:
        SourceError: not JSON, not a manifest, an unrendered template, or nested too deeply.
    """
    try:
        return _manifest(_document(doc, "manifest", source, report), source, report)
    except RecursionError:  # labels or targets nested near the JSON decoder's own limit
        raise SourceError(_TOO_DEEP, source) from None


def _manifest(doc: Mapping, source: str, report: Report | None) -> ManifestInfo:
    say = report or (lambda problem: None)
    version = _version(doc, source, say)
    manifest_id = id_of(doc) or source
    if TEMPLATE.search(str(doc.get("id") or doc.get("@id") or "")):
        say(Problem(source, "id", "URI template stripped from ids"))
    pages, alto = [], []
    found = canvases(doc)
    if not found:
        say(Problem(source, "", "manifest has no canvases"))
    for index, canvas in enumerate(found):
        read = _canvas(canvas, index, manifest_id, version, source, say)
        if read is not None:
            pages.append(read[0])
            alto.append(read[1])
    return ManifestInfo(manifest_id, version, _book(doc, manifest_id), tuple(pages), tuple(alto))


def _document(doc: Mapping | bytes, want: str, source: str, report: Report | None) -> Mapping:
    if isinstance(doc, (bytes, bytearray)):
        doc = parse_json(bytes(doc), source=source, report=report)
    placeholder = _placeholder_id(doc)
    if placeholder:
        raise SourceError(f"unrendered Jekyll/Liquid template (id {placeholder!r}), not a "
                          f"published IIIF document", source)
    kind = kind_of(doc)
    if kind != want:
        what = type_of(doc) if isinstance(doc, Mapping) and type_of(doc) else kind or "unknown JSON"
        raise SourceError(f"not a IIIF {want} ({what})", source)
    return doc


def _placeholder_id(doc: Any) -> str | None:
    """An id holding a ``{{ ... }}`` placeholder (IIIF cookbook sources): the document's own, or
    that of its first sequence, canvas or member, where templates put ``{{ id.path }}``."""
    if not isinstance(doc, Mapping):
        return None
    firsts = [doc]
    for key in ("sequences", "items", "manifests", "collections", "members"):
        firsts += as_list(doc.get(key))[:1]
    for sequence in as_list(doc.get("sequences"))[:1]:
        firsts += as_list(sequence.get("canvases"))[:1] if isinstance(sequence, Mapping) else []
    ids = [str(o.get("id") or o.get("@id") or "") for o in firsts if isinstance(o, Mapping)]
    return next((i for i in ids if "{{" in i), None)


def _version(doc: Mapping, source: str, say: Report) -> int:
    context = " ".join(str(c) for c in as_list(doc.get("@context")))
    if "presentation/3" in context:
        return 3
    if "presentation/2" in context:
        return 2
    # No usable @context: v2 documents use JSON-LD keywords (@id/@type) and sequences.
    version = 2 if ("@id" in doc or "@type" in doc or "sequences" in doc) else 3
    found = f"@context is {context!r}" if context else "no @context"
    say(Problem(source, "@context", f"{found}; read as Presentation {version}"))
    return version


def _canvas(canvas: Mapping, index: int, manifest_id: str, version: int, source: str,
            say: Report) -> tuple[Page, str | None] | None:
    canvas_id = id_of(canvas) or f"{manifest_id}#canvas{index + 1}"
    where = f"canvas {index + 1} ({canvas_id})"
    painted = _paintings(canvas)
    if not painted:
        say(Problem(source, where, "canvas paints no image; skipped"))
        return None
    resolved = [(found, full, target) for body, full, target in painted
                if (found := _resolve(body, source, where, say)) is not None]
    if not resolved:
        say(Problem(source, where, "painted resource has no id; skipped"))
        return None
    cw, ch = non_negative_int(canvas.get("width")), non_negative_int(canvas.get("height"))
    images = [(painted_image(res, version, cw, ch), crop, full, target, res)
              for (res, crop), full, target in resolved]
    # A composition paints details over a base image; the full-canvas one is the page.
    image, crop, _, target, res = max(images, key=lambda i: (i[2], i[0].width * i[0].height))
    if len(images) > 1:
        say(Problem(source, where, f"canvas paints {len(images)} images; indexing {image.uri}"))
    if not (cw and ch):
        if image.width and image.height:
            cw, ch = (crop.w, crop.h) if crop else (image.width, image.height)
            say(Problem(source, where, f"canvas size missing or 0; using the image's {cw}x{ch}"))
        else:
            say(Problem(source, where, "neither canvas nor image states a size"))
    page = Page(canvas_id, index, image, cw, ch, plain_text(canvas.get("label")), manifest_id,
                image_box=crop, target=target)
    return page, _alto_link(canvas, res)


def _paintings(canvas: Mapping) -> list[tuple[Any, bool, Box | None]]:
    """(body, paints the whole canvas, the ``#xywh=`` box it is painted at) for each painting
    annotation, v2 and v3."""
    found: list[tuple[Any, bool, Box | None]] = []
    for anno in as_list(canvas.get("images")):
        if isinstance(anno, Mapping):
            found += [(res, *_target(anno.get("on"))) for res in as_list(anno.get("resource"))]
    for page in as_list(canvas.get("items")):
        for anno in as_list(page.get("items") if isinstance(page, Mapping) else None):
            if not isinstance(anno, Mapping) or "painting" not in str(anno.get("motivation", "painting")):
                continue
            found += [(body, *_target(anno.get("target"))) for body in as_list(anno.get("body"))]
    return found


def _target(target: Any) -> tuple[bool, Box | None]:
    """Whether an annotation target is the whole canvas, and its ``#xywh=`` box if it is not:
    a string, or a SpecificResource with a FragmentSelector (v2 ``on``, v3 ``target``)."""
    text = json.dumps(target) if target is not None else ""
    if "xywh=" not in text:
        return True, None
    box = _fragment_box(text)
    return False, box if box is not None and box.w > 0 and box.h > 0 else None


def _resolve(body: Any, source: str, where: str, say: Report) -> tuple[Mapping, Box | None] | None:
    """Unwrap Choice (take the default/first) and SpecificResource (keep its region)."""
    crop = None
    for _ in range(4):  # Choice of SpecificResources and the like; bounded against cycles
        if not isinstance(body, Mapping):
            return ({"id": body}, crop) if isinstance(body, str) else None
        kind = type_of(body)
        if kind == "Choice":
            options = as_list(body.get("default")) + as_list(body.get("items") or body.get("item"))
            options = [o for o in options if o and o != "rdf:nil"]
            if len(options) > 1:
                say(Problem(source, where, f"choice of {len(options)} images; indexing the first"))
            body = options[0] if options else None
        elif kind == "SpecificResource":
            for selector in as_list(body.get("selector")):
                crop = crop or _selector_box(selector)
            body = body.get("source") or body.get("full")
        else:
            return (body, crop) if id_of(body) else None
    return None


def _selector_box(selector: Any) -> Box | None:
    """The image region an ``ImageApiSelector`` (``region``) or a ``FragmentSelector``
    (``value``, ``xywh=``) selects."""
    if not isinstance(selector, Mapping):
        return None
    region = str(selector.get("region") or "")  # ImageApiSelector
    parts = region.split(",")
    if len(parts) == 4 and all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        return _box([int(p) for p in parts])
    return _fragment_box(str(selector.get("value") or ""))


def _fragment_box(text: str) -> Box | None:
    """The box of the first ``xywh=`` media fragment (pixel units) in ``text``."""
    match = _XYWH.search(text)
    return _box([float(g) for g in match.groups()]) if match else None


def _box(values: list[float]) -> Box | None:
    if not all(abs(v) <= MAX_PIXELS for v in values):  # garbage, or infinity to round()
        return None
    return Box(*(round(v) for v in values))


def _alto_link(canvas: Mapping, res: Mapping) -> str | None:
    links = []
    for owner in (canvas, res):
        links += as_list(owner.get("seeAlso")) + as_list(owner.get("rendering"))
    for page in as_list(canvas.get("annotations")) + as_list(canvas.get("otherContent")):
        if isinstance(page, Mapping):
            links.append(page)
            for anno in as_list(page.get("items") or page.get("resources")):
                if isinstance(anno, Mapping):
                    links += as_list(anno.get("body") or anno.get("resource"))
    for link in links:
        if isinstance(link, Mapping) and _is_alto(link) and id_of(link):
            return id_of(link)
    return None


def _is_alto(link: Mapping) -> bool:
    fmt = str(link.get("format") or "").lower()
    profiles = " ".join(str(p) for p in as_list(link.get("profile"))).lower()
    if "standards/alto" in profiles or fmt == "application/alto+xml":
        return True
    # Plain XML with no profile is ALTO in practice; XML naming another profile (MODS...) is not.
    return fmt in ("text/xml", "application/xml") and not profiles


def _book(doc: Mapping, manifest_id: str) -> Book:
    metadata = tuple(
        (plain_text(m.get("label")), plain_text(m.get("value")))
        for m in as_list(doc.get("metadata")) if isinstance(m, Mapping)
    )

    def pick(labels: set[str]) -> str:
        return next((v for k, v in metadata if k.strip().lower() in labels and v), "")

    date = pick(_DATE_LABELS)
    if not date and doc.get("navDate"):
        match = re.match(r"-?\d{1,4}(?:-\d\d){0,2}", str(doc["navDate"]))
        date = match.group(0) if match else str(doc["navDate"])
    language = pick(_LANGUAGE_LABELS) or plain_text(doc.get("language"))
    return Book(manifest_id, plain_text(doc.get("label")), pick(_CREATOR_LABELS), date, language,
                metadata)
