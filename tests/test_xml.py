"""adapters/xml.py: safe parsing and the byte-level quirks of real library XML."""

from __future__ import annotations

import time

import pytest
from lxml import etree

from bookidx.adapters.xml import local, parse_xml
from bookidx.errors import SourceError

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alto><Layout><Page ID="&lol9;"/></Layout></alto>"""


def parse(data: bytes, source: str = "test.xml"):
    problems = []
    root = parse_xml(data, source, problems.append)
    return root, problems


@pytest.mark.parametrize("tag, name", [
    ("{http://www.loc.gov/standards/alto/ns-v3#}Page", "Page"),
    ("{http://bibnum.bnf.fr/ns/alto_prod}String", "String"),
    ("TextBlock", "TextBlock"),
])
def test_local_strips_any_namespace(tag, name):
    assert local(tag) == name


def test_local_of_a_prefixed_root_and_of_non_elements():
    root, _ = parse(b'<a:alto xmlns:a="http://www.loc.gov/standards/alto/ns-v4#">'
                    b"<a:Layout/></a:alto>")
    assert [local(el.tag) for el in root.iter()] == ["alto", "Layout"]
    assert local(etree.Comment("note").tag) == ""  # a comment's tag is a function, not a name


def test_bnf_bom_with_wrong_declared_encoding_reads_utf8(corpus):
    path = corpus / "bnf-alto-iiif-lacroix/DOCS/0220169/X/X0000001.xml"
    root, problems = parse(path.read_bytes(), str(path))
    words = [s.get("CONTENT") for s in root.iter("{*}String")]
    assert "suprême" in words and "française." in words  # not "suprÃªme"
    assert len(problems) == 1 and "byte order mark" in problems[0].message
    assert problems[0].source == str(path)


def test_latin1_declared_and_really_latin1_is_left_alone():
    data = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<p a="Gebäude">é</p>'.encode("latin-1")
    root, problems = parse(data)
    assert (root.get("a"), root.text, problems) == ("Gebäude", "é", [])


def test_latin1_declared_over_utf8_bytes_reads_utf8():
    data = '<?xml version="1.0" encoding="iso-8859-1"?><p>Ça coûte</p>'.encode("utf-8")
    root, problems = parse(data)
    assert root.text == "Ça coûte"
    assert "bytes are UTF-8" in problems[0].message


def test_undeclared_cp1252_bytes_are_recovered_with_a_warning():
    data = b"<p>It\x92s caf\xe9</p>"  # no declaration: UTF-8 by default, but these are cp1252
    root, problems = parse(data)
    assert root.text == "It\u2019s café"
    assert "Windows-1252" in problems[0].message


def test_blank_lines_before_declaration_keep_line_numbers(corpus):
    path = corpus / "nln-ngx-mime/alto/testAltoWithNoMargins.raw.xml"
    raw = path.read_bytes()
    assert raw.startswith(b"\n")  # the quirk is really there; strict parsers reject it
    root, problems = parse(raw, str(path))
    assert local(root.tag) == "alto"
    assert "blank line" in problems[0].message
    first_page = next(root.iter("{*}Page"))
    line = raw.split(b"\n").index(next(l for l in raw.split(b"\n") if b"<Page " in l)) + 1
    assert first_page.sourceline == line


def test_nln_duplicated_declaration_parses_with_a_warning(corpus):
    path = corpus / "nln-ngx-mime/alto/testAlto.raw.xml"
    raw = path.read_bytes()
    assert raw.count(b"<?xml") == 2
    root, problems = parse(raw, str(path))
    assert local(root.tag) == "alto" and root.sourceline == 4  # as in the file
    assert [p.where for p in problems] == ["line 3"]
    assert "duplicated XML declaration" in problems[0].message


def test_billion_laughs_is_refused_fast_and_never_expanded():
    start = time.perf_counter()
    with pytest.raises(SourceError) as err:
        parse_xml(BILLION_LAUGHS, "bomb.xml")
    assert time.perf_counter() - start < 0.5
    assert err.value.parameter == "bomb.xml" and "entity" in err.value.detail
    assert err.value.code == 422


def test_external_entity_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<alto><Description><fileName>&x;</fileName></Description></alto>').encode()
    with pytest.raises(SourceError) as err:
        parse_xml(xxe, "xxe.xml")
    assert "TOP SECRET" not in str(err.value)


def test_utf16_entity_declarations_are_refused_after_parsing():
    # the byte search before parsing cannot see UTF-16; the DTD check after parsing must
    data = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "boom">]>'
            "<a>&x;</a>").encode("utf-16")
    with pytest.raises(SourceError, match="entity"):
        parse_xml(data, "utf16.xml")


def test_doctype_without_entities_is_fine():
    root, problems = parse(b'<?xml version="1.0"?><!DOCTYPE alto SYSTEM "alto.dtd"><alto/>')
    assert local(root.tag) == "alto" and problems == []


def test_not_well_formed_names_file_and_line():
    with pytest.raises(SourceError) as err:
        parse_xml(b"<alto>\n<Layout>\n<Page></Layout>\n</alto>", "broken.xml")
    assert err.value.parameter == "broken.xml"
    assert "line 3" in err.value.detail
