"""docs/quality.md: the defaults its command synopsis shows are the commands' real defaults."""

from __future__ import annotations

import re

import click

from bookidx.cli import cli
from bookidx.options import web_default

from conftest import ROOT

_SHOWN = re.compile(r"\[(--[a-z-]+) ([0-9][0-9.]*)\]")  # "[--n 200]": an option shown with its default


def _synopsis() -> dict[tuple[str, ...], str]:
    """Each ``bookidx …`` command of the first code block, its continuation lines joined on."""
    block = (ROOT / "docs/quality.md").read_text().split("```")[1]
    commands: dict[tuple[str, ...], str] = {}
    for line in block.strip("\n").splitlines():
        if line.startswith("bookidx "):
            words = tuple(line.split()[1:3])
            commands[words] = line
        else:
            commands[words] += line
    return commands


def _default(command: click.Command, name: str) -> float:
    """What the option takes when not given: its default, else the '[default: N' its help states."""
    option = next(p for p in command.params if name in p.opts)
    if option.default is not None:
        return float(option.default)
    return float(re.search(r"\[default: ([0-9.]+)", option.help).group(1))


def test_eval_synopsis_shows_the_real_defaults():
    import bookidx.eval_cli  # noqa: F401  (registers `bookidx eval`)

    synopsis = _synopsis()
    assert set(synopsis) == {("eval", "exact"), ("eval", "queries")}
    checked = 0
    for (group, name), line in synopsis.items():
        command = cli.commands[group].commands[name]
        for option, shown in _SHOWN.findall(line):
            assert float(shown) == _default(command, option), f"bookidx {group} {name} {option}"
            checked += 1
    assert checked == 5  # --n, --seed, --rerank-depth; --depth, --rerank-depth
    # --rerank-depth's default is the web API's BOOKIDX_RERANK_DEPTH, which its help names
    assert _default(cli.commands["eval"].commands["exact"], "--rerank-depth") == web_default("BOOKIDX_RERANK_DEPTH", None)
