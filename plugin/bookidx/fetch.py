"""All of bookidx's HTTP: one pooled session, polite per-host limits, retries and a disk cache.

Implements an HTTP/1.1 client's side of RFC 9110: §15.4 redirects (followed here, hop by hop),
§8.6 ``Content-Length`` (a body with fewer bytes was cut short) and the retry semantics of
:mod:`bookidx.fetchretry` (§15.6 server errors, §10.2.3 ``Retry-After``; RFC 6585 §4 429):
connection errors, timeouts, 5xx (except 501), 408, 429 and bodies cut short are retried with
exponential backoff and jitter; 429 and 503 wait for ``Retry-After``, capped. Other 4xx fail at once.
A host name the name servers say does not exist fails at once too ("cannot resolve host X"), and is
remembered for ``unresolved_ttl`` seconds, so the other URLs of a manifest on that host (a typo, a
retired server) fail without asking the resolver again; a lookup that got no answer (a flaky
resolver, ``EAI_AGAIN``) is retried like any connection error (:mod:`bookidx.fetchdns`).

Digitisation servers are shared infrastructure, so at most ``per_host`` requests go to one
host at a time, however many worker threads ask. A re-run fetches nothing twice: with a
``cache_dir``, successful bodies are kept on disk (:mod:`bookidx.fetchcache`: content-addressed,
least recently used evicted beyond ``cache_max_bytes``).

``timeout`` bounds each wait for the server, so a server that drips a byte every few seconds
(slow loris) would never time out; ``deadline`` bounds a whole :meth:`Fetcher.get`: every
redirect hop, attempt and retry wait. The body is read one socket read at a time (``read1``:
whatever has arrived, not a blocking 64 KB) with the socket timeout cut to the time left, so the
deadline holds to within a read. A retry that could only start after the deadline (a long
``Retry-After``) is not waited for. Time spent queued for a host slot behind other requests
does not count: it says nothing about this server's answer.

Redirects are followed here rather than inside requests, one hop at a time, so that each hop
gets its own host slot and retries and can be refused by a ``check_url`` callback (the web
app holds every hop of a client-named URL to the operator's allow-list this way).

Adapters receive :meth:`Fetcher.load` as their ``load`` callable: it reads http(s) URLs, local
paths and ``file://`` URIs alike (the latter two through the adapters' one local reader,
:func:`bookidx.adapters.uris.read_local`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from . import __version__
from .adapters.uris import read_local, scheme
from .errors import FetchError, PayloadTooLarge
from .fetchcache import DiskCache
from .fetchdns import UnresolvedHosts, failed_lookup
from .fetchretry import Transient, attempts, delay, parse_retry_after, transient

__all__ = ["PROJECT_URL", "USER_AGENT", "WAITING_CONNECT_TIMEOUT", "WAITING_READ_TIMEOUT", "FetchStats", "Fetcher",
           "parse_retry_after"]

log = logging.getLogger("bookidx.fetch")

PROJECT_URL = "https://github.com/bookidx/bookidx"
USER_AGENT = f"bookidx/{__version__} (+{PROJECT_URL})"

#: Timeouts for a fetch someone is waiting on (a web visitor's query image, the candidates of a
#: re-ranked search): a server that has not accepted the connection in 5 s, or then sends
#: nothing for 20 s, is not going to answer in time. Indexing, which nobody watches, waits
#: longer (the :class:`Fetcher` defaults). Callers choose their own deadline and retries.
WAITING_CONNECT_TIMEOUT = 5.0
WAITING_READ_TIMEOUT = 20.0

_CHUNK = 1 << 16


@dataclass
class FetchStats:
    """What a :class:`Fetcher` did, for the CLI summary. ``requests`` counts every attempt."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    bytes: int = 0

    def __str__(self) -> str:
        return (f"HTTP requests {self.requests} ({self.retries} retries), "
                f"cache hits {self.cache_hits}, {self.bytes / 1e6:.1f} MB received")


