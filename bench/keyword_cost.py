"""Where keyword search's time goes on a large index: FTS5 ``bm25()`` over every match.

Opens an index made by bench/serve_latency.py (read-only) and times, best of ``--repeat``:

* ``Index.text_search`` (k = 24) for each of the 200 words serve_latency's keyword queries use;
* for the commonest of them, SQL forms of the same ranking (Queries.text_search's inner query):
  counting the matches, scoring them unsorted, scoring and keeping 24 (ours), and FTS5's own
  ``ORDER BY rank`` path (https://www.sqlite.org/fts5.html#sorting_by_auxiliary_function_results),
  with the page cache and memory map the connection has, and bigger ones;
* the second commonest word, and both words together (FTS5 ANDs them before scoring);
* a digest of every word's first 25 keys and scores from that SQL, so that two SQLite builds
  (``--sqlite pysqlite3``: a module with the stdlib's API) can be checked to rank alike.

    python bench/keyword_cost.py /tmp/bookidx-bench-1m
    python bench/keyword_cost.py /tmp/bookidx-bench-1m --sqlite pysqlite3
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import serve_latency  # the benchmark's vocabulary

from bookidx.meta import BM25_WEIGHTS, DB
from bookidx.store import Index

WEIGHTS = ", ".join(str(w) for w in BM25_WEIGHTS)
FORMS = {
    "count the matches": "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?",
    "score, no sort": f"""SELECT max(r) FROM (SELECT bm25(items_fts, {WEIGHTS}) AS r FROM items_fts
                          WHERE items_fts MATCH ? LIMIT -1)""",
    "score, first 24 (ours)": f"""SELECT rowid, bm25(items_fts, {WEIGHTS}) AS r FROM items_fts
                                  WHERE items_fts MATCH ? ORDER BY r, rowid LIMIT 24""",
    "ORDER BY rank LIMIT 24": f"""SELECT rowid, rank FROM items_fts WHERE items_fts MATCH ?
                                  AND rank MATCH 'bm25({WEIGHTS})' ORDER BY rank LIMIT 24""",
}
PRAGMAS = ([], ["PRAGMA cache_size = -262144"], ["PRAGMA mmap_size = 4000000000"])


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("index", type=Path)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--sqlite", default="sqlite3", help="the DB-API module for the SQL forms")
    args = p.parse_args(argv)
    words = serve_latency.vocabulary()[:200]  # Zipf by position: the first is the commonest

    with Index.open(args.index) as idx:
        ms = sorted(best(lambda w=w: idx.text_search(w, 24), args.repeat) for w in words)
    print(f"text_search, 200 words: mean {sum(ms) / len(ms):.1f} ms, p50 {ms[100]:.1f}, max {ms[-1]:.1f}")

    sqlite = importlib.import_module(args.sqlite)
    uri = f"file:{(args.index / DB).resolve()}?mode=ro"
    print(f"SQLite {sqlite.sqlite_version} ({args.sqlite}), the word {words[0]!r}:")
    for pragmas in PRAGMAS:
        con = sqlite.connect(uri, uri=True)
        for pragma in pragmas:
            con.execute(pragma).fetchall()
        for name, sql in FORMS.items():
            took = best(lambda c=con, q=sql: c.execute(q, (f'"{words[0]}"',)).fetchall(), args.repeat)
            print(f"  {took:7.1f} ms  {name:24} {' '.join(pragmas)}")
        con.close()

    con = sqlite.connect(uri, uri=True)
    ours = FORMS["score, first 24 (ours)"]
    for match in (f'"{words[1]}"', f'"{words[0]}" "{words[1]}"'):  # AND: FTS5 scores the intersection
        took = best(lambda m=match: con.execute(ours, (m,)).fetchall(), args.repeat)
        print(f"  {took:7.1f} ms  {match}")
    top = FORMS["score, first 24 (ours)"].replace("LIMIT 24", "LIMIT 25")
    digest = hashlib.sha256(repr([con.execute(top, (f'"{w}"',)).fetchall() for w in words]).encode())
    print(f"first 25 keys and scores of the 200 words: sha256 {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
