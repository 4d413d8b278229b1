"""Load test: concurrent HTTP clients for a fixed time against ``bookidx serve`` on 127.0.0.1.

Starts the real server (waitress, ``--threads`` workers) as its own process, then runs
``--clients`` client threads, each with its own keep-alive session, for ``--seconds``. Each
client picks requests from a fixed mix that a search page produces: keyword/fused text search,
item → similar, item details, crop thumbnails, image upload search and health checks. Reports
requests/s, errors (any status other than 200, or no answer within 30 s) and p50/p95/p99/max
latency per kind; exits 1 if there was any error.

Without ``--index`` it builds a demo index from the NLS chapbooks in ``../shared`` (up to 500
pages with their catalogue notes as captions; the ``test-pixels`` model of tests/conftest.py, so
no weights are needed) and serves it with ``tests/pixelcli.py serve``. With ``--index`` it serves
that index with ``bookidx serve`` (its own model answers uploads and vector text queries).

    python bench/load.py                          # demo index, 16 clients, 8 threads, 20 s
    python bench/load.py --clients 32 --seconds 60 --json load.json
    python bench/load.py --index /data/idx/books  # an existing index
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
WORDS = ["woodcut", "title", "ballad", "song", "songs", "Glasgow", "Edinburgh", "Stirling", "printed", "history",
         "life", "king", "love", "sailor", "garland", "Falkirk", "murder", "ship", "horse", "prophecies", "zzzz"]
# kind -> share of requests
MIX = {"text": 0.40, "similar": 0.25, "item": 0.15, "crop": 0.10, "upload": 0.05, "health": 0.05}


def demo_index(path: Path, n: int) -> None:
    """The chapbook woodcuts of tests/webindex.py, ``n`` pages, embedded with test-pixels."""
    sys.path.insert(0, str(TESTS))
    from conftest import CHAPBOOKS  # noqa: F401  (also registers test-pixels)
    from webindex import build_index, chapbook_regions

    from bookidx.embed import load_embedder

    if not (CHAPBOOKS / "manifest.csv").is_file():
        sys.exit(f"no chapbooks at {CHAPBOOKS}: pass --index, or set BOOKIDX_SHARED")
    build_index(path, CHAPBOOKS, load_embedder("test-pixels"), chapbook_regions(CHAPBOOKS, n=n))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int, threads: int, demo: bool, log: Path) -> subprocess.Popen:
    # the demo index needs the test-pixels model registered; any other index runs `bookidx serve`
    cli = ([sys.executable, str(TESTS / "pixelcli.py")] if demo
           else [sys.executable, "-c", "from bookidx.cli import cli; cli(prog_name='bookidx')"])
    # the log goes to a file: a pipe nobody reads fills up and then blocks every server thread
    with open(log, "wb") as out:
        proc = subprocess.Popen(cli + ["serve", str(index), "--port", str(port), "--threads", str(threads)],
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/bookidx"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/api/health", timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("server did not answer within 60 s")


class Client(threading.Thread):
    """One user: a keep-alive session sending the request mix until ``stop``."""

    def __init__(self, base: str, ids: list[str], upload: bytes, seed: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.ids, self.upload, self.stop = base, ids, upload, stop
        self.rng = random.Random(seed)
        self.results: list[tuple[str, float, str]] = []  # kind, seconds, "" or what went wrong

    def request(self, session: requests.Session, kind: str) -> requests.Response:
        item = self.rng.choice(self.ids)
        if kind == "text":
            words = " ".join(self.rng.sample(WORDS, self.rng.randint(1, 2)))
            return session.get(f"{self.base}/api/search", params={"q": words}, timeout=30)
        if kind == "similar":
            return session.get(f"{self.base}/api/items/{item}/similar", params={"limit": 24}, timeout=30)
        if kind == "item":
            return session.get(f"{self.base}/api/items/{item}", timeout=30)
        if kind == "crop":
            return session.get(f"{self.base}/crops/{item}.jpg", timeout=30, allow_redirects=False)
        if kind == "upload":
            files = {"image": ("q.jpg", self.upload, "image/jpeg")}
            return session.post(f"{self.base}/api/search", files=files, timeout=30)
        return session.get(f"{self.base}/api/health", timeout=30)

    def run(self) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        with requests.Session() as session:
            while not self.stop.is_set():
                kind = self.rng.choices(kinds, weights)[0]
                t0 = time.perf_counter()
                try:
                    r = self.request(session, kind)
                    r.content  # noqa: B018 - read the whole body, as a browser does
                    ok = r.status_code == 200 or (kind == "crop" and r.status_code == 302)
                    error = "" if ok else f"HTTP {r.status_code}: {r.text[:100]}"
                except requests.RequestException as e:
                    error = f"{type(e).__name__}: {e}"
                self.results.append((kind, time.perf_counter() - t0, error))


def item_ids(base: str, n: int) -> list[str]:
    """Item ids to ask for: hits of broad searches plus their neighbours."""
    ids: set[str] = set()
    for word in WORDS:
        for hit in requests.get(f"{base}/api/search", params={"q": word, "limit": 100}, timeout=30).json()["hits"]:
            ids.add(hit["id"])
    for item in list(ids)[:20]:
        for hit in requests.get(f"{base}/api/items/{item}/similar", params={"limit": 100}, timeout=30).json()["hits"]:
            ids.add(hit["id"])
    if not ids:
        sys.exit("the index answered no search with hits: nothing to load-test")
    return sorted(ids)[:n]


def query_image(base: str, item: str) -> bytes:
    """A JPEG of an indexed item's crop, as a user would upload a photo of a picture."""
    r = requests.get(f"{base}/crops/{item}.jpg", timeout=30)
    if r.status_code == 200:
        return r.content
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def summarise(results: list[tuple[str, float, str]], seconds: float) -> dict:
    by_kind: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    for kind, took, error in results:
        by_kind[kind].append(took)
        if error:
            errors[kind].append(error)

    def stats(values: list[float]) -> dict:
        ms = np.asarray(values) * 1000
        return {"n": len(values), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
                "max_ms": round(float(ms.max()), 1)}

    out = {"requests": len(results), "seconds": round(seconds, 1), "requests_per_s": round(len(results) / seconds, 1),
           "errors": sum(len(v) for v in errors.values()), "all": stats([t for _, t, _ in results]),
           "by_kind": {k: {**stats(v), "errors": len(errors.get(k, ()))} for k, v in sorted(by_kind.items())}}
    if errors:
        out["error_samples"] = {k: v[:3] for k, v in errors.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=None, help="serve this index (default: build the demo index)")
    p.add_argument("--pages", type=int, default=500, help="chapbook pages in the demo index")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bookidx-load-") as tmp:
        demo = args.index is None
        index = Path(tmp) / "idx" if demo else args.index
        if demo:
            t0 = time.perf_counter()
            demo_index(index, args.pages)
            print(f"demo index: {args.pages} chapbook pages in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        port, log = free_port(), Path(tmp) / "server.log"
        server = start_server(index, port, args.threads, demo, log)
        base = f"http://127.0.0.1:{port}/bookidx"
        try:
            ids = item_ids(base, 400)
            upload = query_image(base, ids[0])
            stop = threading.Event()
            clients = [Client(base, ids, upload, seed, stop) for seed in range(args.clients)]
            t0 = time.perf_counter()
            for c in clients:
                c.start()
            time.sleep(args.seconds)
            stop.set()
            for c in clients:
                c.join(60)
            took = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(10)
        lines = log.read_text(errors="replace").splitlines()
    result = summarise([r for c in clients for r in c.results], took)
    result["server_log_lines"] = len(lines)  # waitress warns "Task queue depth is N" when all threads are busy
    result["server_log_sample"] = sorted(set(line.split(" is ")[0] for line in lines))[:5]
    result.update(clients=args.clients, threads=args.threads, items=len(ids), cpus=os.cpu_count(),
                  index="demo" if demo else str(args.index))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
