"""The OpenAPI document declares exactly the parameters the views read, with the constraints
they enforce, whatever the server's settings (fetching by URL on or off, re-ranking on or off).

"Read" is observed, not listed by hand: the app's request class hands the views query strings
and forms that note every name asked for, so a view that starts reading a new parameter, or a
parameter the document declares but no view reads, fails here. The constraints are compared
the same way: a value the declared schema admits is accepted by the server, and one it refuses
is a 400 naming that parameter.
"""

from __future__ import annotations

import io

import jsonschema
import pytest
import referencing
from flask import Flask, Request, request
from werkzeug.datastructures import ImmutableMultiDict

from bookidx.embed import load_embedder
from bookidx.web import create_blueprint
from webindex import build_index, chapbook_regions, crop, image_server


class _Noted(ImmutableMultiDict):
    """Request parameters that note each name a view asks for (``lists()``, which only
    iterates, is not asking for a name)."""

    def _ask(self, key):
        self.__dict__.setdefault("asked", set()).add(key)

    def get(self, key, default=None, type=None):
        self._ask(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):
        self._ask(key)
        return super().getlist(key, type)

    def __getitem__(self, key):
        self._ask(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self._ask(key)
        return super().__contains__(key)


class _NotingRequest(Request):
    parameter_storage_class = _Noted


@pytest.fixture(scope="module")
def images():
    with image_server() as base:
        yield f"{base}/iiif/"


@pytest.fixture(scope="module")
def regions(chapbooks):
    return chapbook_regions(chapbooks, n=6)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, chapbooks, regions):
    path = tmp_path_factory.mktemp("openapi") / "idx"
    build_index(path, chapbooks, load_embedder("test-pixels"), regions)
    return path


@pytest.fixture(scope="module")
def upload(regions, chapbooks):
    buf = io.BytesIO()
    crop(regions[1], chapbooks).save(buf, "JPEG", quality=90)
    return buf.getvalue()


#: Server settings that change what may be asked: fetching by URL off (the default) or on,
#: re-ranking on (a shallow depth, to stay quick) or off.
CONFIGS = {
    "defaults": {"rerank_depth": 3},
    "fetching": {"rerank_depth": 3, "fetch_allowlist": None},  # None: the image server's prefix
    "no rerank": {"rerank_depth": 0, "fetch_allowlist": None},
}


def make_app(index_dir, images, config) -> Flask:
    config = {k: ([images] if k == "fetch_allowlist" else v) for k, v in config.items()}
    app = Flask(__name__)
    app.config["TESTING"] = True
    app.request_class = _NotingRequest
    app.register_blueprint(create_blueprint(str(index_dir), **config))
    app.extensions["asked"] = {}

    @app.after_request
    def note(response):
        for where, found in (("query", request.args), ("form", request.form), ("files", request.files)):
            app.extensions["asked"].setdefault(where, set()).update(found.__dict__.get("asked", ()))
        return response

    return app


def asked(app: Flask, call) -> dict[str, set[str]]:
    """The names ``call()`` had a view ask for, by where they come from (query, form, files)."""
    app.extensions["asked"].clear()
    call()
    return {where: set(names) for where, names in app.extensions["asked"].items()}


def declared(doc: dict, path: str, method: str) -> dict[str, dict]:
    """The operation's parameters (refs resolved), by name, and its form fields as "form:" + name."""
    operation = doc["paths"][path][method]
    out = {}
    for ref in operation.get("parameters", []):
        parameter = doc["components"]["parameters"][ref["$ref"].rsplit("/", 1)[1]] if "$ref" in ref else ref
        out[parameter["name"]] = parameter
    body = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
    for name, schema in (body or {}).get("schema", {}).get("properties", {}).items():
        out["form:" + name] = {"schema": schema}
    return out


def admits(doc: dict, schema: dict, value) -> bool:
    registry = referencing.Registry().with_resource("urn:openapi", referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012))
    return jsonschema.Draft202012Validator(schema, registry=registry).is_valid(value)


