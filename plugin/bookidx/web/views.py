"""The JSON API of one collection: search, items, similar items, manifests, stats, health, crops.

The endpoints, parameters and response shapes are specified by the OpenAPI 3.1 document that
``GET <prefix>/openapi.json`` serves (built in web/openapi.py). Ranking is ``bookidx.search``'s,
shared with the CLI: ``fused`` is reciprocal rank fusion (k = 60) of the keyword (BM25) and
vector lists; see that module. ``rerank`` re-orders an image query's first hits by geometric
verification (``bookidx.rerank.search``). The views are plain functions over the request
context; all state is the collection's (web/state.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request

from ..adapters.records import Region
from ..errors import BadRequest, NotFound
from ..rerank import Reranker
from ..rerank import search as rerank_search
from ..search import Query, run, supports_text, text_unread
from . import openapi, params
from .crops import crop_jpeg
from .images import fetched_image, uploaded_image
from .state import (
    current_embedder,
    current_index,
    current_reranker,
    external_url,
    hit_json,
    manifest_links,
    model_loaded,
    region_json,
    setting,
    thumbnail,
)

#: Query parameters carried over into the ``next`` link (everything else is dropped).
NEXT_PARAMS = ("q", "similar", "image_url", "mode", "w", "limit", "collapse", "rerank", *params.FILTER_PARAMS)


def add_routes(bp: Blueprint) -> None:
    """Register the API views on ``bp`` (endpoint names are what ``url_for(".name")`` uses)."""
    bp.add_url_rule("/", "page", page)
    bp.add_url_rule("/api/search", "search", search, methods=["GET"])
    bp.add_url_rule("/api/search", "search_image", search_image, methods=["POST"])
    bp.add_url_rule("/api/items/<item_id>", "item", item)
    bp.add_url_rule("/api/items/<item_id>/similar", "item_similar", item_similar)
    bp.add_url_rule("/api/items/<item_id>/duplicates", "item_duplicates", item_duplicates)
    bp.add_url_rule("/api/manifests", "manifests", manifests)
    bp.add_url_rule("/api/stats", "stats", stats)
    bp.add_url_rule("/api/health", "health", health)
    bp.add_url_rule("/openapi.json", "openapi", openapi_json)
    bp.add_url_rule("/crops/<item_id>.jpg", "crop", crop)


def page() -> Any:
    """The collection's own search page: the widget over this API (hosts embed it instead)."""
    return render_template(
        "bookidx/search.html", title=f"Image search: {request.blueprint}", items=len(current_index()),
        base=external_url(".page"), limit=setting("BOOKIDX_DEFAULT_LIMIT"),
    )


def search() -> Any:
    """Text, item→similar (``similar``) or image-URL (``image_url``) search."""
    args = request.args
    params.once(args)
    similar = params.key(args["similar"], "similar") if "similar" in args else None
    reranker = _reranker(args, has_image=bool(args.get("image_url")))  # refused before any fetch
    image = fetched_image(args["image_url"]) if args.get("image_url") else None
    return _results(args, text=params.text(args), image=image, similar=similar, weight=params.weight(args),
                    reranker=reranker, endpoint=".search")


def search_image() -> Any:
    """Image search: the multipart ``image`` field, optionally mixed with text ``q`` by ``w``.

    The next page cannot be a link (it needs the image again), so ``next`` is null and ``more``
    says whether to post again with ``page`` + 1.
    """
    params.once(request.args)
    reranker = _reranker(request.args, has_image=True)  # refused before reading the upload
    image = uploaded_image()
    form = request.form
    params.once(form)
    text, weight = params.text(form), params.weight(form)
    understood = params.echo(request.args, params.UPLOAD_ECHOED) | params.echo(form, ("w",)) | ({"q": text} if text else {})
    return _results(request.args, text=text, image=image, weight=weight, reranker=reranker, endpoint=None,
                    echo=understood)


