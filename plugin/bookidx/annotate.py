"""IIIF out: indexed regions as W3C Web Annotations on the manifests they came from.

Implements
* W3C Web Annotation Data Model (https://www.w3.org/TR/annotation-model/) §3.2 motivations,
  §3.3.5 ``purpose`` on bodies (TextualBody, SpecificResource);
* IIIF Presentation 3.0 (https://iiif.io/api/presentation/3.0/) §5.8 AnnotationPage, §3.3
  ``annotations`` on a Canvas, §3.2 ``service`` (``SearchService2``; the legacy
  ``SearchService1`` type with its ``profile`` for viewers that speak Content Search 1.0);
* IIIF Presentation 2.1 (https://iiif.io/api/presentation/2.1/) §5.6 ``sc:AnnotationList`` in a
  canvas's ``otherContent``, with Open Annotation ``oa:commenting``/``oa:tagging`` and ``oa:Tag``.

One annotation per region. Its bodies: the caption (``purpose: describing``, with the book's
language when that is a language tag), the kind and classes (``purpose: tagging``) and a link
to the region's "similar images" search (``purpose: linking``). Motivation is ``commenting``
when there is a caption, else ``tagging``. The target is the canvas id with ``#xywh=`` in
CANVAS coordinates (:meth:`Region.canvas_box`), clipped to the canvas.

Documents are built as plain JSON, not through iiif-prezi3's models: those type ids as
pydantic ``AnyUrl``, which normalises them (``https://host`` becomes ``https://host/``, spaces
and ``{?fields}`` get escaped), and a target that is not character for character the canvas id
is not shown on that canvas. The tests load every document back through iiif-prezi3's models
(``Manifest(**doc)``, ``AnnotationPage(**page)``) and the Presentation 3 JSON Schema.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .adapters import jsonld
from .adapters.iiif import ManifestInfo, parse_json, read_manifest
from .adapters.records import Box, Region, non_negative_int
from .adapters.uris import is_http
from .apiroot import api_root, similar_link
from .errors import NotFound, SourceError
from .manifests import load_manifest, slug

PRESENTATION3 = "http://iiif.io/api/presentation/3/context.json"
PRESENTATION2 = "http://iiif.io/api/presentation/2/context.json"
SEARCH1_CONTEXT = "http://iiif.io/api/search/1/context.json"
SEARCH1_PROFILE = "http://iiif.io/api/search/1/search"
SIMILAR_LABEL = "Similar images"
# BCP 47 primary language (+ subtags): "fr", "nob", "de-1901". Free text ("French") is left out.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class Links:
    """The URIs bookidx gives one manifest's annotations, and the services it advertises.

    Attributes:
        page: template of an annotation page's id, with ``{index}`` (the canvas's 0-based
            position in the manifest), e.g. ``https://host/bookidx/iiif/<slug>/annotations/{index}``.
        annotation: template of an annotation's id, with ``{key}`` (the region key).
        similar: the "similar images" URL of a region key; None leaves the linking body out.
        search: the Content Search 2.0 service URL, or None.
        search1: the Content Search 1.0 service URL, or None.
    """

    page: str
    annotation: str
    similar: Callable[[int], str] | None = None
    search: str | None = None
    search1: str | None = None

    @classmethod
    def served(cls, iiif_base: str, similar: Callable[[int], str] | None) -> "Links":
        """The links of a manifest served by the blueprint at ``iiif_base`` (…/iiif/<slug>)."""
        base = _brace_safe(iiif_base.rstrip("/"))
        return cls(
            page=base + "/annotations/{index}",
            annotation=base + "/annotation/{key}",
            similar=similar,
            search=iiif_base.rstrip("/") + "/search",
            search1=iiif_base.rstrip("/") + "/search1",
        )

    def page_id(self, index: int) -> str:
        return self.page.format(index=index)

    def annotation_id(self, key: int) -> str:
        return self.annotation.format(key=key)


@dataclass(frozen=True)
class Canvas:
    """A canvas as the manifest states it: ``id`` exactly as written, the target of annotations."""

    index: int
    id: str
    width: int
    height: int
    raw: dict[str, Any]  # the canvas object itself (annotate_manifest adds to a copy's)


def _brace_safe(text: str) -> str:
    """``text`` for use inside a ``str.format`` template (ids may hold ``{?fields}``)."""
    return text.replace("{", "{{").replace("}", "}}")


def canvases(doc: Mapping[str, Any]) -> list[Canvas]:
    """The canvases that have an id, at their positions in the manifest's reading order (the
    positions adapters/iiif.py gives ``Page.index``: both read them with :func:`jsonld.canvases`)."""
    out = []
    for index, canvas in enumerate(jsonld.canvases(doc)):
        ident = jsonld.raw_id(canvas)
        if ident:
            width, height = non_negative_int(canvas.get("width")), non_negative_int(canvas.get("height"))
            out.append(Canvas(index, ident, width, height, canvas))
    return out


def canvas_index(doc: Mapping[str, Any], info: ManifestInfo | None = None) -> dict[str, Canvas]:
    """Canvases by id, both as written and as the adapter normalises it (the ``Page.id`` of
    its regions: URI templates such as ``{?fields}`` stripped). ``info``: the adapter's reading
    of ``doc``, when the caller has it."""
    by_position = {c.index: c for c in canvases(doc)}
    info = info or _read(doc)
    out = {page.id: by_position[page.index] for page in info.pages if page.index in by_position}
    out.update({c.id: c for c in by_position.values()})
    return out


def regions_by_canvas(
    doc: Mapping[str, Any], regions: Iterable[Region], info: ManifestInfo | None = None,
) -> dict[int, list[Region]]:
    """The regions of each canvas (by 0-based canvas index), in reading order (top, then left)."""
    index = canvas_index(doc, info)
    out: dict[int, list[Region]] = {}
    for region in regions:
        canvas = index.get(region.page.id)
        if canvas is not None:
            out.setdefault(canvas.index, []).append(region)
    for found in out.values():
        found.sort(key=lambda r: (r.box.y, r.box.x, r.key))
    return out


def target_box(region: Region, canvas: Canvas) -> Box | None:
    """The region in canvas coordinates, clipped to the canvas; None when wholly outside it."""
    return region.canvas_box().clip(canvas.width, canvas.height)


def annotation_v3(region: Region, canvas: Canvas, links: Links, classes: Sequence[str] = ()) -> dict[str, Any] | None:
    """One region as a Presentation 3 / W3C annotation, or None when it is outside the canvas."""
    box = target_box(region, canvas)
    if box is None:
        return None
    bodies: list[dict[str, Any]] = []
    if region.caption:
        caption: dict[str, Any] = {"type": "TextualBody", "value": region.caption, "format": "text/plain"}
        language = _language(region)
        if language:
            caption["language"] = language
        caption["purpose"] = "describing"
        bodies.append(caption)
    bodies += [{"type": "TextualBody", "value": tag, "purpose": "tagging"} for tag in _tags(region, classes)]
    if links.similar is not None:
        bodies.append({
            "type": "SpecificResource",
            "purpose": "linking",
            "source": {
                "id": links.similar(region.key),
                "type": "Dataset",
                "format": "application/json",
                "label": {"en": [SIMILAR_LABEL]},
            },
        })
    return {
        "id": links.annotation_id(region.key),
        "type": "Annotation",
        "label": {"none": [region.kind]},
        "motivation": "commenting" if region.caption else "tagging",
        "body": bodies,
        "target": f"{canvas.id}#xywh={box.xywh()}",
    }


def annotation_v2(region: Region, canvas: Canvas, links: Links, classes: Sequence[str] = ()) -> dict[str, Any] | None:
    """One region as a Presentation 2.1 (Open Annotation) annotation, or None when outside the canvas."""
    box = target_box(region, canvas)
    if box is None:
        return None
    resources: list[dict[str, Any]] = []
    if region.caption:
        caption: dict[str, Any] = {"@type": "dctypes:Text", "format": "text/plain", "chars": region.caption}
        language = _language(region)
        if language:
            caption["language"] = language
        resources.append(caption)
    resources += [{"@type": "oa:Tag", "chars": tag} for tag in _tags(region, classes)]
    if links.similar is not None:
        resources.append({
            "@id": links.similar(region.key),
            "@type": "dctypes:Dataset",
            "format": "application/json",
            "label": SIMILAR_LABEL,
        })
    return {
        "@id": links.annotation_id(region.key),
        "@type": "oa:Annotation",
        "label": region.kind,
        "motivation": "oa:commenting" if region.caption else "oa:tagging",
        "resource": resources,
        "on": f"{canvas.id}#xywh={box.xywh()}",
    }


def annotation_page(
    canvas: Canvas, regions: Iterable[Region], links: Links, version: int,
    classes: Mapping[int, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The annotations of one canvas: a v3 AnnotationPage or a v2 ``sc:AnnotationList``."""
    classes = classes or {}
    page_id = links.page_id(canvas.index)
    if version >= 3:
        items = [a for r in regions if (a := annotation_v3(r, canvas, links, classes.get(r.key, ()))) is not None]
        return {"@context": PRESENTATION3, "id": page_id, "type": "AnnotationPage", "items": items}
    resources = [a for r in regions if (a := annotation_v2(r, canvas, links, classes.get(r.key, ()))) is not None]
    return {"@context": PRESENTATION2, "@id": page_id, "@type": "sc:AnnotationList", "resources": resources}


