"""annotate.py, manifests.py and the IIIF routes of web/iiif.py, on real manifests.

Two real manifests with their real ALTO: the IIIF Cookbook's 0068 newspaper (Presentation 3,
Berliner Tageblatt 1925, ALTO linked by ``rendering``) and BnF Gallica's Vogue 1920
(Presentation 2.1 with Image API 1.1 services, ALTO linked by ``seeAlso``). Their regions are
indexed (test-pixels vectors of stand-in crops: the page images are not reachable offline),
annotated, written and loaded back: through iiif-prezi3's models, the Presentation 3 JSON
Schema and by checking every target against the canvases it names.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import iiif_prezi3
import jsonschema
import numpy as np
import pytest
from flask import Flask
from PIL import Image

from bookidx.adapters.alto import read_alto
from bookidx.adapters.iiif import read_manifest
from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.annotate import (
    Links,
    annotate_files,
    annotate_manifest,
    annotation_v2,
    annotation_v3,
    canvases,
    regions_by_canvas,
)
from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.errors import NotFound, SourceError
from bookidx.manifests import load_manifest, save_manifest, slug
from bookidx.store import Index
from bookidx.web import create_blueprint
from npmdeps import presentation3_schema

NEWSPAPER = "iiif-cookbook/rendered/0068-newspaper/newspaper_issue_1-manifest.json"
NEWSPAPER_ALTO = "iiif-cookbook/0068-newspaper"
VOGUE = "bnf-gallica-vogue1920/collection/vogue-avec-ocr/bpt6k9604118j.json"
VOGUE_ALTO = "bnf-gallica-vogue1920/collection/X"
XYWH = re.compile(r"^(?P<canvas>[^#]+)#xywh=(\d+),(\d+),(\d+),(\d+)$")
SERVED = Links.served("https://example.org/bookidx/iiif/abc", lambda key: f"https://example.org/bookidx/api/items/{key}/similar")


def corpus_regions(manifest: Path, alto_dir: Path) -> tuple[dict, list[Region]]:
    """The manifest and the picture blocks of the canvases whose ALTO lies in ``alto_dir``,
    plus a whole-image region for the first canvas without ALTO (an image-only page)."""
    doc = json.loads(manifest.read_bytes())
    info = read_manifest(doc, source=str(manifest))
    regions: list[Region] = []
    whole = False
    for page, alto in zip(info.pages, info.alto):
        local = alto_dir / alto.rsplit("/", 1)[-1] if alto else None
        if local is not None and local.is_file():
            regions += read_alto(local.read_bytes(), source=str(local), page=page, book=info.book)
        elif not whole and page.image.width:
            regions.append(Region(page, Box(0, 0, page.image.width, page.image.height), "image", book=info.book))
            whole = True
    return doc, regions


def stand_in_crops(regions: list[Region]) -> list[Image.Image]:
    """One deterministic picture per region (the real page images are remote)."""
    out = []
    for region in regions:
        rng = np.random.default_rng(region.key % 2**32)
        out.append(Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)))
    return out


@pytest.fixture(scope="module")
def indexed(corpus, tmp_path_factory):
    """An index of both manifests' regions, with the manifests stored beside it."""
    path = tmp_path_factory.mktemp("annotate") / "idx"
    embedder = load_embedder("test-pixels")
    docs, regions = {}, []
    for manifest, alto in ((NEWSPAPER, NEWSPAPER_ALTO), (VOGUE, VOGUE_ALTO)):
        doc, found = corpus_regions(corpus / manifest, corpus / alto)
        assert found, f"no regions read from {manifest}"
        docs[manifest] = doc
        regions += found
        save_manifest(path, doc.get("id") or doc["@id"], doc)
    index = Index.create_or_open(path, model_info=embedder.info, config=IndexConfig(model=embedder.model_id))
    try:
        index.add(regions, embedder.embed_images(stand_in_crops(regions)))
        index.commit()
    finally:
        index.close()
    return path, docs, regions


def targets_inside(doc: dict, annotations: list[dict], target_key: str) -> list[str]:
    """Every annotation's canvas, after checking it exists and the box lies inside it."""
    sizes = {c.id: (c.width, c.height) for c in canvases(doc)}
    found = []
    for anno in annotations:
        m = XYWH.match(anno[target_key])
        assert m, anno[target_key]
        x, y, w, h = (int(v) for v in m.groups()[1:])
        width, height = sizes[m["canvas"]]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height, anno[target_key]
        found.append(m["canvas"])
    return found


