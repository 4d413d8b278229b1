"""Exact image retrieval on the NLS chapbook pages: the NLN protocol baseline and what beats it.

Reproduces the table in docs/quality.md. Every row runs ``bookidx.evaluate.exact`` (the
protocol of arXiv:2410.14969: crops <= 15 %/side, rotation <= 10 deg, scaling <= 20 %/axis; the
same seeded queries for every row) over a real index built by ``bookidx.runner.index``:

* ``baseline``    efficientnet-lite0, stretched to 224 x 224, one vector per page (the protocol as
                  published: one embedding, nearest neighbours);
* ``keep-aspect`` (a) the same, letterboxed instead of stretched;
* ``crop-views``  (b) index-time views: the page plus two centred crops (85 %, 70 %) embedded as
                  extra vectors that map back to their page (max over an item's views);
                  a bench-only experiment (the store holds one vector per item);
* ``rmac``        (b) regional views pooled from one forward pass (efficientnet-lite0-rmac);
* ``... +rerank@D`` (c) the first D hits re-ranked by ORB keypoints + RANSAC (rerank.py).

The plot shows Top-k with the chapbooks' candidate duplicate pairs accepted; the table both.

Indexes are kept in --work, so a second run only re-measures the queries. The full run (500
queries, every row, fresh indexes) takes about half an hour on 2 busy CPU cores::

    rm -rf /tmp/bookidx-bench-exact
    python bench/exact_retrieval.py --n 500 --json bench/data/exact_retrieval.json --plot docs/exact_retrieval.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from bookidx.config import IndexConfig
from bookidx.crops import CropReader
from bookidx.embed import load_for_index
from bookidx.evaluate import KS, REFERENCE, ExactResult, exact, plot_exact
from bookidx.fetch import Fetcher
from bookidx.itemrefs import read_duplicates
from bookidx.rerank import SIDE, Reranker
from bookidx.runner import index as build_index
from bookidx.store import Hit, Index

CHAPBOOKS = Path(__file__).resolve().parents[2] / "shared/corpus-images/nls-chapbooks-printed-in-scotland"
INDEXES = {  # name -> (model, keep_aspect)
    "baseline": ("efficientnet-lite0", False),
    "keep-aspect": ("efficientnet-lite0", True),
    "rmac": ("efficientnet-lite0-rmac", False),
}
# row -> (index, rerank depth or None, extra views)
ROWS = {
    "baseline": ("baseline", None, False),
    "keep-aspect": ("keep-aspect", None, False),
    "crop-views": ("baseline", None, True),
    "rmac": ("rmac", None, False),
    "baseline +rerank@100": ("baseline", 100, False),
    "rmac +crop-views": ("rmac", None, True),
    "rmac +rerank@50": ("rmac", 50, False),
    "rmac +rerank@100": ("rmac", 100, False),
    "rmac +rerank@200": ("rmac", 200, False),
    "rmac +crop-views +rerank@100": ("rmac", 100, True),
}
VIEW_CROPS = (0.85, 0.70)  # centred crops (share of each side) embedded beside the whole page


def ensure_index(name: str, images: Path, work: Path) -> tuple[Path, float]:
    """Build (or reuse) one index; returns its folder and the build's seconds per item.

    The build time is saved beside the index (``<name>.build.json``), so a re-run that reuses
    the index still reports it.
    """
    model, keep_aspect = INDEXES[name]
    out, timing = work / name, work / f"{name}.build.json"
    config = IndexConfig(model=model, keep_aspect=keep_aspect, device="cpu", workers=2)
    summary = build_index([str(images)], out, config)
    print(f"index {name}: {summary.indexed} new, {summary.already} already; {summary.wall:.0f}s", file=sys.stderr)
    if summary.indexed and not summary.already:  # a whole build: its time is the index's cost
        timing.write_text(json.dumps({"items": summary.indexed, "seconds": summary.wall}))
    built = json.loads(timing.read_text()) if timing.is_file() else None
    return out, built["seconds"] / built["items"] if built else float("nan")


class ViewSearch:
    """Extra index-time views as vectors that map back to their item; an item scores its best view.

    Built by reading each item like the indexer and embedding the centred crops of VIEW_CROPS;
    the item's own vector (from the index) is its first view.
    """

    def __init__(self, index: Index, embedder, reader: CropReader):
        items = index.items()
        self.regions = dict(items)
        t0 = time.perf_counter()
        blocks = []
        for start in range(0, len(items), 16):
            batch = items[start : start + 16]
            crops = [centred(reader.read(region), share) for _, region in batch for share in VIEW_CROPS]
            extra = embedder.embed_images(crops).reshape(len(batch), len(VIEW_CROPS), -1)
            whole = np.stack([index.vector(key) for key, _ in batch])[:, None, :]
            blocks.append(np.concatenate([whole, extra], axis=1).reshape(-1, extra.shape[-1]))
        self.seconds_per_item = (time.perf_counter() - t0) / max(1, len(items))
        self.matrix = np.concatenate(blocks).astype(np.float32)
        self.keys = np.repeat(np.fromiter((key for key, _ in items), np.int64), 1 + len(VIEW_CROPS))
        self.bytes = self.matrix.size * 2  # stored as f16, like the index's vectors

    def __call__(self, queries: np.ndarray, k: int) -> list[list[Hit]]:
        sims = queries @ self.matrix.T
        out = []
        for row in sims:
            best: dict[int, float] = {}
            for j in np.argsort(-row):
                key = int(self.keys[j])
                if key not in best:
                    best[key] = float(row[j])
                    if len(best) == k:
                        break
            out.append([Hit(key, score, self.regions[key]) for key, score in best.items()])
        return out


def centred(image, share: float):
    w, h = image.size
    dx, dy = round(w * (1 - share) / 2), round(h * (1 - share) / 2)
    return image.crop((dx, dy, w - dx, h - dy))


def run_row(label: str, folder: Path, rerank: int | None, views: bool, n: int, seed: int,
            duplicates_csv: Path) -> tuple[ExactResult, dict]:
    with Index.open(folder) as idx, Fetcher(cache_dir=folder / "cache") as fetcher:
        embedder = load_for_index(idx.info["model"], device="cpu")
        reader = CropReader(fetcher, max_side=max(2 * embedder.input_size, SIDE if rerank else 0))
        dups, _ = read_duplicates(duplicates_csv, idx)
        reranker = Reranker(reader, depth=rerank) if rerank else None
        extra: dict = {}
        search = None
        if views:
            search = ViewSearch(idx, embedder, reader)
            extra = {"views_per_item": 1 + len(VIEW_CROPS), "view_seconds_per_item": search.seconds_per_item,
                     "vector_bytes": search.bytes}
        t0 = time.perf_counter()
        result = exact(idx, embedder, reader, n=n, seed=seed, duplicates=dups, reranker=reranker, search=search)
        extra["wall"] = time.perf_counter() - t0
        extra["vector_bytes"] = extra.get("vector_bytes", idx.stats()["vector_bytes"])
    print(f"{label}: " + " ".join(f"top{k} {100 * result.accuracy(k, False):.1f}" for k in KS), file=sys.stderr)
    return result, extra


def table(rows: list[tuple[str, ExactResult, dict, float]]) -> list[str]:
    out = [("| row | Top-1 | Top-5 | Top-10 | Top-50 | Top-1, duplicates ok | vectors (MiB) | index s/item | "
            "query ms (embed + search + rerank) |"),
           "|---|---|---|---|---|---|---|---|---|"]
    for label, result, extra, per_item in rows:
        cells = [f"{100 * result.accuracy(k, False):.1f}" for k in KS]
        ms = result.ms_per_query()
        query_ms = ms["embed"] + ms["search"] + ms.get("rerank", 0.0)
        index_s = per_item + extra.get("view_seconds_per_item", 0.0)
        out.append(f"| {label} | " + " | ".join(cells) + f" | {100 * result.accuracy(1, True):.1f} | "
                   f"{extra['vector_bytes'] / 2**20:.2f} | {index_s:.2f} | {query_ms:.0f} "
                   f"({ms['embed']:.0f} + {ms['search']:.1f} + {ms.get('rerank', 0.0):.0f}) |")
    for name, vals in REFERENCE.items():
        out.append(f"| NLN {name} (their books) | " + " | ".join(str(v) for v in vals) + " | | | | |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="queries (the protocol sample); 500 = every page")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    ap.add_argument("--corpus", type=Path, default=CHAPBOOKS, help="folder with images/ and the duplicates CSV")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "bookidx-bench-exact")
    ap.add_argument("--json", type=Path, help="save every row's results here")
    ap.add_argument("--per-query", action="store_true", help="with --json: keep every query's rank and distortion")
    ap.add_argument("--plot", type=Path, help="save a PNG of the rows here")
    args = ap.parse_args()

    chosen = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = set(chosen) - set(ROWS)
    if unknown:
        raise SystemExit(f"unknown rows: {', '.join(sorted(unknown))}")
    duplicates_csv = args.corpus / "candidate_near_duplicate_pairs.csv"
    built: dict[str, tuple[Path, float]] = {}
    rows = []
    for label in chosen:
        name, rerank, views = ROWS[label]
        if name not in built:
            built[name] = ensure_index(name, args.corpus / "images", args.work)
        folder, per_item = built[name]
        result, extra = run_row(label, folder, rerank, views, args.n, args.seed, duplicates_csv)
        rows.append((label, result, extra, per_item))

    print(f"\n{args.n} queries, seed {args.seed}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; Top-k in %, exact item (the source page) unless said\n")
    print("\n".join(table(rows)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        saved = {}
        for label, result, extra, per_item in rows:
            data = {**result.to_dict(), "bench": extra, "index_seconds_per_item": per_item}
            if not args.per_query:
                del data["per_query"]
            saved[label] = data
        args.json.write_text(json.dumps(saved, indent=1))
    if args.plot:
        plot_exact([(label, result) for label, result, _, _ in rows], args.plot)


if __name__ == "__main__":
    main()
