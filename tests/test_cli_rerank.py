"""``bookidx search --image F --rerank``: the web API's re-ranked search (rerank.search) on the command line.

The index is webindex.py's, as in test_web_rerank.py: 20 real NLS chapbook woodcuts embedded with
the crude ``test-pixels`` model (it ranks a distorted copy of FAR last of 22), two regions on a
IIIF server that cannot be reached, and two near-duplicate twins in one group. The command must
give the same ranking as ``rerank=true`` (collapse after re-ranking), show each hit's inliers,
and write nothing into the index directory (no fetch cache there: candidates are read from
their sources each time, as the web API reads them). A slow or blackholed image server must not
hold the command past ``--rerank-seconds`` (by default the web API's ``BOOKIDX_RERANK_SECONDS``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from bookidx.adapters.records import ImageRef, Page, Region
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.store import Index
from click.testing import CliRunner
from iiifserver import chapbook_iiif  # noqa: F401  (pytest fixture: zimeon's IIIF server)
from PIL import Image
from test_web_rerank import DISTORTION, FAR, files, key_of, make_app
from webindex import (
    BOX,
    IIIF_SERVICE,
    TWIN_A,
    TWIN_B,
    build_index,
    crop,
)


@pytest.fixture(scope="module")
def index_dir(pixel_index):
    pytest.importorskip("cv2")
    return pixel_index


def photo(tmp_path, regions, chapbooks, name: str):
    """A distorted copy of the woodcut from page ``name``, saved as a user's photo would be."""
    path = tmp_path / "photo.jpg"
    DISTORTION.apply(crop(next(r for r in regions if r.source == name), chapbooks)).save(path, quality=90)
    return path


def search(index_dir, *args: str) -> list[dict]:
    res = CliRunner().invoke(cli, ["search", str(index_dir), *args, "--json"])
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.output.splitlines()]


def test_rerank_puts_the_true_woodcut_first_with_its_inliers(index_dir, regions, chapbooks, tmp_path):
    image = photo(tmp_path, regions, chapbooks, FAR)
    true = key_of(regions, FAR)
    plain = search(index_dir, "--image", str(image), "-k", "22")
    assert [h["id"] for h in plain].index(true) == 21 and "inliers" not in plain[0]  # the embedding alone: last
    before = files(index_dir)

    first, *rest = search(index_dir, "--image", str(image), "--rerank", "-k", "5")
    assert first["id"] == true and first["inliers"] >= 50  # docs/quality.md: a page and its copy share >= 59
    assert len(rest) == 4 and all(h["inliers"] < 12 for h in rest)
    assert files(index_dir) == before  # a search writes no fetch cache (nor anything else) into the index

    res = CliRunner().invoke(cli, ["search", str(index_dir), "--image", str(image), "--rerank", "-k", "2"])
    assert res.exit_code == 0, res.output
    assert f"{first['inliers']} inliers  id {true}" in res.output.splitlines()[0]


def test_the_ranking_is_the_web_apis(index_dir, regions, chapbooks, tmp_path):
    image = photo(tmp_path, regions, chapbooks, FAR)
    hits = search(index_dir, "--image", str(image), "--rerank", "--rerank-depth", "5", "-k", "22")
    client = make_app(index_dir, rerank_depth=5).test_client()
    with open(image, "rb") as f:
        web = client.post("/bookidx/api/search?limit=22&rerank=true", data={"image": (f, "photo.jpg")}).get_json()["hits"]
    assert [(h["id"], h["inliers"]) for h in hits] == [(h["id"], h["inliers"]) for h in web]
    # Past the depth, and the unreachable IIIF regions: not checked (null), left in their place.
    assert hits[-1]["id"] == key_of(regions, FAR) and all(h["inliers"] is None for h in hits[5:])
    unreadable = [h for h in hits if (h["page"]["image"].get("service") or "").startswith(IIIF_SERVICE)]
    assert len(unreadable) == 2 and all(h["inliers"] is None for h in unreadable)


def test_collapse_keeps_the_verified_member_of_a_group(index_dir, regions, chapbooks, tmp_path):
    image = photo(tmp_path, regions, chapbooks, TWIN_A)
    a, b = key_of(regions, TWIN_A), key_of(regions, TWIN_B)
    # The reprinted twin looks closer to the model, so collapsing alone shows the group as B...
    assert search(index_dir, "--image", str(image), "--collapse", "-k", "4")[0]["id"] == b
    # ...re-ranking first checks both, and the group is shown by the page itself.
    found = [h["id"] for h in search(index_dir, "--image", str(image), "--collapse", "--rerank", "-k", "4")]
    assert found[0] == a and b not in found and len(found) == 4


