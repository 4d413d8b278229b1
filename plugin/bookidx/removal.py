"""Which entries of an index a removal takes (``bookidx remove``; ``Index.remove`` deletes them).

An entry is an indexed item, a failure record or a drop record (meta.py). The selectors are the
handles a user has:

- ``manifests``: an item's IIIF manifest id or book id, as ``search --manifest`` takes it;
- ``sources``: a prefix of where an entry came from. An item matches by its source document
  (``Region.source``, as given to ``bookidx index``) or its page image (file path, IIIF Image
  service or URL); a failure by the image it names. A local path matches whole path components
  (``/data/images`` takes ``/data/images/1.jpg``, not ``/data/images-moved/1.jpg``), relative
  paths from the current folder and as written; a URL likewise (``.../iiif/1`` takes
  ``.../iiif/1/full/...`` and ``.../iiif/1?page=2``, not ``.../iiif/10``; one ending in ``/``
  takes everything after it);
- ``ids``: keys, as search prints them (``id 7753...``);
- ``missing``: items (and failures) of a local image file that no longer exists: a folder moved
  or deleted after indexing.

Values of one selector are alternatives, different selectors must all hold (as search filters
do), so ``sources=("/old",), missing=True`` takes only the vanished files under ``/old``. Each
manifest, source and id value must match some entry (of those the other two of these select),
or it is an error naming it: a typo removes nothing. ``missing`` may take nothing. A selection
that takes every item is refused unless ``allow_all``: an unmounted disk makes every file look
missing, and ``--source /`` is rarely meant.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Iterator

from .adapters.uris import is_url, uri_to_path
from . import meta
from .errors import BadRequest, NotFound


@dataclass(frozen=True)
class Selection:
    """What to remove; see the module docstring. At least one selector must be given."""

    manifests: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    missing: bool = False
    allow_all: bool = False

    def __post_init__(self) -> None:
        for name in ("manifests", "sources", "ids"):  # a bare string is not a tuple of letters
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, (str, int)) else tuple(value))
        object.__setattr__(self, "ids", tuple(int(k) for k in self.ids))
        if not (self.manifests or self.sources or self.ids or self.missing):
            raise BadRequest("say what to remove: --manifest, --source, --id or --missing", "selector")
        for name in ("manifests", "sources"):
            if any(not value.strip() for value in getattr(self, name)):
                raise BadRequest("an empty value matches nothing", f"--{name[:-1]}")


@dataclass(frozen=True)
class Entry:
    """One entry a removal takes: ``table`` is items, failures or dropped; ``note`` says what it
    is (an item's kind, why it failed, the class it was left out as); ``where`` its image."""

    key: int
    table: str
    note: str
    where: str


@dataclass(frozen=True)
class _Row:
    """What the selectors look at, for any kind of entry (None: the entry has no such thing)."""

    entry: Entry
    manifests: tuple[str, ...] = ()
    places: tuple[str, ...] = ()  # source document and image references
    local_image: str | None = None  # an absolute path, for `missing`


def select(con: sqlite3.Connection, selection: Selection) -> list[Entry]:
    """The entries ``selection`` takes, items first, each once (read in one transaction).

    Raises:
        NotFound: a manifest, source or id value that takes nothing (naming it).
        BadRequest: the selection takes every item and ``allow_all`` is not set.
    """
    with meta.read_together(con):
        n_items = con.execute("SELECT count(*) FROM items").fetchone()[0]
        chosen, used = [], {"manifest": set(), "source": set(), "id": set()}
        prefixes = {source: _Prefix.of(source) for source in selection.sources}
        for row in _rows(con, selection):
            matched, taken = _matches(row, selection, prefixes)
            if taken:
                chosen.append(row.entry)
            for name, value in matched:
                used[name].add(value)
    given = {"manifest": selection.manifests, "source": selection.sources, "id": selection.ids}
    for name, values in given.items():
        for value in values:
            if value not in used[name]:
                others = " and ".join(f"--{other}" for other in given if other != name and given[other])
                raise NotFound(f"{value!r} matches nothing" + (f" together with {others}" if others else "")
                               + "; nothing was removed", f"--{name}")
    items = sum(entry.table == "items" for entry in chosen)
    if n_items and items == n_items and not selection.allow_all:
        raise BadRequest(
            f"this selects every item of the index ({n_items}); nothing was removed. Give --allow-all if that is "
            "meant (a disk not mounted makes every file look missing)", "selector",
        )
    return chosen


def _rows(con: sqlite3.Connection, selection: Selection) -> Iterator[_Row]:
    """Every entry that may match, narrowed in SQL by the indexed columns (manifest, key)."""
    where, params = ["1"], []
    if selection.manifests:
        where.append("(manifest IN (SELECT value FROM json_each(?)) OR book IN (SELECT value FROM json_each(?)))")
        params += [json.dumps(selection.manifests)] * 2
    if selection.ids:
        where.append("key IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(selection.ids))
    image = "json_extract(region_json, '$.page.image.{}')"
    sql = f"""SELECT key, manifest, book, kind, json_extract(region_json, '$.source'),
                     {image.format('path')}, {image.format('service')}, {image.format('url')}
              FROM items WHERE {' AND '.join(where)} ORDER BY manifest, page, key"""
    for key, manifest, book, kind, source, path, service, url in con.execute(sql, params):
        shown = path or service or url or ""
        yield _Row(Entry(key, "items", kind, shown), tuple(m for m in (manifest, book) if m),
                   tuple(p for p in (source, path, service, url) if p), path or None)
    if selection.manifests:  # failure and drop records have no manifest
        return
    keys = "WHERE key IN (SELECT value FROM json_each(?))" if selection.ids else ""
    args = [json.dumps(selection.ids)] if selection.ids else []
    for key, source, stage, reason in con.execute(f"SELECT key, source, stage, reason FROM failures {keys} ORDER BY key", args):
        # "" is a failure without an image (crops.py: a layout file that names none): nothing
        # is missing, and no path is under any folder.
        local = None if not source or is_url(source) else source
        yield _Row(Entry(key, "failures", f"failed ({stage}: {reason})", source), (), (source,) if source else (), local)
    if selection.ids and not (selection.sources or selection.missing):  # drop records have keys only
        for key, cls in con.execute(f"SELECT key, cls FROM dropped {keys} ORDER BY key", args):
            yield _Row(Entry(key, "dropped", f"left out as {cls}", ""))


def _matches(row: _Row, selection: Selection, prefixes: dict[str, _Prefix]) -> tuple[list[tuple[str, object]], bool]:
    """The manifest, id and source values that match ``row`` where the other two selectors
    (those given) take it too, and whether every selector given takes it.

    A value counts as matched only beside the others: with ``--manifest A --manifest B --source
    /x``, B's items outside /x do not make B a value that matched something.
    """
    found = {
        "manifest": [m for m in selection.manifests if m in row.manifests],
        "id": [k for k in selection.ids if k == row.entry.key],
        "source": [s for s in selection.sources if any(prefixes[s].takes(place) for place in row.places)],
    }
    given = {"manifest": selection.manifests, "id": selection.ids, "source": selection.sources}
    matched = [(name, value) for name, values in found.items()
               if all(found[other] for other in given if other != name and given[other]) for value in values]
    taken = all(found[name] for name in given if given[name])
    if taken and selection.missing:
        taken = row.local_image is not None and not os.path.exists(row.local_image)
    return matched, taken


@dataclass(frozen=True)
class _Prefix:
    """A ``--source`` value in the forms places are compared with, worked out once per removal
    rather than once per entry and place."""

    url: str | None  # an http(s) URL: matched by whole path segments
    paths: tuple[str, ...] = ()  # otherwise the local path, normalised and absolute

    @classmethod
    def of(cls, prefix: str) -> "_Prefix":
        if is_url(prefix) and not prefix.lower().startswith("file:"):
            return cls(prefix)
        path = uri_to_path(prefix)
        # Recorded paths are absolute (images) or as given to `bookidx index` (sources).
        return cls(None, tuple({os.path.normpath(path), os.path.abspath(path)}))

    def takes(self, place: str) -> bool:
        """Whether ``place`` (a path or URL an entry records) is this prefix or below it."""
        if self.url is not None:
            # Whole path segments, as for folders: .../iiif/1 takes .../iiif/1/full/... and
            # .../iiif/1?page=2, not .../iiif/10.
            p = self.url
            return place.startswith(p) and (len(place) == len(p) or p.endswith("/") or place[len(p)] in "/?#")
        if is_url(place):
            return False
        place = os.path.normpath(place)
        return any(place == p or place.startswith(p.rstrip(os.sep) + os.sep) for p in self.paths)
