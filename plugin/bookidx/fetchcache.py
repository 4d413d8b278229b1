"""The fetcher's disk cache: response bodies stored by sha256(url), bounded in size (LRU).

A body lives at ``<folder>/<first two hex digits>/<sha256 hex of the URL>``. It is written to a
temporary ``.part-*`` file beside it and renamed into place, so a killed run never leaves half a
body under a real name, and readers in other threads or processes see either nothing or all.

Least recently used bodies go first: a write sets a file's mtime and a hit touches it
(``os.utime``), so mtime is the time of last use (atime is not relied on: ``noatime`` and
``relatime`` mounts do not keep it). Walking the folder costs a ``stat`` per file, so it is done
only when this process's count says the bound may be passed, or once this process has written
a tenth of the bound since its last walk (which is how other processes' writes get noticed).
Eviction frees down to 90 % of the bound, so the next one is again a tenth of the bound away.

Several processes may share a folder with no lock: a file that another process removes
between a walk and an unlink is skipped, and a read that loses the race is a miss. Two
processes evicting at once may remove a little more than needed; a bound overrun is at most
about a tenth of the bound per process writing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger("bookidx.fetch")

_PART = ".part-"  # prefix of temporary files being written
_STALE_PART = 3600.0  # seconds after which a temporary file belongs to a killed writer
_LOW_WATER = 0.9  # eviction frees down to this share of the bound
_RESCAN = 0.1  # walk the folder again after writing this share of the bound


class DiskCache:
    """Response bodies in ``folder`` by URL; safe to share between threads and processes.

    Args:
        folder: where the bodies are kept (created on the first write).
        max_bytes: when the folder holds more, the least recently used bodies are removed.
            None or 0: no bound (nothing is ever removed).
    """

    def __init__(self, folder: str | Path, max_bytes: int | None = None):
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"cache_max_bytes must be 0 (unbounded) or more, not {max_bytes}")
        self.folder = Path(folder)
        self.max_bytes = max_bytes or None
        self._lock = threading.Lock()
        self._walking = False  # a thread of this process is walking (and evicting)
        self._again = False  # a write came during that walk: the walker walks once more
        self._scanned: int | None = None  # bytes found by the last walk; None: not walked yet
        self._written = 0  # bytes this object wrote since that walk

    def path(self, url: str) -> Path:
        """Where the body of ``url`` is (or would be) kept."""
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.folder / digest[:2] / digest

    def read(self, url: str) -> bytes | None:
        """The cached body of ``url``, marked as just used; None when it is not cached."""
        path = self.path(url)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            os.utime(path)
        except OSError:  # evicted meanwhile, or a read-only cache: the body is still good
            pass
        return data

    def write(self, url: str, data: bytes) -> None:
        """Keep ``data`` as the body of ``url``, then evict if the folder is over its bound.

        A full or read-only folder is logged, not raised: a cache must not fail a fetch.
        """
        if self.max_bytes is not None and len(data) > self.max_bytes:
            return  # it would evict everything, itself included
        path = self.path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_PART)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:
            log.warning("cannot cache %s in %s: %s", url, path, e)
            return
        if self.max_bytes is not None:
            self._added(len(data))

    def _added(self, size: int) -> None:
        bound = self.max_bytes or 0
        with self._lock:
            self._written += size
            if not (self._scanned is None or self._scanned + self._written > bound
                    or self._written > bound * _RESCAN):
                return
            # One walk at a time per process: a thread that finds one running goes on with its
            # work, and the walker walks again, since the file it just wrote may have come after
            # the walk listed the folder (else the last writes of a busy moment stay over).
            if self._walking:
                self._again = True
                return
            self._walking = True
        try:
            while True:
                self._evict()
                with self._lock:  # only writes during the walk make another (a read-only
                    if not self._again:  # folder that stays over its bound must not spin)
                        break
                    self._again = False
        finally:
            with self._lock:
                self._walking = False

    def _evict(self) -> None:
        """Walk the folder; if it holds more than the bound, remove the least recently used."""
        bound = self.max_bytes or 0
        with self._lock:
            written_before = self._written
        entries = list(self._entries())
        total = sum(size for _, size, _ in entries)
        if total > bound:
            entries.sort()
            removed = 0
            for _, size, path in entries:
                if total <= bound * _LOW_WATER:
                    break
                try:
                    path.unlink()
                except FileNotFoundError:  # another process evicted it first
                    pass
                except OSError as e:  # read-only: nothing more will go either
                    log.warning("cannot evict from the cache %s: %s", self.folder, e)
                    break
                total -= size
                removed += 1
            log.info("cache %s: evicted %d files, %d bytes kept", self.folder, removed, total)
        with self._lock:
            self._scanned = total
            self._written -= written_before  # writes made during the walk count towards the next

    def _entries(self) -> Iterator[tuple[float, int, Path]]:
        """(mtime, size, path) of each cached body and each stale temporary file."""
        now = time.time()
        try:
            tops = [e for e in os.scandir(self.folder) if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return
        for top in tops:
            try:
                files = list(os.scandir(top.path))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in files:
                is_part = entry.name.startswith(_PART)
                if not (is_part or (len(entry.name) == 64 and entry.name.startswith(top.name))):
                    continue  # not ours: never removed
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # evicted by another process since the listing
                    continue
                if not stat.S_ISREG(st.st_mode) or (is_part and now - st.st_mtime < _STALE_PART):
                    continue  # a temporary file still being written
                yield st.st_mtime, st.st_size, Path(entry.path)