# -- manifests.py ------------------------------------------------------------------------------


def test_slug_is_16_hex_of_sha256_and_load_round_trips(tmp_path):
    doc = {"id": "https://example.org/m.json", "type": "Manifest", "label": {"fr": ["Été"]}}
    assert slug(doc["id"]) == hashlib.sha256(doc["id"].encode()).hexdigest()[:16]
    path = save_manifest(tmp_path, doc["id"], doc)
    assert path == tmp_path / "manifests" / f"{slug(doc['id'])}.json"
    assert load_manifest(tmp_path, slug(doc["id"])) == doc
    assert list((tmp_path / "manifests").iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize("bad", ["0123456789abcdef", "../../etc/passwd", "0123456789ABCDEF", "0123"])
def test_load_manifest_refuses_unknown_and_malformed_slugs(tmp_path, bad):
    with pytest.raises(NotFound) as e:
        load_manifest(tmp_path, bad)
    assert e.value.code == 404 and e.value.parameter == "slug"


# -- annotations -------------------------------------------------------------------------------


def test_target_is_in_canvas_coordinates_not_image_pixels():
    # The image is twice the canvas (as in cookbook 0004 and many manifests): boxes halve.
    page = Page("https://example.org/c1", 0, ImageRef(2000, 3000, service="https://example.org/iiif/p1", api=3), 1000, 1500)
    region = Region(page, Box(200, 400, 600, 800), "Illustration", caption="Une vue de Paris",
                    book=Book("b", language="fr"))
    canvas = canvases({"type": "Manifest", "items": [{"id": page.id, "type": "Canvas", "width": 1000, "height": 1500}]})[0]
    v3 = annotation_v3(region, canvas, SERVED)
    assert v3["target"] == "https://example.org/c1#xywh=100,200,300,400"
    assert v3["id"] == f"https://example.org/bookidx/iiif/abc/annotation/{region.key}"
    assert v3["motivation"] == "commenting"
    caption, tag, link = v3["body"]
    assert caption == {"type": "TextualBody", "value": "Une vue de Paris", "format": "text/plain", "language": "fr", "purpose": "describing"}
    assert tag == {"type": "TextualBody", "value": "Illustration", "purpose": "tagging"}
    assert link["purpose"] == "linking" and link["type"] == "SpecificResource"
    assert link["source"]["id"] == f"https://example.org/bookidx/api/items/{region.key}/similar"
    v2 = annotation_v2(region, canvas, SERVED)
    assert v2["on"] == v3["target"] and v2["@id"] == v3["id"] and v2["motivation"] == "oa:commenting"
    assert v2["resource"][0] == {"@type": "dctypes:Text", "format": "text/plain", "chars": "Une vue de Paris", "language": "fr"}
    assert v2["resource"][1] == {"@type": "oa:Tag", "chars": "Illustration"}


def test_target_of_a_canvas_showing_part_of_its_image(corpus):
    """Cookbook 0299: the canvas shows one region of a larger image; that region is the canvas."""
    doc = json.loads((corpus / "iiif-cookbook/rendered/0299-region/manifest.json").read_bytes())
    info = read_manifest(doc, source="0299")
    region = Region(info.pages[0], Box(1768 + 100, 2423 + 200, 300, 400), "Illustration")
    (canvas,) = canvases(doc)
    assert annotation_v3(region, canvas, SERVED)["target"] == f"{canvas.id}#xywh=100,200,300,400"


def test_uncaptioned_region_is_tagging_and_unknown_language_is_left_out():
    page = Page("https://example.org/c1", 0, ImageRef(100, 100, path="p.jpg"), 100, 100)
    region = Region(page, Box(10, 10, 50, 50), "GraphicalElement", tags=("map",), book=Book("b", language="German"))
    canvas = canvases({"items": [{"id": page.id, "type": "Canvas", "width": 100, "height": 100}]})[0]
    anno = annotation_v3(region, canvas, Links(page="https://x.org/p/{index}", annotation="https://x.org/a/{key}"))
    assert anno["motivation"] == "tagging"
    assert [b["value"] for b in anno["body"]] == ["GraphicalElement", "map"]  # no link without a URL
    with_caption = annotation_v3(region.with_(caption="Karte"), canvas, SERVED)
    assert "language" not in with_caption["body"][0]  # "German" is not a BCP 47 tag


def test_region_outside_its_canvas_is_clipped_or_dropped():
    page = Page("https://example.org/c1", 0, ImageRef(0, 0, path="p.jpg"), 100, 100)
    canvas = canvases({"items": [{"id": page.id, "type": "Canvas", "width": 100, "height": 100}]})[0]
    partly = annotation_v3(Region(page, Box(80, 90, 50, 50), "Illustration"), canvas, SERVED)
    assert partly["target"].endswith("#xywh=80,90,20,10")
    assert annotation_v3(Region(page, Box(150, 0, 10, 10), "Illustration"), canvas, SERVED) is None


def test_v3_manifest_round_trip_through_iiif_prezi3_and_the_schema(indexed, corpus, tmp_path):
    path, docs, regions = indexed
    doc = docs[NEWSPAPER]
    written = annotate_files([corpus / NEWSPAPER], path, tmp_path,
                             base_url="https://example.org/pub", api_url="https://example.org/bookidx/api")
    manifest_file = tmp_path / slug(doc["id"]) / "manifest.json"
    assert manifest_file in written
    out = json.loads(manifest_file.read_text())
    iiif_prezi3.Manifest(**out)
    schema = presentation3_schema()
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(out))

    mine = [r for r in regions if r.page.manifest == doc["id"]]
    seen = []
    for canvas in out["items"]:
        refs = [a for a in canvas.get("annotations", []) if a["id"].startswith("https://example.org/pub/")]
        original = [a for a in canvas.get("annotations", []) if not a["id"].startswith("https://example.org/pub/")]
        assert original, "the cookbook's own annotation page is kept"
        for ref in refs:
            assert ref["type"] == "AnnotationPage"
            page_file = tmp_path / ref["id"][len("https://example.org/pub/"):]
            page = json.loads(page_file.read_text())
            assert page_file in written and page["id"] == ref["id"]
            iiif_prezi3.AnnotationPage(**page)
            assert not list(jsonschema.Draft7Validator(schema).iter_errors(page))
            assert set(targets_inside(doc, page["items"], "target")) == {canvas["id"]}
            seen += [int(a["id"].rsplit("/", 1)[1]) for a in page["items"]]
    assert sorted(seen) == sorted(r.key for r in mine)  # every indexed region, once


