"""Load a manifest's linked documents a few at a time, ahead of the reader, in order.

A IIIF manifest links one ALTO file per canvas (``seeAlso`` / ``rendering``). Loaded one after
another, 143 of them cost 143 round trips in a row. :func:`loaded_ahead` keeps up to ``window``
loads in flight on worker threads and hands the bodies back in the order asked, so the reader
still meets pages, and reports their Problems, in canvas order, and holds at most ``window``
bodies at a time rather than the whole manifest's.

The loader is called from the worker threads, so it must be thread-safe. bookidx's
:class:`~bookidx.fetch.Fetcher` is, and it keeps its own limit of ``per_host`` requests to one
host, so a window wider than that only queues: it never makes bookidx less polite.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Callable, Iterable, Iterator

Loader = Callable[[str], bytes]


def loaded_ahead(load: Loader, uris: Iterable[str], window: int) -> Iterator[Callable[[], bytes]]:
    """For each of ``uris`` in order, a callable giving its body (or raising what ``load`` raised).

    Args:
        load: reads one URI; called on up to ``window`` threads at once.
        uris: what to load, in the order the bodies are wanted.
        window: loads in flight at once; 1 or less: each is loaded when its callable is called,
            on the caller's thread (no threads at all).

    Loading starts with the first ``next()``. Closing the iterator early (the reader stopped)
    cancels the loads not yet started and does not wait for those running.
    """
    if window <= 1:
        for uri in uris:
            yield partial(load, uri)
        return
    pool = ThreadPoolExecutor(window, thread_name_prefix="bookidx-load")
    pending: deque[Future[bytes]] = deque()
    try:
        for uri in uris:
            pending.append(pool.submit(load, uri))
            if len(pending) == window:
                # the caller works on this body while window - 1 others load; one more is
                # submitted only when it asks for the next, so memory stays bounded
                yield pending.popleft().result
        while pending:
            yield pending.popleft().result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False)
