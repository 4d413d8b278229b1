"""The widget (widget/src → plugin/bookidx/web/static/bookidx.js) in a real browser.

Headless Chromium from Debian (``/usr/bin/chromium``), driven by Playwright, against a real
blueprint on 127.0.0.1 serving a small real index: NLS chapbook pages from ../shared, embedded
with the test-pixels model, captioned with their catalogue notes. The pages under test are the
examples in examples/widget/ plus a few made here. A WSGI wrapper can make the API slow or fail
on demand, as an overloaded or broken server would.

Setup on a fresh machine (see widget/README.md): ``apt-get install -y chromium``,
``pip install playwright`` (never ``playwright install``), ``npm ci --prefix widget`` (axe-core).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw

from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.embed import load_embedder, normalize, register_embedder
from bookidx.web.serve import shutdown
from conftest import PixelEmbedder
from iiifserver import chapbook_iiif  # noqa: F401  (pytest fixture: zimeon's IIIF server)

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "plugin" / "bookidx" / "web" / "static"
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "widget" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "widget"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
MARKUP_CAPTION = 'Woodcut <img src=x onerror="window.__pwned=1"> of a <b>ship</b>'
VIEWERS = ROOT / "examples" / "widget" / "node_modules"
IIIF_MANIFEST = "https://example.org/bookidx-test/chapbooks/manifest.json"


def test_served_bundle_is_a_fresh_build(tmp_path):
    """The committed bookidx.js and bookidx-elements.js are exactly what build.sh makes now."""
    subprocess.run(["bash", str(ROOT / "widget" / "build.sh"), str(tmp_path)], check=True)
    for name in ("bookidx.js", "bookidx-elements.js"):
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"{name} is stale: run widget/build.sh and commit plugin/bookidx/web/static/"
        )
    # And the blueprint serves that very file.
    from flask import Flask

    from bookidx.web import create_blueprint

    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(tmp_path / "no-index-needed")))
    served = app.test_client().get("/bookidx/static/bookidx.js")
    assert served.status_code == 200
    assert served.data == (STATIC / "bookidx.js").read_bytes()
    assert "javascript" in served.content_type


# ---------------------------------------------------------------------------------------------
# A real index and a real server


def _pages(chapbooks: Path, n: int = 30) -> list[dict]:
    """Six near-duplicate pairs (so "similar" has a right answer) and other pages, in file order."""
    rows = {r["filename"]: r for r in csv.DictReader(open(chapbooks / "manifest.csv", encoding="utf-8"))}
    chosen: list[str] = []
    with open(chapbooks / "candidate_near_duplicate_pairs.csv", encoding="utf-8") as f:
        for pair in csv.DictReader(f):
            a, b = pair["file_a"], pair["file_b"]
            if len(chosen) < 12 and a not in chosen and b not in chosen:
                chosen += [a, b]
    chosen += [name for name in sorted(rows) if name not in chosen][: n - len(chosen)]
    return [rows[name] for name in chosen]


def _region(chapbooks: Path, row: dict, box: Box | None = None, caption: str | None = None) -> Region:
    """A page's picture area (the middle of the page, where the woodcut usually is)."""
    w, h = int(row["width"]), int(row["height"])
    note = [part.strip() for part in row["nls_catalogue_note"].split("|")]
    page = Page(
        id=(chapbooks / "images" / row["filename"]).as_uri(),
        index=0,
        image=ImageRef(width=w, height=h, path=str(chapbooks / "images" / row["filename"])),
        width=w,
        height=h,
    )
    book = Book(id=row["nls_permalink"] or row["nls_page_id"], date="" if row["year"] == "0" else row["year"])
    return Region(
        page=page,
        box=box or Box(40, h // 5, w - 80, h * 3 // 5),
        kind="Illustration",
        caption=caption if caption is not None else note[0],
        context=" ".join(note[1:]),
        book=book,
        source="nls-chapbooks",
    )


def _iiif_pages(srv) -> tuple[dict, list[Region]]:
    """A IIIF Presentation 3 manifest over the IIIF server's pages, two regions on each.

    Canvases are half the image size (as in many real manifests), so a viewer that forgot to
    scale canvas coordinates to image pixels would draw the outlines in the wrong place.
    """
    canvases, regions = [], []
    for i, identifier in enumerate(srv.identifiers):
        ref = srv.ref(identifier, api=3)
        canvas_id = f"https://example.org/bookidx-test/canvas/{i}"
        cw, ch = ref.width // 2, ref.height // 2
        canvases.append({
            "id": canvas_id, "type": "Canvas", "label": {"en": [f"p. {i + 1}"]}, "width": cw, "height": ch,
            "items": [{"id": f"{canvas_id}/page", "type": "AnnotationPage", "items": [{
                "id": f"{canvas_id}/image", "type": "Annotation", "motivation": "painting", "target": canvas_id,
                "body": {"id": f"{ref.service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                         "width": ref.width, "height": ref.height,
                         "service": [{"id": ref.service, "type": "ImageService3", "profile": "level1"}]},
            }]}],
        })
        page = Page(id=canvas_id, index=i, image=ref, width=cw, height=ch, label=f"p. {i + 1}", manifest=IIIF_MANIFEST)
        book = Book(id=IIIF_MANIFEST, title="Chapbook pages (IIIF)")
        regions.append(Region(page=page, box=Box(60, ref.height // 4, ref.width - 120, ref.height // 2),
                              kind="Illustration", caption=f"Frontispiece woodcut on {identifier}", book=book))
        regions.append(Region(page=page, box=Box(100, 40, ref.width - 200, ref.height // 8),
                              kind="Illustration", caption=f"Title lettering on {identifier}", book=book))
    manifest = {
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": IIIF_MANIFEST, "type": "Manifest",
        "label": {"en": ["Chapbook pages (IIIF)"]}, "items": canvases,
    }
    return manifest, regions


@pytest.fixture(scope="module")
def collection(tmp_path_factory, chapbooks, chapbook_iiif):
    """30 chapbook pages (local files), one region with an HTML-like caption, and six regions
    on three pages of a IIIF manifest whose images come from a real IIIF Image API server."""
    from bookidx.config import IndexConfig
    from bookidx.manifests import save_manifest
    from bookidx.store import Index

    rows = _pages(chapbooks)
    regions = [_region(chapbooks, row) for row in rows]
    # Same page, another box (another key): a caption that would run script if put in innerHTML.
    regions.append(_region(chapbooks, rows[-1], Box(0, 0, 300, 300), MARKUP_CAPTION))
    manifest, iiif_regions = _iiif_pages(chapbook_iiif)
    embedder = load_embedder("test-pixels")
    crops = []
    for r in regions + iiif_regions:
        path = r.page.image.path or chapbook_iiif.path(r.page.image.service.rsplit("/", 1)[1])
        with Image.open(path) as im:
            crops.append(im.convert("RGB").crop((r.box.x, r.box.y, r.box.x + r.box.w, r.box.y + r.box.h)))
    index_dir = tmp_path_factory.mktemp("widget-index")
    store = Index.create_or_open(index_dir, model_info=embedder.info, config=IndexConfig(model="test-pixels"))
    store.add(regions + iiif_regions, embedder.embed_images(crops))
    store.commit()
    store.close()
    save_manifest(index_dir, IIIF_MANIFEST, manifest)
    pairs = [(regions[i].key, regions[i + 1].key) for i in range(0, 12, 2)]
    return {"dir": index_dir, "regions": regions, "pairs": pairs, "iiif": iiif_regions}


class Faults:
    """WSGI wrapper: delays or fails /bookidx/api/ requests on demand, like a sick server."""

    def __init__(self, app):
        self.app = app
        self.reset()

    def reset(self) -> None:
        self.status: int | None = None
        self.delay = 0.0
        self.delay_q: dict[str, float] = {}  # query text → seconds, for one query only

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/bookidx/api/"):
            q = parse_qs(environ.get("QUERY_STRING", "")).get("q", [""])[0]
            pause = self.delay_q.get(q, self.delay)
            if pause:
                time.sleep(pause)
            if self.status:
                body = json.dumps({"error": self.status, "detail": "the index is being rebuilt", "parameter": None}).encode()
                start_response(f"{self.status} Error", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
        return self.app(environ, start_response)


class PostedForms:
    """WSGI wrapper: keeps the text fields of every form posted to /bookidx/api/search, in order
    (the browser does not hand Playwright the body of an upload)."""

    def __init__(self, app):
        self.app = app
        self.fields: list[dict[str, str]] = []

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == "/bookidx/api/search":
            from werkzeug.formparser import parse_form_data

            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            _, form, _ = parse_form_data({**environ, "wsgi.input": io.BytesIO(body)})
            self.fields.append(form.to_dict())
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


class Server:
    def __init__(self, url: str, faults: Faults, pages: dict[str, str], posted: PostedForms | None = None):
        self.url = url
        self.faults = faults
        self.pages = pages
        self.posted = posted

    def api(self, path: str, **params) -> dict:
        answer = requests.get(f"{self.url}/bookidx/api/{path}", params=params, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def page(self, name: str, body: str) -> str:
        """Serve a test page at /t/<name> that loads the built widget; returns its URL."""
        self.pages[name] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>widget test</title>'
            '<script type="module" src="/bookidx/static/bookidx.js"></script></head>'
            f"<body><main>{body}</main></body></html>"
        )
        return f"{self.url}/t/{name}"


@pytest.fixture(scope="module")
def server(collection):
    from flask import abort
    from waitress import create_server

    sys.path.insert(0, str(ROOT / "examples" / "widget"))
    try:
        from serve import create_examples_app  # examples/widget/serve.py
    finally:
        sys.path.remove(str(ROOT / "examples" / "widget"))
    app = create_examples_app(str(collection["dir"]))
    pages: dict[str, str] = {}

    @app.get("/t/<name>")
    def test_page(name):
        return pages[name] if name in pages else abort(404)

    faults = Faults(app.wsgi_app)
    app.wsgi_app = faults
    wsgi = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{wsgi.effective_port}", faults, pages)
    shutdown(wsgi)  # from the serving thread's own loop: no socket closed under its select


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: apt-get update && apt-get install -y chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh tab; JavaScript errors on the page fail the test; a screenshot is left behind."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    server.faults.reset()
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    server.faults.reset()
    assert not errors, f"JavaScript errors: {errors}"


# ---------------------------------------------------------------------------------------------
# Helpers


def status(tab, element: str):
    return tab.locator(f"{element} [part=status-text]")


def shown_ids(tab, element: str) -> list[str]:
    return tab.locator(f"{element} [role=option]").evaluate_all("els => els.map(e => e.dataset.id)")


def record_events(tab) -> None:
    """Start (or restart) collecting the widget's events in window.__events."""
    tab.evaluate(
        """() => { const listening = Array.isArray(window.__events);
        window.__events = [];
        if (!listening) for (const name of ['loadstart', 'load', 'error', 'select'])
          document.addEventListener('bookidx:' + name, (e) => window.__events.push(
            {type: e.type, tag: e.target.localName, detail: JSON.parse(JSON.stringify(
              name === 'load' ? {url: e.detail.url, page: e.detail.page, n: e.detail.hits.length} : e.detail))}));
        }"""
    )


def events(tab, kind: str | None = None) -> list[dict]:
    found = tab.evaluate("() => window.__events")
    return [e for e in found if kind is None or e["type"] == f"bookidx:{kind}"]


def deep_focus(tab) -> dict:
    """What has keyboard focus, looking inside shadow roots."""
    return tab.evaluate(
        """() => { let el = document.activeElement;
        while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
        const host = el.getRootNode().host;
        return {tag: el.localName, role: el.getAttribute('role'), part: el.getAttribute('part'),
                id: el.dataset ? el.dataset.id || null : null, host: host ? host.localName : null}; }"""
    )


def expected_selection(hit: dict) -> dict:
    """A select event's detail: where the hit is (for viewers to open), and the hit itself."""
    return {**{k: hit[k] for k in ("id", "manifest", "canvas", "region", "xywh")}, "hit": hit}


# ---------------------------------------------------------------------------------------------
# Behaviour


@pytest.mark.browser
def test_search_then_open_a_hit_shows_its_similar_images(page, server, collection):
    """The plain example page: type, see the server's hits in its order, pick one, see similar."""
    page.goto(server.url + "/")
    record_events(page)
    page.get_by_role("searchbox", name="Search the illustrations").fill("woodcut")
    answer = server.api("search", q="woodcut", limit=12)
    assert answer["hits"], "the index should have captions with 'woodcut'"
    n = len(answer["hits"])
    expect_text(status(page, "bookidx-search"), f"{n} result" + ("s" if n != 1 else ""))
    assert shown_ids(page, "bookidx-search") == [h["id"] for h in answer["hits"]]
    first = page.locator("bookidx-search [role=option]").first
    assert "woodcut" in first.locator("[part=caption]").inner_text().lower()
    # The page themes the element through --bookidx-accent-color (#7a2e0e).
    accent = page.locator("bookidx-search [part=submit]").evaluate("e => getComputedStyle(e).backgroundColor")
    assert accent == "rgb(122, 46, 14)"
    # Thumbnails are the blueprint's crops and really load.
    page.wait_for_function(
        """() => [...document.querySelector('bookidx-search').shadowRoot.querySelectorAll('img')]
                 .every(img => img.complete && img.naturalWidth > 0)"""
    )

    first.click()
    selected = events(page, "select")
    assert [e["tag"] for e in selected] == ["bookidx-search"]
    assert selected[0]["detail"] == expected_selection(answer["hits"][0])
    assert first.get_attribute("aria-selected") == "true"
    similar = server.api(f"items/{answer['hits'][0]['id']}/similar", limit=8)
    page.wait_for_function(f"() => document.querySelector('bookidx-similar').state === 'results'")
    assert shown_ids(page, "bookidx-similar") == [h["id"] for h in similar["hits"]]
    # The example asks for scores on the similar grid: they are the server's, formatted.
    assert page.locator("bookidx-similar [part=score]").first.inner_text() == f"score {similar['hits'][0]['score']:.3f}"
    assert page.locator("bookidx-search [part=score]").count() == 0

    # Choosing in the similar grid moves on to that image's neighbours.
    before = shown_ids(page, "bookidx-similar")
    page.locator("bookidx-similar [role=option]").nth(1).click()
    page.wait_for_function(f"() => document.querySelector('bookidx-similar').item === '{before[1]}'")
    page.wait_for_function(f"() => document.querySelector('bookidx-similar').state === 'results'")
    assert shown_ids(page, "bookidx-similar") == [h["id"] for h in server.api(f"items/{before[1]}/similar", limit=8)["hits"]]


@pytest.mark.browser
def test_similar_finds_the_near_duplicate_page(page, server, collection):
    """A reprinted woodcut's other printing is among the first similar images."""
    found = 0
    url = server.page("pairs", "".join(f'<bookidx-similar limit="3" item="{a}"></bookidx-similar>' for a, _ in collection["pairs"]))
    page.goto(url)
    page.wait_for_function("() => [...document.querySelectorAll('bookidx-similar')].every(e => e.state === 'results')")
    for n, (_, b) in enumerate(collection["pairs"]):
        found += str(b) in shown_ids(page, f"bookidx-similar:nth-of-type({n + 1})")
    assert found >= 4, f"only {found} of 6 near-duplicate partners in the top 3"


@pytest.mark.browser
def test_keyboard_alone(page, server):
    """Tab into the box, search, walk the grid with arrows, select, escape, page — no mouse."""
    page.goto(server.url + "/")
    record_events(page)
    page.keyboard.press("Tab")  # the page's language menu
    page.keyboard.press("Tab")
    assert deep_focus(page) == {"tag": "input", "role": None, "part": "input", "id": None, "host": "bookidx-search"}
    page.keyboard.type("woodcut")
    page.keyboard.press("Enter")
    answer = server.api("search", q="woodcut", limit=12)
    ids = [h["id"] for h in answer["hits"]]
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    assert len(events(page, "loadstart")) == 1, "Enter searches once, without waiting for the pause"

    page.keyboard.press("Tab")  # the "Search by image" button
    page.keyboard.press("Tab")  # the Search button
    page.keyboard.press("Tab")  # into the grid: one tab stop, the first hit
    assert deep_focus(page)["id"] == ids[0] and deep_focus(page)["role"] == "option"
    page.keyboard.press("ArrowRight")
    assert deep_focus(page)["id"] == ids[1]
    columns = page.locator("bookidx-search [role=option]").evaluate_all(
        "els => els.filter(e => e.offsetTop === els[0].offsetTop).length"
    )
    page.keyboard.press("ArrowDown")
    assert deep_focus(page)["id"] == ids[min(1 + columns, len(ids) - 1)]
    page.keyboard.press("End")
    assert deep_focus(page)["id"] == ids[-1]
    page.keyboard.press("Home")
    assert deep_focus(page)["id"] == ids[0]
    tabbable = page.locator("bookidx-search [role=option][tabindex='0']")
    assert tabbable.count() == 1

    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert events(page, "select")[-1]["detail"] == expected_selection(answer["hits"][1])
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    assert events(page, "select")[-1]["detail"]["id"] == ids[2]
    assert page.locator("bookidx-search [aria-selected=true]").evaluate_all("els => els.map(e => e.dataset.id)") == [ids[2]]

    page.keyboard.press("Escape")  # in the grid: drop the selection, back to the box
    assert page.locator("bookidx-search [aria-selected=true]").count() == 0
    assert deep_focus(page)["part"] == "input"
    page.keyboard.press("Escape")  # in the box: clear everything
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'idle'")
    assert page.evaluate("() => document.querySelector('bookidx-search').q") == ""
    assert page.locator("bookidx-search [role=option]").count() == 0


@pytest.mark.browser
def test_paging_with_next_and_previous(page, server):
    url = server.page("paging", '<bookidx-search q="woodcut" limit="3"></bookidx-search>')
    first = [h["id"] for h in server.api("search", q="woodcut", limit=3)["hits"]]
    second = [h["id"] for h in server.api("search", q="woodcut", limit=3, page=2)["hits"]]
    assert second, "the test needs more than one page of hits"
    page.goto(url)
    expect_text(status(page, "bookidx-search"), "3 results")
    assert shown_ids(page, "bookidx-search") == first
    assert page.locator("bookidx-search [part=previous]").is_disabled()
    page.locator("bookidx-search [part=next]").focus()
    page.keyboard.press("Enter")
    expect_text(status(page, "bookidx-search"), f"{len(second)} result{'s' if len(second) != 1 else ''}, page 2")
    assert shown_ids(page, "bookidx-search") == second
    assert deep_focus(page)["id"] == second[0], "after paging, focus goes to the first new hit"
    assert page.locator("bookidx-search [part=page-number]").inner_text() == "Page 2"
    page.locator("bookidx-search [part=previous]").click()
    expect_text(status(page, "bookidx-search"), "3 results")
    assert shown_ids(page, "bookidx-search") == first


@pytest.mark.browser
def test_manifest_attribute_filters_hits(page, server, collection):
    url = server.page(
        "filter",
        f'<bookidx-search q="woodcut" manifest="{IIIF_MANIFEST}"></bookidx-search>'
        f'<bookidx-similar item="{collection["iiif"][0].key}" manifest="{IIIF_MANIFEST}" limit="4"></bookidx-similar>',
    )
    page.goto(url)
    page.wait_for_function("() => [...document.querySelectorAll('bookidx-search, bookidx-similar')].every(e => e.state === 'results')")
    for element in ("bookidx-search", "bookidx-similar"):
        hits = page.evaluate(f"() => document.querySelector('{element}').hits")
        assert hits and {h["manifest"] for h in hits} == {IIIF_MANIFEST}
    assert shown_ids(page, "bookidx-search") == [
        h["id"] for h in server.api("search", q="woodcut", manifest=IIIF_MANIFEST)["hits"]
    ]


@pytest.mark.browser
def test_properties_set_before_the_element_is_defined(page, server, collection):
    """A host may set properties before the module loads; they still take effect."""
    item = str(collection["pairs"][0][0])
    server.pages["early"] = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>early</title></head><body>'
        '<bookidx-similar></bookidx-similar><script type="module">'
        f"document.querySelector('bookidx-similar').item = '{item}';"
        "document.querySelector('bookidx-similar').limit = 2;"
        "await import('/bookidx/static/bookidx.js');"
        "</script></body></html>"
    )
    page.goto(server.url + "/t/early")
    page.wait_for_function("() => document.querySelector('bookidx-similar').state === 'results'")
    assert page.evaluate("() => document.querySelector('bookidx-similar').getAttribute('item')") == item
    assert shown_ids(page, "bookidx-similar") == [h["id"] for h in server.api(f"items/{item}/similar", limit=2)["hits"]]


@pytest.mark.browser
def test_no_results_says_so(page, server):
    page.goto(server.page("empty", "<bookidx-search></bookidx-search>"))
    page.get_by_role("searchbox").fill("zzyzx")
    page.keyboard.press("Enter")
    expect_text(status(page, "bookidx-search"), "No images found for “zzyzx”.")
    assert page.evaluate("() => document.querySelector('bookidx-search').state") == "empty"
    assert not page.locator("bookidx-search [part=grid]").is_visible()
    assert not page.locator("bookidx-search [part=retry]").is_visible()
    assert not page.locator("bookidx-search [part=pager]").is_visible()


@pytest.mark.browser
def test_server_error_offers_retry(page, server):
    page.goto(server.page("error", "<bookidx-search></bookidx-search>"))
    record_events(page)
    server.faults.status = 500
    page.get_by_role("searchbox").fill("woodcut")
    page.keyboard.press("Enter")
    expect_text(status(page, "bookidx-search"), "The search failed: the index is being rebuilt (HTTP 500)")
    assert events(page, "error")[-1]["detail"]["status"] == 500
    retry = page.get_by_role("button", name="Try again")
    assert retry.is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "error-state.png"))
    server.faults.status = None
    retry.click()
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    assert not retry.is_visible()


@pytest.mark.browser
def test_bad_request_shows_the_servers_reason(page, server):
    """A 400 from the real blueprint (an unknown mode) reaches the user in the server's words."""
    page.goto(server.page("bad", '<bookidx-search mode="sideways" q="woodcut"></bookidx-search>'))
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'error'")
    answer = requests.get(f"{server.url}/bookidx/api/search", params={"q": "woodcut", "mode": "sideways"}, timeout=10)
    assert answer.status_code == 400
    expect_text(status(page, "bookidx-search"), f"The search failed: {answer.json()['detail']} (HTTP 400)")


@pytest.mark.browser
def test_slow_server_says_still_searching(page, server):
    page.goto(server.page("slow", "<bookidx-search></bookidx-search>"))
    server.faults.delay = 3.0
    page.get_by_role("searchbox").fill("woodcut")
    started = time.monotonic()
    page.keyboard.press("Enter")
    expect_text(status(page, "bookidx-search"), "Searching…")
    expect_text(status(page, "bookidx-search"), "Still searching… the server is slow to answer.")
    waited = time.monotonic() - started
    # Not before ~1.5 s (and before the answer, or the text would already be the result count).
    assert waited > 1.2, f"the slow state came after {waited:.1f} s"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "slow-state.png"))
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")


