"""adapters/sources.py: sniffing, folders, METS, IIIF (with a local loader) and broken inputs."""

from __future__ import annotations

import csv
import json
import os

import pytest
from PIL import Image

from bookidx.adapters.mets import read_mets
from bookidx.adapters.records import Box
from bookidx.adapters.sources import MAX_DEPTH, read_sources, sniff
from bookidx.adapters.uris import read_local
from bookidx.errors import SourceError
from bookidx.fetch import Fetcher

COOKBOOK = "https://iiif.io/api/cookbook/recipe/0068-newspaper/"
VOGUE = "https://raw.githubusercontent.com/altomator/IIIF/main/collection/X/"


def run(specs, load=None):
    problems = []
    regions = list(read_sources(specs, load=load, report=problems.append))
    return regions, problems


def mapped_loader(corpus):
    """Serve the cookbook and Gallica URLs from the local copies; refuse everything else."""
    def load(uri):
        if uri.startswith(COOKBOOK):
            name = uri[len(COOKBOOK):]
            rendered = corpus / "iiif-cookbook/rendered/0068-newspaper" / name
            return (rendered if rendered.exists() else corpus / "iiif-cookbook/0068-newspaper" / name).read_bytes()
        if uri.startswith(VOGUE):
            return (corpus / "bnf-gallica-vogue1920/collection/X" / uri[len(VOGUE):]).read_bytes()
        return read_local(uri)
    return load


def chapbook_sizes(chapbooks):
    with open(chapbooks / "manifest.csv", newline="") as handle:
        return {row["filename"]: (int(row["width"]), int(row["height"])) for row in csv.DictReader(handle)}


# ---- sniff ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rel, kind", [
    ("ocr-fileformat-samples/alto/1.4/logan.alto", "alto"),  # CCS namespace
    ("lsu-loyola-maroon-1923/19231115-ALTO00001.xml", "alto"),  # no namespace
    ("nln-ngx-mime/alto/testAlto.raw.xml", "alto"),  # two XML declarations
    ("bnf-alto-iiif-lacroix/DOCS/0220169/X/X0000001.xml", "alto"),  # BOM + BnF namespace
    ("ocrd-assets/kant_aufklaerung_1784/data/mets.xml", "mets"),
    ("lsu-loyola-maroon-1923/19231115-METS.xml", "mets"),  # BOM, default namespace
    ("ocrd-assets/kant_aufklaerung_1784/data/OCR-D-GT-PAGE/PAGE_0017_PAGE.xml", "page"),
    ("iiif-mirador-fixtures/version-2/Osbornfa1.json", "iiif-manifest"),
    ("iiif-manifesto-fixtures/potterselectric.json", "iiif-collection"),  # cp1252
    ("iiif-cookbook/rendered/0068-newspaper/newspaper_issue_1-anno_p1.json", "unknown"),
    ("iiif-mirador-fixtures/version-2/broken.json", "unknown"),
    ("bnf-alto-iiif-lacroix/DOCS/0220169/X0220169.XML", "unknown"),  # BnF refNum
    ("kb-alto-editor/img/example_image.jpeg", "image"),
    ("ocrd-assets/indian-ferns/data/OCR-D-IMG/0004.tif", "image"),
    ("lsu-loyola-maroon-1923/19231115/mn_19231115_002.jp2", "image"),
])
def test_sniff_real_files(corpus, rel, kind):
    assert sniff((corpus / rel).read_bytes(), rel) == kind


def test_sniff_prefixed_root_and_lists():
    assert sniff(b'<?xml version="1.0"?>\n<!-- c --><a:alto xmlns:a="x"/>', "p.xml") == "alto"
    assert sniff(b"# manifests\nhttps://x/m.json\n", "list.txt") == "list"
    assert sniff(b"https://x/m.json\n", "list") == "unknown"


def test_default_loader_refuses_http_and_reads_file_urls(tmp_path):
    with pytest.raises(SourceError, match="fetcher") as err:
        read_local("https://example.org/manifest.json")
    assert err.value.parameter == "https://example.org/manifest.json"
    (tmp_path / "a b.txt").write_bytes(b"x")
    assert read_local((tmp_path / "a b.txt").as_uri()) == b"x"
    with pytest.raises(SourceError, match="cannot read"):
        read_local(str(tmp_path / "missing.xml"))


