"""Retrieval quality of an index: the exact-image protocol (labelled queries are labelled.py's).

* :func:`exact` follows the exact-image-retrieval experiment of the National Library of Norway
  (Roald, Birkenes & Johnsen, CHR 2024, arXiv:2410.14969, "exact image retrieval"): a seeded
  sample of indexed pictures is read again (through the indexer's CropReader), each copy is
  distorted (distort.py: crops, rotation, scaling), embedded with the index's own model and
  searched for; Top-k accuracy is the share of queries whose source is among the first k hits.
  A hit on a known duplicate of the source counts only when a duplicates file says so.
* A duplicates file (:func:`bookidx.itemrefs.read_duplicates`) says which other items count as
  hits on a query's source; itemrefs.py maps its file names or item ids to item keys.

Results are plain records with ``to_dict()`` (the JSON the CLI saves) and ``lines()`` (its
table). Plotting lives in :func:`plot_exact`, which needs matplotlib (``bookidx[eval]``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .adapters.records import Region
from .crops import CropReader
from .distort import Distortion, draw
from .embed import Embedder
from .errors import BadRequest, SourceError
from .itemrefs import PAGE, region_name
from .rerank import Reranker
from .store import Hit, Index

KS = (1, 5, 10, 50)
#: Published Top-1/5/10/50 accuracy (%) of the NLN protocol on its pre-1900 books (arXiv:2410.14969).
REFERENCE = {"SigLIP": (77, 93, 94, 97), "ViT": (77, 85, 87, 89), "CLIP": (72, 87, 90, 93)}
REFERENCE_NOTE = ("National Library of Norway, pre-1900 books (arXiv:2410.14969): another collection, "
                  "not directly comparable")

Progress = Callable[[int, int], None]  # (done, total)
Searcher = Callable[[np.ndarray, int], Any]  # (query rows, k) -> a list of hits per row


# -- exact-image retrieval -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExactQuery:
    """One query of :func:`exact`. Ranks are 1-based; None: not in the hits searched."""

    key: int
    name: str
    distortion: Distortion
    rank: int | None
    rank_with_duplicates: int | None
    top: int | None  # the first hit's key


@dataclass
class ExactResult:
    """What :func:`exact` measured; ``duplicates`` tells whether duplicate hits were accepted."""

    model: dict
    items: int
    seed: int
    queries: list[ExactQuery]
    duplicates: bool
    rerank: dict | None
    seconds: dict[str, float]  # total per stage: read, embed, search, rerank
    index_bytes: int
    ks: tuple[int, ...] = KS
    failed: list[str] = field(default_factory=list)

    def ranks(self, with_duplicates: bool | None = None) -> list[int | None]:
        use = self.duplicates if with_duplicates is None else with_duplicates
        return [q.rank_with_duplicates if use else q.rank for q in self.queries]

    def accuracy(self, k: int, with_duplicates: bool | None = None) -> float:
        ranks = self.ranks(with_duplicates)
        return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0

    def by_strength(self, bins: int = 4) -> list[dict]:
        """Top-k accuracy per equal-count bin of distortion strength, weakest first."""
        return _bins([(q.distortion.strength, r) for q, r in zip(self.queries, self.ranks())], bins, self.ks)

    def by_component(self, bins: int = 3) -> dict[str, list[dict]]:
        """Top-k accuracy per equal-count bin of each kind of distortion alone."""
        ranks = self.ranks()
        return {name: _bins([(q.distortion.components[name], r) for q, r in zip(self.queries, ranks)], bins, self.ks)
                for name in ("crop", "rotation", "scale")}

    def ms_per_query(self) -> dict[str, float]:
        n = max(1, len(self.queries))
        return {stage: round(1000 * s / n, 2) for stage, s in self.seconds.items()}

    def to_dict(self) -> dict:
        def acc(dup: bool) -> dict:
            return {f"top{k}": {"accuracy": round(self.accuracy(k, dup), 4),
                                "count": sum(1 for r in self.ranks(dup) if r is not None and r <= k)} for k in self.ks}

        out = {
            "protocol": "exact image retrieval, NLN (arXiv:2410.14969): crop <= 15 %/side, "
                        "rotation <= 10 deg, scale <= 20 %/axis",
            "model": self.model,
            "items": self.items,
            "queries": len(self.queries),
            "seed": self.seed,
            "rerank": self.rerank,
            "duplicates_accepted": self.duplicates,
            "accuracy": acc(self.duplicates),
            "by_strength": self.by_strength(),
            "by_component": self.by_component(),
            "ms_per_query": self.ms_per_query(),
            "index_bytes": self.index_bytes,
            "reference": {"note": REFERENCE_NOTE,
                          **{name: dict(zip((f"top{k}" for k in KS), (v / 100 for v in vals)))
                             for name, vals in REFERENCE.items()}},
            "failed": self.failed,
            "per_query": [{"key": str(q.key), "name": q.name, "rank": q.rank,
                           "rank_with_duplicates": q.rank_with_duplicates, "top": None if q.top is None else str(q.top),
                           "strength": round(q.distortion.strength, 4), "distortion": q.distortion.to_dict()}
                          for q in self.queries],
        }
        if self.duplicates:
            out["accuracy_exact_item_only"] = acc(False)
        return out

    def lines(self) -> list[str]:
        name = self.model.get("model", "?") + (" +rerank" if self.rerank else "")
        width = len(name) + len(" (duplicates ok)") + 2
        head = f"{'':<{width}}" + "".join(f"{'Top-' + str(k):>18}" for k in self.ks)
        n = len(self.queries)

        def row(label: str, dup: bool) -> str:
            cells = []
            for k in self.ks:
                hits = sum(1 for r in self.ranks(dup) if r is not None and r <= k)
                cells.append(f"{100 * hits / n if n else 0:.1f}% ({hits}/{n})")
            return f"{label:<{width}}" + "".join(f"{c:>18}" for c in cells)

        out = [f"exact image retrieval: {n} queries (seed {self.seed}) over {self.items} items", head]
        if self.duplicates:
            out.append(row(f"{name} (duplicates ok)", True))
            out.append(row(f"{name} (exact item)", False))
        else:
            out.append(row(name, False))
        out.append(f"reference, {REFERENCE_NOTE}:")
        out += [f"  {label:<{width - 2}}" + "".join(f"{v:>17}%" for v in vals) for label, vals in REFERENCE.items()]
        out.append("Top-1 by distortion strength (equal-count bins):  " + ",  ".join(
            f"{b['range'][0]:.2f}-{b['range'][1]:.2f}: {100 * b['top1']:.0f}%" for b in self.by_strength()))
        ms = self.ms_per_query()
        out.append("ms per query: " + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()) +
                   f"; index {self.index_bytes / 2**20:.1f} MiB")
        if self.failed:
            out.append(f"{len(self.failed)} sampled items could not be read: " + "; ".join(self.failed[:3]))
        return out


def exact(
    index: Index,
    embedder: Embedder,
    reader: CropReader,
    *,
    n: int = 200,
    seed: int = 0,
    duplicates: Mapping[int, frozenset[int]] | None = None,
    reranker: Reranker | None = None,
    search: Searcher | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> ExactResult:
    """Run the exact-image-retrieval protocol on ``n`` items sampled with ``seed``.

    Args:
        index: the index to evaluate (read-only is enough).
        embedder: the index's model, as it embedded the items (``embed.load_for_index``).
        reader: reads the sampled items' pixels, as indexing did.
        duplicates: item key → keys of its known duplicates; hits on them then count as correct.
        reranker: re-ranks each query's hits geometrically (see rerank.py).
        search: ``(query vectors, k) -> hits per query``; default ``index.search``. Benchmarks
            pass other strategies (extra vectors per item, say) to measure them the same way.

    Raises:
        BadRequest: ``n`` < 1 or the index is empty.
    """
    total = len(index)
    if n < 1:
        raise BadRequest("n must be at least 1", "n")
    if total == 0:
        raise BadRequest("the index is empty", "index")
    rng = random.Random(seed)
    positions = sorted(rng.sample(range(total), min(n, total)))
    depth = max(max(KS), reranker.depth if reranker else 0)
    seconds = {"read": 0.0, "embed": 0.0, "search": 0.0, "rerank": 0.0}
    queries: list[ExactQuery] = []
    failed: list[str] = []
    sample = _sample(index, positions)
    for start in range(0, len(sample), batch_size):
        batch = []
        for key, region in sample[start : start + batch_size]:
            distortion = draw(rng)  # drawn even for unreadable items, so the others keep theirs
            t0 = time.perf_counter()
            try:
                batch.append((key, region, distortion, distortion.apply(reader.read(region))))
            except SourceError as e:
                failed.append(f"{key}: {e}")
            seconds["read"] += time.perf_counter() - t0
        if not batch:
            continue
        t0 = time.perf_counter()
        vectors = embedder.embed_images([image for *_, image in batch])
        t1 = time.perf_counter()
        found = search(vectors, min(depth, total)) if search else index.search(vectors, k=min(depth, total))
        t2 = time.perf_counter()
        seconds["embed"] += t1 - t0
        seconds["search"] += t2 - t1
        for (key, region, distortion, image), hits in zip(batch, found):
            if reranker is not None:
                t3 = time.perf_counter()
                hits = reranker.rerank(image, hits)
                seconds["rerank"] += time.perf_counter() - t3
            hits = hits[: max(KS)]
            alike = duplicates.get(key, frozenset()) if duplicates else frozenset()
            queries.append(ExactQuery(
                key=key, name=region_name(region), distortion=distortion,
                rank=_first(hits, {key}), rank_with_duplicates=_first(hits, {key} | alike),
                top=hits[0].key if hits else None,
            ))
        if progress:
            progress(len(queries) + len(failed), len(sample))
    if reranker is None:
        del seconds["rerank"]
    files = index.stats()["files"]
    return ExactResult(
        model=dict(index.info["model"]), items=total, seed=seed, queries=queries,
        duplicates=duplicates is not None, failed=failed, seconds=seconds,
        rerank=None if reranker is None else {"depth": reranker.depth, "side": reranker.side,
                                              "keypoints": reranker.keypoints, "min_inliers": reranker.min_inliers},
        index_bytes=sum(size for name, size in files.items() if not name.endswith((".lock", ".tmp"))),
    )


def _sample(index: Index, positions: Sequence[int]) -> list[tuple[int, Region]]:
    """The items at ``positions`` (sorted) of the index's reading order, read a page at a time."""
    out: list[tuple[int, Region]] = []
    wanted = list(positions)
    i = 0
    while i < len(wanted):
        start = wanted[i]
        # Read up to the last wanted position within reach, not a whole page: samples are sparse.
        last = max(p for p in wanted[i:] if p - start < PAGE)
        page = index.items(limit=last - start + 1, offset=start)
        while i < len(wanted) and wanted[i] - start < len(page):
            out.append(page[wanted[i] - start])
            i += 1
        if not page:
            break
    return out