@pytest.mark.browser
def test_a_newer_query_wins_over_a_slow_older_one(page, server):
    page.goto(server.page("stale", "<bookidx-search></bookidx-search>"))
    record_events(page)
    server.faults.delay_q = {"woodcut": 1.5}
    aborted: list[str] = []
    page.on("requestfailed", lambda r: aborted.append(r.url) if "ABORTED" in (r.failure or "") else None)
    box = page.get_by_role("searchbox")
    box.fill("woodcut")
    box.press("Enter")
    page.wait_for_function("() => window.__events.some(e => e.type === 'bookidx:loadstart')")
    box.fill("publisher")
    box.press("Enter")
    expected = [h["id"] for h in server.api("search", q="publisher")["hits"]]
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    page.wait_for_timeout(1800)  # past the moment the slow "woodcut" answer would have come
    assert shown_ids(page, "bookidx-search") == expected
    assert [e["detail"]["url"].split("q=")[1].split("&")[0] for e in events(page, "load")] == ["publisher"]
    assert [url.split("q=")[1] for url in aborted] == ["woodcut"], "the older request is cancelled, not ignored"

    # Typing letter by letter asks the server once, after the pause.
    record_events(page)
    box.fill("")
    box.press_sequentially("woodcut", delay=40)
    page.wait_for_function("() => document.querySelector('bookidx-search').q === 'woodcut'")
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    assert len(events(page, "loadstart")) == 1


