"""``bookidx remove``: take items out of an index (removal.py chooses, ``Index.remove`` deletes),
registered on the main group by importing this module (cli.py).

A running ``bookidx serve`` leaves the items out of its answers at once (hits are checked
against SQLite, queries.py), but its similarity searches may return fewer hits than asked until
its next refresh; one with ``BOOKIDX_REFRESH_SECONDS=None`` never refreshes, so restart it. A
later ``bookidx index`` of the same sources indexes them again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from .cli import _errors, cli

#: Entries shown by --dry-run.
EXAMPLES = 5


@cli.command("remove")
@click.option("--index", "index_dir", required=True, type=click.Path(exists=True, file_okay=False), help="Index directory.")
@click.option("--manifest", "manifests", multiple=True, metavar="ID",
              help="Items of this IIIF manifest or book id, as search --manifest takes it (repeatable).")
@click.option("--source", "sources", multiple=True, metavar="PREFIX",
              help="Items whose source document or page image (path, IIIF service or URL) is PREFIX or below it: "
                   "a folder takes the files under it, a URL the URLs below it (.../iiif/1 takes .../iiif/1/full/..., "
                   "not .../iiif/10) (repeatable). "
                   "Failure records of such images go too.")
@click.option("--id", "ids", multiple=True, type=int, metavar="ID", help="The item with this id, as search prints it (repeatable).")
@click.option("--missing", is_flag=True, help="Items whose local image file no longer exists (a folder moved or deleted).")
@click.option("--allow-all", is_flag=True, help="Allow a selection that takes every item (refused otherwise).")
@click.option("--dry-run", is_flag=True, help="Print what would be removed (how many, and a few of them); change nothing.")
@_errors
def remove_cmd(index_dir, manifests, sources, ids, missing, allow_all, dry_run):
    """Remove from an index the items that every selector given matches: --source DIR
    --missing takes the vanished files under DIR; several values of one selector are
    alternatives. A value that matches nothing is an error, and then nothing is removed.

    A running `bookidx serve` leaves them out of its answers at once, but may return fewer
    hits than asked until its next refresh: restart one with BOOKIDX_REFRESH_SECONDS=None,
    which never refreshes. `bookidx index` of the same source adds them again.
    """
    from .removal import Selection

    selection = Selection(tuple(manifests), tuple(sources), tuple(ids), missing, allow_all)  # no selector: an error
    with _open(index_dir, dry_run) as idx:
        entries = idx.select(selection)
        if not entries:
            click.echo("nothing to remove", err=True)
            return
        if dry_run:
            click.echo(f"would remove {_counted(entries)}:")
            for entry in entries[:EXAMPLES]:
                click.echo(f"  id {entry.key}  {entry.note}  {entry.where}".rstrip())
            if len(entries) > EXAMPLES:
                click.echo(f"  ... and {len(entries) - EXAMPLES} more")
            return
        idx.remove([entry.key for entry in entries])
        idx.commit()
    click.echo(f"removed {_counted(entries)} from {index_dir}")


def _open(index_dir: str, dry_run: bool):
    """The index, as its writer (which migrates an older schema) or, for a dry run, read-only.

    Raises:
        IndexMismatch: for a dry run, an older schema, saying that the removal itself would
            migrate it (a dry run writes nothing, so it cannot).
    """
    from . import meta
    from .errors import IndexMismatch
    from .store import Index

    try:
        return Index.open(index_dir, readonly=dry_run)
    except IndexMismatch:
        if not dry_run:
            raise
        with contextlib.closing(meta.connect(Path(index_dir) / meta.DB, readonly=True)) as con:
            version = meta.schema_version(con)
        if version >= meta.SCHEMA_VERSION:
            raise
        raise IndexMismatch(
            f"index schema {version}, this bookidx schema {meta.SCHEMA_VERSION}: a dry run changes nothing, so it "
            "cannot migrate the index as `bookidx remove` without --dry-run does; run "
            f"`bookidx upgrade {index_dir}` first to see what it would remove", index_dir,
        ) from None


def _counted(entries) -> str:
    """'3 items, 1 failure record': how many of each kind of entry."""
    names = {"items": ("item", "items"), "failures": ("failure record", "failure records"),
             "dropped": ("drop record", "drop records")}
    parts = []
    for table, (one, many) in names.items():
        n = sum(entry.table == table for entry in entries)
        if n or table == "items":
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)
