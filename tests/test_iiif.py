"""adapters/iiif.py against IIIF Cookbook recipes and real v2/v3 manifests from institutions."""

from __future__ import annotations

import json

import pytest

from bookidx.adapters.iiif import kind_of, parse_json, read_collection, read_manifest
from bookidx.adapters.records import Box, ImageRef, Page, Region
from bookidx.errors import SourceError

COOKBOOK = "iiif-cookbook/rendered"


def manifest(corpus, rel, problems=None):
    data = (corpus / rel).read_bytes()
    return read_manifest(data, source=rel, report=(problems.append if problems is not None else None))


# ---- Cookbook recipes (Presentation 3) -------------------------------------------------------

def test_0005_image_service_v3(corpus):
    info = manifest(corpus, f"{COOKBOOK}/0005-image-service/manifest.json")
    assert info.version == 3 and len(info.pages) == 1 and info.alto == (None,)
    page = info.pages[0]
    assert page.image.service == ("https://iiif.io/api/image/3.0/example/reference/"
                                  "918ecd18c2592080851777620de9bcb5-gottingen")
    assert page.image.api == 3 and page.image.url is None
    assert (page.image.width, page.image.height) == (4032, 3024)
    assert (page.width, page.height) == (4032, 3024)
    assert page.manifest == info.id == "https://iiif.io/api/cookbook/recipe/0005-image-service/manifest.json"
    assert info.book.title == "Picture of Göttingen taken during the 2019 IIIF Conference"


def test_0004_canvas_size_differs_from_image_size(corpus):
    page = manifest(corpus, f"{COOKBOOK}/0004-canvas-size/manifest.json").pages[0]
    assert (page.width, page.height) == (1920, 1080)  # canvas space
    assert (page.image.width, page.image.height) == (640, 360)  # the static image's pixels
    assert page.image.url.endswith("act1-thumbnail.png") and page.image.service is None


def test_0033_choice_takes_the_first_item_and_says_so(corpus):
    problems = []
    page = manifest(corpus, f"{COOKBOOK}/0033-choice/manifest.json", problems).pages[0]
    assert page.image.service.endswith("-dee-natural")
    assert any("choice of 2" in p.message for p in problems)


def test_0036_composition_indexes_the_full_canvas_image(corpus):
    problems = []
    info = manifest(corpus, f"{COOKBOOK}/0036-composition-from-multiple-images/manifest.json", problems)
    assert info.pages[0].image.service.endswith("-bnf_chateauroux")
    assert (info.pages[0].image.width, info.pages[0].image.height) == (7216, 5412)
    assert any("paints 2 images" in p.message for p in problems)


def test_0299_region_keeps_the_painted_part_of_the_image(corpus):
    info = manifest(corpus, f"{COOKBOOK}/0299-region/manifest.json")
    page = info.pages[0]
    assert (page.image.width, page.image.height) == (3536, 4999)
    assert (page.width, page.height) == (1768, 2080)
    assert info.crops == (Box(1768, 2423, 1768, 2080),)


def test_0299_canvas_coordinates_of_a_canvas_showing_part_of_its_image(corpus):
    """The canvas is the selected region: its own pixels map to the canvas from its corner."""
    page = manifest(corpus, f"{COOKBOOK}/0299-region/manifest.json").pages[0]
    assert page.image_box == Box(1768, 2423, 1768, 2080) and page.target is None
    assert Region(page, Box(1768, 2423, 1768, 2080), "image").canvas_box() == Box(0, 0, 1768, 2080)
    assert Region(page, Box(1868, 2623, 200, 400), "image").canvas_box() == Box(100, 200, 200, 400)


def _painted(body, target="c1", width=1000, height=500):
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "m", "type": "Manifest",
            "items": [{"id": "c1", "type": "Canvas", "width": width, "height": height, "items": [
                {"type": "AnnotationPage", "items": [{"type": "Annotation", "motivation": "painting",
                                                      "body": body, "target": target}]}]}]}


