"""A real IIIF Image API server for tests: zimeon's reference ``iiif_testserver.py``.

Use the context manager anywhere::

    from iiifserver import iiif_server
    with iiif_server(image_dir, api_versions=("2.1", "3.0")) as srv:
        ref = srv.ref("104820870.3", api=3)     # ImageRef(width, height, service=..., api=3)

or the ready fixture over a few real chapbook pages (import it into your test module)::

    from iiifserver import chapbook_iiif  # noqa: F401  (pytest fixture)

    def test_x(chapbook_iiif):
        ref = chapbook_iiif.ref(chapbook_iiif.identifiers[0], api=2)

The server runs as a subprocess on 127.0.0.1 with a free port, serves the images of one
directory (identifier = file name without extension) with the PIL manipulator, and is stopped
on exit. Its pid file and logs go to a temporary directory, never the checkout.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pytest
from PIL import Image

from bookidx.adapters.records import ImageRef

_PREFIX = {1: "1.1", 2: "2.1", 3: "3.0"}  # the newest minor version of each major one


@dataclass(frozen=True)
class IIIFServer:
    """A running test server. ``base`` is ``http://127.0.0.1:PORT``."""

    base: str
    image_dir: Path
    api_versions: tuple[str, ...]

    @property
    def identifiers(self) -> list[str]:
        """The identifiers served: image file names without their extension, sorted."""
        return sorted(p.stem for p in self.image_dir.iterdir() if p.is_file())

    def path(self, identifier: str) -> Path:
        """The local file behind an identifier (for comparing against local crops)."""
        return next(p for p in self.image_dir.iterdir() if p.stem == identifier)

    def service(self, identifier: str, api: int) -> str:
        """The image service id for ``identifier`` under Image API major version ``api``."""
        version = _PREFIX[api]
        if version not in self.api_versions:
            raise ValueError(f"server started without Image API {version}")
        return f"{self.base}/{version}_pil/{identifier}"

    def ref(self, identifier: str, api: int, *, sized: bool = True) -> ImageRef:
        """An ImageRef for the served image; ``sized=False`` leaves width/height unknown (0)."""
        width = height = 0
        if sized:
            with Image.open(self.path(identifier)) as img:
                width, height = img.size
        return ImageRef(width, height, service=self.service(identifier, api), api=api)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _script() -> str:
    # The copy installed beside this interpreter first: on PATH there may be another Python's
    # (a pyenv shim, say), which cannot run in this environment.
    beside = Path(sys.executable).with_name("iiif_testserver.py")
    found = str(beside) if beside.is_file() else shutil.which("iiif_testserver.py") or str(beside)
    if not Path(found).is_file():
        pytest.skip("zimeon's iiif_testserver.py is not installed (pip install iiif)")
    return found


@contextmanager
def iiif_server(image_dir: str | Path, *, api_versions: Sequence[str] = ("1.1", "2.1", "3.0"),
                startup_timeout: float = 30.0) -> Iterator[IIIFServer]:
    """Start zimeon's IIIF test server over ``image_dir``; stop it on exit.

    Raises:
        RuntimeError: it exited or did not answer within ``startup_timeout`` (with its log).
    """
    image_dir = Path(image_dir).resolve()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bookidx-iiif-") as work:
        log_path = Path(work) / "server.log"
        with open(log_path, "wb") as log:
            # cwd=work: the server writes iiif_testserver.pid into its working directory.
            proc = subprocess.Popen(
                [sys.executable, _script(), "--host", "127.0.0.1", "--port", str(port),
                 "--image-dir", str(image_dir), "--api-versions", ",".join(api_versions),
                 "--manipulators", "pil", "--quiet"],
                cwd=work, stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_up(proc, base, startup_timeout, log_path)
            yield IIIFServer(base, image_dir, tuple(api_versions))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_up(proc: subprocess.Popen, base: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"IIIF test server exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(base + "/", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"IIIF test server did not answer within {timeout}s:\n{log_path.read_text()}")


# Three real pages from the NLS chapbooks (600 px wide JPEGs, colour and greyscale-looking).
CHAPBOOK_PAGES = ("104820870.3.jpg", "106034987.3.jpg", "107119319.3.jpg")


@pytest.fixture(scope="session")
def chapbook_iiif(chapbooks, tmp_path_factory) -> Iterator[IIIFServer]:
    """A IIIF server (Image API 1.1, 2.1, 3.0) over a few real chapbook pages."""
    image_dir = tmp_path_factory.mktemp("iiif-images")
    for name in CHAPBOOK_PAGES:
        shutil.copy(chapbooks / "images" / name, image_dir / name)
    with iiif_server(image_dir) as srv:
        yield srv
