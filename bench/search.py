"""Benchmark the index store (store.py) on synthetic clustered vectors.

Builds an index through the public API (Index.create_or_open / add / commit / close), reopens
it read-only as the web server does, and reports: build time (SQLite rows vs graph inserts vs
the final save), single-query latency p50/p95 of ``Index.search`` end to end (graph + SQLite
regions), batch queries per second, recall@10 against exact search over the stored vectors,
filtered and keyword search latency, bytes per vector on disk, and RSS of writer and reader.

Data: ``--clusters`` random centres on the unit sphere, each vector a centre plus Gaussian
noise (``--noise``), normalised; queries are fresh draws from the same clusters. That mimics
embeddings of a picture collection (many near-duplicates per motif) better than uniform noise,
on which every ANN index looks worse than it is in use.

    python bench/search.py                    # 100k x 768-d f16: 7.5 min on 2 busy shared cores,
                                              # nearly all of it the HNSW build (~250 items/s there)
    python bench/search.py --n 1000000        # 1M: a 1.7 GB graph file; needs many cores
    python bench/search.py --json out.json    # also write the numbers as JSON
    python bench/search.py --dir D            # keep the index in D/index; a second run reuses it
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bookidx.adapters.records import Book, Box, ImageRef, Page, Region
from bookidx.config import IndexConfig
from bookidx.store import Filters, Index

WORDS = "ship sea castle portrait map bird horse tree church ruin bridge harbour king queen battle".split()


def centres(args) -> np.ndarray:
    c = np.random.default_rng(0).normal(size=(args.clusters, args.ndim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def draw(args, n: int, seed: int) -> np.ndarray:
    """n unit vectors around the shared centres; the same seed gives the same vectors."""
    rng = np.random.default_rng(seed)
    c = centres(args)
    noise = rng.normal(scale=args.noise / np.sqrt(args.ndim), size=(n, args.ndim)).astype(np.float32)
    v = c[rng.integers(len(c), size=n)] + noise
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunk(args, start: int) -> np.ndarray:
    return draw(args, min(args.n, start + args.chunk) - start, seed=1 + start)


def region(i: int) -> Region:
    book = f"book-{i % 1000}"
    page = Page(id=f"{book}/p{i // 1000}", index=i // 1000, image=ImageRef(2000, 3000, path=f"/scans/{book}/{i // 1000}.jpg"),
                manifest=f"https://example.org/iiif/{i % 100}/manifest")
    return Region(page=page, box=Box(i % 7, 10, 400, 300), kind="map" if i % 10 < 3 else "illustration",
                  caption=f"{WORDS[i % len(WORDS)]} and {WORDS[(i // 7) % len(WORDS)]}",
                  book=Book(id=book, title=f"Chapbook {i % 1000}", date=str(1700 + i % 200)))


def rss_mb() -> dict[str, float]:
    """Current and peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    fork + exec, so a child would report its parent's peak."""
    out = {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        out["now_mb"] = int(fields["VmRSS"].split()[0]) / 1024
        out["peak_mb"] = int(fields["VmHWM"].split()[0]) / 1024
    return out


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def build(path: Path, args) -> dict:
    config = IndexConfig(dtype=args.dtype, expansion_search=args.ef)
    model = {"model": "bench-synthetic", "ndim": args.ndim, "preprocess": {}}
    t_sql = t_graph = 0.0
    t0 = time.perf_counter()
    idx = Index.create_or_open(path, model_info=model, config=config)
    idx.save_interval = float("inf")  # one save at close, timed on its own
    for start in range(0, args.n, args.chunk):
        stop = min(args.n, start + args.chunk)
        vecs = chunk(args, start)
        regions = [region(i) for i in range(start, stop)]
        for b in range(0, len(regions), args.commit_every):
            t1 = time.perf_counter()
            idx.add(regions[b : b + args.commit_every], vecs[b : b + args.commit_every])
            t2 = time.perf_counter()
            idx.commit()  # SQLite commit, then the graph insert
            t_sql += t2 - t1
            t_graph += time.perf_counter() - t2
        print(f"  built {stop:>9,} items, {time.perf_counter() - t0:7.1f} s", file=sys.stderr, flush=True)
    t1 = time.perf_counter()
    idx.close()
    t_save = time.perf_counter() - t1
    total = time.perf_counter() - t0
    return {"seconds": total, "items_per_s": args.n / total, "add_sqlite_s": t_sql, "commit_graph_s": t_graph,
            "save_s": t_save, "writer_rss": rss_mb()}


def stored_vectors(path: Path, args) -> np.ndarray:
    """Regenerate the data exactly as stored (rounded to f16), for ground truth."""
    data = np.vstack([chunk(args, s) for s in range(0, args.n, args.chunk)])
    if args.dtype != "f32":
        data = data.astype(np.float16).astype(np.float32)
    return data


def query(path: Path, args) -> dict:
    queries = draw(args, args.queries, seed=-1 % 2**32)  # fresh draws from the same clusters
    keys = np.array([region(i).key for i in range(args.n)], dtype=np.int64)

    data = stored_vectors(path, args)
    truth = np.empty((len(queries), 10), dtype=np.int64)
    for s in range(0, len(queries), 100):
        sims = queries[s : s + 100] @ data.T
        top = np.argpartition(-sims, 9, axis=1)[:, :10]
        truth[s : s + 100] = keys[top]
    del data

    out: dict = {}
    t0 = time.perf_counter()
    idx = Index.open(path)
    out["open_s"] = time.perf_counter() - t0
    lat, found = [], 0
    for q, want in zip(queries, truth):
        t0 = time.perf_counter()
        hits = idx.search(q, k=10)
        lat.append(time.perf_counter() - t0)
        found += len({h.key for h in hits} & set(want.tolist()))
    out["single"] = percentiles(lat)
    out["recall_at_10"] = found / truth.size
    t0 = time.perf_counter()
    idx.search(queries, k=10)
    out["batch_qps"] = len(queries) / (time.perf_counter() - t0)

    filters = {"manifest_1pct": Filters(manifest="https://example.org/iiif/7/manifest"),
               "kind_map_30pct": Filters(kinds=("map",)),
               "kind_illustration_70pct": Filters(kinds=("illustration",)),
               "years_1750_1760_5pct": Filters(date_from=1750, date_to=1759)}
    out["filtered"] = {}
    for name, flt in filters.items():
        lat = []
        for q in queries[:50]:
            t0 = time.perf_counter()
            idx.search(q, k=10, filters=flt)
            lat.append(time.perf_counter() - t0)
        out["filtered"][name] = percentiles(lat)
    lat = []
    for i in range(100):
        t0 = time.perf_counter()
        idx.text_search(f"{WORDS[i % len(WORDS)]} {WORDS[(i * 3) % len(WORDS)]}", k=10)
        lat.append(time.perf_counter() - t0)
    out["text_search"] = percentiles(lat)
    files = idx.stats()["files"]
    out["bytes_per_vector_file"] = files["vectors.usearch"] / args.n
    out["bytes_per_item_sqlite"] = (files["meta.sqlite"] + files.get("meta.sqlite-wal", 0)) / args.n
    idx.close()
    return out


def reader_rss(path: Path, args) -> dict:
    """RSS of a fresh reader process after opening and 1000 searches (the mapped file counts)."""
    code = (
        "import sys, json, numpy as np; sys.path.insert(0, %r); import search as b; from bookidx.store import Index;"
        "idx = Index.open(%r); q = np.random.default_rng(1).normal(size=(1000, %d)).astype('float32');"
        "[idx.search(v, k=10) for v in q]; print(json.dumps(b.rss_mb()))"
    ) % (str(Path(__file__).parent), str(path), args.ndim)
    return json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--ndim", type=int, default=768)
    p.add_argument("--dtype", default="f16", choices=["f32", "f16", "bf16", "i8"])
    p.add_argument("--ef", type=int, default=IndexConfig().expansion_search, help="expansion_search")
    p.add_argument("--clusters", type=int, default=2000)
    p.add_argument("--noise", type=float, default=0.6, help="noise norm relative to the unit centre")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=50_000, help="items generated at a time")
    p.add_argument("--commit-every", type=int, default=1024)
    p.add_argument("--dir", type=Path, default=None, help="keep the index in DIR/index and reuse it (default: temporary)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bookidx-bench-") as tmp:
        path = (args.dir or Path(tmp)) / "index"
        result = {"n": args.n, "ndim": args.ndim, "dtype": args.dtype, "ef": args.ef, "clusters": args.clusters}
        if (path / "bookidx.json").exists():  # --dir with a built index: measure queries only
            Index.open(path, readonly=False).close()  # migrates an index built by older code
            result["build"] = "reused"
        else:
            result["build"] = build(path, args)
        result["query"] = query(path, args)
        result["reader_rss"] = reader_rss(path, args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return result


if __name__ == "__main__":
    main()
