"""contentsearch.py and the Content Search routes, checked field by field against the specs.

Spec tables are the examples of Content Search 2.0 (§4.2.1 simple list, §4.2.2 paging, §4.2.4
ignored parameters, §4.3.1 match context, §4.3.2 match highlighting) and 1.0 (§3.3.1, §3.3.2,
§3.4.1, §3.4.2 ``hits`` with ``match``/``before``/``after``). The served searches run over the
real BnF Gallica Vogue 1920 manifest and its ALTO (captions and page text in French).
"""

from __future__ import annotations

import pytest
from flask import Flask

from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.annotate import Links, canvases
from bookidx.config import IndexConfig
from bookidx.contentsearch import (
    Quote,
    Result,
    ResultPage,
    find_match,
    ignored_parameters,
    motivations,
    query_terms,
    result,
    search_v1,
    search_v2,
)
from bookidx.embed import load_embedder
from bookidx.manifests import save_manifest, slug
from bookidx.store import Index
from bookidx.web import create_blueprint
from bookidx.web.iiif import VISUAL_HITS
from test_annotate import VOGUE, indexed, stand_in_crops  # noqa: F401  (indexed: fixture)

SEARCH = "https://example.org/bookidx/iiif/abc/search"
LINKS = Links.served("https://example.org/bookidx/iiif/abc", None)
CANVAS_ID = "https://example.org/identifier/canvas1"


@pytest.mark.parametrize("text, terms, expected", [
    # 2.0 §4.3.1 / 1.0 §3.4.2: "bird" matches the plural, with the text on either side.
    ("There are two birds in the bush", ["bird"], Quote("There are two ", "birds", " in the bush")),
    # Case and accents are folded as SQLite FTS5's unicode61 tokenizer does; the quote is verbatim.
    ("Une ÉTUDE de chevaux", ["etude"], Quote("Une ", "ÉTUDE", " de chevaux")),
    ("les plus élégantes ; sa popularité", ["elegantes"], Quote("les plus ", "élégantes", " ; sa popularité")),
    ("a seabird and a bird", ["bird"], Quote("a seabird and a ", "bird", "")),  # words start at a boundary
    ("nothing here", ["bird"], None),
    ("", ["bird"], None),
    ("a bird", [], None),
])
def test_find_match(text, terms, expected):
    assert find_match(text, terms) == expected


def test_long_text_is_cut_to_whole_words_around_the_match():
    text = " ".join(f"word{i}" for i in range(40)) + " bird " + " ".join(f"tail{i}" for i in range(40))
    quote = find_match(text, ["bird"], chars=30)
    assert quote.exact == "bird"
    assert len(quote.prefix) <= 30 and len(quote.suffix) <= 30
    assert quote.prefix.startswith("word") and quote.suffix.rstrip().split(" ")[-1].startswith("tail")
    assert text.index(quote.prefix + quote.exact + quote.suffix) >= 0


def test_query_terms_and_parameters():
    assert query_terms("Étude  étude, Bird*") == ["etude", "bird"]
    assert motivations("commenting oa:tagging") == {"commenting", "tagging"}
    assert motivations("  ") is None
    assert ignored_parameters({"q": "x", "motivation": "tagging", "user": "https://u.org/1", "date": ""}) == ("user",)


def _region(caption: str, y: int = 100, context: str = "") -> Region:
    page = Page(CANVAS_ID, 0, ImageRef(1000, 1000, service="https://example.org/iiif/1", api=3), 1000, 1000,
                manifest="https://example.org/manifest")
    return Region(page, Box(100, y, 250, 20), "Illustration", caption=caption, context=context, book=Book("b"))


def _canvases() -> dict:
    doc = {"type": "Manifest", "items": [{"id": CANVAS_ID, "type": "Canvas", "width": 1000, "height": 1000}]}
    return {c.id: c for c in canvases(doc)}


