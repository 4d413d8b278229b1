"""adapters/mets.py on real METS from OCR-D, SBB, LSU and the British Library, plus small edge cases."""

from __future__ import annotations

import os

import pytest

from bookidx.adapters.mets import read_mets
from bookidx.errors import SourceError


def mets(path, problems=None):
    return read_mets(path.read_bytes(), source=str(path),
                     report=problems.append if problems is not None else None)


def test_ocrd_kant_links_image_and_alto_by_mimetype(corpus):
    path = corpus / "ocrd-assets/kant_aufklaerung_1784/data/mets.xml"
    info = mets(path)
    data = path.parent
    assert [(p.order, p.page_id) for p in info.pages] == [(1, "PHYS_0017"), (2, "PHYS_0020")]
    assert info.pages[0].image == str(data / "OCR-D-IMG/INPUT_0017.tif")
    assert info.pages[1].alto == str(data / "OCR-D-GT-ALTO/PAGE_0020_ALTO.xml")  # not the PAGE file
    assert all(os.path.exists(p.image) and os.path.exists(p.alto) for p in info.pages)
    assert info.book.id == "http://kant_aufklaerung_1784"


def test_lsu_default_namespace_file_urls_and_area_fileids(corpus):
    path = corpus / "lsu-loyola-maroon-1923/19231115-METS.xml"
    info = mets(path)
    assert len(info.pages) == 4  # the "Target images" group is not a page
    first = info.pages[0]
    assert first.image == str(path.parent / "19231115/mn_19231115_001.jp2")  # file://./ resolved
    assert first.alto == str(path.parent / "19231115-ALTO00001.xml")  # text/xml in group "Text"
    assert (first.order, first.label) == (1, "1")
    # The issue's own dmdSec (not an article's): title, date issued, language.
    assert (info.book.title, info.book.date, info.book.language) == ("The Maroon", "1923.11.15", "en")


def test_bl_nested_filegrps_and_page_areas(corpus):
    path = corpus / "bl-newspapers-alto2txt/0002647/1824/0217/0002647_18240217_mets.xml"
    info = mets(path)
    assert [os.path.basename(p.image) for p in info.pages] == [
        f"0002647_18240217_000{i}.jp2" for i in range(1, 5)]
    assert [os.path.basename(p.alto) for p in info.pages] == [
        f"0002647_18240217_000{i}.xml" for i in range(1, 5)]
    assert (info.book.title, info.book.date) == ("The Statesman.", "1824-02-17")


def test_sbb_kitodo_mods_and_remote_images(corpus):
    info = mets(corpus / "ocrd-assets/pembroke_werke_1766/data/mets.xml")
    book = info.book
    assert book.title == "Des Grafen und der Gräfin von Pembrock sämtliche Werke der Punctirkunst"
    assert book.creator == "Pembroke, Henry Herbert; Pembroke, Mary Herbert"  # not the funder (fnd)
    assert (book.date, book.language, book.id) == ("1766", "ger", "PPN85249078X")
    assert ("publisher", "Stettin") in book.metadata
    assert len(info.pages) == 195 and info.pages[0].alto is None
    assert info.pages[0].image == "http://content.staatsbibliothek-berlin.de/dms/PPN85249078X/800/0/00000001.tif"


@pytest.mark.parametrize("name, message", [
    ("bnf-alto-iiif-lacroix/DOCS/0220169/X0220169.XML", "refNum"),
    ("kb-alto-editor/example.xml", "not a METS document"),
])
def test_other_documents_are_refused_by_name(corpus, name, message):
    with pytest.raises(SourceError, match=message) as err:
        mets(corpus / name)
    assert err.value.parameter == str(corpus / name)


UPPER = b"""<?xml version="1.0"?>
<METS:mets xmlns:METS="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink">
 <METS:dmdSec ID="DC1"><METS:mdWrap MDTYPE="DC"><METS:xmlData>
   <dc:dc xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Petit Journal</dc:title>
   <dc:creator>Anon</dc:creator><dc:date>1899</dc:date><dc:language>fre</dc:language></dc:dc>
 </METS:xmlData></METS:mdWrap></METS:dmdSec>
 <METS:fileSec>
  <METS:fileGrp USE="THUMBS"><METS:file ID="T1"><METS:FLocat xlink:href="thumbs/1.jpg"/></METS:file></METS:fileGrp>
  <METS:fileGrp USE="VIEWING"><METS:file ID="V1"><METS:FLocat xlink:href="file://./Viewing/1.jp2"/></METS:file></METS:fileGrp>
  <METS:fileGrp USE="content"><METS:file ID="A1" MIMETYPE="text/xml"><METS:FLocat xlink:href="ocr/1.xml"/></METS:file></METS:fileGrp>
 </METS:fileSec>
 <METS:structMap TYPE="PHYSICAL"><METS:div TYPE="BOOK">
  <METS:div TYPE="PAGE" ID="P1" ORDER="7"><METS:fptr FILEID="T1"/><METS:fptr FILEID="V1"/>
   <METS:fptr FILEID="A1"/><METS:fptr FILEID="GONE"/></METS:div>
 </METS:div></METS:structMap>
</METS:mets>"""