@pytest.mark.browser
def test_interface_language_follows_lang(page, server):
    url = server.page(
        "lang",
        '<div id="nb" lang="nb-NO"><bookidx-search q="woodcut" limit="2"></bookidx-search></div>'
        '<bookidx-similar lang="fr"></bookidx-similar><div lang="de"><bookidx-search id="de"></bookidx-search></div>',
    )
    page.goto(url)
    expect_text(status(page, "#nb bookidx-search"), "2 treff")
    assert page.locator("#nb bookidx-search [part=submit]").inner_text() == "Søk"
    assert page.locator("#nb bookidx-search [part=label]").text_content() == "Søk i illustrasjonene"
    assert page.locator("bookidx-similar [part=grid]").get_attribute("aria-label") == "Images similaires"
    assert page.locator("#de [part=submit]").inner_text() == "Search", "unsupported languages fall back to English"
    # A change of the ancestor's lang relabels at once, results included.
    page.evaluate("() => document.getElementById('nb').lang = 'fr-CA'")
    expect_text(status(page, "#nb bookidx-search"), "2 résultats")
    assert page.locator("#nb bookidx-search [part=submit]").inner_text() == "Rechercher"


@pytest.mark.browser
def test_server_text_is_never_markup(page, server):
    page.goto(server.page("markup", '<bookidx-search q="ship" scores></bookidx-search>'))
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    caption = page.locator("bookidx-search [part=caption]").first
    assert caption.text_content() == MARKUP_CAPTION
    assert caption.locator("img, b").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("bookidx-search [part=score]").first.text_content().startswith("score ")


@pytest.mark.browser
def test_define_under_other_tags(page, server):
    """The element module defines nothing; define() takes any tag, twice for one class too."""
    server.pages["define"] = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>define</title></head><body>'
        '<library-search q="woodcut" limit="2"></library-search><other-search></other-search>'
        '<script type="module">'
        "import { BookidxSearch } from '/bookidx/static/bookidx-elements.js';"
        "window.__defined = customElements.get('bookidx-search') === undefined;"
        "window.__first = BookidxSearch.define('library-search') === BookidxSearch;"
        "window.__second = Object.getPrototypeOf(BookidxSearch.define('other-search')) === BookidxSearch;"
        "</script></body></html>"
    )
    page.goto(server.url + "/t/define")
    page.wait_for_function("() => document.querySelector('library-search').state === 'results'")
    assert page.evaluate("() => [window.__defined, window.__first, window.__second]") == [True, True, True]
    assert page.locator("other-search [part=input]").count() == 1


@pytest.mark.browser
def test_no_serious_accessibility_violations(page, server):
    if not AXE.exists():
        pytest.skip("axe-core missing: npm ci --prefix widget")
    page.goto(server.url + "/")
    page.get_by_role("searchbox").fill("woodcut")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    page.locator("bookidx-search [role=option]").first.click()
    page.wait_for_function("() => document.querySelector('bookidx-similar').state === 'results'")
    page.add_script_tag(path=str(AXE))
    for state in ("results", "error"):
        if state == "error":
            server.faults.status = 500
            page.get_by_role("searchbox").fill("publisher")
            page.keyboard.press("Enter")
            page.wait_for_function("() => document.querySelector('bookidx-search').state === 'error'")
        assert_axe_finds_nothing_serious(page, state)



def assert_axe_finds_nothing_serious(page, what: str = "") -> None:
    """axe-core (injected once per page) finds no serious or critical violation, and ran checks."""
    result = page.evaluate("async () => JSON.parse(JSON.stringify(await axe.run(document)))")
    serious = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{what}: {serious}" if what else serious
    assert result["passes"], "axe ran no checks"


