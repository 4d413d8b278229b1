"""``bookidx serve`` as an attacker sees it: a real waitress server on 127.0.0.1 (issue 7).

* Nothing writes: every route is GET (and HEAD/OPTIONS) except ``POST /api/search``, which
  only reads; PUT/PATCH/DELETE are refused everywhere, the server holds the index read-only, and
  a hundred uploads leave the index files unchanged. There being no write endpoint, there is no
  token to check; an indexer can write the same index while it is served.
* Uploads are bounded in bytes (413 before decoding; chunked bodies too) and in pixels (a
  100-byte PNG declaring 50000 x 50000 is a 413, answered at once).
* No URL a client names is fetched unless the operator allow-listed it: not by default, not
  outside the prefix (userinfo, look-alike hosts, dot segments, encoded dot segments, other
  schemes), not through a redirect out of the prefix. A probe server counts what reaches it.
* No route reads outside its folder: raw, unnormalised paths with ``..``, ``%2e%2e``, ``%2f``,
  backslashes, NUL and absolute paths into every variable route (crops, items, IIIF slugs and
  canvases, static files) never return the index's files or the package's source.
* CORS is off by default and answers only the configured origins.
"""

from __future__ import annotations

import http.client
import io
import socket
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from PIL import Image

from bookidx.embed import load_embedder
from bookidx.store import Index
from bookidx.web.serve import create_app, make_server, shutdown
from webindex import build_index, chapbook_regions, crop

UPLOAD_LIMIT = 200_000


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, chapbooks):
    path = tmp_path_factory.mktemp("secure") / "idx"
    build_index(path, chapbooks, load_embedder("test-pixels"), chapbook_regions(chapbooks, n=6))
    return path


class Probe(ThreadingHTTPServer):
    """Records every request; ``/ok/redirect-out`` redirects to ``/secret`` (outside /ok/)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ProbeHandler)
        self.paths: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProbeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.paths.append(self.path)
        if self.path == "/ok/redirect-out":
            self.send_response(302)
            self.send_header("Location", "/secret")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = png(64, 64)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def probe():
    srv = Probe()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def serve(index_dir, **config):
    """A running ``bookidx serve`` (waitress) on a free port; yields its base URL."""
    server = make_server(str(index_dir), "127.0.0.1", 0, threads=4, **config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.effective_port}"


@pytest.fixture(scope="module")
def served(index_dir, probe):
    """Default settings except a small upload limit and an allow-list of the probe's /ok/."""
    server, thread, base = serve(index_dir, max_upload_bytes=UPLOAD_LIMIT, fetch_allowlist=[f"{probe.base}/ok/"])
    yield base
    shutdown(server)
    thread.join(5)


@pytest.fixture(scope="module")
def plain(index_dir):
    """``bookidx serve`` with every default."""
    server, thread, base = serve(index_dir)
    yield base
    shutdown(server)
    thread.join(5)


def png(width: int, height: int, full: bool = True) -> bytes:
    """A real PNG, or (full=False) just a header declaring width x height and one row of data."""
    if full:  # a gradient: a flat grey has no direction for the test-pixels model
        buf = io.BytesIO()
        Image.linear_gradient("L").resize((width, height)).save(buf, "PNG")
        return buf.getvalue()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def post_image(base: str, data: bytes, **kw) -> requests.Response:
    return requests.post(f"{base}/bookidx/api/search", files={"image": ("q.png", data, "image/png")}, timeout=20, **kw)


# -- nothing writes ------------------------------------------------------------------------------


def test_the_only_non_get_route_is_the_read_only_image_search(index_dir):
    app = create_app(str(index_dir))
    methods = {rule.rule: rule.methods - {"HEAD", "OPTIONS"} for rule in app.url_map.iter_rules()}
    writing = {rule: m - {"GET"} for rule, m in methods.items() if m - {"GET"}}
    assert writing == {"/bookidx/api/search": {"POST"}}, writing