def _first(hits: Sequence[Hit], correct: set[int] | frozenset[int]) -> int | None:
    return next((rank for rank, hit in enumerate(hits, 1) if hit.key in correct), None)


def _bins(points: list[tuple[float, int | None]], bins: int, ks: Sequence[int]) -> list[dict]:
    """Equal-count bins of (value, rank) pairs: value range, count and Top-k accuracy."""
    points = sorted(points, key=lambda p: p[0])
    out = []
    for b in range(bins):
        part = points[b * len(points) // bins : (b + 1) * len(points) // bins]
        if not part:
            continue
        row: dict[str, Any] = {"range": [round(part[0][0], 3), round(part[-1][0], 3)], "n": len(part)}
        for k in ks:
            row[f"top{k}"] = round(sum(1 for _, r in part if r is not None and r <= k) / len(part), 4)
        out.append(row)
    return out


# -- plot -----------------------------------------------------------------------------------------


def plot_exact(results: Sequence[tuple[str, ExactResult]], path: str | Path) -> None:
    """A PNG: accuracy by k (with the published references) and Top-1/Top-10 by distortion strength.

    Raises:
        BadRequest: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise BadRequest("--plot needs matplotlib: pip install 'bookidx[eval]'", "plot") from e
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    for label, vals in REFERENCE.items():
        left.plot(KS, vals, linestyle=":", marker=".", color="grey", alpha=0.6)
        left.annotate(f"{label} (NLN)", (KS[-1], vals[-1]), fontsize=7, color="grey",
                      xytext=(3, 0), textcoords="offset points", va="center")
    width = 0.8 / max(1, len(results))
    for i, (label, result) in enumerate(results):
        left.plot(result.ks, [100 * result.accuracy(k) for k in result.ks], marker="o", label=label)
        bins = result.by_strength()
        xs = np.arange(len(bins)) + (i - (len(results) - 1) / 2) * width
        bars = right.bar(xs, [100 * b["top1"] for b in bins], width, label=f"{label} Top-1")
        right.scatter(xs, [100 * b["top10"] for b in bins], marker="_", s=200, color=bars.patches[0].get_facecolor()
                      if bars.patches else None, zorder=3)
        right.set_xticks(np.arange(len(bins)), [f"{b['range'][0]:.2f}–{b['range'][1]:.2f}" for b in bins])
    dups = " (known duplicates count)" if any(r.duplicates for _, r in results) else ""
    left.set(xscale="log", xticks=list(KS), xticklabels=[str(k) for k in KS], xlabel="k",
             ylabel=f"Top-k accuracy (%){dups}", title="Exact image retrieval")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower right")
    right.set(xlabel="distortion strength (equal-count bins)", ylabel="Top-1 (bars), Top-10 (ticks) %",
              title="By distortion strength", ylim=(0, 105))
    right.grid(alpha=0.3, axis="y")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    fig.savefig(path, dpi=120)
    plt.close(fig)
