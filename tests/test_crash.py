"""``kill -9`` of the ``bookidx index`` CLI at random moments, while searches go on (issue 7).

The CLI runs as a real process (``tests/pixelcli.py``: bookidx with the ``test-pixels`` model)
over a folder of 400 small JPEGs, committing every 8 items, and is killed with SIGKILL: a quarter
of the time after a random delay within its start-up (imports, index creation, reading the
sources), otherwise a random few milliseconds after a random number of further items were
committed (mid-batch, mid-commit, or while it saves the vector file). After every kill the
index must open, hold each item once (and each item's own vector must find it), and keep every
item a reader saw committed before; the next run must resume and end with exactly the whole
collection. Meanwhile a reader thread searches the same
index without pause: it must never fail, and the item count it sees must never go down.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bookidx.errors import NotFound
from bookidx.store import Index

CLI = [sys.executable, str(Path(__file__).with_name("pixelcli.py"))]
IMAGES = 400
ROUNDS, TRIALS = 6, 4  # 24 kills, each round on a fresh index
CONFIG = '[index]\nmodel = "test-pixels"\ncommit_every = 8\nbatch_size = 8\nworkers = 2\n'


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """400 distinct noise JPEGs of 200 x 150 px: one whole-image region each."""
    folder = tmp_path_factory.mktemp("collection") / "images"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(IMAGES):
        Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)).save(folder / f"p{i:04d}.jpg", quality=80)
    (folder.parent / "config.toml").write_text(CONFIG)
    return folder


def run_cli(collection: Path, index_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        CLI + ["index", str(collection), "--index", str(index_dir), "--config", str(collection.parent / "config.toml"),
               "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def committed(index_dir: Path) -> set[int] | None:
    """The items a fresh reader finds, after checking the index is whole; None: no index yet.

    Only for an index nobody is writing: a reader's vector snapshot is taken when it opens, so
    items committed a moment later are listed but not yet searchable by that reader.
    """
    try:
        idx = Index.open(index_dir)
    except NotFound:  # killed before the index existed (or before its schema was committed)
        return None
    with idx:
        keys = [k for k, _ in idx.items()]
        assert len(keys) == len(set(keys)) == len(idx)  # no duplicates
        if keys:
            sample = random.Random(len(keys)).sample(keys, min(20, len(keys)))
            vectors = np.stack([idx.vector(k) for k in sample])
            assert [hits[0].key for hits in idx.search(vectors, k=1)] == sample  # each finds itself
        assert idx.failures() == []
        return set(keys)


class Searcher(threading.Thread):
    """Searches the index being written, nonstop; collects errors and the counts it saw."""

    def __init__(self, index_dir: Path):
        super().__init__(daemon=True)
        self.index_dir, self.stop = index_dir, threading.Event()
        self.errors: list[BaseException] = []
        self.counts: list[int] = []
        self.searches = 0

    def run(self) -> None:
        idx = None
        rng = np.random.default_rng(0)
        try:
            while not self.stop.is_set():
                if idx is None:
                    try:
                        idx = Index.open(self.index_dir)
                    except NotFound:
                        time.sleep(0.01)
                        continue
                n = len(idx)  # committed now; the snapshot refresh() takes next holds at least these
                assert not self.counts or n >= self.counts[-1], f"items went from {self.counts[-1]} to {n}"
                self.counts.append(n)
                idx.refresh()
                query = rng.standard_normal(idx.ndim).astype(np.float32)
                hits = idx.search(query / np.linalg.norm(query), k=5)
                assert min(5, n) <= len(hits) <= 5 and len({h.key for h in hits}) == len(hits)
                idx.text_search("p0001")
                self.searches += 1
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.errors.append(e)
        finally:
            if idx is not None:
                idx.close()


def count(index_dir: Path) -> int:
    """Items committed so far, read straight from SQLite (cheap enough to poll); 0 before any."""
    try:
        con = sqlite3.connect(f"file:{index_dir / 'meta.sqlite'}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return 0
    try:
        return con.execute("SELECT count(*) FROM items").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        con.close()


def kill_when(proc: subprocess.Popen, index_dir: Path, target: int, rng: random.Random) -> None:
    """SIGKILL once ``target`` items are committed, a random few milliseconds later (inside the
    next batch, commit or file save), or at once if the run ends first."""
    while proc.poll() is None and count(index_dir) < target:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.02))
    proc.send_signal(signal.SIGKILL)


@pytest.mark.slow
def test_kill_9_at_random_moments_never_breaks_the_index(collection, tmp_path):
    rng = random.Random(20240607)
    reference = tmp_path / "reference"
    t0 = time.monotonic()
    done, first_commit = run_cli(collection, reference), None
    while done.poll() is None:  # when does work start? (start-up is most of a small run)
        if first_commit is None and count(reference):
            first_commit = time.monotonic() - t0
        time.sleep(0.005)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0 and first_commit is not None, err
    everything = committed(reference)
    assert len(everything) == IMAGES

    kills = partial = startup = working = 0
    for round_ in range(ROUNDS):
        index_dir = tmp_path / f"round{round_}"
        searcher = Searcher(index_dir)
        searcher.start()
        seen: set[int] = set()
        for _ in range(TRIALS):
            proc = run_cli(collection, index_dir)
            left = IMAGES - len(seen)
            if rng.random() < 0.25 or left < 48:  # during start-up, index creation, reading
                time.sleep(rng.uniform(0.05, first_commit))
                proc.send_signal(signal.SIGKILL)
                startup += 1
            else:  # while it works: after a random number of further items
                kill_when(proc, index_dir, len(seen) + rng.randint(1, left - 32), rng)
                working += 1
            proc.communicate(timeout=30)
            kills += proc.returncode == -signal.SIGKILL
            now = committed(index_dir)
            if now is None:
                assert not seen, "an index that opened before no longer does"
                continue
            assert seen <= now, f"{len(seen - now)} committed items lost"
            assert now <= everything
            partial += 0 < len(now) < IMAGES and len(now) > len(seen)
            seen = now
        final = run_cli(collection, index_dir)
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
        assert f"already indexed {len(seen)}, fetched {IMAGES - len(seen)}" in err, err
        assert committed(index_dir) == everything
        deadline = time.monotonic() + 10
        while (not searcher.counts or searcher.counts[-1] < IMAGES) and time.monotonic() < deadline:
            time.sleep(0.05)  # the reader refreshes to the final commit
        searcher.stop.set()
        searcher.join(10)
        assert not searcher.errors, repr(searcher.errors[0])
        assert searcher.searches > 0 and searcher.counts[-1] == IMAGES
    print(f"kill -9: {ROUNDS * TRIALS} trials, {kills} killed ({startup} during start-up, {working} while "
          f"indexing), {partial} left a partial index that the next run resumed")
    assert kills == ROUNDS * TRIALS, f"only {kills} runs were killed; the others ended first"
    assert startup >= 3 and working >= 8 and partial >= working // 2, (startup, working, partial)