def test_no_route_accepts_put_patch_or_delete(served, index_dir):
    app = create_app(str(index_dir))
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<item_id>", "1").replace("<slug>", "0123456789abcdef").replace("<int:canvas>", "0")
        path = path.replace("<path:filename>", "bookidx.js")
        for method in ("PUT", "PATCH", "DELETE"):
            r = requests.request(method, served + path, timeout=10)
            assert r.status_code == 405, (method, path, r.status_code)


def test_the_server_holds_the_index_read_only_and_searching_changes_nothing(served, index_dir, chapbooks):
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in index_dir.iterdir() if p.is_file()}
    regions = chapbook_regions(chapbooks, n=6)
    query = io.BytesIO()
    crop(regions[0], chapbooks).save(query, "JPEG")
    for _ in range(50):
        assert post_image(served, query.getvalue()).status_code == 200
        assert requests.get(f"{served}/bookidx/api/search", params={"q": "woodcut"}, timeout=10).status_code == 200
    after = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in index_dir.iterdir() if p.is_file()}
    assert after == before
    # the server took no writer lock: an indexer can add to the index it serves
    writer = Index.open(index_dir, readonly=False)
    writer.close()


# -- uploads -------------------------------------------------------------------------------------


def test_uploads_over_the_byte_limit_are_413_before_decoding(served):
    r = post_image(served, b"\xff\xd8\xff" + bytes(UPLOAD_LIMIT + 10))
    assert r.status_code == 413 and r.json()["parameter"] == "image"

    def chunked():
        for _ in range(40):
            yield bytes(10_000)

    r = requests.post(f"{served}/bookidx/api/search", data=chunked(), timeout=20,
                      headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413
    # far over: waitress refuses it itself, before the app sees any of it
    r = requests.post(f"{served}/bookidx/api/search", data=bytes(3 * UPLOAD_LIMIT + 100_000), timeout=20,
                      headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413


@pytest.mark.parametrize("width, height", [(8000, 6000), (20000, 20000), (50000, 50000)])
def test_pixel_bombs_are_413_without_decoding(plain, width, height):
    data = png(width, height, full=False)
    assert len(data) < 100_000
    t0 = time.monotonic()
    r = post_image(plain, data)
    assert r.status_code == 413 and r.json()["parameter"] == "image", r.text
    assert time.monotonic() - t0 < 2  # refused from the header: 2.5 G pixels were never decoded


def test_garbage_uploads_are_400(plain):
    for data in (b"", b"GIF89a" + bytes(20), b"\x89PNG\r\n\x1a\n" + bytes(40), b"<svg onload=alert(1)/>"):
        r = post_image(plain, data)
        assert r.status_code == 400 and r.json()["parameter"] == "image", (data[:10], r.text)


# -- client-named URLs ---------------------------------------------------------------------------


def test_no_url_is_fetched_without_an_allow_list(plain, probe):
    before = len(probe.paths)
    for url in (f"{probe.base}/ok/a.png", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
        r = requests.get(f"{plain}/bookidx/api/search", params={"image_url": url}, timeout=10)
        assert r.status_code == 400 and r.json()["parameter"] == "image_url"
    assert len(probe.paths) == before


def test_only_urls_under_the_allowed_prefix_are_fetched(served, probe):
    port = probe.server_address[1]
    refused = [
        f"{probe.base}/secret",
        f"{probe.base}/okay/a.png",
        f"{probe.base}/ok/../secret",
        f"{probe.base}/ok/%2e%2e/secret",
        f"{probe.base}/ok%2f..%2fsecret",
        f"http://127.0.0.1:{port}@127.0.0.2:{port}/ok/a.png",
        f"http://localhost:{port}/ok/a.png",
        f"https://127.0.0.1:{port}/ok/a.png",
        f"ftp://127.0.0.1:{port}/ok/a.png",
        "file:///ok/a.png",
    ]
    before = len(probe.paths)
    for url in refused:
        r = requests.get(f"{served}/bookidx/api/search", params={"image_url": url}, timeout=10)
        assert r.status_code == 400 and r.json()["parameter"] == "image_url", (url, r.text)
    assert probe.paths[before:] == []
    ok = requests.get(f"{served}/bookidx/api/search", params={"image_url": f"{probe.base}/ok/a.png"}, timeout=10)
    assert ok.status_code == 200 and probe.paths[before:] == ["/ok/a.png"]
    out = requests.get(f"{served}/bookidx/api/search", params={"image_url": f"{probe.base}/ok/redirect-out"},
                       timeout=10)
    assert out.status_code == 400 and probe.paths[before + 1:] == ["/ok/redirect-out"]  # /secret never asked


# -- path traversal ------------------------------------------------------------------------------

TRAVERSALS = [
    "..", "../..", "..%2f..%2fbookidx.json", "%2e%2e/%2e%2e/meta.sqlite", "%2e%2e%2f%2e%2e%2fmeta.sqlite",
    "..%5c..%5cbookidx.json", "..\\..\\bookidx.json", "%252e%252e%252fbookidx.json", "/etc/passwd",
    "%2fetc%2fpasswd", "....//....//bookidx.json", "bookidx.js%00.png", "../../web/__init__.py",
    "../__init__.py", "..%2f__init__.py", "%c0%ae%c0%ae/%c0%ae%c0%ae/bookidx.json",
]
ROUTES = ["/bookidx/crops/{}.jpg", "/bookidx/api/items/{}", "/bookidx/api/items/{}/similar",
          "/bookidx/iiif/{}/manifest.json", "/bookidx/iiif/{}/annotations/0", "/bookidx/iiif/{}/search",
          "/bookidx/iiif/0123456789abcdef/annotations/{}", "/bookidx/static/{}", "/bookidx/{}"]
SECRETS = (b"SQLite format 3", b'"schema"', b"def create_blueprint", b"root:", b"import ")


def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET exactly ``path``, unnormalised (requests and urllib3 would resolve dot segments)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("route", ROUTES)
def test_no_route_reads_outside_its_folder(plain, route):
    for attack in TRAVERSALS:
        status, body = raw_get(plain, route.format(attack))
        assert status in (301, 302, 308, 400, 404, 405), (route, attack, status)
        assert not any(secret in body for secret in SECRETS), (route, attack, body[:200])


def test_static_files_are_still_served(plain):
    status, body = raw_get(plain, "/bookidx/static/bookidx.js")
    assert status == 200 and b"customElements" in body


# -- CORS ----------------------------------------------------------------------------------------


def test_cors_is_off_by_default_and_only_for_configured_origins(plain, index_dir):
    evil = {"Origin": "https://evil.example"}
    for path in ("/bookidx/api/search?q=ship", "/bookidx/api/health", "/bookidx/api/items/1", "/bookidx/openapi.json"):
        r = requests.get(plain + path, headers=evil, timeout=10)
        assert "Access-Control-Allow-Origin" not in r.headers, path
    pre = requests.options(plain + "/bookidx/api/search", timeout=10,
                           headers={**evil, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in pre.headers and "Access-Control-Allow-Methods" not in pre.headers
    server, thread, base = serve(index_dir, cors_origins=["https://catalogue.example.org"])
    try:
        good = requests.get(base + "/bookidx/api/search?q=ship", timeout=10,
                            headers={"Origin": "https://catalogue.example.org"})
        assert good.headers["Access-Control-Allow-Origin"] == "https://catalogue.example.org"
        bad = requests.get(base + "/bookidx/api/search?q=ship", timeout=10, headers=evil)
        assert "Access-Control-Allow-Origin" not in bad.headers and "Origin" in bad.headers["Vary"]
    finally:
        shutdown(server)
        thread.join(5)


def test_a_slow_client_does_not_hold_up_the_others(plain):
    """A client that sends half a request and waits (slowloris) takes one connection, not the server."""
    host, port = plain.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        for s in idle:
            s.sendall(b"GET /bookidx/api/health HTTP/1.1\r\nHost: x\r\n")  # never finished
        t0 = time.monotonic()
        assert requests.get(plain + "/bookidx/api/health", timeout=10).status_code == 200
        assert time.monotonic() - t0 < 2
    finally:
        for s in idle:
            s.close()