def test_canvas_box_maps_the_selected_image_region_onto_the_canvas():
    """A 1000x500 canvas showing region 1000,1000,2000,1000 of a 4000x3000 image."""
    service = {"id": "https://example.org/iiif/p1", "type": "ImageService3", "profile": "level1",
               "width": 4000, "height": 3000}
    body = {"type": "SpecificResource", "source": {"id": "https://example.org/iiif/p1/full/max/0/default.jpg",
            "type": "Image", "service": [service]},
            "selector": {"type": "ImageApiSelector", "region": "1000,1000,2000,1000"}}
    page = read_manifest(_painted(body), source="m").pages[0]
    assert (page.image.width, page.image.height, page.image_box) == (4000, 3000, Box(1000, 1000, 2000, 1000))
    assert Region(page, Box(1000, 1000, 2000, 1000), "image").canvas_box() == Box(0, 0, 1000, 500)
    assert Region(page, Box(2000, 1500, 400, 200), "image").canvas_box() == Box(500, 250, 200, 100)
    # partly outside the part shown: cut to the canvas, not pushed past its edge; wholly: empty
    assert Region(page, Box(0, 0, 1200, 1100), "image").canvas_box() == Box(0, 0, 100, 50)
    assert Region(page, Box(0, 0, 500, 500), "image").canvas_box() == Box(0, 0, 0, 0)


def test_canvas_box_never_lies_off_the_canvas():
    """A box whose part on the image maps to less than a canvas unit (found by test_fuzz's
    hypothesis run) came back unclipped, far off a 5-unit-high canvas."""
    page = Page("c", 0, ImageRef(16467, 17755, service="s", api=2), 10573, 5)
    box = Region(page, Box(12160, 17035, 19414, 16482), "image").canvas_box()
    assert box == Box(7808, 5, 0, 0)


@pytest.mark.parametrize("target", [
    "c1#xywh=1000,500,1000,500",
    {"type": "SpecificResource", "source": "c1", "selector": {"type": "FragmentSelector", "value": "xywh=1000,500,1000,500"}},
])
def test_canvas_box_maps_the_image_onto_its_painting_target(target):
    body = {"id": "https://example.org/i.jpg", "type": "Image", "width": 4000, "height": 2000}
    page = read_manifest(_painted(body, target, 2000, 1000), source="m").pages[0]
    assert page.target == Box(1000, 500, 1000, 500) and page.image_box is None
    assert Region(page, Box(0, 0, 4000, 2000), "image").canvas_box() == Box(1000, 500, 1000, 500)
    assert Region(page, Box(2000, 1000, 400, 200), "image").canvas_box() == Box(1500, 750, 100, 50)


def test_v2_painting_on_xywh_is_the_target():
    doc = {"@context": "http://iiif.io/api/presentation/2/context.json", "@id": "m", "@type": "sc:Manifest",
           "sequences": [{"canvases": [{"@id": "c1", "@type": "sc:Canvas", "width": 200, "height": 100, "images": [
               {"@type": "oa:Annotation", "motivation": "sc:painting", "on": "c1#xywh=100,0,100,100",
                "resource": {"@id": "http://x/i.jpg", "@type": "dctypes:Image", "width": 50, "height": 50}}]}]}]}
    page = read_manifest(doc, source="m").pages[0]
    assert Region(page, Box(0, 0, 50, 50), "image").canvas_box() == Box(100, 0, 100, 100)


def test_image_to_canvas_transform_survives_the_index_round_trip():
    page = read_manifest(_painted({"type": "SpecificResource", "source": {"id": "http://x/i.jpg", "type": "Image",
                         "width": 4000, "height": 3000}, "selector": {"type": "ImageApiSelector", "region": "1000,1000,2000,1000"}},
                         "c1#xywh=0,0,1000,500"), source="m").pages[0]
    region = Region(page, Box(1000, 1000, 2000, 1000), "image")
    again = Region.from_dict(json.loads(json.dumps(region.to_dict())))
    assert again == region and again.canvas_box() == Box(0, 0, 1000, 500)
    stored_before = region.to_dict()  # a region stored before pages had these fields
    del stored_before["page"]["image_box"], stored_before["page"]["target"]
    assert Region.from_dict(stored_before).page.image_box is None


def test_0283_canvas_without_image_is_skipped_with_a_problem(corpus):
    problems = []
    info = manifest(corpus, f"{COOKBOOK}/0283-missing-image/manifest.json", problems)
    assert [p.id.rsplit("/", 1)[-1] for p in info.pages] == ["p1", "p3", "p4"]
    assert [p.index for p in info.pages] == [0, 2, 3]
    assert any("canvas/p2" in p.where and "no image" in p.message for p in problems)