def test_rerank_needs_an_image_and_a_positive_depth(index_dir):
    res = CliRunner().invoke(cli, ["search", str(index_dir), "woodcut", "--rerank"])
    assert res.exit_code == 1 and "--image" in res.output
    res = CliRunner().invoke(cli, ["search", str(index_dir), "woodcut", "--rerank-depth", "0"])
    assert res.exit_code == 2 and "--rerank-depth" in res.output


def test_candidates_from_an_image_server_leave_no_cache_in_the_index(chapbook_iiif, tmp_path):
    """Before, candidates were fetched through a disk cache in INDEX/cache: a search wrote there."""
    pages = []
    for i, ident in enumerate(chapbook_iiif.identifiers):
        ref = chapbook_iiif.ref(ident, api=2)
        page = Page(id=f"https://example.org/canvas/{i}", index=i, image=ref, width=ref.width, height=ref.height)
        pages.append(Region(page=page, box=BOX, kind="Illustration", source=ident))
    crops = []
    for region in pages:  # the served pages' own pixels, read from their files
        with Image.open(chapbook_iiif.path(region.source)) as page:
            crops.append(page.convert("RGB").crop((BOX.x, BOX.y, BOX.x + BOX.w, BOX.y + BOX.h)))
    embedder = load_embedder("test-pixels")
    index_dir = tmp_path / "idx"
    with Index.create_or_open(index_dir, model_info=embedder.info, config=IndexConfig(model=embedder.model_id)) as index:
        index.add(pages, embedder.embed_images(crops))
        index.commit()
    image = tmp_path / "photo.jpg"
    DISTORTION.apply(crops[-1]).save(image, quality=90)
    search(index_dir, "--image", str(image), "-k", "3")  # opened once (SQLite's -wal and -shm files)
    before = files(index_dir)
    hits = search(index_dir, "--image", str(image), "--rerank", "-k", "3")
    # Every candidate was fetched from the server and checked; the true page first.
    assert hits[0]["id"] == str(pages[-1].key) and hits[0]["inliers"] >= 50
    assert all(h["inliers"] is not None for h in hits)
    assert files(index_dir) == before


# -- --rerank-seconds: a slow image server cannot hold the command -----------------------------

CLI = [sys.executable, str(Path(__file__).with_name("pixelcli.py"))]  # bookidx with test-pixels


@pytest.fixture(scope="module")
def blackholed(tmp_path_factory, chapbooks, regions):
    """webindex.py's index with its two IIIF regions on a server that accepts connections and
    never answers (a listening socket nobody reads: the kernel completes the handshake)."""
    pytest.importorskip("cv2")
    hole = socket.create_server(("127.0.0.1", 0), backlog=64)
    service = f"http://127.0.0.1:{hole.getsockname()[1]}/iiif/2/page"
    held = [replace(r, page=replace(r.page, image=replace(r.page.image, service=r.page.image.service.replace(IIIF_SERVICE, service))))
            if r.page.image.service else r for r in regions]
    path = tmp_path_factory.mktemp("cli-rerank-blackholed") / "idx"
    build_index(path, chapbooks, load_embedder("test-pixels"), held)
    yield path, service
    hole.close()


def test_a_blackholed_image_server_does_not_hold_the_command_past_its_budget(blackholed, regions, chapbooks, tmp_path):
    index_dir, service = blackholed
    image = photo(tmp_path, regions, chapbooks, FAR)
    budget = 3.0  # reading the 20 local candidates takes a fraction of it
    start = time.monotonic()
    # A real process: threads still reading when the results are printed would hold its exit.
    done = subprocess.run([*CLI, "search", str(index_dir), "--image", str(image), "--rerank", "-k", "22",
                           "--rerank-seconds", str(budget), "--json"], capture_output=True, text=True, timeout=120, check=False)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    hits = [json.loads(line) for line in done.stdout.splitlines()]
    # Without a budget the command waited out the two reads' 20 s fetch deadline, and a process
    # whose reads were still running at the budget would wait for them at exit; now it is done
    # about when the budget is (a read still running then gives up too), plus starting Python.
    assert took < budget + 8, f"{took:.1f} s"
    held = [h for h in hits if (h["page"]["image"].get("service") or "").startswith(service)]
    assert len(held) == 2 and all(h["inliers"] is None for h in held)  # reported unchecked, as the web API does
    # The other candidates were read meanwhile: the true woodcut is first, the rest checked.
    assert hits[0]["id"] == key_of(regions, FAR) and hits[0]["inliers"] >= 50
    assert all(isinstance(h["inliers"], int) for h in hits if h not in held)