def annotate_manifest(
    doc: Mapping[str, Any], regions: Iterable[Region], links: Links, *, embed: bool = False,
    classes: Mapping[int, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A copy of ``doc`` with bookidx's annotations and Content Search services added.

    Every canvas with regions gets a reference to its annotation page (v3 ``annotations``, v2
    ``otherContent``), or the whole page when ``embed`` is true; what the manifest already
    references is kept. The manifest's ``service`` gains the search services in ``links``.
    """
    out = copy.deepcopy(dict(doc))
    info = _read(doc)
    version = info.version
    by_canvas = regions_by_canvas(doc, regions, info)
    for canvas in canvases(out):
        found = by_canvas.get(canvas.index)
        if not found:
            continue
        raw = canvas.raw  # the dict inside ``out``: changed in place
        if embed:
            page = annotation_page(canvas, found, links, version, classes)
            del page["@context"]
        elif version >= 3:
            page = {"id": links.page_id(canvas.index), "type": "AnnotationPage"}
        else:
            page = {"@id": links.page_id(canvas.index), "@type": "sc:AnnotationList"}
        key = "annotations" if version >= 3 else "otherContent"
        raw[key] = [p for p in jsonld.as_list(raw.get(key)) if jsonld.raw_id(p) != jsonld.raw_id(page)] + [page]
    services = [s for s in jsonld.as_list(out.get("service")) if jsonld.raw_id(s) not in (links.search, links.search1)]
    if version >= 3:
        if links.search:
            services.append({"id": links.search, "type": "SearchService2"})
        if links.search1:
            services.append({"id": links.search1, "type": "SearchService1", "profile": SEARCH1_PROFILE})
    elif links.search1:
        services.append({"@context": SEARCH1_CONTEXT, "@id": links.search1, "profile": SEARCH1_PROFILE})
    if services:
        out["service"] = services
    else:  # only bookidx's own services were there, from an earlier annotation
        out.pop("service", None)
    return out


def annotate_files(
    manifest_paths: Sequence[str | Path],
    index_dir: str | Path,
    out_dir: str | Path,
    *,
    base_url: str | None = None,
    api_url: str | None = None,
) -> list[Path]:
    """Write annotated copies of manifests, with the regions the index holds for them.

    For each manifest, ``<out_dir>/<slug>/manifest.json``. With ``base_url`` (where
    ``out_dir`` will be published) each canvas's annotations go to
    ``<out_dir>/<slug>/annotations/<canvas index>.json`` and the manifest references them as
    ``<base_url>/<slug>/annotations/<canvas index>.json``; without it they are embedded in the
    manifest, with ids made from the manifest's id. Static files cannot answer searches, so no
    Content Search service is advertised (the blueprint's ``/iiif/<slug>/manifest.json`` does).

    Args:
        manifest_paths: manifest files, ids of manifests stored with the index, or http(s)
            URLs of manifests (fetched with bookidx's HTTP client when not stored).
        index_dir: the index whose regions are added.
        out_dir: created if missing.
        base_url: public URL of ``out_dir``; None embeds the annotation pages.
        api_url: where the blueprint serves, for the "similar images" links: its root, as
            ``bookidx serve`` prints it (``https://host/bookidx/``), or its API root (a path
            ending in ``/api``); the rule is apiroot.py's. None leaves the links out.

    Returns:
        The files written, manifests and annotation pages.

    Raises:
        BadRequest: ``api_url`` is not an http(s) URL, or is a site's bare root.
        NotFound: a name is neither a file, nor a manifest stored with the index, nor a URL.
        FetchError: a manifest URL could not be fetched.
        SourceError: a file is not a IIIF manifest.
    """
    from .fetch import Fetcher
    from .store import Index  # the index (usearch, SQLite) is only needed here

    out_root = Path(out_dir)
    written: list[Path] = []
    root = None if api_url is None else api_root(api_url)
    similar = None if root is None else functools.partial(similar_link, root)
    with Index.open(index_dir, readonly=True) as index, Fetcher() as fetcher:
        for name in manifest_paths:
            doc = _read_manifest(name, index_dir, fetcher.get)
            info = read_manifest(doc, source=str(name))
            manifest_slug = slug(str(doc.get("id") or doc.get("@id") or info.id))
            regions = [region for _, region in index.items(manifest=info.id)]
            folder = out_root / manifest_slug
            if base_url is None:
                base = _brace_safe(info.id)
                links = Links(page=base + "#bookidx-annotations-{index}", annotation=base + "#bookidx-{key}", similar=similar)
                annotated = annotate_manifest(doc, regions, links, embed=True)
            else:
                base = _brace_safe(base_url.rstrip("/")) + "/" + manifest_slug
                links = Links(page=base + "/annotations/{index}.json", annotation=base + "/annotation/{key}", similar=similar)
                annotated = annotate_manifest(doc, regions, links)
                by_canvas = regions_by_canvas(doc, regions, info)
                for canvas in canvases(doc):
                    if canvas.index in by_canvas:
                        page = annotation_page(canvas, by_canvas[canvas.index], links, info.version)
                        written.append(_write_json(folder / "annotations" / f"{canvas.index}.json", page))
            written.append(_write_json(folder / "manifest.json", annotated))
    return written


def _read(doc: Mapping[str, Any]) -> ManifestInfo:
    return read_manifest(doc, source=str(doc.get("id") or doc.get("@id") or "manifest"))


def _read_manifest(name: str | Path, index_dir: str | Path, get: Callable[[str], bytes]) -> dict[str, Any]:
    """A manifest file, else the manifest stored with the index under this id (what was
    indexed), else the manifest at this http(s) URL, fetched with ``get``."""
    path, text = Path(name), str(name)
    if path.is_file():
        return _manifest_object(path.read_bytes(), str(path))
    try:
        return load_manifest(index_dir, slug(text))
    except NotFound:
        if not is_http(text):
            raise NotFound("no such file, and no manifest with this id is stored with the index", text) from None
    return _manifest_object(get(text), text)


def _manifest_object(data: bytes, source: str) -> dict[str, Any]:
    doc = parse_json(data, source=source)
    if not isinstance(doc, dict):
        raise SourceError("not a IIIF manifest (not a JSON object)", source)
    return doc


def _write_json(path: Path, doc: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _tags(region: Region, classes: Sequence[str]) -> list[str]:
    tags: list[str] = []
    for tag in (region.kind, *region.tags, *classes):
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _language(region: Region) -> str | None:
    language = (region.book.language if region.book else "").strip()
    return language if _LANGUAGE_TAG.fullmatch(language) else None
