"""``rerank`` in the web API: geometric re-ranking of image queries (rerank.py) over HTTP.

The index is webindex.py's: 20 real NLS chapbook woodcuts embedded with the crude ``test-pixels``
model, plus two regions on a IIIF server that cannot be reached. Queries are distorted copies
(crop, rotation, per-axis scaling: distort.py) of one woodcut, which that model ranks anywhere
from 1st to 22nd; re-ranking must bring the true one first, read candidates only from the
index's own sources, page consistently, and refuse what it cannot do with a 400 naming ``rerank``.
"""

from __future__ import annotations

import io
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import jsonschema
import pytest
import referencing
from bookidx.distort import Distortion
from bookidx.embed import load_embedder
from bookidx.errors import SourceError
from bookidx.store import Hit
from bookidx.web import create_blueprint
from flask import Flask
from PIL import Image
from webindex import IIIF_SERVICE, TWIN_A, TWIN_B, crop

#: Strong but within the protocol's bounds: 5-14 % cut per side, 8° turn, 15 % narrower, 10 % taller.
DISTORTION = Distortion(0.1, 0.12, 0.05, 0.14, angle=-8.0, scale_x=0.85, scale_y=1.1)
#: The woodcut the test-pixels model ranks last (22nd) for its distorted copy.
FAR = "104820870.3.jpg"
#: One it ranks 7th.
SEVENTH = "106034987.3.jpg"


@pytest.fixture(scope="module")
def cv2():
    return pytest.importorskip("cv2")


def make_app(pixel_index, **config) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    app.register_blueprint(create_blueprint(str(pixel_index), **config))
    return app


@pytest.fixture(scope="module")
def client(pixel_index, cv2):
    """One app for the module, as a server is: its re-ranker's cache warms up across tests."""
    return make_app(pixel_index).test_client()


def key_of(regions, name: str) -> str:
    return str(next(r.key for r in regions if r.source == name))


def query_jpeg(regions, chapbooks, name: str) -> bytes:
    """A distorted copy of the woodcut from page ``name``, as a visitor's photo would be."""
    region = next(r for r in regions if r.source == name)
    buf = io.BytesIO()
    DISTORTION.apply(crop(region, chapbooks)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def declared(client, method: str) -> dict[str, dict]:
    """The parameters the OpenAPI document declares for ``method`` /api/search, by name."""
    doc = client.get("/bookidx/openapi.json").get_json()
    parameters = doc["paths"]["/api/search"][method]["parameters"]
    return {p["name"]: p for p in (doc["components"]["parameters"][r["$ref"].rsplit("/", 1)[1]] for r in parameters)}


def post(client, jpeg: bytes, query: str = ""):
    return client.post(f"/bookidx/api/search?{query}", data={"image": (io.BytesIO(jpeg), "photo.jpg")})


def validate(client, body: dict, component: str = "SearchResponse") -> None:
    doc = client.get("/bookidx/openapi.json").get_json()
    registry = referencing.Registry().with_resource("urn:openapi", referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012))
    jsonschema.Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry).validate(body)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [h["id"] for h in response.get_json()["hits"]]


# -- re-ranking --------------------------------------------------------------------------------


def files(folder) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_rerank_puts_the_true_woodcut_first_and_says_how_sure(client, pixel_index, regions, chapbooks):
    jpeg, true = query_jpeg(regions, chapbooks, FAR), key_of(regions, FAR)
    plain = post(client, jpeg, "limit=22").get_json()
    before = files(pixel_index)  # after the index was opened (SQLite's -wal and -shm files)
    assert [h["id"] for h in plain["hits"]].index(true) == 21  # the embedding alone: last of 22
    assert all(h["inliers"] is None for h in plain["hits"])

    answer = post(client, jpeg, "limit=5&rerank=true")
    body = answer.get_json()
    assert answer.status_code == 200, body
    validate(client, body)
    first, *rest = body["hits"]
    assert first["id"] == true and first["inliers"] >= 50  # docs/quality.md: a page and its copy share >= 59
    assert all(h["inliers"] < 12 for h in rest)  # others: checked, not the same picture
    assert body["mode"] == "vector" and body["query"] == {"rerank": "true"} and body["more"] is True
    # Scores stay the embedding's: re-ranking re-orders, it does not re-score.
    assert first["score"] == next(h["score"] for h in plain["hits"] if h["id"] == true)
    assert files(pixel_index) == before  # no fetch cache or anything else written into the index


