"""Filters on search results as SQL over the ``items`` table (meta.py's schema): manifest or
book, canvas, region kinds and classes, a range of years, a near-duplicate group.

Pure: it builds a WHERE condition and its parameters, and reads the year of a free-text date
(the ``year`` column is filled with :func:`year_of` when an item is stored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest


@dataclass(frozen=True)
class Filters:
    """Constraints on search results, all optional and AND-ed.

    ``manifest`` matches a region's IIIF manifest id or its book id. ``date_from``/``date_to``
    are inclusive years compared with the first year in ``Book.date``; regions without a
    readable year are left out when either is set. ``group`` keeps the members of one
    near-duplicate group (dedup.py).
    """

    manifest: str | None = None
    book: str | None = None
    canvas: str | None = None
    kinds: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    date_from: int | None = None
    date_to: int | None = None
    group: int | None = None

    def __post_init__(self) -> None:
        # A bare string would otherwise be read as a tuple of its letters.
        for name in ("kinds", "classes"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if self.date_from is not None and self.date_to is not None and self.date_from > self.date_to:
            raise BadRequest(f"date_from {self.date_from} is after date_to {self.date_to}", "date_from")

    @property
    def empty(self) -> bool:
        return self == Filters()

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE condition on ``items`` (``"1"`` when empty) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.manifest is not None:
            clauses.append("(items.manifest = ? OR items.book = ?)")
            params += [self.manifest, self.manifest]
        for column in ("book", "canvas"):
            if getattr(self, column) is not None:
                clauses.append(f"items.{column} = ?")
                params.append(getattr(self, column))
        for column, values in (("kind", self.kinds), ("cls", self.classes)):
            if values:
                clauses.append(f"items.{column} IN ({', '.join('?' * len(values))})")
                params += list(values)
        if self.date_from is not None:
            clauses.append("items.year >= ?")
            params.append(int(self.date_from))
        if self.date_to is not None:
            clauses.append("items.year <= ?")
            params.append(int(self.date_to))
        if self.group is not None:
            clauses.append("items.grp = ?")
            params.append(int(self.group))
        return (" AND ".join(clauses) or "1"), params


_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")


def year_of(date: str) -> int | None:
    """The first plausible year in a free-text date ("c. 1800", "1823-02-17", "[1795?]")."""
    match = _YEAR.search(date or "")
    return int(match.group(1)) if match else None