def test_file_uris_name_the_same_file_as_specs_in_mets_and_to_the_fetcher(chapbooks, tmp_path, monkeypatch):
    """``file://./x`` is relative (as METS writes it) wherever it is read; it once became ``/x``."""
    name, size = next(iter(chapbook_sizes(chapbooks).items()))
    image = tmp_path / "dir x" / "p.jpg"
    image.parent.mkdir()
    image.symlink_to(chapbooks / "images" / name)
    monkeypatch.chdir(tmp_path)
    relative = "file://./dir%20x/p.jpg"
    for spec in (relative, image.as_uri(), "file://localhost" + image.as_uri()[len("file://"):]):
        regions, problems = run([spec])
        assert problems == [] and regions[0].box == Box(0, 0, *size), spec
        assert os.path.samefile(regions[0].page.image.path, image)
    mets = read_mets(b'<mets xmlns="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink"><fileSec>'
                     b'<fileGrp USE="IMAGE"><file ID="I" MIMETYPE="image/jpeg"><FLocat xlink:href="' + relative.encode() +
                     b'"/></file></fileGrp></fileSec><structMap TYPE="PHYSICAL"><div><div TYPE="page"><fptr FILEID="I"/>'
                     b'</div></div></structMap></mets>', source=str(tmp_path / "mets.xml"))
    assert mets.pages[0].image == str(image)
    with Fetcher() as fetcher:
        assert fetcher.load(relative) == read_local(relative) == image.read_bytes()
    _, problems = run(["file://elsewhere/dir%20x/p.jpg"])
    assert [p.message for p in problems] == ["file URI on another host (elsewhere) cannot be read"]


# ---- folders ----------------------------------------------------------------------------------

def test_folder_of_chapbook_images(chapbooks, tmp_path):
    sizes = chapbook_sizes(chapbooks)
    names = sorted(sizes)[:3]
    for name in names:
        (tmp_path / name).symlink_to(chapbooks / "images" / name)
    regions, problems = run([str(tmp_path)])
    assert problems == []
    assert [os.path.basename(r.page.image.path) for r in regions] == names
    for region, name in zip(regions, names):
        assert region.kind == "image" and region.box == Box(0, 0, *sizes[name])
        assert (region.page.width, region.page.height) == sizes[name]


def test_broken_json_and_xml_in_a_folder_are_reported_and_the_rest_still_indexed(corpus, tmp_path):
    for name in ("p1.png", "p2.png", "p3.png"):
        Image.new("RGB", (40, 30), "white").save(tmp_path / name)
    (tmp_path / "manifest.json").write_bytes((corpus / "iiif-manifesto-fixtures/wunder.json").read_bytes()[:3000])
    (tmp_path / "junk.xml").write_bytes(b"<not closed")
    # p3's layout file is empty: p3 is left out, not indexed whole (a mended p3.xml then adds its regions)
    (tmp_path / "p3.xml").write_bytes(b"")
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "notes.xml").write_bytes(b"<notes><note>well-formed, just not a source</note></notes>")
    (tmp_path / "info.json").write_text('{"width": 40, "height": 30}')
    regions, problems = run([str(tmp_path)])
    assert [os.path.basename(r.page.image.path) for r in regions] == ["p1.png", "p2.png"]
    said = {os.path.basename(p.source): p.message for p in problems}
    assert said.pop("junk.xml").startswith("not a source: not well-formed XML at line 1: ")  # then libxml2's words
    assert said == {
        "empty.json": "not a source: empty file; skipped",
        "p3.xml": "not a source: empty file; skipped, and its page image p3.png with it",
        "manifest.json": "not a source: not JSON: Unterminated string starting at line 107 column 31; the document "
                         "ends before it is complete (3000 characters; cut short?); skipped",
    }