def test_unverified_hits_keep_the_embedding_order_and_unreadable_ones_are_not_checked(client, regions, chapbooks):
    jpeg, true = query_jpeg(regions, chapbooks, FAR), key_of(regions, FAR)
    plain = post(client, jpeg, "limit=22").get_json()["hits"]
    hits = post(client, jpeg, "limit=22&rerank=1").get_json()["hits"]
    assert [h["id"] for h in hits] == [true] + [h["id"] for h in plain if h["id"] != true]
    # The two IIIF regions' server cannot be reached: not checked (null), still in their place.
    unreadable = [h for h in hits if h["thumbnail"].startswith(IIIF_SERVICE)]
    assert len(unreadable) == 2 and all(h["inliers"] is None for h in unreadable)
    assert all(isinstance(h["inliers"], int) for h in hits if h not in unreadable)


def test_pages_of_a_reranked_search_are_slices_of_one_ranking(client, pixel_index, regions, chapbooks):
    jpeg = query_jpeg(regions, chapbooks, FAR)
    whole = ids(post(client, jpeg, "limit=9&rerank=true"))
    pages = [ids(post(client, jpeg, f"limit=3&page={n}&rerank=true")) for n in (1, 2, 3)]
    assert whole[0] == key_of(regions, FAR) and [i for page in pages for i in page] == whole and len(set(whole)) == 9
    # Pages that end past the depth check no more hits than the first page did, so the ranking
    # is the same on every page: the woodcut the model ranks 7th stays 7th, unchecked, when only
    # 5 are checked (checking each page down to its end would move it first on page 3 only).
    shallow = make_app(pixel_index, rerank_depth=5).test_client()
    jpeg = query_jpeg(regions, chapbooks, SEVENTH)
    whole = post(shallow, jpeg, "limit=9&rerank=true").get_json()["hits"]
    pages = [ids(post(shallow, jpeg, f"limit=3&page={n}&rerank=true")) for n in (1, 2, 3)]
    assert [i for page in pages for i in page] == [h["id"] for h in whole]
    assert whole[6]["id"] == key_of(regions, SEVENTH) and whole[6]["inliers"] is None


def test_only_the_first_depth_hits_are_checked(pixel_index, cv2, regions, chapbooks):
    client = make_app(pixel_index, rerank_depth=5).test_client()
    jpeg, true = query_jpeg(regions, chapbooks, FAR), key_of(regions, FAR)
    hits = post(client, jpeg, "limit=22&rerank=true").get_json()["hits"]
    # Ranked 22nd by the embedding, so past the depth: not checked, not moved.
    assert hits[-1]["id"] == true and all(h["inliers"] is None for h in hits[5:])
    assert all(h["inliers"] is not None for h in hits[:5] if not h["thumbnail"].startswith(IIIF_SERVICE))
    doc = client.get("/bookidx/openapi.json").get_json()
    assert "first 5 hits" in doc["components"]["parameters"]["rerank"]["description"]


def test_collapse_keeps_the_verified_member_of_a_group(client, regions, chapbooks):
    jpeg, a, b = query_jpeg(regions, chapbooks, TWIN_A), key_of(regions, TWIN_A), key_of(regions, TWIN_B)
    # The reprinted twin looks closer to the model, so collapsing alone shows the group as B...
    assert ids(post(client, jpeg, "limit=4&collapse=true"))[0] == b
    # ...re-ranking first checks both, and the group is shown by the page itself.
    found = ids(post(client, jpeg, "limit=4&collapse=true&rerank=true"))
    assert found[0] == a and b not in found and len(found) == 4


def test_a_collapsed_page_within_the_depth_checks_the_candidates_once(pixel_index, regions, chapbooks):
    # 22 items (21 groups), depth 100: the first read covers everything, so collapsing must not
    # read again though the page (22) is not full
    # (each read would re-check every candidate and spend the query's budget again).
    from bookidx.rerank import Reranker, search
    from bookidx.search import Query

    calls = []

    class Counting(Reranker):
        def check(self, image, hits, depth=None, *, deadline=None):
            calls.append(len(hits))
            return super().check(image, hits, depth, deadline=deadline)

    from bookidx.crops import CropReader
    from bookidx.fetch import Fetcher
    from bookidx.store import Index

    photo = Image.open(io.BytesIO(query_jpeg(regions, chapbooks, TWIN_A)))
    with Fetcher(retries=0) as fetcher, Index.open(pixel_index) as idx:
        reranker = Counting(CropReader(fetcher, max_side=384), depth=100)
        checked = search(idx, Query(image=photo, limit=22, collapse=True), load_embedder("test-pixels"), reranker)
    assert calls == [22] and checked[0].hit.key == int(key_of(regions, TWIN_A))


