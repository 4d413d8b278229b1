"""IIIF out, served: annotated manifests, annotation pages and Content Search for one collection.

Routes (``<slug>`` = first 16 hex of the SHA-256 of the manifest id, see manifests.py):

* ``GET /iiif/<slug>/manifest.json``: the manifest the index was built from, with a reference
  to each canvas's bookidx annotations and the Content Search services (2.0 and 1.0) added.
* ``GET /iiif/<slug>/annotations/<canvas index>``: one canvas's annotations, a Presentation 3
  ``AnnotationPage`` or a 2.1 ``sc:AnnotationList`` after the manifest's own version.
* ``GET /iiif/<slug>/search?q=&motivation=&page=``: Content Search 2.0 (contentsearch.py).
* ``GET /iiif/<slug>/search1?q=&motivation=&page=``: Content Search 1.0, which Mirador 3 and 4
  and the Universal Viewer use.

A search within a manifest lists every keyword (BM25) hit on captions and page text and, when
the index's model reads text, the ``VISUAL_HITS`` best text → image hits, merged by reciprocal
rank fusion (bookidx.search.fuse). Vector search has no cut-off: every picture is some query's
nearest neighbour, so listing all of them would bury the keyword hits. Without ``q`` the search
lists all of the manifest's annotations (spec: an absent parameter does not restrict).

IIIF resources are public documents meant for any viewer on any site: responses, errors
included (a viewer must be able to read why), carry ``Access-Control-Allow-Origin: *``
(Presentation 3.0 §6.2 asks for CORS). Errors are the blueprint's JSON errors; a canvas that is
not a number is one too (a 404), not the host app's HTML page, so the route takes any string.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from flask import Blueprint, Response, request
from werkzeug.wrappers import Response as BaseResponse

from ..adapters.iiif import ManifestInfo, read_manifest
from ..annotate import PRESENTATION2, PRESENTATION3, Links, annotate_manifest, annotation_page, canvas_index, canvases
from ..contentsearch import (
    SEARCH2_CONTEXT,
    Result,
    ResultPage,
    ignored_parameters,
    motivations,
    query_terms,
    result,
    search_v1,
    search_v2,
)
from ..errors import NotFound
from ..manifests import load_manifest
from ..search import Query, fuse, run, supports_text
from ..store import Filters
from . import params
from .state import collection, current_embedder, current_index, external_url, setting

#: Text → image hits listed per Content Search (keyword hits are all listed).
VISUAL_HITS = 10
SEARCH1_CONTEXT_TYPE = 'application/ld+json;profile="http://iiif.io/api/search/1/context.json"'


ENDPOINTS = ("iiif_manifest", "iiif_annotations", "iiif_search", "iiif_search1")


def add_iiif_routes(bp: Blueprint) -> None:
    """Register the IIIF-out views on ``bp``."""
    bp.add_url_rule("/iiif/<slug>/manifest.json", "iiif_manifest", manifest)
    bp.add_url_rule("/iiif/<slug>/annotations/<canvas>", "iiif_annotations", annotations)
    bp.add_url_rule("/iiif/<slug>/search", "iiif_search", search)
    bp.add_url_rule("/iiif/<slug>/search1", "iiif_search1", search1)
    bp.after_request(_public)


def _public(response: BaseResponse) -> BaseResponse:
    """Any origin may read what the IIIF routes answer, errors included."""
    if (request.endpoint or "").rpartition(".")[2] in ENDPOINTS:
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def manifest(slug: str) -> Response:
    doc, info = _stored(slug)
    regions = [region for _, region in current_index().items(manifest=info.id)]
    return _json(annotate_manifest(doc, regions, _links(slug)), _presentation_type(info.version))


def annotations(slug: str, canvas: str) -> Response:
    doc, info = _stored(slug)
    # ASCII digits only: str.isdigit() also takes "١" and "²", which int() reads or refuses.
    number = int(canvas) if canvas.isascii() and canvas.isdigit() and len(canvas) <= 18 else None
    found = next((c for c in canvases(doc) if c.index == number), None)
    page_id = next((p.id for p in info.pages if p.index == number), None)
    if found is None or page_id is None:
        raise NotFound(f"manifest {slug} has no canvas {canvas[:40]!r} with an image", "canvas")
    regions = [region for _, region in current_index().items(manifest=info.id, canvas=page_id)]
    page = annotation_page(found, regions, _links(slug), info.version)
    return _json(page, _presentation_type(info.version))


def search(slug: str) -> Response:
    """Content Search 2.0."""
    return _search(slug, ".iiif_search", search_v2, f'application/ld+json;profile="{SEARCH2_CONTEXT}"')


def search1(slug: str) -> Response:
    """Content Search 1.0."""
    return _search(slug, ".iiif_search1", search_v1, SEARCH1_CONTEXT_TYPE)


def _search(slug: str, endpoint: str, build: Callable[..., dict], content_type: str) -> Response:
    doc, info = _stored(slug)
    q = params.text(request.args) or ""
    wanted = motivations(request.args.get("motivation"))
    limit = setting("BOOKIDX_DEFAULT_LIMIT")
    number = params.integer(request.args, "page", 1, minimum=1)
    found = _results(info.id, q)
    if wanted is not None:
        found = [r for r in found if r.motivation in wanted]

    kept = {name: request.args[name] for name in ("q", "motivation") if request.args.get(name)}
    whole = external_url(endpoint, slug=slug, **kept)
    pages = max(1, -(-len(found) // limit))
    if number > pages:
        raise NotFound(f"page {number} is past the last page of results ({pages})", "page")

    def url(n: int) -> str:
        return external_url(endpoint, slug=slug, **kept, page=n)

    paged = pages > 1
    where = ResultPage(
        id=url(number) if paged else whole,
        start_index=(number - 1) * limit,
        total=len(found),
        collection=whole if paged else None,
        first=url(1) if paged else None,
        last=url(pages) if paged else None,
        next=url(number + 1) if number < pages else None,
        prev=url(number - 1) if paged and number > 1 else None,
        ignored=ignored_parameters(request.args),
    )
    shown = found[(number - 1) * limit : number * limit]
    return _json(build(shown, canvas_index(doc, info), _links(slug), where), content_type)


def _results(manifest_id: str, q: str) -> list[Result]:
    """Keyword hits and the best text → image hits within one manifest, fused; all items without q."""
    index = current_index()
    filters = Filters(manifest=manifest_id)
    depth = setting("BOOKIDX_MAX_DEPTH")
    if not q:
        return [Result(region) for _, region in index.items(manifest=manifest_id, limit=depth)]
    keyword = index.text_search(q, k=depth, filters=filters)
    visual = []
    if supports_text(index, current_embedder):
        visual = run(index, Query(text=q, mode="vector", filters=filters, limit=VISUAL_HITS), current_embedder)
    ranked = fuse([keyword, visual]) if keyword and visual else keyword or visual
    terms = query_terms(q)
    return [result(hit.region, terms, hit.cls) for hit in ranked]


def _stored(slug: str) -> tuple[dict[str, Any], ManifestInfo]:
    """The stored manifest and what the adapter reads from it (its id as the index has it)."""
    index_dir = collection().index_dir or setting("BOOKIDX_INDEX_PATH")
    doc = load_manifest(index_dir, slug)
    return doc, read_manifest(doc, source=f"manifest {slug}")


def _links(slug: str) -> Links:
    base = external_url(".iiif_manifest", slug=slug).rsplit("/", 1)[0]
    return Links.served(base, lambda key: external_url(".item_similar", item_id=str(key)))


def _presentation_type(version: int) -> str:
    context = PRESENTATION3 if version >= 3 else PRESENTATION2
    return f'application/ld+json;profile="{context}"'


def _json(doc: dict[str, Any], content_type: str) -> Response:
    return Response(json.dumps(doc, ensure_ascii=False), content_type=content_type)