def test_0068_newspaper_alto_linked_by_rendering(corpus):
    info = manifest(corpus, f"{COOKBOOK}/0068-newspaper/newspaper_issue_1-manifest.json")
    base = "https://iiif.io/api/cookbook/recipe/0068-newspaper/"
    assert info.alto == (base + "newspaper_issue_1-alto_p1.xml", base + "newspaper_issue_1-alto_p2.xml")
    assert info.book.title == "Berliner Tageblatt - 1925-02-16"
    assert info.book.date == "1925-02-16"  # from navDate
    assert info.book.language == "German"  # metadata value, English preferred over "none"
    assert ("type", "Analytic serial; Newspaper; Newspaper Issue") in info.book.metadata
    # The image states no size: it fills the canvas, so the canvas size is assumed.
    assert (info.pages[0].image.width, info.pages[0].image.height) == (3602, 5000)


def test_0068_collection_members(corpus):
    data = (corpus / COOKBOOK / "0068-newspaper/newspaper_title-collection.json").read_bytes()
    base = "https://iiif.io/api/cookbook/recipe/0068-newspaper/"
    assert read_collection(data, source="c") == [base + "newspaper_issue_1-manifest.json",
                                                 base + "newspaper_issue_2-manifest.json"]


def test_unrendered_cookbook_template_is_a_clear_source_error(corpus):
    with pytest.raises(SourceError, match="template") as err:
        manifest(corpus, "iiif-cookbook/0005-image-service/manifest.json")
    assert err.value.parameter == "iiif-cookbook/0005-image-service/manifest.json"


# ---- Presentation 2 in the wild ---------------------------------------------------------------

def test_v2_image_api_1_1_service_without_context(corpus):
    problems = []
    info = manifest(corpus, "iiif-mirador-fixtures/version-2/Osbornfa1.json", problems)
    assert info.version == 2
    image = info.pages[0].image
    assert image.api == 1 and image.service == "https://images.britishart.yale.edu/iiif/b38081da-8991-4464-a71e-d9891226a35f"
    assert (image.width, image.height) == (3603, 4438)
    assert any(p.where == "@context" and "no @context" in p.message for p in problems)


def test_v2_wrong_context_is_sniffed(corpus):
    problems = []
    info = manifest(corpus, "iiif-manifesto-fixtures/presentation2-paging.json", problems)
    assert info.version == 2 and len(info.pages) == 265
    assert info.book.creator.startswith("Einstein, Albert") and info.book.date == "1920"
    assert any("image/2/context.json" in p.message for p in problems)


def test_v2_zero_size_canvas_and_image(corpus):
    problems = []
    page = manifest(corpus, "iiif-mirador-fixtures/version-2/zeroWidthCanvas.json", problems).pages[0]
    assert (page.width, page.height, page.image.width, page.image.height) == (0, 0, 0, 0)
    assert page.image.api == 2
    assert any("neither canvas nor image" in p.message for p in problems)


def test_v2_scaled_derivative_size_is_not_the_image_size(corpus):
    """Wellcome paints .../full/!800,800/... (533x800): the full image is the canvas size."""
    info = manifest(corpus, "iiif-manifesto-fixtures/correspondance.json")
    page = info.pages[0]
    assert (page.image.width, page.image.height) == (2643, 3965) == (page.width, page.height)
    assert info.alto[0] == "http://wellcomelibrary.org/service/alto/b1818893x/0?image=0"
    assert sum(a is not None for a in info.alto) == 143


def test_v2_with_v3_start_and_alto_seealso(corpus):
    info = manifest(corpus, "bnf-gallica-vogue1920/collection/vogue-avec-ocr/bpt6k9604118j.json")
    assert info.version == 2 and len(info.pages) == 74
    linked = [(p.label, a) for p, a in zip(info.pages, info.alto) if a]
    assert [a.rsplit("/", 1)[-1] for _, a in linked] == ["X00000019.xml", "X00000020.xml", "X00000021.xml"]
    assert {p.image.api for p in info.pages} == {1}
    assert info.book.title.startswith("BnF, département Littérature et art")
    assert info.book.date == "15 juin 1920" and info.book.language == "français"


