"""bookidx.classify, .classify_train and `bookidx classify`: zero-shot labels, a trained classifier, dropping junk.

Zero-shot runs on a tiny random SigLIP (tests/tinymodels.py): its labels mean nothing, so the
tests check the mechanics (argmax of prompt cosines, softmax scores, stored labels, refusals).
Training runs on synthetic clusters whose right answer is known, and on real chapbook pages with
the ``test-pixels`` embedder for the index-time drop.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.classify import (
    CLASSES,
    CLASSIFIER,
    DEFAULT_PROMPTS,
    NLN_NAMES,
    Classifier,
    apply,
    zero_shot,
)
from bookidx.classify_train import nln_labels, read_labels, train
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.embed import load_embedder, model_identity
from bookidx.errors import BadRequest, ConfigError, IndexMismatch, NotFound
from bookidx.runner import index
from bookidx.search import Query, run
from bookidx.store import Filters, Index
from bookidx.web import create_blueprint
from click.testing import CliRunner
from flask import Flask
from PIL import Image

NDIM = 16
MODEL = {"model": "synthetic", "ndim": NDIM, "preprocess": {}}


def region(n: int) -> Region:
    page = Page(id=f"canvas/{n}", index=n, image=ImageRef(800, 1200, path=f"/scans/page-{n}.jpg"), width=800, height=1200)
    return Region(page=page, box=Box(10, 20, 300, 200), kind="Illustration", book=Book(id="b", title="Book"), source="b.xml")


def clusters(per_class: int, classes: int = 3, seed: int = 0, spread: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``classes`` orthogonal centres (axes 0, 1, 2...), and their class index."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), per_class)
    x = np.eye(NDIM, dtype=np.float32)[y] + spread * rng.normal(size=(len(y), NDIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def synthetic_index(path, vectors, model=MODEL) -> list[int]:
    regions = [region(i) for i in range(len(vectors))]
    with Index.create_or_open(path, model_info=model, config=IndexConfig(model=model["model"])) as idx:
        idx.add(regions, vectors)
    return [r.key for r in regions]


def stored_classes(path) -> dict[int, tuple[str | None, float | None]]:
    con = sqlite3.connect(f"file:{path / 'meta.sqlite'}?mode=ro", uri=True)
    try:
        return {k: (c, s) for k, c, s in con.execute("SELECT key, cls, cls_score FROM items")}
    finally:
        con.close()


# -- the scheme ----------------------------------------------------------------------------------


def test_scheme_is_nln_s_seven_classes_with_their_real_balance(corpus):
    pairs = nln_labels((corpus / "nln-chr24-labels/data/labelled_data.json").read_bytes())
    counts = {c: sum(1 for _, label in pairs if label == c) for c in CLASSES}
    assert len(pairs) == 2000
    assert counts == {"blank-page": 349, "segmentation-anomaly": 524, "illustration": 592, "musical-notation": 113,
                      "map": 44, "mathematical-chart": 48, "graphical-element": 330}
    # "about 40 %" of what layout analysis calls a picture is junk (blank pages and text fragments).
    assert 0.40 < (counts["blank-page"] + counts["segmentation-anomaly"]) / 2000 < 0.45
    assert set(NLN_NAMES.values()) == set(CLASSES) == set(DEFAULT_PROMPTS)


# -- zero-shot -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def siglip_dir():
    from tinymodels import tiny_model

    return tiny_model("siglip")


@pytest.fixture()
def siglip_index(tmp_path, chapbooks, siglip_dir):
    """Eight real chapbook pages embedded by the tiny SigLIP."""
    model = load_embedder(siglip_dir, device="cpu")
    names = sorted(p.name for p in (chapbooks / "images").glob("*.jpg"))[:8]
    regions, images = [], []
    for i, name in enumerate(names):
        with Image.open(chapbooks / "images" / name) as im:
            images.append(im.convert("RGB"))
            regions.append(Region(
                page=Page(id=f"c/{i}", index=i, image=ImageRef(im.width, im.height, path=str(chapbooks / "images" / name)),
                          width=im.width, height=im.height),
                box=Box(0, 0, im.width, im.height), kind="Illustration", source=name))
    path = tmp_path / "idx"
    with Index.create_or_open(path, model_info=model.info, config=IndexConfig(model=siglip_dir)) as idx:
        idx.add(regions, model.embed_images(images))
    return path, model


def test_zeroshot_cli_labels_every_item_by_argmax_prompt_cosine(siglip_index, tmp_path):
    path, model = siglip_index
    prompts = {"map": ["a map", "a city plan"], "blank-page": "a blank page", "illustration": ["a woodcut"]}
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    result = CliRunner().invoke(cli, ["classify", "zeroshot", "--index", str(path), "--prompts", str(tmp_path / "prompts.json")])
    assert result.exit_code == 0, result.output

    # The same answer worked out here: mean of unit prompt vectors, cosine, softmax at T = 100.
    means = []
    for texts in ([*prompts["map"]], [prompts["blank-page"]], [*prompts["illustration"]]):
        m = model.embed_texts(texts).mean(axis=0)
        means.append(m / np.linalg.norm(m))
    idx = Index.open(path)
    stored = stored_classes(path)
    for keys, rows in idx.vector_batches():
        logits = 100.0 * rows @ np.stack(means).T
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        for key, p in zip(keys.tolist(), probs):
            label, score = stored[key]
            assert label == list(prompts)[int(p.argmax())]
            assert 0.0 <= score <= 1.0 and score == pytest.approx(float(p.max()), abs=1e-3)
    assert sum(idx.stats()["classes"].values()) == len(idx) == 8
    saved = Classifier.load(path / CLASSIFIER)
    assert saved.method == "zeroshot" and saved.classes == ("map", "blank-page", "illustration")
    assert saved.model == model_identity(idx.info["model"])  # what the vectors depend on


def test_zeroshot_default_prompts_cover_the_scheme(siglip_index):
    path, model = siglip_index
    classifier = zero_shot(model)
    assert classifier.classes == tuple(DEFAULT_PROMPTS) and classifier.weights.shape == (7, model.ndim)
    with Index.open(path, readonly=False) as idx:
        counts = apply(idx, classifier)
    assert sum(counts.values()) == 8 and set(counts) <= set(CLASSES)


def test_zeroshot_refuses_an_image_only_model(tmp_path, chapbooks):
    model = load_embedder("test-pixels")
    with Image.open(chapbooks / "images" / "104820870.3.jpg") as im:
        vec = model.embed_images([im.convert("RGB")])
    with Index.create_or_open(tmp_path / "idx", model_info=model.info, config=IndexConfig(model="test-pixels")) as idx:
        idx.add([region(0)], vec)
    result = CliRunner().invoke(cli, ["classify", "zeroshot", "--index", str(tmp_path / "idx")])
    assert result.exit_code == 1
    assert "'test-pixels' embeds images only" in result.output and "classify train" in result.output
    assert not (tmp_path / "idx" / CLASSIFIER).exists()
    with pytest.raises(BadRequest, match="embeds images only"):
        zero_shot(model)


# -- training ------------------------------------------------------------------------------------


def write_labels(path, rows, header=("id", "label")):
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def test_train_cli_reports_the_confusion_of_separable_clusters_with_planted_mislabels(tmp_path):
    x, y = clusters(per_class=20)
    keys = synthetic_index(tmp_path / "idx", x)
    names = ["map", "music", "text"]
    labels = [names[c] for c in y]
    labels[0] = labels[1] = "music"  # two maps (cluster 0) labelled "music" by mistake
    labels_csv = write_labels(tmp_path / "labels.csv", zip(keys, labels))

    result = CliRunner().invoke(cli, ["classify", "train", str(labels_csv), "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Cross-validated: the two mislabelled maps are predicted "map", so the matrix shows them
    # under true "music", predicted "map"; everything else is on the diagonal.
    assert report["classes"] == names
    assert report["confusion"] == [[18, 0, 0], [2, 20, 0], [0, 0, 20]]
    assert report["per_class"]["map"] == {"precision": 0.9, "recall": 1.0, "f1": 0.9474, "support": 18}
    assert report["per_class"]["music"]["recall"] == pytest.approx(20 / 22, abs=1e-4)
    assert report["accuracy"] == pytest.approx(58 / 60, abs=1e-4) and report["folds"] == 5

    table = CliRunner().invoke(cli, ["classify", "train", str(labels_csv), "--index", str(tmp_path / "idx")])
    assert "macro" in table.stdout and "confusion (rows: true, columns: predicted)" in table.stdout

    saved = Classifier.load(tmp_path / "idx" / CLASSIFIER)
    assert saved.method == "logistic" and saved.model == MODEL and saved.details["C"] in (0.1, 1.0, 10.0, 100.0, 1000.0)
    fresh, truth = clusters(per_class=10, seed=7)
    predicted, scores = saved.predict(fresh)
    assert predicted == [names[c] for c in truth] and (scores > 1 / 3).all() and (scores <= 1).all()

    # apply labels every item; search can then filter on the class (library and CLI).
    result = CliRunner().invoke(cli, ["classify", "apply", "--index", str(tmp_path / "idx")])
    assert result.exit_code == 0 and "map" in result.output
    idx = Index.open(tmp_path / "idx")
    assert idx.stats()["classes"] == {"map": 20, "music": 20, "text": 20}
    hits = run(idx, Query(vector=x[5], filters=Filters(classes=("text",)), limit=5))
    assert len(hits) == 5 and {h.cls for h in hits} == {"text"}
    out = CliRunner().invoke(cli, ["search", str(tmp_path / "idx"), "--similar", str(keys[5]), "--class", "music", "--json", "-k", "3"])
    assert out.exit_code == 0, out.output
    assert [json.loads(line)["class"] for line in out.stdout.splitlines()] == ["music"] * 3
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(tmp_path / "idx")))
    body = app.test_client().get(f"/bookidx/api/search?similar={keys[5]}&class=map&class=text&limit=50").get_json()
    assert len(body["hits"]) == 39 and {h["class"] for h in body["hits"]} == {"map", "text"}  # 40 less the query


def test_two_classes_give_sigmoid_probabilities():
    x, y = clusters(per_class=12, classes=2, seed=3)
    classifier, evaluation = train(x, ["blank-page" if c == 0 else "illustration" for c in y], MODEL, folds=4)
    assert evaluation.folds == 4 and evaluation.accuracy == 1.0 and evaluation.macro_f1 == 1.0
    labels, scores = classifier.predict(np.eye(NDIM, dtype=np.float32)[:2])
    assert labels == ["blank-page", "illustration"] and (scores > 0.5).all()


def test_training_refuses_too_little_to_cross_validate():
    x, _ = clusters(per_class=3, classes=2)
    with pytest.raises(BadRequest, match="two classes"):
        train(x, ["map"] * 6, MODEL)
    with pytest.raises(BadRequest, match="'map' has a single labelled item"):
        train(x, ["map"] + ["text"] * 5, MODEL)


def test_a_classifier_refuses_another_model_s_index(tmp_path):
    x, y = clusters(per_class=6)
    keys = synthetic_index(tmp_path / "a", x)
    labels = write_labels(tmp_path / "labels.csv", zip(keys, ["abc"[c] for c in y]))
    assert CliRunner().invoke(cli, ["classify", "train", str(labels), "--index", str(tmp_path / "a")]).exit_code == 0
    synthetic_index(tmp_path / "b", x, model={**MODEL, "model": "other-model"})
    result = CliRunner().invoke(cli, ["classify", "apply", "--index", str(tmp_path / "b"), "--classifier", str(tmp_path / "a" / CLASSIFIER)])
    assert result.exit_code == 1
    assert "made for model 'synthetic'" in result.output and "'other-model'" in result.output
    assert stored_classes(tmp_path / "b") == {k: (None, None) for k in stored_classes(tmp_path / "b")}
    with Index.open(tmp_path / "b", readonly=False) as idx, pytest.raises(IndexMismatch):
        apply(idx, Classifier.load(tmp_path / "a" / CLASSIFIER))


def test_labels_csv_by_image_name_and_its_errors(tmp_path):
    x, _ = clusters(per_class=2)
    keys = synthetic_index(tmp_path / "idx", x)
    idx = Index.open(tmp_path / "idx")
    by_image = write_labels(tmp_path / "img.csv", [("page-0.jpg", "map"), ("page-3.jpg", ""), ("page-4.jpg", "text")], ("image", "label"))
    assert read_labels(by_image, idx) == ([keys[0], keys[4]], ["map", "text"])  # the empty label is skipped
    bad = write_labels(tmp_path / "bad.csv", [("page-0.jpg", "map"), ("nowhere.jpg", "map")], ("image", "label"))
    with pytest.raises(BadRequest, match="'nowhere.jpg' is not indexed") as e:
        read_labels(bad, idx)
    assert e.value.parameter == f"{bad}:3"
    twice = write_labels(tmp_path / "twice.csv", [(keys[1], "map"), (keys[1], "text")])
    with pytest.raises(BadRequest, match="labelled both 'map' and 'text'"):
        read_labels(twice, idx)
    with pytest.raises(BadRequest, match="'label' column"):
        read_labels(write_labels(tmp_path / "cols.csv", [(1, 2)], ("key", "class")), idx)


# -- dropping junk at index time -----------------------------------------------------------------


def halves(tmp_path, name: str, vertical: bool, seed: int) -> str:
    """A 'page' dark on one half (left or top) with paper noise: two easily told apart kinds."""
    rng = np.random.default_rng(seed)
    arr = np.full((160, 120), 225.0) + rng.normal(0, 12, (160, 120))
    if vertical:
        arr[:, :60] -= 150
    else:
        arr[:80, :] -= 150
    path = tmp_path / name
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).convert("RGB").save(path)
    return str(path)


def junk_classifier_and_pages(tmp_path, model) -> tuple[Classifier, Path]:
    """A classifier trained to tell "segmentation-anomaly" (dark left half) from "illustration"
    (dark top half), saved as junk.json, and a folder of five pages: three of the first kind
    (p0-p2), two of the second (p3, p4)."""
    examples = tmp_path / "examples"
    examples.mkdir()
    train_images = [halves(examples, f"{i}.png", vertical=i % 2 == 0, seed=i) for i in range(8)]
    vectors = model.embed_images([Image.open(p).convert("RGB") for p in train_images])
    classifier, _ = train(vectors, ["segmentation-anomaly" if i % 2 == 0 else "illustration" for i in range(8)], model.info, folds=2)
    classifier.save(tmp_path / "junk.json")
    pages = tmp_path / "pages"
    pages.mkdir()
    for i in range(5):
        halves(pages, f"p{i}.png", vertical=i < 3, seed=100 + i)
    return classifier, pages


def test_index_drops_the_classes_asked_and_labels_the_rest(tmp_path):
    model = load_embedder("test-pixels")
    classifier, pages = junk_classifier_and_pages(tmp_path, model)
    config = IndexConfig(model="test-pixels", drop_classes=("segmentation-anomaly",), classifier=str(tmp_path / "junk.json"))
    summary = index([str(pages)], tmp_path / "idx", config)
    assert (summary.found, summary.filtered, summary.indexed) == (5, 3, 2)
    assert summary.filter_reasons == {"class segmentation-anomaly": 3}
    assert "filtered: class segmentation-anomaly 3" in summary.lines()
    idx = Index.open(tmp_path / "idx")
    assert sorted(r.page.image.path.rsplit("/", 1)[1] for _, r in idx.items()) == ["p3.png", "p4.png"]
    assert idx.stats()["classes"] == {"illustration": 2}

    # The CLI flag, with the classifier saved in the index: a second index drops the same.
    (tmp_path / "idx2").mkdir()
    classifier.save(tmp_path / "idx2" / CLASSIFIER)
    result = CliRunner().invoke(cli, ["index", str(pages), "--index", str(tmp_path / "idx2"), "--model", "test-pixels",
                                      "--drop-class", "segmentation-anomaly", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "class segmentation-anomaly 3" in result.output and len(Index.open(tmp_path / "idx2")) == 2


def test_dropped_items_are_not_embedded_again_until_the_drop_set_or_the_classifier_changes(tmp_path):
    model = load_embedder("test-pixels")
    embedded: list[int] = []  # rows the model was asked to embed, per run
    real = model.embed_arrays
    model.embed_arrays = lambda batch: (embedded.append(len(batch)), real(batch))[1]
    classifier, pages = junk_classifier_and_pages(tmp_path, model)

    def run(*drop: str, classifier: str = "junk.json"):
        embedded.clear()
        config = IndexConfig(model="test-pixels", drop_classes=drop, classifier=str(tmp_path / classifier))
        summary = index([str(pages)], tmp_path / "idx", config, embedder=model)
        return summary, sum(embedded)

    summary, n = run("segmentation-anomaly")
    assert (n, summary.indexed, summary.filtered, summary.dropped_before) == (5, 2, 3, 0)
    summary, n = run("segmentation-anomaly")  # the same run again: nothing fetched or embedded
    assert (n, summary.fetched, summary.already, summary.filtered, summary.dropped_before) == (0, 0, 2, 3, 3)
    assert summary.filter_reasons == {"class segmentation-anomaly": 3}
    assert "of those, dropped by class in an earlier run and not fetched again: 3" in summary.lines()
    summary, n = run("segmentation-anomaly", "illustration")  # dropping more keeps them dropped
    assert (n, summary.dropped_before) == (0, 3)
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "idx")])
    assert result.exit_code == 0 and "dropped        {'segmentation-anomaly': 3}" in result.output

    # A retrained classifier (other weights, same classes) reconsiders them, and remembers its own verdict.
    retrained = Classifier(classifier.classes, classifier.weights * 1.5, classifier.bias, classifier.model, "logistic")
    retrained.save(tmp_path / "new.json")
    summary, n = run("segmentation-anomaly", classifier="new.json")
    assert (n, summary.indexed, summary.filtered, summary.dropped_before) == (3, 0, 3, 0)
    assert run("segmentation-anomaly", classifier="new.json")[1] == 0
    # Dropping fewer classes brings them back: embedded once more, indexed with their class.
    summary, n = run("illustration", classifier="new.json")
    assert (n, summary.indexed, summary.filtered) == (3, 3, 0)
    idx = Index.open(tmp_path / "idx")
    assert len(idx) == 5 and idx.stats()["classes"] == {"illustration": 2, "segmentation-anomaly": 3}
    assert idx.stats()["dropped"] == {} and idx.failures() == []
    assert run()[1] == 0  # and, indexed, they are never embedded again


def test_drop_classes_fail_before_any_work(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    halves(pages, "p.png", vertical=True, seed=0)
    with pytest.raises(NotFound, match="no classifier"):
        index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels", drop_classes="blank-page"))
    x, y = clusters(per_class=3, classes=2)
    other, _ = train(x, ["a" if c else "b" for c in y], MODEL, folds=3)
    other.save(tmp_path / "other.json")
    with pytest.raises(IndexMismatch, match="made for model 'synthetic'"):
        index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels", drop_classes=("a",), classifier=str(tmp_path / "other.json")))
    pixels = load_embedder("test-pixels")
    Classifier(("map", "text"), np.zeros((2, pixels.ndim), np.float32), np.zeros(2, np.float32), pixels.info, "logistic").save(tmp_path / "px.json")
    with pytest.raises(ConfigError, match=r"\['blank-page'\] are not classes of .*px.json \(map, text\)"):
        index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels", drop_classes=("blank-page",), classifier=str(tmp_path / "px.json")))
    assert not (tmp_path / "idx").exists()  # refused before the index was created


def test_drop_classes_from_toml(tmp_path):
    path = tmp_path / "bookidx.toml"
    path.write_text('[index]\nmodel = "test-pixels"\ndrop_classes = ["blank-page", "segmentation-anomaly"]\n')
    assert IndexConfig.from_toml(path).drop_classes == ("blank-page", "segmentation-anomaly")
    assert IndexConfig(drop_classes="map").drop_classes == ("map",)
