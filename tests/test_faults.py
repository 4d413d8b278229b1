"""The indexer against a IIIF image server that misbehaves (issue 7: faults).

A local IIIF Image API 2 server, scripted per image: 500s and 503s that clear, 429 with
``Retry-After``, bodies cut short, responses that stall past the read timeout, responses that
drip slowly but steadily, and images that stay broken (always 500, 404, always cut short, always
stalled). ``runner.index`` over a manifest of one canvas per image must retry the transient
faults with backoff (honouring ``Retry-After``), stay within ``per_host`` connections, record
each image that still failed with its reason, index all the others, and, once the server
recovers, complete the failed ones on the next run without touching the rest.
"""

from __future__ import annotations

import io
import json
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image, ImageDraw

from bookidx.config import IndexConfig
from bookidx.runner import index
from bookidx.store import Index

TIMEOUT = 1.0  # the indexer's read timeout in these tests (seconds)
RETRIES = 2  # so three attempts
PER_HOST = 3
WIDTH, HEIGHT = 600, 400

# identifier -> the server's answers to successive image requests (the last one repeats)
SCRIPTS = {
    "steady": [("ok",)],
    "flaky": [("status", 500), ("status", 503), ("ok",)],
    "ratelimited": [("status", 429, {"Retry-After": "1"}), ("ok",)],
    "truncated": [("truncate",), ("ok",)],
    "stalled": [("stall", 3 * TIMEOUT), ("ok",)],
    "slow": [("drip", 4, 0.6 * TIMEOUT)],  # 4 pieces, each 0.6 s apart: slow but alive
    "down": [("status", 500)],
    "gone": [("status", 404)],
    "broken": [("truncate",)],
    "hung": [("stall", 3 * TIMEOUT)],
}
RECOVERING = {"steady", "flaky", "ratelimited", "truncated", "stalled", "slow"}
FAILING = {"down": ("HTTP 500", "after 3 attempts"), "gone": ("HTTP 404",),
           "broken": ("body cut short", "after 3 attempts"), "hung": ("timed out", "after 3 attempts")}
_IMAGE = re.compile(r"^/iiif/(\w+)/(full|\d+,\d+,\d+,\d+)/(full|max|!?\d*,\d*)/0/default\.jpg$")


def page(identifier: str) -> Image.Image:
    """A distinct page per identifier: a picture whose shade and position depend on the name."""
    shade = sum(map(ord, identifier)) % 200
    img = Image.new("RGB", (WIDTH, HEIGHT), (240, 235, 220))
    draw = ImageDraw.Draw(img)
    x = 40 + shade % 200
    draw.rectangle((x, 60, x + 250, 300), fill=(shade, 255 - shade, 90))
    draw.ellipse((x + 30, 90, x + 130, 190), fill=(20, 20, 20))
    return img


class FaultyIIIF(ThreadingHTTPServer):
    """IIIF Image API 2 (regions x,y,w,h and full; sizes full, max, w,h and !w,h) with faults."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.scripts = {k: list(v) for k, v in SCRIPTS.items()}
        self.requests: dict[str, list[float]] = {}
        self.in_flight = self.max_in_flight = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/iiif"

    def heal(self) -> None:
        with self.lock:
            self.scripts = {k: [("ok",)] for k in SCRIPTS}
            self.requests.clear()

    def next_step(self, identifier: str) -> tuple:
        with self.lock:
            self.requests.setdefault(identifier, []).append(time.monotonic())
            steps = self.scripts.get(identifier, [("status", 404)])
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return steps.pop(0) if len(steps) > 1 else steps[0]

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients that gave up
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: FaultyIIIF
    protocol_version = "HTTP/1.1"  # keep-alive, as real image servers

    def log_message(self, *args):
        pass

    def do_GET(self):
        match = _IMAGE.match(self.path)
        if not match:
            return self._send(400, b"not an Image API request", "text/plain")
        identifier = match.group(1)
        step = self.server.next_step(identifier)
        self.counted_out = False
        try:
            self._answer(step, match)
        finally:
            if not self.counted_out:
                self.server.done()

    def _answer(self, step: tuple, match: re.Match) -> None:
        kind = step[0]
        if kind == "status":
            return self._send(step[1], b"<html>error</html>", "text/html", step[2] if len(step) > 2 else {})
        if kind == "stall":  # nothing at all until long past the client's read timeout
            if self._client_left_within(step[1]):
                return
        body = _render(*match.groups())
        if kind == "truncate":  # promise the whole body, send half, hang up
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if kind == "drip":
            pieces, gap = step[1], step[2]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            size = -(-len(body) // pieces)
            for at in range(0, len(body), size):
                time.sleep(gap)
                self.wfile.write(body[at: at + size])
                self.wfile.flush()
            return
        self._send(200, body, "image/jpeg")

    def _client_left_within(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the client hangs up first (then it no longer counts as
        in flight: a timed-out client has given its per-host slot back)."""
        readable, _, _ = select.select([self.connection], [], [], seconds)
        if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
            self.server.done()  # counted out now, not when this thread wakes
            self.counted_out = True
            self.close_connection = True
            return True
        return False

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True