@pytest.mark.parametrize("version", ["iiif-v2", "iiif-v3"])
def test_nln_uri_templates_are_stripped_and_alto_found(corpus, version):
    problems = []
    info = manifest(corpus, f"nln-ngx-mime/{version}/recognized-text-manifest.json", problems)
    assert "{" not in info.id and info.id.endswith("/10ca37a8595f4a63dd033dbfa4a130bc/manifest")
    assert all(a and "/altos/URN:NBN:no-nb_digimanus_14280_000" in a for a in info.alto)
    assert {p.image.api for p in info.pages} == {2}  # v3 manifest, ImageService2 with bare "level1"
    assert any("URI template" in p.message for p in problems)


def test_potterselectric_cp1252_collection(corpus):
    problems = []
    data = (corpus / "iiif-manifesto-fixtures/potterselectric.json").read_bytes()
    members = read_collection(data, source="potter", report=problems.append)
    assert members[0] == "http://showcase.iiif.io/shims/wales/potter/1859.json" and len(members) == len(set(members))
    assert any("cp1252" in p.message for p in problems)


def test_image_offering_two_services_uses_the_first_listed(corpus):
    """Riksarkivet offers each image as ImageService3 then ImageService2 (v2 uses @id/@type)."""
    info = manifest(corpus, "iiif-manifesto-fixtures/riksmuseum-image-api-v3-thumbnails.json")
    assert len(info.pages) == 335 and {p.image.api for p in info.pages} == {3}
    assert info.pages[0].image.service == "https://lbiiif.riksarkivet.se/v3/arkis!00147269_00001"


def test_manifest_without_canvases(corpus):
    problems = []
    info = manifest(corpus, "iiif-mirador-fixtures/version-2/2017498721.json", problems)
    assert info.pages == () and any("no canvases" in p.message for p in problems)


def test_broken_json_fixture_is_a_source_error(corpus):
    with pytest.raises(SourceError, match="not a IIIF manifest"):
        manifest(corpus, "iiif-mirador-fixtures/version-2/broken.json")
    with pytest.raises(SourceError, match=r"not JSON: .* line 1 column 2"):
        read_manifest(b"{oops", source="x.json")


# ---- Small spec tables ------------------------------------------------------------------------

def _v3(canvas_extra=None, **top):
    canvas = {"id": "c1", "type": "Canvas", "width": 100, "height": 200, "items": [
        {"type": "AnnotationPage", "items": [{"type": "Annotation", "motivation": "painting",
         "body": {"id": "http://x/i.jpg", "type": "Image", "width": 100, "height": 200}, "target": "c1"}]}]}
    canvas.update(canvas_extra or {})
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "m", "type": "Manifest",
           "label": {"en": ["t"]}, "items": [canvas]}
    doc.update(top)
    return doc


@pytest.mark.parametrize("label, title", [
    ({"de": ["Zeitung"]}, "Zeitung"),
    ({"fr": ["Titre"], "en": ["Title"]}, "Title"),
    ({"none": ["A", "B"]}, "A; B"),
    ([{"@value": "Teitl", "@language": "cy"}, {"@value": "Title", "@language": "en"}], "Title"),
    ({"cy": "Teitl", "en": "Title"}, "Title"),  # non-standard v2 map (potterselectric)
    ("<span>A &amp; B</span>", "A & B"),
])
def test_language_maps_prefer_english_then_none_then_first(label, title):
    assert read_manifest(_v3(label=label), source="m").book.title == title


@pytest.mark.parametrize("metadata, navdate, expect", [
    ([{"label": "Author", "value": "Ann"}, {"label": "Date", "value": "1801"}], None, ("Ann", "1801", "")),
    ([{"label": {"no": ["Forfatter"]}, "value": {"no": ["Ibsen"]}},
      {"label": {"no": ["Språk"]}, "value": {"no": ["nob"]}}], None, ("Ibsen", "", "nob")),
    ([], "1949-01-01:T00:00:00Z", ("", "1949-01-01", "")),  # malformed navDate (LoC fixture)
])
def test_book_fields_from_metadata_labels(metadata, navdate, expect):
    doc = _v3(metadata=metadata, **({"navDate": navdate} if navdate else {}))
    book = read_manifest(doc, source="m").book
    assert (book.creator, book.date, book.language) == expect


