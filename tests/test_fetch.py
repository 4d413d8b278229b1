"""fetch.Fetcher against a local fault-injecting HTTP server: retries, backoff, Retry-After,
truncated bodies, timeouts, the total deadline (dripping bodies), size limits, the per-host
limit, the disk cache and its size bound, and local loads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bookidx.config import IndexConfig
from bookidx.errors import BadRequest, ConfigError, FetchError, PayloadTooLarge, SourceError
from bookidx.fetch import Fetcher, parse_retry_after
from bookidx.fetchdns import Lookup, UnresolvedHosts
from bookidx.fetchretry import server_trouble

BODY = bytes(range(256)) * 40  # 10 240 bytes


class FaultServer(ThreadingHTTPServer):
    """Answers each path from a script of steps; the last step repeats. Counts what it sees."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scripts: dict[str, list[tuple]] = {}
        self.hits: dict[str, int] = {}
        self.agents: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def script(self, path: str, *steps: tuple) -> str:
        self.scripts[path] = list(steps)
        return self.url(path)


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
            srv.agents.append(self.headers.get("User-Agent", ""))
            steps = srv.scripts.get(self.path, [("status", 404)])
            step = steps.pop(0) if len(steps) > 1 else steps[0]
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        self._counted = True
        try:
            self._answer(*step)
        finally:
            self._leave()

    def _leave(self):
        """Stop counting this request as in flight (once). Called before an "ok" body is sent:
        the client may read the last byte, free its slot and start the next request before
        this handler's thread runs again, which would count two at once for per_host=1."""
        if self._counted:
            self._counted = False
            with self.server.lock:
                self.server.in_flight -= 1

    def _answer(self, kind, *args):
        if kind == "ok":  # ("ok", body, delay_before_headers)
            body = args[0] if args else BODY
            if len(args) > 1:
                time.sleep(args[1])
            self._leave()
            self._send(200, body)
        elif kind == "status":  # ("status", code, headers)
            headers = args[1] if len(args) > 1 else {}
            self._send(args[0], b"error page", headers)
        elif kind == "truncate":  # promise the whole body, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "chunked":  # no Content-Length: the size is only known while reading
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(args[0]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(BODY), BODY))
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
        elif kind == "bad-gzip":  # says gzip, is not: the body cannot be decoded
            self._send(200, b"not gzip at all", {"Content-Encoding": "gzip"})
        elif kind == "drip":  # ("drip", body, pieces, seconds_between, chunked): slow but alive
            self._drip(*args)

    def _drip(self, body, pieces, interval, chunked=False):
        self._leave()
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        size = -(-len(body) // pieces)
        try:
            for i in range(0, len(body), size):
                time.sleep(interval)
                piece = body[i:i + size]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up (its deadline passed)
            pass

    def _send(self, code, body, headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = FaultServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def fast(**kw) -> Fetcher:
    """A fetcher whose backoff is milliseconds, so retry tests take no time."""
    kw = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, "retries": 3, **kw}
    return Fetcher(**kw)


def test_500_then_200_is_retried_and_counted(server):
    url = server.script("/a", ("status", 500), ("ok",))
    with fast() as f:
        assert f.get(url) == BODY
        stats = f.stats
    assert server.hits["/a"] == 2
    assert (stats.requests, stats.retries, stats.cache_hits) == (2, 1, 0)
    assert stats.bytes == len(BODY)  # error bodies are not read
    assert server.agents[0].startswith("bookidx/")


def test_persistent_5xx_raises_fetch_error_with_last_status(server):
    url = server.script("/down", ("status", 502))
    with fast(retries=2) as f:
        with pytest.raises(FetchError) as err:
            f.get(url)
    assert server.hits["/down"] == 3
    assert err.value.parameter == url and err.value.code == 502
    assert "HTTP 502" in err.value.detail and "3 attempts" in err.value.detail


def test_404_fails_at_once_without_retries(server):
    url = server.script("/gone", ("status", 404))
    with fast() as f:
        with pytest.raises(FetchError, match="HTTP 404"):
            f.get(url)
        assert f.stats.retries == 0
    assert server.hits["/gone"] == 1


def test_429_waits_for_retry_after_seconds(server):
    url = server.script("/busy", ("status", 429, {"Retry-After": "1"}), ("ok",))
    with fast() as f:
        t0 = time.perf_counter()
        assert f.get(url) == BODY
        waited = time.perf_counter() - t0
    assert 0.95 <= waited < 3  # the server's second, not the 10 ms backoff
    assert server.hits["/busy"] == 2


def test_503_retry_after_is_capped(server):
    url = server.script("/maint", ("status", 503, {"Retry-After": "3600"}), ("ok",))
    with fast(max_retry_after=0.2) as f:
        t0 = time.perf_counter()
        assert f.get(url) == BODY
        assert time.perf_counter() - t0 < 2


def test_backoff_grows_exponentially(server):
    url = server.script("/flaky", ("status", 500), ("status", 500), ("status", 500), ("ok",))
    with fast(backoff=0.1, max_backoff=10) as f:
        t0 = time.perf_counter()
        assert f.get(url) == BODY
        waited = time.perf_counter() - t0
    # 0.1 + 0.2 + 0.4 with jitter in [0.5, 1]: between 0.35 and 0.7 s plus request time
    assert 0.35 <= waited < 1.5


def test_truncated_body_is_retried(server):
    url = server.script("/cut", ("truncate",), ("ok",))
    with fast() as f:
        assert f.get(url) == BODY
        assert f.stats.retries == 1


def test_always_truncated_body_fails_naming_the_reason(server):
    url = server.script("/cut", ("truncate",))
    with fast(retries=1) as f:
        with pytest.raises(FetchError, match="cut short"):
            f.get(url)


def test_slow_response_times_out_and_fails(server):
    url = server.script("/slow", ("ok", BODY, 1.5))
    with fast(timeout=0.2, retries=1) as f:
        t0 = time.perf_counter()
        with pytest.raises(FetchError, match="timed out"):
            f.get(url)
        assert time.perf_counter() - t0 < 2.5  # two 0.2 s timeouts, not two 1.5 s waits
    assert server.hits["/slow"] == 2


def test_slow_then_fast_recovers(server):
    url = server.script("/slow", ("ok", BODY, 1.0), ("ok",))
    with fast(timeout=0.2) as f:
        assert f.get(url) == BODY


def test_size_limit_from_content_length_and_while_streaming(server):
    url = server.script("/big", ("ok",))
    chunked = server.script("/stream", ("chunked", 5))
    with fast(max_bytes=len(BODY) - 1) as f:
        with pytest.raises(PayloadTooLarge) as err:
            f.get(url)
        assert err.value.code == 413 and err.value.parameter == url
    with fast(max_bytes=3 * len(BODY)) as f:
        with pytest.raises(PayloadTooLarge):
            f.get(chunked)
    assert server.hits["/big"] == 1 and server.hits["/stream"] == 1  # never retried


def test_chunked_body_within_limit(server):
    url = server.script("/stream", ("chunked", 3))
    with fast() as f:
        assert f.get(url) == BODY * 3


def test_a_body_that_does_not_decode_fails_at_once(server):
    url = server.script("/gz", ("bad-gzip",))
    with fast() as f:
        with pytest.raises(FetchError, match="body unreadable") as err:
            f.get(url)
    assert err.value.parameter == url and server.hits["/gz"] == 1


def test_redirects_are_followed_and_each_hop_is_checked(server):
    first = server.script("/r1", ("status", 302, {"Location": "/r2"}))
    server.script("/r2", ("status", 301, {"Location": server.url("/r3")}))
    server.script("/r3", ("ok",))
    asked = []
    with fast(check_url=asked.append) as f:
        assert f.get(first) == BODY
    assert asked == [first, server.url("/r2"), server.url("/r3")]

    def refuse_r3(url):
        if url.endswith("/r3"):
            raise BadRequest("not allowed", "image_url")

    with fast(check_url=refuse_r3) as f:
        with pytest.raises(BadRequest):
            f.get(first)
    assert server.hits["/r3"] == 1  # the refused hop was never requested


def test_redirect_loops_end(server):
    url = server.script("/loop", ("status", 302, {"Location": "/loop"}))
    with fast(max_redirects=3) as f:
        with pytest.raises(FetchError, match="more than 3 redirects") as err:
            f.get(url)
    assert err.value.parameter == url and server.hits["/loop"] == 4


@pytest.mark.parametrize("limit", [1, 3])
def test_per_host_limit_bounds_concurrency(server, limit):
    urls = [server.script(f"/p{i}", ("ok", BODY, 0.1)) for i in range(8)]
    with fast(per_host=limit) as f, ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(f.get, urls))
    assert bodies == [BODY] * 8
    assert server.max_in_flight == limit  # reached, and never exceeded


