"""The indexing pipeline: sources → regions → crops → embeddings → index, timed per stage.

Shaped like clip-retrieval's runner: a reader (adapters + CropReader), a mapper (the embedder)
and a writer (store.Index), glued here. Decoding is what bounds indexing, so crops are fetched,
decoded and preprocessed by a thread pool (Pillow and requests release the GIL) while the main
thread runs the model on the previous batch. Per-item failures (a 404 image, a corrupt JPEG, a
decompression bomb) are recorded in the index as data and the run goes on; a re-run retries them.
The failure rate a caller holds against its limit (``Summary.failure_rate``) is there to catch
server trouble. So an item that failed in an earlier run and fails again for item-level reasons
(an HTTP 4xx refusal, an image that does not decode, a blank crop) is reported but not counted,
and one permanently broken page cannot fail every later incremental run; one that fails again
for server trouble (no connection, a timeout, the deadline, DNS, HTTP 5xx, 408 or 429:
:func:`bookidx.fetchretry.server_trouble`) counts like a new item, so an image server that stays
down fails every night's run, not only the first.
With ``drop_classes``, a saved classifier (classify.py) labels each embedded batch; items of those
classes are counted as filtered ("class <label>") and not stored, the others keep their label.

Dropped items are remembered (meta.py ``dropped``: key, class, score, classifier digest), so
later runs do not fetch, decode and embed them again. The rule: a run skips an item dropped
before when it uses the same classifier (``Classifier.digest``: same classes, weights, bias,
model) and the item's recorded class is among its ``drop_classes``. So dropping more classes
keeps them skipped; dropping fewer (or none), or a new or retrained classifier, re-embeds them,
and they are indexed or dropped again by this run's rule. Indexing an item forgets its drop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .adapters.records import Problem, Region
from .adapters.iiif import parse_json
from .adapters.jsonld import id_of
from .adapters.sources import read_sources, sniff
from .classify import CLASSIFIER, Classifier
from .config import IndexConfig
from .crops import CropReader
from .embed import Embedder, load_embedder
from .errors import BookidxError, ConfigError
from .fetch import Fetcher
from .fetchretry import server_trouble
from .manifests import save_manifest
from .store import Index
from .vectors import usable_rows

log = logging.getLogger("bookidx.runner")


@dataclass
class Summary:
    """What a run did; printed by the CLI and returned to library callers."""

    found: int = 0
    filtered: int = 0
    already: int = 0
    dropped_before: int = 0  # of filtered: left out by class in an earlier run, not fetched again
    fetched: int = 0  # crops read (some of which the model may still fail on)
    failed: int = 0
    failed_embedding: int = 0  # of failed: fetched, but the model gave no usable vector
    failed_again: int = 0  # of failed: failed in an earlier run too, and now for item-level reasons
    indexed: int = 0
    problems: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "crop": 0.0, "embed": 0.0, "write": 0.0})
    wall: float = 0.0
    filter_reasons: dict[str, int] = field(default_factory=dict)
    failure_samples: list[str] = field(default_factory=list)
    problem_samples: list[str] = field(default_factory=list)

    def count_filtered(self, reason: str) -> None:
        self.filtered += 1
        self.filter_reasons[reason] = self.filter_reasons.get(reason, 0) + 1

    @property
    def failure_rate(self) -> float:
        """The share of the items tried that failed, where an item that failed in an earlier run
        and again for item-level reasons counts neither way: it says nothing about the servers."""
        tried = self.fetched + self.failed - self.failed_embedding - self.failed_again  # an item counts once
        return (self.failed - self.failed_again) / tried if tried > 0 else 0.0

    def lines(self) -> list[str]:
        s = self.seconds
        rate = self.indexed / self.wall if self.wall else 0.0
        out = [
            f"regions found {self.found}, filtered {self.filtered}, already indexed {self.already}, "
            f"fetched {self.fetched}, failed {self.failed}, indexed {self.indexed}",
            f"time {self.wall:.1f}s ({rate:.1f} regions/s); stages: read {s['read']:.1f}s, "
            f"waiting for crops {s['crop']:.1f}s, embed {s['embed']:.1f}s, write {s['write']:.1f}s",
        ]
        if self.filter_reasons:
            out.append("filtered: " + ", ".join(f"{k} {v}" for k, v in sorted(self.filter_reasons.items())))
        if self.dropped_before:
            out.append(f"of those, dropped by class in an earlier run and not fetched again: {self.dropped_before}")
        if self.problems:
            out.append(f"source problems (skipped blocks or files): {self.problems}")
            out += [f"  {p}" for p in self.problem_samples]
        if self.failed:
            again = (f", {self.failed_again} of them failed in an earlier run too, not counted in the failure "
                     "rate: they failed for item-level reasons" if self.failed_again else "")
            out.append(f"failed items (recorded in the index; a re-run retries them): {self.failed}{again}")
            out += [f"  {f}" for f in self.failure_samples]
        return out


Progress = Callable[[str, int, int | None], None]  # (stage, done, total)


def index(
    sources: Sequence[str],
    index_dir: str | Path,
    config: IndexConfig = IndexConfig(),
    *,
    embedder: Embedder | None = None,
    fetcher: Fetcher | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Index ``sources`` into ``index_dir`` (created or resumed). Returns a :class:`Summary`.

    Raises BookidxError for configuration or infrastructure problems (unknown model, another
    model's index); per-item problems are counted and recorded instead.
    """
    t_start = time.perf_counter()
    summary = Summary()
    index_dir = Path(index_dir)
    embedder = embedder or load_embedder(
        config.model, device=config.device, batch_size=config.batch_size, keep_aspect=config.keep_aspect
    )
    classifier = _classifier(index_dir, config, embedder)
    store = Index.create_or_open(index_dir, model_info=embedder.info, config=config)
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher(
        cache_dir=Path(config.cache_dir) if config.cache_dir else index_dir / "cache",
        per_host=config.per_host,
        timeout=config.timeout,
        retries=config.retries,
        deadline=config.deadline, cache_max_bytes=config.cache_max_bytes,
    )
    try:
        regions = _read(sources, index_dir, fetcher, store, config, summary, progress, classifier)
        _embed_and_write(regions, store, embedder, fetcher, config, summary, progress, classifier)
    except KeyboardInterrupt:
        log.warning("interrupted: committing what is embedded so far; run again to resume")
        raise
    finally:
        try:
            store.close()  # commits and saves; releases the writer lock even if that fails
        finally:
            if own_fetcher:
                fetcher.close()
            summary.wall = time.perf_counter() - t_start
    return summary


