"""The blueprint through Flask's test client: JSON shapes, paging, filters, limits, errors,
CORS, several collections and apps in one process, the OpenAPI document, the example site.

Indexes are real (tests/webindex.py): 20 NLS chapbook woodcuts and two IIIF regions, embedded
with the ``test-pixels`` model, and the same regions with a tiny random SigLIP for text → image.
"""

from __future__ import annotations

import importlib.util
import io
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import referencing
from flask import Flask, url_for
from PIL import Image

from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.errors import ConfigError
from bookidx.store import Index
from bookidx.web import create_blueprint
from bookidx.web.images import allowed
from webindex import HORSE, SHIP, TWIN_A, TWIN_B, build_index, crop

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, chapbooks, regions):
    """A second collection: the last five regions only."""
    path = tmp_path_factory.mktemp("small") / "idx"
    build_index(path, chapbooks, load_embedder("test-pixels"), regions[-5:])
    return path


@pytest.fixture(scope="session")
def siglip_index(tmp_path_factory, chapbooks, regions):
    tinymodels = pytest.importorskip("tinymodels")
    model_dir = tinymodels.make_tiny_siglip(tmp_path_factory.mktemp("siglip"))
    path = tmp_path_factory.mktemp("siglip-index") / "idx"
    build_index(path, chapbooks, load_embedder(model_dir, device="cpu"), regions)
    return path


def make_app(*blueprints, **config) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, **config)
    for bp, prefix in blueprints:
        app.register_blueprint(bp, url_prefix=prefix)
    return app


@pytest.fixture()
def client(pixel_index):
    return make_app((create_blueprint(str(pixel_index)), None)).test_client()


def by_source(regions, name):
    return next(r for r in regions if r.source == name)


# -- the OpenAPI document validates what the views return ---------------------------------------


def validator(doc: dict, component: str) -> jsonschema.Draft202012Validator:
    registry = referencing.Registry().with_resource("urn:openapi", referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry)


@pytest.fixture()
def check(client):
    """check(response, "SearchResponse") -> the JSON body, after validating it against the doc."""
    doc = client.get("/bookidx/openapi.json").get_json()

    def check(response, component, status=200):
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        body = response.get_json()
        validator(doc, component).validate(body)
        return body

    return check


# -- search ------------------------------------------------------------------------------------


def test_keyword_search_finds_the_caption_and_hits_carry_what_a_viewer_needs(client, check, regions):
    body = check(client.get("/bookidx/api/search?q=ship&mode=keyword"), "SearchResponse")
    assert body["mode"] == "keyword" and body["query"] == {"q": "ship", "mode": "keyword"}
    hit = body["hits"][0]
    region = next(r for r in regions if r.caption == SHIP)
    assert hit["id"] == str(region.key) and hit["caption"] == SHIP
    assert hit["canvas"] == region.page.id and hit["manifest"] == "urn:test:m1"
    assert hit["region"] == {"x": 40, "y": 60, "w": 520, "h": 480} and hit["xywh"] == "40,60,520,480"
    assert hit["page"] == {"index": region.page.index, "label": region.page.label}
    assert hit["book"]["date"] == region.book.date and isinstance(hit["score"], float)
    assert hit["thumbnail"] == f"http://localhost/bookidx/crops/{region.key}.jpg"
    assert client.get(hit["links"]["self"]).get_json()["id"] == hit["id"]


def test_fused_is_keyword_when_the_model_has_no_text_encoder(client):
    body = client.get("/bookidx/api/search?q=horseman").get_json()
    assert body["mode"] == "keyword" and body["hits"][0]["caption"] == HORSE


def test_vector_text_search_needs_a_text_model(client, check):
    body = check(client.get("/bookidx/api/search?q=ship&mode=vector"), "Error", 400)
    assert body["parameter"] == "mode" and "text encoder" in body["detail"]


def test_similar_finds_the_reprinted_twin_and_never_the_item_itself(client, check, regions):
    a, b = by_source(regions, TWIN_A), by_source(regions, TWIN_B)
    body = check(client.get(f"/bookidx/api/items/{a.key}/similar?limit=5"), "SearchResponse")
    ids = [h["id"] for h in body["hits"]]
    assert ids[0] == str(b.key) and str(a.key) not in ids
    assert body["mode"] == "vector" and 0.5 < body["hits"][0]["score"] <= 1.0
    same = client.get(f"/bookidx/api/search?similar={a.key}&limit=5").get_json()
    assert [h["id"] for h in same["hits"]] == ids