def item(item_id: str) -> Any:
    index = current_index()
    key = params.key(item_id, "id", missing=NotFound)
    out = item_json(index.get(key))
    group = index.group(key)  # near-duplicates: the same picture elsewhere (dedup.py)
    out["group"] = str(min(group)) if group else None
    out["group_size"] = max(len(group), 1)
    out["duplicates"] = [str(k) for k in group if k != key]
    return jsonify(out)


def item_duplicates(item_id: str) -> Any:
    """The other items of this item's near-duplicate group (dedup.py), most similar first."""
    from ..store import Filters

    index = current_index()
    key = params.key(item_id, "id", missing=NotFound)
    group = index.group(key)
    hits = []
    if len(group) > 1:
        filters = Filters(group=min(group))
        hits = index.search(index.vector(key), k=len(group) - 1, filters=filters, exclude=(key,))
    return jsonify({
        "id": str(key),
        "group": str(min(group)) if group else None,
        "group_size": max(len(group), 1),
        "hits": [hit_json(h) for h in hits],
    })


def item_similar(item_id: str) -> Any:
    key = params.key(item_id, "id", missing=NotFound)
    params.once(request.args)
    return _results(
        request.args, text=None, similar=key, mode="vector",
        endpoint=".item_similar", view_args={"item_id": item_id}, echo={"similar": item_id},
    )


def manifests() -> Any:
    """The manifests (or books) in the index; those the index keeps a copy of carry its slug and
    the IIIF routes serving it, annotated and searchable (``links``), else null."""
    out = []
    for entry in current_index().manifests():
        served = manifest_links(entry["id"])
        out.append(entry | {"slug": served[0] if served else None, "links": served[1] if served else None})
    return jsonify({"manifests": out})


def stats() -> Any:
    index = current_index()
    counts = index.stats()  # cached until the next commit; len(index) would count again (5 ms at 1M)
    return jsonify({"items": counts["items"], "model": index.info["model"], "stats": counts})


def health() -> Any:
    """Cheap liveness and readiness: the index opens; says whether the query model is loaded."""
    index = current_index()
    return jsonify({"status": "ok", "items": len(index), "model": index.info["model"]["model"], "model_loaded": model_loaded()})


def openapi_json() -> Any:
    return jsonify(openapi.document())


def crop(item_id: str) -> Any:
    """A thumbnail-sized JPEG of the item, for collections whose pages have no IIIF service."""
    key = params.key(item_id, "id", missing=NotFound)
    region = current_index().get(key)
    if region.page.image.service:  # the IIIF server cuts it better and closer to the viewer
        return redirect(thumbnail(region), code=302)
    side = setting("BOOKIDX_THUMBNAIL_SIZE")
    response = current_app.response_class(crop_jpeg(region, side), mimetype="image/jpeg")
    # A key names one image and one box for good, so a crop never changes: cache it hard.
    response.set_etag(f"{key}-{side}")
    response.cache_control.public = True
    response.cache_control.max_age = 7 * 24 * 3600
    return response.make_conditional(request)


def item_json(region: Region) -> dict[str, Any]:
    """An item's full record: the HIT fields plus context, box, image and book details.

    Local file paths are left out: they say nothing to a client and something to an attacker.
    """
    out = region_json(region)
    page, image, book = region.page, region.page.image, region.book
    out["page"] = {"index": page.index, "label": page.label, "id": page.id, "width": page.width, "height": page.height}
    out["box"] = {"x": region.box.x, "y": region.box.y, "w": region.box.w, "h": region.box.h}
    out["image"] = {"width": image.width, "height": image.height, "service": image.service, "api": image.api, "url": image.url}
    out["context"] = region.context
    out["tags"] = list(region.tags)
    if book is not None:
        out["book"].update(language=book.language, metadata=[[k, v] for k, v in book.metadata])
    return out


def _reranker(args: Any, *, has_image: bool) -> Reranker | None:
    """The collection's re-ranker when the request says ``rerank=true``, else None.

    Raises:
        BadRequest: re-ranking is off or unavailable here, or there is no query image.
    """
    if not params.flag(args, "rerank"):
        return None
    reranker = current_reranker()
    if not has_image:
        raise BadRequest("rerank checks hits against a query image: give image_url, or POST the image", "rerank")
    return reranker


