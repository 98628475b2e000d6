"""The fault matrix, on the stack Terraform applied: one parametrized test, every side effect counted
without collapsing duplicates.

Each case starts from examples/complete as `terraform apply` left it (the session snapshot, restored),
puts 100 records on the applied notification stream and runs the applied stack with
:class:`localaws.runtime.Runtime`: the event source mapping's poller delivers them to the deployed
message consumer (a process of its own, with only its own environment) with the mapping's applied
settings (batch size, window, partial batch responses: retries from the lowest failed record,
bisection, retry limit, record age) and sends a given-up range's on-failure record to the failed-batch
topic, whose subscription invokes hydrate; the fallback topic reaches the fallback consumer
(asynchronous, with its retries and destinations). Counted per record: executions (from each
execution's input), DLQ entries (every message, so a duplicate shows), FAILURE responses (every record
on the response stream).

AWS's faults come from the local AWS itself (localaws.faults), so they reach the function processes'
own calls: StartExecution throttled for chosen records, PutRecord on the response stream failing once
or always, the shard's first records trimmed. Whole-batch redelivery: the poller's rewind (the mapping
reads the shard again from its starting position).

What the matrix does not run: the workflow behind StartExecution. Its executions start (and are
counted) but their Lambda tasks answer at once without running (tests.worlds's World.run_tasks is
False), so no execution writes a response of its own; the workflow runs end to end in tests/e2e.

The records are put with one explicit hash key, so they share one shard of the two: moto numbers
each shard's records from 1, and the matrix identifies a record by its sequence number (hydrate's
ranges and gaps are per shard, as on AWS). Run with ``-s`` or see the terminal summary for the table.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from localaws import faults
from localaws.runtime import KinesisPoller, Runtime
from tests.functional.ingest.conftest import sample_cnm

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

N = 100
MATRIX: list[dict] = []
SETTLE_SECONDS = 900  # a ceiling only: a case ends when the runtime is idle


@dataclass
class Case:
    poison: tuple[int, ...] = ()  # addressable invalid records (answered + parked)
    garbage: tuple[int, ...] = ()  # not JSON (parked, not answerable)
    throttle_once: tuple[int, ...] = ()  # StartExecution throttled through the first invocation with it, then fine
    throttle_always: tuple[int, ...] = ()  # ... on every call (the mapping gives the range up -> hydrate)
    throttle_all: bool = False  # StartExecution throttled for every record
    redeliveries: int = 0
    answer_put: str = ""  # "transient-once" or "denied": PutRecord of a FAILURE answer fails
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


def rule_for_any_version(world: Any) -> dict[str, Any]:
    """An applied ENABLED rule that matches any version of its collection (the CNMs name it)."""
    rules = [r for r in world.items("rules") if r["state"] == "ENABLED" and not r.get("collection_version")]
    assert rules, "the example applies no ENABLED rule for any version of a collection"
    return sorted(rules, key=lambda r: r["name"])[0]


def payload(i: int, case: Case, rule: dict[str, Any]) -> bytes:
    doc = sample_cnm(f"rec-{i:03d}", collection=rule["collection_name"], provider=rule["provider"])
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


def source_sequence(request: dict[str, Any]) -> str | None:
    """The record a StartExecution request is for: its input's source sequence number (the CNM itself
    may be offloaded to the payload bucket, meta.cnm_ref; the source stays in the input)."""
    try:
        return json.loads(request["input"])["cumulus_meta"]["source"]["sequence_number"]
    except (KeyError, TypeError, ValueError):
        return None


class ThrottleOnce:
    """Throttle a record's StartExecution through the whole invocation that first tried it (every call,
    botocore's retries included, until the consumer gives the record up as a batch item failure),
    then let it through: the mapping's next invocation, from the lowest failed record, starts it."""

    def __init__(self, rt: Runtime, mapping_uuid: str, sequences: set[str]):
        self.rt, self.uuid, self.sequences = rt, mapping_uuid, sequences
        self.first_seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> bool:
        seq = source_sequence(request)
        if seq not in self.sequences:
            return False
        done = self.rt.mapping_stats[self.uuid].invocations  # invocations that have returned
        with self.lock:
            first = self.first_seen.setdefault(seq, done)
        return done == first