def test_near_duplicates_are_grouped_and_collapse_to_one_hit(client, check, regions):
    a, b = by_source(regions, TWIN_A), by_source(regions, TWIN_B)
    item = check(client.get(f"/bookidx/api/items/{a.key}"), "Item")
    assert item["group"] == str(min(a.key, b.key)) and item["group_size"] == 2 and item["duplicates"] == [str(b.key)]
    alone = client.get(f"/bookidx/api/items/{regions[5].key}").get_json()
    assert alone["group"] is None and alone["group_size"] == 1 and alone["duplicates"] == []
    url = f"/bookidx/api/search?similar={regions[5].key}&limit=30"
    every = check(client.get(url), "SearchResponse")["hits"]
    twins = [h for h in every if h["id"] in (str(a.key), str(b.key))]
    assert len(every) == 21 and len(twins) == 2 and all(h["group_size"] == 2 for h in twins)
    collapsed = check(client.get(url + "&collapse=true"), "SearchResponse")["hits"]
    assert len(collapsed) == 20 and len([h for h in collapsed if h["group"] == item["group"]]) == 1
    assert client.get(url + "&collapse=yes").status_code == 400


def test_paging_follows_next_links_without_gaps_or_repeats(client, regions):
    url, seen, pages = "/bookidx/api/search?similar=%d&limit=4" % regions[0].key, [], 0
    while url:
        body = client.get(url).get_json()
        pages += 1
        assert body["page"] == pages and body["more"] == (body["next"] is not None)
        seen += [h["id"] for h in body["hits"]]
        url = body["next"]
    assert pages == 6 and len(seen) == len(set(seen)) == len(regions) - 1
    whole = client.get(f"/bookidx/api/search?similar={regions[0].key}&limit=21").get_json()
    assert [h["id"] for h in whole["hits"]] == seen and whole["next"] is None and whole["more"] is False


def test_the_last_page_the_depth_cap_allows_says_no_more(pixel_index, regions, chapbooks):
    # BOOKIDX_MAX_DEPTH 8 with at most 4 hits a page: page 2 is the last a client may ask for,
    # so neither a link nor "more" may invite page 3 (a 400), for GET and for an upload alike.
    client = make_app((create_blueprint(str(pixel_index), max_results=4, max_depth=8), None)).test_client()
    url = "/bookidx/api/search?similar=%d&limit=4" % regions[0].key
    assert client.get(url).get_json()["more"] is True
    last = client.get(url + "&page=2").get_json()
    assert last["more"] is False and last["next"] is None and len(last["hits"]) == 4
    assert client.get(url + "&page=3").status_code == 400
    upload = {"image": (io.BytesIO(jpeg(crop(regions[3], chapbooks))), "a.jpg")}
    posted = client.post("/bookidx/api/search?limit=4&page=2", data=upload).get_json()
    assert posted["more"] is False and len(posted["hits"]) == 4


def test_next_link_keeps_the_filters(client):
    body = client.get("/bookidx/api/search?q=woodcut&limit=2&manifest=urn:test:m2&kind=Illustration").get_json()
    assert "manifest=urn:test:m2" in body["next"] and "kind=Illustration" in body["next"] and "page=2" in body["next"]


@pytest.mark.parametrize("query, expect", [
    ("manifest=urn:test:m2", lambda h: h["manifest"] == "urn:test:m2"),
    ("kind=Map&kind=GraphicalElement", lambda h: h["kind"] in ("Map", "GraphicalElement")),
    ("date_from=1850&date_to=1899", lambda h: 1850 <= int(h["book"]["date"]) <= 1899),
    ("canvas=https://iiif.example.org/canvas/0", lambda h: h["canvas"] == "https://iiif.example.org/canvas/0"),
])
def test_filters_restrict_every_hit(client, regions, query, expect):
    body = client.get(f"/bookidx/api/search?similar={regions[5].key}&limit=50&{query}").get_json()
    assert body["hits"] and all(expect(h) for h in body["hits"])
    assert len(body["hits"]) < len(regions) - 1