def test_v2_simple_list_is_a_plain_annotation_page():
    """§4.2.1: id, type, items; every annotation fully embedded; no paging properties."""
    region = _region("A bird in the hand is worth two in the bush")
    out = search_v2([Result(region)], _canvases(), LINKS, ResultPage(id=f"{SEARCH}?q=hand"))
    assert list(out) == ["@context", "id", "type", "items"]
    assert out["@context"] == "http://iiif.io/api/search/2/context.json"
    assert out["id"] == f"{SEARCH}?q=hand" and out["type"] == "AnnotationPage"
    (anno,) = out["items"]
    assert anno["type"] == "Annotation" and anno["id"] == f"https://example.org/bookidx/iiif/abc/annotation/{region.key}"
    assert anno["body"][0] == {"type": "TextualBody", "value": "A bird in the hand is worth two in the bush",
                               "format": "text/plain", "purpose": "describing"}
    assert anno["target"] == f"{CANVAS_ID}#xywh=100,100,250,20"


def test_v2_highlighting_and_contextualizing_annotations():
    """§4.3.1/§4.3.2: one ``annotations`` page whose annotations point at the items by id."""
    in_caption = result(_region("There are two birds in the bush"), ["bird"])
    in_context = result(_region("Frontispiece", y=300, context="A bird in the hand"), ["bird"])
    out = search_v2([in_caption, in_context], _canvases(), LINKS, ResultPage(id=f"{SEARCH}?q=bird"))
    (page,) = out["annotations"]
    assert page["type"] == "AnnotationPage"
    high, ctx = page["items"]
    assert high["type"] == "Annotation" and high["motivation"] == "highlighting"
    assert high["target"] == {
        "type": "SpecificResource",
        "source": out["items"][0]["id"],
        "selector": [{"type": "TextQuoteSelector", "prefix": "There are two ", "exact": "birds", "suffix": " in the bush"}],
    }
    assert ctx["motivation"] == "contextualizing" and ctx["target"]["source"] == out["items"][1]["id"]
    assert ctx["target"]["selector"] == [{"type": "TextQuoteSelector", "prefix": "A ", "exact": "bird", "suffix": " in the hand"}]
    assert len({high["id"], ctx["id"], *(i["id"] for i in out["items"])}) == 4


def test_v2_paged_response_embeds_its_collection():
    """§4.2.2: partOf (the embedded AnnotationCollection with first/last/total), next, prev, startIndex."""
    where = ResultPage(
        id=f"{SEARCH}?q=bird&page=2", start_index=24, total=125, collection=f"{SEARCH}?q=bird",
        first=f"{SEARCH}?q=bird&page=1", last=f"{SEARCH}?q=bird&page=6",
        next=f"{SEARCH}?q=bird&page=3", prev=f"{SEARCH}?q=bird&page=1", ignored=("user",),
    )
    out = search_v2([], _canvases(), LINKS, where)
    assert out["partOf"] == {
        "id": f"{SEARCH}?q=bird",
        "type": "AnnotationCollection",
        "total": 125,
        "first": {"id": f"{SEARCH}?q=bird&page=1", "type": "AnnotationPage"},
        "last": {"id": f"{SEARCH}?q=bird&page=6", "type": "AnnotationPage"},
    }
    assert out["next"] == {"id": f"{SEARCH}?q=bird&page=3", "type": "AnnotationPage"}
    assert out["prev"] == {"id": f"{SEARCH}?q=bird&page=1", "type": "AnnotationPage"}
    assert out["startIndex"] == 24
    assert out["ignored"] == ["user"]  # §4.2.4
    assert out["items"] == []


def test_v1_annotation_list_with_hits():
    """1.0 §3.3 and §3.4: sc:AnnotationList, resources ``on`` the canvas, search:Hit snippets."""
    keyword = result(_region("There are two birds in the bush"), ["bird"])
    visual = Result(_region("", y=300))  # a text -> image hit: nothing matched in words
    where = ResultPage(id=f"{SEARCH}1?q=bird&page=1", total=3, collection=f"{SEARCH}1?q=bird",
                       first=f"{SEARCH}1?q=bird&page=1", last=f"{SEARCH}1?q=bird&page=2",
                       next=f"{SEARCH}1?q=bird&page=2", ignored=("date",))
    out = search_v1([keyword, visual], _canvases(), LINKS, where)
    assert out["@context"] == ["http://iiif.io/api/presentation/2/context.json", "http://iiif.io/api/search/1/context.json"]
    assert out["@id"] == f"{SEARCH}1?q=bird&page=1" and out["@type"] == "sc:AnnotationList"
    assert out["within"] == {"@type": "sc:Layer", "total": 3, "first": f"{SEARCH}1?q=bird&page=1",
                             "last": f"{SEARCH}1?q=bird&page=2", "ignored": ["date"]}
    assert out["next"] == f"{SEARCH}1?q=bird&page=2" and "prev" not in out and out["startIndex"] == 0
    first, second = out["resources"]
    assert first["@type"] == "oa:Annotation" and first["on"] == f"{CANVAS_ID}#xywh=100,100,250,20"
    assert first["resource"][0]["chars"] == "There are two birds in the bush"
    assert out["hits"] == [
        {"@type": "search:Hit", "annotations": [first["@id"]], "match": "birds", "before": "There are two ", "after": " in the bush"},
        {"@type": "search:Hit", "annotations": [second["@id"]], "match": "Illustration"},
    ]