def needs_viewers() -> None:
    if not (VIEWERS / "openseadragon").is_dir() or not (VIEWERS / "mirador").is_dir():
        pytest.skip("OpenSeadragon and Mirador missing: run examples/widget/install.sh")


@pytest.mark.browser
def test_openseadragon_example_outlines_regions_and_opens_similar(page, server, collection):
    """Pick a hit: its IIIF page opens, every region on it is outlined, a click shows similar."""
    needs_viewers()
    page.goto(server.url + "/openseadragon.html")
    page.get_by_role("searchbox").fill("frontispiece")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    hit = server.api("search", q="frontispiece", limit=9)["hits"][0]
    page.locator(f"bookidx-search [role=option][data-id='{hit['id']}']").click()
    on_page = [r for r in collection["iiif"] if r.page.id == hit["canvas"]]
    outlines = page.locator("button.region")
    page.wait_for_function(f"() => document.querySelectorAll('button.region').length === {len(on_page)}")
    assert sorted(outlines.evaluate_all("els => els.map(e => e.dataset.id)")) == sorted(str(r.key) for r in on_page)
    assert page.locator("button.region[aria-pressed=true]").get_attribute("data-id") == hit["id"]
    page.wait_for_function(f"() => document.querySelector('bookidx-similar').item === '{hit['id']}'")

    # The outline sits on the region: canvas coordinates scaled to the image, then to the screen.
    region = next(r for r in on_page if str(r.key) == hit["id"])
    page.wait_for_function("() => bookidxViewer.world.getItemAt(0) && bookidxViewer.world.getItemAt(0).getFullyLoaded()")
    drawn = page.evaluate(
        """(id) => { const item = bookidxViewer.world.getItemAt(0);
        const box = document.querySelector(`button.region[data-id="${id}"]`).getBoundingClientRect();
        const origin = bookidxViewer.element.getBoundingClientRect();
        const p = item.viewerElementToImageCoordinates(new OpenSeadragon.Point(box.left - origin.left, box.top - origin.top));
        const q = item.viewerElementToImageCoordinates(new OpenSeadragon.Point(box.right - origin.left, box.bottom - origin.top));
        return [p.x, p.y, q.x - p.x, q.y - p.y]; }""",
        hit["id"],
    )
    expected = [region.box.x, region.box.y, region.box.w, region.box.h]
    assert all(abs(a - b) <= 0.02 * region.page.image.width for a, b in zip(drawn, expected)), (drawn, expected)

    # The other outline, by keyboard: it is a button.
    other = next(str(r.key) for r in on_page if str(r.key) != hit["id"])
    page.locator(f"button.region[data-id='{other}']").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('bookidx-similar').item === '{other}'")
    assert page.locator("button.region[aria-pressed=true]").get_attribute("data-id") == other
    page.wait_for_function("() => document.querySelector('bookidx-similar').state === 'results'")


@pytest.mark.browser
def test_mirador_example_opens_the_canvas_at_the_region(page, server, collection):
    needs_viewers()
    page.goto(server.url + "/mirador.html")
    page.get_by_role("searchbox").fill("frontispiece")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    hits = server.api("search", q="frontispiece", limit=12)["hits"]
    window_state = """() => { const s = bookidxMirador.store.getState();
        const id = Object.keys(s.windows)[0]; if (!id) return null;
        return {count: Object.keys(s.windows).length, canvas: s.windows[id].canvasId,
                manifest: s.windows[id].manifestId, viewer: s.viewers[id] || null,
                loaded: Boolean(s.manifests[s.windows[id].manifestId] && s.manifests[s.windows[id].manifestId].json)}; }"""
    for hit in hits[:2]:  # the second opens in the same window: another canvas, same manifest
        page.locator(f"bookidx-search [role=option][data-id='{hit['id']}']").click()
        page.wait_for_function(f"() => ({window_state})()?.canvas === {json.dumps(hit['canvas'])}")
        state = page.evaluate(window_state)
        assert state["count"] == 1
        assert state["manifest"].endswith("/manifest.json") and "/bookidx/iiif/" in state["manifest"]
        x, y, w, h = state["viewer"]["bounds"]
        r = hit["region"]
        assert x <= r["x"] and y <= r["y"] and x + w >= r["x"] + r["w"] and y + h >= r["y"] + r["h"]
        assert w < 1.5 * max(r["w"], r["h"]), "zoomed to the region, not the whole page"
    page.wait_for_function(f"() => ({window_state})().loaded")
    page.wait_for_selector("#mirador canvas")  # OpenSeadragon inside Mirador drew the page
    page.wait_for_timeout(500)


def needs_universal_viewer() -> None:
    if not (VIEWERS / "universalviewer" / "dist" / "umd" / "UV.js").is_file():
        pytest.skip("Universal Viewer missing: run examples/widget/install.sh")


# What UV shows, read through its API: the manifest URL it loaded, the current canvas, and the
# view in image pixels (UV's OpenSeadragon world is the page's image at full size).
UV_STATE = """() => { const ext = window.bookidxUV && bookidxUV.get() && bookidxUV.get().extension;
    const viewer = ext && ext.centerPanel && ext.centerPanel.viewer;
    if (!viewer || !viewer.world.getItemCount()) return null;
    const b = viewer.viewport.getBounds(true);
    const home = viewer.viewport.getHomeBounds();
    return {manifest: ext.data.iiifManifestId, canvas: ext.helper.getCurrentCanvas().id,
            view: [b.x, b.y, b.width, b.height], home: [home.x, home.y, home.width, home.height]}; }"""


def zoomed_to(state: dict, box: Box) -> bool:
    """UV's view (x, y, w, h) holds ``box`` and is well inside the whole page's view (``home``).

    Fitted exactly, the view is 0.65 of the page's here. The bound leaves room for what a loaded
    machine showed once: UV's panels settled after the zoom and OpenSeadragon kept the scale, so
    the view grew 1.2x about the same centre (0.78 of the page), the picture still whole in it.
    """
    x, y, w, h = state["view"]
    inside = x <= box.x and y <= box.y and x + w >= box.x + box.w and y + h >= box.y + box.h
    return inside and h < 0.85 * state["home"][3] and w < 0.85 * state["home"][2]


def search_beside_universal_viewer(tab, server) -> list[dict]:
    """uv.html with the hits for "frontispiece" listed; the hits."""
    tab.goto(server.url + "/uv.html")
    tab.get_by_role("searchbox").fill("frontispiece")
    tab.keyboard.press("Enter")
    tab.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    return server.api("search", q="frontispiece", limit=12)["hits"]


def choose_for_universal_viewer(tab, hit: dict) -> None:
    """Click ``hit`` and wait until UV shows its page."""
    tab.locator(f"bookidx-search [role=option][data-id='{hit['id']}']").click()
    tab.wait_for_function(f"() => ({UV_STATE})()?.canvas === {json.dumps(hit['canvas'])}")


@pytest.mark.browser
def test_universal_viewer_example_opens_the_canvas_at_the_region(page, server, collection):
    """A hit opens its page in UV zoomed to the picture (the second turns the page of the same
    manifest); the page's pictures are listed, and each shows its similar images."""
    from playwright.sync_api import expect

    needs_universal_viewer()
    hits = search_beside_universal_viewer(page, server)
    assert hits[0]["canvas"] != hits[1]["canvas"], "the second hit should be on another page"
    for hit in hits[:2]:
        choose_for_universal_viewer(page, hit)
        state = page.evaluate(UV_STATE)
        assert state["manifest"].endswith("/manifest.json") and "/bookidx/iiif/" in state["manifest"]
        # UV's own page controls say the same: the page number box and the selected thumbnail.
        expect(page.locator("#uv input.autocompleteText")).to_have_value(str(hit["page"]["index"] + 1))
        expect(page.locator("#uv .thumb[aria-selected=true]")).to_have_attribute("aria-label", hit["page"]["label"])

        # Zoomed to the picture: its box in image pixels (twice the canvas's here). The zoom
        # animates, so wait for it.
        box = next(r for r in collection["iiif"] if str(r.key) == hit["id"]).box
        deadline = time.monotonic() + 20  # generous: a loaded CI machine animates slowly
        while not zoomed_to(state, box) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
            state = page.evaluate(UV_STATE)
        assert zoomed_to(state, box), (state, box)

    # The pictures on the page UV shows, the chosen one pressed; another shows its similar images.
    on_page = sorted(str(r.key) for r in collection["iiif"] if r.page.id == hits[1]["canvas"])
    page.wait_for_function(
        "(want) => [...document.querySelectorAll('#regions button')].map(b => b.dataset.id).sort().join() === want",
        arg=",".join(on_page),
    )
    expect(page.locator("#regions button[aria-pressed=true]")).to_have_attribute("data-id", hits[1]["id"])
    other = next(key for key in on_page if key != hits[1]["id"])
    page.locator(f"#regions button[data-id='{other}']").click()
    page.wait_for_function(f"() => document.querySelector('bookidx-similar').item === '{other}'")
    expect(page.locator("#regions button[aria-pressed=true]")).to_have_attribute("data-id", other)
    page.wait_for_function("() => document.querySelector('bookidx-similar').state === 'results'")


