"""Benchmark: ALTO reading throughput on one core (pages/s and MB/s).

Reads every ALTO file of the shared corpus (``*.xml``/``*.alto`` whose root is ``alto``) into
memory, then times ``parse_xml`` alone and the full ``read_alto`` (parse + picture blocks +
captions + context) over ``--repeat`` rounds, pinned to one CPU where the OS allows. Disk
reads are not timed: this measures the parser, not the file system.

    python bench/alto_parse.py [--repeat 5] [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from pathlib import Path

from bookidx.adapters.alto import read_alto
from bookidx.adapters.xml import local, parse_xml

ROOT = Path(__file__).resolve().parents[1]
_ALTO_ROOT = re.compile(rb"<(?:[\w.-]+:)?alto[\s>]")


def alto_files(corpus: Path) -> dict[str, bytes]:
    """Path -> bytes for every ALTO file under ``corpus`` (root element sniffed)."""
    found = {}
    for path in sorted(corpus.rglob("*")):
        if path.suffix.lower() in (".xml", ".alto") and path.is_file():
            data = path.read_bytes()
            head = re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", data[:4096], flags=re.S)
            if _ALTO_ROOT.match(head.lstrip(b"\xef\xbb\xbf \t\r\n")):
                found[str(path)] = data
    return found


def timed(step, files: dict[str, bytes], repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds per round of ``step(data, source)`` over all files.

    CPU time is the fair figure on a shared machine: other processes stretch wall time only.
    """
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        for source, data in files.items():
            step(data, source)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core, so the numbers are per-core throughput
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    files = alto_files(args.corpus)
    if not files:
        raise SystemExit(f"no ALTO files under {args.corpus}")
    megabytes = sum(len(d) for d in files.values()) / 1e6
    pages = sum(sum(1 for el in parse_xml(d, s).iter("{*}Page") if local(el.tag) == "Page")
                for s, d in files.items())
    regions = sum(len(read_alto(d, source=s)) for s, d in files.items())
    print(f"{len(files)} ALTO files, {pages} pages, {megabytes:.1f} MB, {regions} picture blocks;"
          f" median of {args.repeat} rounds on one core")
    steps = {
        "parse_xml": lambda data, source: parse_xml(data, source),
        "read_alto": lambda data, source: read_alto(data, source=source),
    }
    for name, step in steps.items():
        wall, cpu = timed(step, files, args.repeat)
        print(f"  {name:<10} CPU {pages / cpu:7.1f} pages/s {megabytes / cpu:6.1f} MB/s"
              f"   wall {pages / wall:7.1f} pages/s {megabytes / wall:6.1f} MB/s")


if __name__ == "__main__":
    main()