def test_counters_are_consistent_under_threads(server):
    urls = [server.script(f"/c{i}", ("status", 500), ("ok",)) for i in range(20)]
    with fast(per_host=8) as f, ThreadPoolExecutor(8) as pool:
        assert list(pool.map(f.get, urls)) == [BODY] * 20
        stats = f.stats
    assert stats.requests == 40 == sum(server.hits.values())
    assert stats.retries == 20 and stats.bytes == 20 * len(BODY)


def test_cache_means_a_rerun_fetches_nothing(server, tmp_path):
    url = server.script("/doc", ("ok",))
    with fast(cache_dir=tmp_path) as f:
        assert f.get(url) == BODY
        assert f.get(url) == BODY
        assert (f.stats.requests, f.stats.cache_hits) == (1, 1)
    digest = hashlib.sha256(url.encode()).hexdigest()
    assert (tmp_path / digest[:2] / digest).read_bytes() == BODY
    assert not list(tmp_path.rglob(".part-*"))  # no temporary file left behind
    with fast(cache_dir=tmp_path) as again:  # a second run
        assert again.get(url) == BODY
        assert again.stats.requests == 0
    assert server.hits["/doc"] == 1


def test_failures_are_not_cached(server, tmp_path):
    url = server.script("/x", ("status", 404), ("ok",))
    with fast(cache_dir=tmp_path) as f:
        with pytest.raises(FetchError):
            f.get(url)
        assert f.get(url) == BODY
    assert server.hits["/x"] == 2