def test_local_page_ids_do_not_reveal_the_servers_paths(chapbooks, corpus, tmp_path, monkeypatch):
    """Page, manifest and book ids are served (the API's ``canvas``, ``book``); for local files
    they are paths relative to the folder of the spec given, the absolute path stays on the image."""
    book = tmp_path / "shelf" / "book one"
    (book / "mets").mkdir(parents=True)
    name, size = next(iter(chapbook_sizes(chapbooks).items()))
    (book / "p#1.jpg").symlink_to(chapbooks / "images" / name)
    (book / "mets" / "mets.xml").write_text(  # no OBJID and no identifier: the book id was the METS path
        '<mets xmlns="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink"><fileSec>'
        '<fileGrp USE="IMAGE"><file ID="I" MIMETYPE="image/jpeg"><FLocat xlink:href="../p%231.jpg"/></file>'
        '</fileGrp></fileSec><structMap TYPE="PHYSICAL"><div><div TYPE="page" ID="P1"><fptr FILEID="I"/>'
        '</div></div></structMap></mets>')
    kant = corpus / "ocrd-assets/kant_aufklaerung_1784/data"
    lone = tmp_path / "shelf" / "PAGE_0017_ALTO.xml"  # an ALTO whose image is not there
    lone.symlink_to(kant / "OCR-D-GT-ALTO/PAGE_0017_ALTO.xml")
    regions, _ = run([str(book / "p#1.jpg"), str(book / "mets" / "mets.xml"), str(lone)])
    assert [(r.page.id, r.book.id if r.book else None) for r in regions[:2]] == [
        ("p%231.jpg", None), ("mets.xml#P1", "mets.xml")]
    assert regions[2].page.id == "PAGE_0017_ALTO.xml#Page1"
    for r in regions:
        assert str(tmp_path) not in json.dumps([r.page.id, r.page.manifest, r.book and r.book.id]), r.page.id
    assert regions[0].page.image.path == regions[1].page.image.path == str(book / "p#1.jpg")
    monkeypatch.chdir(tmp_path)
    in_folder, _ = run(["shelf"])
    assert sorted(r.page.id for r in in_folder) == [
        "shelf/PAGE_0017_ALTO.xml#Page1", "shelf/PAGE_0017_ALTO.xml#Page1",
        "shelf/book%20one/mets/mets.xml#P1", "shelf/book%20one/p%231.jpg"]
    assert {r.key for r in in_folder} == {r.key for r in regions}  # keys name the image file, as before


def test_image_size_comes_from_the_header_only(chapbooks, tmp_path):
    name, size = next(iter(chapbook_sizes(chapbooks).items()))
    # A truncated JPEG: the header is intact, the pixels are not; decoding would fail.
    (tmp_path / "cut.jpg").write_bytes((chapbooks / "images" / name).read_bytes()[:4096])
    regions, problems = run([str(tmp_path / "cut.jpg")])
    assert problems == [] and regions[0].box == Box(0, 0, *size)


def test_pyramidal_tiff_uses_frame_zero(corpus):
    regions, _ = run([str(corpus / "ocrd-assets/indian-ferns/data/OCR-D-IMG/0004.tif")])
    assert regions[0].box == Box(0, 0, 2626, 3620)


def test_folder_of_alto_and_images_matched_by_name_and_number(corpus, tmp_path):
    lsu = corpus / "lsu-loyola-maroon-1923"
    for name in ("19231115-ALTO00002.xml", "19231115-ALTO00005.xml", "19231115/mn_19231115_002.jp2"):
        (tmp_path / os.path.basename(name)).symlink_to(lsu / name)
    kant = corpus / "ocrd-assets/kant_aufklaerung_1784/data"
    (tmp_path / "kant").mkdir()
    for name in ("OCR-D-GT-ALTO/PAGE_0017_ALTO.xml", "OCR-D-IMG/INPUT_0017.tif"):
        (tmp_path / "kant" / os.path.basename(name)).symlink_to(kant / name)
    regions, problems = run([str(tmp_path)])
    kant_regions = [r for r in regions if r.page.image.path.endswith("INPUT_0017.tif")]
    assert [r.box for r in kant_regions] == [Box(109, 232, 801, 29), Box(115, 661, 805, 29)]
    assert all(r.page.image.path.endswith("INPUT_0017.tif") for r in regions)  # LSU p2: adverts only
    # ALTO00002 found its image (by number: 00002 ~ _002); ALTO00005, a colour chart, has none.
    assert [(os.path.basename(p.source), p.message) for p in problems] == [
        ("19231115-ALTO00005.xml", "no image found for this layout file; its regions cannot be cropped")]


