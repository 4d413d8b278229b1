"""Every ALTO, METS, PAGE and IIIF JSON file of the real corpus parses, or is refused by name.

The corpus (../shared/corpus, see its SOURCES.md) holds files from a dozen institutions with
their real quirks. A parser may report problems, but must not crash; a SourceError naming the
file is expected only for the documents listed below, which are not sources at all.
"""

from __future__ import annotations

import pytest

from bookidx.adapters.alto import read_alto
from bookidx.adapters.iiif import read_collection, read_manifest
from bookidx.adapters.mets import read_mets
from bookidx.adapters.page import read_page
from bookidx.adapters.sources import read_sources, sniff
from bookidx.errors import SourceError

from conftest import CORPUS

# Documents that are not sources, and what the refusal says.
NOT_SOURCES = {
    "iiif-mirador-fixtures/version-2/broken.json": "not a IIIF",  # deliberately broken fixture
    "nln-chr24-labels/data/labelled_data.json": "not a IIIF",  # class labels
    "bnf-gallica-vogue1920/annotations/bpt6k9604118j_iiif.json": "not a IIIF",  # AnnotationList
    "bnf-alto-iiif-lacroix/DOCS/0220169/X0220169.XML": "refNum",  # BnF issue descriptor
    "iiif-cookbook/0053-seeAlso/ezukushi.xml": "root <document>",  # MODS record (seeAlso target)
    "nln-chr24-labels/label-studio/template.xml": "root <View>",  # Label Studio config
}
NOT_SOURCES.update({f"bnf-gallicapix-datamodel/Data model/exemples/{name}": "root <analyseAlto>"
                    for name in ("19100130_1.xml", "4600009.xml", "6252687.xml", "9604118.xml",
                                 "bpt6k383183j.xml", "bpt6k383898z.xml", "btv1b10500015p.xml",
                                 "btv1b10510646z.xml", "btv1b530182253.xml")})


def _files(*suffixes: str) -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
                  if p.is_file() and p.suffix.lower() in suffixes)


def _jekyll(rel: str) -> bool:
    """The cookbook's raw recipe sources are Jekyll templates; rendered/ holds the published JSON."""
    return rel.startswith("iiif-cookbook/") and not rel.startswith("iiif-cookbook/rendered/")


@pytest.mark.parametrize("rel", _files(".xml", ".alto"))
def test_every_xml_file(corpus, rel):
    data = (corpus / rel).read_bytes()
    kind, problems = sniff(data, rel), []
    if rel in NOT_SOURCES:
        assert kind == "unknown" or rel.endswith("X0220169.XML")
        regions = list(read_sources([str(corpus / rel)], report=problems.append))
        assert regions == [] and len(problems) == 1
        assert problems[0].source == str(corpus / rel) and NOT_SOURCES[rel] in problems[0].message
        return
    if kind == "alto":
        read_alto(data, source=rel, report=problems.append)
    elif kind == "page":
        read_page(data, source=rel, report=problems.append)
    else:
        assert kind == "mets", f"{rel} sniffed as {kind}"
        info = read_mets(data, source=str(corpus / rel), report=problems.append)
        assert info.pages
    assert all(p.source for p in problems)


@pytest.mark.parametrize("rel", _files(".json"))
def test_every_json_file(corpus, rel):
    path, problems = corpus / rel, []
    data = path.read_bytes()
    if _jekyll(rel):
        with pytest.raises(SourceError, match="template") as err:
            read_manifest(data, source=rel)
        assert err.value.parameter == rel
        return
    kind = sniff(data, rel)
    if rel in NOT_SOURCES or rel.startswith("iiif-cookbook/rendered/") and "-anno_" in rel:
        assert kind == "unknown"
        with pytest.raises(SourceError, match="not a IIIF") as err:
            read_manifest(data, source=rel)
        assert err.value.parameter == rel
        return
    if kind == "iiif-collection":
        assert read_collection(data, source=rel, report=problems.append)
    else:
        assert kind == "iiif-manifest", f"{rel} sniffed as {kind}"
        info = read_manifest(data, source=rel, report=problems.append)
        assert len(info.pages) == len(info.alto) == len(info.crops)
        assert all(p.image.uri for p in info.pages)


@pytest.mark.parametrize("rel", [r for r in _files(".xml") if r.endswith(("mets.xml", "METS.xml"))])
def test_every_mets_reads_end_to_end_without_network(corpus, rel):
    """Through sources.py with the default loader: remote images become problems, not crashes."""
    problems = []
    regions = list(read_sources([str(corpus / rel)], report=problems.append))
    assert regions or problems
    for region in regions:
        assert region.page.image.path or region.page.image.url
        assert region.box.w > 0 and region.box.h > 0
