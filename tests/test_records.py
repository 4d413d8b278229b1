"""adapters/records.py's RegionFilter on the corpus: printed rules are dropped, pictures kept.

The aspect limit is chosen from these files (see RegionFilter's docstring), so they pin it from
both sides: OCR-D Kant's rules, which ALTO tags as GraphicalElement, and the most elongated
pictures the corpus has, NLN's labelled regions and BnF La Croix's ornaments.
"""

from __future__ import annotations

import json
import re

import pytest

from bookidx.adapters.alto import read_alto
from bookidx.adapters.records import Box, ImageRef, Page, Region, RegionFilter

KANT = "ocrd-assets/kant_aufklaerung_1784/data/OCR-D-GT-ALTO/PAGE_00{}_ALTO.xml"
# Labelled classes of regions a reader searches for; "Segmentation anomaly" and "Blank page" are not.
PICTURES = ("Illustration or photograph", "Graphical element", "Musical notation", "Map", "Mathematical chart")


@pytest.mark.parametrize("page", ["17", "20"])
def test_the_printed_rules_of_the_kant_pages_are_dropped_as_separators(corpus, page):
    path = corpus / KANT.format(page)
    regions = read_alto(path.read_bytes(), source=str(path))
    assert len(regions) == 2 and {r.kind for r in regions} == {"GraphicalElement"}
    reasons = [RegionFilter().reason(r) for r in regions]
    assert all(reason and reason.startswith("separator") for reason in reasons), reasons


def test_the_most_elongated_pictures_of_the_corpus_are_kept(corpus):
    labelled = json.loads((corpus / "nln-chr24-labels/data/labelled_data.json").read_text())
    boxes = []
    for label in PICTURES:
        for url, is_label in labelled[label].items():
            x, y, w, h = map(int, re.search(r"/(\d+),(\d+),(\d+),(\d+)/", url).groups())
            if is_label:
                boxes.append((label, Box(x, y, w, h)))
    assert len(boxes) > 1000 and max(b.aspect for _, b in boxes) > 20  # a staff of music, 4304x205
    page = Page("p", 0, ImageRef(path="p.jpg"))  # size unknown: only the box's own shape counts
    elongated = [(label, b) for label, b in boxes if RegionFilter().reason(Region(page, b, "Illustration")) is not None
                 and b.aspect >= RegionFilter().max_aspect]
    assert elongated == []
    # BnF La Croix 1903: the ornaments above its pictures (775x68, 761x80) are pictures too.
    for n in ("1", "2"):
        path = corpus / f"bnf-alto-iiif-lacroix/DOCS/0220169/X/X000000{n}.xml"
        ornament = next(r for r in read_alto(path.read_bytes(), source=str(path)) if r.kind == "GraphicalElement")
        assert ornament.box.aspect > 9 and RegionFilter().reason(ornament) is None