@pytest.mark.browser
def test_universal_viewer_searches_within_through_content_search_1(page, server, collection):
    """UV's own "Search within this item" box finds bookidx's captions through the Content
    Search 1.0 service of the blueprint's annotated manifest: it counts them, outlines the ones
    on the page it shows, and its "Next Result" button turns to the next page with one, whose
    pictures the example then lists."""
    from playwright.sync_api import expect

    needs_universal_viewer()
    hits = search_beside_universal_viewer(page, server)
    choose_for_universal_viewer(page, min(hits, key=lambda h: h["page"]["index"]))
    manifest = requests.get(page.evaluate(UV_STATE)["manifest"], timeout=10).json()
    service = next(s for s in manifest["service"] if s.get("profile") == "http://iiif.io/api/search/1/search")
    answer = requests.get(service["id"], params={"q": "lettering"}, timeout=10).json()
    on = [r["on"].split("#")[0] for r in answer["resources"]]
    pages = [c["id"] for c in manifest["items"] if c["id"] in on]  # in the manifest's order
    current = page.evaluate(UV_STATE)["canvas"]
    assert len(pages) > 1 and pages[0] == current, (pages, current)

    box = page.locator("#searchWithinInput")
    box.fill("lettering")
    with page.expect_response(lambda r: r.url.startswith(service["id"] + "?")) as asked:
        box.press("Enter")
    assert asked.value.ok
    expect(page.locator("#uv .searchResultsInfo .number")).to_have_text(str(len(on)))
    expect(page.locator("#uv .searchResultsInfo .terms")).to_have_text("lettering")
    grouped = page.evaluate("() => bookidxUV.get().extension.annotations.map(g => g.canvasId)")
    assert sorted(grouped) == sorted(set(on))
    expect(page.locator("#uv .annotationRect")).to_have_count(on.count(current))
    page.locator("#uv button.nextResult").click()
    page.wait_for_function(f"() => ({UV_STATE})()?.canvas === {json.dumps(pages[1])}")
    # UV's own paging lists the new page's pictures beside it, as a chosen hit does.
    page.wait_for_function(
        "(want) => [...document.querySelectorAll('#regions button')].map(b => b.dataset.id).sort().join() === want",
        arg=",".join(sorted(str(r.key) for r in collection["iiif"] if r.page.id == pages[1])),
    )


def expect_text(locator, text: str | re.Pattern) -> None:
    """Wait until ``locator``'s text is ``text`` (the live region changes as answers arrive)."""
    from playwright.sync_api import expect

    expect(locator).to_have_text(text)


# ---------------------------------------------------------------------------------------------
# Search by image: "I have a scan of this picture: which page is it from?"

QUERY_ROW = 20  # a page of its own: not one of the near-duplicate pairs, not on the IIIF server


def opencv_missing() -> str | None:
    """Why the server cannot re-rank (the exact-match badge needs it), or None when it can."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return "OpenCV (cv2) is not installed, so the server cannot re-rank: pip install opencv-python-headless"
    return None


@pytest.fixture(scope="module")
def scan(collection, tmp_path_factory) -> dict:
    """One indexed picture as a visitor would have it: the middle 80 % of the region, cut from
    the page and saved again as a JPEG (and as a larger PNG, for the upload limits)."""
    region = collection["regions"][QUERY_ROW]
    b = region.box
    with Image.open(region.page.image.path) as im:
        crop = im.convert("RGB").crop((b.x + b.w // 10, b.y + b.h // 10, b.x + b.w * 9 // 10, b.y + b.h * 9 // 10))
    folder = tmp_path_factory.mktemp("scan")
    jpeg, png = folder / "scan.jpg", folder / "scan.png"
    crop.save(jpeg, quality=85)
    crop.save(png)
    return {"key": str(region.key), "jpeg": jpeg, "png": png, "base64": base64.b64encode(jpeg.read_bytes()).decode()}


UPLOAD_LIMIT = 200_000  # bytes, on plain_server: the JPEG scan passes, the PNG does not


@pytest.fixture(scope="module")
def plain_server(collection, scan):
    """The same collection on a server whose operator turned re-ranking off and lowered the
    upload limit."""
    from bookidx.web import create_blueprint

    assert scan["jpeg"].stat().st_size < UPLOAD_LIMIT < scan["png"].stat().st_size
    yield from serving(create_blueprint(str(collection["dir"]), rerank_depth=0, max_upload_bytes=UPLOAD_LIMIT))


def serving(blueprint, record_posts: bool = False):
    """``blueprint`` and the /t/ test pages on a waitress server in a thread: yields its Server
    (with ``record_posts``, one whose ``posted.fields`` are the forms posted to it)."""
    from flask import Flask, abort
    from waitress import create_server

    app = Flask(__name__)
    app.register_blueprint(blueprint)
    pages: dict[str, str] = {}

    @app.get("/t/<name>")
    def test_page(name):
        return pages[name] if name in pages else abort(404)

    faults = Faults(app.wsgi_app)
    posted = PostedForms(faults) if record_posts else None
    wsgi = create_server(posted or faults, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{wsgi.effective_port}", faults, pages, posted)
    shutdown(wsgi)  # from the serving thread's own loop: no socket closed under its select


def searches(tab) -> list:
    """Start recording the requests to /api/search; the list fills as they are sent."""
    sent: list = []
    tab.on("request", lambda r: sent.append(r) if "/bookidx/api/search" in r.url else None)
    return sent


def post_scan(server, path: Path, **params) -> requests.Response:
    with open(path, "rb") as f:
        return requests.post(f"{server.url}/bookidx/api/search", params=params, files={"image": f}, timeout=30)


def wait_state(tab, state: str) -> None:
    tab.wait_for_function(f"() => document.querySelector('bookidx-search').state === '{state}'")


@pytest.mark.browser
def test_search_by_image_file_finds_its_page(page, server, scan):
    """Choose a scan through the file button: its page comes first, marked as an exact match;
    paging goes on with the same picture; the × drops it and frees its object URL."""
    why_not = opencv_missing()
    page.goto(server.page("image", '<bookidx-search limit="4"></bookidx-search>'))
    record_events(page)
    sent = searches(page)
    button = page.get_by_role("button", name="Search by image")
    assert button.is_visible()
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_state(page, "results")
    assert shown_ids(page, "bookidx-search")[0] == scan["key"]
    asked = [(r.method, parse_qs(r.url.split("?")[1])) for r in sent]
    assert asked[0] == ("POST", {"rerank": ["true"], "limit": ["4"]})
    assert len(asked) == (1 if why_not is None else 2)  # a server without OpenCV refuses rerank
    assert sent[0].headers["content-type"].startswith("multipart/form-data; boundary=")
    assert [e["detail"]["page"] for e in events(page, "load")] == [1]
    # The chip shows the chosen picture itself.
    chip = page.locator("bookidx-search [part=image-thumbnail]")
    assert chip.get_attribute("alt") == "The picture being searched for"
    blob_url = chip.get_attribute("src")
    assert blob_url.startswith("blob:")
    page.wait_for_function(
        "() => document.querySelector('bookidx-search').shadowRoot.querySelector('[part=image-thumbnail]').naturalWidth > 0"
    )

    if why_not is None:
        hits = page.evaluate("() => document.querySelector('bookidx-search').hits")
        assert hits[0]["inliers"] >= 12 and all(h["inliers"] < 12 for h in hits[1:])
        exact = page.get_by_role("option", name=re.compile(r"Exact match"))
        assert exact.count() == 1 and exact.get_attribute("data-id") == scan["key"]
        assert exact.locator("[part=exact]").inner_text() == "Exact match"
        expect_text(status(page, "bookidx-search"), "4 results (1 exact match)")

    # Page 2 posts the picture again (POST answers have no next link: `more` says there is one).
    assert page.evaluate("() => document.querySelector('bookidx-search').hasNext")
    page.locator("bookidx-search [part=next]").click()
    expect_text(status(page, "bookidx-search"), "4 results, page 2")
    second = post_scan(server, scan["jpeg"], limit=4, page=2, **({} if why_not else {"rerank": "true"})).json()
    assert shown_ids(page, "bookidx-search") == [h["id"] for h in second["hits"]]
    assert sent[-1].method == "POST" and parse_qs(sent[-1].url.split("?")[1])["page"] == ["2"]

    page.get_by_role("button", name="Remove the picture").click()
    wait_state(page, "idle")
    assert not page.locator("bookidx-search [part=image]").is_visible()
    assert page.locator("bookidx-search [part=image-thumbnail]").count() == 0
    assert deep_focus(page)["part"] == "input"
    assert page.evaluate("(url) => fetch(url).then(() => 'still there', () => 'revoked')", blob_url) == "revoked"
    if why_not:
        pytest.skip(f"exact-match badge not checked: {why_not}")


SYNTHETIC_FILE = """([kind, data, target = '[part=input]', words = '']) => {
  const files = new DataTransfer();
  if (data) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    files.items.add(new File([bytes], 'scan.jpg', {type: 'image/jpeg'}));
  }
  if (words) files.setData('text/plain', words);
  const search = document.querySelector('bookidx-search').shadowRoot;
  const event = kind === 'paste'
    ? new ClipboardEvent('paste', {clipboardData: files, bubbles: true, cancelable: true, composed: true})
    : new DragEvent(kind, {dataTransfer: files, bubbles: true, cancelable: true, composed: true});
  search.querySelector(target).dispatchEvent(event);
  return event.defaultPrevented;
}"""


@pytest.mark.browser
def test_search_by_pasted_or_dropped_image(page, server, scan):
    """A picture pasted into the box, or dropped on it, searches like a chosen file; words in
    the box go with it as `q`."""
    page.goto(server.page("paste", '<bookidx-search limit="4"></bookidx-search>'))
    sent = searches(page)
    page.evaluate("() => { window.__asked = []; document.addEventListener('bookidx:load', "
                  "(e) => window.__asked.push(e.detail.response.query)); }")
    assert page.evaluate(SYNTHETIC_FILE, ["paste", scan["base64"]]), "the paste is taken, not left to the box"
    wait_state(page, "results")
    assert shown_ids(page, "bookidx-search")[0] == scan["key"]
    assert page.locator("bookidx-search [part=image-thumbnail]").is_visible()

    page.locator("bookidx-search [part=input]").focus()
    page.keyboard.press("Escape")  # nothing in the box but the picture: Escape drops it
    wait_state(page, "idle")
    assert page.locator("bookidx-search [part=image-thumbnail]").count() == 0

    page.get_by_role("searchbox").fill("woodcut")  # typed, the pause not over
    assert page.evaluate(SYNTHETIC_FILE, ["drop", scan["base64"]])
    page.wait_for_function("() => document.querySelector('bookidx-search').image !== null")
    wait_state(page, "results")
    assert shown_ids(page, "bookidx-search")[0] == scan["key"]  # test-pixels has no text encoder
    assert page.evaluate("() => window.__asked.map(q => q.q || null)") == [None, "woodcut"], "the server got the words"
    assert {r.method for r in sent} == {"POST"}, "the words are sent with the picture, not alone"


PAUSE_MS = 300  # search.js DEBOUNCE_MS: typing searches after this pause
ENVELOPE = 16 * 1024  # search.js ENVELOPE_BYTES: the part of max-upload kept for the request around a picture


@pytest.mark.browser
def test_pasted_words_go_into_the_box_though_a_picture_of_them_comes_too(page, server, scan):
    """Words copied from Word or Excel are on the clipboard as text/plain, text/html and a PNG
    picture of themselves: a real Ctrl+V puts the words in the box and searches them; a picture
    alone on the clipboard is still searched for."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.goto(server.page("paste-words", '<bookidx-search limit="4"></bookidx-search>'))
    record_events(page)
    sent = searches(page)
    words = "woodcut of a ship"
    types = page.evaluate(
        """async (words) => {
          const canvas = new OffscreenCanvas(160, 30);
          const g = canvas.getContext('2d');
          g.fillText(words, 4, 20);
          await navigator.clipboard.write([new ClipboardItem({
            'text/plain': new Blob([words], {type: 'text/plain'}),
            'text/html': new Blob([`<p class="MsoNormal">${words}</p>`], {type: 'text/html'}),
            'image/png': await canvas.convertToBlob({type: 'image/png'}),
          })]);
          return (await navigator.clipboard.read())[0].types;
        }""",
        words,
    )
    assert sorted(types) == ["image/png", "text/html", "text/plain"], "the clipboard holds what Word puts there"
    box = page.get_by_role("searchbox")
    box.focus()
    page.keyboard.press("Control+V")
    assert box.input_value() == words
    page.wait_for_function("() => window.__events.some(e => e.type === 'bookidx:load')")
    assert page.evaluate("() => document.querySelector('bookidx-search').image") is None
    assert page.locator("bookidx-search [part=image-thumbnail]").count() == 0
    assert [(r.method, parse_qs(r.url.split("?")[1])["q"]) for r in sent] == [("GET", [words])]

    # A picture with no words (an image copied from a page or an editor) is the element's.
    box.press("Escape")
    wait_state(page, "idle")
    page.evaluate(
        """async (png) => {
          const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
          await navigator.clipboard.write([new ClipboardItem({'image/png': new Blob([bytes], {type: 'image/png'})})]);
        }""",
        base64.b64encode(scan["png"].read_bytes()).decode(),
    )
    box.focus()
    page.keyboard.press("Control+V")
    wait_state(page, "results")
    assert box.input_value() == ""
    assert page.locator("bookidx-search [part=image-thumbnail]").is_visible()
    assert shown_ids(page, "bookidx-search")[0] == scan["key"]
    assert sent[-1].method == "POST"


