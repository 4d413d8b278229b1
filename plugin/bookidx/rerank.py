"""Geometric re-ranking of image queries: keep the candidates whose pixels really line up.

An embedding ranks pictures by what they look like; for *exact* retrieval (find the page this
photo, screenshot or crop came from) a cheap geometric check on the best few candidates is far
more decisive. This is the spatial verification step of instance retrieval (Philbin et al.,
"Object retrieval with large vocabularies and fast spatial matching", CVPR 2007), done with:

* ORB keypoints and binary descriptors (Rublee et al., ICCV 2011) on greyscale images whose
  longest side is ``side`` pixels: fast, free of patents, and plentiful on printed pages;
* brute-force Hamming matching with Lowe's ratio test (IJCV 2004, §7.1), which drops the
  ambiguous matches that repeated letter shapes make;
* an affine transform fitted by RANSAC (``cv2.estimateAffine2D``): a crop, a rotation and a
  per-axis scaling of a flat page are all affine, so true matches agree on one transform.

The number of RANSAC inliers is the evidence. Candidates with at least ``min_inliers`` move to
the front, most inliers first; the rest keep their embedding order behind them. Candidate pixels
are read through the same :class:`~bookidx.crops.CropReader` as indexing (files, IIIF, URLs), and
their features are kept in a small LRU cache, so repeated queries over the same candidates (an
evaluation, a busy server) decode each page once. A candidate that cannot be read is skipped for
``retry_seconds`` before it is tried again, so an image server that is down costs one failed
fetch per candidate, not one per query. A Reranker is safe to share between threads.

:func:`search` is ``search.run`` with re-ranking: the web API's ``rerank`` parameter and
``bookidx search --rerank``.

OpenCV: https://docs.opencv.org/4.x/d1/d89/tutorial_py_orb.html (``opencv-python-headless``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .crops import CropReader
from .errors import BadRequest, BookidxError, ConfigError
from .store import Hit

if TYPE_CHECKING:  # search imports the model code; only search() needs it, at call time
    from .embed import Embedder
    from .fetch import Fetcher
    from .search import Query
    from .store import Index

log = logging.getLogger(__name__)

SIDE = 384  # px: letters are still legible keypoint texture on a printed page, and ORB is fast
MIN_INLIERS = 12  # docs/quality.md: a page and its distorted copy share >= 59; other pages < 25 (99.9 %)
WORKERS = 4  # candidates read at once (`bookidx search`): the Fetcher's default requests per host
#: Seconds one candidate's fetch may take in all (candidate_reader): a read still running when
#: its query's budget ends goes on to fill the cache for the next query, but not for longer.
READ_DEADLINE = 20.0


@dataclass(frozen=True)
class Features:
    """ORB keypoints of one image: ``points`` (n, 2) float32 pixels, ``descriptors`` (n, 32) uint8."""

    points: np.ndarray
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


class Reranker:
    """Re-orders the first ``depth`` hits of an image query by geometric agreement.

    Args:
        reader: reads candidate pixels; its ``max_side`` should be at least ``side``.
        depth: how many of the embedding's hits are checked (more: slower, higher recall).
        side: longest side, in pixels, of the images keypoints are found on.
        keypoints: most ORB keypoints per image.
        min_inliers: inliers needed to count a candidate as the same picture.
        ratio: Lowe's ratio test threshold (second-best match distance share).
        cache_size: candidates whose features are kept in memory (about 24 kB each at 600
            keypoints).
        retry_seconds: how long a candidate whose pixels could not be read is left unchecked
            before it is read again.
        workers: candidates read at once when several are not cached (IIIF derivatives come
            over the network: one at a time, a hundred of them take seconds).
        budget: seconds a query may spend reading candidates (None: no limit). A candidate
            not read by then is not checked (None), so the query answers on time however slow
            or unreachable the image server is. Reads run on one pool of ``workers`` threads
            per Reranker: a read still running at the deadline finishes there and fills the
            cache for the next query, reads not started are cancelled, and a candidate being
            read for one query is not read again for another.

    Raises:
        ConfigError: OpenCV (``opencv-python-headless``) is not installed.
    """

    def __init__(self, reader: CropReader, *, depth: int = 50, side: int = SIDE, keypoints: int = 600,
                 min_inliers: int = MIN_INLIERS, ratio: float = 0.8, cache_size: int = 4096,
                 retry_seconds: float = 60.0, workers: int = 1, budget: float | None = None):
        try:
            import cv2
        except ImportError as e:
            raise ConfigError("re-ranking needs OpenCV: pip install 'bookidx[eval]' "
                              "(opencv-python-headless)", parameter="rerank") from e
        if depth < 1 or side < 32 or min_inliers < 3 or workers < 1 or (budget is not None and budget <= 0):
            raise ConfigError("depth >= 1, side >= 32, min_inliers >= 3, workers >= 1 and a budget > 0 are needed",
                              parameter="rerank")
        self._cv2 = cv2
        self.reader = reader
        self.depth = depth
        self.side = side
        self.keypoints = keypoints
        self.min_inliers = min_inliers
        self.ratio = ratio
        self._cache: OrderedDict[int, Features] = OrderedDict()
        self._cache_size = cache_size
        self._failed: OrderedDict[int, float] = OrderedDict()  # key -> monotonic time to retry at
        self._retry_seconds = retry_seconds
        self.workers = workers
        self.budget = budget
        # One lock for the dicts, held only to look up and store: features are computed outside
        # it, so threads verify in parallel. Reentrant, since a Future's done-callback runs in
        # the submitting thread when the read has already finished.
        self._lock = threading.RLock()
        self._reading: dict[int, Future] = {}  # key -> its read in progress on the pool
        self._pool: ThreadPoolExecutor | None = None
        # RANSAC samples at random, but OpenCV's RANSAC (calib3d/src/ptsetreg.cpp) draws from a
        # local RNG seeded the same on every call, so runs and request threads agree. The seed of
        # this thread's global RNG is set as well, in case a future OpenCV draws from that.
        cv2.setRNGSeed(0)

    def features(self, image: Image.Image) -> Features:
        """ORB features of an image, found on a greyscale copy shrunk to ``side`` pixels."""
        grey = image.convert("L")
        scale = self.side / max(grey.size)
        if scale < 1:
            grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                               Image.Resampling.BILINEAR, reducing_gap=2.0)
        # A new detector per call: cv2 objects are not documented as thread-safe.
        orb = self._cv2.ORB_create(nfeatures=self.keypoints)
        points, descriptors = orb.detectAndCompute(np.asarray(grey), None)
        if descriptors is None:
            return Features(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
        return Features(np.float32([p.pt for p in points]), descriptors)

    def inliers(self, query: Features, candidate: Features) -> int:
        """How many ratio-tested matches one affine transform explains (0 when too few match)."""
        if len(query) < 3 or len(candidate) < 2:
            return 0
        matcher = self._cv2.BFMatcher(self._cv2.NORM_HAMMING)
        pairs = matcher.knnMatch(query.descriptors, candidate.descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < self.ratio * p[1].distance]
        if len(good) < 3:
            return 0
        src = query.points[[m.queryIdx for m in good]]
        dst = candidate.points[[m.trainIdx for m in good]]
        # 1 % of the side: a few pixels of slack for resampling, none for another page's layout.
        _, mask = self._cv2.estimateAffine2D(src, dst, method=self._cv2.RANSAC,
                                             ransacReprojThreshold=max(2.0, self.side / 100), maxIters=2000)
        return 0 if mask is None else int(mask.sum())

    def verify(self, image: Image.Image, hits: Sequence[Hit]) -> list[int]:
        """Inlier counts of ``image`` against the first ``depth`` hits (unreadable ones: 0)."""
        return [n or 0 for n in self.check(image, hits)]

    def check(self, image: Image.Image, hits: Sequence[Hit], depth: int | None = None, *,
              deadline: float | None = None) -> list[int | None]:
        """Inlier counts of ``image`` against the first ``depth`` hits (default: the
        re-ranker's); None where a hit's pixels could not be read (it was not checked).

        ``deadline`` (a ``time.monotonic()`` value) is when candidates must have been read by;
        default: ``budget`` seconds from now, or none without a budget.
        """
        if deadline is None and self.budget is not None:
            deadline = time.monotonic() + self.budget
        query = self.features(image)
        candidates = self._candidates(hits[: self.depth if depth is None else depth], deadline)
        return [None if feats is None else self.inliers(query, feats) for feats in candidates]

    def close(self) -> None:
        """Stop the reading threads (reads not started are cancelled); the cache stays usable."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "Reranker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def order(self, counts: Sequence[int | None]) -> list[int]:
        """Positions of the checked hits in re-ranked order: those with at least
        ``min_inliers`` first (most inliers first, ties by position), then the rest as they were."""
        verified = sorted((i for i, n in enumerate(counts) if (n or 0) >= self.min_inliers), key=lambda i: (-counts[i], i))
        chosen = set(verified)
        return verified + [i for i in range(len(counts)) if i not in chosen]

    def rerank(self, image: Image.Image, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` with the geometrically verified ones first (most inliers first).

        Hits past ``depth`` and unverified ones keep their order; scores are not changed.
        """
        counts = self.check(image, hits)
        return [hits[i] for i in self.order(counts)] + list(hits[len(counts):])

    def _candidates(self, hits: Sequence[Hit], deadline: float | None) -> list[Features | None]:
        """Each hit's features: from the cache, else read (None: unreadable, failed a moment
        ago, or not read by ``deadline``)."""
        pooled = deadline is not None or self.workers > 1  # no pool: the command line, evaluations
        out: list[Features | None] = [None] * len(hits)
        unread: list[int] = []  # positions to read in this thread (no pool)
        waiting: dict[int, Future] = {}  # position -> the read it waits for
        submitted: list[Future] = []
        now = time.monotonic()
        with self._lock:
            for i, hit in enumerate(hits):
                if hit.key in self._cache:
                    self._cache.move_to_end(hit.key)
                    out[i] = self._cache[hit.key]
                elif self._failed.get(hit.key, now) > now:
                    continue  # failed a moment ago: don't make every query wait for it again
                elif not pooled:
                    unread.append(i)
                else:
                    future = self._reading.get(hit.key)
                    if future is None:
                        if self._pool is None:
                            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="bookidx-rerank")
                        future = self._reading[hit.key] = self._pool.submit(self._load, hit)
                        future.add_done_callback(lambda _, key=hit.key: self._done_reading(key))
                        submitted.append(future)
                    waiting[i] = future
        for i in unread:
            out[i] = self._load(hits[i])
        if waiting:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = wait(set(waiting.values()), timeout=timeout)
            for i, future in waiting.items():
                out[i] = future.result() if future in done and not future.cancelled() else None
            for future in submitted:  # not started by the deadline: nobody should wait for it
                future.cancel()
        return out

    def _done_reading(self, key: int) -> None:
        with self._lock:
            self._reading.pop(key, None)

    def _load(self, hit: Hit) -> Features | None:
        """A candidate's features from its pixels, kept in the cache; None when they cannot be
        read (the candidate is then left alone for ``retry_seconds``)."""
        now = time.monotonic()
        try:
            feats = self.features(self.reader.read(hit.region))
        except Exception as e:  # noqa: BLE001 - one candidate, never the query
            # Unreadable now (BookidxError), or a decoder's own error: not cached for good (a
            # fetch may work later); the hit keeps its place, unchecked.
            if not isinstance(e, BookidxError):
                log.warning("re-ranking: candidate %s: %s: %s", hit.key, type(e).__name__, e)
            with self._lock:
                self._failed[hit.key] = now + self._retry_seconds
                self._failed.move_to_end(hit.key)
                while len(self._failed) > self._cache_size:
                    self._failed.popitem(last=False)
            return None
        with self._lock:
            self._failed.pop(hit.key, None)
            self._cache[hit.key] = feats
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return feats


def candidate_reader(deadline: float = READ_DEADLINE, fetcher_type: type[Fetcher] | None = None) -> CropReader:
    """How a waiting user's re-ranker reads candidate pixels (the CLI's and the web API's).

    One retry, the timeouts of any fetch someone waits on (``fetch.WAITING_CONNECT_TIMEOUT`` and
    ``WAITING_READ_TIMEOUT``) and ``deadline`` seconds for a whole fetch: an unreadable candidate
    is simply not checked. No disk cache: a search must not write into the index directory, and
    the re-ranker keeps its candidates' features in memory. The caller closes ``reader.fetcher``.
    ``fetcher_type``: a Fetcher subclass to read with (the command line's ends with its budget).
    """
    from .fetch import WAITING_CONNECT_TIMEOUT, WAITING_READ_TIMEOUT, Fetcher

    fetcher = (fetcher_type or Fetcher)(retries=1, connect_timeout=WAITING_CONNECT_TIMEOUT,
                                        timeout=WAITING_READ_TIMEOUT, deadline=deadline)
    return CropReader(fetcher, max_side=SIDE)


@dataclass(frozen=True)
class Checked:
    """A hit of a re-ranked search and its RANSAC inlier count with the query image.

    ``inliers`` is None for a hit that was not checked: past the re-rank depth, or its pixels
    could not be read. At least ``Reranker.min_inliers`` means the same picture.
    """

    hit: Hit
    inliers: int | None


def search(index: Index, query: Query, embedder: Callable[[], Embedder] | Embedder | None,
           reranker: Reranker, *, depth: int | None = None) -> list[Checked]:
    """``search.run`` for an image query, its first ``depth`` (default: ``reranker.depth``)
    vector hits re-ranked.

    The ranking is one list whatever the page: the first ``depth`` hits re-ordered, then the
    embedding's next ones in their order; ``offset`` and ``limit`` slice it, so consecutive
    pages neither repeat nor skip a hit, and a deep page costs no more checks than the first.
    (Exactly so where the vector search is exact: under ``queries.EXACT_BELOW`` items, or a
    filter naming few. Over an HNSW graph a page past ``depth`` asks for more neighbours, and
    an approximate search for more can return a slightly different first ``depth``.)
    With ``collapse``, groups are collapsed *after* re-ranking, so a group is represented by its
    verified member (the page itself rather than a reprint the embedding happened to prefer).

    Image queries are vector searches whatever ``query.mode`` says (``search.run``); with text
    as well, the candidates are the mixed vector's hits and only the image is checked.

    Raises:
        BadRequest: the query has no image to check hits against.
    """
    from .search import page, run

    if query.image is None:
        raise BadRequest("rerank checks hits against the query image; give one", "rerank")
    image = query.image.convert("RGB")
    depth = reranker.depth if depth is None else depth
    deadline: float | None = None

    def ranked(n: int) -> list[Checked]:
        nonlocal deadline
        hits = run(index, replace(query, offset=0, limit=n, collapse=False), embedder)
        if deadline is None and reranker.budget is not None:
            # One budget for the whole query, however many times collapsing reads deeper. It is
            # for reading candidates, so it starts once they are known: loading the model for a
            # command-line search can take longer than the whole budget.
            deadline = time.monotonic() + reranker.budget
        counts = reranker.check(image, hits, depth, deadline=deadline)
        return [Checked(hits[i], counts[i]) for i in reranker.order(counts)] + [Checked(h, None) for h in hits[len(counts):]]

    return page(ranked, query, lambda checked: checked.hit, start=max(query.offset + query.limit, depth))
