"""Embedder throughput: bare forward images/s and preprocess images/s per thread.

    python bench/embed.py --model efficientnet-lite0 --batch 32 --n 256
    python bench/embed.py --model path/to/checkpoint --device cuda --dtype bfloat16

Forward: ``--n`` preprocessed arrays are held in memory and pushed through ``embed_arrays`` in
batches of ``--batch`` (one warm-up batch first), so decoding and I/O are excluded. Preprocess:
one thread runs ``preprocess`` on real chapbook page crops (decoded beforehand), the per-thread
rate the runner's reader threads get. For transformers models the same crops also go through
the checkpoint's own image processor, one image per call, for comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from bookidx.embed import load_embedder
from PIL import Image

SHARED = Path(os.environ.get("BOOKIDX_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PAGES = SHARED / "corpus-images" / "nls-chapbooks-printed-in-scotland" / "images"


def crops(n: int) -> list[Image.Image]:
    """Illustration-sized crops (centre 60% of real pages, about 360 x 600 px), or noise."""
    files = sorted(PAGES.glob("*.jpg"))[:n] if PAGES.is_dir() else []
    out = []
    for path in files:
        with Image.open(path) as im:
            w, h = im.size
            out.append(im.convert("RGB").crop((w // 5, h // 5, w - w // 5, h - h // 5)))
    rng = np.random.default_rng(0)
    while len(out) < n:  # no corpus: random pictures of the same size
        out.append(Image.fromarray(rng.integers(0, 256, (600, 360, 3), dtype=np.uint8)))
    return out


def rate(fn, items, repeat: int = 3) -> float:
    """Items per second, best of ``repeat`` passes (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--n", type=int, default=256, help="images in the forward benchmark")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--keep-aspect", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_embedder(args.model, device=args.device, batch_size=args.batch, dtype=args.dtype,
                          keep_aspect=args.keep_aspect)
    images = crops(min(args.n, 64))
    print(f"model {model.model_id}  device {model.device}  dtype {model._dtype}  ndim {model.ndim}  "
          f"batch {args.batch}  torch threads {torch.get_num_threads()}  {torch.__version__}", file=sys.stderr)
    print(f"preprocess (ours, 1 thread): {rate(model.preprocess, images):8.1f} images/s")
    if hasattr(model, "family"):
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(args.model)
        per_image = rate(lambda im: processor(images=im, return_tensors="np"), images)
        print(f"preprocess (HF {type(processor).__name__}, 1 thread, per image): {per_image:8.1f} images/s")

    arrays = np.stack([model.preprocess(images[i % len(images)]) for i in range(args.n)])
    model.embed_arrays(arrays[: args.batch])  # warm-up: kernels, allocator, cuDNN autotune
    cuda = model.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, args.n, args.batch):
        model.embed_arrays(arrays[i : i + args.batch])  # returns numpy: already synchronised
    seconds = time.perf_counter() - start
    print(f"forward (embed_arrays): {args.n / seconds:8.1f} images/s  ({seconds:.2f}s for {args.n})")


if __name__ == "__main__":
    main()
