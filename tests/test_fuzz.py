"""Property tests for the pure parsers and the shared records (issue 7: hostile input).

Whatever bytes arrive, ``read_alto``, ``read_page``, ``read_mets``, ``read_manifest``,
``read_collection`` and ``sniff`` either return records or raise :class:`SourceError` naming the
source: never ``OverflowError`` from a coordinate of 1e308, ``RecursionError`` from JSON nested
100 000 deep, or anything else that would end an indexing run. Documents come from two places:
grammars that build ALTO / PAGE / METS / IIIF shapes out of hostile values (huge, negative,
non-finite, non-numeric, NUL-bearing), and byte mutations (cuts, flips, splices) of real corpus
files. Regions that come back obey the records' invariants: boxes non-negative and inside a page
image of known size, keys stable and 63-bit, dictionaries round-tripping.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bookidx.adapters.alto import read_alto
from bookidx.adapters.iiif import read_collection, read_manifest
from bookidx.adapters.mets import read_mets
from bookidx.adapters.page import read_page
from bookidx.adapters.records import Book, Box, ImageRef, Page, Problem, Region, RegionFilter
from bookidx.adapters.sources import sniff
from bookidx.errors import SourceError
from conftest import CORPUS

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOURCE = "fuzz/doc.xml"

# Numbers as they are written in the wild and by attackers: fine, float strings, huge, tiny,
# negative, non-finite, non-numeric, empty.
NUMBERS = st.one_of(
    st.integers(-10, 5000).map(str),
    st.sampled_from(["0", "15416.0", "1e12", "1e308", "-1e308", "1e-300", "5e-324", "1e400", "NaN",
                     "nan", "inf", "-inf", "Infinity", "1999;x_wconf", "", " 12 ", "left", "0x10",
                     "12,5", "1_000", "٣", "9" * 400]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
PAGES = st.one_of(st.none(), st.builds(
    lambda w, h, cw, ch: Page("urn:page", 0, ImageRef(w, h, path="/nowhere/p.jpg"), cw, ch),
    st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 5000)))


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _xml_text(value: str) -> str:
    # what XML 1.0 can carry at all: other control characters make any document ill-formed
    return "".join(c for c in value if c in "\t\n\r" or ord(c) >= 32).replace("&", "&amp;").replace("<", "&lt;")


@st.composite
def alto_documents(draw) -> bytes:
    ns = draw(st.sampled_from(["http://www.loc.gov/standards/alto/ns-v4#",
                               "http://www.loc.gov/standards/alto/ns-v2#", "http://schema.ccs-gmbh.com/ALTO", ""]))
    unit = draw(st.sampled_from(["pixel", "mm10", "inch1200", "furlong", ""]))

    def box(name: str, inner: str = "", extra: str = "") -> str:
        x, y, w, h = (_attr(draw(NUMBERS)) for _ in range(4))
        ident = f"{name[:2]}{draw(st.integers(0, 9))}"
        return (f'<{name} ID="{ident}" HPOS="{x}" VPOS="{y}" WIDTH="{w}" HEIGHT="{h}"{extra}>'
                f"{inner}</{name}>")

    def text_block() -> str:
        words = "".join(f'<String CONTENT="{_attr(_xml_text(w))}"/>' for w in draw(st.lists(TEXT, max_size=4)))
        return box("TextBlock", f"<TextLine>{words}</TextLine>")

    def block(depth: int) -> str:
        kind = draw(st.sampled_from(["Illustration", "GraphicalElement", "TextBlock", "ComposedBlock"]))
        if kind == "TextBlock":
            return text_block()
        if kind == "ComposedBlock" and depth < 3:
            inner = "".join(block(depth + 1) for _ in range(draw(st.integers(0, 3))))
            return box("ComposedBlock", inner, ' TYPE="Illustration"')
        return box(kind if kind != "ComposedBlock" else "Illustration", extra=' TAGREFS="t1 t2"')

    pages = []
    for n in range(draw(st.integers(1, 2))):
        blocks = "".join(block(0) for _ in range(draw(st.integers(0, 5))))
        pages.append(f'<Page ID="P{n}" WIDTH="{_attr(draw(NUMBERS))}" HEIGHT="{_attr(draw(NUMBERS))}">'
                     f"<TopMargin>{block(0)}</TopMargin><PrintSpace>{blocks}</PrintSpace></Page>")
    xmlns = f' xmlns="{ns}"' if ns else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><alto{xmlns}><Description><MeasurementUnit>{unit}'
            '</MeasurementUnit><sourceImageInformation><fileName>p.jpg</fileName></sourceImageInformation>'
            '</Description><Tags><LayoutTag ID="t1" LABEL="map"/></Tags>'
            f'<Layout>{"".join(pages)}</Layout></alto>').encode("utf-8")


@st.composite
def page_documents(draw) -> bytes:
    def points() -> str:
        pairs = draw(st.lists(st.tuples(NUMBERS, NUMBERS), max_size=5))
        return " ".join(f"{x},{y}" for x, y in pairs) + draw(st.sampled_from(["", " 3", ",", " a,b,c"]))

    regions = []
    for n in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["ImageRegion", "GraphicRegion", "MapRegion", "TextRegion", "TableRegion"]))
        if draw(st.booleans()):
            coords = f'<Coords points="{_attr(points())}"/>'
        else:
            coords = "<Coords>" + "".join(f'<Point x="{_attr(draw(NUMBERS))}" y="{_attr(draw(NUMBERS))}"/>'
                                          for _ in range(draw(st.integers(0, 4)))) + "</Coords>"
        text = f"<TextEquiv><Unicode>{_xml_text(draw(TEXT))}</Unicode></TextEquiv>"
        coords = coords if draw(st.booleans()) else ""
        regions.append(f'<{kind} id="r{n}" type="{_attr(_xml_text(draw(TEXT)))}">{coords}{text}</{kind}>')
    return ('<?xml version="1.0" encoding="UTF-8"?><PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/'
            f'pagecontent/2019-07-15"><Page imageFilename="p.jpg" imageWidth="{_attr(draw(NUMBERS))}" '
            f'imageHeight="{_attr(draw(NUMBERS))}">{"".join(regions)}</Page></PcGts>').encode("utf-8")


HREFS = st.one_of(st.sampled_from([
    "page%00.xml", "../../../../etc/passwd", "file:///etc/passwd", "file://./img/1.tif", "file://host/x.jpg",
    "http://example.org/a b.jpg", "https://[::1]:99999/x.jpg", "", " ", "img/%2e%2e/%2e%2e/x.jp2",
    "C:\\scans\\0001.tif", "\\\\unc\\share\\1.jpg", "a" * 300 + ".jpg", "x.xml", "ALTO/0001.xml",
]), TEXT)


@st.composite
def mets_documents(draw) -> bytes:
    files, divs = [], []
    for n in range(draw(st.integers(0, 4))):
        mime = draw(st.sampled_from(["image/jpeg", "text/xml", "application/alto+xml", "", "image/jp2"]))
        use = draw(st.sampled_from(["IMAGE", "ALTO", "FULLTEXT", "THUMBS", "MASTER", ""]))
        files.append(f'<mets:fileGrp USE="{use}"><mets:file ID="F{n}" MIMETYPE="{mime}">'
                     f'<mets:FLocat xlink:href="{_attr(_xml_text(draw(HREFS)))}"/></mets:file></mets:fileGrp>')
        ids = " ".join(f"F{draw(st.integers(0, 5))}" for _ in range(draw(st.integers(0, 3))))
        divs.append(f'<mets:div TYPE="{draw(st.sampled_from(["page", "Page", "", "chapter"]))}" '
                    f'ORDER="{_attr(draw(NUMBERS))}" ORDERLABEL="{_attr(_xml_text(draw(TEXT)))}">'
                    f'<mets:fptr FILEID="{ids}"/></mets:div>')
    struct = draw(st.sampled_from(["PHYSICAL", "LOGICAL", ""]))
    return ('<?xml version="1.0"?><mets:mets xmlns:mets="http://www.loc.gov/METS/" '
            'xmlns:xlink="http://www.w3.org/1999/xlink"><mets:dmdSec ID="D1"><mets:mdWrap><mets:xmlData>'
            f'<mods:mods xmlns:mods="http://www.loc.gov/mods/v3"><mods:titleInfo><mods:title>{_xml_text(draw(TEXT))}'
            '</mods:title></mods:titleInfo></mods:mods></mets:xmlData></mets:mdWrap></mets:dmdSec>'
            f'<mets:fileSec>{"".join(files)}</mets:fileSec><mets:structMap TYPE="{struct}">'
            f'<mets:div TYPE="book" DMDID="D1">{"".join(divs)}</mets:div></mets:structMap></mets:mets>').encode("utf-8")


IMAGE2 = "http://iiif.io/api/image/2/context.json"
# JSON values with hostile numbers (1e400 is valid JSON that overflows a double).
JSON_NUMBERS = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                         st.sampled_from(["1e400", "NaN", "-5", "600", "0", ""]))
JSON_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), JSON_NUMBERS, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=12,
)


@st.composite
def manifests(draw) -> bytes:
    v3 = draw(st.booleans())

    def maybe(value):
        return draw(st.one_of(st.just(value), JSON_ANY))

    ident, kind = ("id", "type") if v3 else ("@id", "@type")

    def image() -> dict:
        service = {ident: maybe("https://iiif.example.org/iiif/p"),
                   "type" if v3 else "@context": maybe("ImageService3" if v3 else IMAGE2),
                   "width": draw(JSON_NUMBERS), "height": draw(JSON_NUMBERS)}
        body = {ident: maybe("https://iiif.example.org/iiif/p/full/max/0/default.jpg"),
                kind: maybe("Image" if v3 else "dctypes:Image"),
                "width": draw(JSON_NUMBERS), "height": draw(JSON_NUMBERS), "service": maybe([service])}
        if draw(st.booleans()):
            body = {"type": "SpecificResource", "source": body, "selector": {
                "type": "ImageApiSelector", "region": maybe(",".join(str(draw(JSON_NUMBERS)) for _ in range(4)))}}
        if draw(st.booleans()):
            body = {"type": maybe("Choice"), "items": [body, draw(JSON_ANY)]}
        return body

    canvases = []
    for n in range(draw(st.integers(0, 3))):
        canvas = {ident: maybe(f"https://example.org/c{n}"), kind: maybe("Canvas" if v3 else "sc:Canvas"),
                  "width": draw(JSON_NUMBERS), "height": draw(JSON_NUMBERS), "label": draw(JSON_ANY),
                  "seeAlso": maybe([{"id": "https://example.org/alto.xml", "format": "application/alto+xml"}])}
        if v3:
            annotation = {"type": "Annotation", "motivation": maybe("painting"),
                          "target": maybe(f"https://example.org/c{n}#xywh=0,0,5,5"), "body": image()}
            canvas["items"] = [{"type": "AnnotationPage", "items": [annotation]}]
        else:
            canvas["images"] = [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": maybe("x"),
                                 "resource": image()}]
        canvases.append(canvas)
    doc = {"@context": maybe(f"http://iiif.io/api/presentation/{3 if v3 else 2}/context.json"),
           ident: maybe("https://example.org/manifest"), kind: maybe("Manifest" if v3 else "sc:Manifest"),
           "label": draw(JSON_ANY), "metadata": maybe([{"label": draw(JSON_ANY), "value": draw(JSON_ANY)}])}
    if v3:
        doc["items"] = canvases
    else:
        doc["sequences"] = [{"@type": "sc:Sequence", "canvases": canvases}]
    text = json.dumps(doc, allow_nan=True)
    # non-finite numbers as a real file has them: 1e400 (json.dumps would write "Infinity")
    return text.replace("-Infinity", "-1e400").replace("Infinity", "1e400").encode("utf-8")


def _check_regions(regions: list[Region], problems: list[Problem]) -> None:
    assert all(isinstance(p, Problem) and p.source for p in problems)
    for r in regions:
        b = r.box
        assert min(b.w, b.h) >= 0, b
        img = r.page.image
        if img.width and img.height:
            assert 0 <= b.x and b.x + b.w <= img.width and 0 <= b.y and b.y + b.h <= img.height, (b, img)
        assert 0 <= r.key < 2**63
        assert Region.from_dict(json.loads(json.dumps(r.to_dict()))) == r
        RegionFilter().reason(r)  # never raises, whatever the box


def _read(reader, data: bytes, **kw):
    """The reader's records and problems, or the SourceError it raised (nothing else passes)."""
    problems: list[Problem] = []
    try:
        result = reader(data, source=SOURCE, report=problems.append, **kw)
    except SourceError as e:
        assert e.parameter == SOURCE and e.code == 422 and e.detail
        return None, problems
    return result, problems


