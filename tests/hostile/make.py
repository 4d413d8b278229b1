"""Hostile and broken inputs for bookidx's reliability tests (issue 7), generated on demand.

Nothing binary is committed: ``build(dest)`` writes every case into its own folder under
``dest`` in well under a second, and ``python tests/hostile/make.py DEST`` does the same for
trying them by hand (``bookidx regions DEST/<case>/...``, ``bookidx index ...``).

Each case is one thing a digitisation pipeline really meets, or an attacker could send: XML that
is cut short, malformed, declares entities (XXE, "billion laughs", also in UTF-16 where a byte
search cannot see them) or lies about its encoding; coordinates that are absurd (1e12, 1e308,
negative, NaN, words); pages and canvases of size zero; files that are empty or not images at
all; JPEGs that are corrupt or truncated; PNG headers declaring 50000 x 50000 pixels
(decompression bombs); JSON nested 100 000 deep; a manifest of 20 000 canvases; collections and
lists that include themselves; a folder that links to itself.

Images inside IIIF documents are named by ``http://hostile.test/<case>/<file>`` URLs, which
tests serve from ``dest`` (``serve_path``); everything else is local files.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

BASE_URL = "http://hostile.test/"
WIDTH, HEIGHT = 600, 400  # the good page image
PICTURE = (60, 50, 300, 200)  # x, y, w, h of the good page's one illustration
CAPTION = "Gravure représentant le port de Brest"
CANVASES = 20_000  # in the huge manifest
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"


@dataclass(frozen=True)
class Case:
    """One hostile input: ``spec`` is what is handed to bookidx (a file or folder in ``dest``)."""

    name: str
    spec: Path
    what: str


def build(dest: str | Path, *, probe_url: str = "http://127.0.0.1:9/probe.dtd") -> dict[str, Case]:
    """Write every case under ``dest``; returns them by name.

    Args:
        dest: an empty (or new) folder.
        probe_url: a URL that hostile XML asks the parser to fetch (external DTD, external
            entities). Tests point it at a local server and check it is never requested.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    def case(name: str, what: str, files: dict[str, bytes], spec: str = "") -> None:
        folder = dest / name
        folder.mkdir()
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        cases[name] = Case(name, folder / spec if spec else folder, what)

    page = good_jpeg()
    good = alto(_illustration("I1", *PICTURE) + _caption(PICTURE))

    case("good", "a well-formed ALTO page with one illustration and its image",
         {"page.jpg": page, "page.xml": good})
    # -- XML ------------------------------------------------------------------------------------
    case("truncated_xml", "ALTO cut off halfway (an interrupted download)",
         {"page.jpg": page, "page.xml": good[: len(good) // 2]})
    case("malformed_xml", "ALTO whose elements do not nest",
         {"page.jpg": page, "page.xml": good.replace(b"</PrintSpace>", b"</TextBlock>")})
    case("xxe_file", "an external entity reading /etc/passwd into the text",
         {"page.jpg": page, "page.xml": _doctype(
             good, '[<!ENTITY xxe SYSTEM "file:///etc/passwd">]', b'CONTENT="&xxe;"')})
    case("xxe_parameter", "a parameter entity fetching a remote DTD",
         {"page.jpg": page, "page.xml": _doctype(
             good, f'[<!ENTITY % remote SYSTEM "{probe_url}"> %remote;]', b"")})
    case("external_dtd", "a DOCTYPE naming a remote DTD (no entities): parsed, never fetched",
         {"page.jpg": page, "page.xml": _doctype(good, f'SYSTEM "{probe_url}"', b"")})
    case("billion_laughs", "nested entities expanding to 10^9 'lol's",
         {"page.jpg": page, "page.xml": billion_laughs("utf-8")})
    case("billion_laughs_utf16", "the same, in UTF-16, where a byte search sees no '<!ENTITY'",
         {"page.jpg": page, "page.xml": billion_laughs("utf-16")})
    case("deep_xml", "10 000 nested elements",
         {"page.jpg": page, "page.xml": good.replace(
             b"</PrintSpace>", b"<x>" * 10_000 + b"</x>" * 10_000 + b"</PrintSpace>")})
    case("utf16_declared", "declares UTF-16, bytes are UTF-8",
         {"page.jpg": page, "page.xml": good.replace(b'encoding="UTF-8"', b'encoding="UTF-16"')})
    case("unknown_encoding", "declares an encoding nobody has heard of",
         {"page.jpg": page, "page.xml": good.replace(b'encoding="UTF-8"', b'encoding="x-klingon"')})
    case("latin1_undeclared", "Latin-1 bytes in a document that says (by default) UTF-8",
         {"page.jpg": page, "page.xml": good.decode("utf-8").encode("latin-1")
             .replace(b' encoding="UTF-8"', b"")})
    # -- coordinates and sizes ------------------------------------------------------------------
    absurd = "".join([
        _illustration("HUGE", 1e12, 10, 50, 50), _illustration("FAR", 1e308, 10, 1e308, 50),
        _illustration("NEG", 10, 10, -50, 50), _illustration("NAN", 10, 10, "NaN", 50),
        _illustration("INF", 10, 10, 50, "inf"), _illustration("WORD", "left", 10, 50, 50),
        _illustration("ZERO", 10, 10, 0, 0), _illustration("I1", *PICTURE),
    ])
    case("absurd_coordinates", "blocks at 1e12 and 1e308, negative, NaN, inf, words, zero size",
         {"page.jpg": page, "page.xml": alto(absurd)})
    case("tiny_page_size", "an ALTO Page 1e-300 units wide: scales every box to infinity",
         {"page.jpg": page, "page.xml": alto(_illustration("I1", *PICTURE), width="1e-300")})
    case("zero_size_page", "an ALTO Page of WIDTH=0 HEIGHT=0",
         {"page.jpg": page, "page.xml": alto(_illustration("I1", *PICTURE), width="0", height="0")})
    case("page_xml_absurd", "PAGE-XML outlines at 1e308 on a page that claims to be 1 px wide",
         {"page.jpg": page, "page.xml": page_xml()})
    # -- images ---------------------------------------------------------------------------------
    case("not_an_image", "an HTML error page saved as page.jpg",
         {"page.jpg": b"<html><body>502 Bad Gateway</body></html>", "page.xml": good})
    case("corrupt_jpeg", "a JPEG whose entropy-coded data is overwritten with garbage",
         {"page.jpg": corrupt_jpeg(page), "page.xml": good})
    case("truncated_jpeg", "the first 40% of a JPEG",
         {"page.jpg": page[: len(page) * 2 // 5], "page.xml": good})
    case("bomb_png", "a 100-byte PNG declaring 50000 x 50000 pixels",
         {"page.png": png_header(50_000, 50_000)}, "page.png")
    case("big_png", "a PNG header of 12000 x 12000 (144 MP): under Pillow's limit, over a 100 MP one",
         {"page.png": png_header(12_000, 12_000)}, "page.png")
    case("empty_xml", "an empty .xml file", {"page.xml": b""}, "page.xml")
    case("empty_json", "an empty .json file", {"manifest.json": b""}, "manifest.json")
    case("empty_jpg", "an empty .jpg file", {"page.jpg": b""}, "page.jpg")
    # -- IIIF and containers --------------------------------------------------------------------
    case("huge_manifest", f"a IIIF 3 manifest of {CANVASES} canvases (about 9 MB)",
         {"manifest.json": huge_manifest(CANVASES)}, "manifest.json")
    case("deep_json", "JSON arrays nested 100 000 deep", {"manifest.json": b"[" * 100_000 + b"]" * 100_000},
         "manifest.json")
    case("absurd_manifest", "canvases of width 1e400 (infinity), NaN, -5 and a 1e30 selector",
         {"manifest.json": absurd_manifest(), **{f"p{n}.jpg": page for n in range(5)}}, "manifest.json")
    loop = dest / "collection_loop"
    case("collection_loop", "collection a lists itself and b; b lists a and the one manifest", {
        "a.json": collection(loop / "a.json", [loop / "b.json", loop / "a.json"]),
        "b.json": collection(loop / "b.json", [loop / "a.json", loop / "m.json"]),
        "m.json": manifest("collection_loop/m.json", "collection_loop/page.jpg"),
        "page.jpg": page,
    }, "a.json")
    deep = dest / "deep_collection"
    chain = {f"c{i}.json": collection(deep / f"c{i}.json", [deep / f"c{i + 1}.json"]) for i in range(12)}
    chain["c12.json"] = manifest("deep_collection/c12.json", "deep_collection/page.jpg")
    case("deep_collection", "collections nested 12 deep", {**chain, "page.jpg": page}, "c0.json")
    case("list_loop", "a .txt list naming itself, a missing file and the good page", {
        "list.txt": f"# sources\n{dest / 'list_loop' / 'list.txt'}\nmissing.xml\n"
                    f"{dest / 'good' / 'page.xml'}\n".encode()}, "list.txt")
    case("mets_nul", "METS whose hrefs hide a NUL byte (%00) or climb out of the folder", {
        "mets.xml": mets(["page.jpg", "../../../../../../../../etc/passwd", "page.jpg"],
                         ["page%00.xml", "", "page.xml"]),
        "page.jpg": page, "page.xml": good}, "mets.xml")
    case("symlink_loop", "a folder holding a link to itself, beside the good page",
         {"page.jpg": page, "page.xml": good})
    os.symlink(".", dest / "symlink_loop" / "again")
    return cases


def serve_path(dest: str | Path, url: str) -> Path | None:
    """The file in ``dest`` behind a ``http://hostile.test/...`` URL (None for other URLs)."""
    if not url.startswith(BASE_URL):
        return None
    return Path(dest) / url[len(BASE_URL):]


# -- documents ----------------------------------------------------------------------------------


def good_jpeg() -> bytes:
    """A 600 x 400 page: grey paper, a dark framed picture (PICTURE), some text-like bars."""
    img = Image.new("RGB", (WIDTH, HEIGHT), (235, 230, 215))
    draw = ImageDraw.Draw(img)
    x, y, w, h = PICTURE
    draw.rectangle((x, y, x + w, y + h), fill=(60, 50, 40), outline=(0, 0, 0), width=4)
    draw.ellipse((x + 40, y + 30, x + 160, y + 150), fill=(200, 190, 170))
    for row in range(y + h + 20, HEIGHT - 20, 18):
        draw.rectangle((40, row, WIDTH - 40, row + 8), fill=(90, 90, 90))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def corrupt_jpeg(data: bytes) -> bytes:
    """The JPEG with its Huffman tables zeroed: the headers read, decoding cannot."""
    out = bytearray(data)
    at = 2
    while at < len(out) - 4 and out[at] == 0xFF:
        marker, length = out[at + 1], struct.unpack(">H", out[at + 2: at + 4])[0]
        if marker == 0xC4:  # DHT: zero the code counts and symbols
            out[at + 4: at + 2 + length] = bytes(length - 2)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        at += 2 + length
    return bytes(out)


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` grey pixels whose data stops after one row."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def alto(blocks: str, *, width: str = str(WIDTH), height: str = str(HEIGHT)) -> bytes:
    """An ALTO 4 document for ``page.jpg`` with ``blocks`` in its PrintSpace."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="{ALTO_NS}" ID="doc">
  <Description>
    <MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>page.jpg</fileName></sourceImageInformation>
  </Description>
  <Layout>
    <Page ID="P1" WIDTH="{width}" HEIGHT="{height}" PHYSICAL_IMG_NR="1">
      <PrintSpace>
{blocks}      </PrintSpace>
    </Page>
  </Layout>
</alto>
""".encode("utf-8")


def _illustration(block_id: str, x, y, w, h) -> str:
    return f'        <Illustration ID="{block_id}" HPOS="{x}" VPOS="{y}" WIDTH="{w}" HEIGHT="{h}"/>\n'


def _caption(box: tuple[int, int, int, int]) -> str:
    x, y, w, h = box
    words = "".join(f'<String CONTENT="{word}"/><SP/>' for word in CAPTION.split())
    return (f'        <TextBlock ID="T1" HPOS="{x}" VPOS="{y + h + 6}" WIDTH="{w}" HEIGHT="14">'
            f'<TextLine HPOS="{x}" VPOS="{y + h + 6}" WIDTH="{w}" HEIGHT="14">{words}'
            "</TextLine></TextBlock>\n")


def _doctype(document: bytes, declaration: str, content: bytes) -> bytes:
    """``document`` with ``<!DOCTYPE alto ...>`` after its XML declaration and, when given,
    ``content`` instead of the first word's CONTENT attribute (to use the entity)."""
    head, rest = document.split(b"\n", 1)
    if content:
        rest = rest.replace(b'CONTENT="Gravure"', content, 1)
    return head + b"\n<!DOCTYPE alto " + declaration.encode() + b">\n" + rest


def billion_laughs(encoding: str) -> bytes:
    """The classic: ten entities, each ten of the one before (10^9 'lol's), used in an attribute
    (libxml2 expands attribute entities whatever resolve_entities says) and in text."""
    lines = ['<?xml version="1.0" encoding="%s"?>' % encoding.upper(), "<!DOCTYPE alto [",
             '<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    lines += ["]>", f'<alto xmlns="{ALTO_NS}" ID="&lol9;"><Description>&lol9;</Description></alto>']
    return "\n".join(lines).encode(encoding)


def page_xml() -> bytes:
    """PAGE 2019 claiming a 1 x 1 image (so outlines scale by 600 and 400) with outlines at
    1e308, NaN and words, and one good outline (PICTURE once scaled)."""
    ns = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="{ns}">
  <Page imageFilename="page.jpg" imageWidth="1" imageHeight="1">
    <ImageRegion id="r_far"><Coords points="1e308,1e308 1e308,2e307"/></ImageRegion>
    <ImageRegion id="r_nan"><Coords points="nan,0 5,5"/></ImageRegion>
    <ImageRegion id="r_word"><Coords points="left,top right,bottom"/></ImageRegion>
    <ImageRegion id="r_good"><Coords points="0.1,0.125 0.6,0.125 0.6,0.625 0.1,0.625"/></ImageRegion>
  </Page>
</PcGts>
""".encode("utf-8")


def _canvas(n: int, image_url: str, width: int | float | str = WIDTH,
            height: int | float | str = HEIGHT) -> dict:
    return {
        "id": f"{BASE_URL}canvas/{n}", "type": "Canvas", "label": {"none": [f"p. {n + 1}"]},
        "width": width, "height": height,
        "items": [{"id": f"{BASE_URL}canvas/{n}/page", "type": "AnnotationPage", "items": [{
            "id": f"{BASE_URL}canvas/{n}/image", "type": "Annotation", "motivation": "painting",
            "target": f"{BASE_URL}canvas/{n}",
            "body": {"id": image_url, "type": "Image", "format": "image/jpeg",
                     "width": WIDTH, "height": HEIGHT},
        }]}],
    }


def manifest(ident: str, image: str, canvases: list[dict] | None = None) -> bytes:
    """A Presentation 3 manifest with id ``BASE_URL + ident`` painting ``BASE_URL + image``."""
    doc = {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": BASE_URL + ident, "type": "Manifest", "label": {"en": ["Hostile test manifest"]},
        "items": canvases if canvases is not None else [_canvas(0, BASE_URL + image)],
    }
    return json.dumps(doc, allow_nan=True).encode("utf-8")


def huge_manifest(n: int) -> bytes:
    return manifest("huge_manifest/manifest.json", "",
                    [_canvas(i, f"{BASE_URL}huge_manifest/p{i}.jpg") for i in range(n)])


def absurd_manifest() -> bytes:
    """Five canvases painting p0.jpg .. p4.jpg, four with absurd sizes or selectors."""
    image = [f"{BASE_URL}absurd_manifest/p{n}.jpg" for n in range(5)]
    canvases = [_canvas(0, image[0], 1e400, 1e400), _canvas(1, image[1], "NaN", "NaN"),
                _canvas(2, image[2], -5, -5), _canvas(3, image[3])]
    # A canvas showing a region of its image far outside it (SpecificResource + selector).
    body = canvases[3]["items"][0]["items"][0]["body"]
    canvases[3]["items"][0]["items"][0]["body"] = {
        "type": "SpecificResource", "source": body,
        "selector": {"type": "ImageApiSelector", "region": "1000000000000000000000000000000,0,5,5"}}
    canvases.append(_canvas(4, image[4]))  # and one good canvas
    # 1e400 is valid JSON that overflows a double; json.dumps would write "Infinity"
    return manifest("absurd_manifest/manifest.json", "", canvases).replace(b"Infinity", b"1e400")


def collection(path: Path, members: list[Path]) -> bytes:
    """A Presentation 3 collection whose id is its own path and whose members are local paths."""
    return json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": str(path), "type": "Collection", "label": {"en": ["loop"]},
        "items": [{"id": str(m), "type": "Collection" if "/c" in m.name or m.name in ("a.json", "b.json")
                   else "Manifest"} for m in members],
    }).encode("utf-8")


def mets(images: list[str], altos: list[str]) -> bytes:
    """A METS file: one page per (image, ALTO) href pair, hrefs as given ("" for no ALTO)."""
    files, divs = [], []
    for i, (image, layout) in enumerate(zip(images, altos), start=1):
        files.append(f'<mets:file ID="IMG{i}" MIMETYPE="image/jpeg"><mets:FLocat LOCTYPE="URL" '
                     f'xlink:href="{image}"/></mets:file>')
        if layout:
            files.append(f'<mets:file ID="ALTO{i}" MIMETYPE="text/xml"><mets:FLocat LOCTYPE="URL" '
                         f'xlink:href="{layout}"/></mets:file>')
        divs.append(f'<mets:div TYPE="page" ID="PHYS{i}" ORDER="{i}"><mets:fptr FILEID="IMG{i}"/>'
                    + (f'<mets:fptr FILEID="ALTO{i}"/>' if layout else "") + "</mets:div>")
    images_xml = "".join(f for f in files if 'ID="IMG' in f)
    alto_xml = "".join(f for f in files if 'ID="ALTO' in f)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<mets:mets xmlns:mets="http://www.loc.gov/METS/" xmlns:xlink="http://www.w3.org/1999/xlink">
  <mets:fileSec>
    <mets:fileGrp USE="IMAGE">{images_xml}</mets:fileGrp>
    <mets:fileGrp USE="ALTO">{alto_xml}</mets:fileGrp>
  </mets:fileSec>
  <mets:structMap TYPE="PHYSICAL"><mets:div TYPE="book">{"".join(divs)}</mets:div></mets:structMap>
</mets:mets>
""".encode("utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile/make.py DEST")
    for built in build(sys.argv[1]).values():
        print(f"{built.name:<22} {built.spec}  ({built.what})")