def test_the_default_budget_is_the_web_apis_and_the_text_output_says_not_checked(blackholed, regions, chapbooks, tmp_path, monkeypatch):
    import bookidx.web.config

    index_dir, service = blackholed
    res = CliRunner().invoke(cli, ["search", "--help"])
    default = bookidx.web.config.BOOKIDX_RERANK_SECONDS
    assert f"[default: {default:g}, the web API's BOOKIDX_RERANK_SECONDS]" in " ".join(res.output.split())
    monkeypatch.setattr(bookidx.web.config, "BOOKIDX_RERANK_SECONDS", 1.0)  # the CLI follows the web default (1 s: quick)
    image = photo(tmp_path, regions, chapbooks, FAR)
    start = time.monotonic()
    res = CliRunner().invoke(cli, ["search", str(index_dir), "--image", str(image), "--rerank", "-k", "22"])
    assert time.monotonic() - start < 6 and res.exit_code == 0, res.output  # not 20 s and more
    out = res.output.splitlines()
    held = [out[i - 1] for i, line in enumerate(out) if line.strip().startswith(service)]  # each hit's line above its image
    assert len(held) == 2 and all("  not checked  id " in line for line in held)
    for seconds in ("-1", "inf", "nan"):  # inf was taken, and was a traceback (OverflowError) after the search
        res = CliRunner().invoke(cli, ["search", str(index_dir), "--image", str(image), "--rerank", "--rerank-seconds", seconds])
        assert res.exit_code == 2 and "--rerank-seconds" in res.output and "Traceback" not in res.output, (seconds, res.output)


@pytest.fixture()
def stalling(tmp_path_factory, chapbooks, regions):
    """webindex.py's index with every region on one image server that answers its first WORKERS
    requests with a 404 after STALL seconds, and then never answers again (the connections
    are accepted, and nobody reads them)."""
    pytest.importorskip("cv2")
    from bookidx.rerank import WORKERS

    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            held.append(conn)
            if len(held) <= WORKERS:
                threading.Thread(target=refuse_later, args=(conn,), daemon=True).start()

    def refuse_later(conn: socket.socket) -> None:
        time.sleep(STALL)
        with contextlib.suppress(OSError):
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    service = f"http://127.0.0.1:{listener.getsockname()[1]}/iiif/2/page"
    remote = [replace(r, page=replace(r.page, image=ImageRef(width=r.page.image.width, height=r.page.image.height,
                                                             service=f"{service}{i}", api=2)))
              for i, r in enumerate(regions)]
    path = tmp_path_factory.mktemp("cli-rerank-stalling") / "idx"
    embedder = load_embedder("test-pixels")
    with Index.create_or_open(path, model_info=embedder.info, config=IndexConfig(model=embedder.model_id)) as index:
        index.add(remote, embedder.embed_images([crop(r, chapbooks) for r in regions]))  # the pixels the server holds
        index.commit()
    yield path
    listener.close()
    for conn in held:
        conn.close()


STALL, BUDGET = 2.0, 2.5  # the first reads end (404) just before the budget, so the next ones start then


def test_a_read_started_near_the_end_of_the_budget_gets_only_what_is_left(stalling, regions, chapbooks, tmp_path):
    """Each candidate fetch had a deadline of the whole budget from its own start: the reads
    that began as the first ones failed, just before the budget ended, held the command for
    most of a second budget after it had printed its hits (a process waits for its threads)."""
    image = photo(tmp_path, regions, chapbooks, FAR)
    proc = subprocess.Popen([*CLI, "search", str(stalling), "--image", str(image), "--rerank", "-k", "3",
                             "--rerank-seconds", str(BUDGET), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        hits = [json.loads(proc.stdout.readline()) for _ in range(3)]  # printed when the budget ends
        printed = time.monotonic()
        proc.wait(60)
        held = time.monotonic() - printed
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0 and all(h["inliers"] is None for h in hits)  # nothing could be read: not checked
    # Before: most of a second budget (about 2 s); 1.5 s leaves room for a loaded machine's
    # teardown of an interpreter with OpenCV and usearch loaded.
    assert held < 1.5, f"the command went on {held:.1f} s after printing its hits"


def test_the_budget_is_for_reading_candidates_not_loading_the_model(index_dir, regions, chapbooks, tmp_path, monkeypatch):
    """A command-line search loads its model first: that must not spend the re-ranking budget."""
    import bookidx.embed

    loaded = bookidx.embed.load_for_index

    def slow_load(*args, **kwargs):
        time.sleep(1.5)  # a real model (SigLIP on a CPU) takes seconds
        return loaded(*args, **kwargs)

    monkeypatch.setattr(bookidx.embed, "load_for_index", slow_load)
    image = photo(tmp_path, regions, chapbooks, FAR)
    hits = search(index_dir, "--image", str(image), "--rerank", "--rerank-depth", "3", "--rerank-seconds", "1", "-k", "3")
    # The first three are local files, read in well under a second once the query is embedded.
    local = [h for h in hits if not (h["page"]["image"].get("service") or "").startswith(IIIF_SERVICE)]
    assert local and all(isinstance(h["inliers"], int) for h in local)
