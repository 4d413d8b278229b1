"""adapters/alto.py on every real ALTO file of the corpus, plus hand-verified boxes and captions.

Ground truth: BnF's own Gallica crops of the La Croix illustrations, the real page scans of LSU
(mm10) and KB (pixel ALTO at twice the image size), and the same OCR-D page as PAGE-XML.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CORPUS
from PIL import Image

from bookidx.adapters.alto import read_alto
from bookidx.adapters.records import Box, ImageRef, Page, RegionFilter
from bookidx.errors import SourceError

_ROOT = re.compile(rb"<(?:[\w.-]+:)?alto[\s>]")


def _alto_files() -> list[str]:
    """Every *.xml / *.alto file of the corpus whose root element is ``alto`` (sniffed)."""
    if not CORPUS.is_dir():
        return []
    found = []
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix.lower() in (".xml", ".alto") and path.is_file():
            head = re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", path.read_bytes()[:4096], flags=re.S)
            if _ROOT.match(head.lstrip(b"\xef\xbb\xbf \t\r\n")):
                found.append(str(path.relative_to(CORPUS)))
    return found


def alto(path: Path, data: bytes | None = None, **kw):
    problems = []
    regions = read_alto(path.read_bytes() if data is None else data, source=str(path),
                        report=problems.append, **kw)
    return regions, problems


def block(regions, block_id: str):
    return next(r for r in regions if r.block_id == block_id)


def with_block(data: bytes, block: bytes, container: bytes = b"PrintSpace") -> bytes:
    """The document with ``block`` inserted as the first child of its first ``container``."""
    start = re.search(rb"<(?:\w+:)?" + container + rb"\b[^>]*?(/?)>", data)
    if start.group(1):  # an empty <PrintSpace/>: open it
        return data[:start.start()] + start.group(0)[:-2] + b">" + block + b"</" + container + \
            b">" + data[start.end():]
    return data[:start.end()] + block + data[start.end():]


def image_page(path: Path, index: int = 0) -> Page:
    """A page for the real scan at ``path``, as METS or IIIF would describe it."""
    w, h = Image.open(path).size
    return Page(id=path.name, index=index, image=ImageRef(w, h, path=str(path)), width=w, height=h)


def test_corpus_has_the_alto_files_sources_md_lists():
    assert len(_alto_files()) >= 30 or not CORPUS.is_dir()


@pytest.mark.parametrize("name", _alto_files())
def test_every_corpus_alto_file_reads(corpus, name):
    path = corpus / name
    regions, problems = alto(path)
    assert all(p.source == str(path) for p in problems)
    for r in regions:
        img = r.page.image
        assert r.box.w > 0 and r.box.h > 0 and r.box.x >= 0 and r.box.y >= 0
        assert r.box.x + r.box.w <= img.width and r.box.y + r.box.h <= img.height
        assert r.kind in ("Illustration", "GraphicalElement", "ComposedBlock")
        assert r.page.id.startswith(str(path) + "#") and r.source == str(path)
        assert len(r.context) <= 1000
    assert len({r.box for r in regions}) == len(regions)  # one region per box


@pytest.mark.parametrize("n, size", [(1, (4856, 1889)), (2, (767, 899)), (3, (796, 1101))])
def test_lacroix_illustrations_match_gallica_crops(corpus, n, size):
    folder = corpus / "bnf-alto-iiif-lacroix"
    regions, problems = alto(folder / f"DOCS/0220169/X/X000000{n}.xml")
    crop = Image.open(folder / f"IMG/220169-{n}-1.jpg").size
    assert crop == size
    first = next(r for r in regions if r.kind == "Illustration")
    assert (first.box.w, first.box.h) == crop
    assert ["byte order mark" in p.message for p in problems] == [True]


def test_lacroix_captions_printed_inside_the_picture_frame(corpus):
    folder = corpus / "bnf-alto-iiif-lacroix/DOCS/0220169/X"
    heart = block(alto(folder / "X0000002.xml")[0], "PAG_00000002_IL000001")
    assert heart.caption == "PROMESSES de Notre-Seigneur Jésus-Christ"
    assert "PROMESSES" not in heart.context  # the caption is not repeated as context
    assert "A LA BIENHEUREUSE MARGUERITE-MARIE" in heart.context  # the heading just below
    cartoon = block(alto(folder / "X0000003.xml")[0], "PAG_00000003_IL000001")
    assert cartoon.caption.startswith("Bêtînet. — Moi. j'ai une bonne précaution")
    masthead = block(alto(folder / "X0000001.xml")[0], "PAG_00000001_IL000001")
    # "agri-" / "cole?." hyphenated across lines, rejoined from SUBS_CONTENT
    assert "les nouvelles politiques et agricole?. la Vie des Saints" in masthead.context


def test_vogue_caption_below_tags_and_nested_illustrations(corpus):
    folder = corpus / "bnf-gallica-vogue1920/collection/X"
    hat = block(alto(folder / "X00000020.xml")[0], "PAG_00000020_IL000001")
    assert hat.caption.startswith("Rien n'est plus à la mode, cette saison, que les fleurs.")
    assert "4 ROGUE" in hat.context  # the running head above is context, not the caption
    regions, _ = alto(folder / "X00000019.xml")  # Illustration and stamps inside a ComposedBlock
    assert [(r.kind, r.tags) for r in regions] == [
        ("Illustration", ()), ("GraphicalElement", ("stamp",)), ("GraphicalElement", ("stamp",))]


def test_lsu_mm10_pages_match_their_scans(corpus):
    folder = corpus / "lsu-loyola-maroon-1923"
    for n, image in [(1, "mn_19231115_001.jpg"), (2, "mn_19231115_002.jp2"),
                     (4, "mn_19231115_004.jpg")]:
        path = folder / f"19231115-ALTO0000{n}.xml"
        data = path.read_bytes().replace(b'TYPE="Advertisement"', b'TYPE="Illustration"')
        by_dpi, _ = alto(path, data)  # no image size known: mm10 x 300 dpi / 254
        scan = image_page(folder / "19231115" / image)
        by_image, problems = alto(path, data, page=scan)  # scaled by image / ALTO page size
        assert problems == []
        page = by_dpi[0].page
        assert abs(page.image.width - scan.image.width) <= 2
        assert abs(page.image.height - scan.image.height) <= 2
        for a, b in zip(by_dpi, by_image):
            assert max(abs(a.box.x - b.box.x), abs(a.box.y - b.box.y),
                       abs(a.box.w - b.box.w), abs(a.box.h - b.box.h)) <= 2
        assert all(r.page is scan for r in by_image)
    # P4_CB00001 (the D. H. Holmes advertisement, checked by eye on the scan): mm10 -> px
    ad = by_image[0]
    assert ad.block_id == "P4_CB00001"
    assert ad.box == Box(round(1414 * 3103 / 2627), round(2108 * 4137 / 3503),
                         round(2327 * 3103 / 2627) - round(1414 * 3103 / 2627),
                         round(2591 * 4137 / 3503) - round(2108 * 4137 / 3503))


def test_kb_pixel_alto_on_a_half_size_image(corpus):
    path = corpus / "kb-alto-editor/example.xml"
    # a picture with TextBlock3's coordinates, and one in the inconsistent RightMargin
    data = with_block(path.read_bytes(), b'<Illustration ID="I1" HEIGHT="98" WIDTH="766" '
                                         b'HPOS="405" VPOS="547"/>')
    data = data.replace(b'<RightMargin HEIGHT="2744" WIDTH="193" HPOS="2229" VPOS="0"/>',
                        b'<RightMargin HEIGHT="2744" WIDTH="193" HPOS="2229" VPOS="0">'
                        b'<GraphicalElement ID="G1" HEIGHT="100" WIDTH="100" HPOS="1500" '
                        b'VPOS="10"/>'
                        b'</RightMargin>')
    scan = image_page(corpus / "kb-alto-editor/img/example_image.jpeg")
    assert (scan.image.width, scan.image.height) == (804, 1372)
    regions, problems = alto(path, data, page=scan)
    assert problems == []
    assert [(r.block_id, r.box) for r in regions] == [
        ("G1", Box(750, 5, 50, 50)),  # blocks in margins count, not only in PrintSpace
        ("I1", Box(202, 274, 384, 48)),  # edges 405..1171 x 547..645 halved, to even on .5
    ]
    alone, _ = alto(path, data)  # no page given: the image named by fileName is found next to it
    assert alone[0].page.image.path == str(corpus / "kb-alto-editor/img/example_image.jpeg")


def test_loc_inch1200_float_coordinates(corpus):
    path = corpus / "ocr-fileformat-samples/alto/1.1/sn86069133.1910-10-31.alto"
    data = with_block(path.read_bytes(), b'<Illustration ID="I1" HEIGHT="1701.0" WIDTH="16026.0" '
                                         b'HPOS="294.0" VPOS="972.0"/>')
    (region,), problems = alto(path, data)
    assert problems == []
    assert (region.page.image.width, region.page.image.height) == (5116, 6485)  # 20463/4 x 25941/4
    assert region.box == Box(74, 243, 4080 - 74, 668 - 243)  # /4 at 300 dpi
    (at400,), _ = alto(path, data, dpi=400)
    assert at400.box == Box(98, 324, 5440 - 98, 891 - 324)  # /3


def test_bl_picture_composed_block_text_is_neither_caption_nor_context(corpus):
    path = corpus / "bl-newspapers-alto2txt/0002647/1824/0217/0002647_18240217_0002.xml"
    regions, _ = alto(path)
    assert [(r.kind, r.block_id) for r in regions] == [
        ("ComposedBlock", "pa0002001"), ("ComposedBlock", "pa0002015")]
    column = regions[1]  # a text column mis-segmented as a picture
    assert "rot's in their mother" not in column.context + column.caption
    assert column.context  # the real neighbours' text is there


def test_nln_duplicated_declaration_and_same_box_wrapper(corpus):
    path = corpus / "nln-ngx-mime/alto/testAlto.raw.xml"
    regions, problems = alto(path)
    # ComposedBlock TYPE="Illustration" wraps a GraphicalElement of the same box: one region
    assert [(r.kind, r.block_id) for r in regions] == [("ComposedBlock", "P31_CB00004")]
    assert regions[0].box == Box(55, 123, 1162, 824)  # mm10 at 300 dpi
    assert "duplicated XML declaration" in problems[0].message


BAD = b"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
<Description><MeasurementUnit>pixel</MeasurementUnit></Description>
<Layout><Page ID="P1" WIDTH="1000" HEIGHT="1999;x_wconf">
<TopMargin HPOS="0" VPOS="0" WIDTH="1000" HEIGHT="100">
<GraphicalElement ID="ok1" HPOS="10.6" VPOS="20.4" WIDTH="99.5" HEIGHT="50"/>
</TopMargin>
<PrintSpace>
<Illustration ID="bad1" HPOS="0" VPOS="0" WIDTH="300" HEIGHT="1999;x_wconf"/>
<Illustration ID="bad2" HPOS="0" VPOS="0" WIDTH="-5" HEIGHT="30"/>
<Illustration ID="bad3" HPOS="nan" VPOS="0" WIDTH="5" HEIGHT="30"/>
<Illustration ID="bad4" VPOS="0" WIDTH="5" HEIGHT="30"/>
<Illustration ID="out" HPOS="2000" VPOS="0" WIDTH="50" HEIGHT="30"/>
<Illustration ID="ok2" HPOS="-20" VPOS="100" WIDTH="120" HEIGHT="80"/>
</PrintSpace></Page></Layout></alto>"""


