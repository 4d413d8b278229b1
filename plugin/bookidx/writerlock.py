"""One writer per index directory: an exclusive, non-blocking lock on ``writer.lock``.

The writer holds ``flock(LOCK_EX | LOCK_NB)`` (``msvcrt.locking`` on Windows) on the file for as
long as its :class:`~bookidx.store.Index` is open, and writes its pid into it so the refusal can
say who holds it. The lock belongs to the open file descriptor, so the OS drops it when the
process ends in any way (``kill -9`` included): a stale lock file never blocks the next writer.
Readers take no lock; an indexer can add to an index that is being served.

flock(2): https://man7.org/linux/man-pages/man2/flock.2.html
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import BookidxError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
    import msvcrt

LOCK = "writer.lock"


def take_lock(path: Path) -> int:
    """Lock the index directory ``path`` for writing; the descriptor to give to :func:`release_lock`.

    Raises:
        BookidxError (409): another process is writing the index.
    """
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise BookidxError(f"another process (pid {holder}) is writing this index", str(path), code=409) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def release_lock(fd: int) -> None:
    os.close(fd)  # closing the descriptor drops an flock / msvcrt lock
