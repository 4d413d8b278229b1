"""Benchmark ``bookidx serve``: HTTP latency under concurrent clients, and the server's memory.

Builds (once, reused afterwards) a synthetic index through the store's public API: ``--items``
random clustered 256-d vectors (``--clusters`` centres on the unit sphere, Gaussian noise),
each with real-looking metadata (IIIF image, manifest, book, year, kind, a caption of 3 to 6
words from a 2,000-word Zipf-distributed vocabulary). Then serves it with ``bookidx.web.serve``
(waitress, ``--threads``) in a separate process on 127.0.0.1 and runs ``--clients`` concurrent
HTTP clients for ``--seconds`` per query type:

* ``similar``: ``GET /api/items/ID/similar`` for random items (vector search, no model);
* ``keyword``: ``GET /api/search?q=WORD&mode=keyword`` (SQLite FTS5 BM25; one of the 200
  commonest caption words, so every query has hits);
* ``fused``: ``GET /api/search?q=WORD`` (text vector + BM25, reciprocal rank fusion);
* ``stats``: ``GET /api/stats`` (counts by GROUP BY, cached until the next commit), only when
  named in ``--kinds``.

With ``--write-rate R``, each query type is measured twice, side by side: alone, then while a
second process adds R new items per second to the same index (one commit a second, as
``bookidx index`` commits), which is what a library does when it indexes a new collection into
the index it serves. Afterwards every committed item must be found by the server
(``/api/items/ID/similar`` answers: its metadata and its vector are both visible): search
stays correct while the index grows.

Fused queries need a text encoder: the server process registers ``bench-words``, a hashing
"model" (each word maps to one cluster centre; a text is the normalised sum of its words), so
the measured time is the server's and the index's, not a neural network's. Reported: requests
per second, p50/p95/p99 latency (client-side, whole HTTP round trip) and the server's RSS
(now and peak) after each phase.

    python bench/serve_latency.py                       # 100k items, 8 clients, 15 s per type
    python bench/serve_latency.py --items 1000000 --dir /tmp/bookidx-bench-1m
    python bench/serve_latency.py --items 1000000 --dir /tmp/bookidx-bench-1m --write-rate 200
    python bench/serve_latency.py --items 1000000 --dir /tmp/bookidx-bench-1m --kinds stats keyword
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import requests

from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.embed import Embedder, normalize, register_embedder

NDIM, SEED = 256, 7
KINDS = ("similar", "keyword", "fused", "stats")


class WordsEmbedder(Embedder):
    """Texts → the normalised sum of one cluster centre per word (crc32 of the word)."""

    model_id = "bench-words"
    ndim = NDIM
    supports_text = True

    def __init__(self, clusters: int = 1000, **options):
        self.device = "cpu"
        self.centres = centres(clusters)

    def preprocess_info(self):
        return {"size": 16, "mode": "L"}

    def preprocess(self, image):
        arr = np.asarray(image.convert("L").resize((16, 16)), dtype=np.float32).reshape(-1)
        return arr - arr.mean()

    def embed_arrays(self, batch):
        return normalize(batch)

    def embed_texts(self, texts):
        rows = [sum(self.centres[zlib.crc32(w.encode()) % len(self.centres)] for w in t.lower().split()) for t in texts]
        return normalize(np.stack(rows))


register_embedder("bench-words", WordsEmbedder)


def centres(n: int) -> np.ndarray:
    c = np.random.default_rng(SEED).normal(size=(n, NDIM)).astype(np.float32)
    return normalize(c)


def vocabulary(n: int = 2000) -> list[str]:
    rng = random.Random(SEED)
    return sorted({"".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9))) for _ in range(n)})


def build(path: Path, items: int, clusters: int) -> None:
    """The synthetic index: vectors near the centre of their caption's first word."""
    from bookidx.config import IndexConfig
    from bookidx.store import Index

    words = vocabulary()
    weights = 1.0 / np.arange(1, len(words) + 1)  # Zipf: a few words are common, most are rare
    weights /= weights.sum()
    embedder = WordsEmbedder(clusters)
    rng = np.random.default_rng(SEED)
    index = Index.create_or_open(path, model_info=embedder.info, config=IndexConfig(model="bench-words"))
    index.save_interval = float("inf")  # one save at close
    t0 = time.perf_counter()
    try:
        for start in range(0, items, 10_000):
            n = min(items, start + 10_000) - start
            lengths = rng.integers(3, 7, size=n)
            drawn = rng.choice(len(words), size=int(lengths.sum()), p=weights)  # one draw per batch: fast
            caption_words = [[words[w] for w in ws] for ws in np.split(drawn, np.cumsum(lengths)[:-1])]
            base = embedder.embed_texts([" ".join(c[:1]) for c in caption_words])
            vectors = normalize(base + rng.normal(scale=0.5 / np.sqrt(NDIM), size=base.shape).astype(np.float32))
            regions = [_region(start + i, " ".join(c)) for i, c in enumerate(caption_words)]
            index.add(regions, vectors)
            index.commit()
            print(f"  built {start + n:>9,} items, {time.perf_counter() - t0:6.1f} s", file=sys.stderr, flush=True)
    finally:
        index.close()
    print(f"  saved, {time.perf_counter() - t0:6.1f} s", file=sys.stderr)


