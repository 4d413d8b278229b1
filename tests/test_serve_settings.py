"""``bookidx serve`` settings and deployment: BOOKIDX_* from the environment and ``--set``,
links behind a trusted reverse proxy, and a port in use.

The first test runs the real command (``tests/pixelcli.py serve``) as a process with the
environment a deployment gives it, and asks it over HTTP; the proxy tests run waitress in a
thread, as test_web_server.py does, and stop it with ``bookidx.web.serve.shutdown``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from bookidx.cli import cli
from bookidx.errors import ConfigError
from bookidx.web import create_blueprint
from bookidx.web import config
from bookidx.web.config import check, kind, names
from bookidx.web.serve import make_server, parse_setting, settings, shutdown
from bookidx.web.state import normalise_settings
from click.testing import CliRunner
from flask import Flask
from webindex import TWIN_A, TWIN_B

PIXELCLI = Path(__file__).with_name("pixelcli.py")
PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "lib.example.org"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# For CliRunner, which unsets a variable given as None: the tests' own BOOKIDX_SHARED (or any
# BOOKIDX_* of the machine) would add serve's "not a setting" warning to the output checked.
UNSET_BOOKIDX = {name: None for name in os.environ if name.startswith("BOOKIDX_")}


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without BOOKIDX_* (BOOKIDX_SHARED may be set), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("BOOKIDX_")}, **extra}


def wait_for(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if requests.get(base + "/bookidx/api/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError("serve did not answer within 60 s")


def test_serve_command_takes_settings_from_the_environment_and_set(pixel_index, regions):
    """The review's case: BOOKIDX_FETCH_ALLOWLIST in the environment enables image_url (it was
    ignored: 400 "BOOKIDX_FETCH_ALLOWLIST is empty"), and --set overrides a setting."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(BOOKIDX_FETCH_ALLOWLIST=f"https://nowhere.example/, {base}/bookidx/crops/", BOOKIDX_MAX_RESULTS="5")
    proc = subprocess.Popen(
        [sys.executable, str(PIXELCLI), "serve", str(pixel_index), "--port", str(port), "--set", "max_results=3"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        wait_for(base, proc)
        a, b = (next(r for r in regions if r.source == name) for name in (TWIN_A, TWIN_B))
        found = requests.get(base + "/bookidx/api/search", params={"image_url": f"{base}/bookidx/crops/{a.key}.jpg", "limit": 2}, timeout=30)
        assert found.status_code == 200, found.text
        assert [h["id"] for h in found.json()["hits"]] == [str(a.key), str(b.key)]
        over = requests.get(base + "/bookidx/api/search", params={"q": "woodcut", "limit": 4}, timeout=10)
        assert over.status_code == 400 and over.json()["parameter"] == "limit"  # --set max_results=3 won over 5
    finally:
        proc.terminate()
        proc.wait(10)


def test_settings_are_parsed_by_their_types_and_bad_ones_name_the_setting():
    values, notes = settings(
        {"BOOKIDX_FETCH_ALLOWLIST": "https://a.org/, https://b.org/", "BOOKIDX_MAX_RESULTS": "50",
         "BOOKIDX_REFRESH_SECONDS": "none", "BOOKIDX_RERANK_SECONDS": "2.5", "PATH": "/bin",
         "BOOKIDX_FETCH_ALOWLIST": "https://typo.org/", "BOOKIDX_SHARED": "/corpus"},
        ["public_url=https://lib.example.org/", "BOOKIDX_MAX_RESULTS=20"],
    )
    assert values == {
        "BOOKIDX_FETCH_ALLOWLIST": ("https://a.org/", "https://b.org/"), "BOOKIDX_MAX_RESULTS": 20,
        "BOOKIDX_REFRESH_SECONDS": None, "BOOKIDX_RERANK_SECONDS": 2.5, "BOOKIDX_PUBLIC_URL": "https://lib.example.org/",
    }
    # Other tools use the prefix too: not refused, but a misspelt setting is named with its likely meaning.
    assert notes == [
        "environment variable BOOKIDX_FETCH_ALOWLIST is not a bookidx serve setting; ignored (did you mean BOOKIDX_FETCH_ALLOWLIST?)",
        "environment variable BOOKIDX_SHARED is not a bookidx serve setting; ignored",
    ]
    for name, text, message in (
        ("BOOKIDX_MAX_RESULTS", "ten", "'ten' is not a whole number"),
        ("BOOKIDX_REFRESH_SECONDS", "soon", "'soon' is not a number or none"),
        ("BOOKIDX_RERANK_SECONDS", "", "'' is not a number"),
    ):
        with pytest.raises(ConfigError, match=message) as err:
            parse_setting(name, text)
        assert err.value.parameter == name
    with pytest.raises(ConfigError, match="not a bookidx setting; known: .*BOOKIDX_FETCH_ALLOWLIST") as err:
        settings({}, ["fetch_alowlist=https://a.org/"])
    assert err.value.parameter == "fetch_alowlist"
    with pytest.raises(ConfigError, match="is not NAME=VALUE"):
        settings({}, ["max_results"])


def test_a_bad_setting_is_a_one_line_error_before_serving(pixel_index, monkeypatch):
    for name in [k for k in os.environ if k.startswith("BOOKIDX_")]:
        monkeypatch.delenv(name)
    with socket.socket() as taken:  # were the setting not checked first, serving would fail here, not hang
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        res = CliRunner().invoke(cli, ["serve", str(pixel_index), "--port", port], env={"BOOKIDX_MAX_RESULTS": "lots"})
        assert res.exit_code == 1 and res.output == "error: BOOKIDX_MAX_RESULTS: 'lots' is not a whole number\n"
        res = CliRunner().invoke(cli, ["serve", str(pixel_index), "--port", port, "--set", "max_resultz=5"])
        assert res.exit_code == 1 and res.output.startswith("error: max_resultz: not a bookidx setting")
        # The review's case: inf seconds started the server, then every re-ranked query was a 500.
        res = CliRunner().invoke(cli, ["serve", str(pixel_index), "--port", port], env={"BOOKIDX_RERANK_SECONDS": "inf"})
        assert res.exit_code == 1 and res.output == "error: BOOKIDX_RERANK_SECONDS: inf is not a finite number\n"
        res = CliRunner().invoke(cli, ["serve", str(pixel_index), "--port", port, "--set", "max_results=-5"])
        assert res.exit_code == 1 and res.output == "error: BOOKIDX_MAX_RESULTS: must be more than 0, not -5\n"


#: Every number setting and its type.
NUMBERS = {name: kind(name)[0] for name in names() if kind(name)[0] in (int, float)}


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_every_number_setting_refuses_what_it_cannot_use_at_start_up(name, pixel_index):
    """A value out of range or not finite is refused however it is given: ``--set`` and the
    environment, ``create_blueprint``'s keywords, and a host's ``app.config``, which fails at
    ``register_blueprint`` (before, each was taken and failed per request, or never)."""
    bad = ["-1", "nan"] + (["inf", "-inf"] if NUMBERS[name] is float else ["1.5"])
    if name in ("BOOKIDX_RERANK_SECONDS", "BOOKIDX_MAX_RESULTS", "BOOKIDX_MAX_DEPTH"):
        bad.append("0")
    for text in bad:
        with pytest.raises(ConfigError) as err:
            settings({}, [f"{name}={text}"])
        assert err.value.parameter == name, text
        value = float(text)
        value = int(value) if NUMBERS[name] is int and value.is_integer() else value  # -1, not -1.0: in range's way
        with pytest.raises(ConfigError) as err:
            create_blueprint(str(pixel_index), **{name.removeprefix("BOOKIDX_").lower(): value})
        assert err.value.parameter == name, text
        app = Flask(__name__)
        app.config[name] = value
        with pytest.raises(ConfigError) as err:
            app.register_blueprint(create_blueprint(str(pixel_index)))
        assert err.value.parameter == name, text
    good = 0 if name in ("BOOKIDX_REFRESH_SECONDS", "BOOKIDX_CROP_CACHE_BYTES", "BOOKIDX_RERANK_DEPTH") else 1
    assert settings({}, [f"{name}={good}"])[0] == {name: good}
    app = Flask(__name__)
    app.config[name] = good
    app.register_blueprint(create_blueprint(str(pixel_index), name="ok"))


def test_a_host_s_bad_config_fails_at_registration_naming_the_setting(pixel_index):
    """Any Flask app mounting the blueprint, not only ``bookidx serve``: a wrong type too."""
    for name, value, message in (
        ("BOOKIDX_RERANK_SECONDS", float("inf"), "inf is not a finite number"),
        ("BOOKIDX_MAX_RESULTS", "50", "'50' is not a whole number"),
        ("BOOKIDX_RERANK_DEPTH", True, "True is not a whole number"),
        ("BOOKIDX_FETCH_ALLOWLIST", [1], "is not a list of strings"),
        ("BOOKIDX_DEVICE", None, "None is not allowed"),
    ):
        app = Flask(__name__)
        app.config[name] = value
        with pytest.raises(ConfigError, match=message) as err:
            app.register_blueprint(create_blueprint(str(pixel_index)))
        assert err.value.parameter == name
    # What the blueprint's own keywords say wins over the host's config, and is what is checked.
    app = Flask(__name__)
    app.config["BOOKIDX_MAX_RESULTS"] = -1
    app.register_blueprint(create_blueprint(str(pixel_index), max_results=10))


def test_host_configs_that_worked_before_values_were_checked_still_serve(pixel_index):
    """The review's cases: ``BOOKIDX_INDEX_PATH = pathlib.Path(...)`` (a common Flask idiom) and
    ``BOOKIDX_RERANK_DEPTH = None`` (off: the reader took ``int(depth or 0)``) were refused at
    ``register_blueprint`` once values were checked; so were None allow-lists (``value or ()``)."""
    app = Flask(__name__)
    app.config.update(BOOKIDX_INDEX_PATH=Path(pixel_index), BOOKIDX_RERANK_DEPTH=None,
                      BOOKIDX_FETCH_ALLOWLIST=None, BOOKIDX_CORS_ORIGINS=None)
    app.register_blueprint(create_blueprint())
    client = app.test_client()
    found = client.get("/bookidx/api/search", query_string={"q": "ship"})
    assert found.status_code == 200 and found.get_json()["hits"], found.get_json()
    rerank = client.get("/bookidx/openapi.json").get_json()["components"]["parameters"]["rerank"]
    assert rerank["schema"]["const"] is False and "does not re-rank" in rerank["description"]
    # The blueprint's keywords take them too, and keep them as the settings' own types.
    overrides = normalise_settings({"index_path": Path(pixel_index), "rerank_depth": None, "fetch_allowlist": None})
    assert overrides == {"BOOKIDX_INDEX_PATH": str(pixel_index), "BOOKIDX_RERANK_DEPTH": 0, "BOOKIDX_FETCH_ALLOWLIST": ()}
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(index_path=Path(pixel_index), rerank_depth=None))
    assert app.test_client().get("/bookidx/api/search", query_string={"q": "ship"}).status_code == 200


def test_every_setting_s_default_passes_its_own_check():
    for name in names():
        assert check(name, getattr(config, name)) == getattr(config, name), name


def test_a_port_in_use_is_a_one_line_error_naming_it(pixel_index):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = CliRunner().invoke(cli, ["serve", str(pixel_index), "--port", str(port)], env=UNSET_BOOKIDX)
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines() == [f"error: port: cannot listen on 127.0.0.1:{port}: Address already in use"]


def links_seen(pixel_index, headers: dict[str, str], **options) -> tuple[str, dict]:
    """The base URL of a waitress server started with ``options``, and the first hit of a
    keyword search asked with ``headers`` (as a reverse proxy would pass them on)."""
    server = make_server(str(pixel_index), "127.0.0.1", 0, threads=2, **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.effective_port}"
        answer = requests.get(base + "/bookidx/api/search", params={"q": "ship"}, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return base, answer.json()["hits"][0]
    finally:
        shutdown(server)
        thread.join(5)


def test_a_trusted_proxy_makes_https_links_on_its_host(pixel_index):
    _, hit = links_seen(pixel_index, PROXIED, trusted_proxy="127.0.0.1")
    for url in (hit["thumbnail"], hit["links"]["self"], hit["links"]["similar"]):
        assert url.startswith("https://lib.example.org/bookidx/"), url


def test_proxy_headers_from_anyone_else_are_ignored(pixel_index):
    for options in ({}, {"trusted_proxy": "192.0.2.7"}):  # no proxy trusted, or another one
        base, hit = links_seen(pixel_index, PROXIED, **options)
        assert hit["links"]["self"].startswith(base + "/bookidx/"), (options, hit["links"])


def test_a_trusted_proxy_written_another_way_is_still_trusted(pixel_index):
    """Waitress compares the address as a string with the peer's: ``0:0:0:0:0:0:0:1`` never
    matched ``::1``, so links silently stayed http on the internal host."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = make_server(str(pixel_index), "::1", 0, threads=2, trusted_proxy="0:0:0:0:0:0:0:1")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        answer = requests.get(f"http://[::1]:{server.effective_port}/bookidx/api/search", params={"q": "ship"},
                              headers=PROXIED, timeout=10)
        assert answer.json()["hits"][0]["links"]["self"].startswith("https://lib.example.org/bookidx/")
    finally:
        shutdown(server)
        thread.join(5)


def test_a_trusted_proxy_that_is_no_address_is_a_one_line_error(pixel_index):
    """``localhost`` was taken and never matched a peer (waitress compares addresses as strings)."""
    with socket.socket() as taken:  # were the address not checked first, serving would fail here, not hang
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for proxy in ("localhost", "10.0.0.300", "proxy.example.org"):
            res = CliRunner().invoke(cli, ["serve", str(pixel_index), "--port", port, "--trusted-proxy", proxy],
                                    env=UNSET_BOOKIDX)
            assert res.exit_code == 1, res.output
            assert res.output.startswith(f"error: --trusted-proxy: {proxy!r} is not an IP address (nor '*')"), res.output


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("127.0.0.1", False)])
def test_trusting_any_proxy_on_a_public_interface_is_warned_about(pixel_index, host, warned):
    """With ``*``, any client that reaches the server can choose the host of its links."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(PIXELCLI), "serve", str(pixel_index), "--host", host, "--port", str(port), "--trusted-proxy", "*"],
        env=clean_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert ("warning: --trusted-proxy '*' believes the X-Forwarded-* headers of every client" in err) == warned, err