def _classifier(index_dir: Path, config: IndexConfig, embedder: Embedder) -> Classifier | None:
    """The classifier that tells which items to drop, checked before any work is done."""
    if not config.drop_classes:
        return None
    path = Path(config.classifier) if config.classifier else index_dir / CLASSIFIER
    classifier = Classifier.load(path)
    classifier.check(embedder.info, f"model {embedder.model_id!r}")
    unknown = sorted(set(config.drop_classes) - set(classifier.classes))
    if unknown:
        raise ConfigError(f"{unknown} are not classes of {path} ({', '.join(classifier.classes)})", "drop_classes")
    return classifier


def _read(sources, index_dir, fetcher, store, config, summary, progress, classifier) -> list[Region]:
    """Parse every source, drop junk, what is already indexed or dropped; keep the rest in order."""
    t0 = time.perf_counter()

    def report(problem: Problem) -> None:
        summary.problems += 1
        if len(summary.problem_samples) < 10:
            summary.problem_samples.append(str(problem))
        log.warning("%s", problem)

    def load(uri: str) -> bytes:
        data = fetcher.load(uri)
        _keep_manifest(index_dir, uri, data)
        return data

    todo: list[Region] = []
    seen: set[int] = set()
    pending: list[Region] = []

    def flush() -> None:
        if not pending:
            return
        keys = [r.key for r in pending]
        done = store.has(keys)
        dropped = store.still_dropped(keys, classifier.digest, config.drop_classes) if classifier else {}
        for r, is_done in zip(pending, done):
            if is_done:
                summary.already += 1
            elif r.key in dropped:
                summary.dropped_before += 1
                summary.count_filtered(f"class {dropped[r.key]}")
            else:
                todo.append(r)
        pending.clear()

    # A manifest's ALTO files load as many at once as one host may serve (adapters/ahead.py).
    for region in read_sources(sources, load=load, report=report, dpi=300.0, window=config.per_host):
        summary.found += 1
        reason = config.region_filter.reason(region)
        if reason is not None:
            summary.count_filtered(reason.split(" (")[0])
            continue
        if region.key in seen:  # the same picture listed twice (e.g. two manifests share a canvas)
            summary.already += 1
            continue
        seen.add(region.key)
        pending.append(region)
        if len(pending) >= 1024:
            flush()
        if progress and summary.found % 100 == 0:
            progress("read", summary.found, None)
    flush()
    summary.seconds["read"] += time.perf_counter() - t0
    return todo