def test_alto_wins_over_page_xml_for_the_same_image(corpus, tmp_path):
    kant = corpus / "ocrd-assets/kant_aufklaerung_1784/data"
    (tmp_path / "OCR-D-IMG").mkdir()
    (tmp_path / "OCR-D-IMG/INPUT_0017.tif").symlink_to(kant / "OCR-D-IMG/INPUT_0017.tif")
    for name in ("OCR-D-GT-ALTO/PAGE_0017_ALTO.xml", "OCR-D-GT-PAGE/PAGE_0017_PAGE.xml"):
        (tmp_path / os.path.basename(name)).symlink_to(kant / name)
    regions, problems = run([str(tmp_path)])
    assert {r.source for r in regions} == {str(tmp_path / "PAGE_0017_ALTO.xml")}
    assert [(os.path.basename(p.source), p.message.split(" already")[0]) for p in problems] == [
        ("PAGE_0017_PAGE.xml", str(tmp_path / "OCR-D-IMG/INPUT_0017.tif"))]


def test_folder_with_mets_reads_the_mets_only(corpus):
    regions, problems = run([str(corpus / "ocrd-assets/kant_aufklaerung_1784/data")])
    assert problems == []
    assert [r.box for r in regions] == [Box(109, 232, 801, 29), Box(115, 661, 805, 29),
                                        Box(540, 263, 780, 16), Box(542, 351, 785, 31)]
    assert all("mets.xml#PHYS_00" in r.page.id for r in regions)


def test_lone_page_xml_finds_its_image_in_a_sibling_folder(corpus, tmp_path):
    """OCR-D keeps OCR-D-IMG/ beside OCR-D-SEG/; imageFilename is relative to the workspace."""
    (tmp_path / "OCR-D-IMG").mkdir()
    (tmp_path / "OCR-D-SEG").mkdir()
    (tmp_path / "OCR-D-IMG/scan.tif").symlink_to(
        corpus / "ocrd-assets/kant_aufklaerung_1784/data/OCR-D-IMG/INPUT_0017.tif")  # 1457x2083
    (tmp_path / "OCR-D-SEG/p.xml").write_text(
        '<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">'
        '<Page imageFilename="OCR-D-IMG/scan.tif" imageWidth="2914" imageHeight="4166">'
        '<ImageRegion id="im1"><Coords points="200,400 1000,400 1000,1200 200,1200"/></ImageRegion>'
        '</Page></PcGts>')
    regions, problems = run([str(tmp_path / "OCR-D-SEG/p.xml")])
    assert [(r.block_id, r.box) for r in regions] == [("im1", Box(100, 200, 400, 400))]  # half size
    assert regions[0].page.image.path == str(tmp_path / "OCR-D-IMG/scan.tif")


def test_lone_alto_scaled_to_the_image_it_names(corpus, chapbooks, tmp_path):
    (tmp_path / "X00000019.xml").symlink_to(corpus / "bnf-gallica-vogue1920/collection/X/X00000019.xml")
    name, (w, h) = next(iter(chapbook_sizes(chapbooks).items()))
    (tmp_path / "00000019.jp2").symlink_to(chapbooks / "images" / name)  # the ALTO's fileName
    regions, _ = run([str(tmp_path / "X00000019.xml")])
    illustration = next(r for r in regions if r.block_id == "PAG_00000019_IL000001")
    # ALTO Page is 3791x5221; the image found is w x h, so the box is scaled to it.
    assert illustration.box == Box(433, 290, 3079, 2052).scale(w / 3791, h / 5221)


