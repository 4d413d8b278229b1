"""What every torch image embedder shares: device and dtype choice, preprocessing, batching and
the host → device copy, so a model module holds only its network and its forward pass.

Implements the batch half of the ``bookidx.embed.Embedder`` contract: ``embed_arrays`` cuts a
stacked batch of ``preprocess`` outputs into ``batch_size`` chunks, copies each to the device
(through pinned memory on CUDA, so the copy overlaps the kernels queued after it) and hands it to
the subclass's :meth:`TorchEmbedder._forward`, under ``torch.inference_mode``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from ..embed import Embedder
from ..errors import ConfigError
from .preprocess import Preprocess


class TorchEmbedder(Embedder):
    """A torch model behind the Embedder interface; subclasses implement :meth:`_forward`.

    Args:
        preprocess: the model's preprocessing (what ``preprocess`` applies and the index records).
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N" or "mps".
        dtype: torch dtype or name; None is bfloat16 on CUDA, float32 elsewhere.
        batch_size: images per forward pass; None is ``gpu_batch`` on CUDA, ``cpu_batch`` elsewhere.
        gpu_batch, cpu_batch: the model's default batch sizes.

    Raises:
        ConfigError: an unknown dtype, or CUDA asked for where torch sees none.
    """

    def __init__(self, preprocess: Preprocess, device: str, dtype: Any, batch_size: int | None, *,
                 gpu_batch: int, cpu_batch: int):
        import torch

        self._torch = torch
        self._preprocess = preprocess
        self.device = resolve_device(device)
        self._dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size or (gpu_batch if self.device.startswith("cuda") else cpu_batch)
        #: Memory format of the pixels on the device (a CNN may want channels_last).
        self._layout = torch.preserve_format

    def preprocess_info(self) -> dict[str, Any]:
        return self._preprocess.info()

    def preprocess(self, image) -> np.ndarray:
        return self._preprocess(image)

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros((0, self.ndim), dtype=np.float32)
        return np.concatenate([self._embed_chunk(batch[i : i + self.batch_size])
                               for i in range(0, len(batch), self.batch_size)])

    def _embed_chunk(self, chunk: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            pixels = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
            if self.device.startswith("cuda"):
                # Pinned memory lets the copy run asynchronously with the kernels queued after it.
                pixels = pixels.pin_memory().to(self.device, non_blocking=True)
            pixels = pixels.to(device=self.device, dtype=self._dtype, memory_format=self._layout)
            return self._forward(pixels)

    @abstractmethod
    def _forward(self, pixels: Any) -> np.ndarray:
        """One chunk of pixels (a tensor on the device, N x C x H x W) to normalised float32 rows."""


def resolve_device(device: str | None) -> str:
    """"auto" → "cuda" when torch sees a GPU, else "cpu"; other names pass through."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA GPU", parameter="device")
    return device


def resolve_dtype(dtype: Any, device: str) -> Any:
    """A torch dtype from a name or dtype; None → bfloat16 on CUDA, float32 elsewhere."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if str(dtype) not in names:
        raise ConfigError(f"unknown dtype {dtype!r}; known: {', '.join(names)}", parameter="dtype")
    return names[str(dtype)]
