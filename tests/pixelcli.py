"""``bookidx`` with the ``test-pixels`` embedder registered: ``python tests/pixelcli.py index ...``.

Tests that run the CLI as a real process (kill -9 of the indexer, the load benchmark's server)
need the same tiny, weight-free model that in-process tests get from conftest.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conftest  # noqa: E402,F401  registers "test-pixels"
from bookidx.cli import cli  # noqa: E402

if __name__ == "__main__":
    cli(prog_name="bookidx")