def test_v2_manifest_gets_other_content_lists_on_the_right_canvases(indexed, corpus, tmp_path):
    path, docs, regions = indexed
    doc = docs[VOGUE]
    annotate_files([corpus / VOGUE], path, tmp_path, base_url="https://example.org/pub/")
    out = json.loads((tmp_path / slug(doc["@id"]) / "manifest.json").read_text())
    assert out["@id"] == doc["@id"] and out["@context"] == doc["@context"]
    assert "service" not in out or all("search" not in json.dumps(s) for s in out["service"])  # static: no search
    mine = [r for r in regions if r.page.manifest == doc["@id"]]
    canvas_ids = set()
    for canvas in out["sequences"][0]["canvases"]:
        for ref in canvas.get("otherContent", []):
            assert ref["@type"] == "sc:AnnotationList"
            listing = json.loads((tmp_path / ref["@id"][len("https://example.org/pub/"):]).read_text())
            assert listing["@type"] == "sc:AnnotationList" and listing["@context"] == "http://iiif.io/api/presentation/2/context.json"
            assert set(targets_inside(doc, listing["resources"], "on")) == {canvas["@id"]}
            for anno in listing["resources"]:
                assert anno["@type"] == "oa:Annotation"
                assert anno["motivation"] in ("oa:commenting", "oa:tagging")
            canvas_ids.add(canvas["@id"])
    assert canvas_ids == {r.page.id for r in mine}
    assert len(canvas_ids) == 4  # three ALTO pages (f19-f21) and one image-only page


