"""The fault matrix: one parametrized test, every side effect counted without collapsing duplicates.

100 records go on a (moto) notification stream; :class:`EventSourceMapping`
delivers them to the message consumer as AWS would (partial batch responses,
retries from the lowest failed record, a given-up range to hydrate); the
fallback consumer gets what the fallback topic received. Counted per record:
executions (from each execution's input), DLQ entries (every message, so a
duplicate shows), FAILURE responses (every record on the response stream).
Emulated AWS behaviour: throttling and put failures by wrapping one client
method; trimming by :class:`TrimmedStream`; whole-batch redelivery by
delivering the batch again. Run with ``-s`` or see the terminal summary for
the table.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError

from cnm_ingest import aws
from tests.functional.ingest.conftest import (  # noqa: F401  (fresh_config_cache, pipeline: fixtures, by import)
    EventSourceMapping,
    TrimmedStream,
    fresh_config_cache,
    pipeline,
    sample_cnm,
)

N = 100
MATRIX: list[dict] = []


@dataclass
class Case:
    poison: tuple[int, ...] = ()  # addressable invalid records (answered + parked)
    garbage: tuple[int, ...] = ()  # not JSON (parked, not answerable)
    throttle_once: tuple[int, ...] = ()  # StartExecution throttled past one invocation's retries, then fine
    throttle_always: tuple[int, ...] = ()  # ... on every call (ESM gives the range up -> hydrate)
    throttle_all: bool = False  # StartExecution throttled for every record
    redeliveries: int = 0
    answer_put: str = ""  # "transient-once" or "denied": the consumer's FAILURE put fails
    oversize: tuple[int, ...] = ()  # a valid ~1 MB CNM
    trim_first: int = 0  # records trimmed from the stream before hydrate reads it
    extra: dict = field(default_factory=dict)


CASES = {
    "poison pill at 0": Case(poison=(0,)),
    "poison pill at 99": Case(poison=(99,)),
    "transient at 0, bad after it": Case(throttle_once=(0,), poison=(40,), garbage=(99,)),
    "transient at 50, bad after it": Case(throttle_once=(50,), poison=(60, 99)),
    "persistent throttle at 30 -> hydrate": Case(throttle_always=(30,), poison=(10, 60), garbage=(80,)),
    "redelivered 1x": Case(poison=(10, 50), garbage=(70,), redeliveries=1),
    "redelivered 2x": Case(poison=(10, 50), garbage=(70,), redeliveries=2),
    "redelivered 5x": Case(poison=(10, 50), garbage=(70,), redeliveries=5),
    "answer put throttled once": Case(poison=(20, 80), answer_put="transient-once"),
    "answer put denied": Case(poison=(20, 80), answer_put="denied"),
    "oversize CNM": Case(oversize=(5,), poison=(6,)),
    "trimmed in front of the failed range": Case(throttle_all=True, trim_first=40),
}


def payload(i: int, case: Case) -> bytes:
    doc = sample_cnm(f"rec-{i:03d}")
    if i in case.garbage:
        return b"\xff not json " + str(i).encode()
    if i in case.poison:
        doc["product"]["files"][0]["size"] = -1
    if i in case.oversize:
        doc["product"]["files"] = [
            dict(doc["product"]["files"][0], name=f"f{j:05d}.nc", uri=f"s3://provider-bucket/f{j:05d}.nc")
            for j in range(4500)
        ]
    return json.dumps(doc).encode()


def fail_calls(monkeypatch, service: str, method: str, should_fail, error: ClientError) -> None:
    client = aws.client(service)
    original = getattr(client, method)

    def wrapper(**kw):
        if should_fail(kw):
            raise error
        return original(**kw)

    monkeypatch.setattr(client, method, wrapper)


def error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize("name", list(CASES))
def test_fault_matrix(pipeline, lambda_context, monkeypatch, name):  # noqa: F811  (pipeline: imported fixture)
    case = CASES[name]
    pipeline.put_rule("modis")
    kinesis = aws.client("kinesis")
    seq_of: dict[int, str] = {}
    for i in range(N):
        seq_of[i] = kinesis.put_record(
            StreamARN=pipeline.notification_stream, Data=payload(i, case), PartitionKey=f"pk-{i % 7}"
        )["SequenceNumber"]
    index_of = {s: i for i, s in seq_of.items()}
    ident_of = {f"rec-{i:03d}": i for i in range(N)}

    throttled: Counter = Counter()

    def throttle(kw) -> bool:
        # The record's sequence number: the CNM itself may be offloaded to the payload bucket (meta.cnm_ref).
        i = index_of.get(json.loads(kw["input"])["cumulus_meta"]["source"]["sequence_number"])
        if case.throttle_all or i in case.throttle_always:
            return True
        if i in case.throttle_once and throttled[i] < 2:  # START_MAX_ATTEMPTS=2: the first invocation gives up
            throttled[i] += 1
            return True
        return False

    fail_calls(monkeypatch, "stepfunctions", "start_execution", throttle, error("ThrottlingException"))
    answer_failures = {"left": 1}
    if case.answer_put == "transient-once":

        def once_then_ok(kw):
            if answer_failures["left"]:
                answer_failures["left"] -= 1
                return True
            return False

        fail_calls(monkeypatch, "kinesis", "put_record", once_then_ok, error("ProvisionedThroughputExceededException"))
    elif case.answer_put == "denied":
        fail_calls(monkeypatch, "kinesis", "put_record", lambda kw: True, error("AccessDeniedException"))

    esm = EventSourceMapping(pipeline, lambda_context, batch_size=N, max_retries=2)
    esm.deliver()
    esm.redeliver(case.redeliveries)
    if case.trim_first:
        TrimmedStream(monkeypatch, seq_of[case.trim_first])
    esm.hydrate()
    esm.fallback()
    monkeypatch.undo()  # read back without the faults

    executions = Counter()
    for e in pipeline.execution_inputs():
        executions[index_of[e["cumulus_meta"]["source"]["sequence_number"]]] += 1
    dead = pipeline.dlq_envelopes()
    dlq = Counter(index_of[d["record"]["sequenceNumber"]] for d in dead if d.get("record"))
    gaps = [d for d in dead if not d.get("record")]
    failures = Counter(ident_of[r["identifier"]] for r in pipeline.responses() if r["response"]["status"] == "FAILURE")
    gap_count = sum(g["missing"]["count"] for g in gaps)

    row = {
        "case": name,
        "records": N,
        "executions": sum(executions.values()),
        "dlq_total": sum(dlq.values()),
        "dlq_distinct": len(dlq),
        "gap_entries": len(gaps),
        "gap_records": gap_count,
        "failure_responses": sum(failures.values()),
        "max_answers_per_record": max(failures.values(), default=0),
        "invocations": esm.invocations,
    }
    MATRIX.append(row)
    print(row)

    # Every record is started once or parked once, never both, never twice.
    assert sum(executions.values()) + sum(dlq.values()) + gap_count == N, row
    assert all(c == 1 for c in executions.values()) and all(c == 1 for c in dlq.values()), row
    assert not set(executions) & set(dlq), row
    assert len(gaps) <= 1 and max(failures.values(), default=0) <= 1, row
    # What each case must show.
    bad = set(case.poison) | set(case.garbage)
    assert set(dlq) >= bad - set(range(case.trim_first)), row
    expected_answers = set(case.poison)
    if case.answer_put == "denied":
        expected_answers = set()
    if case.oversize:
        # A valid CNM too big for a Step Functions input still starts: its CNM travels in the payload bucket.
        assert set(case.oversize) <= set(executions), row
    assert set(failures) == expected_answers, row
    if case.throttle_always:
        assert set(case.throttle_always) <= set(dlq) and len(esm.given_up) == 1, row
    if case.trim_first:
        (gap,) = gaps
        assert gap["missing"] == {
            "count": case.trim_first,
            "ranges": [{"from": seq_of[0], "to": str(int(seq_of[case.trim_first]) - 1)}],
        }
        assert not executions and set(dlq) == set(range(case.trim_first, N)), row
    if not (case.throttle_always or case.throttle_all):
        assert not esm.given_up, row
    if case.throttle_once:
        assert esm.invocations == 2, row  # a batch item failure, then one redelivery from the lowest failed