def _render(identifier: str, region: str, size: str) -> bytes:
    img = page(identifier)
    if region != "full":
        x, y, w, h = map(int, region.split(","))
        img = img.crop((x, y, x + w, y + h))
    if size not in ("full", "max"):
        w, h = (int(v) if v else 0 for v in size.lstrip("!").split(","))
        if size.startswith("!"):
            img.thumbnail((w, h))
        else:
            img = img.resize((w or round(img.width * h / img.height), h or round(img.height * w / img.width)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def server():
    srv = FaultyIIIF()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def manifest(base: str) -> dict:
    """One canvas per scripted image; each canvas is one whole-image region."""
    canvases = []
    for n, identifier in enumerate(SCRIPTS):
        service = f"{base}/{identifier}"
        canvases.append({
            "id": f"https://example.org/canvas/{n}", "type": "Canvas", "width": WIDTH, "height": HEIGHT,
            "label": {"none": [identifier]},
            "items": [{"id": f"https://example.org/canvas/{n}/p", "type": "AnnotationPage", "items": [{
                "id": f"https://example.org/canvas/{n}/a", "type": "Annotation", "motivation": "painting",
                "target": f"https://example.org/canvas/{n}",
                "body": {"id": f"{service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                         "width": WIDTH, "height": HEIGHT, "service": [{"id": service, "type": "ImageService2",
                                                                        "profile": "level1"}]},
            }]}],
        })
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/faults",
            "type": "Manifest", "label": {"en": ["Faults"]}, "items": canvases}


CONFIG = IndexConfig(model="test-pixels", workers=4, per_host=PER_HOST, timeout=TIMEOUT, retries=RETRIES)


@pytest.mark.slow
def test_indexer_retries_backs_off_records_failures_and_a_later_run_completes(server, tmp_path):
    spec = tmp_path / "manifest.json"
    spec.write_text(json.dumps(manifest(server.base)))
    t0 = time.monotonic()
    summary = index([str(spec)], tmp_path / "idx", CONFIG)
    took = time.monotonic() - t0

    expected = (len(SCRIPTS), len(RECOVERING), len(FAILING))
    assert (summary.found, summary.indexed, summary.failed) == expected, summary.lines()
    with Index.open(tmp_path / "idx") as idx:
        indexed = {r.page.label for _, r in idx.items()}
        failures = {f["source"].rsplit("/", 1)[-1]: f["reason"] for f in idx.failures()}
    assert indexed == RECOVERING
    assert set(failures) == set(FAILING)
    for identifier, words in FAILING.items():
        assert all(w in failures[identifier] for w in words), (identifier, failures[identifier])
    text = "\n".join(summary.lines())
    assert f"failed items (recorded in the index; a re-run retries them): {len(FAILING)}" in text

    hits = {k: len(v) for k, v in server.requests.items()}
    assert hits["steady"] == 1 and hits["slow"] == 1  # a slow, steady body is waited for, not retried
    assert hits["flaky"] == 3 and hits["ratelimited"] == 2 and hits["truncated"] == 2 and hits["stalled"] == 2
    assert hits["down"] == hits["broken"] == hits["hung"] == RETRIES + 1
    assert hits["gone"] == 1  # a 404 is not retried
    # Retry-After: 1 was honoured; backoff doubles (0.5 s base, jitter 0.5-1x)
    ratelimited = server.requests["ratelimited"]
    assert ratelimited[1] - ratelimited[0] >= 0.95
    down = server.requests["down"]
    assert 0.2 <= down[1] - down[0] and 0.45 <= down[2] - down[1]
    assert server.max_in_flight <= PER_HOST  # polite: never more than per_host at once
    assert took < 20, f"run took {took:.1f}s"

    # The server recovers: the next run fetches only the failed images.
    server.heal()
    again = index([str(spec)], tmp_path / "idx", CONFIG)
    assert (again.already, again.indexed, again.failed) == (len(RECOVERING), len(FAILING), 0), again.lines()
    assert set(server.requests) == set(FAILING)
    with Index.open(tmp_path / "idx") as idx:
        assert {r.page.label for _, r in idx.items()} == set(SCRIPTS)
        assert idx.failures() == [] and len({k for k, _ in idx.items()}) == len(SCRIPTS)