# ---- METS -------------------------------------------------------------------------------------

def test_mets_kant_links_tiff_and_alto_one_to_one(corpus):
    mets = corpus / "ocrd-assets/kant_aufklaerung_1784/data/mets.xml"
    regions, problems = run([str(mets)])
    assert problems == []
    assert [(r.page.id.rsplit("#", 1)[1], r.kind, r.box) for r in regions] == [
        ("PHYS_0017", "GraphicalElement", Box(109, 232, 801, 29)),
        ("PHYS_0017", "GraphicalElement", Box(115, 661, 805, 29)),
        ("PHYS_0020", "GraphicalElement", Box(540, 263, 780, 16)),
        ("PHYS_0020", "GraphicalElement", Box(542, 351, 785, 31)),
    ]
    page = regions[0].page
    assert (page.image.width, page.image.height) == (1457, 2083) == (page.width, page.height)
    assert page.image.path == str(mets.parent / "OCR-D-IMG/INPUT_0017.tif")


def test_a_broken_alto_of_a_mets_page_leaves_the_page_out_with_one_problem(corpus, tmp_path):
    """The review's case: an empty ALTO in a METS folder was reported twice ("not a source:
    empty file; skipped" and "unknown document, not ALTO or PAGE; page indexed whole") and its
    page indexed whole; as in a plain folder, it is left out, so a mended file adds its regions."""
    kant = corpus / "ocrd-assets/kant_aufklaerung_1784/data"
    for name in ("mets.xml", "OCR-D-IMG/INPUT_0017.tif", "OCR-D-IMG/INPUT_0020.tif", "OCR-D-GT-ALTO/PAGE_0020_ALTO.xml",
                 "OCR-D-GT-PAGE/PAGE_0017_PAGE.xml", "OCR-D-GT-PAGE/PAGE_0020_PAGE.xml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).symlink_to(kant / name)
    (tmp_path / "OCR-D-GT-ALTO/PAGE_0017_ALTO.xml").write_bytes(b"")
    for spec in (tmp_path, tmp_path / "mets.xml"):
        regions, problems = run([str(spec)])
        assert [(p.source, p.message) for p in problems] == [
            (str(tmp_path / "OCR-D-GT-ALTO/PAGE_0017_ALTO.xml"), "not a source: empty file; skipped, and its page PHYS_0017 with it")]
        assert [(r.page.id.rsplit("#", 1)[1], r.box) for r in regions] == [
            ("PHYS_0020", Box(540, 263, 780, 16)), ("PHYS_0020", Box(542, 351, 785, 31))]


def test_mets_with_missing_images(corpus):
    regions, problems = run([str(corpus / "lsu-loyola-maroon-1923/19231115-METS.xml")])
    messages = [(p.where, p.message.rsplit("; ", 1)[-1]) for p in problems]
    assert ("DIVP2", f"using {corpus}/lsu-loyola-maroon-1923/19231115/mn_19231115_001.jpg") in messages
    assert ("DIVP4", "page skipped") in messages  # page 3: neither image nor ALTO shipped
    assert {r.page.index for r in regions} <= {0, 1, 3}
    assert all(r.book.title == "The Maroon" for r in regions)


def test_image_only_mets_with_remote_images_reads_their_headers(chapbooks, tmp_path):
    mets = tmp_path / "mets.xml"
    mets.write_text("""<mets xmlns="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink">
      <fileSec><fileGrp USE="MAX"><file ID="I" MIMETYPE="image/jpeg">
      <FLocat xlink:href="https://images.example.org/p1.jpg"/></file></fileGrp></fileSec>
      <structMap TYPE="PHYSICAL"><div><div TYPE="page" ID="P1"><fptr FILEID="I"/></div></div></structMap></mets>""")
    name, size = next(iter(chapbook_sizes(chapbooks).items()))
    served = {"https://images.example.org/p1.jpg": (chapbooks / "images" / name).read_bytes()}
    regions, problems = run([str(mets)], load=lambda uri: served.get(uri) or read_local(uri))
    assert problems == []
    assert regions[0].box == Box(0, 0, *size)
    assert regions[0].page.image.url == "https://images.example.org/p1.jpg"
    assert regions[0].page.id == "mets.xml#P1"  # relative to the spec's folder, not the server's path


# ---- IIIF -------------------------------------------------------------------------------------

def test_0068_collection_with_alto_gives_illustrations_in_image_pixels(corpus):
    regions, problems = run([COOKBOOK + "newspaper_title-collection.json"], load=mapped_loader(corpus))
    assert problems == []
    issues = {r.page.manifest for r in regions}
    assert issues == {COOKBOOK + "newspaper_issue_1-manifest.json", COOKBOOK + "newspaper_issue_2-manifest.json"}
    illustrations = [r for r in regions if r.kind == "Illustration"]
    assert len(illustrations) == 17  # 10 + 1 + 1 + 5 in the four ALTO files
    first = illustrations[0]
    assert first.page.id == "https://iiif.io/api/cookbook/recipe/0068-newspaper/canvas/p1"
    assert first.page.image.service.endswith("-newspaper-p1") and first.book.date == "1925-02-16"
    assert first.source == COOKBOOK + "newspaper_issue_1-alto_p1.xml"
    assert all(r.box.clip(r.page.image.width, r.page.image.height) == r.box for r in regions)


def test_vogue_v2_manifest_alto_and_whole_pages(corpus):
    manifest = corpus / "bnf-gallica-vogue1920/collection/vogue-avec-ocr/bpt6k9604118j.json"
    regions, problems = run([str(manifest)], load=mapped_loader(corpus))
    assert problems == []
    whole = [r for r in regions if r.kind == "image"]
    assert len(whole) == 71  # 74 canvases, 3 of them with ALTO
    f19 = next(r for r in regions if r.block_id == "PAG_00000019_IL000001")
    assert f19.box == Box(433, 290, 3079, 2052)  # canvas, image and ALTO page are all 3791x5221
    assert f19.page.image.service == "https://gallica.bnf.fr/iiif/ark:/12148/bpt6k9604118j/f19"


def test_manifest_without_alto_is_one_whole_image_region_per_canvas(corpus):
    regions, problems = run([str(corpus / "iiif-cookbook/rendered/0009-book-1/manifest.json"),
                             str(corpus / "iiif-cookbook/rendered/0299-region/manifest.json"),
                             str(corpus / "iiif-mirador-fixtures/version-2/zeroWidthCanvas.json")])
    book = [r for r in regions if "0009" in r.page.manifest]
    assert len(book) == 5 and all(r.kind == "image" for r in book)
    assert book[0].box == Box(0, 0, book[0].page.image.width, book[0].page.image.height)
    region = next(r for r in regions if "0299" in r.page.manifest)
    assert region.box == Box(1768, 2423, 1768, 2080)  # only the part the canvas shows
    assert any("size unknown" in p.message and "zeroWidthCanvas" in p.source for p in problems)


def test_canvas_showing_part_of_its_image_keeps_only_that_part_of_its_alto(tmp_path):
    """ALTO describes the whole 4000x3000 scan; the canvas shows 1000,1000,2000,1000 of it."""
    (tmp_path / "p1.xml").write_text(
        '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout><Page ID="P1" WIDTH="4000" HEIGHT="3000">'
        '<PrintSpace><Illustration ID="in" HPOS="1200" VPOS="1100" WIDTH="400" HEIGHT="300"/>'
        '<Illustration ID="across" HPOS="2800" VPOS="1800" WIDTH="600" HEIGHT="600"/>'
        '<Illustration ID="out" HPOS="100" VPOS="100" WIDTH="500" HEIGHT="500"/></PrintSpace></Page></Layout></alto>')
    body = {"type": "SpecificResource", "source": {"id": "https://example.org/i.jpg", "type": "Image",
            "width": 4000, "height": 3000}, "selector": {"type": "ImageApiSelector", "region": "1000,1000,2000,1000"}}
    canvas = {"id": "https://example.org/c1", "type": "Canvas", "width": 1000, "height": 500,
              "seeAlso": [{"id": str(tmp_path / "p1.xml"), "format": "application/alto+xml"}],
              "items": [{"type": "AnnotationPage", "items": [{"type": "Annotation", "motivation": "painting",
                                                              "body": body, "target": "https://example.org/c1"}]}]}
    (tmp_path / "m.json").write_text(json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                                 "id": "https://example.org/m", "type": "Manifest", "items": [canvas]}))
    regions, problems = run([str(tmp_path / "m.json")])
    assert [(r.block_id, r.box, r.canvas_box()) for r in regions] == [
        ("in", Box(1200, 1100, 400, 300), Box(100, 50, 200, 150)),
        ("across", Box(2800, 1800, 200, 200), Box(900, 400, 100, 100)),  # cut at the part shown
    ]
    assert [p.where.split(": ")[1] for p in problems] == ["Illustration out"]
    assert "outside the part 1000,1000,2000,1000" in problems[0].message