def test_bad_attributes_skip_the_block_with_a_problem():
    problems = []
    page = Page(id="p", index=0, image=ImageRef(1000, 1500))
    regions = read_alto(BAD, source="bad.xml", page=page, report=problems.append)
    # the page size is unusable: scale 1 (pixel unit); negative HPOS is clipped, not skipped
    assert [(r.block_id, r.box) for r in regions] == [
        ("ok1", Box(11, 20, 99, 50)), ("ok2", Box(0, 100, 100, 80))]
    where = [p.where for p in problems]
    assert where == ["line 4: Page P1 HEIGHT", "line 9: Illustration bad1 HEIGHT",
                     "line 10: Illustration bad2 WIDTH", "line 11: Illustration bad3 HPOS",
                     "line 12: Illustration bad4 HPOS", "line 13: Illustration out"]
    assert "'1999;x_wconf'" in problems[1].message and all(p.source == "bad.xml" for p in problems)


TWO_PAGES = b"""<a:alto xmlns:a="http://schema.ccs-gmbh.com/ALTO">
<a:Description><a:MeasurementUnit>mm10</a:MeasurementUnit>
<a:sourceImageInformation><a:fileName>C:\\scans\\spread.tif</a:fileName></a:sourceImageInformation>
</a:Description>
<a:Tags><a:LayoutTag ID="T1" LABEL="map"/></a:Tags>
<a:Layout>
<a:Page ID="L" WIDTH="1000" HEIGHT="1500" PHYSICAL_IMG_NR="1" PRINTED_IMG_NR="12">
<a:PrintSpace>
<a:ComposedBlock ID="c1" TYPE="illustration" HPOS="0" VPOS="0" WIDTH="500" HEIGHT="400">
<a:Illustration ID="i1" TAGREFS="T1 T9" HPOS="100" VPOS="100" WIDTH="254" HEIGHT="254"/>
</a:ComposedBlock></a:PrintSpace></a:Page>
<a:Page ID="R" WIDTH="1000" HEIGHT="1500">
<a:PrintSpace>
<a:GraphicalElement ID="g1" HPOS="0" VPOS="0" WIDTH="254" HEIGHT="508"/>
</a:PrintSpace>
</a:Page></a:Layout></a:alto>"""


