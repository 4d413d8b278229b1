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
evaluation, a busy server) decode each page once.

OpenCV: https://docs.opencv.org/4.x/d1/d89/tutorial_py_orb.html (``opencv-python-headless``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .crops import CropReader
from .errors import BookidxError, ConfigError
from .store import Hit

SIDE = 384  # px: letters are still legible keypoint texture on a printed page, and ORB is fast


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
        cache_size: candidates whose features are kept in memory.

    Raises:
        ConfigError: OpenCV (``opencv-python-headless``) is not installed.
    """

    def __init__(self, reader: CropReader, *, depth: int = 50, side: int = SIDE, keypoints: int = 600,
                 min_inliers: int = 12, ratio: float = 0.8, cache_size: int = 4096):
        try:
            import cv2
        except ImportError as e:
            raise ConfigError("re-ranking needs OpenCV: pip install 'bookidx[eval]' "
                              "(opencv-python-headless)", parameter="rerank") from e
        if depth < 1 or side < 32 or min_inliers < 3:
            raise ConfigError("depth >= 1, side >= 32 and min_inliers >= 3 are needed", parameter="rerank")
        self._cv2 = cv2
        self.reader = reader
        self.depth = depth
        self.side = side
        self.keypoints = keypoints
        self.min_inliers = min_inliers
        self.ratio = ratio
        self._cache: OrderedDict[int, Features] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        cv2.setRNGSeed(0)  # RANSAC samples at random; a fixed seed makes runs repeatable

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
        query = self.features(image)
        return [self.inliers(query, feats) if feats is not None else 0
                for feats in (self._candidate(hit) for hit in hits[: self.depth])]

    def rerank(self, image: Image.Image, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` with the geometrically verified ones first (most inliers first).

        Hits past ``depth`` and unverified ones keep their order; scores are not changed.
        """
        counts = self.verify(image, hits)
        verified = sorted((i for i, n in enumerate(counts) if n >= self.min_inliers), key=lambda i: (-counts[i], i))
        chosen = set(verified)
        return [hits[i] for i in verified] + [h for i, h in enumerate(hits) if i not in chosen]

    def _candidate(self, hit: Hit) -> Features | None:
        with self._lock:
            if hit.key in self._cache:
                self._cache.move_to_end(hit.key)
                return self._cache[hit.key]
        try:
            feats = self.features(self.reader.read(hit.region))
        except BookidxError:
            return None  # unreadable now (not cached: a fetch may work later); it keeps its place
        with self._lock:
            self._cache[hit.key] = feats
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return feats


def rerank_in_index(index_dir: str | Path, image: Image.Image, hits: Sequence[Hit], *, depth: int = 50) -> list[Hit]:
    """One query's hits re-ranked, candidates read through the index's fetch cache (the CLI's way).

    Raises:
        ConfigError: OpenCV is not installed.
    """
    from .fetch import Fetcher

    with Fetcher(cache_dir=Path(index_dir) / "cache") as fetcher:
        reranker = Reranker(CropReader(fetcher, max_side=SIDE), depth=depth)
        return reranker.rerank(image.convert("RGB"), hits)
