"""Items named in CSV files: image file names or item ids as item keys, and known-duplicate pairs.

Evaluation files name items the way people do: by the image's file name (the last part of its
path, URL or IIIF service id, as in the NLS chapbooks' ``candidate_near_duplicate_pairs.csv``)
or by item id. :func:`resolve` maps such references to item keys (a page with several pictures
gives several); :func:`read_duplicates` reads a file of duplicate pairs, which the exact-image
protocol (evaluate.py) counts as hits, and :func:`csv_rows` reads the CSV files of labelled.py.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .adapters.records import Region
from .errors import SourceError
from .store import Index

PAGE = 10_000  # items read at a time when the index is walked (names to keys, samples)


def region_name(region: Region) -> str:
    """The file name a CSV names ``region`` by: its image's, else its canvas id."""
    ref = region.page.image
    return os.path.basename((ref.path or ref.url or ref.service or "").rstrip("/")) or region.page.id


def keys_by_name(index: Index, names: Iterable[str]) -> dict[str, set[int]]:
    """Item keys of each image file name (the last part of the image's path or URL).

    A name can map to several items (a page with several pictures); unknown names map to none.
    """
    wanted = {os.path.basename(n.strip()) for n in names if n.strip()}
    found: dict[str, set[int]] = {}
    offset = 0
    while True:
        page = index.items(limit=PAGE, offset=offset)
        for key, region in page:
            name = region_name(region)
            if name in wanted:
                found.setdefault(name, set()).add(key)
        if len(page) < PAGE:
            return found
        offset += PAGE


def resolve(index: Index, refs: Sequence[str]) -> tuple[list[set[int]], list[str]]:
    """Each ref (an item id or an image file name) as item keys; also the refs that match nothing."""
    names = [r for r in refs if not r.strip().isdigit()]
    by_name = keys_by_name(index, names) if names else {}
    ids = [int(r) for r in refs if r.strip().isdigit()]
    present = {int(k) for k, ok in zip(ids, index.has(ids)) if ok} if ids else set()
    out, missing = [], []
    for ref in refs:
        ref = ref.strip()
        keys = ({int(ref)} & present) if ref.isdigit() else by_name.get(os.path.basename(ref), set())
        out.append(keys)
        if not keys:
            missing.append(ref)
    return out, missing


def read_duplicates(path: str | Path, index: Index) -> tuple[dict[int, frozenset[int]], list[str]]:
    """Known duplicate pairs from a CSV file, as item key → keys of its duplicates (symmetric).

    The file has pairs of image file names or item ids: columns ``file_a,file_b`` (any other
    columns are ignored, as in the NLS chapbooks' ``candidate_near_duplicate_pairs.csv``) or,
    without such a header, the first two columns. Returns the mapping and the names that match
    no indexed item.

    Raises:
        SourceError: the file cannot be read or has fewer than two columns.
    """
    rows = csv_rows(path)
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "file_a" in header and "file_b" in header:
        a, b = header.index("file_a"), header.index("file_b")
        rows = rows[1:]
    else:
        a, b = 0, 1
    pairs = []
    for line, row in enumerate(rows, 2 if header and "file_a" in header else 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) <= max(a, b):
            raise SourceError(f"line {line}: a duplicate pair needs two columns", parameter=str(path))
        pairs.append((row[a].strip(), row[b].strip()))
    keys, missing = resolve(index, [ref for pair in pairs for ref in pair])
    out: dict[int, set[int]] = {}
    for i in range(0, len(keys), 2):
        for x in keys[i]:
            for y in keys[i + 1]:
                if x != y:
                    out.setdefault(x, set()).add(y)
                    out.setdefault(y, set()).add(x)
    return {k: frozenset(v) for k, v in out.items()}, sorted(set(missing))


def csv_rows(path: str | Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [row for row in csv.reader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"unreadable CSV: {e}", parameter=str(path)) from None
