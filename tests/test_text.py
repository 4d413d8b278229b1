"""The older German umlaut (a/o/u with a combining small e above, U+0364) searched as the reader
types it (bookidx.fts.searchable), while captions keep the source's spelling: on the OCR-D Kant
page and end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bookidx.adapters.alto import read_alto
from bookidx.config import IndexConfig
from bookidx.fts import searchable
from bookidx.runner import index
from bookidx.search import Query, run
from bookidx.store import Index

E = "\u0364"  # COMBINING LATIN SMALL LETTER E


@pytest.mark.parametrize("text, folded", [
    (f"Aufkla{E}rung", "Aufklärung"),
    (f"Zwo{E}lftes Stu{E}k", "Zwölftes Stük"),
    (f"A{E}rzte, O{E}l, U{E}ber", "Ärzte, Öl, Über"),
    ("Monatsſchrift", "Monatsſchrift"),  # the long s is the index tokenizer's to fold
    (f"e{E}", f"e{E}"),  # over any other letter it is not an umlaut: kept
    ("Aufklärung", "Aufklärung"),
])
def test_searchable_folds_the_older_umlaut(text, folded):
    assert searchable(text) == folded


def test_the_kant_page_keeps_its_spelling_and_is_searched_in_the_modern_one(corpus):
    path = corpus / "ocrd-assets/kant_aufklaerung_1784/data/OCR-D-GT-ALTO/PAGE_0017_ALTO.xml"
    assert f"Aufkla{E}rung".encode() in path.read_bytes()
    regions = read_alto(path.read_bytes(), source=str(path))
    assert regions and any(f"Aufkla{E}rung" in r.context for r in regions)  # as printed
    assert any("Aufklärung" in searchable(r.context) for r in regions)
    assert not any(E in searchable(r.caption + r.context) for r in regions)


_ALTO = f"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v2#">
  <Description><MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>p1.jpg</fileName></sourceImageInformation></Description>
  <Layout><Page ID="P1" WIDTH="1000" HEIGHT="1400"><PrintSpace>
    <Illustration ID="I1" HPOS="100" VPOS="100" WIDTH="800" HEIGHT="600"/>
    <TextBlock ID="T1" HPOS="100" VPOS="710" WIDTH="800" HEIGHT="40"><TextLine>
      <String CONTENT="Was"/><String CONTENT="iſt"/><String CONTENT="Aufkla{E}rung?"/>
    </TextLine></TextBlock>
  </PrintSpace></Page></Layout>
</alto>"""


def test_a_caption_in_the_older_spelling_is_found_by_the_modern_one(tmp_path):
    folder = tmp_path / "kant"
    folder.mkdir()
    (folder / "p1.xml").write_text(_ALTO, encoding="utf-8")
    pixels = np.random.default_rng(0).integers(0, 255, (1400, 1000, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "p1.jpg")
    summary = index([str(folder)], tmp_path / "idx", IndexConfig(model="test-pixels"))
    assert summary.indexed == 1
    idx = Index.open(tmp_path / "idx")
    for typed in ("Aufklärung", "aufklarung", f"Aufkla{E}rung"):  # the last pasted from the OCR
        hits = run(idx, Query(text=typed, mode="keyword"))
        assert [h.region.caption for h in hits] == [f"Was iſt Aufkla{E}rung?"], typed


def test_bookidx_upgrade_folds_the_text_of_an_index_made_before_the_fold(tmp_path):
    """An index of schema 3 stored "Aufkla\u0364rung" as printed, which the tokenizer split; after
    `bookidx upgrade` every spelling finds it, and the caption shown is still the printed one."""
    import json
    import sqlite3

    from click.testing import CliRunner

    from bookidx.cli import cli

    folder = tmp_path / "kant"
    folder.mkdir()
    (folder / "p1.xml").write_text(_ALTO, encoding="utf-8")
    pixels = np.random.default_rng(0).integers(0, 255, (1400, 1000, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "p1.jpg")
    assert index([str(folder)], tmp_path / "idx", IndexConfig(model="test-pixels")).indexed == 1
    con = sqlite3.connect(tmp_path / "idx" / "meta.sqlite")  # as schema 3 stored it: unfolded
    con.execute("UPDATE items SET context = caption, caption = ?", (f"Was iſt Aufkla{E}rung?",))
    con.execute("PRAGMA user_version = 3")
    con.commit()
    con.close()
    info = tmp_path / "idx" / "bookidx.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "schema": 3}))

    result = CliRunner().invoke(cli, ["upgrade", str(tmp_path / "idx")])
    assert result.exit_code == 0 and "schema 3 -> 4" in result.output, result.output
    idx = Index.open(tmp_path / "idx")
    for typed in ("Aufklärung", f"Aufkla{E}rung"):
        hits = run(idx, Query(text=typed, mode="keyword"))
        assert [h.region.caption for h in hits] == [f"Was iſt Aufkla{E}rung?"], typed