def test_a_document_from_the_web_cannot_make_the_reader_open_local_files(tmp_path):
    """Collections, lists, manifests (ALTO links and images) and METS fetched over http(s) may
    name only http(s) URLs: a file URI there is refused and reported, never read, and a path is
    a reference relative to the document's URL (RFC 3986), so it is fetched from that site."""
    secret = tmp_path / "secret.xml"
    secret.write_bytes(b'<alto><Layout><Page WIDTH="10" HEIGHT="10"><PrintSpace><Illustration HPOS="0" '
                       b'VPOS="0" WIDTH="9" HEIGHT="9"/></PrintSpace></Page></Layout></alto>')
    site = "https://example.org/"

    def canvas(n, image, alto=None):
        return {"id": f"{site}c{n}", "type": "Canvas", "width": 10, "height": 10,
                **({"seeAlso": [{"id": alto, "format": "application/alto+xml"}]} if alto else {}),
                "items": [{"type": "AnnotationPage", "items": [{"type": "Annotation", "motivation": "painting",
                           "target": f"{site}c{n}", "body": {"id": image, "type": "Image", "width": 10, "height": 10}}]}]}
    manifest = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{site}m.json", "type": "Manifest",
                "items": [canvas(1, secret.as_uri()), canvas(2, f"{site}2.jpg", str(secret)),
                          canvas(3, f"{site}3.jpg", "secret.xml")]}
    mets = (b'<mets xmlns="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink"><fileSec>'
            b'<fileGrp USE="IMAGE"><file ID="I" MIMETYPE="image/jpeg"><FLocat xlink:href="https://example.org/4.jpg"/>'
            b'</file></fileGrp><fileGrp USE="ALTO"><file ID="A" MIMETYPE="application/alto+xml"><FLocat xlink:href="'
            + secret.as_uri().encode() + b'"/></file></fileGrp></fileSec><structMap TYPE="PHYSICAL"><div>'
            b'<div TYPE="page" ID="P4"><fptr FILEID="I"/><fptr FILEID="A"/></div></div></structMap></mets>')
    served = {
        f"{site}list.txt": f"{secret}\n{secret.as_uri()}\n{site}c.json\nm.json\nmets.xml\n".encode(),
        f"{site}c.json": json.dumps({"type": "Collection", "items": [{"id": secret.as_uri(), "type": "Manifest"}]}).encode(),
        f"{site}m.json": json.dumps(manifest).encode(),
        f"{site}mets.xml": mets,
        f"{site}secret.xml": secret.read_bytes(),  # the same name on the web is fine
    }
    asked = []

    def load(uri):
        asked.append(uri)
        if uri not in served:
            raise SourceError("HTTP 404 Not Found", uri)
        return served[uri]

    regions, problems = run([f"{site}list.txt"], load=load)
    assert all(uri.startswith(site) for uri in asked), asked
    refused = [(p.source, p.message.split("'")[1]) for p in problems if "may not name local files" in p.message]
    assert refused == [
        (f"{site}list.txt", secret.as_uri()),
        (f"{site}c.json", secret.as_uri()),
        (f"{site}m.json", secret.as_uri()),
        (f"{site}mets.xml", str(secret)),  # METS resolves its hrefs itself: file:///... is a path
    ]
    on_the_site = site + str(secret).lstrip("/")
    assert [p.source for p in problems if p.message == "HTTP 404 Not Found"] == [on_the_site, on_the_site]
    assert len(problems) == len(refused) + 2
    assert [(r.page.id, r.source) for r in regions] == [(f"{site}c3", f"{site}secret.xml")]