def test_prefixed_root_two_pages_tags_and_mm10_without_image():
    regions = read_alto(TWO_PAGES, source="spread.xml")
    assert [(r.page.id, r.page.index, r.page.label, r.kind, r.block_id) for r in regions] == [
        ("spread.xml#L", 0, "12", "ComposedBlock", "c1"),
        ("spread.xml#L", 0, "12", "Illustration", "i1"),
        ("spread.xml#R", 1, "", "GraphicalElement", "g1")]
    assert regions[1].box == Box(118, 118, 300, 300)  # 100 mm10 = 1/2.54 in = 118.1 px at 300 dpi
    assert regions[1].tags == ("map", "T9")  # an unknown TAGREF keeps its id
    assert (regions[0].page.image.width, regions[0].page.image.height) == (1181, 1772)
    assert regions[0].page.image.path is None  # C:\scans\spread.tif is not here


def test_given_page_with_several_alto_pages_gets_derived_ids():
    book = Page(id="https://example.org/canvas/7", index=6, image=ImageRef(2362, 3543))
    regions = read_alto(TWO_PAGES, source="spread.xml", page=book)
    assert [(r.page.id, r.page.index) for r in regions] == [
        ("https://example.org/canvas/7#L", 6), ("https://example.org/canvas/7#L", 6),
        ("https://example.org/canvas/7#R", 7)]
    assert regions[2].box == Box(0, 0, 600, 1200)  # scaled by image / ALTO size, not by dpi


