"""Image preprocessing in PIL + numpy: resize, optional centre crop or letterbox, rescale, normalise.

This re-implements the fixed-size paths of transformers' image processors (the PIL backend,
``transformers.image_processing_backends.PilBackend._preprocess``: resize → center_crop →
rescale → normalize) so that reader threads can turn a crop into a model input without the
processor's per-call overhead. Pillow's resize releases the GIL, so the threads really overlap.

``keep_aspect`` ("pad, don't crop") replaces the resize and crop with a letterbox: the image is
shrunk to fit inside the model's square and the rest is filled with the normalisation mean, so
after normalising the padding is zero and nothing of the picture is cut off or stretched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

_RESAMPLE_NAMES = {
    Image.Resampling.NEAREST: "nearest",
    Image.Resampling.BILINEAR: "bilinear",
    Image.Resampling.BICUBIC: "bicubic",
    Image.Resampling.LANCZOS: "lanczos",
    Image.Resampling.BOX: "box",
    Image.Resampling.HAMMING: "hamming",
}


@dataclass(frozen=True)
class Preprocess:
    """How one checkpoint turns an RGB image into its CHW float32 input.

    Attributes:
        resize: an int resizes so the short side is that long, keeping the aspect ratio
            (CLIP's ``shortest_edge``); a (height, width) pair resizes to exactly that.
        crop: (height, width) of a centre crop after the resize, or None.
        resample: a ``PIL.Image.Resampling`` filter.
        scale: factor from 0-255 pixel values to the range mean and std are given in.
        mean, std: per-channel normalisation, in the scaled range.
        keep_aspect: letterbox into the output size with the mean colour instead of resize/crop.
    """

    resize: int | tuple[int, int]
    crop: tuple[int, int] | None = None
    resample: int = Image.Resampling.BICUBIC
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    keep_aspect: bool = False

    @property
    def height(self) -> int:
        return self.crop[0] if self.crop else self.resize[0]  # type: ignore[index]

    @property
    def width(self) -> int:
        return self.crop[1] if self.crop else self.resize[1]  # type: ignore[index]

    def __post_init__(self) -> None:
        if isinstance(self.resize, int) and not self.crop:
            raise ValueError("a shortest-edge resize needs a crop: outputs must all have one size")
        # Folded once: (x * scale - mean) / std == x * gain + offset.
        gain = np.float32(self.scale) / np.asarray(self.std, dtype=np.float32)
        offset = -np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        object.__setattr__(self, "_gain", gain)
        object.__setattr__(self, "_offset", offset)

    @property
    def fill(self) -> tuple[int, int, int]:
        """The mean colour as 0-255 RGB: letterbox padding that normalises to (about) zero."""
        return tuple(round(min(255.0, max(0.0, m / self.scale))) for m in self.mean)  # type: ignore[return-value]

    def info(self) -> dict[str, Any]:
        """What index vectors depend on; recorded in the index's bookidx.json."""
        if self.keep_aspect:
            resize = "letterbox"
        elif isinstance(self.resize, int):
            resize = f"shortest_edge={self.resize}"
        else:
            resize = "stretch={}x{}".format(*self.resize)
        if self.crop and not self.keep_aspect:
            resize += "+center_crop"
        return {
            "size": max(self.height, self.width),
            "height": self.height,
            "width": self.width,
            "resize": resize,
            "resample": _RESAMPLE_NAMES.get(self.resample, str(self.resample)),
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "keep_aspect": self.keep_aspect,
        }

    def __call__(self, image: Image.Image) -> np.ndarray:
        """One PIL image (any mode) to a (3, height, width) float32 array. Thread-safe."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.keep_aspect:
            image = self._letterbox(image)
        else:
            image = self._resized(image)
            if self.crop:
                image = self._center_crop(image)
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels * self._gain + self._offset  # type: ignore[attr-defined]
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def _resized(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        if isinstance(self.resize, int):
            # transformers' get_resize_output_image_size: the long side is truncated, not rounded.
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.resize * long / short)
            size = (self.resize, new_long) if w <= h else (new_long, self.resize)
        else:
            size = (self.resize[1], self.resize[0])
        return image if size == image.size else image.resize(size, resample=self.resample)

    def _center_crop(self, image: Image.Image) -> Image.Image:
        # Same offsets as transformers' center_crop: (size - crop) // 2 from the top-left corner.
        # The caller guarantees the crop fits (hf.preprocess_from_processor checks it).
        w, h = image.size
        left, top = (w - self.width) // 2, (h - self.height) // 2
        return image.crop((left, top, left + self.width, top + self.height))

    def _letterbox(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        ratio = min(self.width / w, self.height / h)
        new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
        if image.size != (new_w, new_h):
            image = image.resize((new_w, new_h), resample=self.resample)
        if (new_w, new_h) == (self.width, self.height):
            return image
        canvas = Image.new("RGB", (self.width, self.height), self.fill)
        canvas.paste(image, ((self.width - new_w) // 2, (self.height - new_h) // 2))
        return canvas
