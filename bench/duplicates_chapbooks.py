"""Near-duplicate groups (dedup.py) on the 500 NLS chapbook pages, against the candidate pairs.

Indexes every page whole with a real model (default efficientnet-lite0, offline), finds groups
at a sweep of cosine thresholds, and scores their pairs against
``candidate_near_duplicate_pairs.csv``: pairs at Inception-v3 cosine >= 0.93 from PixPlot's
vectors. That reference is MACHINE-DERIVED AND UNVERIFIED (its SOURCES.md: of 10 pairs checked
by eye, 8 were true), and another model's cosines have another scale, so read the numbers as
agreement with that list, not as accuracy.

Two scores per threshold: *group pairs* (every two members of a group, what a user sees as
"the same picture") and *links* (the pairs directly above the threshold, before union-find);
group pairs pay for transitivity (a group of 20 makes 190 pairs, most never in the reference).

``--planted N`` adds N known duplicates, rescans in miniature: N random pages shrunk to 70 %,
cropped by 2 % on each side and saved as JPEG quality 50 (``planted-<page>``). They are left
out of the reference scores and reported on their own: how many land in their original's group.

    python bench/duplicates_chapbooks.py                   # index in a temporary folder
    python bench/duplicates_chapbooks.py --index /tmp/ch   # keep (and reuse) the index
    python bench/duplicates_chapbooks.py --json out.json

Measured (efficientnet-lite0, CPU, 2 shared cores; indexing the 500 pages 130 s, each
find_groups 0.03-0.1 s; --planted 50, max group 50):

    threshold  groups items max | group pairs: TP/pairs  prec  recall  F1 | links: prec recall  F1 | planted
      0.87         53    402  50 |          96/5526     0.017  0.941 0.034 |      0.066 0.833 0.122 | 46/50
      0.90         50    243  50 |          87/1649     0.053  0.853 0.099 |      0.180 0.657 0.283 | 35/50
      0.92         40    131  31 |          63/466      0.135  0.618 0.222 |      0.325 0.373 0.347 | 16/50
      0.93         23     76  24 |          49/286      0.171  0.480 0.253 |      0.429 0.235 0.304 |  6/50
      0.94         17     43   7 |          20/41       0.488  0.196 0.280 |      0.545 0.118 0.194 |  4/50

Agreement with the Inception-v3 list is low at every threshold, and by eye (contact sheets of
the top disagreements) both lists are mostly pages from one printer's series with the same
layout and different woodcuts, not reprinted pictures: whole-page vectors measure layout.
EfficientNet-Lite0's pooled ReLU6 features also sit high (median cosine of two random pages
0.73) and move with JPEG loss (quality 50 alone: mean 0.946, min 0.872) and 2 % crops (mean
0.930, min 0.837), so rescans need ~0.87, where layout chains groups up to the size cap.

``--whiten 128`` (same index, same planted rescans; whitened cosine):

    threshold  groups items max | group pairs: TP/pairs  prec  recall  F1 | links: prec recall  F1 | planted
      0.40         88    242  13 |          46/226      0.204  0.451 0.280 |      0.304 0.333 0.318 | 50/50
      0.45         82    199   7 |          32/99       0.323  0.314 0.318 |      0.380 0.265 0.312 | 49/50
      0.50         74    167   4 |          27/59       0.458  0.265 0.335 |      0.489 0.216 0.299 | 49/50

49 of 50 rescans found with no group over 7, where raw cosine found 46 with groups of 50.
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

from bookidx.config import IndexConfig
from bookidx.dedup import find_groups, pair_metrics
from bookidx.runner import index
from bookidx.store import Index

SHARED = Path(os.environ.get("BOOKIDX_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CHAPBOOKS = SHARED / "corpus-images" / "nls-chapbooks-printed-in-scotland"
THRESHOLDS = (0.80, 0.83, 0.85, 0.87, 0.89, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.97)
WHITENED_THRESHOLDS = (0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.70)


def reference() -> tuple[list[tuple[str, str]], list[dict]]:
    with (CHAPBOOKS / "candidate_near_duplicate_pairs.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [(r["file_a"], r["file_b"]) for r in rows], [r for r in rows if r["visual_check"].strip()]


def plant(folder: Path, n: int) -> Path:
    """``n`` rescans in miniature of random pages (seeded), made once."""
    import random

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.name for p in (CHAPBOOKS / "images").glob("*.jpg"))
    for page in random.Random(8).sample(pages, n):
        out = folder / f"planted-{page}"
        if out.exists():
            continue
        with Image.open(CHAPBOOKS / "images" / page) as im:
            w, h = im.size
            im = im.convert("RGB").crop((w // 50, h // 50, w - w // 50, h - h // 50))
            im.resize((im.width * 7 // 10, im.height * 7 // 10), Image.Resampling.BILINEAR).save(out, quality=50)
    return folder


def with_f1(m: dict) -> dict:
    p, r = m["precision"], m["recall"]
    return {**m, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=None, help="index folder (default: a temporary one)")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--neighbours", type=int, default=10)
    ap.add_argument("--max-group", type=int, default=50)
    ap.add_argument("--planted", type=int, default=0, help="known rescans to add (see above)")
    ap.add_argument("--whiten", type=int, default=None, help="PCA-whiten to this many dimensions (dedup.find_groups)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tmp = None if args.index else tempfile.TemporaryDirectory()
    path = args.index or Path(tmp.name) / "idx"

    sources = [str(CHAPBOOKS / "images")]
    if args.planted:
        sources.append(str(plant(path.parent / f"{path.name}-planted", args.planted)))
    t0 = time.perf_counter()
    summary = index(sources, path, IndexConfig(model=args.model, device=args.device, workers=2))
    print(f"indexed {summary.indexed} new pages ({summary.already} already) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    truth, checked = reference()
    idx = Index.open(path, readonly=False)
    name = {key: Path(r.page.image.path).name for key, r in idx.items()}
    out = {"model": args.model, "whiten": args.whiten, "pages": len(idx), "reference_pairs": len(truth), "sweep": []}
    print(f"{'':>26}{'group pairs':^38}{'links':^30}")
    print(f"{'threshold':>9} {'groups':>6} {'items':>5} {'max':>4}  {'pairs':>5} {'TP':>4} {'prec':>6} {'recall':>6} {'F1':>5}"
          f"    {'links':>5} {'TP':>4} {'prec':>6} {'recall':>6} {'F1':>5} {'s':>5}")
    for threshold in WHITENED_THRESHOLDS if args.whiten else THRESHOLDS:
        t1 = time.perf_counter()
        groups = find_groups(idx, threshold=threshold, neighbours=args.neighbours, max_size=args.max_group, whiten=args.whiten)
        seconds = time.perf_counter() - t1
        real = lambda keys: [name[k] for k in keys if not name[k].startswith("planted-")]
        m = with_f1(pair_metrics([real(g) for g in groups.groups], truth))
        links = with_f1(pair_metrics([real((a, b)) for a, b, _ in groups.pairs if len(real((a, b))) == 2], truth))
        group_of = {name[k]: g for g in groups.groups for k in g}
        planted = [n for n in name.values() if n.startswith("planted-")]
        found = sum(n[len("planted-"):] in {name[k] for k in group_of.get(n, ())} for n in planted)
        largest = max((len(g) for g in groups.groups), default=0)
        out["sweep"].append({"threshold": threshold, "groups": len(groups.groups), "items": groups.items, "largest": largest,
                             "capped": groups.capped, "group_pairs": m, "links": links, "seconds": seconds,
                             "planted_found": found, "planted": len(planted)})
        print(f"{threshold:9.2f} {len(groups.groups):6d} {groups.items:5d} {largest:4d}  {m['predicted_pairs']:5d} "
              f"{m['true_positives']:4d} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:5.3f}    {links['predicted_pairs']:5d} "
              f"{links['true_positives']:4d} {links['precision']:6.3f} {links['recall']:6.3f} {links['f1']:5.3f} {seconds:5.2f}"
              + (f"   planted {found}/{len(planted)}" if planted else ""))
    idx.close()
    for kind in ("group_pairs", "links"):
        best = max(out["sweep"], key=lambda s: s[kind]["f1"])
        print(f"best {kind} agreement: threshold {best['threshold']}, F1 {best[kind]['f1']:.3f}")
    if checked:
        print(f"{len(checked)} reference pairs carry a visual_check note")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