def test_connection_refused_is_retried_then_fails(server):
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with fast(retries=1) as f:
        with pytest.raises(FetchError, match="connection failed"):
            f.get(f"http://127.0.0.1:{port}/nobody")
        assert f.stats.requests == 2


class FakeDNS:
    """getaddrinfo for names ending in .invalid or .test, answered from a script per name: each
    lookup takes the next answer (a gaierror code, or None: the address of 127.0.0.1), the last
    one repeats. Names ending in .invalid answer EAI_NONAME unless scripted. Counts lookups."""

    MESSAGES = {socket.EAI_NONAME: "Name or service not known", socket.EAI_AGAIN: "Temporary failure in name resolution",
                socket.EAI_FAIL: "Non-recoverable failure in name resolution",
                socket.EAI_NODATA: "No address associated with hostname"}

    def __init__(self, real):
        self.real = real
        self.answers: dict[str, list[int | None]] = {}
        self.lookups: list[str] = []

    def script(self, host: str, *answers: int | None) -> None:
        self.answers[host] = list(answers)

    def getaddrinfo(self, host, port, *args, **kwargs):
        name = str(host)
        if not name.endswith((".invalid", ".test")):
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(name)
        answers = self.answers.get(name, [socket.EAI_NONAME])
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer is not None:
            raise socket.gaierror(answer, self.MESSAGES[answer])
        return self.real("127.0.0.1", port, *args, **kwargs)