# -- image URLs: the query is fetched, candidates never are from the client's host -------------


class _Photo(BaseHTTPRequestHandler):
    jpeg: ClassVar[bytes] = b""
    paths: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.jpeg)))
        self.end_headers()
        self.wfile.write(self.jpeg)

    def log_message(self, *args):
        pass


@pytest.fixture()
def photo_server(regions, chapbooks):
    _Photo.jpeg, _Photo.paths = query_jpeg(regions, chapbooks, FAR), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Photo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/photos/"
    server.shutdown()
    server.server_close()


def test_rerank_an_image_url_with_a_next_link_and_one_fetch(pixel_index, cv2, regions, photo_server):
    client = make_app(pixel_index, fetch_allowlist=[photo_server]).test_client()
    answer = client.get(f"/bookidx/api/search?image_url={photo_server}q.jpg&rerank=true&limit=2")
    body = answer.get_json()
    assert answer.status_code == 200, body
    validate(client, body)
    assert body["hits"][0]["id"] == key_of(regions, FAR) and body["query"]["rerank"] == "true"
    assert "rerank=true" in body["next"]
    assert ids(client.get(body["next"])) == ids(client.get(f"/bookidx/api/search?image_url={photo_server}q.jpg&rerank=true&limit=4"))[2:]
    # Three searches, three fetches of the query image, and nothing else asked of that host:
    # the candidates' pixels came from the index's own page files.
    assert _Photo.paths == ["/photos/q.jpg"] * 3
    get_params = declared(client, "get")
    assert get_params["rerank"]["schema"] == {"type": "boolean", "default": False} and "image_url" in get_params


# -- what it refuses ---------------------------------------------------------------------------


def test_rerank_without_a_query_image_is_a_400_naming_it(client, regions):
    for url in ("/bookidx/api/search?q=ship&rerank=true",
                f"/bookidx/api/search?similar={key_of(regions, FAR)}&rerank=true"):
        answer = client.get(url)
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "rerank"
        assert "query image" in answer.get_json()["detail"]
    # Not a boolean, or given twice: also the rerank field's fault.
    for query in ("rerank=yes", "rerank=true&rerank=false"):
        answer = post(client, b"not read", query)
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "rerank"
    # rerank=false is what no rerank means.
    assert client.get("/bookidx/api/search?q=ship&mode=keyword&rerank=false").status_code == 200


def test_depth_zero_turns_rerank_off_with_a_400_that_says_so(pixel_index, regions, chapbooks):
    client = make_app(pixel_index, BOOKIDX_RERANK_DEPTH=0).test_client()
    jpeg = query_jpeg(regions, chapbooks, FAR)
    answer = post(client, jpeg, "rerank=true")
    assert answer.status_code == 400 and answer.get_json()["parameter"] == "rerank"
    assert "BOOKIDX_RERANK_DEPTH" in answer.get_json()["detail"]
    assert post(client, jpeg).status_code == 200  # the rest of image search is unaffected
    for method in ("get", "post"):  # declared, with only false allowed and the reason given
        rerank = declared(client, method)["rerank"]
        assert rerank["schema"]["const"] is False and "BOOKIDX_RERANK_DEPTH is 0" in rerank["description"]


