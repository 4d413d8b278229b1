"""Command-line options that several commands share, and the web API's defaults they fall back to.

``bookidx search`` and ``bookidx eval`` re-rank as the web API does, with its defaults
(``BOOKIDX_RERANK_DEPTH``, ``BOOKIDX_RERANK_SECONDS`` in web/config.py), so a query ranks alike
on the command line and in the widget. An option's default is None, which :func:`web_default`
turns into the web API's value when the command runs; the help states that value rather than
reading it, so that `bookidx --help` need not import Flask (test_cli_errors.py and
test_cli_rerank.py check the two agree). This module imports neither the CLI group nor Flask,
so every command module can take from it.
"""

from __future__ import annotations

import math
from typing import TypeVar

import click

T = TypeVar("T")


def web_default(name: str, given: T | None) -> T:
    """``given``, or where it is None the web API's default for the setting ``name`` (web/config.py)."""
    from .web import config

    return getattr(config, name) if given is None else given


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A finite number of seconds: FloatRange takes ``inf`` and ``nan``, which break timeouts."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds (0: no limit)")
    return value


#: --rerank-depth of search and eval.
RERANK_DEPTH = click.option("--rerank-depth", type=click.IntRange(min=1), default=None,
                            help="Hits checked by --rerank.  [default: 100, the web API's BOOKIDX_RERANK_DEPTH]")

#: --rerank-seconds of search: the budget for reading candidates (rerank_budget.py holds to it).
RERANK_SECONDS = click.option(
    "--rerank-seconds", type=click.FloatRange(min=0), default=None, callback=_finite,
    help="Seconds --rerank may spend reading the hits' pixels (files, IIIF servers); hits not read by then are "
         "shown as not checked, and a read still running then is stopped, so a slow or unreachable image "
         "server holds the command no longer than this. 0: no limit (each read up to 20 s). "
         "[default: 5, the web API's BOOKIDX_RERANK_SECONDS]")