@pytest.mark.parametrize("query, parameter", [
    ("q=x&limit=101", "limit"), ("q=x&limit=0", "limit"), ("q=x&limit=ten", "limit"),
    ("q=x&limit=1_0", "limit"), ("q=x&page=0", "page"), ("q=x&limit=1&page=21", "page"),
    ("q=x&mode=semantic", "mode"), ("q=x&date_from=1e3", "date_from"),
    ("q=x&w=2", "w"), ("similar=12abc", "similar"), ("similar=", "similar"), ("q=a&q=b", "q"), ("q=a&limit=", "limit"), ("q=a&mode=", "mode"), ("q=a&w=1&w=0", "w"), ("q=" + "a" * 501, "q"), ("q=a" + "%0C" * 500, "q"),
    ("image_url=https://example.org/a.jpg", "image_url"),
])
def test_bad_parameters_are_400_naming_the_parameter(client, check, query, parameter):
    body = check(client.get(f"/bookidx/api/search?{query}"), "Error", 400)
    assert body == {"error": 400, "detail": body["detail"], "parameter": parameter} and body["detail"]


@pytest.mark.parametrize("item_id", ["123", "abc", "99999999999999999999", "9223372036854775808"])
def test_unknown_items_are_json_404(client, check, item_id):
    for path in (f"/bookidx/api/items/{item_id}", f"/bookidx/api/items/{item_id}/similar", f"/bookidx/crops/{item_id}.jpg"):
        check(client.get(path), "Error", 404)


def test_parameters_are_checked_even_when_nothing_is_searched(client):
    assert client.get("/bookidx/api/search?collapse=maybe").get_json()["parameter"] == "collapse"
    assert client.get("/bookidx/api/search?limit=0").get_json()["parameter"] == "limit"


@pytest.mark.parametrize("query", ["", "q=+++", "image_url=", "q=&mode=keyword&kind=Illustration&collapse=true"])
def test_a_search_for_nothing_is_a_400_naming_q(client, check, query):
    """As the CLI refuses it: a client that lost its query hears so, not an empty page."""
    body = check(client.get(f"/bookidx/api/search?{query}"), "Error", 400)
    assert body["parameter"] == "q" and "similar" in body["detail"] and "image_url" in body["detail"]


def test_an_empty_date_range_finds_nothing(client, check):
    body = check(client.get("/bookidx/api/search?q=woodcut&date_from=1900&date_to=1800"), "SearchResponse")
    assert body["hits"] == [] and body["next"] is None and body["more"] is False


def test_similar_to_an_unknown_item_is_404(client, check):
    check(client.get("/bookidx/api/search?similar=123"), "Error", 404)


# -- items and crops ---------------------------------------------------------------------------


def test_item_details_in_canvas_coordinates_and_without_server_paths(client, check, regions):
    iiif = regions[-1]
    body = check(client.get(f"/bookidx/api/items/{iiif.key}"), "Item")
    assert body["box"] == {"x": 200, "y": 400, "w": 800, "h": 600}
    assert body["region"] == {"x": 100, "y": 200, "w": 400, "h": 300}  # canvas is half the image
    assert body["thumbnail"] == "https://iiif.example.org/iiif/2/page1/200,400,800,600/!256,192/0/default.jpg"
    assert body["image"]["service"] == iiif.page.image.service and body["book"]["creator"] == "Anon."
    local = client.get(f"/bookidx/api/items/{regions[0].key}").get_data(as_text=True)
    assert regions[0].page.image.path not in local and "/images/" not in local


def test_local_crops_are_served_small_and_cacheable(client, regions, chapbooks):
    url = f"/bookidx/crops/{regions[0].key}.jpg"
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "image/jpeg" and "max-age" in r.headers["Cache-Control"]
    image = Image.open(io.BytesIO(r.data))
    assert max(image.size) == 256 and image.size == (256, round(256 * 480 / 520))
    again = client.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and not again.data


def test_iiif_crops_redirect_to_the_image_server(client, regions):
    r = client.get(f"/bookidx/crops/{regions[-1].key}.jpg")
    assert r.status_code == 302 and r.headers["Location"].startswith("https://iiif.example.org/iiif/2/page1/200,400,800,600/")


