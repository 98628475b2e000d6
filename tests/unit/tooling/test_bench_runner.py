"""bench/run.py: one table of every benchmark's rows; absent or failing benchmarks are notes, never rows.

Nothing here is timed: the benchmarks are replaced by stand-ins returning fixed rows.
"""

from __future__ import annotations

import json

import pytest

from bench import common
from bench import run as runner


def test_goals_are_read_in_their_direction():
    assert common.meets(common.row("a", 1, "x", "l", 1.3, "<= 1.3")) is True
    assert common.meets(common.row("a", 1, "x", "l", 1.31, "<= 1.3")) is False
    assert common.meets(common.row("a", 1, "x", "l", 20.0, ">= 20")) is True
    assert common.meets(common.row("a", 1, "x", "l", 19.9, ">= 20")) is False
    assert common.meets(common.row("a", 1, "x", "l", 5.0)) is None
    assert common.meets(common.row("a", 1, "x", "l", None, ">= 1")) is None


@pytest.fixture
def stand_ins(monkeypatch, tmp_path):
    rows = {
        "cold_start": [common.row("cold start: import x", 120.0, "ms", "bare 100 ms", 1.2, "<= 1.3")],
        "checksums": [common.row("checksum md5", 500.0, "MiB/s", "md5sum 550 MiB/s", 0.91, ">= 0.95")],
    }

    def call(name, quick):
        if name == "workflow_size":
            raise RuntimeError("moto exploded half-way")
        return rows[name]

    monkeypatch.setattr(runner, "call", call)
    monkeypatch.setattr(runner, "HERE", tmp_path)  # no consumer_*.py here
    return rows


def test_one_table_with_every_row_and_notes_for_the_rest(stand_ins, capsys, tmp_path):
    status = runner.main(["--quick", "--json", str(tmp_path / "rows.json")])
    out = capsys.readouterr().out
    assert "| cold start: import x | 120 ms | bare 100 ms | 1.20 | <= 1.3 | ok |" in out
    assert "| checksum md5 | 500 MiB/s | md5sum 550 MiB/s | 0.91 | >= 0.95 | **missed** |" in out
    assert "note: no bench/consumer_*.py present" in out and "NOT measured (not a pass)" in out
    assert "note: workflow_size: FAILED (RuntimeError: moto exploded half-way); no rows" in out
    assert "2 rows, 1 missed their goal: checksum md5" in out
    assert status == 1  # a failed benchmark fails the run
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert [r["name"] for r in saved["rows"]] == ["cold start: import x", "checksum md5"]


def test_consumer_benchmarks_are_picked_up_when_present(stand_ins, monkeypatch, tmp_path, capsys):
    (tmp_path / "consumer_cpu.py").write_text("")
    stand_ins["consumer_cpu"] = [common.row("consumer CPU, 1 rule", 25000, "records/s", "shard 1,000", 25.0, ">= 20")]
    status = runner.main(["--only", "consumer_cpu,cold_start,nope"])
    out = capsys.readouterr().out
    assert "| consumer CPU, 1 rule | 25,000 records/s | shard 1,000 | 25.00 | >= 20 | ok |" in out
    assert "consumer_*.py present" not in out
    assert "note: nope: no such benchmark module, skipped" in out
    assert status == 0


def test_the_real_benchmark_modules_expose_run():
    import importlib
    import inspect

    for name in runner.OWN:
        mod = importlib.import_module(f"bench.{name}")
        assert "quick" in inspect.signature(mod.run).parameters


def test_consumer_benchmarks_are_the_consumer_modules_but_not_their_fakes():
    import importlib
    import inspect

    consumers = [n for n in runner.modules() if n.startswith("consumer_")]
    assert consumers == ["consumer_backlog", "consumer_cpu", "consumer_latency"]
    for name in consumers:
        mod = importlib.import_module(f"bench.{name}")
        assert "quick" in inspect.signature(mod.run).parameters


def test_a_backlog_that_loses_records_misses_its_goal_whatever_the_time(monkeypatch):
    from bench import consumer_backlog

    def drain(cap, records):
        return {
            "elapsed": 1.0,
            "started": records - 1,
            "calls": records,
            "dlq": 1,
            "invocations": 1,
            "retries": 0,
            "throttled": 0,
        }

    monkeypatch.setattr(consumer_backlog, "drain", drain)
    rows = consumer_backlog.run(records=1000)
    assert rows and all(common.meets(r) is False for r in rows)
