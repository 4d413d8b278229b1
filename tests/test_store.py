"""Tests for store.py (with meta.py and vectors.py): the index directory as a user relies on it.

Regions are built by hand; vectors are seeded random unit vectors, so the true nearest
neighbours are known by brute force. Crash tests fork a writer and SIGKILL it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import threading
import time

import numpy as np
import pytest

from bookidx import meta, queries, store
from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.config import IndexConfig
from bookidx.errors import BadRequest, BookidxError, IndexMismatch, NotFound
from bookidx.store import Filters, Hit, Index

NDIM = 16
MODEL = {"model": "test-vec", "ndim": NDIM, "preprocess": {"size": 32, "mean": (0.5, 0.5, 0.5)}}
CONFIG = IndexConfig(model="test-vec")


def region(n: int, *, caption: str = "", context: str = "", manifest: str | None = None,
           book: str = "book-a", title: str = "", date: str = "", kind: str = "illustration") -> Region:
    page = Page(id=f"{book}/canvas/{n // 4}", index=n // 4, image=ImageRef(1000, 1500, path=f"/scans/{book}/{n // 4}.jpg"),
                width=1000, height=1500, manifest=manifest)
    return Region(page=page, box=Box(10 * (n % 4), 20, 300, 200), kind=kind, caption=caption, context=context,
                  book=Book(id=book, title=title, date=date), source=f"{book}.xml")


def unit(seed: int, n: int = 1) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, NDIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def f16(v: np.ndarray) -> np.ndarray:
    """What the index stores for f16: the comparison baseline for exact results."""
    v = v.astype(np.float16).astype(np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def build(path, n: int, **kw) -> tuple[list[Region], np.ndarray]:
    regions = [region(i, **kw) for i in range(n)]
    vecs = unit(1, n)
    with Index.create_or_open(path, model_info=MODEL, config=CONFIG) as idx:
        idx.add(regions, vecs)
    return regions, vecs


def graph_count(idx: Index) -> int:
    stats = idx.stats()
    return stats["vectors_in_file"] + stats["vectors_overlay"]


# -- create, reopen, search -----------------------------------------------------------------


def test_roundtrip_finds_true_nearest_after_reopen(tmp_path):
    regions, vecs = build(tmp_path / "ix", 300)
    idx = Index.open(tmp_path / "ix")
    assert len(idx) == 300
    assert idx.info["model"]["model"] == "test-vec" and idx.info["schema"] == store.SCHEMA_VERSION
    assert idx.info["usearch"]["metric"] == "cos" and idx.info["usearch"]["dtype"] == "f16"
    queries = unit(7, 5)
    truth = np.argsort(-(queries @ f16(vecs).T), axis=1)[:, :10]
    for q, expect in zip(queries, truth):
        hits = idx.search(q, k=10)
        assert [h.key for h in hits] == [regions[i].key for i in expect]
        assert hits[0].score == pytest.approx(float(q @ f16(vecs[expect[0]])), abs=2e-3)
    batch = idx.search(queries, k=3)
    assert [[h.key for h in row] for row in batch] == [[regions[i].key for i in t[:3]] for t in truth]
    assert idx.get(regions[5].key) == regions[5]
    assert np.allclose(idx.vector(regions[5].key), vecs[5], atol=2e-3)
    assert idx.has([regions[0].key, 12345]).tolist() == [True, False]
    idx.close()


def test_hnsw_path_on_a_larger_index(tmp_path, monkeypatch):
    monkeypatch.setattr(queries, "EXACT_BELOW", 0)  # force HNSW even on a small index
    regions, vecs = build(tmp_path / "ix", 3000)
    with Index.open(tmp_path / "ix") as idx:
        hits = idx.search(vecs[:200], k=1)
    found = sum(row[0].key == r.key for row, r in zip(hits, regions[:200]))
    assert found >= 198


def test_readding_replaces_and_never_duplicates(tmp_path):
    regions, vecs = build(tmp_path / "ix", 50)
    new = unit(99, 50)
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        # re-add everything, with one key twice in the same batch: the last vector wins
        idx.add(regions + [regions[0]], np.vstack([new, unit(5)]))
        idx.add(regions[1:10], new[1:10])  # and again before the commit
        idx.commit()
        assert len(idx) == 50 and graph_count(idx) == 50
    with Index.open(tmp_path / "ix") as idx:
        assert len(idx) == 50 and graph_count(idx) == 50
        hits = idx.search(new[3], k=50)
        assert len({h.key for h in hits}) == len(hits) == 50
        assert hits[0].key == regions[3].key and hits[0].score > 0.999
        assert idx.search(unit(5)[0], k=1)[0].key == regions[0].key
        old = idx.search(vecs[3], k=50)
        assert max(h.score for h in old if h.key == regions[3].key) < 0.99


def test_empty_index_searches_to_nothing(tmp_path):
    Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG).close()
    with Index.open(tmp_path / "ix") as idx:
        assert len(idx) == 0
        assert idx.search(unit(1)[0], k=5) == []
        assert idx.search(unit(1, 3), k=5) == [[], [], []]
        assert idx.text_search("ship") == []


# -- versioning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other, words",
    [
        ({**MODEL, "model": "siglip"}, ["'test-vec'", "'siglip'"]),
        ({**MODEL, "ndim": 32}, ["16-d", "32-d"]),
        ({**MODEL, "preprocess": {"size": 64}}, ['"size": 32', '"size": 64']),
    ],
)
def test_other_model_is_refused_naming_both(tmp_path, other, words):
    build(tmp_path / "ix", 3)
    with pytest.raises(IndexMismatch) as err:
        Index.create_or_open(tmp_path / "ix", model_info=other, config=CONFIG)
    assert err.value.code == 409
    for word in words:
        assert word in str(err.value)
    # and the refused run did not keep the writer lock
    Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG).close()


def test_other_dtype_is_refused(tmp_path):
    build(tmp_path / "ix", 3)
    with pytest.raises(IndexMismatch, match="f16.*i8"):
        Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG.with_(dtype="i8"))


def test_newer_schema_is_refused(tmp_path):
    build(tmp_path / "ix", 3)
    info_path = tmp_path / "ix" / "bookidx.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "schema": store.SCHEMA_VERSION + 1}))
    for opener in (lambda: Index.open(tmp_path / "ix"),
                   lambda: Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG)):
        with pytest.raises(IndexMismatch, match="newer"):
            opener()
    info_path.write_text(json.dumps(info))  # the database itself says newer
    con = sqlite3.connect(tmp_path / "ix" / "meta.sqlite")
    con.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(IndexMismatch):
        Index.open(tmp_path / "ix")
    with pytest.raises(IndexMismatch, match="newer"):
        Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG)


def test_older_schema_is_migrated_by_the_writer(tmp_path, monkeypatch):
    regions, vecs = build(tmp_path / "ix", 20)
    monkeypatch.setattr(meta, "SCHEMA_VERSION", store.SCHEMA_VERSION + 1)
    monkeypatch.setitem(meta._MIGRATIONS, store.SCHEMA_VERSION,
                        lambda con: con.execute("ALTER TABLE items ADD COLUMN note TEXT"))
    with pytest.raises(IndexMismatch, match="migrate"):
        Index.open(tmp_path / "ix")  # a reader cannot migrate
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        assert idx.info["schema"] == store.SCHEMA_VERSION + 1
    with Index.open(tmp_path / "ix") as idx:
        assert len(idx) == 20 and idx.search(vecs[4], k=1)[0].key == regions[4].key
    con = sqlite3.connect(tmp_path / "ix" / "meta.sqlite")
    assert con.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION + 1
    assert "note" in [row[1] for row in con.execute("PRAGMA table_info(items)")]
    con.close()


def test_one_writer_at_a_time(tmp_path):
    first = Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG)
    with pytest.raises(BookidxError, match=f"pid {os.getpid()}") as err:
        Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG)
    assert err.value.code == 409
    first.close()
    Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG).close()


def test_missing_index_and_bad_calls(tmp_path):
    with pytest.raises(NotFound):
        Index.open(tmp_path / "nothing")
    regions, _ = build(tmp_path / "ix", 3)
    with Index.open(tmp_path / "ix") as idx:
        with pytest.raises(NotFound):
            idx.get(42)
        with pytest.raises(NotFound):
            idx.vector(42)
        with pytest.raises(BadRequest):
            idx.search(np.ones(NDIM + 1, np.float32))
        with pytest.raises(BadRequest):
            idx.search(np.zeros(NDIM, np.float32))
        with pytest.raises(BadRequest):
            idx.search(unit(1)[0], k=0)
        with pytest.raises(BookidxError) as err:
            idx.add(regions, unit(1, 3))
        assert err.value.code == 409
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        with pytest.raises(BadRequest):
            idx.add(regions, unit(1, 2))
        with pytest.raises(BadRequest):
            idx.add(regions, np.full((3, NDIM), np.nan, np.float32))
        with pytest.raises(NotFound):
            idx.set_class([42], ["map"])


def test_unreadable_or_missing_vector_file_is_rebuilt_from_sqlite(tmp_path):
    regions, vecs = build(tmp_path / "ix", 40)
    (tmp_path / "ix" / "vectors.usearch").write_bytes(b"not an index" * 100)
    with Index.open(tmp_path / "ix") as idx:  # a reader still answers, from the stored vectors
        assert idx.search(vecs[7], k=1)[0].key == regions[7].key
    stale = tmp_path / "ix" / "vectors.usearch.4242.tmp"  # a save cut short by a crash
    stale.write_bytes(b"half a file")
    Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG).close()
    assert not stale.exists()
    (tmp_path / "ix" / "vectors.usearch").unlink()
    Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG).close()
    with Index.open(tmp_path / "ix") as idx:
        assert idx.stats()["vectors_in_file"] == 40 and idx.stats()["vectors_overlay"] == 0
        assert [idx.search(v, k=1)[0].key for v in vecs] == [r.key for r in regions]


# -- keywords -----------------------------------------------------------------------------------


def keyword_index(path) -> list[Region]:
    regions = [
        region(0, caption="A ship at sea", title="The Mariner"),
        region(1, context="the ship was lost; a ship and a whale", title="Tales", book="book-b"),
        region(2, caption="Portrait of the author", title="Chapbook of Ships"),
        region(3, caption="La Fée et le Père", title="Contes"),
        region(4, caption="Bjørnstjerne Bjørnson ved Ålesund, blåbær", title="Dikt"),
        region(5, caption="AND OR NOT \"quoted\" * (x)", title="Syntax"),
    ]
    with Index.create_or_open(path, model_info=MODEL, config=CONFIG) as idx:
        idx.add(regions, unit(3, len(regions)))
    return regions


def test_text_search_ranks_captions_first_and_folds_diacritics(tmp_path):
    regions = keyword_index(tmp_path / "ix")
    keys = {r.key: i for i, r in enumerate(regions)}
    with Index.open(tmp_path / "ix") as idx:
        hits = idx.text_search("ship")
        assert [keys[h.key] for h in hits] == [0, 1]  # caption beats two mentions in context
        assert hits[0].score > hits[1].score > 0
        assert [keys[h.key] for h in idx.text_search("ships")] == [2]  # the book title counts
        assert [keys[h.key] for h in idx.text_search("ship*")] == [0, 2, 1]  # caption > title > context
        assert [keys[h.key] for h in idx.text_search("pere fee")] == [3]
        assert [keys[h.key] for h in idx.text_search("Père")] == [3]
        assert [keys[h.key] for h in idx.text_search("bjørnson ålesund")] == [4]
        assert [keys[h.key] for h in idx.text_search("BLÅBÆR")] == [4]
        assert idx.text_search("ship whale") and idx.text_search("ship portrait") == []
        assert [keys[h.key] for h in idx.text_search("ship", k=1, offset=1)] == [1]
        assert [keys[h.key] for h in idx.text_search("ship", filters=Filters(book="book-b"))] == [1]


def test_keyword_pages_of_tied_hits_neither_repeat_nor_skip(tmp_path):
    # Identical captions tie on BM25: paging by offset must still walk every hit exactly once,
    # with and without a filter (the two query plans in Queries.text_search).
    regions = [region(i, caption="woodcut of a ship", book="book-a" if i % 2 else "book-b") for i in range(23)]
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.add(regions, unit(4, len(regions)))
    with Index.open(tmp_path / "ix") as idx:
        for filters, expected in ((None, regions), (Filters(book="book-a"), regions[1::2])):
            pages = [idx.text_search("ship", k=5, offset=o, filters=filters) for o in range(0, 25, 5)]
            keys = [h.key for page in pages for h in page]
            assert sorted(keys) == sorted(r.key for r in expected)
            assert len({h.score for page in pages for h in page}) == 1


@pytest.fixture(scope="module")
def keywords(tmp_path_factory):
    path = tmp_path_factory.mktemp("keywords") / "ix"
    keyword_index(path)
    return path


@pytest.mark.parametrize(
    "query",
    ['"', '""', "AND", "OR", "NOT", "*", "ship AND", "AND ship", "NEAR(ship sea)", "caption:ship", "(", ")",
     "-ship", "ship OR", "'", "^ship", "ship\"sea", "😀", "\x00", "  ", "", "a" * 5000, "ship " * 200],
)
def test_text_search_is_safe_for_any_input(keywords, query):
    with Index.open(keywords) as idx:
        hits = idx.text_search(query)
    assert isinstance(hits, list) and all(isinstance(h, Hit) for h in hits)


def test_text_search_matches_syntax_words_literally(tmp_path):
    regions = keyword_index(tmp_path / "ix")
    with Index.open(tmp_path / "ix") as idx:
        assert [h.key for h in idx.text_search('NOT "quoted')] == [regions[5].key]
        assert [h.key for h in idx.text_search("ship AND sea")] == []  # "and" is a word here


@pytest.mark.parametrize(
    "text, expected",
    [("ship", '"ship"'), ('ship "sea', '"ship" "sea"'), ("chap*", '"chap"*'), ("AND", '"AND"'),
     ("*", None), ('"', None), ("", None), ("foo_bar", '"foo bar"'), ("Fe\u0301e", '"Fée"')],
)
def test_fts_query_table(text, expected):
    assert meta.fts_query(text) == expected


@pytest.mark.parametrize(
    "date, year",
    [("1795", 1795), ("c. 1800", 1800), ("1823-02-17", 1823), ("[1795?]", 1795), ("1795-1800", 1795),
     ("MDCCXCV", None), ("18--", None), ("", None), ("no. 12345", None), ("printed 2001", 2001)],
)
def test_year_of(date, year):
    assert meta.year_of(date) == year


# -- filters ------------------------------------------------------------------------------------


def filter_index(path):
    specs = [("m1", "book-a", "1795", "illustration"), ("m1", "book-a", "1795", "map"),
             ("m2", "book-b", "c. 1820", "illustration"), (None, "book-c", "1823-02-17", "illustration"),
             (None, "book-d", "", "illustration")]
    regions = [region(n, manifest=m, book=b, date=d, kind=kind, caption="a woodcut")
               for n in range(200) for m, b, d, kind in [specs[n % 5]]]
    vecs = unit(11, len(regions))
    with Index.create_or_open(path, model_info=MODEL, config=CONFIG) as idx:
        idx.add(regions, vecs)
        idx.set_class([r.key for r in regions[:20]], ["woodcut"] * 10 + ["engraving"] * 10, [0.9] * 20)
    return regions, vecs


FILTER_CASES = [
    (Filters(manifest="m1"), lambda r: r.page.manifest == "m1"),
    (Filters(manifest="book-c"), lambda r: r.book.id == "book-c"),  # a book id works as manifest
    (Filters(book="book-b"), lambda r: r.book.id == "book-b"),
    (Filters(kinds=("map",)), lambda r: r.kind == "map"),
    (Filters(kinds="map"), lambda r: r.kind == "map"),
    (Filters(date_from=1800), lambda r: meta.year_of(r.book.date) and meta.year_of(r.book.date) >= 1800),
    (Filters(date_from=1790, date_to=1821), lambda r: meta.year_of(r.book.date) in (1795, 1820)),
    (Filters(manifest="m1", kinds=("illustration",)), lambda r: r.page.manifest == "m1" and r.kind == "illustration"),
]


@pytest.mark.parametrize("exact_filtered, exact_below", [(50_000, 20_000), (5, 20_000), (5, 0)],
                         ids=["exact", "oversampled", "oversampled-hnsw"])
def test_filtered_search_returns_the_nearest_matching(tmp_path, monkeypatch, exact_filtered, exact_below):
    monkeypatch.setattr(queries, "EXACT_FILTERED", exact_filtered)
    monkeypatch.setattr(queries, "EXACT_BELOW", exact_below)
    regions, vecs = filter_index(tmp_path / "ix")
    q = unit(12)[0]
    sims = f16(vecs) @ q
    approximate = exact_below == 0  # HNSW: its multi-threaded build differs run to run
    overlap = total = 0
    with Index.open(tmp_path / "ix") as idx:
        for filters, pred in FILTER_CASES:
            allowed = [i for i, r in enumerate(regions) if pred(r)]
            best = [regions[i].key for i in sorted(allowed, key=lambda i: -sims[i])[:5]]
            hits = idx.search(q, k=5, filters=filters)
            if approximate:  # k hits, all passing the filter, best first; recall checked below
                assert len(hits) == 5 and {h.key for h in hits} <= {regions[i].key for i in allowed}, filters
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
                overlap, total = overlap + len({h.key for h in hits} & set(best)), total + 5
            else:
                assert [h.key for h in hits] == best, filters
            found = {h.key for h in idx.text_search("woodcut", k=500, filters=filters)}
            assert found == {regions[i].key for i in allowed}, filters
    assert overlap >= 0.9 * total  # recall@5 of the filtered HNSW path (measured: 1.0 in most runs)


def test_filtered_search_finds_matches_that_are_far_away(tmp_path, monkeypatch):
    monkeypatch.setattr(queries, "EXACT_FILTERED", 5)  # many candidates: HNSW oversampling
    monkeypatch.setattr(queries, "EXACT_BELOW", 0)
    q = unit(21)[0]
    near = unit(22, 380) + 2 * q  # everything near the query, except the maps
    far = unit(23, 20) - 2 * q
    regions = [region(n, kind="map" if n >= 380 else "illustration") for n in range(400)]
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.add(regions, np.vstack([near, far]))
    with Index.open(tmp_path / "ix") as idx:
        hits = idx.search(q, k=5, filters=Filters(kinds=("map",)))
    best = np.argsort(-(f16(far / np.linalg.norm(far, axis=1, keepdims=True)) @ q))[:5]
    assert [h.key for h in hits] == [regions[380 + i].key for i in best]


def test_class_filter_and_labels(tmp_path):
    regions, vecs = filter_index(tmp_path / "ix")
    with Index.open(tmp_path / "ix") as idx:
        hits = idx.search(unit(12)[0], k=50, filters=Filters(classes=("woodcut",)))
        assert sorted(h.key for h in hits) == sorted(r.key for r in regions[:10])
        assert {h.cls for h in hits} == {"woodcut"}
        assert idx.stats()["classes"] == {"woodcut": 10, "engraving": 10}
    with pytest.raises(BadRequest):
        Filters(date_from=1900, date_to=1800)


def test_exclude_drops_the_query_item(tmp_path):
    regions, vecs = build(tmp_path / "ix", 30)
    with Index.open(tmp_path / "ix") as idx:
        key = regions[4].key
        hits = idx.search(idx.vector(key), k=5, exclude=[key])
        assert key not in [h.key for h in hits] and len(hits) == 5
        hits = idx.search(idx.vector(key), k=5, exclude=[key], filters=Filters(book="book-a"))
        assert key not in [h.key for h in hits] and len(hits) == 5


def test_items_and_manifests(tmp_path):
    regions = [region(n, manifest=f"m{n % 2}", title=f"Title {n % 2}") for n in range(10)]
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.add(regions[::-1], unit(2, 10))
    with Index.open(tmp_path / "ix") as idx:
        assert idx.manifests() == [{"id": "m0", "title": "Title 0", "count": 5}, {"id": "m1", "title": "Title 1", "count": 5}]
        listed = idx.items(manifest="m1")
        assert [r.page.index for _, r in listed] == sorted(r.page.index for _, r in listed)
        assert {k for k, _ in listed} == {r.key for r in regions if r.page.manifest == "m1"}
        assert idx.items(manifest="m1", limit=2, offset=1) == listed[1:3]
        canvas = regions[0].page.id
        assert {r.page.id for _, r in idx.items(canvas=canvas)} == {canvas}
        assert len(idx.items()) == 10


def test_labels_written_by_a_later_writer_reach_readers(tmp_path):
    regions, vecs = build(tmp_path / "ix", 10)
    reader = Index.open(tmp_path / "ix")
    with Index.open(tmp_path / "ix", readonly=False) as labeller:  # quality work: no model needed
        labeller.set_class([r.key for r in regions[:3]], ["map", "map", None], [0.8, 0.7, None])
    reader.refresh()
    hits = reader.search(vecs[0], k=1, filters=Filters(classes=("map",)))
    assert hits[0].key == regions[0].key and hits[0].cls == "map"
    assert reader.stats()["classes"] == {"map": 2}
    reader.close()


def test_failures_are_data_and_cleared_by_success(tmp_path):
    regions = [region(n) for n in range(3)]
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.record_failure(regions[0].key, "/scans/0.jpg", "crop", "404 Not Found")
        idx.record_failure(regions[0].key, "/scans/0.jpg", "crop", "timeout")
        idx.record_failure(regions[1].key, "/scans/1.jpg", "embed", "bad image")
    with Index.open(tmp_path / "ix") as idx:
        failures = {f["key"]: f for f in idx.failures()}
        assert failures[regions[0].key]["attempts"] == 2 and failures[regions[0].key]["reason"] == "timeout"
        assert idx.stats()["failures"] == 2
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.add(regions[:1], unit(1))
    with Index.open(tmp_path / "ix") as idx:
        assert [f["key"] for f in idx.failures()] == [regions[1].key]


def test_drops_are_remembered_per_classifier_are_not_failures_and_are_forgotten_when_indexed(tmp_path):
    regions = [region(n) for n in range(3)]
    keys = [r.key for r in regions]
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.record_failure(keys[0], "/scans/0.jpg", "crop", "timeout")
        idx.record_drops(keys[:2], ["ornament", "blank-page"], [0.9, 0.8], "digest-a")
        with pytest.raises(BadRequest, match="2 keys, 1 labels and 2 scores"):
            idx.record_drops(keys[:2], ["ornament"], [0.9, 0.8], "digest-a")
    with Index.open(tmp_path / "ix") as idx:
        assert idx.failures() == []  # fetched and embedded this time: not a failure any more
        assert idx.still_dropped(keys, "digest-a", ["ornament", "map"]) == {keys[0]: "ornament"}
        assert idx.still_dropped(keys, "digest-b", ["ornament", "blank-page"]) == {}
        assert idx.stats()["dropped"] == {"blank-page": 1, "ornament": 1}
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.record_drops(keys[1:2], ["map"], [0.7], "digest-b")  # a new classifier's verdict replaces the old
        idx.add(regions[:1], unit(1))
    with Index.open(tmp_path / "ix") as idx:
        assert idx.still_dropped(keys, "digest-a", ["ornament", "blank-page", "map"]) == {}
        assert idx.still_dropped(keys, "digest-b", ["map"]) == {keys[1]: "map"}
        assert idx.stats()["dropped"] == {"map": 1} and len(idx) == 1
        assert idx.info["counts"] == {"items": 1, "failures": 0, "dropped": 1}  # as of the last save
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.record_failure(keys[1], "/scans/1.jpg", "fetch", "HTTP 404")  # the dropped item's image is gone
    with Index.open(tmp_path / "ix") as idx:  # a failure now, retried next run; no longer a drop
        assert [f["key"] for f in idx.failures()] == [keys[1]]
        assert idx.still_dropped(keys, "digest-b", ["map"]) == {} and idx.stats()["dropped"] == {}


def test_an_index_of_schema_2_gets_its_dropped_table_when_opened_for_writing(tmp_path):
    regions, vecs = build(tmp_path / "ix", 5)
    con = sqlite3.connect(tmp_path / "ix" / "meta.sqlite")
    con.executescript("DROP TABLE dropped; PRAGMA user_version = 2;")  # as schema 2 made it
    con.close()
    info_path = tmp_path / "ix" / "bookidx.json"
    info_path.write_text(json.dumps({**json.loads(info_path.read_text()), "schema": 2}))
    with pytest.raises(IndexMismatch, match="run `bookidx upgrade .*ix` once"):
        Index.open(tmp_path / "ix")
    with Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG) as idx:
        idx.record_drops([region(9).key], ["ornament"], [0.5], "digest-a")
    with Index.open(tmp_path / "ix") as idx:
        assert idx.info["schema"] == store.SCHEMA_VERSION == 4 and len(idx) == 5
        assert idx.search(vecs[2], k=1)[0].key == regions[2].key
        assert idx.stats()["dropped"] == {"ornament": 1}


def test_bookidx_upgrade_migrates_an_index_for_serving(tmp_path):
    from click.testing import CliRunner

    from bookidx.cli import cli

    build(tmp_path / "ix", 5)
    con = sqlite3.connect(tmp_path / "ix" / "meta.sqlite")
    con.executescript("DROP TABLE dropped; PRAGMA user_version = 2;")
    con.close()
    result = CliRunner().invoke(cli, ["upgrade", str(tmp_path / "ix")])
    assert result.exit_code == 0 and "schema 2 -> 4" in result.output, result.output
    with Index.open(tmp_path / "ix") as idx:  # read-only, as `bookidx serve` opens it
        assert len(idx) == 5 and idx.stats()["dropped"] == {}
    again = CliRunner().invoke(cli, ["upgrade", str(tmp_path / "ix")])
    assert again.exit_code == 0 and "already at schema 4" in again.output
    (tmp_path / "empty").mkdir()
    missing = CliRunner().invoke(cli, ["upgrade", str(tmp_path / "empty")])
    assert missing.exit_code != 0 and "no bookidx index" in missing.output


def test_bookidx_upgrade_refuses_what_is_not_a_finished_index_and_leaves_vectors_alone(tmp_path):
    from click.testing import CliRunner

    from bookidx.cli import cli

    build(tmp_path / "ix", 5)
    vectors = (tmp_path / "ix" / store.VECTORS).read_bytes()
    con = sqlite3.connect(tmp_path / "ix" / "meta.sqlite")
    con.executescript("DROP TABLE dropped; PRAGMA user_version = 2;")
    con.close()
    with Index.open(tmp_path / "ix", readonly=False):  # a running `bookidx index` holds the lock
        locked = CliRunner().invoke(cli, ["upgrade", str(tmp_path / "ix")])
    assert locked.exit_code != 0 and "Traceback" not in locked.output
    assert CliRunner().invoke(cli, ["upgrade", str(tmp_path / "ix")]).exit_code == 0
    assert (tmp_path / "ix" / store.VECTORS).read_bytes() == vectors

    cut = tmp_path / "cut"  # creation cut short: the files exist, the schema does not
    cut.mkdir()
    (cut / "bookidx.json").write_text((tmp_path / "ix" / "bookidx.json").read_text())
    sqlite3.connect(cut / "meta.sqlite").close()
    answer = CliRunner().invoke(cli, ["upgrade", str(cut)])
    assert answer.exit_code != 0 and "creation was cut short" in answer.output
    (cut / "meta.sqlite").write_bytes(b"not a database" * 100)
    answer = CliRunner().invoke(cli, ["upgrade", str(cut)])
    assert answer.exit_code != 0 and "cannot be read as an index" in answer.output and "Traceback" not in answer.output


# -- crashes, readers, threads -------------------------------------------------------------------


def _crashing_writer(path: str, log: str, start: int) -> None:
    """Add batches forever, saving the vector file at every commit, re-adding old keys too."""
    idx = Index.create_or_open(path, model_info=MODEL, config=CONFIG)
    idx.save_interval = 0
    n = start
    while True:
        batch = list(range(n, n + 25)) + list(range(0, n, max(n // 5, 1)))[:5]  # some re-adds
        idx.add([region(i) for i in batch], unit(n, len(batch)))
        idx.commit()
        with open(log, "a") as f:
            f.write(f"{n + 25}\n")
        n += 25


def _check_consistent(path, committed: int) -> int:
    with Index.open(path) as idx:
        n = len(idx)
        assert n >= committed  # everything committed survived
        assert graph_count(idx) >= n
        keys = [k for k, _ in idx.items()]
        assert len(set(keys)) == n
        vecs = np.stack([idx.vector(k) for k in keys])
        top = idx.search(vecs, k=2)
        assert [row[0].key for row in top] == keys  # every item is found by its own vector
        assert all(row[0].key != row[1].key for row in top if len(row) == 2)  # no duplicates
    return n


def test_kill_9_at_any_moment_leaves_a_searchable_index(tmp_path):
    path, log = str(tmp_path / "ix"), str(tmp_path / "log")
    ctx = multiprocessing.get_context("fork")
    rng = np.random.default_rng(0)
    committed = start = 0
    for trial in range(20):
        lines_before = len(open(log).read().split()) if os.path.exists(log) else 0
        proc = ctx.Process(target=_crashing_writer, args=(path, log, start), daemon=True)
        proc.start()
        deadline = time.monotonic() + 10
        while (len(open(log).read().split()) if os.path.exists(log) else 0) <= lines_before:
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.002)
        time.sleep(float(rng.uniform(0, 0.03)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        done = [int(x) for x in open(log).read().split()]
        committed = start = max(done)
        _check_consistent(path, committed)
    with Index.create_or_open(path, model_info=MODEL, config=CONFIG):
        pass  # the writer repairs the file; then everything is in it
    with Index.open(path) as idx:
        assert idx.stats()["vectors_overlay"] == 0 and graph_count(idx) == len(idx)
    assert _check_consistent(path, committed) >= 20 * 25


def _second_process_writer(path: str, steps, readd, close) -> None:
    idx = Index.create_or_open(path, model_info=MODEL, config=CONFIG)
    idx.save_interval = 1e9  # commits only reach readers through SQLite until close
    idx.add([region(i) for i in range(50, 100)], unit(2, 50))
    idx.commit()
    steps.put("committed")
    readd.wait()
    idx.add([region(0)], unit(3))
    idx.commit()
    steps.put("re-added")
    # One event per step: with one event, set for the step before, the writer could run on to
    # close (and save the file) before the reader had looked at the re-added row.
    close.wait()
    idx.close()
    steps.put("closed")


def test_reader_refresh_sees_another_process_commits(tmp_path):
    regions, vecs = build(tmp_path / "ix", 50)
    reader = Index.open(tmp_path / "ix")
    assert reader.refresh() is False  # nothing changed: cheap no-op
    ctx = multiprocessing.get_context("fork")
    steps, readd, close = ctx.Queue(), ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_second_process_writer, args=(str(tmp_path / "ix"), steps, readd, close), daemon=True)
    proc.start()
    try:
        new = unit(2, 50)
        assert steps.get(timeout=20) == "committed"
        assert reader.search(new[0], k=1)[0].score < 0.99
        assert reader.refresh() is True and reader.refresh() is False
        assert len(reader) == 100 and reader.search(new[0], k=1)[0].key == region(50).key
        assert reader.stats()["vectors_overlay"] == 50
        readd.set()
        assert steps.get(timeout=20) == "re-added"
        reader.refresh()
        assert reader.search(unit(3)[0], k=1)[0].key == regions[0].key
        stale = reader.search(vecs[0], k=100)
        assert len({h.key for h in stale}) == len(stale) == 100  # the old vector is hidden, not doubled
        close.set()
        assert steps.get(timeout=20) == "closed"
        proc.join(20)
        assert reader.refresh() is True
        assert reader.stats()["vectors_in_file"] == 100 and reader.stats()["vectors_overlay"] == 0
        assert [row[0].key for row in reader.search(new[:3], k=1)] == [region(i).key for i in (50, 51, 52)]
    finally:
        proc.kill()
        reader.close()


def test_many_threads_search_while_a_writer_adds(tmp_path):
    regions, vecs = build(tmp_path / "ix", 400)
    reader = Index.open(tmp_path / "ix")
    writer = Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG)
    writer.save_interval = 0  # replace the file under the readers as often as possible
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_loop(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                reader.refresh()
                i = int(rng.integers(400))
                hits = reader.search(vecs[i], k=5)
                assert hits[0].key == regions[i].key and len({h.key for h in hits}) == 5
                assert reader.text_search("nothing here") == []
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=search_loop, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    added = unit(4, 300)
    for b in range(15):
        writer.add([region(400 + i) for i in range(b * 20, b * 20 + 20)], added[b * 20 : b * 20 + 20])
        writer.commit()
        time.sleep(0.01)
    writer.close()
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    reader.refresh()
    assert len(reader) == 700
    assert [row[0].key for row in reader.search(added, k=1)] == [region(400 + i).key for i in range(300)]
    reader.close()


# -- stats: counted once per commit, never behind one ---------------------------------------------


def _counting_sql(monkeypatch) -> list[str]:
    """Every counting statement run on the connections of Index objects opened after this."""
    seen: list[str] = []
    connect = meta.connect

    def traced(path, *, readonly):
        con = connect(path, readonly=readonly)
        con.set_trace_callback(lambda sql: seen.append(sql) if "count(" in sql else None)
        return con

    monkeypatch.setattr(meta, "connect", traced)
    return seen


def _stats_writer(path: str, steps, label, close) -> None:
    with Index.create_or_open(path, model_info=MODEL, config=CONFIG) as idx:
        idx.add([region(i, caption="lighthouse", kind="map") for i in range(10, 15)], unit(5, 5))
        idx.commit()
        steps.put("added")
        label.wait()
        idx.set_class([region(10).key, region(11).key], ["chart", "chart"])
        idx.commit()
        steps.put("labelled")
        close.wait()  # closing saves the vector file: a commit of its own


def test_stats_are_counted_once_per_commit_and_see_another_process_commit_at_once(tmp_path, monkeypatch):
    build(tmp_path / "ix", 10)
    counting = _counting_sql(monkeypatch)
    reader = Index.open(tmp_path / "ix")
    ctx = multiprocessing.get_context("fork")
    steps, label, close = ctx.Queue(), ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_stats_writer, args=(str(tmp_path / "ix"), steps, label, close), daemon=True)
    try:
        first = reader.stats()
        assert first["items"] == 10 and first["kinds"] == {"illustration": 10} and counting
        counting.clear()
        first["kinds"]["illustration"] = 0  # a caller's change does not reach the cache
        assert reader.stats() == {**first, "kinds": {"illustration": 10}} and counting == []
        proc.start()
        assert steps.get(timeout=20) == "added"
        # No refresh(): keyword search sees the commit at once, and so must stats.
        assert len(reader.text_search("lighthouse")) == 5
        after = reader.stats()
        assert after["items"] == 15 and after["kinds"] == {"illustration": 10, "map": 5} and counting
        assert after["vector_bytes"] == 15 * NDIM * 2
        label.set()
        assert steps.get(timeout=20) == "labelled"
        assert reader.stats()["classes"] == {"chart": 2}  # a commit that adds no item counts too
        counting.clear()
        assert reader.stats()["classes"] == {"chart": 2} and counting == []
    finally:
        label.set()
        close.set()
        if proc.pid is not None:  # started
            proc.join(20)
            proc.kill()
        reader.close()


def test_stats_never_lag_a_commit_while_other_threads_read_them(tmp_path, monkeypatch):
    build(tmp_path / "ix", 20)
    reader = Index.open(tmp_path / "ix")
    writer = Index.create_or_open(tmp_path / "ix", model_info=MODEL, config=CONFIG)
    stop, errors = threading.Event(), []

    def read_stats() -> None:  # keeps the cache warm between the writer's commits
        try:
            while not stop.is_set():
                assert reader.stats()["items"] >= 20
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read_stats) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for b in range(20):
            writer.add([region(20 + 5 * b + i) for i in range(5)], unit(10 + b, 5))
            assert writer.stats()["items"] == 25 + 5 * b  # a writer counts its own uncommitted adds
            writer.commit()
            assert reader.stats()["items"] == 25 + 5 * b
    finally:
        stop.set()
        for t in threads:
            t.join()
        writer.close()
    assert not errors, errors[0]
    counting = _counting_sql(monkeypatch)
    with Index.open(tmp_path / "ix") as again:  # its connections are traced
        assert again.stats()["items"] == reader.stats()["items"] == 120 and counting
        counting.clear()
        assert again.stats()["items"] == 120 and counting == []  # nothing committed since
    reader.close()