def _collection(path, members):
    path.write_text(json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                "id": path.as_uri(), "type": "Collection",
                                "items": [{"id": m, "type": "Collection"} for m in members]}))


def test_collection_loop_and_repeats_terminate(corpus, tmp_path):
    manifest = str(corpus / "iiif-cookbook/rendered/0001-mvm-image/manifest.json")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _collection(a, ["b.json", manifest])
    _collection(b, [str(a), manifest])  # back to a, and the same manifest again
    regions, problems = run([str(a)])
    assert len(regions) == 1
    assert sorted(os.path.basename(p.source) for p in problems) == ["a.json", "manifest.json"]
    assert all("already read" in p.message for p in problems)


def test_collection_depth_limit(tmp_path):
    for level in range(MAX_DEPTH + 2):
        _collection(tmp_path / f"c{level}.json", [f"c{level + 1}.json"])
    _, problems = run([str(tmp_path / "c0.json")])
    assert [p.message for p in problems] == [f"nested deeper than {MAX_DEPTH} levels; members skipped"]


def test_list_file_with_comments_and_broken_entries(corpus, tmp_path):
    listing = tmp_path / "sources.txt"
    listing.write_text("# illustrated sources\n\n"
                       f"{corpus}/iiif-mirador-fixtures/version-2/broken.json\n"
                       "missing/manifest.json\n"
                       "https://example.org/remote.json\n"
                       f"{corpus}/iiif-cookbook/rendered/0001-mvm-image/manifest.json\n")
    regions, problems = run([str(listing)])
    assert len(regions) == 1 and regions[0].kind == "image"
    assert [(os.path.basename(p.source), p.message.split(":")[0]) for p in problems] == [
        ("broken.json", "not a source"), ("manifest.json", "cannot read"), ("remote.json", "remote source")]
    assert problems[1].source == str(tmp_path / "missing/manifest.json")  # relative to the list


