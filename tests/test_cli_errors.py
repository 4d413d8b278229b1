"""What a first-time user gets from the CLI when something is wrong: a one-line ``error: WHERE:
WHAT`` naming the file or option and a non-zero exit, never a traceback, and for a mistyped
source, no empty index left behind (docs: the review of a first run, items 2, 3, 7, 11, 13).

The index is 6 real chapbook pages embedded with the weight-free ``test-pixels`` model
(conftest.py), which, like efficientnet-lite0, reads no text.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from bookidx.cli import cli
from bookidx.config import IndexConfig
from bookidx.runner import index
from click.testing import CliRunner

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def pages(chapbooks, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli-errors") / "pages"
    folder.mkdir()
    for image in sorted((chapbooks / "images").glob("*.jpg"))[:6]:
        shutil.copy(image, folder / image.name)
    return folder


@pytest.fixture(scope="module")
def idx(pages) -> Path:
    path = pages.parent / "idx"
    index([str(pages)], path, IndexConfig(model="test-pixels"))
    return path


def one_line_error(res) -> str:
    """The single line a failed command printed (and that it failed with status 1, no traceback)."""
    assert res.exit_code == 1, (res.exit_code, res.output, res.exception)
    assert isinstance(res.exception, SystemExit), res.exception  # not an exception click caught for us
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def test_a_missing_source_is_an_error_and_creates_no_index(pages, tmp_path):
    target = tmp_path / "idx"
    res = CliRunner().invoke(cli, ["index", "/nonexistent", "--index", str(target), "--model", "test-pixels"])
    assert one_line_error(res) == "error: /nonexistent: no such file or folder"
    assert not target.exists()
    # One mistyped source among good ones: the same, before anything is read or made.
    res = CliRunner().invoke(cli, ["index", str(pages), str(pages / "nosuch.jpg"), "--index", str(target), "--model", "test-pixels"])
    assert one_line_error(res) == f"error: {pages / 'nosuch.jpg'}: no such file or folder"
    assert not target.exists()
    res = CliRunner().invoke(cli, ["index", "file:///nonexistent/a.xml", "nosuch.jpg", "--index", str(target)])
    assert one_line_error(res) == "error: sources: no such files or folders: file:///nonexistent/a.xml, nosuch.jpg"


def test_regions_of_a_missing_file_is_an_error():
    assert one_line_error(CliRunner().invoke(cli, ["regions", "nosuch.jpg"])) == "error: nosuch.jpg: no such file or folder"


def test_an_index_folder_below_a_file_is_an_error(pages, tmp_path):
    (tmp_path / "somefile").write_text("not a folder")
    res = CliRunner().invoke(cli, ["index", str(pages), "--index", str(tmp_path / "somefile" / "sub"), "--model", "test-pixels"])
    assert one_line_error(res) == f"error: --index: {tmp_path / 'somefile'} is a file, so no index folder can be made in it"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_index_folder_where_one_may_not_write_is_an_error(pages, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    res = CliRunner().invoke(cli, ["index", str(pages), "--index", str(locked / "idx"), "--model", "test-pixels"])
    assert one_line_error(res) == f"error: --index: no permission to make a folder in {locked}"


def test_a_query_file_that_is_no_image_is_an_error_naming_it(idx):
    res = CliRunner().invoke(cli, ["search", str(idx), "--image", str(README)])
    line = one_line_error(res)
    assert line.startswith(f"error: {README}: not a readable image (cannot identify image file")


def test_search_without_a_query_says_what_to_give_in_the_cli_s_words(idx):
    res = CliRunner().invoke(cli, ["search", str(idx)])
    assert one_line_error(res) == "error: TEXT: give a TEXT to search for, --image FILE or --similar ID"


def test_text_search_with_a_model_that_reads_no_text_says_why_there_are_no_hits(idx):
    res = CliRunner().invoke(cli, ["search", str(idx), "a ship at sea"])
    assert res.exit_code == 0 and res.stdout == ""
    assert res.stderr.startswith("no hits: model 'test-pixels' cannot read text, so 'a ship at sea' was only looked for "
                                 "as words in the items' captions")
    assert "--image FILE or --similar ID" in res.stderr and "siglip" in res.stderr
    # Asked for words only, the user knows: no lecture about the model.
    assert CliRunner().invoke(cli, ["search", str(idx), "a ship at sea", "--mode", "keyword"]).stderr == "no hits\n"


def test_rerank_depth_defaults_to_the_web_api_s_in_search_and_eval(idx, pages, monkeypatch):
    pytest.importorskip("cv2")
    import bookidx.rerank
    from bookidx.web.config import BOOKIDX_RERANK_DEPTH

    depths = []
    made = bookidx.rerank.Reranker.__init__

    def recording(self, *args, depth, **options):  # the class search's own re-ranker derives from too
        depths.append(depth)
        made(self, *args, depth=depth, **options)

    monkeypatch.setattr(bookidx.rerank.Reranker, "__init__", recording)
    query = str(next(pages.iterdir()))
    for extra in ([], ["--rerank-depth", "7"]):
        res = CliRunner().invoke(cli, ["search", str(idx), "--image", query, "--rerank", "-k", "2", *extra])
        assert res.exit_code == 0, res.output
    assert depths == [BOOKIDX_RERANK_DEPTH, 7]
    for command in (["search"], ["eval", "exact"], ["eval", "queries"]):
        shown = " ".join(CliRunner().invoke(cli, [*command, "--help"]).output.split())
        assert f"[default: {BOOKIDX_RERANK_DEPTH}, the web API's BOOKIDX_RERANK_DEPTH]" in shown, command


def test_classify_train_takes_images_as_search_prints_them(idx, pages):
    res = CliRunner().invoke(cli, ["search", str(idx), "--image", str(next(pages.iterdir())), "-k", "6"])
    printed = [line.strip() for line in res.stdout.splitlines() if line.startswith("     ")]
    assert len(printed) == 6 and all(Path(p).is_absolute() for p in printed), res.stdout
    # As printed; relative to the labels file's folder; relative to the current folder.
    given = printed[:2] + [f"pages/{Path(p).name}" for p in printed[2:4]] + [os.path.relpath(p) for p in printed[4:]]
    labels = pages.parent / "labels.csv"
    labels.write_text("image,label\n" + "".join(f"{g},{'ab'[i % 2]}\n" for i, g in enumerate(given)))
    res = CliRunner().invoke(cli, ["classify", "train", str(labels), "--index", str(idx), "--folds", "2"])
    assert res.exit_code == 0, res.output
    assert "saved" in res.stderr
    labels.write_text(f"image,label\n/elsewhere/{Path(printed[0]).name},a\n")  # the name alone would match: not with a path
    res = CliRunner().invoke(cli, ["classify", "train", str(labels), "--index", str(idx), "--folds", "2"])
    assert one_line_error(res) == (f"error: {labels}:2: image '/elsewhere/{Path(printed[0]).name}' is not indexed "
                                   "(give it as `bookidx search` prints it, or its file name)")


def test_models_lists_what_index_takes_and_the_readme_lists_every_command():
    from bookidx.embed import available_embedders

    res = CliRunner().invoke(cli, ["models"])
    rows = {name: note.strip() for name, _, note in (line.partition("  ") for line in res.output.splitlines())}
    assert "hf" not in rows  # not a model by itself: it failed with "needs model=", a Python keyword
    assert set(rows) == set(available_embedders()) - {"hf"} | {"HF-ID or FOLDER"}
    assert "offline" in rows["efficientnet-lite0-rmac"] and "best for finding a picture again" in rows["efficientnet-lite0-rmac"]
    assert rows["test-pixels"] == "from a plugin"
    assert "efficientnet-lite0-rmac" in CliRunner().invoke(cli, ["index", "--help"]).output
    readme = README.read_text(encoding="utf-8")
    assert "efficientnet-lite0-rmac" in readme
    for name in cli.commands:
        assert f"\nbookidx {name} " in readme, name


def test_eval_queries_warns_that_text_rows_meet_a_model_that_reads_no_text(idx, pages, tmp_path):
    name = next(pages.iterdir()).name
    queries = tmp_path / "queries.csv"
    queries.write_text(f"query,relevant\na ship at sea,{name}\na horseman,{name}\n")
    res = CliRunner().invoke(cli, ["eval", "queries", str(queries), "--index", str(idx)])
    assert res.exit_code == 0, res.output
    # Said as `bookidx search` says it (one helper, search.text_unread, words both).
    assert res.stderr == ("warning: model 'test-pixels' cannot read text, so the 2 text queries were only looked for "
                          "as words in the items' captions, context and titles\n")
    keyword = CliRunner().invoke(cli, ["eval", "queries", str(queries), "--index", str(idx), "--mode", "keyword"])
    assert keyword.exit_code == 0 and keyword.stderr == ""