@pytest.mark.browser
def test_words_typed_beside_a_picture_wait_for_enter(page, server, scan):
    """Each search with a picture uploads it again and has the server re-rank, so typing beside
    a picture does not search at every pause: Enter does, once, with the words. The × then
    searches the words in the box alone."""
    page.goto(server.page("typing", '<bookidx-search limit="4"></bookidx-search>'))
    record_events(page)
    page.evaluate("() => { window.__asked = []; document.addEventListener('bookidx:load', "
                  "(e) => window.__asked.push(e.detail.response.query.q || null)); }")
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_state(page, "results")
    sent = searches(page)
    box = page.get_by_role("searchbox")
    box.press_sequentially("wood", delay=PAUSE_MS + 100)  # a pause after every letter
    page.wait_for_timeout(PAUSE_MS + 200)
    assert sent == [], "typing beside a picture sends nothing"
    assert page.evaluate("() => document.querySelector('bookidx-search').state") == "results"

    box.press("Enter")
    page.wait_for_function("() => window.__events.filter(e => e.type === 'bookidx:load').length === 2")
    assert len(sent) == 1 and sent[0].method == "POST"
    assert page.evaluate("() => window.__asked") == [None, "wood"], "the words go with the picture"

    box.press_sequentially("cut", delay=PAUSE_MS + 100)
    page.wait_for_timeout(PAUSE_MS + 200)
    assert len(sent) == 1
    page.get_by_role("button", name="Remove the picture").click()
    page.wait_for_function("() => window.__events.filter(e => e.type === 'bookidx:load').length === 3")
    assert [(r.method, parse_qs(r.url.split("?")[1]).get("q")) for r in sent[1:]] == [("GET", ["woodcut"])]
    # Without a picture, typing searches after the pause again.
    box.press_sequentially("s")
    page.wait_for_function("() => window.__events.filter(e => e.type === 'bookidx:load').length === 4")
    assert parse_qs(sent[-1].url.split("?")[1])["q"] == ["woodcuts"]


@pytest.mark.browser
def test_a_file_dropped_anywhere_on_the_element_is_taken(page, server, scan):
    """A file dropped on the hits, the status line or the pager, not only on the box, is the
    element's: left to the browser, it would open the file in place of the page. Dragged words
    are left alone."""
    page.goto(server.page("drop-anywhere", '<bookidx-search limit="4"></bookidx-search>'))
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_state(page, "results")
    assert page.locator("bookidx-search [part=pager]").is_visible()
    root = page.locator("bookidx-search [part=root]")
    for target in ("[part~=hit]", "[part=status-text]", "[part=next]"):
        assert page.evaluate(SYNTHETIC_FILE, ["dragover", scan["base64"], target]), f"dragover {target}"
        assert root.get_attribute("data-dropping") == "", "the element shows it takes the file"
        record_events(page)
        assert page.evaluate(SYNTHETIC_FILE, ["drop", scan["base64"], target]), f"drop {target}"
        assert root.get_attribute("data-dropping") is None
        page.wait_for_function("() => window.__events.some(e => e.type === 'bookidx:load')")
        assert [e["detail"]["page"] for e in events(page, "load")] == [1], "the dropped picture searched from page 1"
    assert not page.evaluate(SYNTHETIC_FILE, ["dragover", "", "[part=input]", "woodcut"]), "dragged words drop as usual"
    assert not page.evaluate(SYNTHETIC_FILE, ["drop", "", "[part~=hit]", "woodcut"])
    assert root.get_attribute("data-dropping") is None


@pytest.mark.browser
def test_a_picture_given_to_an_unconnected_element_makes_no_object_url_until_shown(page, server, scan):
    """An object URL lives until revoked, and only a connected element revokes it (when it is
    removed): searchImage() on an element not in the page makes none; connecting shows the
    picture, removing frees it."""
    page.goto(server.page("unconnected", ""))
    made = page.evaluate(
        """async (data) => {
          await customElements.whenDefined('bookidx-search');
          window.__urls = [];
          const create = URL.createObjectURL;
          URL.createObjectURL = (blob) => { const url = create.call(URL, blob); window.__urls.push(url); return url; };
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const never = document.createElement('bookidx-search');
          never.searchImage(new Blob([bytes], {type: 'image/jpeg'}));
          const later = document.createElement('bookidx-search');
          later.limit = 4;
          later.searchImage(new Blob([bytes], {type: 'image/jpeg'}));
          window.__later = later;
          return window.__urls.length;
        }""",
        scan["base64"],
    )
    assert made == 0, "no object URL for an element not in the page"
    page.evaluate("() => document.body.append(window.__later)")
    wait_state(page, "results")
    assert shown_ids(page, "bookidx-search")[0] == scan["key"]
    urls = page.evaluate("() => window.__urls")
    assert len(urls) == 1 and page.locator("bookidx-search [part=image-thumbnail]").get_attribute("src") == urls[0]
    page.evaluate("() => window.__later.remove()")
    assert page.evaluate("(url) => fetch(url).then(() => 'still there', () => 'revoked')", urls[0]) == "revoked"