def test_without_base_url_pages_are_embedded_and_ids_are_stable(indexed, corpus, tmp_path):
    path, docs, _ = indexed
    doc = docs[NEWSPAPER]
    first = annotate_files([corpus / NEWSPAPER], path, tmp_path / "a")
    second = annotate_files([doc["id"]], path, tmp_path / "b")  # by id: the stored manifest
    assert [p.name for p in first] == [p.name for p in second] == ["manifest.json"]
    assert first[0].read_text() == second[0].read_text()
    out = json.loads(first[0].read_text())
    iiif_prezi3.Manifest(**out)
    assert not list(jsonschema.Draft7Validator(presentation3_schema()).iter_errors(out))
    embedded = [p for c in out["items"] for p in c.get("annotations", []) if p.get("items")]
    assert embedded and all(p["id"].startswith(doc["id"] + "#bookidx-annotations-") for p in embedded)


def test_manifest_files_are_decoded_as_the_indexer_decodes_them(indexed, corpus, tmp_path):
    """A cp1252 manifest that ``bookidx index`` read (parse_json) is read by ``bookidx annotate``
    too, and the indexed copy of it as well; broken JSON is a SourceError naming line and column."""
    path, docs, _ = indexed
    doc = dict(docs[NEWSPAPER], label={"fr": ["Journal illustré"]})
    legacy = tmp_path / "legacy.json"
    legacy.write_bytes(json.dumps(doc, ensure_ascii=False).encode("cp1252"))
    annotate_files([legacy], path, tmp_path / "out")
    out = json.loads((tmp_path / "out" / slug(doc["id"]) / "manifest.json").read_text())
    assert out["label"] == {"fr": ["Journal illustré"]}
    assert any("annotations" in canvas for canvas in out["items"])
    stored = tmp_path / "stored"
    save_manifest(stored, doc["id"], doc)
    (stored / "manifests" / f"{slug(doc['id'])}.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert load_manifest(stored, slug(doc["id"])) == doc  # a BOM, as an editor may leave
    (tmp_path / "broken.json").write_text('{"id": "m",\n  oops}')
    with pytest.raises(SourceError, match="not JSON: .* line 2 column 3") as err:
        annotate_files([tmp_path / "broken.json"], path, tmp_path / "out")
    assert err.value.parameter == str(tmp_path / "broken.json")


def test_annotating_twice_does_not_duplicate_references():
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/m", "type": "Manifest",
           "items": [{"id": "https://example.org/c1", "type": "Canvas", "width": 100, "height": 100, "items": []}],
           "service": [{"id": "https://example.org/other", "type": "Service"}]}
    page = Page("https://example.org/c1", 0, ImageRef(100, 100, service="https://example.org/iiif/1", api=3), 100, 100)
    regions = [Region(page, Box(1, 1, 20, 20), "Illustration")]
    once = annotate_manifest(doc, regions, SERVED)
    twice = annotate_manifest(once, regions, SERVED)
    assert once == twice and doc["items"][0].get("annotations") is None  # the input is not changed
    assert [s["type"] for s in twice["service"]] == ["Service", "SearchService2", "SearchService1"]


def test_canvas_typed_as_a_list_keeps_every_canvas_at_its_position():
    """``"type": ["Canvas"]`` is a canvas to the adapter, so it must be one here too: dropping it
    renumbered the rest and served canvas 0's regions on /annotations/0 targeted at canvas 1."""
    def canvas(n: int, declared) -> dict:
        return {"id": f"https://example.org/c{n}", "type": declared, "width": 100, "height": 100, "items": [
            {"type": "AnnotationPage", "items": [{"type": "Annotation", "motivation": "painting",
             "target": f"https://example.org/c{n}",
             "body": {"id": f"https://example.org/i{n}.jpg", "type": "Image", "width": 100, "height": 100}}]}]}
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/m",
           "type": "Manifest", "items": [canvas(0, ["Canvas"]), canvas(1, "Canvas")]}
    info = read_manifest(doc, source="m")
    regions = [Region(page, Box(10, 10, 20 + page.index, 20), "Illustration") for page in info.pages]
    assert [(c.index, c.id) for c in canvases(doc)] == [(0, "https://example.org/c0"), (1, "https://example.org/c1")]
    by_canvas = regions_by_canvas(doc, regions, info)
    assert {i: [r.page.id for r in found] for i, found in by_canvas.items()} == {
        0: ["https://example.org/c0"], 1: ["https://example.org/c1"]}
    out = annotate_manifest(doc, regions, SERVED, embed=True)
    for n, item in enumerate(out["items"]):
        (page,) = item["annotations"]
        assert page["id"] == SERVED.page_id(n)
        assert [a["target"] for a in page["items"]] == [f"https://example.org/c{n}#xywh=10,10,{20 + n},20"]


