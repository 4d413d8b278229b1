"""bookidx.dedup and `bookidx duplicates`: near-duplicate groups, stored, shown and collapsed.

The planted duplicates are real chapbook pages: one listed twice under two file names (the same
vector) and one re-encoded as a small, lossy JPEG (a near-identical vector), among pages that
are not reprints of each other. Vectors come from the ``test-pixels`` embedder (conftest.py).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3

import pytest
from bookidx import meta
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.dedup import components, find_groups, pair_metrics, store_groups
from bookidx.errors import BadRequest, NotFound
from bookidx.runner import index
from bookidx.search import Query, run
from bookidx.store import Index
from click.testing import CliRunner
from PIL import Image

ORIGINAL = "104820870.3.jpg"


@pytest.fixture()
def planted(chapbooks, tmp_path):
    """An index of 8 distinct pages plus two copies of the first: (index dir, {name: key})."""
    folder = tmp_path / "pages"
    folder.mkdir()
    names = sorted(p.name for p in (chapbooks / "images").glob("*.jpg"))[:8]
    assert names[0] == ORIGINAL
    for name in names:
        os.symlink(chapbooks / "images" / name, folder / name)
    shutil.copy(chapbooks / "images" / ORIGINAL, folder / "copy-of-first.jpg")
    with Image.open(chapbooks / "images" / ORIGINAL) as im:  # resized to 60 % and re-encoded at quality 40
        im.convert("RGB").resize((im.width * 6 // 10, im.height * 6 // 10)).save(folder / "small-first.jpg", quality=40)
    summary = index([str(folder)], tmp_path / "idx", IndexConfig(model="test-pixels", workers=2))
    assert summary.indexed == 10
    with Index.open(tmp_path / "idx") as idx:
        keys = {r.page.image.path.rsplit("/", 1)[1]: key for key, r in idx.items()}
    return tmp_path / "idx", keys


def test_duplicates_cli_groups_the_planted_copies_and_nothing_else(planted, tmp_path):
    path, keys = planted
    copies = sorted([keys[ORIGINAL], keys["copy-of-first.jpg"], keys["small-first.jpg"]])
    result = CliRunner().invoke(cli, ["duplicates", "--index", str(path)])
    assert result.exit_code == 0, result.output
    assert f"group {copies[0]} (3 items)" in result.stdout
    assert "1 groups of 3 items (3 pairs >= 0.93, 0 left out by --max-group)" in result.stderr
    with Index.open(path) as idx:
        assert [idx.group(k) for k in copies] == [copies] * 3
        assert idx.group(keys[sorted(keys)[3]]) == []
        assert idx.stats()["duplicate_groups"] == 1
    with (path / "duplicates.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == copies and {r["group"] for r in rows} == {str(copies[0])}
    assert {r["size"] for r in rows} == {"3"} and rows[0]["image"].endswith(".jpg")

    # A stricter threshold keeps only the byte-identical copy, and replaces the old group.
    assert CliRunner().invoke(cli, ["duplicates", "--index", str(path), "--threshold", "0.9999", "--csv", str(tmp_path / "d.csv")]).exit_code == 0
    with Index.open(path) as idx:
        assert idx.group(keys["small-first.jpg"]) == []
        assert idx.group(keys[ORIGINAL]) == sorted([keys[ORIGINAL], keys["copy-of-first.jpg"]])


def test_hits_carry_the_group_and_collapse_shows_it_once(planted):
    path, keys = planted
    with Index.open(path, readonly=False) as idx:
        store_groups(idx, find_groups(idx))
    copies = {keys[ORIGINAL], keys["copy-of-first.jpg"], keys["small-first.jpg"]}
    query_key = keys[sorted(keys)[2]]  # another page: the copies rank wherever they rank, together
    with Index.open(path) as idx:
        every = run(idx, Query(similar=query_key, limit=20))
        assert len(every) == 9 and sum(h.key in copies for h in every) == 3
        assert {(h.group, h.group_size) for h in every if h.key in copies} == {(min(copies), 3)}
        assert {(h.group, h.group_size) for h in every if h.key not in copies} == {(None, 1)}
        collapsed = run(idx, Query(similar=query_key, limit=20, collapse=True))
        assert len(collapsed) == 7 and sum(h.key in copies for h in collapsed) == 1
        best_copy = next(h for h in every if h.key in copies)
        assert best_copy in collapsed  # the group shows as its best-ranked member
        # Paging a collapsed list: the pages join up to the whole list.
        pages = [run(idx, Query(similar=query_key, limit=3, offset=o, collapse=True)) for o in (0, 3, 6)]
        assert [h.key for page in pages for h in page] == [h.key for h in collapsed]
        # Asking for one copy finds the others first; collapsed, only other pictures follow.
        near = run(idx, Query(similar=keys[ORIGINAL], limit=2))
        assert {h.key for h in near} == copies - {keys[ORIGINAL]}
        assert [h.group for h in run(idx, Query(similar=keys[ORIGINAL], limit=2, collapse=True))].count(min(copies)) == 1

    out = CliRunner().invoke(cli, ["search", str(path), "--similar", str(query_key), "--collapse", "--json", "-k", "20"])
    assert out.exit_code == 0, out.output
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(hits) == 7 and [h["group_size"] for h in hits].count(3) == 1
    text = CliRunner().invoke(cli, ["search", str(path), "--similar", str(query_key), "-k", "20"])
    assert text.stdout.count("(3 copies)") == 3


def test_components_join_strongest_first_and_cap_the_group_size():
    # A chain a-b-c-d-e of falling similarity, and a separate pair x-y.
    edges = [("c", "d", 0.95), ("a", "b", 0.99), ("b", "c", 0.97), ("d", "e", 0.94), ("x", "y", 0.96)]
    groups, capped = components(edges, max_size=50)
    assert groups == (("a", "b", "c", "d", "e"), ("x", "y")) and capped == 0
    groups, capped = components(edges, max_size=3)
    # a-b, then x-y, then b-c (a,b,c); c-d would make 4: refused; d-e forms its own pair.
    assert groups == (("a", "b", "c"), ("d", "e"), ("x", "y")) and capped == 1
    assert components([], max_size=2) == ((), 0)


def test_pair_metrics_count_every_pair_inside_a_group():
    truth = [("a", "b"), ("c", "a"), ("d", "e")]
    m = pair_metrics([("a", "b", "c"), ("x", "y")], truth)
    # predicted pairs: ab, ac, bc, xy; true ones among them: ab, ac
    assert m == {"predicted_pairs": 4, "reference_pairs": 3, "true_positives": 2, "precision": 0.5, "recall": 2 / 3}


def test_bad_settings_and_unknown_items_are_refused(planted):
    path, _ = planted
    with Index.open(path, readonly=False) as idx:
        for kwargs in ({"threshold": 0.0}, {"threshold": 1.5}, {"neighbours": 0}, {"max_size": 1}):
            with pytest.raises(BadRequest):
                find_groups(idx, **kwargs)
        with pytest.raises(NotFound):
            idx.set_groups({123: 123})
        with pytest.raises(NotFound):
            idx.group(123)
    result = CliRunner().invoke(cli, ["duplicates", "--index", str(path), "--threshold", "2"])
    assert result.exit_code == 1 and "threshold" in result.output


def test_an_index_of_schema_1_gets_its_group_column_when_opened_for_writing(planted):
    path, keys = planted
    con = sqlite3.connect(path / meta.DB)
    con.executescript("DROP INDEX items_grp; ALTER TABLE items DROP COLUMN grp; PRAGMA user_version = 1;")
    con.close()
    with pytest.raises(Exception, match="run `bookidx upgrade"):
        Index.open(path)
    with Index.open(path, readonly=False) as idx:
        store_groups(idx, find_groups(idx))
    with Index.open(path) as idx:
        assert len(idx.group(keys[ORIGINAL])) == 3 and len(idx) == 10


def test_api_lists_an_item_s_duplicates_most_similar_first(planted):
    import jsonschema
    import referencing
    from bookidx.web import create_blueprint
    from flask import Flask

    path, keys = planted
    with Index.open(path, readonly=False) as idx:
        store_groups(idx, find_groups(idx))
    app = Flask(__name__)
    app.config.update(TESTING=True)
    app.register_blueprint(create_blueprint(str(path)))
    client = app.test_client()
    doc = client.get("/bookidx/openapi.json").get_json()
    registry = referencing.Registry().with_resource(
        "urn:openapi", referencing.Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT202012))
    schema = jsonschema.Draft202012Validator({"$ref": "urn:openapi#/components/schemas/Duplicates"}, registry=registry)

    copies = sorted([keys[ORIGINAL], keys["copy-of-first.jpg"], keys["small-first.jpg"]])
    body = client.get(f"/bookidx/api/items/{keys[ORIGINAL]}/duplicates").get_json()
    schema.validate(body)
    assert body["group"] == str(copies[0]) and body["group_size"] == 3
    # The byte-identical copy first (cosine 1), then the re-encoded one.
    assert [h["id"] for h in body["hits"]] == [str(keys["copy-of-first.jpg"]), str(keys["small-first.jpg"])]
    assert body["hits"][0]["score"] > 0.999 > body["hits"][1]["score"] > 0.93
    assert all(h["group"] == str(copies[0]) and h["group_size"] == 3 for h in body["hits"])
    alone = client.get(f"/bookidx/api/items/{keys[sorted(keys)[4]]}/duplicates").get_json()
    assert alone["group"] is None and alone["group_size"] == 1 and alone["hits"] == []
    assert client.get("/bookidx/api/items/123/duplicates").status_code == 404
    collapsed = client.get(f"/bookidx/api/search?similar={keys[sorted(keys)[2]]}&limit=20&collapse=true").get_json()
    assert len(collapsed["hits"]) == 7 and [h["group_size"] for h in collapsed["hits"]].count(3) == 1


def test_whitening_keeps_the_copies_and_needs_enough_items(planted):
    path, keys = planted
    copies = sorted([keys[ORIGINAL], keys["copy-of-first.jpg"], keys["small-first.jpg"]])
    with Index.open(path, readonly=False) as idx:
        white = find_groups(idx, threshold=0.9, whiten=4)
        assert white.groups == (tuple(copies),)
        assert all(0.9 <= s <= 1.0001 for _, _, s in white.pairs)
        with pytest.raises(BadRequest, match="whiten"):
            find_groups(idx, whiten=1)
    result = CliRunner().invoke(cli, ["duplicates", "--index", str(path), "--whiten", "4", "--threshold", "0.9"])
    assert result.exit_code == 0 and f"group {copies[0]} (3 items)" in result.stdout
