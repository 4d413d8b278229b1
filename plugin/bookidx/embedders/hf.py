"""Any transformers image model as an Embedder: SigLIP, CLIP, ViT, DINOv2... by hub id or folder.

Implements the ``bookidx.embed.Embedder`` contract on top of ``from_pretrained`` (a Hugging Face
hub id, downloaded and cached by transformers, or a local folder written by ``save_pretrained``).

* Dual encoders (a config with both ``text_config`` and ``vision_config``, e.g. ``siglip`` and
  ``clip``) embed images with ``get_image_features`` and texts with ``get_text_features``; the
  output is the projected, pooled vector the model was trained to compare (transformers 5 returns
  it as ``pooler_output`` of a ``BaseModelOutputWithPooling``, 4.x as a bare tensor).
* Vision-only models (``vit``, ``dinov2``, ``swin``, ``convnext``...) embed images with their
  parameter-free pooled output, or the CLS token where the pooler is a trained layer (ViT's
  pooler is absent from fine-tuned checkpoints and would be random).

Preprocessing reproduces the checkpoint's image processor in PIL + numpy (see preprocess.py); a
processor it cannot reproduce (NaFlex, padding, longest-edge resizes) is refused with
ConfigError rather than approximated, because index and query vectors must match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .preprocess import Preprocess
from .torchbase import TorchEmbedder

#: Text towers trained on fixed-length, "max_length"-padded input (their pooling reads the last
#: position); the others pad to the longest text in the batch.
_PAD_TO_MAX = ("siglip",)


class HFEmbedder(TorchEmbedder):
    """A transformers checkpoint behind the Embedder interface.

    Args:
        model: hub id ("google/siglip-base-patch16-256-multilingual") or local folder.
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N" or "mps".
        batch_size: images per forward pass; default 128 on CUDA, 16 elsewhere.
        dtype: torch dtype name ("float32", "bfloat16", "float16"); default bfloat16 on CUDA,
            float32 elsewhere.
        keep_aspect: letterbox into the model's square ("pad, don't crop") instead of the
            processor's stretch or centre crop.
        model_id: the name recorded in the index (a registry name such as "siglip"); defaults
            to ``model``.

    Raises:
        ConfigError: transformers/torch missing, the checkpoint cannot be loaded, or its
            image processor cannot be reproduced.
    """

    def __init__(
        self,
        model: str,
        device: str = "auto",
        batch_size: int | None = None,
        dtype: Any = None,
        keep_aspect: bool = False,
        model_id: str | None = None,
    ):
        transformers = _import_ml()
        self.model_id = model_id or model
        try:
            config = transformers.AutoConfig.from_pretrained(model)
            processor = transformers.AutoImageProcessor.from_pretrained(model)
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"cannot load model {model!r}: {e}", parameter="model") from e
        preprocess = preprocess_from_processor(processor, keep_aspect, model)
        super().__init__(preprocess, device, dtype, batch_size, gpu_batch=128, cpu_batch=16)
        self.family = config.model_type
        text_config = getattr(config, "text_config", None)
        self.supports_text = text_config is not None and getattr(config, "vision_config", None) is not None
        self._model = _load_model(transformers, model, self.device, self._dtype)
        if self.supports_text:
            self.ndim = int(getattr(config, "projection_dim", None) or _text_projection(text_config))
            self._tokenizer = _load_tokenizer(transformers, model)
            self._max_length = int(text_config.max_position_embeddings)
        else:
            self.ndim = _vision_width(config)
            pooler = getattr(self._model, "pooler", None)
            self._use_cls = pooler is not None and any(True for _ in pooler.parameters())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not self.supports_text:
            return super().embed_texts(texts)
        if not texts:
            return np.zeros((0, self.ndim), dtype=np.float32)
        padding = "max_length" if self.family.startswith(_PAD_TO_MAX) else True
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self._tokenizer(list(texts[i : i + self.batch_size]), padding=padding, truncation=True,
                                     max_length=self._max_length, return_tensors="pt")
            if self.family.startswith(_PAD_TO_MAX):
                # SigLIP was trained without an attention mask (padding is part of the input).
                tokens.pop("attention_mask", None)
            with self._torch.inference_mode():
                tokens = {k: v.to(self.device) for k, v in tokens.items()}
                out.append(self._finish(self._model.get_text_features(**tokens)))
        return np.concatenate(out)

    def _forward(self, pixels: Any) -> np.ndarray:
        if self.supports_text:
            return self._finish(self._model.get_image_features(pixel_values=pixels))
        out = self._model(pixel_values=pixels)
        if self._use_cls or getattr(out, "pooler_output", None) is None:
            return self._finish(out.last_hidden_state[:, 0])
        return self._finish(out.pooler_output.flatten(1))

    def _finish(self, features: Any) -> np.ndarray:
        if not isinstance(features, self._torch.Tensor):  # transformers 5: a model output
            features = features.pooler_output
        if features.shape[-1] != self.ndim:
            raise ConfigError(
                f"model {self.model_id!r} returned {features.shape[-1]}-d vectors, its config says {self.ndim}",
                parameter="model",
            )
        features = self._torch.nn.functional.normalize(features.float(), dim=-1)
        return features.cpu().numpy()


def preprocess_from_processor(processor: Any, keep_aspect: bool, name: str = "") -> Preprocess:
    """Read a transformers image processor's fixed-size settings into a :class:`Preprocess`.

    Raises:
        ConfigError: the processor does something else (dynamic resolution, padding...).
    """
    def refuse(why: str) -> ConfigError:
        return ConfigError(f"model {name!r}: its image processor {type(processor).__name__} {why}; "
                           "bookidx reproduces fixed-size resize/crop/normalise processors only",
                           parameter="model")

    if getattr(processor, "do_pad", False):
        raise refuse("pads images")
    if not getattr(processor, "do_resize", False):
        raise refuse("does not resize")
    size = dict(getattr(processor, "size", None) or {})
    if size.get("shortest_edge") and not size.get("longest_edge"):
        resize: int | tuple[int, int] = int(size["shortest_edge"])
        fits = (resize, resize)
    elif size.get("height") and size.get("width"):
        resize = fits = (int(size["height"]), int(size["width"]))
    else:
        raise refuse(f"resizes to {size}")
    crop = None
    if getattr(processor, "do_center_crop", False):
        crop_size = dict(getattr(processor, "crop_size", None) or {})
        if not (crop_size.get("height") and crop_size.get("width")):
            raise refuse(f"crops to {crop_size}")
        crop = (int(crop_size["height"]), int(crop_size["width"]))
        if crop[0] > fits[0] or crop[1] > fits[1]:
            raise refuse(f"crops {crop} out of a smaller resize {size}")
    elif isinstance(resize, int):
        raise refuse("keeps the aspect ratio without a crop (variable output size)")
    do_rescale, do_norm = getattr(processor, "do_rescale", True), getattr(processor, "do_normalize", True)
    return Preprocess(
        resize=resize,
        crop=crop,
        resample=_resample(getattr(processor, "resample", None)),
        scale=float(processor.rescale_factor) if do_rescale else 1.0,
        mean=tuple(float(m) for m in _per_channel(processor.image_mean)) if do_norm else (0.0, 0.0, 0.0),
        std=tuple(float(s) for s in _per_channel(processor.image_std)) if do_norm else (1.0, 1.0, 1.0),
        keep_aspect=keep_aspect,
    )


def _import_ml() -> Any:
    try:
        import torch  # noqa: F401  (checked here, so its absence is a ConfigError, not an ImportError)
        import transformers
    except ImportError as e:
        raise ConfigError(f"{e.name} is not installed; install bookidx[ml] (and torch for your platform)",
                          parameter="model") from e
    return transformers


def _load_model(transformers: Any, name: str, device: str, dtype: Any) -> Any:
    kwargs: dict[str, Any] = {}
    if device.startswith("cuda"):
        kwargs["attn_implementation"] = "sdpa"
    try:
        try:
            model = transformers.AutoModel.from_pretrained(name, **kwargs)
        except ValueError as e:
            if not kwargs or "sdpa" not in str(e).lower():
                raise
            model = transformers.AutoModel.from_pretrained(name)  # no SDPA kernel for this architecture
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"cannot load model {name!r}: {e}", parameter="model") from e
    # Loaded in float32 then cast: works the same on every transformers version.
    return model.to(device=device, dtype=dtype).eval()


def _load_tokenizer(transformers: Any, name: str) -> Any:
    try:
        return transformers.AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError, ImportError) as e:
        raise ConfigError(f"cannot load the tokenizer of {name!r}: {e}", parameter="model") from e


def _text_projection(text_config: Any) -> int:
    # SigLIP has no projection_dim: the text head projects to projection_size (= hidden size),
    # which is also the vision tower's width.
    return int(getattr(text_config, "projection_size", None) or text_config.hidden_size)


def _vision_width(config: Any) -> int:
    sizes = getattr(config, "hidden_sizes", None)  # ConvNeXt, ResNet: one width per stage
    if sizes:
        return int(sizes[-1])
    vision = getattr(config, "vision_config", None) or config
    return int(vision.hidden_size)


def _resample(value: Any) -> int:
    # An unset filter means bilinear in transformers' PIL backend (PilBackend.resize).
    return 2 if value is None else int(value)


def _per_channel(values: Any) -> list[float]:
    values = [values] if isinstance(values, (int, float)) else list(values)
    return values * 3 if len(values) == 1 else values