@pytest.mark.parametrize("link, is_alto", [
    ({"id": "a", "format": "application/alto+xml"}, True),
    ({"id": "a", "format": "text/xml"}, True),
    ({"id": "a", "format": "application/xml", "profile": "http://www.loc.gov/standards/alto/"}, True),
    ({"id": "a", "profile": "http://www.loc.gov/standards/alto/ns-v4#"}, True),
    ({"id": "a", "format": "text/xml", "profile": "http://www.loc.gov/mods/v3"}, False),
    ({"id": "a", "format": "application/pdf"}, False),
])
def test_alto_link_detection(link, is_alto):
    for key in ("seeAlso", "rendering"):
        info = read_manifest(_v3({key: [link]}), source="m")
        assert info.alto == (("a" if is_alto else None),)


def test_alto_in_embedded_annotation_page():
    page = {"type": "AnnotationPage", "items": [{"type": "Annotation", "motivation": "supplementing",
            "body": {"id": "alto.xml", "format": "application/alto+xml"}}]}
    assert read_manifest(_v3({"annotations": [page]}), source="m").alto == ("alto.xml",)


@pytest.mark.parametrize("service, api", [
    ({"id": "s", "type": "ImageService3", "profile": "level2"}, 3),
    ({"@id": "s/", "@type": "ImageService2", "profile": "level1"}, 2),
    ({"@id": "s", "@context": "http://iiif.io/api/image/2/context.json"}, 2),
    ({"@id": "s", "profile": "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level2"}, 1),
    ({"@id": "s", "profile": ["http://iiif.io/api/image/2/level0.json", {"formats": ["jpg"]}]}, 2),
    ({"id": "s/info.json", "profile": "level1"}, 3),  # bare level in a v3 manifest
    ({"id": "s/info.json/", "type": "ImageService3"}, 3),  # stripped as iiif_image.service_base does
])
def test_image_service_versions(service, api):
    doc = _v3()
    doc["items"][0]["items"][0]["items"][0]["body"]["service"] = [service]
    image = read_manifest(doc, source="m").pages[0].image
    assert (image.service, image.api, image.url) == ("s", api, None)


def test_search_and_auth_services_are_not_image_services():
    doc = _v3()
    doc["items"][0]["items"][0]["items"][0]["body"]["service"] = [
        {"@id": "q", "profile": "http://iiif.io/api/search/0/search"}, "http://auth/login"]
    image = read_manifest(doc, source="m").pages[0].image
    assert image.service is None and image.url == "http://x/i.jpg"


def test_v2_manifest_written_with_v3_items():
    doc = _v3()
    doc["@context"] = "http://iiif.io/api/presentation/2/context.json"
    info = read_manifest(doc, source="m")
    assert info.version == 2 and info.pages[0].image.url == "http://x/i.jpg"


def test_missing_canvas_size_falls_back_to_image_size():
    problems = []
    doc = _v3({"width": 0, "height": None})
    page = read_manifest(doc, source="m", report=problems.append).pages[0]
    assert (page.width, page.height) == (100, 200)
    assert any("canvas size" in p.message for p in problems)


@pytest.mark.parametrize("doc, kind", [
    ({"@type": "sc:Manifest"}, "manifest"),
    ({"type": "Collection"}, "collection"),
    ({"sequences": []}, "manifest"),
    ({"manifests": []}, "collection"),
    ({"items": [{"type": "Canvas"}]}, "manifest"),
    ({"items": [{"type": "Manifest"}]}, "collection"),
    ({"type": "AnnotationPage", "items": []}, None),
    ([1, 2], None),
])
def test_kind_of(doc, kind):
    assert kind_of(doc) == kind


def test_collection_members_v2_and_v3_deduplicated():
    v2 = {"@context": "http://iiif.io/api/presentation/2/context.json", "@type": "sc:Collection",
          "collections": [{"@id": "c1"}], "manifests": [{"@id": "m1"}, "m2"], "members": [{"@id": "m1"}]}
    assert read_collection(v2, source="c") == ["c1", "m1", "m2"]
    v3 = {"type": "Collection", "items": [{"id": "m{?x}", "type": "Manifest"}, {"id": "x", "type": "Canvas"}]}
    assert read_collection(v3, source="c") == ["m"]
    with pytest.raises(SourceError, match="not a IIIF collection"):
        read_collection(_v3(), source="m")


def test_parse_json_strips_bom():
    assert parse_json(b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode(), source="x") == {"a": 1}