def test_manifests_stats_health(client, check):
    manifests = check(client.get("/bookidx/api/manifests"), "Manifests")["manifests"]
    assert {m["id"]: m["count"] for m in manifests} == {"urn:test:m1": 10, "urn:test:m2": 10, "https://iiif.example.org/manifest.json": 2}
    stats = check(client.get("/bookidx/api/stats"), "Stats")
    assert stats["items"] == 22 and stats["model"]["model"] == "test-pixels"
    health = check(client.get("/bookidx/api/health"), "Health")
    assert health == {"status": "ok", "items": 22, "model": "test-pixels", "model_loaded": False}


# -- image queries -----------------------------------------------------------------------------


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_uploaded_image_finds_its_own_item_first(client, check, regions, chapbooks):
    data = jpeg(crop(regions[7], chapbooks))
    r = client.post("/bookidx/api/search?limit=3", data={"image": (io.BytesIO(data), "q.jpg")})
    body = check(r, "SearchResponse")
    assert body["hits"][0]["id"] == str(regions[7].key) and body["hits"][0]["score"] > 0.99
    assert body["mode"] == "vector" and body["next"] is None and body["more"] is True


@pytest.mark.parametrize("config, payload, status", [
    ({"max_upload_bytes": 5000}, "photo", 413),
    ({"max_upload_pixels": 1_000_000}, "big-png", 413),
    ({}, "text", 400),
    ({}, "none", 400),
])
def test_upload_limits_and_garbage(pixel_index, regions, chapbooks, config, payload, status):
    client = make_app((create_blueprint(str(pixel_index), **config), None)).test_client()
    big = io.BytesIO()
    Image.new("L", (2000, 2000)).save(big, "PNG")  # 4 Mpx in a few kB: the pixel limit must catch it
    files = {
        "photo": {"image": (io.BytesIO(jpeg(crop(regions[0], chapbooks))), "a.jpg")},
        "big-png": {"image": (io.BytesIO(big.getvalue()), "a.png")},
        "text": {"image": (io.BytesIO(b"not an image at all"), "a.jpg")},
        "none": {"q": "ship"},
    }[payload]
    r = client.post("/bookidx/api/search", data=files)
    assert r.status_code == status and r.get_json()["error"] == status and r.get_json()["parameter"] in ("image", None)


@pytest.mark.parametrize("url, prefix, ok", [
    ("https://iiif.example.org/iiif/a.jpg", "https://iiif.example.org/", True),
    ("https://iiif.example.org/iiif/a.jpg", "https://iiif.example.org/iiif/", True),
    ("https://IIIF.example.org/iiif/a.jpg", "https://iiif.example.org", True),
    ("https://iiif.example.org.evil.net/a.jpg", "https://iiif.example.org", False),
    ("https://iiif.example.org@evil.net/a.jpg", "https://iiif.example.org/", False),
    ("http://iiif.example.org/a.jpg", "https://iiif.example.org/", False),
    ("https://iiif.example.org:8443/a.jpg", "https://iiif.example.org/", False),
    ("https://iiif.example.org/iiifx/a.jpg", "https://iiif.example.org/iiif", False),
    ("https://iiif.example.org/iiif/../admin", "https://iiif.example.org/iiif/", False),
    ("https://iiif.example.org/iiif/%2e%2e/admin", "https://iiif.example.org/iiif/", False),
    ("file:///etc/passwd", "file:///", False),
])
def test_fetch_allowlist_matches_scheme_host_and_path(url, prefix, ok):
    assert allowed(url, prefix) is ok


def qoi_without_pixels() -> bytes:
    """A QOI header promising 4x4 pixels and no data: Pillow's decoder raises IndexError."""
    return b"qoif" + (4).to_bytes(4, "big") + (4).to_bytes(4, "big") + b"\x04\x00"