def test_without_opencv_rerank_is_a_clear_400_and_the_rest_works(pixel_index, regions, chapbooks, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now fails, as on a server without it
    client = make_app(pixel_index).test_client()
    jpeg = query_jpeg(regions, chapbooks, FAR)
    answer = post(client, jpeg, "rerank=true")
    assert answer.status_code == 400 and answer.get_json()["parameter"] == "rerank"
    assert "OpenCV" in answer.get_json()["detail"]
    assert len(ids(post(client, jpeg, "limit=3"))) == 3
    rerank = declared(client, "post")["rerank"]
    assert rerank["schema"]["const"] is False and "OpenCV" in rerank["description"]


# -- one re-ranker per collection, shared by threads -------------------------------------------


def test_concurrent_reranked_searches_share_one_reranker_and_agree(pixel_index, cv2, regions, chapbooks, monkeypatch):
    import bookidx.rerank

    built = []

    class Counted(bookidx.rerank.Reranker):
        def __init__(self, *args, **kwargs):
            built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bookidx.rerank, "Reranker", Counted)
    names = [FAR, TWIN_A, "106034987.3.jpg", "107119319.3.jpg"]
    jpegs = {name: query_jpeg(regions, chapbooks, name) for name in names}
    app = make_app(pixel_index)
    results: dict[str, list[list[str]]] = {name: [] for name in names}
    start = threading.Barrier(len(names))

    def search(name: str) -> None:
        client = app.test_client()
        start.wait()  # all at once, so they race to build the re-ranker and fill its cache
        for _ in range(3):
            results[name].append(ids(post(client, jpegs[name], "limit=6&rerank=true")))

    threads = [threading.Thread(target=search, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1
    assert app.extensions["bookidx"]["bookidx"].reranker is built[0]
    client = app.test_client()
    for name in names:
        alone = ids(post(client, jpegs[name], "limit=6&rerank=true"))
        assert alone[0] == key_of(regions, name) and results[name] == [alone] * 3


def test_an_unreadable_candidate_is_not_read_again_by_every_query(cv2, regions, chapbooks):
    from bookidx.rerank import Reranker

    class DownServer:
        max_side = 384
        reads = 0

        def read(self, region):
            type(self).reads += 1
            raise SourceError("connection refused", region.source)

    hits = [Hit(r.key, 0.5, r) for r in regions[:4]]
    photo = Image.open(io.BytesIO(query_jpeg(regions, chapbooks, FAR)))
    reranker = Reranker(DownServer(), depth=4)
    assert reranker.check(photo, hits) == [None] * 4 and reranker.check(photo, hits) == [None] * 4
    assert DownServer.reads == 4  # once each, not once per query
    retrying = Reranker(DownServer(), depth=4, retry_seconds=0, workers=3)
    retrying.check(photo, hits)
    retrying.check(photo, hits)
    assert DownServer.reads == 12


def test_candidates_not_read_within_the_budget_are_answered_unchecked(cv2, regions, chapbooks):
    # An image server that answers, but slowly: a query must not wait for it, must not leave
    # threads piling up behind it, and must not read again what another query is reading.
    from bookidx.rerank import Reranker

    release = threading.Event()
    started = []

    class SlowServer:
        max_side = 384

        def read(self, region):
            started.append(region.key)
            release.wait(10)
            return crop(region, chapbooks)

    hits = [Hit(r.key, 0.5, r) for r in regions[:8]]
    photo = Image.open(io.BytesIO(query_jpeg(regions, chapbooks, FAR)))
    with Reranker(SlowServer(), depth=8, workers=2, budget=0.2) as reranker:
        try:
            assert reranker.check(photo, hits) == [None] * 8
            assert len(started) == 2  # the two running reads; the six waiting were cancelled
            for _ in range(5):  # more queries while those two still hang: no new threads
                assert reranker.check(photo, hits) == [None] * 8
            assert len(started) == 2
            assert len(reranker._pool._threads) == 2  # one pool per re-ranker, ``workers`` threads
        finally:
            release.set()
        # The two slow reads finished in the background and filled the cache for later queries.
        for _ in range(100):
            if len(reranker._cache) == 2:
                break
            threading.Event().wait(0.05)
        counts = reranker.check(photo, hits[:2])
        assert all(n is not None for n in counts)

    # One candidate missing from a warm cache: the budget still holds (it took the read's time).
    release.clear()
    started.clear()
    with Reranker(SlowServer(), depth=8, workers=4, budget=0.2) as warm:
        warm._cache.update({h.key: warm.features(crop(h.region, chapbooks)) for h in hits[:7]})
        try:
            counts = warm.check(photo, hits)
            assert counts[7] is None and all(n is not None for n in counts[:7]) and len(started) == 1
        finally:
            release.set()
    with pytest.raises(Exception, match="budget > 0"):
        Reranker(SlowServer(), budget=0)


def test_a_candidate_whose_decoder_fails_is_unchecked_not_a_500(cv2, regions, chapbooks):
    from bookidx.rerank import Reranker

    class BrokenDecoder:
        max_side = 384
        reads = 0

        def read(self, region):
            type(self).reads += 1
            raise ValueError("a decoder bug")

    hits = [Hit(r.key, 0.5, r) for r in regions[:3]]
    photo = Image.open(io.BytesIO(query_jpeg(regions, chapbooks, FAR)))
    for workers, budget in ((1, None), (3, 5.0)):
        BrokenDecoder.reads = 0
        with Reranker(BrokenDecoder(), depth=3, workers=workers, budget=budget) as reranker:
            assert reranker.check(photo, hits) == [None] * 3 and reranker.check(photo, hits) == [None] * 3
        assert BrokenDecoder.reads == 3  # and left alone for retry_seconds, as an unreadable one
