"""Taking items out of an index (review item 6): ``Index.remove`` and ``bookidx remove``.

Store tests build regions by hand with seeded unit vectors, so what every search must return
after a removal is known exactly; readers are checked in this process, in another process and
after a writer that died between its SQLite commit and its vector save.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.errors import NotFound
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