def im_with_a_fractional_size() -> bytes:
    """An IM header whose size is "4.*3": Pillow raises TypeError while opening it."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 3)).save(buf, "IM")
    return buf.getvalue().replace(b"4*3", b"4.*3", 1)


@pytest.mark.parametrize("payload", [qoi_without_pixels(), im_with_a_fractional_size()], ids=["qoi", "im"])
def test_corrupt_uploads_are_400_whatever_pillow_raises(client, check, payload):
    r = client.post("/bookidx/api/search", data={"image": (io.BytesIO(payload), "q.img")})
    assert check(r, "Error", 400)["parameter"] == "image"


class _BrokenImageServer(ThreadingHTTPServer):
    """Answers /gzip with a body that claims gzip and is not, /short with half its body."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _BrokenImageHandler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _BrokenImageHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/drip":  # alive, but one byte every 0.1 s: never done within a deadline
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "10000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:  # the client gave up, as it should
                pass
            self.close_connection = True
            return
        body = b"this is not gzip data" * 10
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        if self.path == "/gzip":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body) * (2 if self.path == "/short" else 1)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture()
def broken_images():
    server = _BrokenImageServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/gzip", "/short"])
def test_image_url_whose_body_cannot_be_read_is_502(pixel_index, broken_images, path):
    app = make_app((create_blueprint(str(pixel_index), fetch_allowlist=[broken_images.url("/")]), None))
    r = app.test_client().get("/bookidx/api/search", query_string={"image_url": broken_images.url(path)})
    assert r.status_code == 502 and r.get_json()["parameter"] == "image_url", r.get_data(as_text=True)


def test_image_url_that_drips_is_cut_at_the_deadline(pixel_index, broken_images, monkeypatch):
    # Each byte arrives well within the read timeout; only the total deadline ends the fetch,
    # so a slow-loris image server cannot hold a worker thread for ever.
    from bookidx.web import images

    monkeypatch.setattr(images, "DEADLINE", 0.5)
    app = make_app((create_blueprint(str(pixel_index), fetch_allowlist=[broken_images.url("/")]), None))
    r = app.test_client().get("/bookidx/api/search", query_string={"image_url": broken_images.url("/drip")})
    assert r.status_code == 502 and "deadline" in r.get_json()["detail"], r.get_data(as_text=True)


# -- text → image with a vision-language model -------------------------------------------------


def test_text_to_image_and_fusion_with_a_siglip_model(siglip_index, regions, chapbooks):
    client = make_app((create_blueprint(str(siglip_index)), None)).test_client()
    vector = client.get("/bookidx/api/search?q=a+ship+at+sea&mode=vector&limit=22").get_json()
    assert vector["mode"] == "vector" and len(vector["hits"]) == 22
    assert all(-1.0 <= h["score"] <= 1.0 for h in vector["hits"])
    fused = client.get("/bookidx/api/search?q=ship&limit=5").get_json()
    assert fused["mode"] == "fused"
    ship = str(next(r for r in regions if r.caption == SHIP).key)
    assert ship in [h["id"] for h in fused["hits"]]  # the keyword match survives fusion
    assert all(h["score"] <= 2 / 61 + 1e-9 for h in fused["hits"])  # RRF, k = 60
    data = jpeg(crop(regions[4], chapbooks))
    mixed = client.post("/bookidx/api/search?limit=3", data={"image": (io.BytesIO(data), "a.jpg"), "q": "ship", "w": "1"}).get_json()
    assert mixed["hits"][0]["id"] == str(regions[4].key)  # w = 1: the image alone
    assert client.get("/bookidx/api/health").get_json()["model_loaded"] is True


# -- collections, apps, settings ---------------------------------------------------------------


def test_two_apps_and_two_collections_in_one_process_do_not_leak(pixel_index, small_index, regions):
    books, maps = create_blueprint(str(pixel_index)), create_blueprint(str(small_index), name="maps", default_limit=3)
    app1 = make_app((books, None), (maps, None), BOOKIDX_DEFAULT_LIMIT=7)
    app2 = make_app((create_blueprint(str(small_index), name="maps"), "/x/maps"))
    c1, c2 = app1.test_client(), app2.test_client()
    assert c1.get("/bookidx/api/stats").get_json()["items"] == 22
    assert c1.get("/maps/api/stats").get_json()["items"] == 5
    assert c2.get("/x/maps/api/stats").get_json()["items"] == 5
    assert c2.get("/bookidx/api/stats").status_code == 404 and c2.get("/maps/api/stats").status_code == 404
    key = regions[-1].key
    assert c1.get(f"/bookidx/api/search?similar={key}").get_json()["limit"] == 7  # app config
    maps_hits = c1.get(f"/maps/api/search?similar={key}").get_json()
    assert maps_hits["limit"] == 3 and all(h["links"]["self"].startswith("http://localhost/maps/api/items/") for h in maps_hits["hits"])
    assert c2.get(f"/x/maps/api/search?similar={key}").get_json()["hits"][0]["links"]["self"].startswith("http://localhost/x/maps/")
    assert set(app1.extensions["bookidx"]) == {"bookidx", "maps"} and set(app2.extensions["bookidx"]) == {"maps"}
    assert app1.extensions["bookidx"]["maps"].index is not app2.extensions["bookidx"]["maps"].index
    with app2.test_request_context():
        assert url_for("maps.search") == "/x/maps/api/search"
        assert url_for("maps.static", filename="bookidx.js") == "/x/maps/static/bookidx.js"
    assert Flask("plain").test_client().get("/bookidx/api/search?q=x").status_code == 404


