"""Near-duplicate groups: the same picture reprinted, rescanned or listed twice.

Woodcuts and stock blocks were reused across titles and printers, and libraries hold several
copies of one edition, so a collection repeats itself. Groups are found from the index alone:

1. every item's ``neighbours`` nearest items (HNSW, or exact search in small indexes) whose
   cosine similarity is at least ``threshold`` become candidate edges;
2. edges are joined strongest first with union-find, and an edge that would make a group larger
   than ``max_size`` is skipped. Plain connected components chain: A≈B, B≈C... can glue a whole
   genre into one group; the cap keeps the tightest links and drops the chain's weakest ones.

With ``whiten=D``, the candidates (still the raw nearest neighbours) are scored by cosine after
PCA whitening to D dimensions, learnt from the index itself (Jégou & Chum, "Negative evidences
and co-occurences in image retrieval", ECCV 2012): directions every page shares (paper, margins,
a printer's layout) stop counting, so a rescan stands out from pages that merely look alike.
On the 500 chapbook pages with efficientnet-lite0 (bench/duplicates_chapbooks.py), 50 planted
rescans scored 0.85-0.95 raw against a median of 0.73 for two random pages, and about 3,400
pairs of distinct pages scored above the weakest rescan; whitened to 128, 75 did. Whitened
cosines are lower: thresholds around 0.45 there, not 0.93.

A group's id is its smallest item key (stable while its members stay). Groups are stored per
item (``Index.set_groups``), reported by search hits (``Hit.group``, ``Hit.group_size``) and
can collapse a result list to one hit per group (``search.Query.collapse``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BadRequest
from .store import Hit, Index

THRESHOLD = 0.93
NEIGHBOURS = 10
MAX_SIZE = 50
#: Vectors a whitening is learnt from at most (an evenly spread sample of larger indexes).
WHITEN_SAMPLE = 50_000


@dataclass(frozen=True)
class Groups:
    """What one duplicates run found.

    Attributes:
        groups: item keys per group (two or more, sorted), largest group first.
        pairs: the pairs of items at or above the threshold, (key, key, cosine), strongest
            first: the direct links the groups were joined from.
        capped: how many of those pairs were not joined because the group would outgrow
            ``max_size``.
    """

    groups: tuple[tuple[int, ...], ...]
    pairs: tuple[tuple[int, int, float], ...]
    capped: int
    threshold: float
    neighbours: int
    max_size: int

    def mapping(self) -> dict[int, int]:
        """Item key → group id (the group's smallest key), for ``Index.set_groups``."""
        return {key: group[0] for group in self.groups for key in group}

    @property
    def items(self) -> int:
        return sum(len(g) for g in self.groups)


def find_groups(
    index: Index,
    *,
    threshold: float = THRESHOLD,
    neighbours: int = NEIGHBOURS,
    max_size: int = MAX_SIZE,
    whiten: int | None = None,
    batch: int = 1024,
) -> Groups:
    """Near-duplicate groups of ``index`` (see the module docstring).

    Args:
        threshold: least cosine similarity of a pair (whitened cosine with ``whiten``).
        neighbours: nearest items looked at per item.
        max_size: largest group; weaker links that would grow a group beyond it are dropped.
        whiten: score pairs after PCA whitening to this many dimensions (None: raw cosine).

    Raises:
        BadRequest: a threshold outside (0, 1], neighbours / max_size below 1 / 2, or whiten
            below 2.
    """
    if not 0.0 < threshold <= 1.0:
        raise BadRequest("threshold must be a cosine similarity in (0, 1]", "threshold")
    if neighbours < 1 or max_size < 2:
        raise BadRequest("neighbours must be at least 1 and max_size at least 2", "neighbours")
    if whiten is not None and whiten < 2:
        raise BadRequest("whiten must be at least 2 dimensions", "whiten")
    white = whitened(index, whiten, batch) if whiten else None
    edges: dict[tuple[int, int], float] = {}
    for keys, rows in index.vector_batches(batch):
        # One more than asked: an item is usually its own nearest neighbour.
        for key, (found, sims) in zip(keys.tolist(), index.neighbours(rows, neighbours + 1)):
            if white is not None:
                wkeys, wrows = white
                at = np.searchsorted(wkeys, np.append(found, key))
                sims = wrows[at[:-1]] @ wrows[at[-1]]
            for other, sim in zip(found.tolist(), sims.tolist()):
                if other != key and sim >= threshold:
                    pair = (min(key, other), max(key, other))
                    edges[pair] = max(sim, edges.get(pair, -1.0))
    pairs = tuple(sorted(((a, b, s) for (a, b), s in edges.items()), key=lambda e: (-e[2], e[0], e[1])))
    groups, capped = components(pairs, max_size)
    return Groups(groups, pairs, capped, threshold, neighbours, max_size)


def whitened(index: Index, dims: int, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Every item's key (sorted) and its vector PCA-whitened to ``dims`` and normalised.

    The mean and principal axes come from up to WHITEN_SAMPLE vectors, spread evenly over the
    index; an index of n items gives at most n - 1 dimensions.
    """
    total = len(index)
    stride = max(1, -(-total // WHITEN_SAMPLE))
    sample = np.vstack([rows[::stride] for _, rows in index.vector_batches(batch)] or [np.zeros((0, index.ndim), np.float32)])
    if len(sample) < 3:
        raise BadRequest(f"whitening needs at least 3 items, the index has {len(sample)}", "whiten")
    mean = sample.mean(axis=0)
    _, singular, axes = np.linalg.svd(sample - mean, full_matrices=False)
    keep = min(dims, len(sample) - 1)
    # Dividing by the singular values gives every kept direction the same variance.
    project = axes[:keep].T / np.maximum(singular[:keep], 1e-6)
    keys, rows = [], []
    for k, r in index.vector_batches(batch):
        w = (r - mean) @ project
        keys.append(k)
        rows.append((w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)).astype(np.float32))
    return np.concatenate(keys), np.vstack(rows)


def components(edges: Iterable[tuple[int, int, float]], max_size: int) -> tuple[tuple[tuple[int, ...], ...], int]:
    """Union-find over weighted edges, strongest first, no group above ``max_size``.

    Returns:
        The groups (sorted keys, largest group first, then by first key) and how many edges
        the size cap refused.
    """
    parent: dict[int, int] = {}
    size: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        size.setdefault(x, 1)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    capped = 0
    for a, b, _ in sorted(edges, key=lambda e: (-e[2], e[0], e[1])):
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        if size[ra] + size[rb] > max_size:
            capped += 1
            continue
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
    members: dict[int, list[int]] = {}
    for x in parent:
        members.setdefault(root(x), []).append(x)
    groups = sorted((tuple(sorted(m)) for m in members.values() if len(m) > 1), key=lambda g: (-len(g), g[0]))
    return tuple(groups), capped


def store_groups(index: Index, groups: Groups) -> None:
    """Replace the index's groups with ``groups`` (``index`` opened for writing) and commit."""
    index.set_groups(groups.mapping())
    index.commit()


def write_csv(path: str | Path, index: Index, groups: Groups) -> None:
    """One row per grouped item: group, size, id, image, page, box (image pixels), caption."""
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["group", "size", "id", "image", "page", "xywh", "caption"])
        for group in groups.groups:
            for key in group:
                r = index.get(key)
                out.writerow([group[0], len(group), key, r.page.image.uri, r.page.label or r.page.index + 1, r.box.xywh(), r.caption])


def pair_metrics(groups: Iterable[Iterable[str]], truth: Iterable[tuple[str, str]]) -> dict[str, float]:
    """Pairwise precision and recall of groups against reference pairs (any hashable names).

    Every two members of one group make a predicted pair; order within a pair is ignored.
    """
    predicted = set()
    for group in groups:
        members = sorted(set(group))
        predicted |= {(a, b) for i, a in enumerate(members) for b in members[i + 1 :]}
    reference = {tuple(sorted(p)) for p in truth}
    hit = len(predicted & reference)
    return {
        "predicted_pairs": len(predicted),
        "reference_pairs": len(reference),
        "true_positives": hit,
        "precision": hit / len(predicted) if predicted else 0.0,
        "recall": hit / len(reference) if reference else 0.0,
    }


def collapse(hits: list[Hit]) -> list[Hit]:
    """The hits with only the first (best-ranked) of each group kept; ungrouped hits all stay."""
    seen: set[int] = set()
    out = []
    for hit in hits:
        if hit.group is None or hit.group not in seen:
            out.append(hit)
            if hit.group is not None:
                seen.add(hit.group)
    return out


def similarities(index: Index, key: int, others: Iterable[int]) -> np.ndarray:
    """Cosine similarity of item ``key`` to each of ``others`` (their stored unit vectors)."""
    base = index.vector(key)
    return np.array([float(index.vector(o) @ base) for o in others], dtype=np.float32)
