"""``bookidx eval``: retrieval quality of an index (evaluate.py), as a table and a JSON file.

``bookidx eval exact`` runs the National Library of Norway's exact-image-retrieval protocol
(arXiv:2410.14969); ``bookidx eval queries`` scores labelled text or image queries. Both are thin
shells over :mod:`bookidx.evaluate` and :mod:`bookidx.labelled`; importing this module (the last
lines of cli.py do) registers the command group.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli import _errors, cli
from .options import RERANK_DEPTH, web_default


def _write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        click.echo(f"wrote {path}", err=True)


def _progress(label: str, enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=label, unit=" queries", file=sys.stderr, disable=None)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def _reader(index_dir: str, embedder, crop_size: int | None, rerank: bool):
    """A CropReader over the index's fetch cache, as the indexer reads crops (twice the model
    input), and large enough for re-ranking's keypoints."""
    from .crops import CropReader
    from .fetch import Fetcher
    from .rerank import SIDE

    # Indexing's cache, read (and added to) but never evicted from here: its bound is the
    # index run's setting (cache_max_bytes), which an evaluation does not know.
    fetcher = Fetcher(cache_dir=Path(index_dir) / "cache", cache_max_bytes=0)
    side = max(crop_size or 2 * embedder.input_size, SIDE if rerank else 0)
    return fetcher, CropReader(fetcher, max_side=side)


@cli.group("eval")
def eval_group() -> None:
    """Measure an index's retrieval quality: the exact-image protocol or labelled queries."""


@eval_group.command("exact")
@click.option("--index", "index_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--n", type=int, default=200, show_default=True, help="Items sampled as queries.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the sample and the distortions.")
@click.option("--duplicates", type=click.Path(exists=True, dir_okay=False),
              help="CSV of known duplicate pairs (file_a,file_b names or item ids): hits on them count.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Save the results (and every query) here.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), help="Save a PNG plot here (needs matplotlib).")
@click.option("--rerank", is_flag=True, help="Re-rank the top hits by ORB keypoints + RANSAC (needs OpenCV).")
@RERANK_DEPTH
@click.option("--crop-size", type=int, default=None, help="Longest side read per item (default: twice the model input, as indexing).")
@click.option("--device", default="cpu", show_default=True, help="Device for the model.")
@click.option("--progress/--no-progress", default=True)
@_errors
def exact_cmd(index_dir, n, seed, duplicates, json_out, plot_out, rerank, rerank_depth, crop_size, device, progress):
    """Top-1/5/10/50 accuracy of finding indexed pictures again from distorted copies.

    Each query is a sampled item read like indexing reads it, cropped up to 15 % per side,
    rotated up to 10 degrees and scaled up to 20 % per axis (seeded), then searched for.
    """
    from .embed import load_for_index
    from .evaluate import exact, plot_exact
    from .itemrefs import read_duplicates
    from .rerank import Reranker
    from .store import Index

    index = Index.open(index_dir)
    embedder = load_for_index(index.info["model"], device=device)
    fetcher, reader = _reader(index_dir, embedder, crop_size, rerank)
    dups = None
    if duplicates:
        dups, missing = read_duplicates(duplicates, index)
        click.echo(f"duplicates: {sum(len(v) for v in dups.values()) // 2} pairs among indexed items"
                   + (f" ({len(missing)} names not indexed)" if missing else ""), err=True)
    reranker = Reranker(reader, depth=web_default("BOOKIDX_RERANK_DEPTH", rerank_depth)) if rerank else None
    update, close = _progress("exact", progress)
    try:
        result = exact(index, embedder, reader, n=n, seed=seed, duplicates=dups, reranker=reranker, progress=update)
    finally:
        close()
        fetcher.close()
        index.close()
    for line in result.lines():
        click.echo(line)
    _write_json(json_out, result.to_dict())
    if plot_out:
        plot_exact([(result.model.get("model", "model") + (" +rerank" if rerank else ""), result)], plot_out)
        click.echo(f"wrote {plot_out}", err=True)


@eval_group.command("queries")
@click.argument("queries_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--index", "index_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--mode", type=click.Choice(["fused", "vector", "keyword"]), default="fused", show_default=True,
              help="Search mode for text queries.")
@click.option("--depth", type=int, default=100, show_default=True, help="Hits fetched per query (MRR counts up to here).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Save the results here.")
@click.option("--rerank", is_flag=True, help="Re-rank image queries' hits by ORB keypoints + RANSAC.")
@RERANK_DEPTH
@click.option("--device", default="cpu", show_default=True, help="Device for the query encoder.")
@_errors
def queries_cmd(queries_file, index_dir, mode, depth, json_out, rerank, rerank_depth, device):
    """Recall@1/5/10 and MRR of labelled queries.

    QUERIES_FILE is a CSV with a header: 'query' (text) and/or 'image' (a path, relative to the
    file), and 'relevant': item ids or image file names separated by ';'.
    """
    import functools

    from .embed import load_for_index
    from .labelled import read_queries, score
    from .rerank import Reranker
    from .search import text_unread
    from .store import Index

    index = Index.open(index_dir)
    model = functools.cache(lambda: load_for_index(index.info["model"], device=device))
    fetcher = reranker = None
    try:
        queries, skipped = read_queries(queries_file, index)
        texts = sum(1 for q in queries if q.text and not q.image)
        why = text_unread(index, model, f"the {texts} text queries were") if texts and mode != "keyword" else None
        if why:  # as `bookidx search` says it when it finds nothing
            click.echo(f"warning: {why}", err=True)
        if rerank:
            fetcher, reader = _reader(index_dir, model(), None, True)
            reranker = Reranker(reader, depth=web_default("BOOKIDX_RERANK_DEPTH", rerank_depth))
        result = score(index, queries, model, mode=mode, depth=depth, skipped=skipped, reranker=reranker)
    finally:
        if fetcher is not None:
            fetcher.close()
        index.close()
    for line in result.lines():
        click.echo(line)
    _write_json(json_out, result.to_dict())
