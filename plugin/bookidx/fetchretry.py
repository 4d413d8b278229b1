"""When a failed HTTP request is worth another attempt, and how long to wait before it.

Implements the retry semantics :class:`bookidx.fetch.Fetcher` follows: RFC 9110 §15.6 (server
errors: 5xx may clear up, except 501 Not Implemented, which will not), §15.5.9 (408 Request
Timeout), §10.2.3 (``Retry-After``: delay-seconds or an HTTP date) and RFC 6585 §4 (429 Too Many
Requests). Connection errors, timeouts, bodies cut short and name lookups that got no answer
are transient too; the fetcher raises :class:`Transient` for those itself. Every other 4xx is
the request's fault and fails at once, and so does a host name the name servers say does not
exist (:mod:`bookidx.fetchdns`).

The wait before a retry is the server's ``Retry-After`` (on 429 and 503, capped), else an
exponential backoff with jitter. Pure: numbers and header values in, numbers out.

When the fetcher gives up, :func:`server_trouble` tells the server's or the network's failing
from the item's own fault, for a caller that counts failures (the indexer's failure rate).
"""

from __future__ import annotations

import email.utils
import random
import time
from datetime import datetime, timezone

from .errors import FetchError


class Transient(Exception):
    """An attempt failed in a way worth retrying; ``retry_after`` is the server's wish (s)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def transient(code: int, status: str, retry_after: str | None) -> Transient | None:
    """The retryable failure an HTTP status ``code`` is (``status`` names it, ``retry_after``
    is the response's header), or None when a retry cannot help or is not needed."""
    if code not in (408, 429) and not (code >= 500 and code != 501):
        return None
    wait = parse_retry_after(retry_after) if code in (429, 503) else None
    return Transient(status, retry_after=wait)


def server_trouble(err: BaseException) -> bool:
    """Whether ``err``, a :class:`FetchError` from :class:`bookidx.fetch.Fetcher`, came of the
    server or the network rather than of the item: no answer (connection, timeout, deadline,
    name lookup, TLS) or one that may clear up (5xx, 408, 429), as against a 4xx refusal, a body
    that does not decode, too many redirects or a bad URL. The fetcher raises the former from
    what caused them (the last :class:`Transient`, the lookup's or handshake's ``OSError``) and
    the latter from nothing."""
    return isinstance(err, FetchError) and isinstance(err.__cause__, (Transient, OSError))


def delay(attempt: int, retry_after: float | None, *, backoff: float, max_backoff: float,
          max_retry_after: float) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): ``Retry-After`` capped at
    ``max_retry_after``, else ``backoff`` doubled each retry, capped at ``max_backoff``, jittered."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), max_retry_after)
    wait = min(backoff * 2 ** (attempt - 1), max_backoff)
    # Jitter spreads the retries of many workers so they do not hit the server in step.
    return wait * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    return max(0.0, (when - now_dt).total_seconds())


def attempts(n: int) -> str:
    """``n`` attempts, in words for error messages."""
    return f"{n} attempt{'s' if n != 1 else ''}"
