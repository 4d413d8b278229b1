"""Schemathesis against the blueprint's own OpenAPI document (issue 7: hostile requests).

Every operation the document declares is called with requests generated from its parameter
schemas, valid ones and (negative mode) invalid ones: wrong types, out-of-range numbers, strings
of any Unicode, repeated parameters. Each response must be no 5xx, have a status the document
lists for that operation, and a body of the declared content type that validates against the
declared schema. The app is the one ``bookidx serve`` runs (``create_app``), called in-process
over WSGI, on a real index of chapbook woodcuts and two IIIF regions with a stored manifest, so
item ids, IIIF slugs and canvases exist to be found as well as missed.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from bookidx.embed import load_embedder
from bookidx.manifests import save_manifest, slug
from bookidx.web.serve import create_app
from webindex import IIIF_MANIFEST, build_index, chapbook_regions, image_server

EXAMPLES = 60  # per operation and mode; 300 ran clean too (55 s)


@pytest.fixture(scope="module")
def images_base():
    with image_server() as base:
        yield base


@pytest.fixture(scope="module")
def index_path(tmp_path_factory, chapbooks):
    path = tmp_path_factory.mktemp("fuzz") / "idx"
    regions = chapbook_regions(chapbooks, n=8)
    build_index(path, chapbooks, load_embedder("test-pixels"), regions)
    canvases = []
    for j in range(2):  # the two IIIF regions of webindex.py, on their canvases
        service = f"https://iiif.example.org/iiif/2/page{j}"
        body = {"id": f"{service}/full/max/0/default.jpg", "type": "Image", "width": 1200, "height": 2000,
                "service": [{"id": service, "type": "ImageService2"}]}
        annotation = {"type": "Annotation", "motivation": "painting", "target": f"https://iiif.example.org/canvas/{j}",
                      "body": body}
        canvases.append({"id": f"https://iiif.example.org/canvas/{j}", "type": "Canvas", "width": 600, "height": 1000,
                         "items": [{"type": "AnnotationPage", "items": [annotation]}]})
    save_manifest(path, IIIF_MANIFEST, {"@context": "http://iiif.io/api/presentation/3/context.json", "id": IIIF_MANIFEST,
                                        "type": "Manifest", "label": {"en": ["Atlas"]}, "items": canvases})
    return path


@pytest.fixture(scope="module")
def app(index_path, images_base):
    # image_url is fetched: an allow-listed local server answers any path with an image
    return create_app(str(index_path), fetch_allowlist=[f"{images_base}/iiif/"])


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/bookidx/openapi.json", app)


@pytest.fixture(scope="module")
def closed_schema(index_path):
    """The same index on a server that fetches no image_url and does not re-rank (still declared,
    each with a schema admitting only what that server takes)."""
    return schemathesis.openapi.from_wsgi("/bookidx/openapi.json", create_app(str(index_path), rerank_depth=0))


def operations(schema) -> list:
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 14  # search (GET, POST), items, similar, manifests, stats, health, ...
    return found


def excluded(operation) -> list:
    """Checks that cannot hold for the two searches, whose schema-valid requests can still be
    documented 400s: ``mode=vector`` with text on a model without a text encoder (test-pixels);
    any bytes are a schema-valid ``image`` (``format: binary``) yet only images are searched,
    and flat ones (as the generator's 1 x 1 PNGs) have no direction for test-pixels. And a
    multipart field is text whatever the generator meant: ``q=true`` "as a boolean" is a string.
    """
    if operation.path != "/api/search":
        return []
    if operation.method.upper() == "POST":
        return [schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection]
    return [schemathesis.checks.positive_data_acceptance]


# schemathesis.pytest.from_fixture needs pytest < 9 (it reads Function._nodeid), so each
# operation gets its own Hypothesis run here instead of a pytest parameter.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_within_its_schema(api_schema, mode):
    tried = fuzz(operations(api_schema), mode)
    assert tried >= (14 if mode == GenerationMode.POSITIVE else 6), tried


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_searches_answer_within_their_schema_where_nothing_is_fetched_or_reranked(closed_schema, mode):
    searches = {o.method.upper(): o for o in operations(closed_schema) if o.path == "/api/search"}
    # Generated clients see both, even here; the fuzzer must find the server keeps to their schemas.
    assert {"image_url", "rerank"} <= {p.name for p in searches["GET"].query}
    assert "rerank" in {p.name for p in searches["POST"].query}
    assert fuzz(list(searches.values()), mode) == 2


def fuzz(operations: list, mode: GenerationMode) -> int:
    """Call each operation with generated requests and check every answer; how many ran."""
    tried = 0
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not any(
                len(part) for part in (operation.path_parameters, operation.query, operation.body)):
            continue  # nothing to get wrong (health, stats, manifests, the page, this document)

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            skip = excluded(operation)
            if any(value in ("", [""]) for value in (case.query or {}).values()):
                # an empty parameter means an absent one (as HTML forms send them), which the
                # schema's patterns and types cannot say
                skip = [*skip, schemathesis.checks.negative_data_rejection]
            case.call_and_validate(excluded_checks=skip)

        try:
            check()
        except Unsatisfiable:
            # only a string in a path ({slug}, {filename}): whatever is sent is a string
            assert mode == GenerationMode.NEGATIVE, operation.path
            continue
        except Exception as e:
            raise AssertionError(f"{operation.method.upper()} {operation.path} ({mode}): {e}") from e
        tried += 1
    return tried


def test_the_fuzzer_reaches_real_items_and_manifests(app):
    """The index really holds what the generated ids and slugs may hit (so 200s are checked too)."""
    client = app.test_client()
    hits = client.get("/bookidx/api/search?q=woodcut").get_json()["hits"]
    assert hits and client.get(f"/bookidx/api/items/{hits[0]['id']}").status_code == 200
    manifest = client.get(f"/bookidx/iiif/{slug(IIIF_MANIFEST)}/manifest.json")
    assert manifest.status_code == 200 and json.loads(manifest.data)["id"] == IIIF_MANIFEST
