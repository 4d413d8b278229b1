"""A manifest's ALTO files are loaded a few at a time (adapters/ahead.py), over real HTTP.

A local server delays each ALTO answer and counts the requests it is serving at once: with a
window of W, up to W (and never more, nor more than the fetcher's per_host) are in flight, so N
files take about N/W of the serial time. Regions and problems are those of a serial read, in
canvas order, and a broken ALTO file is still a problem for its page only.

So that a loaded machine cannot make a parallel client look serial, the server holds its first
requests until as many as a test expects are in flight (or a timeout passes): the peak is then
what the client really had in flight at once, not what happened to overlap within the delay.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bookidx.adapters.sources import read_sources
from bookidx.fetch import Fetcher

PAGES = 12
MISSING = 5  # this canvas's ALTO file answers 404
NO_ALTO = 8  # this canvas links no ALTO file: indexed whole


def _alto(n: int) -> bytes:
    return (f'<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"><Layout><Page ID="P{n}" WIDTH="1000" '
            f'HEIGHT="1000"><PrintSpace><Illustration ID="ill{n}" HPOS="{10 * n}" VPOS="100" WIDTH="300" '
            'HEIGHT="200"/></PrintSpace></Page></Layout></alto>').encode()


class _Handler(BaseHTTPRequestHandler):
    server: _AltoServer

    def do_GET(self) -> None:
        self.server.enter(self.path)
        try:
            self.server.gather()
            time.sleep(self.server.delay)
        finally:
            # counted out before answering: the client cannot send its next request sooner
            self.server.leave()
        n = int(self.path.rsplit("/", 1)[-1].split(".")[0])
        body = _alto(n) if n != MISSING else b"gone"
        self.send_response(200 if n != MISSING else 404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _AltoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float, expected: int, patience: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay = delay
        self._lock = threading.Condition()
        self.asked: list[str] = []
        self.reset(expected, patience)

    def enter(self, path: str) -> None:
        with self._lock:
            self.asked.append(path)
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._lock.notify_all()

    def gather(self) -> None:
        """Hold the first requests until ``expected`` are in flight or ``patience`` seconds have
        passed; later ones are not held. A client with fewer in flight just waits once."""
        with self._lock:
            self._lock.wait_for(lambda: self.gathered or self.active >= self.expected, self.patience)
            self.gathered = True
            self._lock.notify_all()

    def leave(self) -> None:
        with self._lock:
            self.active -= 1

    def reset(self, expected: int = 1, patience: float = 0.0) -> None:
        with self._lock:
            self.active = self.peak = 0
            self.asked = []
            self.expected, self.patience, self.gathered = expected, patience, False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def _server(delay: float = 0.05, expected: int = 1, patience: float = 0.0):
    server = _AltoServer(delay, expected, patience)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _manifest(tmp_path, base: str) -> str:
    """A local manifest of PAGES canvases, each linking its ALTO file on the server but one."""
    def canvas(n: int) -> dict:
        image = {"id": f"https://example.org/{n}.jpg", "type": "Image", "width": 1000, "height": 1000}
        links = [] if n == NO_ALTO else [{"id": f"{base}/alto/{n}.xml", "format": "application/alto+xml"}]
        return {"id": f"https://example.org/c{n}", "type": "Canvas", "width": 1000, "height": 1000,
                "seeAlso": links,
                "items": [{"type": "AnnotationPage", "items": [{"type": "Annotation", "motivation": "painting",
                                                                "body": image, "target": f"https://example.org/c{n}"}]}]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                "id": "https://example.org/m", "type": "Manifest",
                                "items": [canvas(n) for n in range(1, PAGES + 1)]}))
    return str(path)


def _read(manifest: str, window: int, per_host: int):
    problems = []
    with Fetcher(per_host=per_host, retries=0) as fetcher:
        regions = list(read_sources([manifest], load=fetcher.load, report=problems.append, window=window))
    return [(r.page.id, r.kind, r.block_id, r.box) for r in regions], [str(p) for p in problems]


@pytest.mark.parametrize("window, per_host, most", [(4, 4, 4), (3, 8, 3), (8, 2, 2)])
def test_alto_files_load_in_parallel_yet_read_in_canvas_order(tmp_path, window, per_host, most):
    with _server(expected=2, patience=0.5) as server:  # a serial client waits 0.5 s once
        manifest = _manifest(tmp_path, server.base)
        serial = _read(manifest, window=1, per_host=per_host)
        assert server.peak == 1
        server.reset(expected=most, patience=5.0)
        parallel = _read(manifest, window=window, per_host=per_host)
        assert server.peak == most  # the window, and never more than the fetcher's per_host
        assert len(server.asked) == PAGES - 1  # each ALTO file once; the canvas without one asks for none
    regions, problems = parallel
    assert parallel == serial
    assert [page for page, *_ in regions] == [f"https://example.org/c{n}" for n in range(1, PAGES + 1)
                                             if n != MISSING]
    assert [block for _, _, block, _ in regions] == [f"ill{n}" if n != NO_ALTO else ""
                                                     for n in range(1, PAGES + 1) if n != MISSING]
    assert len(problems) == 1 and problems[0].startswith(f"{server.base}/alto/{MISSING}.xml: ")
    assert "404" in problems[0]


def test_reading_ahead_holds_no_more_than_the_window(tmp_path):
    """The first page's regions come before more than ``window`` ALTO files were asked for, so a
    manifest of thousands of pages is never read into memory at once."""
    with _server(delay=0.05) as server:
        manifest = _manifest(tmp_path, server.base)
        with Fetcher(per_host=4, retries=0) as fetcher:
            regions = read_sources([manifest], load=fetcher.load, window=3)
            first = next(regions)
            assert first.block_id == "ill1"
            time.sleep(0.3)  # time enough to load every file, were more than the window asked for
            assert len(server.asked) <= 3
            regions.close()


def test_bookidx_index_reads_ahead_as_many_alto_files_as_its_per_host(tmp_path, monkeypatch):
    """`bookidx index --per-host 8` loads up to 8 ALTO files at once, not the default window."""
    from bookidx import runner
    from bookidx.config import IndexConfig

    windows = []

    def reading(*args, window, **kwargs):
        windows.append(window)
        return read_sources(*args, window=window, **kwargs)

    monkeypatch.setattr(runner, "read_sources", reading)
    with _server(expected=8, patience=5.0) as server:
        manifest = _manifest(tmp_path, server.base)
        runner.index([manifest], tmp_path / "ix", IndexConfig(model="test-pixels", per_host=8, max_failure_rate=1.0))
        assert windows == [8] and server.peak == 8
