"""A trained region classifier (classify_train.py) on hand-labelled chapbook regions, cross-validated.

The labelled set, ``bench/data/chapbook_regions.csv``, is what a crude layout analysis proposes
as pictures on 60 of the 500 NLS chapbook pages (seeded sample), labelled by hand in the NLN
scheme from contact sheets. The candidates are ink components (threshold at 0.62 x the page's
median grey, closing 13 x 21 px, dilation 5 x 5, boxes of at least 40 x 30 px and 3000 px²),
plus one box per page where ink covers under 0.2 %. Rules used when labelling:

* ``segmentation-anomaly``: printed text of any size (title words, imprints, verse, whole text
  pages with a small cut), and dark scanning artefacts (gutters, dark page edges);
* ``blank-page``: bare paper, also with show-through or a light page edge;
* ``illustration``: woodcuts and engravings, whole or in large pieces;
* ``graphical-element``: printers' ornaments (FINIS cuts, flourishes, bands, borders), library stamps.

Six ambiguous crops (handwriting, faint rules) were left out: 393 remain. One person labelled
each crop once, from thumbnails; expect a few disputable labels. The set is text-heavy
(277 / 52 / 46 / 18), like real layout output, so macro-F1 matters more than accuracy
(predicting "segmentation-anomaly" always scores 0.705).

The script embeds the crops (default efficientnet-lite0, offline), indexes them, and runs
``bookidx classify train`` on the labels: the printed table is the command's own output.

    python bench/classify_chapbooks.py [--model efficientnet-lite0] [--index DIR] [--json out.json]

Measured (efficientnet-lite0, CPU, 2 shared cores): embedding the 393 crops 45 s, training 20 s;
C = 100 chosen (macro-F1 by C: 0.1 → 0.847, 1 → 0.887, 10 → 0.911, 100 → 0.917, 1000 → 0.916).
Out-of-fold, 5 folds: accuracy 0.962, macro-F1 0.917::

    class                 precision  recall     f1  support
    blank-page                0.909   0.962  0.935       52
    graphical-element         0.875   0.778  0.824       18
    illustration              0.898   0.957  0.926       46
    segmentation-anomaly      0.989   0.975  0.982      277

    confusion (rows: true)  blank  graphical  illustration  text
    blank-page                 50          0             0     2
    graphical-element           0         14             3     1
    illustration                0          2            44     0
    segmentation-anomaly        5          0             2   270
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bookidx.adapters.records import Box, ImageRef, Page, Region
from bookidx.classify import CLASSIFIER, Classifier
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.store import Index
from PIL import Image

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("BOOKIDX_SHARED", HERE.parents[1] / "shared"))
IMAGES = SHARED / "corpus-images" / "nls-chapbooks-printed-in-scotland" / "images"


def regions() -> tuple[list[Region], list[str]]:
    out, labels = [], []
    with (HERE / "data" / "chapbook_regions.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = IMAGES / row["image"]
            with Image.open(path) as im:
                width, height = im.size
            page = Page(id=f"chapbook:{row['image']}", index=0, image=ImageRef(width, height, path=str(path)), width=width, height=height)
            box = Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
            out.append(Region(page=page, box=box, kind="Illustration", source=row["image"]))
            labels.append(row["label"])
    return out, labels


def build(path: Path, model: str, device: str) -> float:
    embedder = load_embedder(model, device=device)
    items, _ = regions()
    t0 = time.perf_counter()
    crops = []
    for r in items:
        with Image.open(r.page.image.path) as im:
            crops.append(im.convert("RGB").crop((r.box.x, r.box.y, r.box.x + r.box.w, r.box.y + r.box.h)))
    vectors = np.vstack([embedder.embed_images(crops[i : i + 64]) for i in range(0, len(crops), 64)])
    with Index.create_or_open(path, model_info=embedder.info, config=IndexConfig(model=model)) as idx:
        idx.add(items, vectors)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--index", type=Path, default=None, help="index folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tmp = None if args.index else tempfile.TemporaryDirectory()
    path = args.index or Path(tmp.name) / "idx"
    if not (path / "bookidx.json").exists():
        print(f"embedded {len(regions()[0])} crops in {build(path, args.model, args.device):.1f}s", file=sys.stderr)

    items, labels = regions()
    labels_csv = path / "labels.csv"
    with labels_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        w.writerows((r.key, label) for r, label in zip(items, labels))
    t0 = time.perf_counter()
    cli.main(["classify", "train", str(labels_csv), "--index", str(path)], standalone_mode=False)
    print(f"train (5 C values x 5 folds, then the final fit): {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    if args.json:  # the evaluation travels in the saved classifier
        evaluation = Classifier.load(path / CLASSIFIER).details["evaluation"]
        args.json.write_text(json.dumps({"model": args.model, **evaluation}, indent=2))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
