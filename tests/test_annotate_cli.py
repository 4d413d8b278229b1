"""``bookidx annotate`` as a user runs it: ``--api-url`` as ``bookidx serve`` prints it, and
manifests named by URL (fetched over HTTP from a server on 127.0.0.1, as ``bookidx index``
takes them).

The index is test_annotate.py's: the IIIF Cookbook's 0068 newspaper and Gallica's Vogue with
their real ALTO regions, the manifests stored beside it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bookidx.annotate import annotate_files
from bookidx.apiroot import api_root
from bookidx.cli import cli
from bookidx.errors import BadRequest
from bookidx.manifests import slug
from bookidx.web import create_blueprint
from click.testing import CliRunner
from flask import Flask
from test_annotate import NEWSPAPER, indexed  # noqa: F401  (pytest fixture)


def similar_links(manifest: dict) -> list[str]:
    """Every "similar images" link of an annotated Presentation 3 manifest (embedded pages)."""
    return [
        body["source"]["id"]
        for canvas in manifest["items"] for page in canvas.get("annotations", []) for anno in page.get("items", [])
        for body in anno["body"] if body.get("purpose") == "linking"
    ]


@pytest.mark.parametrize("given", [
    "http://localhost/bookidx/", "http://localhost/bookidx", "http://localhost/bookidx/api", "http://localhost/bookidx/api/",
])
def test_similar_links_work_given_the_address_serve_prints_or_the_api_root(indexed, corpus, tmp_path, given):  # noqa: F811
    """The review's case: `serve` prints …/bookidx/, and links made from it were …/bookidx/items/ID/similar (404)."""
    path, docs, _ = indexed
    annotate_files([corpus / NEWSPAPER], path, tmp_path, api_url=given)
    links = similar_links(json.loads((tmp_path / slug(docs[NEWSPAPER]["id"]) / "manifest.json").read_text()))
    assert links and all(link.startswith("http://localhost/bookidx/api/items/") for link in links)
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(path)))
    with app.test_client() as client:
        answer = client.get(links[0][len("http://localhost"):])
        assert answer.status_code == 200 and "hits" in answer.get_json()


def test_an_api_url_that_is_no_http_address_is_refused_saying_what_to_give():
    for bad in ("127.0.0.1:8000/bookidx", "/bookidx/api", "ftp://host/bookidx", "http://host/bookidx/?x=1"):
        with pytest.raises(BadRequest, match=r"give the http\(s\) address `bookidx serve` prints") as err:
            api_root(bad)
        assert err.value.parameter == "api_url"
    assert api_root("https://lib.example.org/images/") == "https://lib.example.org/images/api"  # mounted elsewhere


def test_a_site_s_bare_root_is_refused_naming_where_serve_answers(indexed, corpus, tmp_path):  # noqa: F811
    """What users type (``/`` redirects to the search page) made links at http://host:8000/api/items/…, all 404s."""
    path, _, _ = indexed
    for given in ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"):
        res = CliRunner().invoke(cli, ["annotate", str(corpus / NEWSPAPER), "--index", str(path), "-o", str(tmp_path), "--api-url", given])
        assert res.exit_code == 1 and len(res.output.splitlines()) == 1, res.output
        assert res.output.startswith(f"error: api_url: {given!r} is a site's root, not a bookidx blueprint's: "
                                     "`bookidx serve` answers at http://127.0.0.1:8000/bookidx/ (give that)"), res.output
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_blueprint_mounted_at_api_is_given_by_its_api_root(indexed, corpus, tmp_path):  # noqa: F811
    """The rule --help states: a path ending in /api is the API root, so a blueprint at /api is given as /api/api."""
    path, docs, _ = indexed
    annotate_files([corpus / NEWSPAPER], path, tmp_path, api_url="http://localhost/api/api")
    links = similar_links(json.loads((tmp_path / slug(docs[NEWSPAPER]["id"]) / "manifest.json").read_text()))
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(path), name="api"))
    with app.test_client() as client:
        assert links and client.get(links[0][len("http://localhost"):]).status_code == 200


@pytest.fixture()
def manifest_server(indexed) -> Iterator[str]:  # noqa: F811
    """An HTTP server on 127.0.0.1 serving the newspaper manifest at /issue.json (not its id,
    so the copy stored with the index is not what answers); anything else is a 404."""
    _, docs, _ = indexed
    body = json.dumps(docs[NEWSPAPER]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  (http.server's name)
            found = self.path == "/issue.json"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if found else b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_annotate_takes_a_manifest_url_as_index_does(indexed, manifest_server, tmp_path):  # noqa: F811
    path, docs, regions = indexed
    doc = docs[NEWSPAPER]
    res = CliRunner().invoke(cli, ["annotate", f"{manifest_server}/issue.json", "--index", str(path), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / slug(doc["id"]) / "manifest.json").read_text())
    keys = {int(a["id"].rsplit("-", 1)[1]) for c in out["items"] for p in c.get("annotations", []) for a in p.get("items", [])}
    assert keys == {r.key for r in regions if r.page.manifest == doc["id"]}


def test_a_manifest_that_is_nowhere_is_a_one_line_error_naming_it(indexed, manifest_server, tmp_path):  # noqa: F811
    path, _, _ = indexed
    for name, says in (
        ("nosuch.json", "error: nosuch.json: no such file, and no manifest with this id is stored with the index"),
        (f"{manifest_server}/gone.json", f"error: {manifest_server}/gone.json: "),
    ):
        res = CliRunner().invoke(cli, ["annotate", name, "--index", str(path), "-o", str(tmp_path)])
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
        assert len(res.output.splitlines()) == 1 and res.output.startswith(says), res.output
    assert "404" in res.output
