"""Taking items out of an index (review item 6): ``Index.remove`` and ``bookidx remove``.

Store tests build regions by hand with seeded unit vectors, so what every search must return
after a removal is known exactly; readers are checked in this process, in another process and
after a writer that died between its SQLite commit and its vector save. CLI tests index real
chapbook pages with the weight-free ``test-pixels`` model (conftest.py) and replay the review's
case: a folder indexed again from where it was moved, every hit twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.errors import BadRequest, NotFound
from bookidx.removal import Selection
from bookidx.runner import index
from bookidx.store import Index
from click.testing import CliRunner

NDIM = 16
MODEL = {"model": "test-vec", "ndim": NDIM, "preprocess": {"size": 32, "mean": (0.5, 0.5, 0.5)}}
CONFIG = IndexConfig(model="test-vec")
N = 40
GONE = [3, 17, 30]  # removed in the store tests


def region(n: int, folder: str = "/scans") -> Region:
    book = f"book-{n % 2}"
    page = Page(id=f"{book}/canvas/{n}", index=n, image=ImageRef(1000, 1500, path=f"{folder}/{n}.jpg"),
                width=1000, height=1500, manifest=f"https://example.org/{book}/manifest")
    return Region(page=page, box=Box(0, 0, 300, 200), kind="illustration", caption=f"woodcut number{n}",
                  book=Book(id=book, title="Chapbook"), source=f"{folder}/{n}.xml")


def unit(seed: int, n: int = 1) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, NDIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


VECS = unit(1, N)
KEYS = [region(i).key for i in range(N)]


@pytest.fixture
def ix(tmp_path) -> Path:
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.add([region(i) for i in range(N)], VECS)
    return tmp_path / "ix"


def assert_holds_exactly(idx: Index, numbers: list[int]) -> None:
    """Every view of ``idx`` agrees that it holds the items ``numbers``, and nothing else."""
    keys = {KEYS[i] for i in numbers}
    assert len(idx) == len(keys) == idx.stats()["items"]
    assert {k for k, _ in idx.items()} == keys
    # Each search returns a full page of k hits, none of them removed.
    for i in (3, 4):
        hits = idx.search(VECS[i], k=len(keys))
        assert {h.key for h in hits} == keys
    for i in range(N):
        words = [h.key for h in idx.text_search(f"number{i}", k=5)]
        assert words == ([KEYS[i]] if KEYS[i] in keys else [])
        if KEYS[i] not in keys:
            with pytest.raises(NotFound):
                idx.get(KEYS[i])


def _remove(ix: Path, numbers: list[int], *, save: bool = True) -> None:
    idx = Index.open(ix, readonly=False)
    if not save:  # the process dies between the SQLite commit and the vector save
        idx._save = lambda: None
    assert idx.remove([KEYS[i] for i in numbers])["items"] == len(numbers)
    idx.commit()
    if not save:
        os._exit(0)
    idx.close()


def test_remove_takes_exactly_those_items_from_every_view(ix):
    reader = Index.open(ix)
    with Index.open(ix, readonly=False) as idx:
        idx.save_interval = 1e9  # adds wait for close to be saved; a removal is saved at commit
        assert idx.remove([KEYS[i] for i in GONE] + [12345]) == {"items": 3, "failures": 0, "dropped": 0}
        idx.commit()
        kept = [i for i in range(N) if i not in GONE]
        assert_holds_exactly(idx, kept)
        assert reader.refresh() is True and reader.stats()["vectors_in_file"] == N - 3
    reader.close()
    with Index.open(ix) as idx:
        assert_holds_exactly(idx, kept)
        stats = idx.stats()
        assert stats["vectors_in_file"] == N - 3 and stats["vectors_overlay"] == 0
    info = json.loads(CliRunner().invoke(cli, ["info", str(ix), "--json"]).output)
    assert info["info"]["counts"]["items"] == info["stats"]["items"] == N - 3


def test_a_reader_opened_before_stops_returning_removed_items_after_refresh(ix):
    reader = Index.open(ix)
    try:
        assert len(reader.search(VECS[3], k=N)) == N
        proc = multiprocessing.get_context("fork").Process(target=_remove, args=(ix, GONE))
        proc.start()
        proc.join(20)
        assert proc.exitcode == 0
        assert reader.refresh() is True
        assert_holds_exactly(reader, [i for i in range(N) if i not in GONE])
    finally:
        reader.close()


def test_a_reader_that_never_refreshes_leaves_removed_items_out_with_fewer_hits(ix):
    # What `bookidx remove --help` says of a server with BOOKIDX_REFRESH_SECONDS=None.
    with Index.open(ix) as reader:
        _remove(ix, GONE)
        found = [h.key for h in reader.search(VECS[3], k=N)]
        assert len(found) == N - 3 and not {KEYS[i] for i in GONE} & set(found)  # fewer than k
        assert [h.key for h in reader.text_search("number3")] == []


def test_a_reader_between_the_commit_and_the_vector_save_leaves_removed_items_out(ix, caplog):
    reader = Index.open(ix)
    try:
        writer = Index.open(ix, readonly=False)
        writer._save = lambda: None  # the file still holds the removed vectors
        writer.remove([KEYS[i] for i in GONE])
        writer.commit()
        with caplog.at_level(logging.WARNING, logger="bookidx"):
            assert reader.refresh() is True
        assert caplog.records == []  # expected, not "a file from elsewhere, or a lost commit"
        assert reader.stats()["vectors_in_file"] == N  # the old file, still
        assert_holds_exactly(reader, [i for i in range(N) if i not in GONE])
        del writer._save
        writer.close()  # saves: the reader takes the new file
        assert reader.refresh() is True and reader.stats()["vectors_in_file"] == N - 3
        assert_holds_exactly(reader, [i for i in range(N) if i not in GONE])
    finally:
        reader.close()


def test_a_crash_between_the_sqlite_commit_and_the_vector_save_is_consistent_at_next_open(ix):
    proc = multiprocessing.get_context("fork").Process(target=_remove, args=(ix, GONE), kwargs={"save": False})
    proc.start()
    proc.join(20)
    assert proc.exitcode == 0
    kept = [i for i in range(N) if i not in GONE]
    with Index.open(ix) as reader:  # the file still holds the three: a reader leaves them out
        assert reader.stats()["vectors_in_file"] == N
        assert_holds_exactly(reader, kept)
    with Index.open(ix, readonly=False) as writer:  # the writer takes them out, and saves
        assert_holds_exactly(writer, kept)
    with Index.open(ix) as reader:
        assert reader.stats()["vectors_in_file"] == N - 3
        assert_holds_exactly(reader, kept)


def test_a_removed_item_indexed_again_comes_back(ix):
    reader = Index.open(ix)
    try:
        with Index.open(ix, readonly=False) as writer:
            writer.remove([KEYS[3]])
            writer.commit()
            reader.refresh()
            assert_holds_exactly(reader, [i for i in range(N) if i != 3])
            writer.add([region(3)], VECS[3:4])
            writer.commit()
            assert_holds_exactly(writer, list(range(N)))
            reader.refresh()
            assert_holds_exactly(reader, list(range(N)))
            assert reader.search(VECS[3], k=1)[0].key == KEYS[3]
            # In one transaction: removed then added is in; added then removed is out.
            writer.remove([KEYS[5]])
            writer.add([region(5)], VECS[5:6])
            writer.add([region(7)], VECS[7:8])
            writer.remove([KEYS[7]])
            writer.commit()
            assert_holds_exactly(writer, [i for i in range(N) if i != 7])
        reader.refresh()
        assert_holds_exactly(reader, [i for i in range(N) if i != 7])
    finally:
        reader.close()
    with Index.open(ix) as idx:
        assert idx.stats()["vectors_in_file"] == N - 1
        assert_holds_exactly(idx, [i for i in range(N) if i != 7])


def test_removal_takes_failure_and_drop_records_and_ends_groups_of_one(ix):
    with Index.open(ix, readonly=False) as idx:
        idx.record_failure(111, "/scans/broken.jpg", "crop", "truncated")
        idx.record_drops([222], ["text"], [0.9], "clf")
        idx.set_groups({KEYS[0]: KEYS[0], KEYS[1]: KEYS[0], KEYS[2]: KEYS[2], KEYS[4]: KEYS[2], KEYS[6]: KEYS[2]})
        idx.commit()
        assert idx.remove([KEYS[1], KEYS[4], 111, 222]) == {"items": 2, "failures": 1, "dropped": 1}
        idx.commit()
        assert idx.failures() == [] and idx.stats()["dropped"] == {}
        assert idx.group(KEYS[0]) == []  # alone now: no group
        assert idx.group(KEYS[2]) == sorted([KEYS[2], KEYS[6]])
        assert idx.stats()["duplicate_groups"] == 1


def test_a_selection_needs_a_selector(ix):
    with pytest.raises(BadRequest, match="say what to remove"):
        Selection()
    res = CliRunner().invoke(cli, ["remove", "--index", str(ix)])
    assert res.exit_code == 1 and res.output == "error: selector: say what to remove: --manifest, --source, --id or --missing\n"
    with Index.open(ix) as idx:
        assert len(idx) == N


def test_selectors_in_the_store(ix, tmp_path):
    with Index.open(ix, readonly=False) as idx:
        idx.record_failure(111, "https://iiif.example.org/img/9", "fetch", "404")
        idx.record_failure(222, "/scans/broken.jpg", "crop", "truncated")
    with Index.open(ix) as idx:
        def chosen(**kw) -> set[int]:
            return {e.key for e in idx.select(Selection(**kw))}

        book0 = {KEYS[i] for i in range(0, N, 2)}
        assert chosen(manifests=("book-0",)) == chosen(manifests=("https://example.org/book-0/manifest",)) == book0
        assert chosen(ids=(KEYS[5], KEYS[6])) == {KEYS[5], KEYS[6]}
        assert chosen(manifests=("book-0",), ids=(KEYS[4], KEYS[6])) == {KEYS[4], KEYS[6]}  # selectors are AND-ed
        with pytest.raises(NotFound, match=f"{KEYS[5]} matches nothing together with --manifest"):
            chosen(manifests=("book-0",), ids=(KEYS[5], KEYS[6]))
        with pytest.raises(BadRequest, match="every item of the index"):
            chosen(sources=("/scans",))
        assert chosen(sources=("/scans",), allow_all=True) == set(KEYS) | {222}
        assert chosen(missing=True, allow_all=True) == set(KEYS) | {222}  # no /scans here
        taken = idx.select(Selection(sources=("https://iiif.example.org/",)))  # a URL: a string prefix
        assert [(e.key, e.table, e.note) for e in taken] == [(111, "failures", "failed (fetch: 404)")]
        with pytest.raises(NotFound, match="'/scan' matches nothing"):  # whole path components only
            chosen(sources=("/scan",))
        with pytest.raises(NotFound, match="'book-9' matches nothing"):
            chosen(manifests=("book-9", "book-0"))
        with pytest.raises(NotFound, match="5 matches nothing"):
            chosen(ids=(5,))


def test_a_url_source_takes_whole_path_segments(ix):
    service = "https://ex.org/iiif"
    with Index.open(ix, readonly=False) as idx:
        for key, image in enumerate(["1", "1/full/max/0/default.jpg", "1?page=2", "1#xywh=0,0,9,9", "10", "11/full/max/0/default.jpg"], 101):
            idx.record_failure(key, f"{service}/{image}", "fetch", "404")
    with Index.open(ix) as idx:
        def chosen(prefix: str) -> set[int]:
            return {e.key for e in idx.select(Selection(sources=(prefix,)))}

        assert chosen(f"{service}/1") == {101, 102, 103, 104}  # not /iiif/10, /iiif/11
        assert chosen(f"{service}/1/") == {102}
        assert chosen(f"{service}/") == chosen(service) == set(range(101, 107))
        with pytest.raises(NotFound, match="'https://ex.org/iiif/1/full/max/0/default' matches nothing"):
            chosen(f"{service}/1/full/max/0/default")


def test_missing_leaves_failure_records_without_an_image(ix):
    with Index.open(ix, readonly=False) as idx:
        idx.record_failure(111, "", "crop", "layout file without an image")  # as crops.py records it
        idx.record_failure(222, "/scans/broken.jpg", "crop", "truncated")
    with Index.open(ix) as idx:
        assert {e.key for e in idx.select(Selection(missing=True, allow_all=True))} == set(KEYS) | {222}
        with pytest.raises(NotFound, match="'.' matches nothing"):  # "" is no path, not the current folder
            idx.select(Selection(sources=(".",)))


def test_each_value_must_match_together_with_the_other_selectors(ix):
    with Index.open(ix, readonly=False) as idx:
        idx.add([region(i, "/other") for i in (0, 2)], VECS[:2])  # book-0 only
    other = {region(i, "/other").key for i in (0, 2)}
    with Index.open(ix) as idx:
        def chosen(**kw) -> set[int]:
            return {e.key for e in idx.select(Selection(**kw))}

        assert chosen(manifests=("book-0",), sources=("/other",)) == other
        with pytest.raises(NotFound, match="'book-1' matches nothing together with --source; nothing was removed"):
            chosen(manifests=("book-0", "book-1"), sources=("/other",))
        with pytest.raises(NotFound, match=f"{KEYS[1]} matches nothing together with --source"):
            chosen(ids=(KEYS[1], *other), sources=("/other",))
        with pytest.raises(NotFound, match="'/scans' matches nothing together with --id"):
            chosen(ids=tuple(other), sources=("/other", "/scans"))


def test_a_dry_run_on_an_older_index_says_the_removal_would_migrate_it(ix):
    con = sqlite3.connect(ix / "meta.sqlite")
    con.execute("PRAGMA user_version = 3")  # schema 4 re-folds searched text; the tables are the same
    con.close()
    dry = bookidx("remove", "--index", ix, "--id", KEYS[3], "--dry-run")
    assert dry.exit_code == 1 and dry.output == (
        f"error: {ix}: index schema 3, this bookidx schema 4: a dry run changes nothing, so it cannot "
        f"migrate the index as `bookidx remove` without --dry-run does; run `bookidx upgrade {ix}` "
        "first to see what it would remove\n")
    with contextlib.closing(sqlite3.connect(ix / "meta.sqlite")) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 3
    res = bookidx("remove", "--index", ix, "--id", KEYS[3])
    assert res.exit_code == 0 and res.stdout == f"removed 1 item from {ix}\n"
    with Index.open(ix) as idx:  # migrated by the removal, as a reader needs
        assert len(idx) == N - 1


# -- the command line, on real pages ---------------------------------------------------------------


@pytest.fixture
def moved(chapbooks, tmp_path) -> tuple[Path, Path, Path]:
    """The review's case: a folder indexed, moved, and indexed again from its new place."""
    pages = tmp_path / "images"
    pages.mkdir()
    for image in sorted((chapbooks / "images").glob("*.jpg"))[:6]:
        shutil.copy(image, pages / image.name)
    idx = tmp_path / "idx"
    index([str(pages)], idx, IndexConfig(model="test-pixels"))
    new = tmp_path / "images-moved"
    pages.rename(new)
    index([str(new)], idx, IndexConfig(model="test-pixels"))
    return idx, pages, new


