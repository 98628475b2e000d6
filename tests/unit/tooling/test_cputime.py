"""tests/cputime.py: one line per test in every pytest process that names the plugin, and the report over them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import cputime

ROOT = Path(__file__).resolve().parents[3]


def test_each_test_of_a_run_naming_the_plugin_gets_a_line(tmp_path):
    (tmp_path / "test_a.py").write_text(
        "import subprocess, sys\n"
        "def test_own():\n    sum(range(10_000))\n"
        "def test_child():\n    subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"
        "def test_fails():\n    assert False\n"
    )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CNM_CPUTIME_DIR": str(out)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.cputime", "-p", "no:cacheprovider", "test_a.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the failing test fails the run, and is measured too
    (written,) = out.glob("*.jsonl")
    lines = [json.loads(line) for line in written.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["test_a.py::test_own", "test_a.py::test_child", "test_a.py::test_fails"]
    assert all(line[k] >= 0 for line in lines for k in ("wall", "self", "child"))
    assert lines[1]["child"] > 0  # the interpreter it ran and reaped


def test_the_report_totals_processes_and_files_and_orders_the_tests(tmp_path):
    rows = {
        "1": [
            {"id": "a.py::x", "wall": 5, "self": 1, "child": 2},
            {"id": "b.py::y", "wall": 1, "self": 0.5, "child": 0},
        ],
        "2": [{"id": "a.py::z", "wall": 9, "self": 4, "child": 0}],
    }
    for pid, lines in rows.items():
        (tmp_path / f"{pid}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    text = cputime.report(tmp_path)
    assert "process 1: 2 tests, 4 s CPU" in text and "process 2: 1 tests, 4 s CPU" in text
    assert "all: 3 tests, 8 s CPU" in text
    assert "   7.0 a.py" in text and "   0.5 b.py" in text
    tests = text.split("test\n", 1)[1].splitlines()
    assert [t.split()[-1] for t in tests] == ["a.py::z", "a.py::x", "b.py::y"]
