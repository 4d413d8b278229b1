"""Re-ranking for one query that then exits (``bookidx search --rerank``): every candidate read
ends when the query's budget does.

The web API's re-ranker (rerank.py) gives each candidate fetch a deadline of its own
(``READ_DEADLINE``): a read still running when its query's budget ends goes on, to fill the
cache for the next visitor. A command has no next query, and a process waits for its reading
threads before it exits, so there a read started near the budget's end held the command for
up to a second budget. Here each fetch gets only the time left: the command is done when its
budget is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from PIL import Image

from .fetch import Fetcher
from .rerank import READ_DEADLINE, WORKERS, Reranker, candidate_reader
from .store import Hit

#: Seconds a fetch gets once the budget has passed: it fails at once (0 would mean no deadline).
_SPENT = 0.001


class _UntilFetcher(Fetcher):
    """A Fetcher whose every fetch ends by ``until`` (a ``time.monotonic()`` value), when set.

    ``Fetcher`` takes ``deadline`` (seconds one fetch may take) when each fetch starts: here it
    is the time left to ``until``, never more than the deadline it was made with.
    """

    until: float | None = None

    @property
    def deadline(self) -> float | None:  # type: ignore[override]
        if self.until is None:
            return self._deadline
        left = max(_SPENT, self.until - time.monotonic())
        return left if self._deadline is None else min(self._deadline, left)

    @deadline.setter
    def deadline(self, seconds: float | None) -> None:
        self._deadline = seconds


class _QueryReranker(Reranker):
    """A Reranker that hands its query's deadline to its reader's :class:`_UntilFetcher`."""

    def check(self, image: Image.Image, hits: Sequence[Hit], depth: int | None = None, *,
              deadline: float | None = None) -> list[int | None]:
        if deadline is None and self.budget is not None:
            deadline = time.monotonic() + self.budget
        self.reader.fetcher.until = deadline
        return super().check(image, hits, depth, deadline=deadline)


@contextmanager
def command_reranker(depth: int, budget: float | None) -> Iterator[Any]:
    """A re-ranker for one command-line query: reads as the web API's (``candidate_reader``),
    ``budget`` seconds in all for reading candidates (None: no limit, each fetch then gets
    ``READ_DEADLINE``), and no read outlives the budget. Closed (threads, connections) on exit.
    """
    reader = candidate_reader(READ_DEADLINE, fetcher_type=_UntilFetcher)
    with reader.fetcher, _QueryReranker(reader, depth=depth, workers=WORKERS, budget=budget) as reranker:
        yield reranker