def bookidx(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def hits(idx: Path, image: Path) -> list[str]:
    res = bookidx("search", idx, "--image", image, "-k", "20", "--json")
    assert res.exit_code == 0, res.output
    return [json.loads(line)["page"]["image"]["path"] for line in res.stdout.splitlines()]


def test_remove_missing_after_a_move_ends_the_doubled_hits_and_dry_run_changes_nothing(moved):
    idx, old, new = moved
    query = next(new.iterdir())
    assert len(hits(idx, query)) == 12  # every page twice
    files = {p.name: p.read_bytes() for p in idx.iterdir() if p.suffix in (".usearch", ".json")}
    dry = bookidx("remove", "--index", idx, "--missing", "--dry-run")
    assert dry.exit_code == 0, dry.output
    lines = dry.stdout.splitlines()
    assert lines[0] == "would remove 6 items:" and len(lines) == 1 + 5 + 1 and lines[-1] == "  ... and 1 more"
    assert all(f"  image  {old}/" in line for line in lines[1:6])
    assert {p.name: p.read_bytes() for p in idx.iterdir() if p.suffix in (".usearch", ".json")} == files
    assert len(hits(idx, query)) == 12

    res = bookidx("remove", "--index", idx, "--missing")
    assert res.exit_code == 0 and res.stdout == f"removed 6 items from {idx}\n"
    found = hits(idx, query)
    assert len(found) == 6 and all(path.startswith(f"{new}/") for path in found)
    info = json.loads(bookidx("info", idx, "--json").stdout)
    assert info["stats"]["items"] == info["info"]["counts"]["items"] == info["stats"]["vectors_in_file"] == 6
    again = bookidx("remove", "--index", idx, "--missing")
    assert again.exit_code == 0 and again.stderr == "nothing to remove\n"


def test_remove_by_source_takes_whole_folders_and_they_can_be_indexed_again(moved):
    idx, old, new = moved
    shutil.copytree(new, old)  # both folders exist: --missing would take nothing
    query = next(new.iterdir())
    res = bookidx("remove", "--index", idx, "--source", old)
    assert res.exit_code == 0 and res.stdout == f"removed 6 items from {idx}\n"  # not images-moved/
    assert all(path.startswith(f"{new}/") for path in hits(idx, query))
    refused = bookidx("remove", "--index", idx, "--source", new)  # the last six: every item
    assert refused.exit_code == 1 and "every item of the index (6)" in refused.output and "--allow-all" in refused.output
    typo = bookidx("remove", "--index", idx, "--source", f"{old}/nosuch")
    assert typo.exit_code == 1 and typo.output == f"error: --source: '{old}/nosuch' matches nothing; nothing was removed\n"
    index([str(old)], idx, IndexConfig(model="test-pixels"))
    assert len(hits(idx, query)) == 12


def test_remove_by_id_as_search_prints_it(moved):
    idx, _, new = moved
    first = json.loads(bookidx("search", idx, "--image", next(new.iterdir()), "-k", "1", "--json").stdout)["id"]
    res = bookidx("remove", "--index", idx, "--id", first)
    assert res.exit_code == 0 and res.stdout == f"removed 1 item from {idx}\n"
    assert bookidx("search", idx, "--similar", first).output == f"error: id: no item with id {first}\n"
    with Index.open(idx) as reader:
        assert len(reader) == 11 and not reader.has([int(first)])[0]
