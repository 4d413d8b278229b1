"""``bookidx search``: a thin shell over search.run (and rerank.search for ``--rerank``),
registered on the main group by importing this module (cli.py).

What it adds to the library: the query image read from a file (an error naming it when it is
no image), the web API's defaults for re-ranking (options.py), a budget no candidate read
outlives (rerank_budget.py), and a reason on stderr when a text query finds nothing because the
index's model reads no text (search.text_unread).
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Callable

import click

from .cli import _errors, cli
from .errors import BadRequest, SourceError
from .options import RERANK_DEPTH, RERANK_SECONDS, web_default

if TYPE_CHECKING:  # imported when run, so `bookidx --help` stays quick
    from .search import Query
    from .store import Hit, Index


@cli.command("search")
@click.argument("index_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("text", required=False)
@click.option("--image", "image_file", type=click.Path(exists=True, dir_okay=False), help="Find images similar to this file.")
@click.option("--similar", type=int, default=None, help="Find images similar to this indexed item id.")
@click.option("--weight", type=float, default=0.5, show_default=True, help="Image share when text and image are combined.")
@click.option("--mode", type=click.Choice(["fused", "vector", "keyword"]), default="fused", show_default=True)
@click.option("-k", "--limit", type=int, default=10, show_default=True)
@click.option("--manifest", default=None, help="Only hits from this manifest or book id.")
@click.option("--kind", "kinds", multiple=True, help="Only these region kinds (repeatable).")
@click.option("--class", "classes", multiple=True, help="Only items of these classes (repeatable; see `bookidx classify`).")
@click.option("--collapse", is_flag=True, help="One hit per near-duplicate group (see `bookidx duplicates`).")
@click.option("--rerank", is_flag=True, help="With --image: put the hits whose keypoints match the image first, with their inlier counts (OpenCV).")
@RERANK_DEPTH
@RERANK_SECONDS
@click.option("--device", default="cpu", show_default=True, help="Device for the query encoder.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines, one hit each: 'id' is the item key as a string, as the web API gives it "
                   "('key', the same as a number, can be too large for JavaScript).")
@_errors
def search_cmd(index_dir, text, image_file, similar, weight, mode, limit, manifest, kinds, classes, collapse, rerank, rerank_depth,
               rerank_seconds, device, as_json):
    """Search INDEX_DIR by TEXT (captions always; images with vision-language models), --image or --similar."""
    from .embed import load_for_index
    from .search import Query, run
    from .store import Filters, Index

    if not (text and text.strip()) and image_file is None and similar is None:
        raise BadRequest("give a TEXT to search for, --image FILE or --similar ID", "TEXT")
    idx = Index.open(index_dir)
    model = functools.cache(lambda: load_for_index(idx.info["model"], device=device))
    image = _read_image(image_file) if image_file else None
    filters = Filters(manifest=manifest, kinds=tuple(kinds), classes=tuple(classes)) if manifest or kinds or classes else None
    if rerank and image is None:
        raise BadRequest("--rerank checks hits against the --image file; give one", "rerank")
    query = Query(text=text, image=image, similar=similar, weight=weight, mode=mode, filters=filters, limit=limit, collapse=collapse)
    if rerank:  # docs/quality.md: exact-image Top-1 from 56 % to 98 % (R-MAC index, depth 100)
        hits = _reranked(idx, query, model, rerank_depth, rerank_seconds)
    else:
        hits = [(hit, None) for hit in run(idx, query, model)]
    for rank, (hit, inliers) in enumerate(hits, 1):
        r = hit.region
        if as_json:
            extra = {"class": hit.cls, "group": None if hit.group is None else str(hit.group), "group_size": hit.group_size}
            if rerank:  # as the web API's hits: None where a hit was not checked
                extra["inliers"] = inliers
            click.echo(json.dumps({"id": str(hit.key), "score": hit.score, **extra, **r.to_dict()}, ensure_ascii=False))
            continue
        where = r.page.label or f"page {r.page.index + 1}"
        title = r.book.title if r.book and r.book.title else (r.page.manifest or r.source)
        labels = (f"  [{hit.cls}]" if hit.cls else "") + (f"  ({hit.group_size} copies)" if hit.group_size > 1 else "")
        checked = "" if not rerank else "  not checked" if inliers is None else f"  {inliers} inliers"
        click.echo(f"{rank:>3}. {hit.score:.4f}{checked}  id {hit.key}  {r.kind} {r.box.xywh()}  {where}  {title}{labels}")
        image_ref = r.page.image.path or r.page.image.service or r.page.image.url
        click.echo(f"     {image_ref}")
        if r.caption:
            click.echo(f"     “{r.caption[:120]}”")
    if not hits:
        click.echo("no hits" + _why_no_hits(idx, query, model), err=True)


def _why_no_hits(idx: Index, query: Query, model: Callable) -> str:
    """Why a text-only query found nothing, when it is the model's doing (search.text_unread)."""
    from .search import text_unread

    if query.image is not None or query.similar is not None or query.mode == "keyword":
        return ""
    why = text_unread(idx, model, f"{query.text!r} was")
    if why is None:
        return ""
    return (f": {why}, and none has them (images from a folder have no captions). "
            "Search by --image FILE or --similar ID, or index with a model that reads text (siglip, clip).")


def _read_image(path: str) -> Any:
    """The query image in ``path``, decoded now so that a file that is no image is an error
    naming it (not a traceback from the model).

    Raises:
        SourceError: the file is not an image Pillow reads, or is too large to decode safely.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        raise SourceError(f"not a readable image ({e})", path) from None


def _reranked(idx: Index, query: Query, model: Callable, depth: int | None, seconds: float | None) -> list[tuple[Hit, int | None]]:
    """``query``'s hits through ``rerank.search``, the web API's ``rerank=true``: the first
    ``depth`` re-ordered by inliers, collapse after re-ranking, candidates not read within
    ``seconds`` (0: no limit) not checked. None for either: the web API's default.

    Candidates are read from their sources with no disk cache, as the web API does: a search
    only reads, so it writes nothing into the index directory (or anywhere else).
    """
    # Imported here, not at the top: numpy, OpenCV and Flask (web/config.py) need not load for `bookidx --help`.
    from .rerank import search
    from .rerank_budget import command_reranker

    depth = web_default("BOOKIDX_RERANK_DEPTH", depth)
    budget = web_default("BOOKIDX_RERANK_SECONDS", seconds) or None
    with command_reranker(depth, budget) as reranker:
        return [(c.hit, c.inliers) for c in search(idx, query, model, reranker)]