def test_unknown_unit_and_not_alto_and_entities():
    problems = []
    data = (b"<alto><Description><MeasurementUnit>furlong</MeasurementUnit></Description><Layout>"
            b'<Page WIDTH="10" HEIGHT="10"><PrintSpace><Illustration HPOS="1" VPOS="1" WIDTH="5" '
            b'HEIGHT="5"/></PrintSpace></Page></Layout></alto>')
    (region,) = read_alto(data, source="u.xml", report=problems.append)
    assert region.box == Box(1, 1, 5, 5) and region.page.id == "u.xml#p1"
    assert "furlong" in problems[0].message
    with pytest.raises(SourceError, match="not an ALTO document"):
        read_alto(b"<mets/>", source="m.xml")
    with pytest.raises(SourceError, match="entity"):
        read_alto(b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><alto>&e;</alto>',
                  source="x.xml")


def test_filter_is_left_to_the_caller(corpus):
    # The IIIF cookbook newspaper tags column rules as pictures; they come back, to be counted.
    regions, _ = alto(corpus / "iiif-cookbook/0068-newspaper/newspaper_issue_2-alto_p2.xml")
    kept = [r for r in regions if RegionFilter().reason(r) is None]
    assert len(regions) == 19 and 0 < len(kept) < len(regions)


def test_a_page_of_advertisements_only_says_so_at_debug(corpus, caplog):
    # LSU 1923: docWORKS boxes each ad as ComposedBlock TYPE="Advertisement" around its OCR'd
    # words; no picture block, so no region, and `bookidx -vv` says why instead of nothing.
    # Not `-v` (INFO): a newspaper run would print a line per page amid the progress bar.
    path = corpus / "lsu-loyola-maroon-1923/19231115-ALTO00004.xml"
    with caplog.at_level("INFO", logger="bookidx.adapters.alto"):
        assert alto(path) == ([], [])
    assert caplog.records == []
    with caplog.at_level("DEBUG", logger="bookidx.adapters.alto"):
        regions, problems = alto(path)
    assert regions == [] and problems == []
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: page P4: no picture blocks (Illustration, GraphicalElement, ComposedBlock "
        "TYPE='Illustration'); not taken as pictures: 2 ComposedBlock TYPE='Advertisement'"]
    caplog.clear()
    with caplog.at_level("DEBUG", logger="bookidx.adapters.alto"):
        assert alto(corpus / "bnf-alto-iiif-lacroix/DOCS/0220169/X/X0000001.xml")[0]
    assert caplog.records == []  # pages with pictures log nothing
