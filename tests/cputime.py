"""CPU seconds per test, to see where a run's CPU goes (the suite is CPU-bound on 2 cores).

A pytest plugin, off unless named: ``-p tests.cputime`` (or ``PYTEST_PLUGINS=tests.cputime`` in the environment,
which reaches every pytest process of ``scripts/test.sh``). Each process appends one JSON line per test to
``$CNM_CPUTIME_DIR/<pid>.jsonl`` (default ``cputime`` in the working directory): the test's wall seconds, the CPU
seconds of the pytest process (all its threads: moto, the runtime) and of the children it reaped meanwhile
(Terraform and the provider; Lambda function processes count when the runtime that started them stops), setup and
teardown included. Then::

    .venv/bin/python -m tests.cputime cputime/      # totals per process and file, the costliest tests
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _now() -> tuple[float, float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic(), own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _out() -> Path:
    directory = Path(os.environ.get("CNM_CPUTIME_DIR", "cputime"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{os.getpid()}.jsonl"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    wall, own, children = _now()
    yield
    wall2, own2, children2 = _now()
    line = {"id": item.nodeid, "wall": wall2 - wall, "self": own2 - own, "child": children2 - children}
    with _out().open("a") as f:
        f.write(json.dumps(line) + "\n")


def report(directory: Path, top: int = 30) -> str:
    """Totals per process (file) and per test file, and the ``top`` costliest tests, as text."""
    rows: list[dict[str, Any]] = []
    lines = []
    for path in sorted(directory.glob("*.jsonl")):
        got = [json.loads(line) for line in path.read_text().splitlines() if line]
        rows += got
        cpu = sum(r["self"] + r["child"] for r in got)
        lines.append(f"process {path.stem}: {len(got)} tests, {cpu:.0f} s CPU")
    lines.append(f"all: {len(rows)} tests, {sum(r['self'] + r['child'] for r in rows):.0f} s CPU")
    by_file: Counter[str] = Counter()
    for r in rows:
        by_file[r["id"].split("::")[0]] += r["self"] + r["child"]
    lines += ["", "CPU s  file"] + [f"{v:6.1f} {k}" for k, v in by_file.most_common(top)]
    lines += ["", "CPU s (own + children)  wall s  test"]
    for r in sorted(rows, key=lambda r: -(r["self"] + r["child"]))[:top]:
        lines.append(f"{r['self'] + r['child']:6.1f} ({r['self']:.1f} + {r['child']:.1f}) {r['wall']:7.1f}  {r['id']}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1] if len(sys.argv) > 1 else "cputime")))