def test_a_broken_source_does_not_stop_the_others(corpus, tmp_path):
    (tmp_path / "junk.xml").write_bytes(b"<not closed")
    regions, problems = run([str(tmp_path / "junk.xml"),
                             str(corpus / "bnf-alto-iiif-lacroix/DOCS/0220169/X0220169.XML"),
                             str(corpus / "ocrd-assets/indian-ferns/data/mets.xml")])
    assert len(regions) == 1 and regions[0].box == Box(0, 0, 2626, 3620)
    assert [os.path.basename(p.source) for p in problems] == ["junk.xml", "X0220169.XML"]
    assert "root <refNum>" in problems[1].message


@pytest.mark.parametrize("cut, message", [
    (3000, "line 107 column 31; the document ends before it is complete (3000 characters; cut short?)"),
    (2, "not JSON: Expecting property name enclosed in double quotes at line 2 column 2; the document ends"),
])
def test_a_manifest_cut_short_is_reported_as_bad_json_with_its_position(corpus, tmp_path, cut, message):
    cut_short = tmp_path / "wunder.json"
    cut_short.write_bytes((corpus / "iiif-manifesto-fixtures/wunder.json").read_bytes()[:cut])
    regions, problems = run([str(cut_short)])
    assert regions == [] and [p.source for p in problems] == [str(cut_short)]
    assert problems[0].message.startswith("not a source: not JSON: ") and message in problems[0].message


def test_json_with_a_syntax_error_inside_is_reported_where_it_is(tmp_path):
    broken = tmp_path / "manifest.json"
    broken.write_text('{\n  "type": "Manifest",\n  "items": [,]\n}\n')
    _, problems = run([str(broken)])
    assert [p.message for p in problems] == ["not a source: not JSON: Expecting value at line 3 column 13"]