@FUZZ
@given(alto_documents(), PAGES)
def test_alto_from_hostile_values(data, page):
    regions, problems = _read(read_alto, data, page=page)
    if regions is not None:
        _check_regions(regions, problems)


@FUZZ
@given(page_documents(), PAGES)
def test_page_xml_from_hostile_values(data, page):
    regions, problems = _read(read_page, data, page=page)
    if regions is not None:
        _check_regions(regions, problems)


@FUZZ
@given(mets_documents())
def test_mets_from_hostile_values(data):
    info, _ = _read(read_mets, data)
    if info is not None:
        assert info.pages and all(p.image or p.alto for p in info.pages)


@FUZZ
@given(manifests())
def test_iiif_manifest_from_hostile_values(data):
    info, problems = _read(read_manifest, data)
    if info is not None:
        assert len(info.pages) == len(info.alto) == len(info.crops)
        for page in info.pages:
            assert page.width >= 0 and page.height >= 0 and page.image.width >= 0 and page.image.height >= 0


@FUZZ
@given(JSON_ANY)
def test_any_json_is_a_manifest_a_collection_or_a_source_error(doc):
    data = json.dumps(doc, allow_nan=True).encode("utf-8")
    for reader in (read_manifest, read_collection):
        _read(reader, data)
    assert sniff(data, "x.json") in ("iiif-manifest", "iiif-collection", "unknown")