@dataclass(frozen=True)
class _Redirect:
    """An attempt was answered with a redirect to ``location`` (absolute)."""

    location: str


class _Clock:
    """The time left before one :meth:`Fetcher.get`'s deadline (None or 0 seconds: no deadline)."""

    def __init__(self, seconds: float | None):
        self._end = time.monotonic() + seconds if seconds else math.inf

    def left(self) -> float:
        return self._end - time.monotonic()

    def extend(self, seconds: float) -> None:
        self._end += seconds


class Fetcher:
    """Fetches URLs and reads local files; safe to share between worker threads.

    Args:
        cache_dir: keep successful response bodies here (content-addressed); None: no cache.
        cache_max_bytes: evict the least recently used bodies when ``cache_dir`` holds more;
            None or 0: no bound.
        per_host: at most this many requests in flight to one host (host:port).
        timeout: seconds to wait for the server between bytes (read timeout).
        deadline: seconds one :meth:`get` may take in all (redirects, attempts, bodies and
            retry waits; not the time queued for a host slot); None or 0: no deadline.
        connect_timeout: seconds to wait for a connection.
        retries: how often a failed request is retried (so up to ``retries + 1`` attempts).
        backoff: first retry delay in seconds; it doubles each retry, with jitter.
        max_backoff: cap on one backoff delay.
        max_retry_after: cap on a server's ``Retry-After``.
        max_bytes: larger responses raise :class:`PayloadTooLarge`.
        max_redirects: more redirects than this for one URL raise :class:`FetchError`.
        check_url: called with every URL before it is requested, the first and each redirect
            target; it raises (a :class:`BookidxError`) to refuse one. None: all are allowed.
        user_agent: the ``User-Agent`` header.
        unresolved_ttl: seconds a host name the name servers said does not exist is remembered:
            requests to it fail at once meanwhile, without a lookup. 0: look up every time.
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        *,
        cache_max_bytes: int | None = 4 * 2**30,
        per_host: int = 4,
        timeout: float = 30.0,
        deadline: float | None = 120.0,
        connect_timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        max_bytes: int = 512 * 2**20,
        max_redirects: int = 30,
        check_url: Callable[[str], None] | None = None,
        user_agent: str = USER_AGENT,
        unresolved_ttl: float = 30.0,
    ):
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        if deadline is not None and deadline < 0:
            raise ValueError(f"deadline must be 0 (none) or more seconds, not {deadline}")
        self._cache = DiskCache(cache_dir, cache_max_bytes) if cache_dir is not None else None
        self.per_host = per_host
        self.timeout = (min(connect_timeout, timeout), timeout)
        self.deadline = deadline or None
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.max_bytes = max_bytes
        self.max_redirects = max(0, max_redirects)
        self.check_url = check_url
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent
        # Enough pooled connections per host for every slot, so none is opened and dropped.
        adapter = HTTPAdapter(pool_connections=32, pool_maxsize=max(per_host, 10), max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._stats = FetchStats()
        self._closed = threading.Event()
        self._unresolved = UnresolvedHosts(unresolved_ttl)

    # -- public -------------------------------------------------------------------------------

    @property
    def stats(self) -> FetchStats:
        """A snapshot of the counters."""
        with self._lock:
            return replace(self._stats)

    def get(self, url: str) -> bytes:
        """The body of ``url`` (from the cache when there), retrying transient failures.

        Raises:
            FetchError: the server refused, every attempt failed (names the last reason), it
                redirected more than ``max_redirects`` times, or ``deadline`` passed.
            PayloadTooLarge: the body is larger than ``max_bytes``.
            BookidxError: whatever ``check_url`` raised for the URL or a redirect target.
        """
        cached = self._cache.read(url) if self._cache is not None else None
        if cached is not None:
            self._count(cache_hits=1)
            return cached
        data = self._fetch(url)
        if self._cache is not None:
            self._cache.write(url, data)
        return data

    def load(self, uri: str) -> bytes:
        """The bytes behind an http(s) URL, a ``file://`` URI or a local path.

        Raises:
            FetchError: as :meth:`get`, or an unsupported URI scheme.
            SourceError: a local file cannot be read.
        """
        kind = scheme(uri)
        if kind in ("http", "https"):
            return self.get(uri)
        if kind not in ("", "file"):
            raise FetchError(f"unsupported URI scheme {kind!r}", parameter=uri)
        return read_local(uri)

    def close(self) -> None:
        """Stop: pending backoff waits end with FetchError, pooled connections close."""
        self._closed.set()
        self._session.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HTTP ---------------------------------------------------------------------------------

    def _fetch(self, url: str) -> bytes:
        """Follow redirects hop by hop; errors name ``url``, the URL that was asked for."""
        hop, clock = url, _Clock(self.deadline)
        for _ in range(self.max_redirects + 1):
            if self.check_url is not None:
                self.check_url(hop)
            answer = self._retrying(hop, url, clock)
            if isinstance(answer, bytes):
                return answer
            hop = answer.location
        raise FetchError(f"more than {self.max_redirects} redirects", parameter=url)

    def _retrying(self, hop: str, url: str, clock: _Clock) -> bytes | _Redirect:
        """One hop, retried while it fails transiently and the deadline allows."""
        parts = urlsplit(hop)
        host, name = parts.netloc.lower(), parts.hostname or hop  # slots per host:port; names looked up
        self._unresolved.check(name, url)
        # Giving up on a transient failure raises from it: fetchretry.server_trouble reads that.
        last = Transient("")
        for attempt in range(self.retries + 1):
            if attempt:
                pause = delay(attempt, last.retry_after, backoff=self.backoff, max_backoff=self.max_backoff,
                              max_retry_after=self.max_retry_after)
                left = clock.left()
                if left <= 0:
                    raise self._expired(url, f"after {attempts(attempt)} (last: {last.reason})")
                if pause >= left:  # waiting would only end in failure: say so now
                    asked = "Retry-After" if last.retry_after is not None else "backoff"
                    raise FetchError(
                        f"deadline of {self.deadline:g} s would pass before the next attempt "
                        f"({last.reason}; {asked} {pause:.1f} s, {left:.1f} s left; {attempts(attempt)} made)",
                        parameter=url) from last
                self._count(retries=1)
                if self._closed.wait(pause):
                    raise FetchError(f"fetcher closed while retrying ({last.reason})", parameter=url) from last
            queued = time.monotonic()
            try:
                with self._slot(host):
                    clock.extend(time.monotonic() - queued)
                    return self._attempt(hop, url, clock)
            except Transient as t:
                last = t
                log.info("%s: %s (attempt %d of %d)", hop, t.reason, attempt + 1, self.retries + 1)
        if (lookup := failed_lookup(last, name)) is not None:  # no answer through every retry
            self._unresolved.remember(lookup, exhausted=True)
        raise FetchError(f"{last.reason} (after {attempts(self.retries + 1)})", parameter=url) from last

    def _attempt(self, hop: str, url: str, clock: _Clock) -> bytes | _Redirect:
        """One request. Raises Transient for what a retry may cure, BookidxError otherwise."""
        left = clock.left()
        if left <= 0:  # a later redirect hop, or a retry wait that overslept (requests refuses a timeout <= 0)
            raise self._expired(url, f"before requesting {hop}")
        self._count(requests=1)
        timeout = (min(self.timeout[0], left), min(self.timeout[1], left))
        try:
            resp = self._session.get(hop, timeout=timeout, stream=True, allow_redirects=False)
        except requests.Timeout as e:
            raise Transient(f"timed out: {_why(e)}") from None
        except requests.exceptions.SSLError as e:  # a bad certificate stays bad (but is the server's)
            raise FetchError(f"TLS error: {_why(e)}", parameter=url) from e
        except requests.ConnectionError as e:
            lookup = failed_lookup(e, urlsplit(hop).hostname or hop)
            if lookup is None:
                raise Transient(f"connection failed: {_why(e)}") from None
            if not lookup.definitive:  # no answer from the name servers: may come next time
                raise Transient(str(lookup)) from e  # the lookup, for _retrying once retries run out
            self._unresolved.remember(lookup)
            raise FetchError(str(lookup), parameter=url) from lookup.error
        except requests.RequestException as e:  # invalid URL, too many redirects
            raise FetchError(f"{type(e).__name__}: {e}", parameter=url) from None
        with resp:
            location = self._session.get_redirect_target(resp)  # None unless a 3xx with Location
            if location is not None:
                return _Redirect(urljoin(hop, location))
            status = f"HTTP {resp.status_code} {resp.reason or ''}".rstrip()
            failure = transient(resp.status_code, status, resp.headers.get("Retry-After"))
            if failure is not None:
                raise failure
            if resp.status_code >= 400:
                raise FetchError(status, parameter=url)
            declared = _int_or_none(resp.headers.get("Content-Length"))
            if declared is not None and declared > self.max_bytes:
                raise PayloadTooLarge(f"response of {declared} bytes exceeds the limit of "
                                      f"{self.max_bytes}", parameter=url)
            body = bytearray()
            try:
                self._read_body(resp, body, url, status, clock)
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError,
                    urllib3.exceptions.SSLError) as e:
                raise Transient(f"{status} body cut short after {len(body)} bytes: {_why(e)}") from None
            except urllib3.exceptions.HTTPError as e:  # a body that does not decode (bad gzip) stays bad
                raise FetchError(f"{status} body unreadable: {type(e).__name__}: {_why(e)}",
                                 parameter=url) from None
            finally:
                self._count(bytes=len(body))
            # urllib3 counts bytes on the wire (before gzip decoding), as Content-Length does.
            wire = resp.raw.tell() if hasattr(resp.raw, "tell") else len(body)
            if declared is not None and wire != declared:
                raise Transient(f"{status} body cut short: {wire} of {declared} bytes")
            return bytes(body)

    def _read_body(self, resp: requests.Response, body: bytearray, url: str, status: str,
                   clock: _Clock) -> None:
        """Append the decoded body to ``body``, one socket read at a time, within the deadline
        and ``max_bytes``. urllib3 errors pass through for :meth:`_attempt` to sort."""
        raw = resp.raw
        sock = getattr(raw.connection, "sock", None)
        while True:
            left = clock.left()
            if left <= 0:
                raise self._expired(url, f"while reading the body ({status}, {len(body)} bytes received)")
            if sock is not None and left < self.timeout[1]:
                sock.settimeout(left)  # urllib3 sets it afresh for the connection's next request
            try:
                chunk = raw.read1(_CHUNK, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError:
                if clock.left() > 0:
                    raise
                continue  # timed out because the socket timeout was cut to the deadline
            if not chunk:
                return
            body += chunk
            if len(body) > self.max_bytes:
                raise PayloadTooLarge(f"response exceeds the limit of {self.max_bytes} bytes", parameter=url)

    def _expired(self, url: str, when: str) -> FetchError:
        """The deadline passed: a server too slow, trouble as a timeout is (its cause says so)."""
        detail = f"deadline of {self.deadline:g} s passed {when}"
        err = FetchError(detail, parameter=url)
        err.__cause__ = Transient(detail)
        return err

    @contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        with self._lock:
            slot = self._slots.get(host)
            if slot is None:
                slot = self._slots[host] = threading.BoundedSemaphore(self.per_host)
        with slot:
            yield

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._stats, name, getattr(self._stats, name) + delta)

    # -- cache --------------------------------------------------------------------------------

    def cache_path(self, url: str) -> Path | None:
        """Where the body of ``url`` is (or would be) cached; None without a cache."""
        return self._cache.path(url) if self._cache is not None else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _why(exc: Exception) -> str:
    """The innermost reason of a requests/urllib3 exception chain, which says what happened."""
    while exc.args and isinstance(exc.args[0], Exception):
        exc = exc.args[0]
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc)
