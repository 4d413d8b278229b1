"""Small real indexes for the web tests: 20 NLS chapbook woodcuts plus two IIIF-served regions.

Regions are cut from real page scans (``chapbooks`` fixture) with the metadata of the NLS
catalogue (book id, year, catalogue note as caption); two pages are a known reprinted pair, so
"similar" has a right answer. Vectors come from the ``test-pixels`` embedder registered in
conftest.py (or any other embedder, e.g. a tiny SigLIP for text → image).
"""

from __future__ import annotations

import csv
import io
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from PIL import Image

from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.config import IndexConfig
from bookidx.embed import Embedder
from bookidx.store import Index

#: A reprinted woodcut (candidate_near_duplicate_pairs.csv, cosine 0.956): each should find the other.
TWIN_A, TWIN_B = "108619809.3.jpg", "108620097.3.jpg"
#: Two captions written for keyword tests; every other caption is the NLS catalogue note.
SHIP, HORSE = "A ship under full sail, woodcut", "A horseman on the road"
BOX = Box(40, 60, 520, 480)  # roughly where the title-page woodcut sits on these 600 px pages
IIIF_SERVICE = "https://iiif.example.org/iiif/2/page"
IIIF_MANIFEST = "https://iiif.example.org/manifest.json"


def chapbook_regions(chapbooks: Path, n: int = 20) -> list[Region]:
    """``n`` local regions (the twins included) in two manifests, then two IIIF regions."""
    rows = {r["filename"]: r for r in csv.DictReader((chapbooks / "manifest.csv").open(encoding="utf-8"))}
    names = [TWIN_A, TWIN_B] + [f for f in sorted(rows) if f not in (TWIN_A, TWIN_B)][: n - 2]
    regions = []
    for i, name in enumerate(names):
        row = rows[name]
        width, height = int(row["width"]), int(row["height"])
        note = row["nls_catalogue_note"].split("| This item was digitised")[0].replace("|", " ")
        caption = {2: SHIP, 3: HORSE}.get(i, note.strip() or "Woodcut")
        regions.append(Region(
            page=Page(
                id=f"https://example.org/canvas/{row['nls_page_id']}", index=i,
                image=ImageRef(width, height, path=str(chapbooks / "images" / name)),
                width=width, height=height, label=f"p. {i + 1}",
                manifest="urn:test:m1" if i < n // 2 else "urn:test:m2",
            ),
            box=BOX, kind="Illustration" if i % 4 else "GraphicalElement", caption=caption,
            context=f"page {row['nls_page_id']}",
            book=Book(id=row["nls_book_id"] or row["nls_page_id"], title=f"Chapbook {i}", date=row["year"]),
            source=name,
        ))
    for j in range(2):
        # Canvas half the image's size, as in many IIIF manifests: canvas boxes are halved.
        regions.append(Region(
            page=Page(
                id=f"https://iiif.example.org/canvas/{j}", index=j,
                image=ImageRef(1200, 2000, service=f"{IIIF_SERVICE}{j}", api=2),
                width=600, height=1000, label=f"f. {j + 1}r", manifest=IIIF_MANIFEST,
            ),
            box=Box(200, 400, 800, 600), kind="Map", caption=f"A map of the river, sheet {j + 1}",
            book=Book(id="iiif-book", title="Atlas", creator="Anon.", date="1820"),
        ))
    return regions


def crop(region: Region, chapbooks: Path, spare: str = "104820870.3.jpg") -> Image.Image:
    """The region's pixels (IIIF regions, not reachable offline, borrow a spare page's)."""
    path = region.page.image.path or str(chapbooks / "images" / spare)
    b = region.box
    with Image.open(path) as page:
        if not region.page.image.path:
            b = Box(40 + 60 * region.page.index, 60, 400, 400)
        return page.convert("RGB").crop((b.x, b.y, b.x + b.w, b.y + b.h))


def build_index(path: Path, chapbooks: Path, embedder: Embedder, regions: list[Region] | None = None) -> list[Region]:
    """Create an index at ``path`` holding ``regions`` (default: :func:`chapbook_regions`).

    The twins, when both are there, form a near-duplicate group (as ``bookidx dedup`` would).
    """
    regions = regions if regions is not None else chapbook_regions(chapbooks)
    vectors = embedder.embed_images([crop(r, chapbooks) for r in regions])
    index = Index.create_or_open(path, model_info=embedder.info, config=IndexConfig(model=embedder.model_id))
    try:
        index.add(regions, vectors)
        index.commit()
        twins = [r.key for r in regions if r.source in (TWIN_A, TWIN_B)]
        if len(twins) == 2:
            index.set_groups({key: min(twins) for key in twins})
            index.commit()
    finally:
        index.close()
    return regions


class _Gradient(BaseHTTPRequestHandler):
    """Any GET is a small gradient PNG: an allow-listed ``image_url`` that can be searched by."""

    def do_GET(self):
        buf = io.BytesIO()
        Image.linear_gradient("L").resize((48, 48)).save(buf, "PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(buf.getvalue())))
        self.end_headers()
        self.wfile.write(buf.getvalue())

    def log_message(self, *args):
        pass


@contextmanager
def image_server() -> Iterator[str]:
    """A server on 127.0.0.1 answering every GET with a small PNG; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gradient)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