def test_v1_simple_list_has_no_layer():
    out = search_v1([], _canvases(), LINKS, ResultPage(id=f"{SEARCH}1?q=x"))
    assert list(out) == ["@context", "@id", "@type", "resources", "hits"]


# -- served ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(indexed):  # noqa: F811
    path, _, _ = indexed
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(path)))
    app.register_blueprint(create_blueprint(str(path), name="paged", default_limit=2))
    return app


@pytest.fixture(scope="module")
def vogue(indexed):  # noqa: F811
    _, docs, regions = indexed
    doc = docs[VOGUE]
    return slug(doc["@id"]), doc, [r for r in regions if r.page.manifest == doc["@id"]]


def test_served_search1_finds_captions_and_page_text(app, vogue):
    s, doc, _ = vogue
    out = app.test_client().get(f"/bookidx/iiif/{s}/search1?q=fleurs").get_json()
    assert out["@id"] == f"http://localhost/bookidx/iiif/{s}/search1?q=fleurs"
    canvas19 = doc["sequences"][0]["canvases"][19]["@id"]
    assert len(out["resources"]) == 3 and {a["on"].split("#")[0] for a in out["resources"]} == {canvas19}
    assert [h["match"] for h in out["hits"]] == ["fleurs", "FLEURS", "FLEURS"]  # caption first (BM25 weight)
    assert out["hits"][0]["before"].endswith("à la mode, cette saison, que les ")
    ids = {a["@id"] for a in out["resources"]}
    assert all(h["annotations"][0] in ids for h in out["hits"])
    assert out["within"] == {"@type": "sc:Layer", "total": 3}


def test_served_search2_items_are_the_manifests_annotations(app, vogue):
    s, _, _ = vogue
    client = app.test_client()
    resp = client.get(f"/bookidx/iiif/{s}/search?q=elegantes")  # accents folded: "élégantes"
    assert resp.headers["Content-Type"] == 'application/ld+json;profile="http://iiif.io/api/search/2/context.json"'
    out = resp.get_json()
    listing = client.get(f"/bookidx/iiif/{s}/annotations/18").get_json()
    on_canvas = {a["@id"]: a["on"] for a in listing["resources"]}
    assert out["items"] and all(on_canvas[i["id"]] == i["target"] for i in out["items"])  # same ids, same targets
    (high,) = [a for a in out["annotations"][0]["items"] if a["motivation"] == "highlighting"]
    assert high["target"]["source"] == out["items"][0]["id"]  # the caption hit ranks first
    assert high["target"]["selector"][0]["exact"] == "élégantes"


def test_served_search_pages_by_default_limit(app, vogue):
    s, _, _ = vogue
    client = app.test_client()
    base = f"http://localhost/paged/iiif/{s}/search?q=fleurs"
    first = client.get(f"/paged/iiif/{s}/search?q=fleurs").get_json()
    assert first["id"] == base + "&page=1" and len(first["items"]) == 2 and first["startIndex"] == 0
    assert first["partOf"] == {"id": base, "type": "AnnotationCollection", "total": 3,
                               "first": {"id": base + "&page=1", "type": "AnnotationPage"},
                               "last": {"id": base + "&page=2", "type": "AnnotationPage"}}
    assert first["next"] == {"id": base + "&page=2", "type": "AnnotationPage"} and "prev" not in first
    second = client.get(first["next"]["id"]).get_json()
    assert len(second["items"]) == 1 and second["startIndex"] == 2 and "next" not in second
    assert second["prev"] == {"id": base + "&page=1", "type": "AnnotationPage"}
    assert {i["id"] for i in first["items"]}.isdisjoint(i["id"] for i in second["items"])
    v1 = client.get(f"/paged/iiif/{s}/search1?q=fleurs&page=2").get_json()
    assert v1["prev"] == f"http://localhost/paged/iiif/{s}/search1?q=fleurs&page=1" and v1["startIndex"] == 2
    assert client.get(f"/paged/iiif/{s}/search?q=fleurs&page=3").status_code == 404