def _seeds() -> list[tuple[str, bytes]]:
    """Small real files of each kind (ALTO, PAGE, METS, IIIF), for mutation."""
    names = [
        "nln-ngx-mime/alto/testAlto.raw.xml", "lsu-loyola-maroon-1923/19231115-ALTO00005.xml",
        "bnf-gallica-vogue1920/collection/X/X00000020.xml", "ocrd-assets/kant_aufklaerung_1784/data/mets.xml",
        "lsu-loyola-maroon-1923/19231115-METS.xml",
        "ocrd-assets/kant_aufklaerung_1784/data/OCR-D-GT-PAGE/PAGE_0017_PAGE.xml",
        "iiif-cookbook/rendered/0299-region/manifest.json", "iiif-cookbook/rendered/0033-choice/manifest.json",
        "iiif-cookbook/rendered/0068-newspaper/newspaper_title-collection.json",
        "iiif-manifesto-fixtures/potterselectric.json",
    ]
    return [(n, (CORPUS / n).read_bytes()) for n in names if (CORPUS / n).is_file()]


SEEDS = _seeds()
READERS = {"alto": read_alto, "page": read_page, "mets": read_mets,
           "iiif-manifest": read_manifest, "iiif-collection": read_collection}


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    name, data = draw(st.sampled_from(SEEDS))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["cut", "flip", "delete", "insert", "splice"]))
        if op == "cut":
            del data[at:]
        elif op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[at: at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"\x00", b"\xff\xfe", b"<", b'"', b"&", b"]]>", b"-1e400", b"NaN",
                                                b"<!ENTITY x 'y'>", b"\xc3", b"{", b"[" * 50, b'"width": 1e400,']))
        else:
            piece = bytes(data[draw(st.integers(0, len(data))):][:draw(st.integers(1, 200))])
            data[at:at] = piece
    return name, bytes(data)


