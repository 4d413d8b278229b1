"""bookidx eval: the seeded distortions, the exact-image protocol, duplicates, labelled queries, re-ranking.

The index is 20 real NLS chapbook pages embedded with the conftest ``test-pixels`` model, so
everything runs in seconds with no weights.
"""

from __future__ import annotations

import csv
import json
import random
import shutil

import numpy as np
import pytest
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.crops import CropReader
from bookidx.distort import MAX_ANGLE, MAX_CROP, MAX_SCALE, Distortion, draw
from bookidx.errors import SourceError
from bookidx.evaluate import exact
from bookidx.fetch import Fetcher
from bookidx.itemrefs import keys_by_name, read_duplicates
from bookidx.labelled import LabelledQuery, LabelledResult, read_queries
from bookidx.runner import index as build_index
from bookidx.store import Hit, Index
from click.testing import CliRunner
from conftest import PixelEmbedder
from PIL import Image

N_PAGES = 20


@pytest.fixture(scope="module")
def pages(chapbooks, tmp_path_factory):
    """20 chapbook pages, plus ``copy.jpg``: a byte copy of the first (a known duplicate)."""
    folder = tmp_path_factory.mktemp("pages")
    names = sorted(p.name for p in (chapbooks / "images").glob("*.jpg"))[:N_PAGES]
    for name in names:
        shutil.copy(chapbooks / "images" / name, folder / name)
    shutil.copy(folder / names[0], folder / "copy.jpg")
    return folder, names


@pytest.fixture(scope="module")
def index_dir(pages, tmp_path_factory):
    out = tmp_path_factory.mktemp("index")
    summary = build_index([str(pages[0])], out, IndexConfig(model="test-pixels", workers=2, dtype="f32"),
                          embedder=PixelEmbedder())
    assert summary.indexed == N_PAGES + 1
    return out


@pytest.fixture()
def idx(index_dir):
    with Index.open(index_dir) as index:
        yield index


def reader() -> CropReader:
    return CropReader(Fetcher(), max_side=448)


# -- distortions -------------------------------------------------------------------------------


def test_distortions_are_seeded_and_within_the_protocol_bounds():
    first = [draw(random.Random(7)) for _ in range(3)]
    assert first == [draw(random.Random(7)) for _ in range(3)]
    rng = random.Random(7)
    drawn = [draw(rng) for _ in range(2000)]
    assert len(set(drawn)) == 2000
    assert drawn != [draw(random.Random(8)) for _ in range(2000)]
    for d in drawn:
        assert all(0 <= side <= MAX_CROP for side in (d.left, d.top, d.right, d.bottom))
        assert -MAX_ANGLE <= d.angle <= MAX_ANGLE
        assert all(1 - MAX_SCALE <= s <= 1 + MAX_SCALE for s in (d.scale_x, d.scale_y))
        assert 0 <= d.strength <= 1
    # The draws fill the ranges: both signs of rotation, growth and shrinkage, near-maximal crops.
    assert min(d.angle for d in drawn) < -9 and max(d.angle for d in drawn) > 9
    assert min(d.scale_x for d in drawn) < 0.82 and max(d.scale_y for d in drawn) > 1.18
    assert max(d.left for d in drawn) > 0.14
    with pytest.raises(ValueError):
        draw(random.Random(0), max_crop=0.5)


def test_a_distortion_crops_rotates_and_scales_as_it_says():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    crop_only = Distortion(0.1, 0.05, 0.15, 0.0, angle=0.0, scale_x=1.0, scale_y=1.0)
    out = crop_only.apply(image)
    assert out.size == (150, 285)
    assert np.array_equal(np.asarray(out), np.asarray(image)[15:300, 20:170])
    scaled = Distortion(0, 0, 0, 0, angle=0.0, scale_x=0.8, scale_y=1.2).apply(image)
    assert scaled.size == (160, 360)
    rotated = Distortion(0, 0, 0, 0, angle=10.0, scale_x=1.0, scale_y=1.0).apply(image)
    # expand=True keeps every pixel: the bounding box of a 200 x 300 box turned 10 degrees.
    assert rotated.size[0] == pytest.approx(200 * 0.985 + 300 * 0.174, abs=2)
    assert rotated.getpixel((0, 0)) == (255, 255, 255)  # new corners are white
    strongest = Distortion(MAX_CROP, MAX_CROP, MAX_CROP, MAX_CROP, MAX_ANGLE, 1 - MAX_SCALE, 1 + MAX_SCALE)
    assert strongest.strength == pytest.approx(1.0)
    assert Distortion(0, 0, 0, 0, 0.0, 1.0, 1.0).strength == 0.0


