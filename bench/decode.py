"""Crop decoding speed per core: naive full decode vs CropReader (shrink-on-load + crop + resample).

    python bench/decode.py [--pages 500] [--sides 224,384] [--shared ../shared]

Two workloads, measured side by side in one run (methods interleaved page by page, so load
from other processes hits both alike):

* the 500 NLS chapbook pages (600 px wide JPEGs; each indexed as one whole-page region, plus
  a half-page box as a typical illustration);
* a synthetic 8.7 MP page-like JPEG (2550x3400, 300 dpi A4-ish) written to a temporary
  directory, with illustration-sized boxes (a quarter page, a half page, the whole page).

"naive" decodes the whole page, takes ``np.asarray``, slices the box and resizes it; the
CropReader path is what ``bookidx index`` does. Rates are crops per CPU-second of the one
thread doing the work (per core), so a busy machine does not skew the ratio; the mean absolute
pixel difference between the two outputs shows the speed costs no fidelity.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bookidx.adapters.records import Box, ImageRef, Page, Region
from bookidx.crops import CropReader
from bookidx.fetch import Fetcher
from bookidx.iiif_image import target_size

ROOT = Path(__file__).resolve().parents[1]


def naive(path: Path, box: Box, side: int) -> Image.Image:
    """What a straightforward loader does: decode everything, then cut and shrink."""
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"))
    crop = pixels[box.y: box.y + box.h, box.x: box.x + box.w]
    return Image.fromarray(crop).resize(target_size(box.w, box.h, side), Image.Resampling.BICUBIC)


def synthetic_page(path: Path, width: int = 2550, height: int = 3400) -> None:
    """A page-like scan: paper tone, text-like stripes, a large engraving-like picture, noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    page = np.full((height, width), 225.0, np.float32)
    lines = ((y // 38) % 2 == 0) & ((x // 7) % 5 != 0)
    page -= 120 * lines * (rng.random((height, width)) > 0.35)
    pic = (slice(700, 2100), slice(300, 2250))
    page[pic] = 128 + 90 * np.sin(x[pic] / 5.0) * np.cos(y[pic] / 23.0)
    page += rng.normal(0, 6, page.shape)
    tone = np.stack([page, page * 0.97, page * 0.9], axis=-1)
    Image.fromarray(np.clip(tone, 0, 255).astype(np.uint8)).save(path, quality=90)


def region_of(path: Path, box: Box, size: tuple[int, int]) -> Region:
    image = ImageRef(*size, path=str(path))
    return Region(page=Page(path.stem, 0, image, *size), box=box, kind="image")


def measure(cases: list[tuple[Path, Box, tuple[int, int]]], side: int, repeat: int = 1) -> dict:
    """CPU seconds and outputs of both methods over the same cases, interleaved."""
    reader = CropReader(Fetcher(), max_side=side)
    cpu = {"naive": 0.0, "bookidx": 0.0}
    wall = {"naive": 0.0, "bookidx": 0.0}
    diffs = []
    for _ in range(repeat):
        for path, box, size in cases:
            region = region_of(path, box, size)
            outs = {}
            for name, fn in (("naive", lambda: naive(path, box, side)), ("bookidx", lambda: reader.read(region))):
                c0, w0 = time.thread_time(), time.perf_counter()
                outs[name] = fn()
                cpu[name] += time.thread_time() - c0
                wall[name] += time.perf_counter() - w0
            a, b = (np.asarray(outs[k], np.float32) for k in ("naive", "bookidx"))
            diffs.append(float(np.abs(a - b).mean()) if a.shape == b.shape else float("nan"))
    n = len(cases) * repeat
    return {"n": n, "cpu": cpu, "wall": wall, "diff": statistics.fmean(diffs)}


def report(label: str, result: dict) -> None:
    n, cpu, wall = result["n"], result["cpu"], result["wall"]
    rate = {k: n / v for k, v in cpu.items()}
    print(f"{label:<44} {rate['naive']:>9.1f} {rate['bookidx']:>9.1f} {rate['bookidx'] / rate['naive']:>7.2f}x"
          f" {n / wall['naive']:>9.1f} {n / wall['bookidx']:>9.1f} {result['diff']:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("BOOKIDX_SHARED", ROOT.parent / "shared")))
    parser.add_argument("--pages", type=int, default=500, help="chapbook pages to use (at most 500)")
    parser.add_argument("--sides", default="224,384", help="crop sizes (longest side) to measure")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the synthetic page's boxes")
    args = parser.parse_args()
    sides = [int(s) for s in args.sides.split(",")]

    images = sorted((args.shared / "corpus-images/nls-chapbooks-printed-in-scotland/images").glob("*.jpg"))[: args.pages]
    if not images:
        sys.exit(f"no chapbook images under {args.shared}")
    sizes = {}
    for path in images:
        with Image.open(path) as img:
            sizes[path] = img.size
    whole = [(p, Box(0, 0, *s), s) for p, s in sizes.items()]
    half = [(p, Box(s[0] // 8, s[1] // 4, 3 * s[0] // 4, s[1] // 2), s) for p, s in sizes.items()]

    print(f"Pillow {Image.__version__}, {os.cpu_count()} CPUs visible; single thread; rates are crops per CPU-second")
    print(f"{'workload':<44} {'naive/s':>9} {'bookidx/s':>9} {'ratio':>8} {'naive/s':>9} {'bookidx/s':>9} {'diff':>6}")
    print(f"{'':<44} {'(cpu)':>9} {'(cpu)':>9} {'':>8} {'(wall)':>9} {'(wall)':>9} {'(px)':>6}")
    mp = statistics.fmean(w * h for w, h in sizes.values()) / 1e6
    for side in sides:
        report(f"chapbooks {len(images)} x whole page ({mp:.2f} MP), {side}", measure(whole, side))
        report(f"chapbooks {len(images)} x half-page box, {side}", measure(half, side))

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.jpg"
        synthetic_page(page)
        size = (2550, 3400)
        boxes = {"quarter page": Box(300, 700, 1275, 1700), "half page": Box(300, 700, 1950, 1400),
                 "whole page": Box(0, 0, *size)}
        for side in sides:
            for name, box in boxes.items():
                report(f"synthetic 8.7 MP, {name} {box.w}x{box.h}, {side}", measure([(page, box, size)], side, args.repeat))


if __name__ == "__main__":
    main()