def test_one_blueprint_mounted_twice_under_two_names(pixel_index):
    bp = create_blueprint(str(pixel_index))
    app = make_app()
    app.register_blueprint(bp)
    app.register_blueprint(bp, name="again", url_prefix="/again")
    c = app.test_client()
    hit = c.get("/again/api/search?q=ship").get_json()["hits"][0]
    assert hit["links"]["self"].startswith("http://localhost/again/") and c.get(hit["links"]["self"]).status_code == 200
    assert set(app.extensions["bookidx"]) == {"bookidx", "again"}


def test_public_url_setting_builds_links(pixel_index):
    app = make_app((create_blueprint(str(pixel_index), public_url="https://library.example.org/"), "/search"))
    hit = app.test_client().get("/search/api/search?q=ship").get_json()["hits"][0]
    assert hit["links"]["self"].startswith("https://library.example.org/search/api/items/")


def test_unknown_settings_are_refused_at_once(pixel_index):
    with pytest.raises(ConfigError, match="max_result"):
        create_blueprint(str(pixel_index), max_result=5)


def test_missing_index_is_a_json_500_naming_the_setting(tmp_path):
    client = make_app((create_blueprint(str(tmp_path / "nothing")), None)).test_client()
    r = client.get("/bookidx/api/health")
    assert r.status_code == 500 and r.get_json()["parameter"] == "BOOKIDX_INDEX_PATH"


def test_a_concurrent_writer_is_picked_up_after_refresh_seconds(tmp_path, chapbooks, regions):
    embedder = load_embedder("test-pixels")
    build_index(tmp_path / "idx", chapbooks, embedder, regions[:3])
    live = make_app((create_blueprint(str(tmp_path / "idx"), refresh_seconds=0), None)).test_client()
    frozen = make_app((create_blueprint(str(tmp_path / "idx"), refresh_seconds=None), None)).test_client()
    for c in (live, frozen):
        assert len(c.get(f"/bookidx/api/search?similar={regions[0].key}").get_json()["hits"]) == 2
    writer = Index.create_or_open(tmp_path / "idx", model_info=embedder.info, config=IndexConfig(model="test-pixels"))
    try:
        writer.add(regions[3:6], embedder.embed_images([crop(r, chapbooks) for r in regions[3:6]]))
        writer.commit()
        assert len(live.get(f"/bookidx/api/search?similar={regions[0].key}").get_json()["hits"]) == 5
        assert len(frozen.get(f"/bookidx/api/search?similar={regions[0].key}").get_json()["hits"]) == 2
    finally:
        writer.close()


# -- CORS --------------------------------------------------------------------------------------


