"""``bookidx serve DIR``: one collection on waitress, a production WSGI server in pure Python.

The app is nothing but the blueprint at ``/bookidx`` and a redirect from ``/`` to its search
page. The index is opened (and checked) before the first request, so a wrong path fails at
start-up rather than on the first visitor; the query model still loads on the first query that
needs it. Waitress serves requests from a pool of ``threads``; the index and the model are
shared by them (web/state.py).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Iterable

from flask import Flask, redirect, url_for

from ..errors import ConfigError
from . import config as defaults
from . import create_blueprint
from .state import normalise_settings

def create_app(index_dir: str, *, cors_origins: Iterable[str] = (), **config: Any) -> Flask:
    """A Flask app serving ``index_dir`` at ``/bookidx`` (``config``: BOOKIDX_* settings).

    Raises:
        ConfigError: the index cannot be opened.
    """
    app = Flask("bookidx.serve")
    app.register_blueprint(create_blueprint(index_dir, cors_origins=tuple(cors_origins), **config))
    app.add_url_rule("/", "home", lambda: redirect(url_for("bookidx.page")))
    with app.test_client() as client:  # open the index now: fail at start-up, not on a visitor
        answer = client.get("/bookidx/api/health")
        if answer.status_code != 200:
            raise ConfigError(answer.get_json()["detail"], "index")
    return app


def make_server(
    index_dir: str, host: str = "127.0.0.1", port: int = 8000, threads: int = 8,
    cors_origins: Iterable[str] = (), **config: Any,
) -> Any:
    """A ready waitress server (not yet running); ``.run()`` serves until :func:`shutdown`.

    ``port=0`` picks a free port; the bound one is ``server.effective_port``.
    """
    from waitress import create_server

    app = create_app(index_dir, cors_origins=cors_origins, **config)
    upload = normalise_settings(config).get("BOOKIDX_MAX_UPLOAD_BYTES", defaults.BOOKIDX_MAX_UPLOAD_BYTES)
    # Waitress refuses larger bodies before Flask sees them (plain-text 413); the blueprint's
    # JSON 413 for uploads over BOOKIDX_MAX_UPLOAD_BYTES applies below this backstop.
    body_limit = 2 * upload + 65536
    return create_server(app, host=host, port=port, threads=threads, ident="bookidx", max_request_body_size=body_limit)


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
    cors_origins: Iterable[str] = (), **config: Any,
) -> None:
    """Serve ``index_dir`` until interrupted (Ctrl-C). See :func:`make_server` for the arguments."""
    server = make_server(index_dir, host, port, threads, cors_origins, **config)
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