def _results(
    args: Any,
    *,
    text: str | None,
    image: Any = None,
    similar: int | None = None,
    weight: float = 0.5,
    mode: str | None = None,
    reranker: Reranker | None = None,
    endpoint: str | None,
    view_args: dict[str, str] | None = None,
    echo: dict[str, Any] | None = None,
) -> Any:
    """Run one query and shape the search response, with a ``next`` link when there is more.

    With a ``reranker`` (image queries only) the hits come from ``bookidx.rerank.search``: the
    first ``BOOKIDX_RERANK_DEPTH`` re-ordered, each with its inlier count; paging as usual.
    """
    paging = params.paging(
        args,
        default_limit=setting("BOOKIDX_DEFAULT_LIMIT"),
        max_results=setting("BOOKIDX_MAX_RESULTS"),
        max_depth=setting("BOOKIDX_MAX_DEPTH"),
    )
    mode = mode or params.mode(args)
    filters = params.filters(args)
    collapse = params.flag(args, "collapse")
    hits: list[tuple[Any, int | None]] = []  # (store.Hit, inliers)
    searched = False
    # Checked after the other parameters, so a request that is wrong twice hears of those first.
    # Nothing to search for is the client's mistake (the CLI refuses it too; the widget never
    # sends it), while a date range that ends before it starts is valid and finds nothing.
    if text is None and image is None and similar is None:
        raise BadRequest("nothing to search for: give q (text), similar (an item id) or image_url, "
                         "or POST an image", "q")
    if params.satisfiable(filters):
        from ..store import Filters

        searched = True
        query = Query(
            text=text, image=image, similar=similar, weight=weight, mode=mode,
            filters=Filters(**filters) if filters else None,
            limit=paging.limit + 1,  # one more than shown tells whether there is a next page
            offset=paging.offset,
            collapse=collapse,
        )
        if reranker is not None:
            checked = rerank_search(current_index(), query, current_embedder, reranker)  # its depth: the setting
            hits = [(c.hit, c.inliers) for c in checked]
        else:
            hits = [(hit, None) for hit in run(current_index(), query, current_embedder)]
    last = params.max_pages(setting("BOOKIDX_MAX_RESULTS"), setting("BOOKIDX_MAX_DEPTH"))
    # "more" means a next page may be asked for: false on the last page the depth cap allows.
    more = len(hits) > paging.limit and paging.page < last
    next_url = None
    if more and endpoint:
        carried = {k: v for k, v in args.lists() if k in NEXT_PARAMS}
        next_url = external_url(endpoint, **(view_args or {}), **carried, page=paging.page + 1)
    visual = image is not None or similar is not None
    return jsonify({
        "query": echo if echo is not None else params.echo(args) | ({"q": text} if text else {}),
        "mode": _effective_mode(mode, visual),
        "page": paging.page,
        "limit": paging.limit,
        "hits": [hit_json(hit, inliers) for hit, inliers in hits[: paging.limit]],
        "next": next_url,
        "more": more,
        "warnings": _why_no_hits(text, mode) if searched and not hits and paging.page == 1 and not visual else [],
    })


def _why_no_hits(text: str | None, mode: str) -> list[str]:
    """Why a text query found nothing, when it is the model's doing (search.text_unread), and what
    to do instead: a folder of images has no words. An explicit mode=keyword asked for exactly
    that, so it needs no explanation."""
    why = text_unread(current_index(), current_embedder, "q was") if text and mode == "fused" else None
    if why is None:
        return []
    return [f"{why}, and none matched (images indexed from a folder have none): search by image (POST one) "
            "or by similar=ID, or index with a model that reads text (siglip, clip)"]


def _effective_mode(mode: str, visual: bool) -> str:
    """What ``bookidx.search.run`` did: image queries are vector searches; fused text queries
    are keyword-only when the model has no text encoder."""
    if visual:
        return "vector"
    if mode == "fused" and not supports_text(current_index(), current_embedder):
        return "keyword"
    return mode