@pytest.mark.skipif(not SEEDS, reason="real corpus not found (set BOOKIDX_SHARED)")
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_real_files_never_raise_anything_but_source_error(seed):
    name, data = seed
    kind = sniff(data, name)  # must not raise either
    reader = READERS.get(kind) or (read_manifest if name.endswith(".json") else read_alto)
    result, problems = _read(reader, data)
    if kind in ("alto", "page") and result is not None:
        _check_regions(result, problems)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["x.xml", "x.json", "x.txt", "x.jpg", "x"]))
def test_sniff_any_bytes(data, name):
    assert sniff(data, name) in ("alto", "mets", "page", "iiif-manifest", "iiif-collection", "image", "list", "unknown")


@pytest.mark.parametrize("data", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_json_nested_too_deep_is_a_source_error(data):
    for reader in (read_manifest, read_collection):
        with pytest.raises(SourceError, match="nested too deeply"):
            reader(data, source="deep.json")
    assert sniff(data, "deep.json") == "unknown"


def test_manifest_labels_nested_just_under_the_json_limit():
    """Within what json accepts, but deep enough to exhaust the stack of a recursive reader."""
    label: object = "deep"
    for _ in range(900):
        label = [label]
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "m", "type": "Manifest",
           "label": label, "items": [{"id": "c", "type": "Canvas", "width": 10, "height": 10, "label": label}]}
    try:
        info = read_manifest(json.dumps(doc).encode(), source="deep.json")
    except SourceError as e:
        assert "nested too deeply" in e.detail
    else:
        assert info.id == "m"


