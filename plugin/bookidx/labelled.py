"""Labelled queries: Recall@k and MRR of text or image queries against relevance judgements.

A queries file is a CSV with a header: ``query`` (text) and/or ``image`` (a path, relative to
the file), and ``relevant`` (item ids or image file names, separated by ``;``). Each query runs
through search.run, as users' queries do; per query, Recall@k is the share of its relevant items
in the first k hits and the reciprocal rank is 1 / the rank of the first relevant hit (0 when
none is in the first ``depth``). Both are averaged over queries, as trec_eval does.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .embed import Embedder
from .errors import SourceError
from .evaluate import Progress
from .itemrefs import csv_rows, resolve
from .rerank import Reranker
from .store import Index


@dataclass(frozen=True)
class LabelledQuery:
    """One row of a queries file: text or an image, and the item keys judged relevant."""

    line: int
    text: str | None
    image: str | None
    relevant: frozenset[int]


@dataclass
class LabelledResult:
    """Per-query ranks of the relevant items, and the averages :meth:`lines` prints."""

    queries: list[LabelledQuery]
    ranks: list[list[int]]  # 1-based ranks of each query's relevant items found in the first depth hits
    depth: int
    skipped: list[str]
    ks: tuple[int, ...] = (1, 5, 10)
    seconds: float = 0.0

    def recall(self, k: int) -> float:
        per = [sum(1 for r in ranks if r <= k) / len(q.relevant) for q, ranks in zip(self.queries, self.ranks)]
        return statistics.fmean(per) if per else 0.0

    def mrr(self) -> float:
        per = [1.0 / min(ranks) if ranks else 0.0 for ranks in self.ranks]
        return statistics.fmean(per) if per else 0.0

    def to_dict(self) -> dict:
        return {
            "queries": len(self.queries),
            **{f"recall@{k}": round(self.recall(k), 4) for k in self.ks},
            "mrr": round(self.mrr(), 4),
            "mrr_depth": self.depth,
            "ms_per_query": round(1000 * self.seconds / max(1, len(self.queries)), 2),
            "skipped": self.skipped,
            "per_query": [{"line": q.line, "query": q.text, "image": q.image,
                           "relevant": sorted(str(k) for k in q.relevant), "ranks": r}
                          for q, r in zip(self.queries, self.ranks)],
        }

    def lines(self) -> list[str]:
        out = [f"{len(self.queries)} labelled queries" + (f" ({len(self.skipped)} skipped)" if self.skipped else "")]
        out.append("".join(f"{'Recall@' + str(k):>12}" for k in self.ks) + f"{'MRR':>12}")
        out.append("".join(f"{self.recall(k):>12.3f}" for k in self.ks) + f"{self.mrr():>12.3f}")
        out += [f"skipped: {s}" for s in self.skipped[:10]]
        return out


def read_queries(path: str | Path, index: Index) -> tuple[list[LabelledQuery], list[str]]:
    """Rows of a queries CSV (header ``query`` and/or ``image``, and ``relevant``).

    ``relevant`` holds item ids or image file names separated by ``;``. Image paths are
    relative to the CSV's folder. Rows without a query, or whose relevant items are none of the
    index's, are returned as skipped (with the line number) rather than scored as misses.

    Raises:
        SourceError: the file is unreadable or lacks the ``relevant`` column and a query column.
    """
    rows = csv_rows(path)
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "relevant" not in header or not ({"query", "image"} & set(header)):
        raise SourceError("a queries file needs a header with 'relevant' and 'query' or 'image'", parameter=str(path))
    col = {name: header.index(name) for name in ("query", "image", "relevant") if name in header}
    base = Path(path).parent
    parsed = []
    for line, row in enumerate(rows[1:], 2):
        text, image, relevant = (row[col[c]].strip() if c in col and col[c] < len(row) else ""
                                 for c in ("query", "image", "relevant"))
        refs = [r.strip() for r in relevant.split(";") if r.strip()]
        if not (text or image or refs):
            continue  # a blank line
        parsed.append((line, text or None, image or None, refs))
    flat = [ref for *_, refs in parsed for ref in refs]
    keys, _ = resolve(index, flat)
    out, skipped, i = [], [], 0
    for line, text, image, refs in parsed:
        relevant = frozenset(k for ks in keys[i : i + len(refs)] for k in ks)
        i += len(refs)
        if not (text or image):
            skipped.append(f"line {line}: no query or image")
        elif not relevant:
            skipped.append(f"line {line}: none of its relevant items ({';'.join(refs) or 'none given'}) is indexed")
        else:
            if image and not Path(image).is_absolute():
                image = str(base / image)
            out.append(LabelledQuery(line, text, image, relevant))
    return out, skipped


def score(index: Index, queries: Sequence[LabelledQuery], embedder: Callable[[], Embedder] | Embedder | None, *,
             mode: str = "fused", depth: int = 100, skipped: Sequence[str] = (),
             reranker: Reranker | None = None, progress: Progress | None = None) -> LabelledResult:
    """Run each labelled query through search.run and record where its relevant items rank.

    Args:
        embedder: the index's model, or a zero-argument callable that loads it when first needed.
        mode: search mode for text queries (fused, vector or keyword).
        depth: hits fetched per query; MRR counts a first relevant hit up to this rank.
        reranker: re-ranks image queries' hits geometrically.
    """
    from .search import Query, run

    ranks, skipped, t0 = [], list(skipped), time.perf_counter()
    kept = []
    for i, q in enumerate(queries, 1):
        image = None
        if q.image:
            try:
                with Image.open(q.image) as f:
                    image = f.convert("RGB")
            except OSError as e:
                skipped.append(f"line {q.line}: {q.image}: {e}")
                continue
        hits = run(index, Query(text=q.text, image=image, mode=mode, limit=depth), embedder)  # type: ignore[arg-type]
        if reranker is not None and image is not None:
            hits = reranker.rerank(image, hits)
        ranks.append([rank for rank, hit in enumerate(hits, 1) if hit.key in q.relevant])
        kept.append(q)
        if progress:
            progress(i, len(queries))
    return LabelledResult(kept, ranks, depth, skipped, seconds=time.perf_counter() - t0)
