"""Hostile and broken sources through the whole indexer and through ``bookidx regions`` (issue 7).

Each case of ``tests/hostile/make.py`` (truncated, malformed and entity-declaring XML, wrong
encodings, absurd coordinates, zero-size pages, files that are empty or not images, corrupt and
truncated JPEGs, decompression bombs, JSON nested 100 000 deep, collection and list loops, a
folder linking to itself, METS hrefs with NUL bytes) must end as a clear message naming the file,
or as a skipped block or failed item with its reason, in the run summary. Never as a crashed
run, never as a half-written index: every index these runs leave opens, holds no duplicates and
lists each failed item with its reason; a re-run retries the failures and adds nothing twice.

IIIF documents name their images ``http://hostile.test/...``; ``LocalWeb`` serves those from
the case folder, so the full crop path (static image URLs) runs offline.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookidx.adapters.sources import read_sources
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.errors import FetchError
from bookidx.fetch import Fetcher
from bookidx.runner import index
from bookidx.store import Index
from hostile.make import CANVASES, CAPTION, build, serve_path

CONFIG = IndexConfig(model="test-pixels", workers=2, max_megapixels=100)


@dataclass(frozen=True)
class Expect:
    """What one case gives: regions read (``bookidx regions --all``), items indexed and failed,
    and words that must appear in the source problems and in the failure reasons."""

    regions: int
    indexed: int
    failed: int = 0
    problems: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()


EXPECT = {
    "good": Expect(1, 1),
    "truncated_xml": Expect(0, 0, problems=("page.xml: not well-formed XML at line 10",)),
    "malformed_xml": Expect(0, 0, problems=(
        "page.xml: not well-formed XML at line 12: Opening and ending tag mismatch",)),
    "xxe_file": Expect(0, 0, problems=("page.xml: entity declarations are not allowed",)),
    "xxe_parameter": Expect(0, 0, problems=("page.xml: entity declarations are not allowed",)),
    "external_dtd": Expect(1, 1),  # parsed without the DTD, which is never fetched (see below)
    "billion_laughs": Expect(0, 0, problems=("page.xml: entity declarations are not allowed",)),
    # UTF-16 hides '<!ENTITY' from the byte check; libxml2's amplification limit stops it
    "billion_laughs_utf16": Expect(0, 0, problems=("page.xml: not well-formed XML at line 14",)),
    "deep_xml": Expect(0, 0, problems=("page.xml: not well-formed XML at line 12: Excessive depth",)),
    "utf16_declared": Expect(0, 0, problems=("page.xml: not well-formed XML at line 1",)),
    "unknown_encoding": Expect(0, 0, problems=(
        "page.xml: not well-formed XML at line 1: Unsupported encoding: x-klingon",)),
    "latin1_undeclared": Expect(1, 1, problems=(
        "page.xml: line 1: bytes are not UTF-8 (the default); read as Windows-1252",)),
    "absurd_coordinates": Expect(1, 1, problems=(
        "line 10: Illustration HUGE: box 1e+12,10,50,50 is out of range",
        "line 11: Illustration FAR: box 1e+308,10,1e+308,50 is out of range",
        "line 12: Illustration NEG WIDTH: '-50' is not a valid size",
        "line 13: Illustration NAN WIDTH: 'NaN' is not a valid size",
        "line 14: Illustration INF HEIGHT: 'inf' is not a valid size",
        "line 15: Illustration WORD HPOS: 'left' is not a valid position",
        "line 16: Illustration ZERO: box 10,10,0,0 lies outside the 600x400 page image",
    )),
    "tiny_page_size": Expect(0, 0, problems=("Illustration I1: box 60,50,300,200 is out of range once scaled",)),
    "zero_size_page": Expect(1, 1, problems=("Page P1 WIDTH: page size '0' is not a positive number",)),
    "page_xml_absurd": Expect(1, 1, problems=(
        "line 4: ImageRegion r_far Coords: outline beyond 2147483648 pixels",
        "line 5: ImageRegion r_nan Coords: points 'nan,0 5,5' are not a list of x,y numbers",
        "line 6: ImageRegion r_word Coords: points 'left,top right,bottom' are not a list",
    )),
    "not_an_image": Expect(0, 0, problems=("page.jpg: not a readable image",)),
    "corrupt_jpeg": Expect(1, 0, 1, failures=("page.jpg: corrupt or truncated image",)),
    "truncated_jpeg": Expect(1, 0, 1, failures=("page.jpg: corrupt or truncated image: image file is truncated",)),
    "bomb_png": Expect(0, 0, problems=("page.png: image too large to open safely: Image size (2500000000 pixels)",)),
    "big_png": Expect(1, 0, 1, failures=("12000x12000 image has 144 megapixels, over the limit of 100",)),
    "empty_xml": Expect(0, 0, problems=("page.xml: not a source: not XML, JSON, an image or a .txt list",)),
    "empty_json": Expect(0, 0, problems=("manifest.json: not a source",)),
    "empty_jpg": Expect(0, 0, problems=("page.jpg: not a source",)),
    "deep_json": Expect(0, 0, problems=("manifest.json: not a source: JSON that is not a IIIF",)),
    "absurd_manifest": Expect(5, 5, problems=(
        "canvas 1 (http://hostile.test/canvas/0): canvas size missing or 0; using the image's 600x400",
        "canvas 2 (http://hostile.test/canvas/1): canvas size missing or 0",
        "canvas 3 (http://hostile.test/canvas/2): canvas size missing or 0",
    )),
    "collection_loop": Expect(1, 1, problems=("a.json: already read; skipped (listed twice, or a collection loop)",)),
    "deep_collection": Expect(0, 0, problems=("c8.json: nested deeper than 8 levels; members skipped",)),
    "list_loop": Expect(1, 1, problems=("list.txt: already read; skipped", "missing.xml: cannot read: No such file")),
    "mets_nul": Expect(1, 1, problems=("page\\x00.xml': cannot read: the path holds a NUL byte",
                                       "/etc/passwd: not a readable image")),
    "symlink_loop": Expect(1, 1),
}


class _Probe(BaseHTTPRequestHandler):
    """Counts every request: hostile XML asks the parser to fetch from here."""

    def do_GET(self):
        self.server.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def probe():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, probe):
    dest = tmp_path_factory.mktemp("hostile")
    return build(dest, probe_url=f"http://127.0.0.1:{probe.server_address[1]}/evil.dtd")


class LocalWeb(Fetcher):
    """A Fetcher that answers ``http://hostile.test/...`` from the case files (404 if absent)."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def get(self, url: str) -> bytes:
        path = serve_path(self.root, url)
        if path is None:
            return super().get(url)
        try:
            return path.read_bytes()
        except OSError:
            raise FetchError("HTTP 404 Not Found", parameter=url) from None