def test_served_search_motivation_ignored_and_empty_query(app, vogue):
    s, _, regions = vogue
    client = app.test_client()
    out = client.get(f"/bookidx/iiif/{s}/search?q=fleurs&motivation=commenting&user=https://u.org/1&date=x").get_json()
    assert len(out["items"]) == 1 and out["items"][0]["motivation"] == "commenting"
    assert out["ignored"] == ["date", "user"]
    assert out["id"].endswith("?q=fleurs&motivation=commenting")  # ignored parameters dropped from the id
    assert client.get(f"/bookidx/iiif/{s}/search?q=fleurs&motivation=painting").get_json()["items"] == []
    everything = client.get(f"/bookidx/iiif/{s}/search").get_json()  # no q: no restriction
    assert len(everything["items"]) == len(regions)


@pytest.mark.parametrize("path, status", [
    ("annotations/x", 404),
    ("annotations/-1", 404),
    ("annotations/%D9%A1", 404),  # an Arabic-Indic one: a digit to str.isdigit, not a canvas index
    ("annotations/" + "9" * 5000, 404),
    ("annotations/999", 404),
    ("search?q=fleurs&page=9", 404),
    ("search1?page=x", 400),
])
def test_iiif_errors_are_json_readable_from_any_origin(app, vogue, path, status):
    s, _, _ = vogue
    r = app.test_client().get(f"/bookidx/iiif/{s}/{path}", headers={"Origin": "https://viewer.example"})
    assert r.status_code == status and r.mimetype == "application/json" and r.get_json()["error"] == status
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_an_unknown_manifest_is_json_readable_from_any_origin(app):
    r = app.test_client().get("/bookidx/iiif/0123456789abcdef/manifest.json")
    assert r.status_code == 404 and r.get_json()["parameter"] and r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.slow
def test_text_to_image_hits_join_keyword_hits(tmp_path):
    """With a text-capable model the best VISUAL_HITS images are listed too (tiny random CLIP)."""
    from tinymodels import tiny_model

    embedder = load_embedder(tiny_model("clip"))
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/m", "type": "Manifest",
           "items": [{"id": f"https://example.org/c{i}", "type": "Canvas", "width": 100, "height": 100, "items": []}
                     for i in range(15)]}
    regions = [Region(Page(f"https://example.org/c{i}", i, ImageRef(100, 100, service=f"https://example.org/iiif/{i}", api=3),
                           100, 100, manifest="https://example.org/m"),
                      Box(10, 10, 50, 50), "Illustration", caption="a ship" if i == 3 else "")
               for i in range(15)]
    index = Index.create_or_open(tmp_path, model_info=embedder.info, config=IndexConfig(model=embedder.model_id))
    index.add(regions, embedder.embed_images(stand_in_crops(regions)))
    index.commit()
    index.close()
    save_manifest(tmp_path, doc["id"], doc)
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(tmp_path), default_limit=50))
    client = app.test_client()
    out = client.get(f"/bookidx/iiif/{slug(doc['id'])}/search1?q=ship").get_json()
    assert VISUAL_HITS < len(regions)
    keys = [a["@id"] for a in out["resources"]]
    assert len(keys) in (VISUAL_HITS, VISUAL_HITS + 1)  # the keyword hit may also be a visual one
    ship = "https://example.org/c3"
    assert any(a["on"].startswith(ship + "#") for a in out["resources"])
    hit = next(h for h, a in zip(out["hits"], out["resources"]) if a["on"].startswith(ship + "#"))
    assert hit["match"] == "ship"
    nothing = client.get(f"/bookidx/iiif/{slug(doc['id'])}/search?q=zebra").get_json()
    assert len(nothing["items"]) == VISUAL_HITS and "annotations" not in nothing