@pytest.mark.browser
def test_max_upload_leaves_room_for_the_request_around_the_picture(page, plain_server, scan, tmp_path):
    """max-upload is the server's limit on the whole request, the multipart envelope included:
    a picture a few bytes under it would be a 413, so the element refuses it itself, and one at
    the element's own limit the server takes. Sizes are rounded apart (the picture's up, the
    limit down), so the message never reads "10 MB, over the 10 MB limit"."""
    jpeg = scan["jpeg"].read_bytes()
    largest = UPLOAD_LIMIT - ENVELOPE
    assert len(jpeg) < largest
    near, fits = tmp_path / "near.jpg", tmp_path / "fits.jpg"
    near.write_bytes(jpeg + bytes(UPLOAD_LIMIT - 100 - len(jpeg)))  # JPEG readers stop at its end marker
    fits.write_bytes(jpeg + bytes(largest - len(jpeg)))
    assert post_scan(plain_server, near).status_code == 413, "under the limit, but not with the envelope"
    page.goto(plain_server.page("margin", f'<bookidx-search limit="4" max-upload="{UPLOAD_LIMIT}"></bookidx-search>'))
    record_events(page)
    sent = searches(page)
    file_input = page.locator("bookidx-search input[type=file]")
    file_input.set_input_files(near)
    said = "The picture is 196 kB, over the 179 kB limit: choose a smaller one."  # 199,900 and 183,616 bytes
    expect_text(status(page, "bookidx-search"), said)
    assert sent == [], "refused in the browser, not by the server"
    file_input.set_input_files(fits)
    wait_state(page, "results")
    assert shown_ids(page, "bookidx-search")[0] == scan["key"]
    assert [e["detail"]["status"] for e in events(page, "error")] == [None]
    asked = len(sent)

    # The default limit (10 MB): just under it, and just over it.
    for size, said in ((10 * 1024 * 1024 - 1000, "10 MB"), (10 * 1024 * 1024 + 1, "11 MB")):
        page.evaluate(
            "(size) => { const el = document.querySelector('bookidx-search'); el.maxUpload = null;"
            " el.searchImage(new Blob([new Uint8Array(size)], {type: 'image/png'})); }",
            size,
        )
        expect_text(status(page, "bookidx-search"), f"The picture is {said}, over the 9.9 MB limit: choose a smaller one.")
    assert len(sent) == asked


@pytest.mark.browser
def test_a_refused_file_keeps_the_picture_and_hits_it_had(page, server, scan):
    """A file too big, or not a picture, only says so: the picture chosen before, its hits and
    its pages stay, and the next page still posts that picture."""
    page.goto(server.page("keep", '<bookidx-search limit="4" max-upload="1048576"></bookidx-search>'))
    file_input = page.locator("bookidx-search input[type=file]")
    file_input.set_input_files(scan["jpeg"])
    wait_state(page, "results")
    ids = shown_ids(page, "bookidx-search")
    thumbnail = page.locator("bookidx-search [part=image-thumbnail]")
    blob_url = thumbnail.get_attribute("src")
    record_events(page)
    sent = searches(page)
    big = {"name": "poster.png", "mimeType": "image/png", "buffer": b"\x89PNG" + bytes(1_572_860)}
    notes = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"a woodcut of a ship"}
    for refused, said in ((big, "The picture is 1.5 MB, over the 1,008 kB limit: choose a smaller one."),
                          (notes, "“notes.txt” is not a picture: choose an image file.")):
        file_input.set_input_files(refused)
        expect_text(status(page, "bookidx-search"), said)
        assert page.evaluate("() => document.querySelector('bookidx-search').state") == "error"
        assert shown_ids(page, "bookidx-search") == ids
        assert thumbnail.get_attribute("src") == blob_url
        assert page.evaluate("() => document.querySelector('bookidx-search').image.name") == "scan.jpg"
        assert page.locator("bookidx-search [part=pager]").is_visible()
    assert [e["detail"]["status"] for e in events(page, "error")] == [None, None]
    assert sent == [], "nothing refused is sent"
    assert page.evaluate("(url) => fetch(url).then(() => 'still there', () => 'revoked')", blob_url) == "still there"
    page.locator("bookidx-search [part=next]").click()
    expect_text(status(page, "bookidx-search"), "4 results, page 2")
    # Answered, so the picture went with it (a POST without one is a 400).
    assert len(sent) == 1 and sent[0].method == "POST" and parse_qs(sent[0].url.split("?")[1])["page"] == ["2"]


@pytest.mark.browser
def test_image_search_where_the_server_does_not_rerank(page, plain_server, scan):
    """rerank=true answered 400 (re-ranking off): asked again without it, once for the
    element's life; hits in embedding order, no badge, no error. The server's 413 is shown."""
    refused = post_scan(plain_server, scan["jpeg"], rerank="true")
    assert refused.status_code == 400 and refused.json()["parameter"] == "rerank"
    page.goto(plain_server.page("plain", '<bookidx-search limit="4"></bookidx-search>'))
    record_events(page)
    sent = searches(page)
    file_input = page.locator("bookidx-search input[type=file]")
    file_input.set_input_files(scan["jpeg"])
    wait_state(page, "results")
    assert shown_ids(page, "bookidx-search") == [h["id"] for h in post_scan(plain_server, scan["jpeg"], limit=4).json()["hits"]]
    assert shown_ids(page, "bookidx-search")[0] == scan["key"]
    assert page.locator("bookidx-search [part=exact]").count() == 0
    expect_text(status(page, "bookidx-search"), "4 results")
    assert events(page, "error") == []
    assert ["rerank=true" in r.url for r in sent] == [True, False]

    # Another picture: straight to the plain request. This one is over the server's limit.
    record_events(page)
    page.evaluate("() => document.querySelector('bookidx-search').maxUpload = 10 * 1024 * 1024")
    file_input.set_input_files(scan["png"])
    wait_state(page, "error")
    too_big = post_scan(plain_server, scan["png"])
    assert too_big.status_code == 413
    # The server's words (its byte count is the whole request's, so the multipart framing too).
    said = rf"upload is \d+ bytes; the limit is {UPLOAD_LIMIT}"
    assert re.fullmatch(said, too_big.json()["detail"])
    expect_text(status(page, "bookidx-search"), re.compile(rf"^The search failed: {said} \(HTTP 413\)$"))
    assert events(page, "error")[-1]["detail"]["status"] == 413
    assert ["rerank=true" in r.url for r in sent] == [True, False, False]


@pytest.mark.browser
def test_too_big_or_not_a_picture_is_refused_before_sending(page, server, scan):
    page.goto(server.page("big", '<bookidx-search max-upload="1048576"></bookidx-search>'
                                 '<bookidx-search id="nb" lang="nb" max-upload="1048576"></bookidx-search>'))
    record_events(page)
    sent = searches(page)
    big = {"name": "poster.png", "mimeType": "image/png", "buffer": b"\x89PNG" + bytes(1_572_860)}  # 1.5 MB
    page.locator("bookidx-search:not(#nb) input[type=file]").set_input_files(big)
    expect_text(status(page, "bookidx-search:not(#nb)"), "The picture is 1.5 MB, over the 1,008 kB limit: choose a smaller one.")
    assert page.evaluate("() => document.querySelector('bookidx-search').state") == "error"
    assert not page.locator("bookidx-search:not(#nb) [part=retry]").is_visible(), "trying again cannot help"
    assert page.locator("bookidx-search:not(#nb) [part=image-thumbnail]").count() == 0
    assert events(page, "error")[-1]["detail"] == {
        "url": None, "status": None, "parameter": "image",
        "detail": "The picture is 1.5 MB, over the 1,008 kB limit: choose a smaller one.",
    }
    page.locator("#nb input[type=file]").set_input_files(big)
    expect_text(status(page, "#nb"), "Bildet er 1,5 MB, over grensen på 1 008 kB: velg et mindre bilde.")
    page.locator("bookidx-search:not(#nb) input[type=file]").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"a woodcut of a ship"})
    expect_text(status(page, "bookidx-search:not(#nb)"), "“notes.txt” is not a picture: choose an image file.")
    assert sent == [], "nothing refused is sent"
    # The same element still searches a picture under the limit. From the keyboard, the button
    # opens the file input (counted here: Chromium's own chooser dialog is not under test).
    file_input = page.locator("bookidx-search:not(#nb) input[type=file]")
    file_input.evaluate("(input) => { window.__opened = 0; input.addEventListener('click', () => window.__opened++); }")
    page.locator("bookidx-search:not(#nb) [part=image-button]").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("() => window.__opened") == 1
    file_input.set_input_files(scan["jpeg"])
    page.wait_for_function("() => document.querySelector('bookidx-search').state === 'results'")
    assert shown_ids(page, "bookidx-search:not(#nb)")[0] == scan["key"]


@pytest.mark.browser
def test_image_search_has_no_serious_accessibility_violations(page, server, scan):
    """The plain example page with a picture chosen: chip, × button and (with OpenCV) badge."""
    if not AXE.exists():
        pytest.skip("axe-core missing: npm ci --prefix widget")
    page.goto(server.url + "/")
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_state(page, "results")
    page.add_script_tag(path=str(AXE))
    assert_axe_finds_nothing_serious(page)


# ---------------------------------------------------------------------------------------------
# Words against a picture: the API's `w`, the picture's share of a search with both


class WordsAsPixels(PixelEmbedder):
    """``test-pixels`` with a text encoder: the words drawn black on white, one to a line, and
    embedded as a picture of them. Crude but real: words and pictures share one space, a page
    that looks like the drawn words ranks first for them, and a woodcut first for its scan."""

    model_id = "test-pixels-words"
    supports_text = True

    def embed_texts(self, texts):
        drawn = []
        for text in texts:
            im = Image.new("L", (96, 128), 255)
            ImageDraw.Draw(im).multiline_text((4, 8), "\n".join(text.split()), fill=0, spacing=6)
            drawn.append(self.preprocess(im))
        return normalize(np.stack(drawn))