def _root(cases) -> Path:
    return cases["good"].spec.parent


def _check_index(path: Path, summary, items: int | None = None) -> list[int]:
    """The index opens, holds each item once (``items``, default: what the run indexed), and
    lists each failure with its reason."""
    with Index.open(path) as idx:
        keys = [k for k, _ in idx.items()]
        assert len(keys) == len(set(keys)) == len(idx) == (summary.indexed if items is None else items)
        failures = idx.failures()
        assert len(failures) == summary.failed and all(f["reason"] for f in failures)
        return keys


def _index(specs, path: Path, cases):
    return index([str(s) for s in specs], path, CONFIG, embedder=load_embedder("test-pixels"),
                 fetcher=LocalWeb(_root(cases)))


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_each_hostile_case_indexes_to_a_summary_not_a_crash(name, hostile, tmp_path, probe):
    case, expect = hostile[name], EXPECT[name]
    summary = _index([case.spec], tmp_path / "idx", hostile)
    assert (summary.indexed, summary.failed) == (expect.indexed, expect.failed), summary.lines()
    text = "\n".join(summary.lines())
    for words in expect.problems:
        assert words in text, f"{words!r} not in:\n{text}"
    for words in expect.failures:
        assert words in text, f"{words!r} not in:\n{text}"
    if not expect.problems:
        assert summary.problems == 0, text
    assert summary.problems >= len(expect.problems)
    _check_index(tmp_path / "idx", summary)
    assert probe.hits == []  # no DTD or entity was ever fetched


def test_the_one_good_page_keeps_its_caption_through_a_latin1_repair(hostile, tmp_path):
    _index([hostile["latin1_undeclared"].spec], tmp_path / "idx", hostile)
    with Index.open(tmp_path / "idx") as idx:
        ((_, region),) = idx.items()
    assert region.caption == CAPTION and (region.box.x, region.box.w) == (60, 300)