def test_cors_only_for_allowed_origins(pixel_index):
    app = make_app((create_blueprint(str(pixel_index), cors_origins=["https://catalogue.example.org"]), None))
    c = app.test_client()
    ok = c.get("/bookidx/api/search?q=ship", headers={"Origin": "https://catalogue.example.org"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://catalogue.example.org" and "Origin" in ok.headers["Vary"]
    other = c.get("/bookidx/api/search?q=ship", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers and "Origin" in other.headers["Vary"]
    error = c.get("/bookidx/api/items/1", headers={"Origin": "https://catalogue.example.org"})
    assert error.status_code == 404 and error.headers["Access-Control-Allow-Origin"]  # errors are readable too
    widget = c.get("/bookidx/static/bookidx.js", headers={"Origin": "https://catalogue.example.org"})
    assert widget.headers["Access-Control-Allow-Origin"]  # cross-origin ES module imports need it
    pre = c.options("/bookidx/api/search", headers={
        "Origin": "https://catalogue.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert pre.headers["Access-Control-Allow-Headers"] == "content-type"


def test_no_cors_headers_by_default(client):
    r = client.get("/bookidx/api/search?q=ship", headers={"Origin": "https://catalogue.example.org"})
    assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers


# -- OpenAPI, page, widget ---------------------------------------------------------------------


def test_openapi_describes_every_route_of_the_blueprint(client):
    doc = client.get("/bookidx/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": "http://localhost/bookidx"}]
    app = client.application
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("bookidx."):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix("/bookidx")).replace("{item_id}", "{id}")
        assert path in doc["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = doc["paths"][path][method.lower()]
            assert "200" in operation["responses"]
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert limit["maximum"] == 100 and limit["default"] == 24


def test_every_declared_search_parameter_works_together(client, regions):
    """Which parameters are declared, and their schemas, is test_openapi_params.py's; here a
    search using all of them at once finds the one item they all describe."""
    doc = client.get("/bookidx/openapi.json").get_json()
    names = {doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]["name"]
             for p in doc["paths"]["/api/search"]["get"]["parameters"]}
    values = {"q": "ship", "mode": "keyword", "w": "0.5", "limit": "3", "page": "1", "manifest": "urn:test:m1",
              "book": regions[2].book.id, "canvas": regions[2].page.id, "kind": "Illustration",
              "class": "", "date_from": "1700", "date_to": "1800", "collapse": "false",
              "similar": "", "image_url": "", "rerank": "false"}  # empty: absent (no image here)
    assert names == set(values)
    body = client.get("/bookidx/api/search", query_string={k: v for k, v in values.items() if k != "similar"}).get_json()
    assert [h["caption"] for h in body["hits"]] == [SHIP]


def test_image_url_pattern_is_the_allow_list(pixel_index):
    prefixes = ["https://iiif.example.org/iiif-2/", "https://img.example.net/"]
    app = make_app((create_blueprint(str(pixel_index), fetch_allowlist=prefixes), None))
    doc = app.test_client().get("/bookidx/openapi.json").get_json()
    schema = {"$ref": "urn:openapi#/components/parameters/image_url/schema"}
    registry = referencing.Registry().with_resource("urn:openapi", referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012))
    check = jsonschema.Draft202012Validator(schema, registry=registry).is_valid
    assert check("https://iiif.example.org/iiif-2/p1/full/max/0/default.jpg") and check("https://img.example.net/a.jpg")
    assert not check("https://iiif.example.org/iiif-3/x") and not check("https://iiif.example.orgX/iiif-2/")
    assert check("")  # the same as no image_url


def test_search_page_and_widget_are_served_under_the_prefix(client):
    page = client.get("/bookidx/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'src="/bookidx/static/bookidx.js"' in html and "<bookidx-search" in html
    js = client.get("/bookidx/static/bookidx.js")
    assert js.status_code == 200 and js.data == (ROOT / "plugin/bookidx/web/static/bookidx.js").read_bytes()
    missing = client.get("/bookidx/static/nothing.js")
    assert missing.status_code == 404 and missing.get_json()["error"] == 404


def test_example_site_mounts_two_collections(pixel_index, small_index):
    spec = importlib.util.spec_from_file_location("existing_site", ROOT / "examples/existing_site/app.py")
    site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site)
    app = site.create_app(str(pixel_index), str(small_index), TESTING=True)
    c = app.test_client()
    assert "Lauriston" in c.get("/").get_data(as_text=True)
    pictures = c.get("/pictures").get_data(as_text=True)
    assert 'src="/images/"' in pictures and "/images/static/bookidx.js" in pictures
    assert 'src="/maps/"' in c.get("/maps-search").get_data(as_text=True)
    assert c.get("/images/api/search?q=ship").get_json()["hits"][0]["caption"] == SHIP
    assert c.get("/maps/api/search?q=map").get_json()["limit"] == 12
    assert c.get("/maps/api/stats").get_json()["items"] == 5