register_embedder(WordsAsPixels.model_id, WordsAsPixels)

WORDS = "ship"  # on the collection below its drawing ranks another page first, not the scan's


@pytest.fixture(scope="module")
def mixed_server(collection, scan, tmp_path_factory):
    """The chapbook pages embedded by a model that reads words too, so words and a picture mix
    by `w`; re-ranking off, so the hits are in the order of the mixed vector."""
    from bookidx.config import IndexConfig
    from bookidx.store import Index
    from bookidx.web import create_blueprint

    regions = [r for r in collection["regions"] if r.page.image.path]
    crops = []
    for r in regions:
        with Image.open(r.page.image.path) as im:
            crops.append(im.convert("RGB").crop((r.box.x, r.box.y, r.box.x + r.box.w, r.box.y + r.box.h)))
    embedder = WordsAsPixels()
    index_dir = tmp_path_factory.mktemp("words-index")
    store = Index.create_or_open(index_dir, model_info=embedder.info, config=IndexConfig(model=embedder.model_id))
    store.add(regions, embedder.embed_images(crops))
    store.commit()
    store.close()
    yield from serving(create_blueprint(str(index_dir), rerank_depth=0), record_posts=True)


def last_form(server) -> dict[str, str]:
    """The text fields of the last search the server was posted (the picture's part left out)."""
    return server.posted.fields[-1]


def post_mixed(server, scan, w: float, **params) -> list[str]:
    """The ids the server ranks for the scan and WORDS mixed by ``w``."""
    with open(scan["jpeg"], "rb") as f:
        answer = requests.post(f"{server.url}/bookidx/api/search", params={"limit": 4, **params},
                               files={"image": f}, data={"q": WORDS, "w": str(w)}, timeout=30)
    answer.raise_for_status()
    return [h["id"] for h in answer.json()["hits"]]


def loads(tab) -> int:
    return tab.evaluate("() => window.__events.filter(e => e.type === 'bookidx:load').length")


def wait_loads(tab, n: int) -> None:
    tab.wait_for_function(f"() => window.__events.filter(e => e.type === 'bookidx:load').length === {n}")


@pytest.mark.browser
def test_weight_slider_shows_only_with_words_and_a_picture(page, mixed_server, scan):
    """No slider for words alone or a picture alone; with both, a labelled slider at the
    server's default, and the POST carries `w` beside `q` (a words-only GET has no use for it)."""
    page.goto(mixed_server.page("weight-shown", '<bookidx-search limit="4"></bookidx-search>'))
    record_events(page)
    sent = searches(page)
    slider = page.get_by_role("slider", name="Words ↔ picture")
    box = page.get_by_role("searchbox")
    box.fill(WORDS)
    wait_loads(page, 1)
    assert not slider.is_visible(), "words alone: nothing to weigh"
    assert sent[-1].method == "GET" and "w" not in parse_qs(sent[-1].url.split("?")[1])

    box.fill("")
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_loads(page, 2)
    assert not slider.is_visible(), "a picture alone: nothing to weigh"
    assert last_form(mixed_server) == {}

    box.fill(WORDS)  # beside a picture, typing shows the slider but waits for Enter
    assert slider.is_visible()
    assert slider.input_value() == "0.5" and slider.get_attribute("aria-valuetext") == "50% picture, 50% words"
    assert page.evaluate("() => document.querySelector('bookidx-search').weight") == 0.5
    box.press("Enter")
    wait_loads(page, 3)
    assert sent[-1].method == "POST" and last_form(mixed_server) == {"q": WORDS, "w": "0.5"}
    assert shown_ids(page, "bookidx-search") == post_mixed(mixed_server, scan, 0.5)

    page.get_by_role("button", name="Remove the picture").click()
    wait_loads(page, 4)
    assert not slider.is_visible()
    # The attribute sets the slider and what is sent; the interface language its words.
    page.evaluate("() => { const el = document.querySelector('bookidx-search'); el.setAttribute('weight', '0.7');"
                  " el.lang = 'fr'; }")
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_loads(page, 5)
    french = page.get_by_role("slider", name="Mots ↔ image")
    assert french.input_value() == "0.7"
    assert french.get_attribute("aria-valuetext") == "70\u00a0% image, 30\u00a0% mots"
    assert last_form(mixed_server) == {"q": WORDS, "w": "0.7"}
    assert shown_ids(page, "bookidx-search") == post_mixed(mixed_server, scan, 0.7)


@pytest.mark.browser
def test_weight_slider_moves_the_hits_from_the_words_to_the_picture(page, mixed_server, scan):
    """At the words' end the page their drawing resembles comes first; at the picture's end, the
    scanned page. Keys set the slider; a run of presses searches once; paging keeps `w`."""
    at_words, at_picture = post_mixed(mixed_server, scan, 0), post_mixed(mixed_server, scan, 1)
    assert at_picture[0] == scan["key"] and scan["key"] not in at_words[:2], "words and picture should disagree"
    page.goto(mixed_server.page("weight-order", f'<bookidx-search limit="4" q="{WORDS}"></bookidx-search>'))
    wait_state(page, "results")  # the words alone
    record_events(page)
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_loads(page, 1)
    assert shown_ids(page, "bookidx-search") == post_mixed(mixed_server, scan, 0.5)
    sent = searches(page)
    slider = page.get_by_role("slider", name="Words ↔ picture")
    slider.focus()
    page.keyboard.press("Home")
    wait_loads(page, 2)
    assert last_form(mixed_server)["w"] == "0"
    assert shown_ids(page, "bookidx-search") == at_words
    assert slider.get_attribute("aria-valuetext") == "0% picture, 100% words"

    page.keyboard.press("End")
    wait_loads(page, 3)
    assert last_form(mixed_server)["w"] == "1"
    assert shown_ids(page, "bookidx-search") == at_picture
    assert page.evaluate("() => document.querySelector('bookidx-search').getAttribute('weight')") == "1"

    for _ in range(4):  # four presses inside the pause: one search, for where they end
        page.keyboard.press("ArrowLeft")
    wait_loads(page, 4)
    page.wait_for_timeout(PAUSE_MS + 200)
    assert loads(page) == 4 and len(sent) == 3
    assert last_form(mixed_server)["w"] == "0.8"
    assert shown_ids(page, "bookidx-search") == post_mixed(mixed_server, scan, 0.8)

    page.locator("bookidx-search [part=next]").click()  # page 2 posts the picture again, same w
    expect_text(status(page, "bookidx-search"), re.compile(r"results?, page 2$"))
    assert parse_qs(sent[-1].url.split("?")[1])["page"] == ["2"]
    assert last_form(mixed_server) == {"q": WORDS, "w": "0.8"}
    assert shown_ids(page, "bookidx-search") == post_mixed(mixed_server, scan, 0.8, page=2)


@pytest.mark.browser
def test_dragging_the_weight_slider_uploads_the_picture_once(page, mixed_server, scan):
    """A slow drag, pausing longer than the typing pause on the way, sends nothing until the
    pointer lets go; then one search. Enter on the slider searches at once."""
    page.goto(mixed_server.page("weight-drag", f'<bookidx-search limit="4" q="{WORDS}"></bookidx-search>'))
    wait_state(page, "results")
    record_events(page)
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_loads(page, 1)
    sent = searches(page)
    slider = page.get_by_role("slider", name="Words ↔ picture")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    for share in (0.6, 0.75, 0.9, 0.99):
        page.mouse.move(box["x"] + box["width"] * share, y, steps=4)
        page.wait_for_timeout(PAUSE_MS + 100)
    assert sent == [], "nothing is sent while the slider is held"
    page.mouse.up()
    wait_loads(page, 2)
    page.wait_for_timeout(PAUSE_MS + 200)
    assert len(sent) == 1
    w = float(last_form(mixed_server)["w"])
    assert w >= 0.9 and w == float(slider.input_value())
    assert shown_ids(page, "bookidx-search") == post_mixed(mixed_server, scan, w)

    page.evaluate("""() => {
      document.addEventListener('keydown', (e) => { if (e.key === 'Enter') window.__enter = performance.now(); }, true);
      document.addEventListener('bookidx:loadstart', () => { window.__started = performance.now(); });
    }""")
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")  # searches at once, not after the pause
    wait_loads(page, 3)
    assert 0 <= page.evaluate("() => window.__started - window.__enter") < PAUSE_MS
    assert len(sent) == 2 and float(last_form(mixed_server)["w"]) == round(w - 0.05, 3)
    page.wait_for_timeout(PAUSE_MS + 200)
    assert len(sent) == 2, "the pause that followed the key press searched nothing more"


@pytest.mark.browser
def test_weight_slider_has_no_serious_accessibility_violations(page, server, scan):
    """The plain example page with words and a picture: the slider shown, focused, set."""
    if not AXE.exists():
        pytest.skip("axe-core missing: npm ci --prefix widget")
    page.goto(server.url + "/")
    page.get_by_role("searchbox").fill("woodcut")
    page.locator("bookidx-search input[type=file]").set_input_files(scan["jpeg"])
    wait_state(page, "results")
    record_events(page)
    slider = page.get_by_role("slider", name="Words ↔ picture")
    slider.focus()
    page.keyboard.press("PageUp")
    wait_loads(page, 1)
    assert slider.is_visible() and slider.input_value() != "0.5"
    page.add_script_tag(path=str(AXE))
    assert_axe_finds_nothing_serious(page)