def test_failures_are_recorded_with_their_reason_and_retried_by_the_next_run(hostile, tmp_path):
    specs = [hostile[n].spec for n in ("good", "corrupt_jpeg", "truncated_jpeg", "big_png")]
    first = _index(specs, tmp_path / "idx", hostile)
    assert (first.indexed, first.failed) == (1, 3)
    with Index.open(tmp_path / "idx") as idx:
        reasons = sorted(f["reason"] for f in idx.failures())
    assert any("broken data stream" in r or "corrupt" in r for r in reasons)
    assert any("decompression bomb guard" in r for r in reasons)
    again = _index(specs, tmp_path / "idx", hostile)
    assert (again.already, again.indexed, again.failed) == (1, 0, 3)  # retried, not skipped
    _check_index(tmp_path / "idx", again, items=1)


def test_all_cases_in_one_run_finish_with_every_good_item(hostile, tmp_path):
    specs = [hostile[name].spec for name in sorted(EXPECT)]
    summary = _index(specs, tmp_path / "idx", hostile)
    # list_loop names the good page again: found twice, indexed once
    assert summary.indexed == sum(e.indexed for e in EXPECT.values()) - 1
    assert summary.failed == sum(e.failed for e in EXPECT.values())
    assert summary.problems >= sum(len(e.problems) for e in EXPECT.values())
    keys = _check_index(tmp_path / "idx", summary)
    rerun = _index(specs, tmp_path / "idx", hostile)
    assert rerun.indexed == 0 and rerun.already == len(keys) + 1 and rerun.failed == summary.failed
    assert _check_index(tmp_path / "idx", rerun, items=len(keys)) == keys


class _Failing:
    """The test-pixels embedder, whose third batch fails as a GPU or a driver might."""

    def __init__(self):
        self.inner, self.batches = load_embedder("test-pixels", batch_size=2), 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed_arrays(self, batch):
        self.batches += 1
        if self.batches == 3:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self.inner.embed_arrays(batch)


def test_an_embedder_crash_mid_run_leaves_the_finished_batches_and_the_rerun_completes(hostile, tmp_path):
    specs = [hostile["absurd_manifest"].spec, hostile["good"].spec, hostile["mets_nul"].spec]
    config = CONFIG.with_(commit_every=1, batch_size=2, workers=1)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        index([str(s) for s in specs], tmp_path / "idx", config, embedder=_Failing(), fetcher=LocalWeb(_root(hostile)))
    with Index.open(tmp_path / "idx") as idx:
        assert len(idx) == 4 and len({k for k, _ in idx.items()}) == 4  # two whole batches
    summary = index([str(s) for s in specs], tmp_path / "idx", config, embedder=load_embedder("test-pixels"),
                    fetcher=LocalWeb(_root(hostile)))
    assert (summary.already, summary.indexed) == (4, 3)
    _check_index(tmp_path / "idx", summary, items=7)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_bookidx_regions_prints_the_regions_and_names_each_problem(name, hostile):
    case, expect = hostile[name], EXPECT[name]
    result = CliRunner().invoke(cli, ["regions", "--all", str(case.spec)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == expect.regions
    assert all("filtered" in row and row["box"]["w"] > 0 for row in rows)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    for words in expect.problems:
        assert any(words in line for line in warnings), f"{words!r} not in:\n{result.stderr}"
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_manifest_of_20000_canvases_is_read_in_bounded_time(hostile, tmp_path):
    spec = str(hostile["huge_manifest"].spec)
    small = json.loads(Path(spec).read_bytes())
    small["items"] = small["items"][: CANVASES // 10]
    (tmp_path / "small.json").write_text(json.dumps(small))
    # Timed with the garbage collector off: its full collections grow with the objects alive and
    # made the per-canvas cost 2x at 20,000 (a 30x ratio, at the threshold); without them the
    # parse itself is measured, ~12x for 10x the canvases.
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        regions = list(read_sources([spec]))
        big = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert len(list(read_sources([str(tmp_path / "small.json")]))) == CANVASES // 10
        tenth = time.perf_counter() - t0
    finally:
        gc.enable()
    assert len(regions) == CANVASES and len({r.key for r in regions}) == CANVASES
    # about 0.5-2.5 s; linear, not quadratic (that would be 100x for 10x canvases)
    assert big < 30, f"{CANVASES} canvases took {big:.1f}s"
    assert big < 30 * max(tenth, 0.01), f"{big:.2f}s for {CANVASES} canvases vs {tenth:.2f}s for a tenth"
    result = CliRunner().invoke(cli, ["regions", spec])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == CANVASES