def test_uppercase_prefix_thumbnails_and_dublin_core():
    problems = []
    info = read_mets(UPPER, source="https://example.org/issue/mets.xml", report=problems.append)
    page = info.pages[0]
    assert (page.order, page.page_id) == (7, "P1")
    assert page.image == "https://example.org/issue/Viewing/1.jp2"  # the viewing copy, not the thumbnail
    assert page.alto == "https://example.org/issue/ocr/1.xml"  # XML of unknown kind: sniffed on loading
    assert any("GONE" in p.message for p in problems)
    assert (info.book.title, info.book.creator, info.book.date, info.book.language) == (
        "Petit Journal", "Anon", "1899", "fre")


def test_generic_xml_in_a_fulltext_group_is_alto_but_page_xml_is_not():
    doc = b"""<mets xmlns="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink"><fileSec>
      <fileGrp USE="OCR-D-OCR-PAGE"><file ID="P" MIMETYPE="application/xml"><FLocat xlink:href="p.xml"/></file></fileGrp>
      <fileGrp USE="FULLTEXT"><file ID="F" MIMETYPE="text/xml"><FLocat xlink:href="f.xml"/></file></fileGrp>
      <fileGrp USE="MASTER"><file ID="I" MIMETYPE="image/tiff"><FLocat xlink:href="/abs/i.tif"/></file></fileGrp>
      </fileSec><structMap TYPE="PHYSICAL"><div><div TYPE="page"><fptr FILEID="P"/><fptr FILEID="F"/>
      <fptr FILEID="I"/></div></div></structMap></mets>"""
    page = read_mets(doc, source="/data/book/mets.xml").pages[0]
    assert (page.image, page.alto) == ("/abs/i.tif", "/data/book/f.xml")


def test_page_xml_is_the_layout_when_there_is_no_alto():
    doc = b"""<mets:mets xmlns:mets="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink">
      <mets:fileSec><mets:fileGrp USE="OCR-D-IMG"><mets:file ID="I" MIMETYPE="image/png">
      <mets:FLocat xlink:href="i.png"/></mets:file></mets:fileGrp><mets:fileGrp USE="OCR-D-SEG">
      <mets:file ID="S" MIMETYPE="application/vnd.prima.page+xml"><mets:FLocat xlink:href="s.xml"/>
      </mets:file></mets:fileGrp></mets:fileSec><mets:structMap TYPE="PHYSICAL"><mets:div>
      <mets:div TYPE="page"><mets:fptr FILEID="S"/><mets:fptr FILEID="I"/></mets:div></mets:div>
      </mets:structMap></mets:mets>"""
    page = read_mets(doc, source="w/mets.xml").pages[0]
    assert (page.image, page.alto) == ("w/i.png", "w/s.xml")


def test_without_structmap_images_and_alto_pair_by_order():
    doc = b"""<mets xmlns="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink"><fileSec>
      <fileGrp USE="IMG"><file ID="I1"><FLocat xlink:href="1.png"/></file><file ID="I2"><FLocat xlink:href="2.png"/></file></fileGrp>
      <fileGrp USE="ALTO"><file ID="A1"><FLocat xlink:href="1.xml"/></file><file ID="A2"><FLocat xlink:href="2.xml"/></file></fileGrp>
      </fileSec></mets>"""
    problems = []
    pages = read_mets(doc, source="m.xml", report=problems.append).pages
    assert [(p.image, p.alto) for p in pages] == [("1.png", "1.xml"), ("2.png", "2.xml")]
    assert problems and problems[0].where == "structMap"


def test_images_known_by_their_name_include_jpeg_2000_jpf():
    """Without a MIMETYPE an image is known by its name, with the same endings as in folders."""
    doc = b"""<mets xmlns="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink"><fileSec>
      <fileGrp USE="MASTER"><file ID="I"><FLocat xlink:href="0001.JPF"/></file></fileGrp></fileSec>
      <structMap TYPE="PHYSICAL"><div><div TYPE="page" ORDER="2.0"><fptr FILEID="I"/></div></div></structMap></mets>"""
    page = read_mets(doc, source="/data/book/mets.xml").pages[0]
    assert (page.order, page.image) == (2, "/data/book/0001.JPF")


@pytest.mark.parametrize("data, message", [
    (b"<DIDL xmlns='urn:mpeg:mpeg21:2002:02-DIDL-NS'/>", "DIDL"),
    (b"<mets xmlns='http://www.loc.gov/METS/'><fileSec/></mets>", "no physical pages"),
    (b"not xml at all", "XML"),
])
def test_unusable_documents(data, message):
    with pytest.raises(SourceError, match=message):
        read_mets(data, source="x.xml")