def write(path: str, start: int, rate: int, seconds: float, log: str, clusters: int = 1000) -> None:
    """Add ``rate`` items a second (keys after ``start``) for ``seconds``, committing each second;
    append the number committed so far to ``log`` after each commit."""
    from bookidx.config import IndexConfig
    from bookidx.store import Index

    embedder, rng, words = WordsEmbedder(clusters), np.random.default_rng(start), vocabulary()
    index = Index.create_or_open(Path(path), model_info=embedder.info, config=IndexConfig(model="bench-words"))
    n, end = start, time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            tick = time.monotonic()
            captions = [" ".join(rng.choice(words, size=4)) for _ in range(rate)]
            base = embedder.embed_texts(captions)
            vectors = normalize(base + rng.normal(scale=0.5 / np.sqrt(NDIM), size=base.shape).astype(np.float32))
            index.add([_region(n + i, c) for i, c in enumerate(captions)], vectors)
            index.commit()
            n += rate
            with open(log, "a") as f:
                f.write(f"{n - start}\n")
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        index.close()


def _region(i: int, caption: str) -> Region:
    book = i // 50
    page = Page(
        id=f"https://example.org/iiif/{book}/canvas/{i % 50}", index=i % 50,
        image=ImageRef(2400, 3600, service=f"https://example.org/iiif/image/{book}-{i % 50}", api=2),
        width=2400, height=3600, label=f"p. {i % 50 + 1}", manifest=f"https://example.org/iiif/{book}/manifest",
    )
    return Region(
        page=page, box=Box(100 + i % 300, 200, 1200, 900), kind=("Illustration", "Map", "GraphicalElement")[i % 3],
        caption=caption, book=Book(id=f"book-{book}", title=f"Book {book}", date=str(1700 + book % 200)),
    )


def serve_process(index_dir: Path, port: int, threads: int) -> subprocess.Popen:
    code = (
        f"import logging, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import serve_latency; "
        # waitress logs every request that waits for a free thread: expected under this load.
        "logging.getLogger('waitress.queue').setLevel(logging.ERROR); "
        f"from bookidx.web.serve import serve; serve({str(index_dir)!r}, '127.0.0.1', {port}, {threads})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/bookidx/api/health", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def rss_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024}


def load(urls, clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads, each with its own keep-alive session, for ``seconds``."""
    latencies: list[float] = []
    errors = [0]
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng, mine, bad = random.Random(seed), [], 0
        with requests.Session() as s:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = s.get(urls(rng), timeout=30)
                mine.append(time.perf_counter() - t0)
                bad += r.status_code != 200
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ms = np.asarray(latencies) * 1000
    return {"requests": len(ms), "errors": errors[0], "rps": len(ms) / seconds,
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99))}


def report(name: str, r: dict) -> None:
    print(f"{name:16} {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  "
          f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}  server RSS {r['rss_mb']:.0f} MB (peak {r['peak_rss_mb']:.0f})")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--dir", type=Path, default=None, help="where the index is built and kept (default: /tmp/bookidx-serve-<items>)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    p.add_argument("--seconds", type=float, default=15.0, help="per query type")
    p.add_argument("--write-rate", type=int, default=0, help="items/s a concurrent writer adds (0: no writer phase)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=KINDS[:3], help="query types, in this order")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    index_dir = args.dir or Path(f"/tmp/bookidx-serve-{args.items}")
    if not (index_dir / "bookidx.json").is_file():
        build(index_dir, args.items, args.clusters)
    from bookidx.store import Index

    with Index.open(index_dir) as idx:  # an earlier --write-rate run may have grown it
        total = len(idx)
    keys = [_region(i, "").key for i in range(args.items)]
    words = vocabulary()[:200]  # common-ish words, so keyword queries find something
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = serve_process(index_dir, port, args.threads)
    base = f"http://127.0.0.1:{port}/bookidx/api"
    kinds = {
        "similar": lambda rng: f"{base}/items/{rng.choice(keys)}/similar?limit=24",
        "keyword": lambda rng: f"{base}/search?mode=keyword&limit=24&q={rng.choice(words)}",
        "fused": lambda rng: f"{base}/search?limit=24&q={rng.choice(words)}",
        "stats": lambda rng: f"{base}/stats",
    }
    result = {"items": args.items, "clients": args.clients, "threads": args.threads, "seconds": args.seconds,
              "idle": rss_mb(proc.pid)}
    try:
        for name in args.kinds:
            urls = kinds[name]
            load(urls, 2, 2.0)  # warm-up: caches, the model, pooled SQLite connections
            result[name] = load(urls, args.clients, args.seconds) | rss_mb(proc.pid)
            report(name, result[name])
            if args.write_rate:
                log = index_dir / "bench-writer.log"
                log.unlink(missing_ok=True)
                writer = subprocess.Popen([sys.executable, "-c", (
                    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import serve_latency; "
                    f"serve_latency.write({str(index_dir)!r}, {total}, {args.write_rate}, {args.seconds + 3}, {str(log)!r})")])
                time.sleep(2)  # the writer opens the index (loads its graph) before adding
                result[name + "+writing"] = load(urls, args.clients, args.seconds) | rss_mb(proc.pid)
                report(name + "+writing", result[name + "+writing"])
                writer.wait(120)
                committed = int(log.read_text().split()[-1]) if log.exists() else 0
                new_keys = [_region(i, "").key for i in range(total, total + committed)]
                time.sleep(3)  # BOOKIDX_REFRESH_SECONDS is 2: the server picks the last commit up
                missing = sum(requests.get(f"{base}/items/{k}/similar?limit=1", timeout=30).status_code != 200 for k in new_keys[:: max(1, committed // 200)])
                result[name + "+writing"] |= {"committed": committed, "missing_sampled": missing}
                print(f"         writer committed {committed} items; sampled ones the server cannot find: {missing}")
                total += committed
    finally:
        proc.terminate()
        proc.wait(10)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
