"""examples/existing_site: what its README tells a reader to try works with what it indexes.

The README indexes the 40 example chapbook pages (a folder of images: no captions) with an
image-only model. ``test-pixels`` (conftest.py) stands in for efficientnet-lite0: both read
pictures only. A search the README shows must find something, or say why it cannot.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import jsonschema
import pytest
import referencing
import referencing.jsonschema

from bookidx.config import IndexConfig
from bookidx.embed import load_embedder
from bookidx.runner import index

from conftest import ROOT

SITE = ROOT / "examples/existing_site"
README = (SITE / "README.md").read_text()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The example site over an index built as its README builds it (same pages, image-only model)."""
    folder = tmp_path_factory.mktemp("site")
    index([str(ROOT / "examples/chapbooks/images")], folder / "chapbooks", IndexConfig(model="test-pixels"),
          embedder=load_embedder("test-pixels"))
    spec = importlib.util.spec_from_file_location("existing_site", SITE / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.create_app(str(folder / "chapbooks"), str(folder / "chapbooks"), TESTING=True)
    return app.test_client()


def _search_response(client, body: dict) -> dict:
    """``body``, after checking it against the site's own OpenAPI document."""
    doc = client.get("/images/openapi.json").get_json()
    registry = referencing.Registry().with_resource("urn:openapi", referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012))
    jsonschema.Draft202012Validator({"$ref": "urn:openapi#/components/schemas/SearchResponse"},
                                    registry=registry).validate(body)
    return body


def test_the_readmes_picture_search_finds_the_page_and_its_similar_ones(site):
    posted = re.findall(r"curl -F image=@(\S+) http://127\.0\.0\.1:5000(/\S+)", README)
    assert posted, "the README shows a search by picture"
    for image, path in posted:
        with open(ROOT / image, "rb") as f:
            body = _search_response(site, site.post(path, data={"image": (f, Path(image).name)}).get_json())
        first = body["hits"][0]
        assert first["canvas"].endswith(Path(image).name) and body["warnings"] == []
        similar = site.get(first["links"]["similar"]).get_json()
        assert similar["hits"] and first["id"] not in [h["id"] for h in similar["hits"]]


def test_no_search_in_the_readme_answers_a_bare_empty_list(site):
    """Each search URL the README names finds something, or its answer says why it cannot."""
    urls = re.findall(r"`(/\w+/api/search\?[^`\s]+)`", README)
    assert urls
    for url in urls:
        body = _search_response(site, site.get(url).get_json())
        assert body["hits"] or body["warnings"], url


def test_a_text_query_the_model_cannot_read_is_explained_and_only_then(site):
    body = _search_response(site, site.get("/images/api/search?q=woodcut").get_json())
    assert body["hits"] == [] and body["mode"] == "keyword"
    [warning] = body["warnings"]
    assert "'test-pixels' cannot read text" in warning and "captions" in warning and "similar=ID" in warning
    # mode=keyword asked for exactly what it got; page 2 of anything may be empty; filters that
    # exclude everything are the reason themselves
    for url in ("/images/api/search?q=woodcut&mode=keyword", "/images/api/search?q=woodcut&page=2",
                "/images/api/search?q=woodcut&date_from=1900&date_to=1800"):
        assert _search_response(site, site.get(url).get_json())["warnings"] == [], url