def _keep_manifest(index_dir: Path, uri: str, data: bytes) -> None:
    """Save IIIF manifests met while reading, so the blueprint can serve them annotated.

    Best effort: a manifest that cannot be kept is still indexed (the reader reports its defects).
    """
    if sniff(data, uri) != "iiif-manifest":
        return
    try:
        doc = parse_json(data, source=uri)
        manifest_id = id_of(doc) or uri
        save_manifest(index_dir, manifest_id, doc)
    except (BookidxError, OSError, TypeError, ValueError) as e:
        log.warning("%s: manifest not kept for serving: %s", uri, e)


def _embed_and_write(todo, store, embedder, fetcher, config, summary, progress, classifier) -> None:
    # Crops come at twice the model's input side, so squashing or padding a crop to the model's
    # square never upsamples it (aspect ratios up to 2:1), yet the server still shrinks pages ~10x.
    side = config.crop_size or 2 * embedder.input_size
    reader = CropReader(fetcher, max_side=side, max_megapixels=config.max_megapixels)
    batch_size = config.batch_size or embedder.batch_size
    total = len(todo)
    failed_before = {f["key"] for f in store.failures()} if todo else set()
    batch_regions: list[Region] = []
    batch_arrays: list[np.ndarray] = []
    since_commit = 0

    def record_failure(region: Region, stage: str, reason: str, item_level: bool) -> None:
        summary.failed += 1
        summary.failed_again += item_level and region.key in failed_before
        if len(summary.failure_samples) < 10:
            summary.failure_samples.append(f"{region.page.image.uri} {region.box.xywh()}: {reason}")
        store.record_failure(region.key, region.page.image.uri, stage, reason)

    def run_batch() -> None:
        nonlocal since_commit
        t0 = time.perf_counter()
        vectors = embedder.embed_arrays(np.stack(batch_arrays))
        regions = list(batch_regions)
        # A blank crop can give a zero vector (a broken model NaN): that item fails and the rest
        # of the batch is stored, instead of the store refusing the whole batch and the run.
        usable = usable_rows(vectors)
        for i in np.flatnonzero(~usable):
            summary.failed_embedding += 1
            record_failure(regions[i], "embed", "the model gave a zero or non-finite vector (a blank crop?)", True)
        keep, dropped = usable, np.zeros(len(regions), dtype=bool)
        if classifier is not None:
            labels, scores = classifier.predict(np.where(usable[:, None], vectors, 0))
            dropped = usable & np.array([label in config.drop_classes for label in labels], dtype=bool)
            keep = usable & ~dropped
            for i in np.flatnonzero(dropped):
                summary.count_filtered(f"class {labels[i]}")
        t1 = time.perf_counter()
        kept = [r for r, k in zip(regions, keep) if k]
        store.add(kept, vectors[keep])
        if classifier is not None:
            if kept:
                store.set_class([r.key for r in kept], [l for l, k in zip(labels, keep) if k], scores[keep].tolist())
            out = np.flatnonzero(dropped)
            if len(out):
                keys, out_labels = [regions[i].key for i in out], [labels[i] for i in out]
                store.record_drops(keys, out_labels, scores[out].tolist(), classifier.digest)
        summary.indexed += len(kept)
        since_commit += len(regions)  # drops are work to keep, too
        if since_commit >= config.commit_every:
            store.commit()
            since_commit = 0
        summary.seconds["embed"] += t1 - t0
        summary.seconds["write"] += time.perf_counter() - t1
        batch_regions.clear()
        batch_arrays.clear()

    # Enough work in flight to keep every worker busy while the model runs one batch.
    window = max(2 * batch_size, 4 * config.workers)
    jobs = reader.read_many(todo, config.workers, then=embedder.preprocess, window=window)
    done = 0
    while True:
        t0 = time.perf_counter()  # time the model waits for crops: ~0 when decoding keeps up
        item = next(jobs, None)
        summary.seconds["crop"] += time.perf_counter() - t0
        if item is None:
            break
        region, result = item
        done += 1
        if isinstance(result, BookidxError):
            record_failure(region, "crop", str(result), not server_trouble(result))
        else:
            summary.fetched += 1
            batch_regions.append(region)
            batch_arrays.append(result)
            if len(batch_regions) >= batch_size:
                run_batch()
        if progress:
            progress("embed", done, total)
    if batch_regions:
        run_batch()
