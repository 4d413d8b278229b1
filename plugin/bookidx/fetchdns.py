"""Host names that do not resolve: which failed lookups to believe, and remembering those.

Reads the error codes of ``getaddrinfo`` (POSIX; glibc and musl ``netdb.h``), as Python raises
them in :class:`socket.gaierror`. Only an *answer* from the name servers is believed:
``EAI_NONAME`` (NXDOMAIN: no such name) and ``EAI_NODATA`` (the name exists but has no address;
glibc, where the platform defines it). Such a host name fails a :class:`~bookidx.fetch.Fetcher`'s
request at once and is remembered for ``unresolved_ttl``, so a manifest's other URLs on a
misspelt or retired host fail without a lookup each; the resolver has already retried before
answering, and a typo stays a typo.

Every other code is no answer and is retried with backoff like any connection error:
``EAI_AGAIN`` ("Temporary failure in name resolution": a resolver's SERVFAIL or timeout, a
machine briefly offline) clears up, and ``EAI_FAIL`` ("Non-recoverable failure") is a REFUSED,
FORMERR or NOTIMP from the resolver, which a rate-limiting one (Pi-hole) also sends for a while.
Remembering one such failure would let a hiccup of a flaky resolver fail every URL of a host for
``unresolved_ttl``: a whole indexing run's crops recorded as failed, or every re-ranked
candidate of the web app left unchecked. But once one URL's lookups found no answer through all
its retries (seconds of backoff: a resolver down, a machine offline), the host is remembered
too, so that its other URLs fail at once instead of each waiting out the same retries.

Behind a proxy (``HTTP(S)_PROXY``) it is the proxy's name that is looked up: a failure names the
proxy and is never remembered under the URL's host.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import urllib3.exceptions

from .errors import FetchError

__all__ = ["DEFINITIVE", "Lookup", "UnresolvedHosts", "failed_lookup"]

#: The ``getaddrinfo`` errors that are the name servers' answer, not their silence.
DEFINITIVE = frozenset(getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name))


@dataclass(frozen=True)
class Lookup:
    """A name lookup that failed behind a connection error: ``name`` (the proxy's when
    ``proxy``) and the resolver's ``error``."""

    name: str
    error: socket.gaierror
    proxy: bool = False

    @property
    def definitive(self) -> bool:
        """Whether the name servers answered that the name has no address (see module doc)."""
        return self.error.errno in DEFINITIVE

    def __str__(self) -> str:
        what = "proxy host" if self.proxy else "host"
        return f"cannot resolve {what} {self.name}: {self.error.strerror or self.error}"


def failed_lookup(exc: BaseException, host: str) -> Lookup | None:
    """The failed name lookup behind a connection error for a URL on ``host``, or None when the
    connection failed for another reason. requests wraps it as ConnectionError > MaxRetryError >
    urllib3 NameResolutionError (> ProxyError > NameResolutionError for the proxy's name), whose
    ``reason`` and ``__cause__`` the ``socket.gaierror`` is."""
    error, proxy, proxy_name = None, False, None
    for err in _chain(exc):
        if isinstance(err, urllib3.exceptions.ProxyError):
            proxy = True
        elif isinstance(err, urllib3.exceptions.NameResolutionError):
            proxy_name = getattr(getattr(err, "conn", None), "host", None)
        elif isinstance(err, socket.gaierror) and error is None:
            error = err
    if error is None:
        return None
    if proxy:
        return Lookup(proxy_name or "of the proxy", error, proxy=True)
    return Lookup(host, error)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception in ``exc``'s causes, contexts, ``reason`` and ``args``, once each."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        err = todo.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        todo += [err.__cause__, err.__context__, getattr(err, "reason", None), *err.args]


class UnresolvedHosts:
    """Host names whose lookup failed definitively, each remembered for ``ttl`` seconds (0: not
    at all). Safe to share between threads; ``clock`` (seconds, monotonic) is for tests."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = max(0.0, ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._failed: dict[str, tuple[float, Lookup]] = {}  # host name: (when, the lookup)

    def remember(self, lookup: Lookup, *, exhausted: bool = False) -> None:
        """Keep ``lookup`` when it is the name servers' answer about a URL's own host, or when it
        got no answer through all of a URL's retries (``exhausted``)."""
        if self.ttl and (lookup.definitive or exhausted) and not lookup.proxy:
            with self._lock:
                self._failed[lookup.name] = (self._clock(), lookup)

    def check(self, host: str, url: str) -> None:
        """Raise :class:`FetchError` (for ``url``) when ``host`` was remembered less than ``ttl``
        seconds ago; forget it once that has passed."""
        with self._lock:
            when, lookup = self._failed.get(host, (0.0, None))
            if lookup is None:
                return
            ago = self._clock() - when
            if ago >= self.ttl:
                del self._failed[host]
                return
        failed = "just now" if ago < 1 else f"{ago:.0f} s ago"
        # Raised from the resolver's error, as when the lookup was fresh (fetchretry.server_trouble).
        raise FetchError(f"{lookup} (lookup failed {failed}; not tried again for "
                         f"{self.ttl - ago:.0f} s)", parameter=url) from lookup.error
