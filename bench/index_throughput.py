"""Indexing throughput: end-to-end `bookidx index` images/s against the bare model forward.

Both are measured in one run, on the same model, batch size, device and images:

* bare forward: images decoded and preprocessed beforehand (not timed), then only
  ``embed_arrays`` on batches;
* end to end: ``bookidx.runner.index`` on a folder of the same page images into a fresh index
  (reading, decoding with shrink-on-load, preprocessing in worker threads, embedding, writing).

The ratio end-to-end / bare says how much of the model's speed the pipeline keeps (1.0 = decoding
and writing are fully hidden behind the model).

    python bench/index_throughput.py --model efficientnet-lite0 --n 256 --batch 32
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.runner import index

CHAPBOOKS = Path(__file__).resolve().parents[2] / "shared/corpus-images/nls-chapbooks-printed-in-scotland/images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--n", type=int, default=256, help="page images (cycled from the chapbook corpus)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="crop/preprocess threads for the runner")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--images", type=Path, default=CHAPBOOKS)
    args = ap.parse_args()

    pages = sorted(args.images.resolve().glob("*.jpg"))
    if not pages:
        raise SystemExit(f"no images in {args.images}")
    # Cycled to --n under distinct names (distinct items): a GPU needs thousands of images, and
    # a checkout carries only the 40 of examples/chapbooks.
    files = [pages[i % len(pages)] for i in range(args.n)]
    embedder = load_embedder(args.model, device=args.device, batch_size=args.batch)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pages"
        folder.mkdir()
        for i, f in enumerate(files):
            os.symlink(f, folder / f"{i:06d}-{f.name}")

        # Bare forward: preprocessing done up front, only the model is timed.
        arrays = [embedder.preprocess(Image.open(f).convert("RGB")) for f in files]
        embedder.embed_arrays(np.stack(arrays[: args.batch]))  # warm-up (lazy init, kernels)
        t0 = time.perf_counter()
        for i in range(0, len(arrays), args.batch):
            embedder.embed_arrays(np.stack(arrays[i : i + args.batch]))
        bare = len(arrays) / (time.perf_counter() - t0)

        # End to end, same embedder object (already warm), fresh index.
        config = IndexConfig(model=args.model, batch_size=args.batch, workers=args.workers)
        summary = index([str(folder)], Path(tmp) / "idx", config, embedder=embedder)
        e2e = summary.indexed / summary.wall
        shutil.rmtree(Path(tmp) / "idx")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; device {embedder.device}")
    print(f"model {args.model}, batch {args.batch}, {len(files)} chapbook pages ({len(pages)} distinct, 600 px wide JPEG)")
    print(f"bare forward:  {bare:8.1f} images/s")
    print(f"end to end:    {e2e:8.1f} images/s  (indexed {summary.indexed}, wall {summary.wall:.1f} s)")
    print(f"ratio e2e/bare: {e2e / bare:.2f}")
    for line in summary.lines():
        print("  " + line)


if __name__ == "__main__":
    main()
