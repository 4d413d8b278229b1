"""``bookidx serve`` for real: waitress on 127.0.0.1, HTTP clients, many of them at once.

The server runs in a thread of the test process (so the ``test-pixels`` model registered in
conftest.py is there), on a free port, and is closed at the end.
"""

from __future__ import annotations

import io
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from bookidx.errors import ConfigError
from bookidx.web.serve import make_server, shutdown
from webindex import SHIP, TWIN_A, TWIN_B, crop


@pytest.fixture(scope="module")
def served(pixel_index):
    """A server whose fetch allow-list is its own crops, so image_url can be tried for real."""
    with socket.socket() as s:  # a free port, so the allow-list can name it before binding
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = make_server(
        str(pixel_index), "127.0.0.1", port, threads=6, max_upload_bytes=200_000,
        fetch_allowlist=[f"{base}/bookidx/crops/"],
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield base
    shutdown(server)
    thread.join(5)
    assert not thread.is_alive()


def test_root_redirects_to_the_search_page_and_the_api_answers(served):
    page = requests.get(served + "/", timeout=10)
    assert page.status_code == 200 and page.url == served + "/bookidx/" and "<bookidx-search" in page.text
    hits = requests.get(served + "/bookidx/api/search", params={"q": "ship"}, timeout=10).json()["hits"]
    assert hits[0]["caption"] == SHIP and hits[0]["thumbnail"].startswith(served + "/bookidx/crops/")
    thumb = requests.get(hits[0]["thumbnail"], timeout=10)
    assert thumb.headers["Content-Type"] == "image/jpeg" and Image.open(io.BytesIO(thumb.content)).size[0] == 256


def test_concurrent_clients_get_the_same_answers_as_one_client(served, regions):
    urls = [f"{served}/bookidx/api/items/{r.key}/similar?limit=5" for r in regions[:12]]
    urls += [f"{served}/bookidx/api/search?q={w}" for w in ("woodcut", "ship", "title", "map")]
    urls += [f"{served}/bookidx/api/items/{r.key}" for r in regions[::3]]
    with requests.Session() as s:
        expected = {u: s.get(u, timeout=10).json() for u in urls}

    def fetch(url):
        with requests.get(url, timeout=30) as r:
            return url, r.status_code, r.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(fetch, urls * 8))
    assert len(answers) == len(urls) * 8
    for url, status, body in answers:
        assert status == 200 and body == expected[url], url


def test_upload_over_http_and_its_limits(served, regions, chapbooks):
    buf = io.BytesIO()
    crop(regions[5], chapbooks).save(buf, "JPEG", quality=90)
    url = served + "/bookidx/api/search?limit=2"
    ok = requests.post(url, files={"image": ("q.jpg", buf.getvalue(), "image/jpeg")}, timeout=10)
    assert ok.status_code == 200 and ok.json()["hits"][0]["id"] == str(regions[5].key)
    big = requests.post(url, files={"image": ("big.bin", b"\xff" * 300_000, "image/jpeg")}, timeout=10)
    assert big.status_code == 413 and big.json()["error"] == 413

    def chunks():  # no Content-Length: the limit must hold while the form is parsed
        boundary = b"--b0undary\r\n"
        yield boundary + b'Content-Disposition: form-data; name="image"; filename="x.jpg"\r\n\r\n'
        for _ in range(30):
            yield b"\xff" * 10_000
        yield b"\r\n--b0undary--\r\n"

    chunked = requests.post(url, data=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b0undary"}, timeout=10)
    assert chunked.status_code == 413 and chunked.json()["error"] == 413


def test_image_url_is_fetched_only_under_the_allow_list(served, regions):
    a, b = (next(r for r in regions if r.source == name) for name in (TWIN_A, TWIN_B))
    own = f"{served}/bookidx/crops/{a.key}.jpg"
    found = requests.get(served + "/bookidx/api/search", params={"image_url": own, "limit": 2}, timeout=20).json()
    assert [h["id"] for h in found["hits"]] == [str(a.key), str(b.key)]
    for outside in (f"{served}/bookidx/api/stats", "http://169.254.169.254/latest/meta-data/"):
        refused = requests.get(served + "/bookidx/api/search", params={"image_url": outside}, timeout=10)
        assert refused.status_code == 400 and refused.json()["parameter"] == "image_url"
    gone = requests.get(served + "/bookidx/api/search", params={"image_url": f"{served}/bookidx/crops/1.jpg"}, timeout=10)
    assert gone.status_code == 502 and "404" in gone.json()["detail"]


def test_a_wrong_index_path_fails_at_start_not_on_the_first_visitor(tmp_path):
    with pytest.raises(ConfigError, match="not a bookidx index"):
        make_server(str(tmp_path), "127.0.0.1", 0)