# -- records --------------------------------------------------------------------------------------

INTS = st.integers(-10**6, 10**6)
BOXES = st.builds(Box, INTS, INTS, INTS, INTS)


@given(BOXES, st.integers(0, 10**5), st.integers(0, 10**5))
def test_box_clip_stays_inside_and_is_idempotent(box, width, height):
    clipped = box.clip(width, height)
    if clipped is None:
        return
    assert clipped.w > 0 and clipped.h > 0 and clipped.x >= 0 and clipped.y >= 0
    if width:
        assert clipped.x + clipped.w <= width
    if height:
        assert clipped.y + clipped.h <= height
    assert clipped.clip(width, height) == clipped
    assert clipped.area <= max(box.area, 0) or box.w < 0 or box.h < 0


@given(BOXES, st.floats(0.01, 100), st.floats(0.01, 100))
def test_box_scale_keeps_edges_on_whole_pixels(box, sx, sy):
    scaled = box.scale(sx, sy)
    assert scaled.x == round(box.x * sx) and scaled.x + scaled.w == round((box.x + box.w) * sx)
    assert box.scale(1, 1) == box
    assert scaled.xywh() == f"{scaled.x},{scaled.y},{scaled.w},{scaled.h}"


@given(BOXES)
def test_box_aspect_is_at_least_one_or_infinite(box):
    assert box.aspect >= 1 or (math.isinf(box.aspect) and min(box.w, box.h) <= 0)


REGIONS = st.builds(
    lambda box, iw, ih, cw, ch, uri, kind, text, tags, book: Region(
        page=Page(f"urn:{uri}", 3, ImageRef(iw, ih, service=uri or None, api=2), cw, ch, text, uri or None),
        box=box, kind=kind, block_id=text, caption=text, context=text,
        book=Book(uri, text, text, "1850", "fr", ((text, text),)) if book else None, source=uri, tags=tags),
    st.builds(Box, st.integers(0, 20000), st.integers(0, 20000), st.integers(1, 20000), st.integers(1, 20000)),
    st.integers(0, 20000), st.integers(0, 20000), st.integers(0, 20000), st.integers(0, 20000),
    TEXT, st.sampled_from(["Illustration", "GraphicalElement", "image", "Map"]), TEXT,
    st.lists(TEXT, max_size=3).map(tuple), st.booleans())


@given(REGIONS)
def test_region_round_trips_and_its_key_is_stable(region):
    again = Region.from_dict(json.loads(json.dumps(region.to_dict())))
    assert again == region and again.key == region.key and 0 <= region.key < 2**63
    # the key names the image and the box only: captions, books and pages may change
    assert region.with_(caption="other", book=None).key == region.key
    assert region.with_(box=Box(region.box.x + 1, region.box.y, region.box.w, region.box.h)).key != region.key


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(REGIONS)  # REGIONS draws many unsized pages, which this property skips (assume below)
def test_canvas_box_lies_on_the_canvas(region):
    page, img = region.page, region.page.image
    assume(img.width and img.height and page.width and page.height)
    inside = region.box.clip(img.width, img.height)  # as every adapter leaves a region
    assume(inside is not None)
    box = region.with_(box=inside).canvas_box()
    if box.w and box.h:
        assert 0 <= box.x and box.x + box.w <= page.width and 0 <= box.y and box.y + box.h <= page.height


@given(BOXES, st.integers(0, 10**4), st.integers(0, 10**4))
def test_region_filter_gives_a_reason_or_none_for_any_box(box, width, height):
    region = Region(Page("p", 0, ImageRef(width, height, path="p.jpg")), box, "Illustration")
    reason = RegionFilter().reason(region)
    assert reason is None or isinstance(reason, str) and reason
    if reason is None:
        assert min(box.w, box.h) >= 16 and box.aspect < RegionFilter().max_aspect
