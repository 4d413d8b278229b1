"""Mirador, unmodified from npm, searches a bookidx-served manifest with its own search panel.

Three origins, as on the web: zimeon's reference IIIF Image server (tests/iiifserver.py) serves
three real NLS chapbook pages; ``bookidx.web.serve``'s waitress server serves the index, the
annotated manifest and its Content Search; a plain static server serves examples/mirador (the
page and Mirador's dist bundle). Headless Debian Chromium, driven by Playwright, loads the page,
types into Mirador's search panel, sees bookidx's hits listed, chooses one and checks that
Mirador moved to its canvas. Screenshots go to test-artifacts/.

Needs /usr/bin/chromium (``apt-get install -y chromium``), the ``playwright`` package (never its
own browser download) and Node.js for ``npm ci`` in examples/mirador (tests/npmdeps.py).
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from PIL import Image

from bookidx.adapters.records import Book, Box, Page, Region
from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.manifests import save_manifest, slug
from bookidx.store import Index
from bookidx.web.serve import make_server, shutdown
from iiifserver import CHAPBOOK_PAGES, chapbook_iiif  # noqa: F401  (chapbook_iiif: fixture)
from npmdeps import MIRADOR_DIR, node_modules

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
MANIFEST_ID = "https://example.org/chapbooks/manifest.json"
# One woodcut per page (roughly where it sits on these 600 px wide title pages).
CAPTIONS = ("A ship under full sail, woodcut", "A horseman on the road, woodcut", "Ornamental tailpiece with flowers")
BOX = Box(60, 300, 480, 420)


def _manifest(server) -> tuple[dict, list[Region]]:
    """A Presentation 3 manifest of the served pages, and one region per page."""
    items, regions = [], []
    book = Book("nls-chapbooks", title="Chapbooks printed in Scotland", language="en")
    for i, name in enumerate(CHAPBOOK_PAGES):
        identifier = Path(name).stem
        ref = server.ref(identifier, api=3)
        canvas = f"https://example.org/chapbooks/canvas/{i + 1}"
        items.append({
            "id": canvas, "type": "Canvas", "label": {"none": [f"p. {i + 1}"]}, "width": ref.width, "height": ref.height,
            "items": [{
                "id": f"{canvas}/page", "type": "AnnotationPage",
                "items": [{
                    "id": f"{canvas}/image", "type": "Annotation", "motivation": "painting", "target": canvas,
                    "body": {
                        "id": f"{ref.service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                        "width": ref.width, "height": ref.height,
                        "service": [{"id": ref.service, "type": "ImageService3", "profile": "level1"}],
                    },
                }],
            }],
        })
        page = Page(canvas, i, ref, ref.width, ref.height, label=f"p. {i + 1}", manifest=MANIFEST_ID)
        regions.append(Region(page, BOX, "Illustration", caption=CAPTIONS[i], book=book, source=name))
    doc = {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": MANIFEST_ID, "type": "Manifest", "label": {"en": ["Chapbooks printed in Scotland (three title pages)"]},
        "items": items,
    }
    return doc, regions


@pytest.fixture(scope="module")
def bookidx_server(chapbook_iiif, tmp_path_factory):  # noqa: F811
    """waitress serving an index of the three pages, the manifest stored beside it."""
    path = tmp_path_factory.mktemp("mirador") / "idx"
    doc, regions = _manifest(chapbook_iiif)
    embedder = load_embedder("test-pixels")
    crops = []
    for region in regions:
        with Image.open(chapbook_iiif.path(Path(region.source).stem)) as img:
            b = region.box
            crops.append(img.convert("RGB").crop((b.x, b.y, b.x + b.w, b.y + b.h)))
    index = Index.create_or_open(path, model_info=embedder.info, config=IndexConfig(model=embedder.model_id))
    try:
        index.add(regions, embedder.embed_images(crops))
        index.commit()
    finally:
        index.close()
    save_manifest(path, MANIFEST_ID, doc)
    server = make_server(str(path), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", doc
    finally:
        shutdown(server)
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def mirador_site():
    """examples/mirador over plain HTTP, as any static host would serve it."""
    node_modules()
    handler = functools.partial(_QuietHandler, directory=str(MIRADOR_DIR))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser
        finally:
            browser.close()


def _canvas_id(page) -> str:
    return page.evaluate(
        "() => { const s = window.mirador.store.getState(); return Object.values(s.windows)[0].canvasId; }"
    )


def test_mirador_search_panel_lists_bookidx_hits_and_goes_to_the_canvas(browser, bookidx_server, mirador_site):
    base, doc = bookidx_server
    manifest_url = f"{base}/bookidx/iiif/{slug(MANIFEST_ID)}/manifest.json"
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{mirador_site}/index.html?manifest={manifest_url}")
        # Mirador offers its search panel only for a manifest with a search service it knows.
        page.get_by_role("tab", name="Search").click(timeout=30_000)
        search_box = page.get_by_role("combobox", name="search terms")
        search_box.wait_for(timeout=10_000)
        page.wait_for_function("() => document.querySelector('canvas') !== null", timeout=30_000)
        assert _canvas_id(page) == doc["items"][0]["id"]
        page.screenshot(path=str(ARTIFACTS / "mirador-1-loaded.png"))

        search_box.fill("woodcut")  # in the captions of pages 1 and 2, not 3
        page.get_by_role("button", name="Submit search").click()
        panel = page.get_by_role("complementary", name="Search")
        hits = panel.locator("ul > *")  # the selected hit is an li, the others are role=button divs
        hits.filter(has_text="horseman").wait_for(timeout=20_000)
        assert hits.count() == 2
        assert "A ship under full sail" in hits.nth(0).inner_text() and "p. 1" in hits.nth(0).inner_text()
        assert "A horseman on the road" in hits.nth(1).inner_text() and "p. 2" in hits.nth(1).inner_text()
        assert _canvas_id(page) == doc["items"][0]["id"]  # Mirador selects the first hit itself
        page.screenshot(path=str(ARTIFACTS / "mirador-2-hits.png"))

        hits.nth(1).click()
        page.wait_for_function(
            f"() => Object.values(window.mirador.store.getState().windows)[0].canvasId === {doc['items'][1]['id']!r}",
            timeout=20_000,
        )
        page.screenshot(path=str(ARTIFACTS / "mirador-3-on-canvas.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "mirador-failed.png"))
        (ARTIFACTS / "mirador-failed.txt").write_text(
            page.locator("body").aria_snapshot() + "\n" + "\n".join(errors) + "\n" + page.content())
        raise
    finally:
        page.close()
    assert not errors, errors