def ingest_idle(rt: Runtime, mapping_uuid: str, since: float) -> bool:
    """The ingest side is done: every poller of the consumer's mapping found its shard empty after
    ``since`` (nothing buffered or being delivered) and no asynchronous invocation (fallback consumer,
    hydrate: both queued synchronously by the SNS publish that causes them) is queued or running.
    What the started executions cause (the recorder's status events) is not the matrix's subject."""
    stats = rt.async_stats
    if stats["queued"] - stats["succeeded"] - stats["failed"] > 0:
        return False
    pollers = [p for p in rt.pollers if p.m.uuid == mapping_uuid]
    return bool(pollers) and all(
        p.last_empty is not None and p.last_empty >= since and not p.pending() for p in pollers
    )


def settle(rt: Runtime, mapping_uuid: str, checks: int = 3) -> None:
    """Wait until the ingest side is idle ``checks`` times in a row."""
    start = time.monotonic()
    quiet = 0
    while quiet < checks:
        assert time.monotonic() - start < SETTLE_SECONDS, f"did not settle: {rt.busy_reasons()} {rt.errors}"
        quiet = quiet + 1 if ingest_idle(rt, mapping_uuid, start) else 0
        time.sleep(rt.poll_interval * 2)
    assert not rt.errors, rt.errors
    rt.log(f"settled in {time.monotonic() - start:.1f}s")


def run(rt: Runtime, mapping_uuid: str, redeliveries: int) -> None:
    """Until idle; then each whole-batch redelivery: the mapping's pollers read the shard again."""
    settle(rt, mapping_uuid)
    for _ in range(redeliveries):
        for poller in rt.pollers:
            if poller.m.uuid == mapping_uuid:
                poller.rewind()
        settle(rt, mapping_uuid)


@pytest.fixture
def world(complete_world):
    return complete_world


@dataclass
class Armed:
    """The faults a case armed: StartExecution throttles, the answer puts' fault, the trim (once armed)."""

    starts: list[faults.Fault]
    answer_puts: faults.Fault | None
    trims: list[faults.Trim]


def answer_put_fault(inj: faults.Injected, case: Case, responses: str) -> faults.Fault | None:
    """PutRecord(s) of a FAILURE answer on the response stream failing once (throttled) or always (denied)."""
    if case.answer_put == "transient-once":
        return inj.fail(
            "kinesis",
            ("PutRecord", "PutRecords"),
            "ProvisionedThroughputExceededException",
            when=faults.on_stream(responses),
            times=1,
        )
    if case.answer_put == "denied":
        return inj.fail(
            "kinesis", ("PutRecord", "PutRecords"), "AccessDeniedException", when=faults.on_stream(responses)
        )
    return None