@pytest.mark.parametrize("config", CONFIGS)
def test_each_search_declares_exactly_the_parameters_its_view_reads(index_dir, images, regions, upload, config):
    app = make_app(index_dir, images, CONFIGS[config])
    client = app.test_client()
    doc = client.get("/bookidx/openapi.json").get_json()
    key = regions[0].key

    def get_text():
        assert client.get("/bookidx/api/search?q=ship&mode=keyword").status_code == 200

    def get_similar():
        assert client.get(f"/bookidx/api/search?similar={key}").status_code == 200

    def post_image():
        answer = client.post("/bookidx/api/search?limit=2", data={"image": (io.BytesIO(upload), "q.jpg")})
        assert answer.status_code == 200, answer.get_json()

    def item_similar():
        assert client.get(f"/bookidx/api/items/{key}/similar").status_code == 200

    get = set().union(*(asked(app, call)["query"] for call in (get_text, get_similar)))
    assert get == set(declared(doc, "/api/search", "get"))
    posted = asked(app, post_image)
    body = {"form:" + name for name in posted["form"] | posted["files"]}
    assert posted["query"] | body == set(declared(doc, "/api/search", "post"))
    assert asked(app, item_similar)["query"] | {"id"} == set(declared(doc, "/api/items/{id}/similar", "get"))


@pytest.mark.parametrize("config", CONFIGS)
def test_image_url_is_declared_with_what_the_server_fetches(index_dir, images, regions, config):
    """Declared whatever the settings; its schema admits a URL exactly when the server takes it."""
    client = make_app(index_dir, images, CONFIGS[config]).test_client()
    doc = client.get("/bookidx/openapi.json").get_json()
    schema = declared(doc, "/api/search", "get")["image_url"]["schema"]
    for url in (f"{images}p1/full/max/0/default.png", "https://elsewhere.example/a.png", images.replace("/iiif/", "/iiifx/")):
        answer = client.get("/bookidx/api/search", query_string={"image_url": url})
        taken = not (answer.status_code == 400 and answer.get_json()["parameter"] == "image_url")
        assert admits(doc, schema, url) == taken == (url.startswith(images) and config != "defaults"), (url, answer.get_json())
    # Empty is the same as absent, whatever the settings.
    assert admits(doc, schema, "") and client.get(f"/bookidx/api/search?image_url=&similar={regions[0].key}").status_code == 200


@pytest.mark.parametrize("config", CONFIGS)
def test_rerank_is_declared_with_what_the_server_does(index_dir, images, regions, upload, config):
    """Declared on both searches whatever the settings: true is admitted exactly where the
    server re-ranks that request (GET has a query image only by URL), and a 400 naming rerank
    where it does not."""
    client = make_app(index_dir, images, CONFIGS[config]).test_client()
    doc = client.get("/bookidx/openapi.json").get_json()
    fetching = "fetch_allowlist" in CONFIGS[config]
    # The request a client that follows the schema makes: with a query image where it can have one.
    by_url = {"image_url": f"{images}q.png"} if fetching else {"similar": str(regions[0].key)}
    for method in ("get", "post"):
        schema = declared(doc, "/api/search", method)["rerank"]["schema"]
        for value in (True, False):
            flag = {"rerank": str(value).lower()}
            if method == "get":
                answer = client.get("/bookidx/api/search", query_string=by_url | flag)
            else:
                answer = client.post("/bookidx/api/search", query_string=flag,
                                     data={"image": (io.BytesIO(upload), "q.jpg")})
            body = answer.get_json()
            taken = answer.status_code == 200
            assert taken or (answer.status_code == 400 and body["parameter"] == "rerank"), body
            assert admits(doc, schema, value) == taken, (method, value, body)
            expected = not value or (CONFIGS[config]["rerank_depth"] > 0 and (method == "post" or fetching))
            assert taken == expected, (method, value, body)


def test_an_upload_echoes_its_form_fields_and_not_what_it_ignores(index_dir, images, upload):
    """An upload's q and w are form fields: those are what its ``query`` says it understood,
    not a similar or image_url that its URL may carry and the view never reads."""
    client = make_app(index_dir, images, CONFIGS["fetching"]).test_client()
    answer = client.post("/bookidx/api/search?similar=1&image_url=x&w=0.9&mode=vector",
                         data={"image": (io.BytesIO(upload), "q.jpg"), "w": "1"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["query"] == {"mode": "vector", "w": "1"}
