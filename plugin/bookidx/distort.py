"""Seeded query distortions for the exact-image-retrieval protocol of the National Library of Norway.

Roald, Birkenes & Johnsen, "Visual Navigation of Digital Libraries" (CHR 2024, arXiv:2410.14969),
measure how often an indexed picture is found again from a distorted copy of itself: each query
is the picture with independent random crops of up to 15 % per side, a rotation of up to 10°
either way, and a scaling of up to 20 % per axis. This module draws those distortions from a
seeded generator and applies them with Pillow; it reads and writes no files.

Choices the paper leaves open, fixed here so runs are reproducible and comparable:

* the order is crop → rotate → scale;
* each crop fraction, the angle, and each axis' scale change are drawn uniformly and
  independently (a scale factor is ``1 ± s`` with ``s`` in [0, max] and a random sign, so an
  axis may shrink or grow and the aspect ratio changes);
* the rotation keeps every pixel (``expand``) and fills the new corners with white, as a
  photographed or re-scanned print on a light ground would look.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from PIL import Image

MAX_CROP = 0.15  # of the width (left, right) or height (top, bottom), per side
MAX_ANGLE = 10.0  # degrees, either way
MAX_SCALE = 0.20  # relative change of each axis
_FILL = (255, 255, 255)


@dataclass(frozen=True)
class Distortion:
    """One query's distortion.

    Attributes:
        left, top, right, bottom: fraction of the width / height cut off at each side.
        angle: degrees, counter-clockwise (PIL's convention).
        scale_x, scale_y: factors applied to the width and height after rotation.
    """

    left: float
    top: float
    right: float
    bottom: float
    angle: float
    scale_x: float
    scale_y: float

    @property
    def components(self) -> dict[str, float]:
        """Each kind of distortion as a share of its protocol maximum, 0 (none) to 1 (most)."""
        return {
            "crop": max(self.left, self.top, self.right, self.bottom) / MAX_CROP,
            "rotation": abs(self.angle) / MAX_ANGLE,
            "scale": max(abs(self.scale_x - 1.0), abs(self.scale_y - 1.0)) / MAX_SCALE,
        }

    @property
    def strength(self) -> float:
        """One number for binning queries: the mean of :attr:`components` (0 to 1)."""
        parts = self.components
        return sum(parts.values()) / len(parts)

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 5) for k, v in asdict(self).items()}

    def apply(self, image: Image.Image) -> Image.Image:
        """The distorted copy of an RGB ``image`` (never smaller than 1 x 1)."""
        w, h = image.size
        box = (
            round(self.left * w),
            round(self.top * h),
            max(round(self.left * w) + 1, w - round(self.right * w)),
            max(round(self.top * h) + 1, h - round(self.bottom * h)),
        )
        out = image.crop(box)
        if self.angle:
            out = out.rotate(self.angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=_FILL)
        size = (max(1, round(out.width * self.scale_x)), max(1, round(out.height * self.scale_y)))
        if size != out.size:
            out = out.resize(size, Image.Resampling.BICUBIC)
        return out


def draw(rng: random.Random, *, max_crop: float = MAX_CROP, max_angle: float = MAX_ANGLE,
         max_scale: float = MAX_SCALE) -> Distortion:
    """One random distortion within the protocol's bounds (or tighter ones).

    Args:
        rng: the seeded generator; the same seed gives the same sequence of distortions.
        max_crop: largest fraction cut from each side (< 0.5).
        max_angle: largest rotation in degrees, either way.
        max_scale: largest relative change of each axis (< 1).
    """
    if not (0 <= max_crop < 0.5 and 0 <= max_angle <= 180 and 0 <= max_scale < 1):
        raise ValueError("bounds: 0 <= max_crop < 0.5, 0 <= max_angle <= 180, 0 <= max_scale < 1")
    crops = [rng.uniform(0.0, max_crop) for _ in range(4)]
    angle = rng.uniform(-max_angle, max_angle)
    scales = [1.0 + rng.choice((-1.0, 1.0)) * rng.uniform(0.0, max_scale) for _ in range(2)]
    return Distortion(*crops, angle=angle, scale_x=scales[0], scale_y=scales[1])

