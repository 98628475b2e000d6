"""consume_all: every record consumed once, results in stream order, the calling thread first and
helpers only when records wait on AWS, never more than ``workers`` at a time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cnm_ingest.consumer import consume


def _records(n: int) -> list[consume.SourceRecord]:
    return [consume.SourceRecord("", str(i), "pk", "shardId-0", "arn:stream") for i in range(n)]


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[str, str]] = []
    state = {"running": 0, "most": 0, "delay": 0.0}
    lock = threading.Lock()

    def fake_consume(record, run):
        with lock:
            seen.append((record.sequenceNumber, threading.current_thread().name))
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        try:
            if state["delay"]:
                time.sleep(state["delay"])
            if record.sequenceNumber.endswith("7"):
                raise RuntimeError(f"record {record.sequenceNumber}")
            return consume.Outcome("started")
        finally:
            with lock:
                state["running"] -= 1

    monkeypatch.setattr(consume, "consume", fake_consume)
    return seen, state


def test_cpu_bound_records_stay_in_the_calling_thread(calls):
    seen, state = calls
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = consume.consume_all(_records(50), run=None, executor=pool, workers=8)  # type: ignore[arg-type]
    assert sorted(int(s) for s, _ in seen) == list(range(50))  # each record once
    assert {name for _, name in seen} == {threading.current_thread().name}
    assert [isinstance(r, RuntimeError) for r in results] == [str(i).endswith("7") for i in range(50)]
    assert state["most"] == 1


def test_records_waiting_on_aws_bring_helpers_up_to_the_limit(calls):
    seen, state = calls
    state["delay"] = 0.01
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="helper") as pool:
        results = consume.consume_all(_records(60), run=None, executor=pool, workers=4)  # type: ignore[arg-type]
    assert sorted(int(s) for s, _ in seen) == list(range(60))  # each record once, none lost
    assert len(results) == 60
    for i, result in enumerate(results):  # in stream order, whoever consumed it
        if str(i).endswith("7"):
            assert isinstance(result, RuntimeError) and str(result) == f"record {i}"
        else:
            assert isinstance(result, consume.Outcome)
    assert 1 < state["most"] <= 4
    assert any(name.startswith("helper") for _, name in seen)


def test_without_an_executor_one_record_at_a_time(calls):
    seen, state = calls
    state["delay"] = 0.003
    results = consume.consume_all(_records(5), run=None)  # type: ignore[arg-type]
    assert [s for s, _ in seen] == ["0", "1", "2", "3", "4"] and len(results) == 5
    assert state["most"] == 1
