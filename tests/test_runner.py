"""bookidx.runner and the `bookidx` CLI, end to end: sources in, a searchable index out.

Uses the real chapbook pages, a real IIIF Image server on 127.0.0.1 (tests/iiifserver.py), the
deterministic `test-pixels` embedder (conftest.py) for speed, and a tiny random SigLIP for the
text → image path.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.runner import index
from bookidx.search import Query, run
from bookidx.store import Index
from iiifserver import chapbook_iiif  # noqa: F401  (pytest fixture)

# Three reprinted-woodcut pairs from the corpus's candidate list (checked by eye in SOURCES.md's spirit).
PAIRS = [("108619809.3.jpg", "108620097.3.jpg"), ("108752144.3.jpg", "108753392.3.jpg"), ("108531345.3.jpg", "108784652.3.jpg")]


@pytest.fixture()
def pages(chapbooks, tmp_path) -> Path:
    """A folder of 12 real chapbook pages (links, no copies), including three reprinted pairs."""
    folder = tmp_path / "pages"
    folder.mkdir()
    names = [n for pair in PAIRS for n in pair]
    names += sorted(p.name for p in (chapbooks / "images").glob("*.jpg") if p.name not in names)[:6]
    for name in names:
        os.symlink(chapbooks / "images" / name, folder / name)
    return folder


def _key_of(idx: Index, name: str) -> int:
    return next(key for key, region in idx.items() if region.page.image.path.endswith(name))


def test_index_folder_then_search_finds_the_reprint(pages, tmp_path):
    summary = index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels", workers=2))
    assert (summary.found, summary.indexed, summary.failed) == (12, 12, 0)
    idx = Index.open(tmp_path / "idx")
    assert len(idx) == 12
    found = 0
    for a, b in PAIRS:
        hits = run(idx, Query(similar=_key_of(idx, a), limit=3))
        assert _key_of(idx, a) not in [h.key for h in hits]  # the query item itself is excluded
        found += _key_of(idx, b) in [h.key for h in hits]
    assert found >= 2  # a 16x16 thumbnail is crude; the real model test below is stricter


def test_rerun_indexes_only_what_is_new(pages, tmp_path, chapbooks):
    config = IndexConfig(model="test-pixels")
    index([str(pages)], tmp_path / "idx", config)
    extra = sorted((chapbooks / "images").glob("*.jpg"))[-2:]
    for p in extra:
        os.symlink(p, pages / p.name)
    summary = index([str(pages)], tmp_path / "idx", config)
    assert (summary.already, summary.indexed) == (12, 2)
    assert len(Index.open(tmp_path / "idx")) == 14


def test_bad_image_is_recorded_and_the_rest_indexed_then_retried(pages, tmp_path, chapbooks):
    bad = pages / "broken.jpg"
    bad.write_bytes((chapbooks / "images" / PAIRS[0][0]).read_bytes()[:3000])  # truncated JPEG
    summary = index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels"))
    assert summary.indexed == 12
    assert summary.failed + summary.problems >= 1  # header readable: crop fails; else the source is skipped
    if summary.failed:
        failures = Index.open(tmp_path / "idx").failures()
        assert any("broken.jpg" in f["source"] for f in failures)
    bad.unlink()
    shutil.copy(chapbooks / "images" / PAIRS[0][0], bad)  # the file is repaired
    again = index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels"))
    assert again.indexed == 1 and again.failed == 0
    assert Index.open(tmp_path / "idx").failures() == []


def test_an_item_the_model_cannot_embed_is_recorded_and_the_batch_indexed(pages, tmp_path):
    # test-pixels gives a blank page a zero vector, which has no direction to compare: that one
    # item must fail, not the batch it shares with 12 good pages (nor the run).
    from PIL import Image

    Image.new("RGB", (600, 900), "white").save(pages / "blank.jpg")
    summary = index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels"))
    assert (summary.indexed, summary.failed) == (12, 1) and summary.failure_rate == 1 / 13
    failures = Index.open(tmp_path / "idx").failures()
    assert [(Path(f["source"]).name, f["stage"]) for f in failures] == [("blank.jpg", "embed")]
    assert "zero" in failures[0]["reason"]


def test_a_run_where_every_item_fails_exits_non_zero(tmp_path):
    from PIL import Image

    folder = tmp_path / "blank"
    folder.mkdir()
    for n in range(3):
        Image.new("RGB", (300, 400), "white").save(folder / f"{n}.jpg")
    result = CliRunner().invoke(cli, ["index", str(folder), "--index", str(tmp_path / "idx"), "--model", "test-pixels", "--no-progress"])
    assert result.exit_code != 0 and "100% of crops failed" in result.output, result.output


def _index_cli(source, idx, *args):
    return CliRunner().invoke(cli, ["index", str(source), "--index", str(idx), "--model", "test-pixels", "--no-progress", *args])


def _manifest(path: Path, services: list[tuple[str, int, int]]) -> Path:
    """A v3 manifest at ``path``: a canvas per (Image API 3 service, width, height)."""
    items = [{"id": f"https://example.org/m/canvas/{i}", "type": "Canvas", "width": w, "height": h,
              "items": [{"id": f"https://example.org/m/canvas/{i}/page", "type": "AnnotationPage", "items": [{
                  "id": f"https://example.org/m/canvas/{i}/image", "type": "Annotation", "motivation": "painting",
                  "target": f"https://example.org/m/canvas/{i}",
                  "body": {"id": f"{service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                           "width": w, "height": h,
                           "service": [{"id": service, "type": "ImageService3", "profile": "level2"}]}}]}]}
             for i, (service, w, h) in enumerate(services)]
    path.write_text(json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                "id": "https://example.org/m", "type": "Manifest", "label": {"en": ["m"]},
                                "items": items}))
    return path


def test_a_rerun_whose_only_failures_failed_before_exits_zero_and_reports_them(pages, tmp_path):
    # A nightly incremental job over sources with one permanently broken page (test-pixels
    # cannot embed a blank page): the re-run tries nothing but that page. Its failing again
    # says nothing about the image servers, so it is reported, and the job does not fail.
    from PIL import Image

    Image.new("RGB", (600, 900), "white").save(pages / "blank.jpg")
    first = _index_cli(pages, tmp_path / "idx")
    assert first.exit_code == 0 and "indexed 12" in first.output, first.output
    again = _index_cli(pages, tmp_path / "idx")
    assert again.exit_code == 0, again.output
    assert "already indexed 12, fetched 1, failed 1, indexed 0" in again.output
    assert "failed items (recorded in the index; a re-run retries them): 1, 1 of them failed in an " \
           "earlier run too, not counted in the failure rate: they failed for item-level reasons" in again.output
    assert "blank.jpg" in again.output
    assert [Path(f["source"]).name for f in Index.open(tmp_path / "idx").failures()] == ["blank.jpg"]


def test_a_rerun_whose_new_items_mostly_fail_still_exits_3(pages, tmp_path):
    from PIL import Image

    Image.new("RGB", (600, 900), "white").save(pages / "blank.jpg")
    assert _index_cli(pages, tmp_path / "idx").exit_code == 0
    for n in range(3):  # new pages the run cannot index: the limit is there for this
        Image.new("RGB", (500, 700), "white").save(pages / f"new{n}.jpg")
    again = _index_cli(pages, tmp_path / "idx")
    assert again.exit_code == 3, again.output
    assert "failed 4" in again.output and "1 of them failed in an earlier run too" in again.output
    assert "100% of crops failed" in again.output  # the 3 new ones; the old one is not counted


def test_a_page_the_image_server_refuses_every_night_fails_no_run(chapbook_iiif, tmp_path):
    # The server answers 404 for one page (withdrawn, a wrong identifier in the manifest): that
    # is the item's fault, not the server's, so the nightly re-run that retries it exits 0.
    refs = [chapbook_iiif.ref(ident, api=3) for ident in chapbook_iiif.identifiers]
    gone = (f"{chapbook_iiif.base}/3.0_pil/withdrawn", refs[0].width, refs[0].height)
    manifest = _manifest(tmp_path / "m.json", [(r.service, r.width, r.height) for r in refs] + [gone])
    first = _index_cli(manifest, tmp_path / "idx")
    assert first.exit_code == 0 and f"indexed {len(refs)}" in first.output, first.output
    again = _index_cli(manifest, tmp_path / "idx")
    assert again.exit_code == 0, again.output
    assert "failed 1" in again.output and "404" in again.output and "withdrawn" in again.output
    assert "1 of them failed in an earlier run too, not counted in the failure rate" in again.output


def test_an_image_server_down_two_nights_running_fails_both_runs(tmp_path):
    # Nothing listens on the port: connection refused, the night the items are new and the
    # night they are retried. Server trouble is what the limit is for, so both runs exit 3.
    from iiifserver import free_port

    down = f"http://127.0.0.1:{free_port()}/3.0_pil"
    manifest = _manifest(tmp_path / "m.json", [(f"{down}/p{n}", 600, 900) for n in range(3)])
    config = tmp_path / "fast.toml"
    config.write_text("[index]\nretries = 0\n")  # connection refused is retried otherwise, with backoff
    for night in (1, 2):
        run = _index_cli(manifest, tmp_path / "idx", "--config", str(config))
        assert run.exit_code == 3, (night, run.output)
        assert "failed 3" in run.output and "connection failed" in run.output
        assert "100% of crops failed" in run.output and "not counted" not in run.output


def test_another_model_is_refused_with_both_names(pages, tmp_path):
    index([str(pages)], tmp_path / "idx", IndexConfig(model="test-pixels"))
    result = CliRunner().invoke(cli, ["index", str(pages), "--index", str(tmp_path / "idx"), "--model", "efficientnet-lite0"])
    assert result.exit_code == 1
    assert "test-pixels" in result.output and "efficientnet-lite0" in result.output


def test_cli_index_search_info_json(pages, tmp_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["index", str(pages), "--index", str(tmp_path / "idx"), "--model", "test-pixels", "--no-progress"])
    assert out.exit_code == 0, out.output
    assert "indexed 12" in out.output and "regions/s" in out.output
    query = str(pages / PAIRS[1][0])
    res = runner.invoke(cli, ["search", str(tmp_path / "idx"), "--image", query, "-k", "3", "--json"])
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert hits[0]["page"]["image"]["path"].endswith(PAIRS[1][0])  # the page itself ranks first
    assert hits[0]["score"] > 0.99
    info = runner.invoke(cli, ["info", str(tmp_path / "idx"), "--json"])
    assert json.loads(info.output)["info"]["model"]["model"] == "test-pixels"


def test_cli_errors_name_the_problem(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["index", str(tmp_path), "--index", str(tmp_path / "i"), "--model", "no-such-model"])
    assert res.exit_code == 1 and "unknown model 'no-such-model'" in res.output
    res = runner.invoke(cli, ["search", str(tmp_path), "x"])
    assert res.exit_code == 1 and "error:" in res.output


def test_regions_prints_json_lines(corpus):
    alto = corpus / "bnf-alto-iiif-lacroix/DOCS/0220169/X/X0000001.xml"
    res = CliRunner().invoke(cli, ["regions", str(alto), "--all"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    kinds = {r["kind"] for r in rows}
    assert "Illustration" in kinds
    ill = next(r for r in rows if r["kind"] == "Illustration")
    assert (ill["box"]["w"], ill["box"]["h"]) == (4856, 1889)  # the Gallica crop's exact size
    assert all("filtered" in r and "key" in r for r in rows)


def test_iiif_manifest_crops_come_from_a_real_image_server(chapbook_iiif, tmp_path):
    """A v3 manifest whose canvases use IIIF Image API 3 and 2 services on 127.0.0.1."""
    items = []
    for i, ident in enumerate(chapbook_iiif.identifiers):
        ref = chapbook_iiif.ref(ident, api=3 if i % 2 == 0 else 2)
        service = {"id": ref.service, "type": "ImageService3", "profile": "level2"} if ref.api == 3 else \
            {"@id": ref.service, "@type": "ImageService2", "profile": "http://iiif.io/api/image/2/level2.json"}
        canvas = f"https://example.org/m/canvas/{i}"
        items.append({
            "id": canvas, "type": "Canvas", "width": ref.width, "height": ref.height,
            "items": [{"id": f"{canvas}/page", "type": "AnnotationPage", "items": [{
                "id": f"{canvas}/image", "type": "Annotation", "motivation": "painting", "target": canvas,
                "body": {"id": f"{ref.service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                         "width": ref.width, "height": ref.height, "service": [service]},
            }]}],
        })
    manifest = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/m",
                "type": "Manifest", "label": {"en": ["Chapbooks"]}, "items": items}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    summary = index([str(path)], tmp_path / "idx", IndexConfig(model="test-pixels"))
    assert summary.indexed == len(items) and summary.failed == 0
    idx = Index.open(tmp_path / "idx")
    assert {r.page.manifest for _, r in idx.items()} == {"https://example.org/m"}
    # The same pages indexed from local files embed to (nearly) the same vectors.
    local = tmp_path / "local"
    local.mkdir()
    for ident in chapbook_iiif.identifiers:
        os.symlink(chapbook_iiif.path(ident), local / chapbook_iiif.path(ident).name)
    index([str(local)], tmp_path / "idx2", IndexConfig(model="test-pixels"))
    idx2 = Index.open(tmp_path / "idx2")
    for key, region in idx2.items():
        hit = idx.search(idx2.vector(key), k=1)[0]
        assert hit.region.page.image.service.endswith(Path(region.page.image.path).stem)
        assert hit.score > 0.98
    # A second run fetches nothing (crop cache) and indexes nothing new.
    assert index([str(path)], tmp_path / "idx", IndexConfig(model="test-pixels")).already == len(items)


def test_text_to_image_path_with_a_tiny_siglip(pages, tmp_path):
    """Random weights: this checks the whole path (tokenizer, text tower, fusion), not quality."""
    from tinymodels import tiny_model

    model = tiny_model("siglip")
    summary = index([str(pages)], tmp_path / "idx", IndexConfig(model=model, device="cpu"))
    assert summary.indexed == 12
    idx = Index.open(tmp_path / "idx")
    hits = run(idx, Query(text="a woodcut of a ship", mode="vector", limit=5), lambda: _load(model))
    assert len(hits) == 5 and all(-1.0 <= h.score <= 1.0 for h in hits)
    combined = run(idx, Query(text="a ship", image=_first_image(pages), weight=0.5, limit=3), lambda: _load(model))
    assert len(combined) == 3


def _load(model):
    from bookidx.embed import load_embedder

    return load_embedder(model, device="cpu")


def _first_image(folder):
    from PIL import Image

    return Image.open(sorted(folder.iterdir())[0])
