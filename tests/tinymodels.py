"""Tiny random vision-language checkpoints, built offline in about a second, for tests.

Each builder writes a complete transformers folder (config, weights, tokenizer, image
processor) exactly as ``save_pretrained`` lays out a hub download, so code under test loads it
through the same ``from_pretrained`` path a real model takes. Weights are random (seeded): the
vectors mean nothing, but shapes, normalisation, tokenisation and preprocessing are real.

``tiny_model("siglip" | "clip" | "vit")`` builds each kind once per process (one pytest
session) in a temporary folder removed at exit::

    from tinymodels import tiny_model
    embedder = load_embedder(tiny_model("siglip"))

All take 32 px images (patch 8) and give 32-d (SigLIP, ViT) or 16-d (CLIP) vectors.
"""

from __future__ import annotations

import atexit
import functools
import io
import shutil
import tempfile
from pathlib import Path

#: A few lines of text to train the SigLIP sentencepiece model on; any words work at test time
#: (unknown pieces fall back to characters or <unk>).
_SENTENCES = [
    "a woodcut of a ship at sea",
    "a portrait of a man in a wig",
    "the title page of a chapbook printed in glasgow",
    "a tailpiece ornament with flowers and leaves",
    "a map of the town and the river",
    "a horse and a rider on the road",
    "two women in a garden under a tree",
    "an engraving of a church",
]

@functools.cache
def tiny_model(kind: str) -> str:
    """The folder of a tiny ``kind`` model ("siglip", "clip" or "vit"), built on first use."""
    builders = {"siglip": make_tiny_siglip, "clip": make_tiny_clip, "vit": make_tiny_vit}
    directory = tempfile.mkdtemp(prefix=f"bookidx-tiny-{kind}-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return builders[kind](directory)


_VISION = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 2}


def make_tiny_siglip(directory: str | Path, seed: int = 0) -> str:
    """Write a random 2-layer SigLIP (32 px, patch 8, 32-d) with a real SiglipTokenizer.

    The tokenizer is a sentencepiece unigram model trained in-process on a few sentences, so it
    needs ``sentencepiece`` and ``protobuf`` like the real SigLIP tokenizer does.

    Returns:
        The folder, as a string for ``load_embedder``.
    """
    import sentencepiece as spm
    import torch
    from transformers import (
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model_file = io.BytesIO()
    # Ids follow the real SigLIP vocabulary: pad 0, eos 1, unk 2 (no bos).
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_SENTENCES * 4), model_writer=model_file, vocab_size=64,
        model_type="unigram", hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        minloglevel=2,
    )
    spiece = out / "spiece.model"
    spiece.write_bytes(model_file.getvalue())
    max_len = 16
    tokenizer = SiglipTokenizer(vocab_file=str(spiece), model_max_length=max_len)
    config = SiglipConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": max_len,
                     "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "bos_token_id": None},
        vision_config=_VISION,
    )
    torch.manual_seed(seed)
    SiglipModel(config).eval().save_pretrained(out)
    # The PIL backend is what transformers uses without torchvision; it saves as SiglipImageProcessor.
    images = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    SiglipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return str(out)


def make_tiny_clip(directory: str | Path, seed: int = 0) -> str:
    """Write a random 2-layer CLIP (32 px, patch 8, 16-d projection) with a byte-level BPE tokenizer.

    The vocabulary is the 256 byte symbols (with and without CLIP's ``</w>`` word end) and no
    merges, so every text tokenises, one byte per token. The image processor keeps CLIP's
    shortest-edge resize and centre crop, scaled to 32 px.

    Returns:
        The folder, as a string for ``load_embedder``.
    """
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in bytes_to_unicode().values():
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    max_len = 24
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_len)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": max_len,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config=_VISION,
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(out)
    images = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return str(out)


def make_tiny_vit(directory: str | Path, seed: int = 0) -> str:
    """Write a random 2-layer ViT (32 px, patch 8, 32-d), an image-only model with a pooler.

    Saved as ``ViTForImageClassification`` like google/vit-base-patch16-224, so loading it with
    ``AutoModel`` leaves the pooler untrained, as with the real checkpoint.

    Returns:
        The folder, as a string for ``load_embedder``.
    """
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = ViTConfig(**_VISION, num_labels=3)
    ViTForImageClassification(config).eval().save_pretrained(out)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)
    return str(out)