# -- the exact-image protocol ------------------------------------------------------------------


def test_exact_finds_distorted_pages_and_is_repeatable(idx):
    result = exact(idx, PixelEmbedder(), reader(), n=15, seed=3)
    assert len(result.queries) == 15 and result.items == N_PAGES + 1
    assert [result.accuracy(k) for k in result.ks] == sorted(result.accuracy(k) for k in result.ks)
    assert result.accuracy(50) == 1.0  # every item is within 50 of 21
    assert result.accuracy(5) >= 0.6  # a crude thumbnail still finds most pages near the top
    again = exact(idx, PixelEmbedder(), reader(), n=15, seed=3)
    assert [(q.key, q.distortion, q.rank) for q in again.queries] == [(q.key, q.distortion, q.rank) for q in result.queries]
    other = exact(idx, PixelEmbedder(), reader(), n=15, seed=4)
    assert [q.distortion for q in other.queries] != [q.distortion for q in result.queries]
    data = result.to_dict()
    assert data["accuracy"]["top1"]["count"] == sum(1 for q in result.queries if q.rank == 1)
    assert sum(b["n"] for b in data["by_strength"]) == 15
    assert data["reference"]["SigLIP"]["top1"] == 0.77


def test_exact_cli_writes_table_json_and_plot(index_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "exact.json", tmp_path / "exact.png"
    res = CliRunner().invoke(cli, ["eval", "exact", "--index", str(index_dir), "--n", "8", "--seed", "1",
                                   "--json", str(out), "--plot", str(png), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Top-1" in res.output and "SigLIP" in res.output and "not directly comparable" in res.output
    data = json.loads(out.read_text())
    assert data["queries"] == 8 and len(data["per_query"]) == 8
    assert data["accuracy"]["top50"]["accuracy"] == 1.0
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 500


def test_a_known_duplicate_hit_counts_only_with_the_duplicates_file(idx, pages, tmp_path):
    _, names = pages
    dup_csv = tmp_path / "pairs.csv"
    dup_csv.write_text("cosine_inception_v3,file_a,file_b,visual_check\n"
                       f"0.99,{names[0]},copy.jpg,same scan\n0.95,{names[1]},not-indexed.jpg,\n")
    dups, missing = read_duplicates(dup_csv, idx)
    key_a, key_b = (next(iter(keys_by_name(idx, [n])[n])) for n in (names[0], "copy.jpg"))
    assert dups == {key_a: frozenset({key_b}), key_b: frozenset({key_a})}
    assert missing == ["not-indexed.jpg"]
    result = exact(idx, PixelEmbedder(), reader(), n=N_PAGES + 1, seed=0, duplicates=dups)
    qa, qb = (next(q for q in result.queries if q.key == k) for k in (key_a, key_b))
    # The two pages have one vector, so they rank side by side: for the query whose own page
    # comes second, the duplicate counts one place earlier; the other query gains nothing.
    assert sorted([qa.rank - qa.rank_with_duplicates, qb.rank - qb.rank_with_duplicates]) == [0, 1]
    gained = qa if qa.rank_with_duplicates < qa.rank else qb
    k = gained.rank_with_duplicates
    assert result.accuracy(k, with_duplicates=True) > result.accuracy(k, with_duplicates=False)
    assert all(q.rank_with_duplicates == q.rank for q in result.queries if q.key not in (key_a, key_b))
    assert result.to_dict()["accuracy_exact_item_only"]["top1"]["accuracy"] == round(result.accuracy(1, False), 4)


def test_duplicates_by_item_id_without_a_header(idx, tmp_path):
    (a, _), (b, _) = idx.items(limit=2)
    path = tmp_path / "ids.csv"
    path.write_text(f"{a},{b}\n")
    assert read_duplicates(path, idx)[0] == {a: frozenset({b}), b: frozenset({a})}
    path.write_text(f"{a}\n")
    with pytest.raises(SourceError, match="line 1"):
        read_duplicates(path, idx)


# -- labelled queries --------------------------------------------------------------------------


def test_recall_and_mrr_by_hand():
    queries = [LabelledQuery(2, "a", None, frozenset({1, 2})), LabelledQuery(3, "b", None, frozenset({3})),
               LabelledQuery(4, "c", None, frozenset({4, 5, 6, 7}))]
    # Relevant items found at these ranks: q1 at 1 and 7; q2 not at all; q3 at 3, 4 and 12.
    result = LabelledResult(queries, [[1, 7], [], [3, 4, 12]], depth=100, skipped=[])
    assert result.recall(1) == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert result.recall(5) == pytest.approx((1 / 2 + 0 + 2 / 4) / 3)
    assert result.recall(10) == pytest.approx((2 / 2 + 0 + 2 / 4) / 3)
    assert result.mrr() == pytest.approx((1 + 0 + 1 / 3) / 3)


def test_queries_cli_on_image_and_text_rows(index_dir, pages, tmp_path):
    folder, names = pages
    shutil.copy(folder / names[3], tmp_path / "q3.jpg")
    rows = [["query", "image", "relevant"],
            ["", "q3.jpg", names[3]],  # an exact copy: its page is the first hit
            ["", str(folder / names[5]), f"{names[5]};{names[6]}"],
            ["woodcut", "", names[7]],  # no captions in this index: keyword search finds nothing
            ["", "q3.jpg", "nowhere.jpg"]]  # no relevant item indexed: skipped, not a miss
    with open(tmp_path / "queries.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    out = tmp_path / "queries.json"
    res = CliRunner().invoke(cli, ["eval", "queries", "--index", str(index_dir), str(tmp_path / "queries.csv"),
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["queries"] == 3 and len(data["skipped"]) == 1 and "line 5" in data["skipped"][0]
    first, second, text = data["per_query"]
    assert first["ranks"] == [1] and second["ranks"][0] == 1 and text["ranks"] == []
    assert data["recall@1"] == pytest.approx((1 + 1 / 2 + 0) / 3, abs=1e-4)
    assert data["mrr"] == pytest.approx((1 + 1 + 0) / 3, abs=1e-4)
    assert "Recall@10" in res.output and "MRR" in res.output


def test_queries_file_needs_its_columns(idx, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,items\nx,y\n")
    with pytest.raises(SourceError, match="relevant"):
        read_queries(path, idx)


# -- geometric re-ranking ----------------------------------------------------------------------


def test_rerank_brings_the_source_page_first(idx, pages):
    pytest.importorskip("cv2")
    from bookidx.rerank import Reranker

    _, names = pages
    # Distinct scans only: the first page and its byte copy would verify each other.
    items = [(k, r) for k, r in idx.items() if r.page.image.path.rsplit("/", 1)[-1] not in (names[0], "copy.jpg")]
    rr = Reranker(reader(), depth=10, side=320, keypoints=500)
    rng = random.Random(5)
    for key, region in items[:3]:
        query = draw(rng).apply(reader().read(region))
        others = [Hit(k, 0.9, r) for k, r in items if k != key][:9]
        hits = others + [Hit(key, 0.1, region)]  # the embedding ranked it last
        counts = rr.verify(query, hits)
        assert counts[-1] >= 4 * rr.min_inliers and max(counts[:-1]) < rr.min_inliers
        reranked = rr.rerank(query, hits)
        assert reranked[0].key == key and [h.key for h in reranked[1:]] == [h.key for h in others]


# -- regional pooling (the embedder change exact retrieval asked for) ----------------------------


def test_rmac_efficientnet_is_its_own_recorded_model(chapbooks):
    pytest.importorskip("efficientnet_lite_pytorch")
    from bookidx.embed import load_embedder, load_for_index
    from bookidx.errors import ConfigError

    model = load_embedder("efficientnet-lite0-rmac", device="cpu")
    assert model.info["model"] == "efficientnet-lite0-rmac" and model.ndim == 1280
    # An index records the name, so its queries are embedded the same way (and other models refused).
    assert load_for_index(model.info, device="cpu").model_id == "efficientnet-lite0-rmac"
    page, other = (Image.open(p).convert("RGB").reduce(2) for p in sorted((chapbooks / "images").glob("*.jpg"))[:2])
    vectors = model.embed_images([page, page.crop((0, 0, page.width, page.height * 9 // 10)), other])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # A tenth cut off stays near its page (0.97); another title page is far (0.50).
    assert float(vectors[0] @ vectors[1]) > 0.9
    assert float(vectors[0] @ vectors[2]) < 0.7
    with pytest.raises(ConfigError, match="pooling"):
        load_embedder("efficientnet-lite0", device="cpu", pooling="gem")