def test_canvas_size_beyond_a_double_is_unknown_not_a_crash():
    """A width of 1e400 parses as infinity; it must read as "no size", as the adapter reads it."""
    doc = json.loads('{"id": "https://example.org/m", "type": "Manifest", "items": [{"id": "https://example.org/c1",'
                     ' "type": "Canvas", "width": 1e400, "height": -1e400}]}')
    (canvas,) = canvases(doc)
    assert (canvas.width, canvas.height) == (0, 0)
    page = Page("https://example.org/c1", 0, ImageRef(100, 100, url="https://example.org/i.jpg"), 0, 0)
    out = annotate_manifest(doc, [Region(page, Box(1, 2, 30, 40), "Illustration")], SERVED, embed=True)
    assert out["items"][0]["annotations"][0]["items"][0]["target"] == "https://example.org/c1#xywh=1,2,30,40"


def test_regions_of_a_canvas_are_in_reading_order(indexed):
    _, docs, regions = indexed
    doc = docs[NEWSPAPER]
    for found in regions_by_canvas(doc, regions).values():
        assert [(r.box.y, r.box.x) for r in found] == sorted((r.box.y, r.box.x) for r in found)


# -- served routes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(indexed):
    path, _, _ = indexed
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(path)))
    return app.test_client()


def test_served_v3_manifest_carries_annotations_and_both_search_services(client, indexed):
    _, docs, _ = indexed
    doc = docs[NEWSPAPER]
    s = slug(doc["id"])
    resp = client.get(f"/bookidx/iiif/{s}/manifest.json")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    out = resp.get_json()
    iiif_prezi3.Manifest(**out)
    base = f"http://localhost/bookidx/iiif/{s}"
    assert out["service"] == [
        {"id": f"{base}/search", "type": "SearchService2"},
        {"id": f"{base}/search1", "type": "SearchService1", "profile": "http://iiif.io/api/search/1/search"},
    ]
    refs = [a["id"] for c in out["items"] for a in c.get("annotations", []) if a["id"].startswith(base)]
    assert refs == [f"{base}/annotations/0", f"{base}/annotations/1"]
    page = client.get(refs[1]).get_json()
    iiif_prezi3.AnnotationPage(**page)
    assert set(targets_inside(doc, page["items"], "target")) == {out["items"][1]["id"]}
    anno = page["items"][0]
    similar = [b for b in anno["body"] if b.get("purpose") == "linking"][0]["source"]["id"]
    key = anno["id"].rsplit("/", 1)[1]
    assert similar == f"http://localhost/bookidx/api/items/{key}/similar"
    assert client.get(similar).status_code == 200  # the link leads to the blueprint's API


def test_served_v2_manifest_has_search1_service_and_annotation_lists(client, indexed):
    _, docs, _ = indexed
    doc = docs[VOGUE]
    s = slug(doc["@id"])
    out = client.get(f"/bookidx/iiif/{s}/manifest.json").get_json()
    assert out["service"] == [{
        "@context": "http://iiif.io/api/search/1/context.json",
        "@id": f"http://localhost/bookidx/iiif/{s}/search1",
        "profile": "http://iiif.io/api/search/1/search",
    }]
    canvas = out["sequences"][0]["canvases"][18]
    assert canvas["otherContent"] == [{"@id": f"http://localhost/bookidx/iiif/{s}/annotations/18", "@type": "sc:AnnotationList"}]
    listing = client.get(f"/bookidx/iiif/{s}/annotations/18").get_json()
    assert listing["@type"] == "sc:AnnotationList" and len(listing["resources"]) == 3
    assert set(targets_inside(doc, listing["resources"], "on")) == {canvas["@id"]}


def test_unknown_manifest_or_canvas_is_a_json_404(client, indexed):
    _, docs, _ = indexed
    s = slug(docs[VOGUE]["@id"])
    for url in ("/bookidx/iiif/0123456789abcdef/manifest.json", f"/bookidx/iiif/{s}/annotations/999",
                "/bookidx/iiif/..%5C..%5Cbookidx.json/manifest.json"):
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert resp.get_json()["error"] == 404

