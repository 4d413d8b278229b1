"""adapters/page.py on the OCR-D ground-truth PAGE files and on small schema-shaped fixtures.

The corpus has PAGE-XML only from OCR-D (kant_aufklaerung_1784, 2019 schema), and those pages
hold no picture regions, so picture handling is tested on hand-written fixtures in
tests/fixtures/page/ that follow the PRImA schemas of 2010, 2013 and 2019.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bookidx.adapters.alto import read_alto
from bookidx.adapters.page import read_page
from bookidx.adapters.records import Box, ImageRef, Page
from bookidx.errors import SourceError

FIXTURES = Path(__file__).parent / "fixtures" / "page"


def page_xml(path: Path, data: bytes | None = None, **kw):
    problems = []
    regions = read_page(path.read_bytes() if data is None else data, source=str(path),
                        report=problems.append, **kw)
    return regions, problems


def test_2019_picture_kinds_nesting_types_and_caption():
    path = FIXTURES / "page-2019.xml"
    regions, problems = page_xml(path)
    assert [(r.kind, r.block_id, r.box, r.tags) for r in regions] == [
        ("ImageRegion", "img1", Box(200, 280, 810, 620), ()),  # bounding box of a hexagon
        ("GraphicRegion", "stamp1", Box(800, 1300, 200, 200), ("stamp",)),  # inside a table
        ("ChartRegion", "chart1", Box(1060, 300, 130, 200), ("bar",)),
        ("MapRegion", "map1", Box(1060, 520, 140, 180), ()),  # clipped at the right edge
        ("GraphicRegion", "edge1", Box(0, 1560, 90, 40), ("decoration",)),  # clipped twice
    ]
    mill = regions[0]
    # line-level text (TextEquiv index 1 wins over 2), whitespace collapsed; the separator and
    # the lines' text are not pictures
    assert mill.caption == "Fig. 3. The old mill at Dunkeld."
    assert "The miller's house." in mill.context  # word-level text
    assert "CHAPTER III." in mill.context and "Fig. 3" not in mill.context
    assert mill.page.id == f"{path}#p1"
    image = mill.page.image
    assert (image.width, image.height, image.path) == (1200, 1600, None)
    assert [p.where for p in problems] == ["line 72: ImageRegion broken1 Coords",
                                           "line 75: ImageRegion broken2 Coords"]


def test_2010_point_children():
    (region,), problems = page_xml(FIXTURES / "page-2010.xml")
    assert (region.kind, region.box) == ("ImageRegion", Box(120, 100, 560, 600))
    assert region.caption == "Asplenium." and region.context == "THE FERNS"
    assert problems == []


def test_2013_prefixed_root_and_nested_image_in_a_frame():
    regions, problems = page_xml(FIXTURES / "page-2013-prefixed.xml")
    assert [(r.kind, r.block_id, r.tags) for r in regions] == [
        ("GraphicRegion", "frame1", ("frame",)), ("ImageRegion", "photo1", ())]
    assert regions[1].caption == "The harbour at dawn."
    assert regions[1].page.image.path is None  # file:///nowhere/... is not on this machine


def test_given_page_scales_to_a_smaller_image():
    # a IIIF derivative half the size of the scan the PAGE file was made on
    canvas = Page(id="https://example.org/c/1", index=3, image=ImageRef(600, 800,
                  service="https://example.org/iiif/p1", api=3), width=1200, height=1600)
    regions, _ = page_xml(FIXTURES / "page-2019.xml", page=canvas)
    assert regions[0].page is canvas
    assert regions[0].box == Box(100, 140, 405, 310)
    assert regions[0].canvas_box() == Box(200, 280, 810, 620)
    assert regions[0].caption == "Fig. 3. The old mill at Dunkeld."


def test_image_size_written_as_a_decimal_still_scales():
    """``imageWidth="1200.0"`` is a size, read as every other size in the adapters is."""
    data = (FIXTURES / "page-2019.xml").read_bytes()
    width = data.split(b'imageWidth="', 1)[1].split(b'"', 1)[0]
    decimal = data.replace(b'imageWidth="' + width + b'"', b'imageWidth="' + width + b'.0"', 1)
    canvas = Page(id="c", index=0, image=ImageRef(600, 800, url="https://example.org/p1.jpg"), width=600, height=800)
    assert [r.box for r in page_xml(FIXTURES / "page-2019.xml", decimal, page=canvas)[0]] == [
        r.box for r in page_xml(FIXTURES / "page-2019.xml", page=canvas)[0]]


def test_ocrd_page_agrees_with_its_alto_twin(corpus):
    """OCR-D ships the same ground truth as PAGE and ALTO: the same separators, the same boxes."""
    data = corpus / "ocrd-assets/kant_aufklaerung_1784/data"
    path = data / "OCR-D-GT-PAGE/PAGE_0017_PAGE.xml"
    assert page_xml(path) == ([], [])  # separators and text only: no pictures
    as_graphics = path.read_bytes().replace(b"SeparatorRegion", b"GraphicRegion")
    regions, problems = page_xml(path, as_graphics)
    alto = read_alto((data / "OCR-D-GT-ALTO/PAGE_0017_ALTO.xml").read_bytes(),
                      source="alto.xml")
    assert [(r.block_id, r.box) for r in regions] == [(r.block_id, r.box) for r in alto]
    # imageFilename is relative to the workspace, one folder up from the PAGE file
    assert regions[0].page.image.path == str(data / "OCR-D-IMG/INPUT_0017.tif")
    assert "Berliniſche Monatsſchrift" in regions[0].context  # word-level TextEquiv
    assert problems == []


def test_not_page_and_not_xml():
    with pytest.raises(SourceError, match="not a PAGE document"):
        read_page(b"<alto/>", source="a.xml")
    with pytest.raises(SourceError, match="line 1"):
        read_page(b"<PcGts><Page></PcGts>", source="b.xml")
