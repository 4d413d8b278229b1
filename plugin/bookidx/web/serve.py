"""``bookidx serve DIR``: one collection on waitress, a production WSGI server in pure Python.

The app is nothing but the blueprint at ``/bookidx`` and a redirect from ``/`` to its search
page. The index is opened (and checked) before the first request, so a wrong path fails at
start-up rather than on the first visitor; the query model still loads on the first query that
needs it. Waitress serves requests from a pool of ``threads``; the index and the model are
shared by them (web/state.py).

Settings: the ``BOOKIDX_*`` names of web/config.py, read from the environment and from
``--set NAME=VALUE`` (:func:`settings`); each value is parsed to its setting's type and then
checked as ``create_blueprint`` checks it (web/config.py's ``check``: finite, in range), and a
name that is not a setting is refused, as ``create_blueprint`` refuses it. Behind a reverse proxy,
waitress takes the scheme and host of links from a trusted proxy's X-Forwarded-* headers
(``trusted_proxy``, https://docs.pylonsproject.org/projects/waitress/en/stable/reverse-proxy.html),
or ``BOOKIDX_PUBLIC_URL`` names the public address outright.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import sys
import typing
from typing import Any, Iterable, Mapping

from flask import Flask, redirect, url_for

from ..errors import ConfigError
from . import config as defaults
from . import create_blueprint
from .state import normalise_settings

#: The headers a trusted proxy may set (as nginx, Apache, Caddy and Traefik send them): the
#: client's address, and the scheme, host and port the client asked for, which links are built on.
PROXY_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-port", "x-forwarded-proto"})


def settings(environ: Mapping[str, str], assignments: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """``BOOKIDX_*`` settings from environment variables, then ``NAME=VALUE`` assignments
    (which win; the prefix may be left out: ``fetch_allowlist=...``), parsed by their types.

    Returns:
        The settings, and a note for each ``BOOKIDX_*`` environment variable that is not a
        setting: those are left alone rather than refused, since other tools use the prefix too
        (``BOOKIDX_SHARED`` for the test corpus, ``BOOKIDX_SKIP_BROWSER`` in scripts/setup),
        and the note names the setting a misspelt one was probably meant to be.

    Raises:
        ConfigError: an assignment whose name is not a setting or that has no ``=``, or a value
            that is not of its setting's type; names the setting.
    """
    out, notes = {}, []
    known = defaults.names()
    for name, text in sorted(environ.items()):
        if not name.startswith("BOOKIDX_"):
            continue
        if name in known:
            out[name] = parse_setting(name, text)
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
        notes.append(f"environment variable {name} is not a bookidx serve setting; ignored"
                     + (f" (did you mean {close[0]}?)" if close else ""))
    for assignment in assignments:
        name, eq, text = assignment.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"{assignment!r} is not NAME=VALUE", "--set")
        out[defaults.full_name(name.strip())] = parse_setting(name.strip(), text)
    return out, notes


def parse_setting(name: str, text: str) -> Any:
    """``text`` as a value of the setting ``name`` (web/config.py gives the type): lists are
    comma-separated, whole numbers and decimals as Python writes them (no setting is a boolean),
    and an empty value or ``none`` is None where the setting may be None. The value then goes
    through the blueprint's own check (web/config.py's ``check``: finite, in range).

    Raises:
        ConfigError: ``name`` is not a setting, or ``text`` is not a value it takes.
    """
    full = defaults.full_name(name)
    if full not in defaults.names():
        raise ConfigError(f"not a bookidx setting; known: {', '.join(defaults.names())}", name)
    base, optional = defaults.kind(full)
    text = text.strip()
    if optional and text.lower() in ("", "none"):
        return None
    if typing.get_origin(base) is tuple:  # BOOKIDX_CORS_ORIGINS=https://a.org,https://b.org
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if base is str:
        return text
    if base in (int, float):
        try:
            return defaults.check(full, base(text))
        except ValueError:
            pass
    what = {int: "a whole number", float: "a number"}.get(base, getattr(base, "__name__", str(base)))
    raise ConfigError(f"{text!r} is not {what}" + (" or none" if optional else ""), full)


def create_app(index_dir: str, *, cors_origins: Iterable[str] = (), **config: Any) -> Flask:
    """A Flask app serving ``index_dir`` at ``/bookidx`` (``config``: BOOKIDX_* settings).

    Raises:
        ConfigError: the index cannot be opened.
    """
    app = Flask("bookidx.serve")
    if cors_origins:  # only when given: an empty tuple would override BOOKIDX_CORS_ORIGINS in ``config``
        config = {**config, "BOOKIDX_CORS_ORIGINS": tuple(cors_origins)}
    app.register_blueprint(create_blueprint(index_dir, **config))
    app.add_url_rule("/", "home", lambda: redirect(url_for("bookidx.page")))
    with app.test_client() as client:  # open the index now: fail at start-up, not on a visitor
        answer = client.get("/bookidx/api/health")
        if answer.status_code != 200:
            raise ConfigError(answer.get_json()["detail"], "index")
    return app


def make_server(
    index_dir: str, host: str = "127.0.0.1", port: int = 8000, threads: int = 8,
    cors_origins: Iterable[str] = (), trusted_proxy: str | None = None, **config: Any,
) -> Any:
    """A ready waitress server (not yet running); ``.run()`` serves until :func:`shutdown`.

    ``port=0`` picks a free port; the bound one is ``server.effective_port``. ``trusted_proxy``:
    the address of a reverse proxy (``*``: any peer) whose :data:`PROXY_HEADERS` are believed,
    so links in answers carry the scheme and host the client used (https behind a TLS proxy);
    those headers from any other peer are dropped.

    Raises:
        ConfigError: ``trusted_proxy`` is not an IP address or ``*`` (:func:`proxy_address`), the
            index cannot be opened, or ``host:port`` cannot be listened on (in use, not an
            address of this machine, no permission).
    """
    from waitress import create_server

    trusted_proxy = proxy_address(trusted_proxy) if trusted_proxy else None  # before the index is opened
    app = create_app(index_dir, cors_origins=cors_origins, **config)
    upload = normalise_settings(config).get("BOOKIDX_MAX_UPLOAD_BYTES", defaults.BOOKIDX_MAX_UPLOAD_BYTES)
    # Waitress refuses larger bodies before Flask sees them (plain-text 413); the blueprint's
    # JSON 413 for uploads over BOOKIDX_MAX_UPLOAD_BYTES applies below this backstop.
    body_limit = 2 * upload + 65536
    proxy = {"trusted_proxy": trusted_proxy, "trusted_proxy_headers": set(PROXY_HEADERS)} if trusted_proxy else {}
    try:
        return create_server(
            app, host=host, port=port, threads=threads, ident="bookidx", max_request_body_size=body_limit, **proxy,
        )
    except OSError as e:  # EADDRINUSE, EADDRNOTAVAIL, EACCES (a port below 1024), an unknown host name
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}", "port") from None


def proxy_address(value: str) -> str:
    """``--trusted-proxy`` as waitress compares it with each peer's address: ``*`` (any peer),
    or an IP address written as the socket writes it (``::1``, not ``0:0:0:0:0:0:0:1``).

    Waitress compares the two as strings, so a host name (``localhost``) or an IPv6 address
    written another way would silently never be trusted, and links would stay http on the
    internal host.

    Raises:
        ConfigError: ``value`` is neither ``*`` nor an IP address.
    """
    value = value.strip()
    if value == "*":
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ConfigError(f"{value!r} is not an IP address (nor '*'): the proxy is recognised by the address it "
                          "connects from, such as 127.0.0.1 or ::1, not by a name", "--trusted-proxy") from None


def _loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (the address listened on)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to a public interface
        return False


def shutdown(server: Any) -> None:
    """Stop a server that :func:`make_server` made and another thread ``.run()`` s; thread-safe.

    Waitress's ``close()`` from another thread closes sockets its loop may be waiting on in
    ``select`` (EBADF in the serving thread). Instead the loop is woken through its trigger and
    closes every socket itself, so ``run()`` returns; then the worker threads are stopped.
    """
    def close_all() -> None:  # runs in the serving thread, between two selects
        for channel in list(server._map.values()):
            channel.close()

    server.trigger.pull_trigger(close_all)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)


def serve(
    index_dir: str, host: str = "127.0.0.1", port: int = 8000, threads: int = 8,
    cors_origins: Iterable[str] = (), trusted_proxy: str | None = None, **config: Any,
) -> None:
    """Serve ``index_dir`` until interrupted (Ctrl-C). See :func:`make_server` for the arguments."""
    server = make_server(index_dir, host, port, threads, cors_origins, trusted_proxy, **config)
    if trusted_proxy and trusted_proxy.strip() == "*" and not _loopback(host):
        print(f"bookidx: warning: --trusted-proxy '*' believes the X-Forwarded-* headers of every client, and {host} "
              "can be reached from other machines: any client can choose the scheme and host of the links it is "
              "sent. Give the proxy's address instead, or listen on 127.0.0.1 behind it.", file=sys.stderr, flush=True)
    # waitress warns "Task queue depth is N" on every queued request: under load that is tens of
    # thousands of lines a minute (docs/reliability.md). Queueing is normal; errors still show.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # Printed, not logged: the CLI keeps bookidx's loggers quiet, and this line is the one a
    # user needs (the address, with the port actually bound).
    print(f"bookidx: serving {index_dir} on http://{host}:{server.effective_port}/bookidx/", file=sys.stderr, flush=True)
    try:
        server.run()
    finally:
        server.close()