def arm(
    inj: faults.Injected,
    case: Case,
    rt: Runtime,
    mapping: Any,
    streams: tuple[str, str, str],
    seq_of: dict[int, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Armed:
    """Arm the case's faults (before the runtime starts: the records are on the stream already).
    ``streams``: the notification stream, the response stream and the records' shard."""
    notifications, responses, shard_id = streams
    starts = []
    always = {seq_of[i] for i in case.throttle_always} | (set(seq_of.values()) if case.throttle_all else set())
    if always:
        starts.append(inj.throttle("stepfunctions", "StartExecution", when=lambda req: source_sequence(req) in always))
    if case.throttle_once:
        once = ThrottleOnce(rt, mapping.uuid, {seq_of[i] for i in case.throttle_once})
        starts.append(inj.throttle("stepfunctions", "StartExecution", when=once))
    trims: list[faults.Trim] = []
    if case.trim_first:
        # The shard is trimmed once the mapping has read the first batch (so hydrate, reading the
        # given-up range back, finds its front gone): armed when the poller first delivers.
        deliver = KinesisPoller.deliver

        def deliver_then_trim(poller: KinesisPoller, batch: list[dict[str, Any]]) -> None:
            if not trims and poller.m.uuid == mapping.uuid and poller.shard_id == shard_id:
                trims.append(inj.trim(notifications, first=case.trim_first, shard_id=shard_id))
            deliver(poller, batch)

        monkeypatch.setattr(KinesisPoller, "deliver", deliver_then_trim)
    return Armed(starts, answer_put_fault(inj, case, responses), trims)


def time_invocations(rt: Runtime, prefix: str, started: float) -> dict[str, list[float]]:
    """Wrap ``rt.invoke``: function -> [invocations, seconds in them, first start, last end] (for the timeline
    printed with -s)."""
    busy: dict[str, list[float]] = {}
    invoke = rt.invoke

    def timed_invoke(name_or_arn: str, event: Any) -> Any:
        begin = time.monotonic()
        try:
            return invoke(name_or_arn, event)
        finally:
            end = time.monotonic()
            fn = rt.function_by_arn(name_or_arn).name.removeprefix(f"{prefix}-")
            n, total, first, _ = busy.get(fn, [0, 0.0, begin - started, 0.0])
            busy[fn] = [n + 1, total + end - begin, first, end - started]

    rt.invoke = timed_invoke  # type: ignore[method-assign]
    return busy


@dataclass
class Fates:
    """Every side effect per record index, counted without collapsing."""

    executions: Counter
    dlq: Counter
    gaps: list[dict[str, Any]]
    failures: Counter

    @property
    def gap_count(self) -> int:
        return sum(g["missing"]["count"] for g in self.gaps)


def read_fates(world: Any, index_of: dict[str, int]) -> Fates:
    executions: Counter = Counter()
    for e in world.execution_inputs():
        executions[index_of[e["cumulus_meta"]["source"]["sequence_number"]]] += 1
    dead = world.dlq_envelopes()
    dlq = Counter(index_of[d["record"]["sequenceNumber"]] for d in dead if d.get("record"))
    gaps = [d for d in dead if not d.get("record")]
    ident_of = {f"rec-{i:03d}": i for i in range(N)}
    failures = Counter(ident_of[r["identifier"]] for r in world.responses() if r["response"]["status"] == "FAILURE")
    return Fates(executions, dlq, gaps, failures)


def assert_balanced(case: Case, fates: Fates, armed: Armed, row: dict[str, Any]) -> None:
    """Every record is started once or parked once, never both, never twice; the bad ones parked, the
    addressable ones answered once."""
    executions, dlq, failures = fates.executions, fates.dlq, fates.failures
    assert sum(executions.values()) + sum(dlq.values()) + fates.gap_count == N, row
    assert all(c == 1 for c in executions.values()) and all(c == 1 for c in dlq.values()), row
    assert not set(executions) & set(dlq), row
    assert len(fates.gaps) <= 1 and max(failures.values(), default=0) <= 1, row
    # What each case must show.
    bad = set(case.poison) | set(case.garbage)
    assert set(dlq) >= bad - set(range(case.trim_first)), row
    expected_answers = set(case.poison)
    if case.answer_put == "denied":
        expected_answers = set()
    if case.answer_put:
        assert armed.answer_puts is not None and armed.answer_puts.fired >= 1, row  # the fault did hit the answers
    if case.oversize:
        # A valid CNM too big for a Step Functions input still starts: its CNM travels in the payload bucket.
        assert set(case.oversize) <= set(executions), row
    assert set(failures) == expected_answers, row


def assert_given_up(
    case: Case, fates: Fates, armed: Armed, given_up: list[dict[str, Any]], ctx: dict[str, Any], row: dict[str, Any]
) -> None:
    """What the mapping gave up (hydrate's input) and what hydrate made of it. ``ctx``: the mapping, its stats,
    the sequence numbers, the hydrate invocations and the number of batches."""
    mapping, stats, seq_of = ctx["mapping"], ctx["stats"], ctx["seq_of"]
    attempts = mapping.maximum_retry_attempts + 1
    if case.throttle_always:
        assert set(case.throttle_always) <= set(fates.dlq) and len(given_up) == 1, row
        (info,) = [g["KinesisBatchInfo"] for g in given_up]
        assert info["startSequenceNumber"] == seq_of[min(case.throttle_always)], row
        assert stats.retries == mapping.maximum_retry_attempts, row
        assert given_up[0]["requestContext"]["approximateInvokeCount"] == attempts, row
        assert ctx["hydrate"] >= 1, row
    if case.trim_first:
        (trim,) = armed.trims
        assert trim.hidden >= case.trim_first and trim.refused >= 1, row  # hydrate met the trimmed range
        (gap,) = fates.gaps
        assert gap["missing"] == {
            "count": case.trim_first,
            "ranges": [{"from": seq_of[0], "to": str(int(seq_of[case.trim_first]) - 1)}],
        }
        assert not fates.executions and set(fates.dlq) == set(range(case.trim_first, N)), row
        assert len(given_up) == ctx["batches"], row  # every batch given up after the applied retries
        assert all(g["requestContext"]["approximateInvokeCount"] == attempts for g in given_up), row
    if not (case.throttle_always or case.throttle_all):
        assert not given_up, row


def assert_deliveries(case: Case, ctx: dict[str, Any], row: dict[str, Any]) -> None:
    """The mapping's applied settings: each batch delivered once when nothing fails, and every retry
    within the applied retry limit."""
    mapping, stats, batches = ctx["mapping"], ctx["stats"], ctx["batches"]
    assert stats.records_delivered >= N * (1 + case.redeliveries), row
    if case.throttle_once:
        # a batch item failure, then one redelivery from the lowest failed, for each throttled record's batch
        assert stats.invocations == batches + len({i // mapping.batch_size for i in case.throttle_once}), row
        assert stats.batch_item_failures == len(case.throttle_once) and stats.retries == len(case.throttle_once), row
    if not (case.throttle_once or case.throttle_always or case.throttle_all):
        assert stats.invocations == batches * (1 + case.redeliveries), row  # nothing retried


@pytest.mark.parametrize("name", list(CASES))
def test_fault_matrix(world, tmp_path, monkeypatch, name):
    case = CASES[name]
    started = time.monotonic()
    stack = world.stack
    consumer = stack.function("message_consumer")
    (mapping,) = [m for m in stack.mappings if m.function_arn == consumer.arn]
    notifications, responses = world.stream("notifications"), world.stream("responses")
    rule = rule_for_any_version(world)

    kinesis = world.client("kinesis")
    put = kinesis.put_records(
        StreamARN=notifications,
        Records=[
            {"Data": payload(i, case, rule), "PartitionKey": f"pk-{i % 7}", "ExplicitHashKey": "0"} for i in range(N)
        ],
    )
    assert put["FailedRecordCount"] == 0
    (shard_id,) = {r["ShardId"] for r in put["Records"]}
    seq_of = {i: r["SequenceNumber"] for i, r in enumerate(put["Records"])}
    batches = math.ceil(N / mapping.batch_size)

    timeline: list[str] = []

    def log(message: str) -> None:
        timeline.append(f"{time.monotonic() - started:7.1f}s {message}")

    rt = Runtime(world.session, world.endpoint, world.prefix, tmp_path, log=log)
    rt._sfn_invoke = world.lambda_task  # type: ignore[method-assign]  # workflow tasks answer at once (module doc)
    busy = time_invocations(rt, world.prefix, started)
    with faults.injected() as inj:
        armed = arm(inj, case, rt, mapping, (notifications, responses, shard_id), seq_of, monkeypatch)
        rt.start()
        log("runtime started")
        try:
            run(rt, mapping.uuid, case.redeliveries)
        finally:
            rt.stop()
    stats = rt.mapping_stats[mapping.uuid]
    given_up = [r for r in rt.on_failure_log if r["KinesisBatchInfo"]["streamArn"] == notifications]
    invocations = dict(rt.invocations)
    assert faults.armed() == 0
    assert all(not f.predicate_errors for f in inj.faults), [f.predicate_errors for f in inj.faults]

    fates = read_fates(world, {s: i for i, s in seq_of.items()})

    def calls(role: str) -> int:
        return invocations.get(stack.function(role).name, 0)

    row = {
        "case": name,
        "records": N,
        "executions": sum(fates.executions.values()),
        "dlq_total": sum(fates.dlq.values()),
        "dlq_distinct": len(fates.dlq),
        "gap_entries": len(fates.gaps),
        "gap_records": fates.gap_count,
        "failure_responses": sum(fates.failures.values()),
        "max_answers_per_record": max(fates.failures.values(), default=0),
        "invocations": stats.invocations,
        "given_up": len(given_up),
        "hydrate": calls("hydrate"),
        "fallback": calls("fallback_consumer"),
        "throttles": sum(f.fired for f in armed.starts),
        "seconds": round(time.monotonic() - started, 1),
    }
    MATRIX.append(row)
    print(row, dict(rt.async_stats), *timeline[-40:], sep="\n")
    for fn, (n, total, first, last) in sorted(busy.items(), key=lambda kv: kv[1][2]):
        print(f"  {fn}: {n:.0f} invocations, {total:.1f}s in them, from {first:.1f}s to {last:.1f}s")

    assert_balanced(case, fates, armed, row)
    ctx = {"mapping": mapping, "stats": stats, "seq_of": seq_of, "hydrate": calls("hydrate"), "batches": batches}
    assert_deliveries(case, ctx, row)
    assert_given_up(case, fates, armed, given_up, ctx, row)
