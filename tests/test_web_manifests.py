"""``/api/manifests`` links each manifest the index keeps to the IIIF routes serving it.

A client finds the annotated copy of a manifest (``/iiif/<slug>/manifest.json``) and its Content
Search services from the API alone, without computing the slug, under whatever prefix the host
mounted the blueprint and on ``BOOKIDX_PUBLIC_URL`` when set, and the URLs are the ones the
served manifest itself advertises.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
import referencing
from flask import Flask

from bookidx.embed import load_embedder
from bookidx.manifests import save_manifest, slug
from bookidx.web import create_blueprint
from webindex import IIIF_MANIFEST, build_index, chapbook_regions


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, chapbooks):
    path = tmp_path_factory.mktemp("manifests") / "idx"
    build_index(path, chapbooks, load_embedder("test-pixels"), chapbook_regions(chapbooks, n=4))
    canvases = [{"id": f"https://iiif.example.org/canvas/{j}", "type": "Canvas", "width": 600, "height": 1000,
                 "items": [{"type": "AnnotationPage", "items": [{
                     "type": "Annotation", "motivation": "painting", "target": f"https://iiif.example.org/canvas/{j}",
                     "body": {"id": f"https://iiif.example.org/iiif/2/page{j}/full/max/0/default.jpg", "type": "Image",
                              "width": 1200, "height": 2000,
                              "service": [{"id": f"https://iiif.example.org/iiif/2/page{j}", "type": "ImageService2"}]},
                 }]}]} for j in range(2)]
    save_manifest(path, IIIF_MANIFEST, {"@context": "http://iiif.io/api/presentation/3/context.json", "id": IIIF_MANIFEST,
                                        "type": "Manifest", "label": {"en": ["Atlas"]}, "items": canvases})
    return path


def listed(client, prefix: str) -> dict[str, dict]:
    """GET /api/manifests, checked against the OpenAPI document's schema; entries by id."""
    answer = client.get(f"{prefix}/api/manifests")
    assert answer.status_code == 200
    doc = client.get(f"{prefix}/openapi.json").get_json()
    registry = referencing.Registry().with_resource("urn:openapi", referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012))
    jsonschema.Draft202012Validator({"$ref": "urn:openapi#/components/schemas/Manifests"}, registry=registry).validate(
        answer.get_json())
    return {m["id"]: m for m in answer.get_json()["manifests"]}


def advertised(manifest: dict) -> set[str]:
    return {service.get("id") or service.get("@id") for service in manifest.get("service", [])}


@pytest.mark.parametrize("prefix, config, root", [
    ("/bookidx", {}, "http://localhost/bookidx"),
    ("/x/maps", {"public_url": "https://library.example.org/"}, "https://library.example.org/x/maps"),
])
def test_a_kept_manifest_lists_where_it_is_served(index_dir, prefix, config, root):
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(index_dir), **config), url_prefix=prefix)
    client = app.test_client()
    entry = listed(client, prefix)[IIIF_MANIFEST]
    base = f"{root}/iiif/{slug(IIIF_MANIFEST)}"
    assert entry["slug"] == slug(IIIF_MANIFEST) and entry["count"] == 2
    assert entry["links"] == {"manifest": f"{base}/manifest.json", "search": f"{base}/search", "search1": f"{base}/search1"}
    served = client.get(entry["links"]["manifest"])
    manifest = json.loads(served.data)
    assert served.status_code == 200 and manifest["id"] == IIIF_MANIFEST
    assert advertised(manifest) == {entry["links"]["search"], entry["links"]["search1"]}
    search = client.get(entry["links"]["search"] + "?q=map")
    assert search.status_code == 200 and json.loads(search.data)["items"]


def test_books_without_a_kept_manifest_have_no_links(index_dir):
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(str(index_dir)))
    entries = listed(app.test_client(), "/bookidx")
    assert {m: (e["slug"], e["links"]) for m, e in entries.items() if m != IIIF_MANIFEST} == {
        "urn:test:m1": (None, None), "urn:test:m2": (None, None)}