@pytest.fixture
def dns(monkeypatch) -> FakeDNS:
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def no_proxy(monkeypatch):
    """No proxy from the environment, whatever the machine running the tests uses."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize("code", [socket.EAI_NONAME, socket.EAI_NODATA])
def test_a_host_that_does_not_resolve_fails_at_once_and_is_remembered(server, dns, code):
    # The name servers answered: no such name (NXDOMAIN), or no address for it.
    dns.script("gone.invalid", code)
    with fast(retries=4, backoff=1.0) as f:  # a retry would wait about a second
        with pytest.raises(FetchError, match=f"cannot resolve host gone.invalid: {FakeDNS.MESSAGES[code]}$") as err:
            f.get("http://gone.invalid/alto/1.xml")
        assert err.value.parameter == "http://gone.invalid/alto/1.xml"
        assert (f.stats.requests, f.stats.retries, dns.lookups) == (1, 0, ["gone.invalid"])
        # The manifest's other links on that host fail without asking the resolver again.
        for n in range(2, 50):
            with pytest.raises(FetchError, match="cannot resolve host gone.invalid"):
                f.get(f"http://gone.invalid/alto/{n}.xml")
        assert (f.stats.requests, f.stats.retries, dns.lookups) == (1, 0, ["gone.invalid"])
        assert f.get(server.script("/a", ("ok",))) == BODY  # other hosts are not affected


def test_a_lookup_that_got_no_answer_is_retried(server, dns):
    # A flaky resolver (SERVFAIL, a timeout): EAI_AGAIN once, then the name resolves.
    dns.script("flaky.test", socket.EAI_AGAIN, None)
    url = server.script("/a", ("ok",)).replace("127.0.0.1", "flaky.test")
    with fast() as f:
        assert f.get(url) == BODY
        assert (f.stats.requests, f.stats.retries, dns.lookups) == (2, 1, ["flaky.test"] * 2)


@pytest.mark.parametrize("code", [socket.EAI_AGAIN, socket.EAI_FAIL])
def test_a_resolver_that_keeps_failing_is_named_after_the_retries_then_remembered(dns, code):
    # EAI_FAIL is a REFUSED or FORMERR from the resolver, which a rate-limiting one sends too:
    # one bad moment must not fail every URL of the host for unresolved_ttl (the retries ride it
    # out, test above); no answer through all of one URL's retries fails the host's other URLs
    # at once, not each after the same retries (an offline machine: hours over a collection).
    dns.script("flaky.test", code)
    with fast(retries=2) as f:
        with pytest.raises(FetchError, match=f"cannot resolve host flaky.test: "
                                             f"{FakeDNS.MESSAGES[code]} \\(after 3 attempts\\)"):
            f.get("http://flaky.test/a")
        for path in ("/b", "/c"):
            with pytest.raises(FetchError, match=f"cannot resolve host flaky.test: {FakeDNS.MESSAGES[code]} "
                                                 "\\(lookup failed just now; not tried again"):
                f.get(f"http://flaky.test{path}")
        assert (f.stats.retries, dns.lookups) == (2, ["flaky.test"] * 3)


def test_a_host_with_a_port_is_remembered_by_its_name(dns):
    # The memory is checked by host name: one kept under "name:port" was never found again.
    dns.script("ported.test", socket.EAI_AGAIN)
    with fast(retries=0) as f:
        for path in ("/a", "/b"):
            with pytest.raises(FetchError, match="cannot resolve host ported.test"):
                f.get(f"http://ported.test:8080{path}")
        assert dns.lookups == ["ported.test"]


def test_a_proxy_that_does_not_resolve_is_named_and_not_held_against_the_host(server, dns, no_proxy, monkeypatch):
    url = server.script("/a", ("ok",))
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    with fast() as f:
        with pytest.raises(FetchError, match="cannot resolve proxy host proxy.invalid: Name or service not known$"):
            f.get(url)
        monkeypatch.delenv("HTTP_PROXY")
        assert f.get(url) == BODY  # 127.0.0.1 was not remembered as a name that does not resolve


def test_an_unresolved_host_is_looked_up_again_after_the_ttl(dns):
    now = [1000.0]
    hosts = UnresolvedHosts(30.0, clock=lambda: now[0])
    lookup = Lookup("gone.invalid", socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    hosts.remember(lookup)
    now[0] += 20
    with pytest.raises(FetchError, match=r"cannot resolve host gone.invalid: Name or service not known "
                                         r"\(lookup failed 20 s ago; not tried again for 10 s\)") as err:
        hosts.check("gone.invalid", "http://gone.invalid/a")
    assert err.value.parameter == "http://gone.invalid/a"
    hosts.check("other.invalid", "http://other.invalid/a")  # only the name that failed
    now[0] += 10
    hosts.check("gone.invalid", "http://gone.invalid/a")  # the ttl has passed: ask again
    # A fetcher with unresolved_ttl 0 asks the resolver every time.
    with fast(unresolved_ttl=0) as f:
        for _ in range(2):
            with pytest.raises(FetchError, match="cannot resolve host gone.invalid: Name or service not known$"):
                f.get("http://gone.invalid/a")
    assert dns.lookups == ["gone.invalid"] * 2


def test_only_the_name_servers_answer_about_the_host_itself_is_remembered():
    hosts = UnresolvedHosts(30.0)
    again = Lookup("flaky.test", socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))
    proxy = Lookup("proxy.invalid", socket.gaierror(socket.EAI_NONAME, "Name or service not known"), proxy=True)
    for lookup in (again, proxy):
        hosts.remember(lookup)
        hosts.check(lookup.name, f"http://{lookup.name}/a")


@pytest.mark.parametrize("steps, trouble", [
    ([("status", 503)], True), ([("status", 429)], True), ([("status", 408)], True),
    ([("truncate",)], True),  # the retries spent on a body cut short
    ([("drip", BODY, 4, 0.3)], True),  # the deadline passed while the body dripped in
    ([("status", 404)], False), ([("status", 410)], False), ([("status", 501)], False),
    ([("bad-gzip",)], False), ([("status", 302, {"Location": "/loop"})], False),
], ids=["503", "429", "408", "cut-short", "deadline", "404", "410", "501", "bad-gzip", "redirect-loop"])
def test_server_trouble_tells_the_servers_failing_from_the_items(server, steps, trouble):
    # The indexer counts a page that failed before and fails again only for server trouble.
    url = server.script("/loop", *steps)
    with fast(retries=1, deadline=0.5, max_redirects=3) as f:
        with pytest.raises(FetchError) as err:
            f.get(url)
    assert server_trouble(err.value) is trouble, err.value


def test_server_trouble_includes_no_connection_and_names_that_do_not_resolve(dns):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once it is closed
    with fast(retries=0) as f:
        for url in (f"http://127.0.0.1:{closed}/a", "http://gone.invalid/a", "http://gone.invalid/b"):
            with pytest.raises(FetchError) as err:  # refused; did not resolve; remembered so
                f.get(url)
            assert server_trouble(err.value), err.value
    assert not server_trouble(SourceError("not an image", parameter="a.jpg"))


def test_load_reads_paths_and_file_uris(tmp_path, monkeypatch):
    page = tmp_path / "dir with space" / "0001.xml"
    page.parent.mkdir()
    page.write_bytes(b"<alto/>")
    monkeypatch.chdir(tmp_path)
    with Fetcher() as f:
        assert f.load(str(page)) == b"<alto/>"
        assert f.load(page.as_uri()) == b"<alto/>"  # file:///.../dir%20with%20space/0001.xml
        assert f.load("file://localhost" + page.as_uri()[len("file://"):]) == b"<alto/>"
        assert f.load("file://./dir%20with%20space/0001.xml") == b"<alto/>"  # as METS writes it
        with pytest.raises(SourceError) as err:
            f.load(str(tmp_path / "missing.xml"))
        assert err.value.parameter.endswith("missing.xml") and err.value.code == 422
        with pytest.raises(FetchError, match="scheme"):
            f.load("ftp://example.org/a.xml")
        assert f.stats.requests == 0


def test_load_fetches_http(server):
    url = server.script("/m.json", ("ok", b"{}"))
    with fast() as f:
        assert f.load(url) == b"{}"


@pytest.mark.parametrize("value, expected", [
    ("120", 120.0),
    (" 0 ", 0.0),
    (formatdate(1_000_030, usegmt=True), 30.0),  # an HTTP date 30 s after "now"
    (formatdate(999_000, usegmt=True), 0.0),     # a date in the past: go now
    ("soon", None),
    (None, None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=1_000_000) == expected


# -- the total deadline ------------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True])
def test_a_dripping_body_ends_at_the_deadline(server, chunked):
    # One byte every 50 ms: never 2 s without a byte, so the read timeout alone would wait 8.5 min.
    url = server.script("/drip", ("drip", BODY, len(BODY), 0.05, chunked))
    with fast(deadline=0.6) as f:
        t0 = time.perf_counter()
        with pytest.raises(FetchError) as err:
            f.get(url)
        took = time.perf_counter() - t0
    assert 0.55 <= took < 1.5
    assert err.value.parameter == url
    assert err.value.detail.startswith("deadline of 0.6 s passed while reading the body (HTTP 200 OK")
    assert server.hits["/drip"] == 1  # no retry: the time is up


def test_a_slow_steady_body_within_the_deadline_is_read(server):
    url = server.script("/slow", ("drip", BODY, 5, 0.1))
    with fast(deadline=5) as f:
        assert f.get(url) == BODY
        assert f.stats.retries == 0


def test_a_stall_is_cut_at_the_deadline_not_the_read_timeout(server):
    url = server.script("/stall", ("ok", BODY, 3.5))
    with fast(timeout=3.0, deadline=0.3) as f:
        t0 = time.perf_counter()
        with pytest.raises(FetchError, match="deadline of 0.3 s passed after 1 attempt .last: timed out"):
            f.get(url)
        assert time.perf_counter() - t0 < 2  # the read timeout would take 3 s: room for a loaded CI machine


def test_retry_after_past_the_deadline_gives_up_at_once(server):
    url = server.script("/busy", ("status", 503, {"Retry-After": "30"}), ("ok",))
    with fast(deadline=5) as f:
        t0 = time.perf_counter()
        with pytest.raises(FetchError) as err:
            f.get(url)
        assert time.perf_counter() - t0 < 1  # not 30 s of waiting to fail anyway
        assert f.stats.retries == 0
    assert err.value.parameter == url
    assert "deadline of 5 s would pass before the next attempt" in err.value.detail
    assert "HTTP 503 Service Unavailable; Retry-After 30.0 s" in err.value.detail
    assert server.hits["/busy"] == 1


def test_retries_stop_at_the_deadline(server):
    url = server.script("/down", ("status", 500))
    with fast(retries=1000, backoff=0.05, max_backoff=0.05, deadline=0.5) as f:
        t0 = time.perf_counter()
        with pytest.raises(FetchError, match=r"deadline of 0.5 s .*HTTP 500"):
            f.get(url)
        assert time.perf_counter() - t0 < 5  # not the 50 s of 1,000 retries: generous for a loaded machine
    assert 3 <= server.hits["/down"] < 25


def test_a_retry_wait_that_overruns_the_deadline_is_a_deadline_error(server):
    # Event.wait may oversleep: the attempt after it then has no time left, and must say so
    # (requests would raise ValueError for a timeout <= 0, which is no FetchError).
    class Oversleeping(threading.Event):
        def wait(self, seconds: float | None = None) -> bool:
            time.sleep(seconds + 0.6)
            return False

    url = server.script("/slow-retry", ("status", 503, {"Retry-After": "0"}), ("ok",))
    with fast(deadline=0.5) as f:
        f._closed = Oversleeping()
        with pytest.raises(FetchError, match=r"deadline of 0.5 s passed before requesting"):
            f.get(url)


def test_time_queued_for_a_host_slot_does_not_count(server):
    # per_host=1: the fifth request waits 1.2 s for its slot, more than its 1.0 s deadline, and
    # each request (0.3 s) has 0.7 s to spare on a loaded machine.
    urls = [server.script(f"/q{i}", ("ok", BODY, 0.3)) for i in range(5)]
    with fast(per_host=1, deadline=1.0) as f, ThreadPoolExecutor(5) as pool:
        assert list(pool.map(f.get, urls)) == [BODY] * 5


def test_the_indexer_records_a_dripping_image_as_a_failed_item(server, tmp_path):
    from PIL import Image, ImageDraw

    from bookidx.runner import index
    from bookidx.store import Index

    img = Image.new("RGB", (96, 64), (240, 235, 220))
    ImageDraw.Draw(img).ellipse((20, 10, 60, 50), fill=(20, 20, 20))  # not blank: a vector with a direction
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    jpeg = buf.getvalue()
    images = {"ok": server.script("/ok.jpg", ("ok", jpeg)),
              "drip": server.script("/drip.jpg", ("drip", jpeg, len(jpeg), 0.05))}
    canvases = [{
        "id": f"https://example.org/c/{name}", "type": "Canvas", "width": 96, "height": 64,
        "label": {"none": [name]},
        "items": [{"id": f"https://example.org/c/{name}/p", "type": "AnnotationPage", "items": [{
            "id": f"https://example.org/c/{name}/a", "type": "Annotation", "motivation": "painting",
            "target": f"https://example.org/c/{name}",
            "body": {"id": url, "type": "Image", "format": "image/jpeg", "width": 96, "height": 64},
        }]}],
    } for name, url in images.items()]
    spec = tmp_path / "manifest.json"
    spec.write_text(json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                "id": "https://example.org/m", "type": "Manifest",
                                "label": {"en": ["drip"]}, "items": canvases}))
    config = IndexConfig(model="test-pixels", workers=2, timeout=2.0, deadline=0.5)
    t0 = time.perf_counter()
    summary = index([str(spec)], tmp_path / "idx", config)
    assert time.perf_counter() - t0 < 10
    assert (summary.indexed, summary.failed) == (1, 1), summary.lines()
    with Index.open(tmp_path / "idx") as idx:
        assert [r.page.label for _, r in idx.items()] == ["ok"]
        [failure] = idx.failures()
    assert "deadline of 0.5 s passed while reading the body" in failure["reason"]
    assert images["drip"] in failure["reason"] or failure["source"] == images["drip"]


def test_fetch_limits_in_the_config_are_checked():
    for name in ("deadline", "cache_max_bytes"):
        with pytest.raises(ConfigError) as err:
            IndexConfig(**{name: -1})
        assert err.value.parameter == name


# -- the disk cache's size bound ---------------------------------------------------------------

def _cached(folder) -> dict[str, int]:
    """Cached file name -> size (temporary files included)."""
    return {p.name: p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_cache_evicts_the_least_recently_used(server, tmp_path):
    urls = {name: server.script(f"/{name}", ("ok",)) for name in "abcd"}
    names = {hashlib.sha256(u.encode()).hexdigest(): n for n, u in urls.items()}
    # Room for three bodies and a half; eviction frees down to 90 % (32 256 bytes): one goes.
    with fast(cache_dir=tmp_path, cache_max_bytes=3 * len(BODY) + len(BODY) // 2) as f:
        for name in "abc":
            f.get(urls[name])
        now = time.time()
        for age, name in zip((300, 200, 100), "abc"):  # a oldest, then b, then c
            os.utime(f.cache_path(urls[name]), (now - age, now - age))
        assert f.get(urls["a"]) == BODY  # a hit: a is now the most recently used
        assert f.get(urls["d"]) == BODY  # over the bound: the least recently used (b) goes
        assert sorted(names[n] for n in _cached(tmp_path)) == ["a", "c", "d"]
        assert f.get(urls["b"]) == BODY  # fetched again, and c (now the oldest) goes
        assert sorted(names[n] for n in _cached(tmp_path)) == ["a", "b", "d"]
    assert server.hits == {"/a": 1, "/b": 2, "/c": 1, "/d": 1}


@pytest.mark.parametrize("bound, walks", [(100 * len(BODY), 1), (0, 0)])
def test_cache_walks_its_folder_rarely(server, tmp_path, monkeypatch, bound, walks):
    counted = []
    scandir = os.scandir

    def counting(path="."):
        if os.fspath(path) == os.fspath(tmp_path):
            counted.append(path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    urls = [server.script(f"/w{i}", ("ok",)) for i in range(9)]  # 9 bodies: under a tenth of 100
    with fast(cache_dir=tmp_path, cache_max_bytes=bound) as f:
        for url in urls:
            f.get(url)
    monkeypatch.undo()
    assert len(counted) == walks  # the first write only (0: no bound, never)
    assert len(_cached(tmp_path)) == 9


def test_cache_shared_by_processes_stays_near_its_bound(server, tmp_path):
    """Two fetchers on one folder, as two processes would be (they share nothing in memory),
    each with several threads: files vanish under each other's walks and reads; every body
    comes back whole, and the folder ends near its bound."""
    bound = 12 * len(BODY)
    urls = [server.script(f"/s{i}", ("ok",)) for i in range(60)]
    with fast(cache_dir=tmp_path, cache_max_bytes=bound, per_host=8) as one, \
            fast(cache_dir=tmp_path, cache_max_bytes=bound, per_host=8) as two, \
            ThreadPoolExecutor(8) as pool:
        jobs = [(f, url) for _ in range(2) for url in urls for f in (one, two)]
        assert list(pool.map(lambda job: job[0].get(job[1]), jobs)) == [BODY] * len(jobs)
    files = _cached(tmp_path)
    assert not [n for n in files if n.startswith(".part-")]
    assert 0 < sum(files.values()) <= 1.3 * bound  # each process overruns by at most a tenth


def test_a_body_written_during_a_walk_is_evicted_for(tmp_path):
    # Another thread's write lands after the walk listed the folder: the walker must walk
    # again, or the folder stays over its bound until some later write.
    from bookidx.fetchcache import DiskCache

    cache = DiskCache(tmp_path, max_bytes=3000)
    for i in range(3):
        cache.write(f"https://x.org/{i}", b"a" * 1000)
    listing, walks = cache._entries, []

    def entries():
        listed = list(listing())
        walks.append(len(listed))
        if len(walks) == 1:  # the first walk: a late body arrives from another thread
            late = threading.Thread(target=cache.write, args=("https://x.org/late", b"b" * 1500))
            late.start()
            late.join()
        return iter(listed)

    cache._entries = entries
    cache.write("https://x.org/3", b"a" * 1000)
    assert len(walks) == 2 and sum(_cached(tmp_path).values()) <= 3000
    assert cache.read("https://x.org/late") is not None  # the newest stays


def test_eviction_skips_files_another_process_removed(server, tmp_path, monkeypatch):
    urls = [server.script(f"/v{i}", ("ok",)) for i in range(8)]
    with fast(cache_dir=tmp_path, cache_max_bytes=100 * len(BODY)) as f:
        for url in urls[:6]:
            f.get(url)
    scandir = os.scandir

    def racing(path="."):  # another process evicts every other file right after each listing
        entries = list(scandir(path))
        if os.fspath(path) != os.fspath(tmp_path):
            for entry in entries[::2]:
                os.unlink(entry.path)
        return iter(entries)

    monkeypatch.setattr(os, "scandir", racing)
    with fast(cache_dir=tmp_path, cache_max_bytes=4 * len(BODY)) as f:
        for url in urls[6:]:
            assert f.get(url) == BODY
    monkeypatch.undo()
    assert sum(_cached(tmp_path).values()) <= 4 * len(BODY)
