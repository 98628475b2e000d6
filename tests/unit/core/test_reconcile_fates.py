"""cnm_ingest.reconcile.decide: one fate per record, from facts given as data (no AWS).

Every fate, and the odd cases: identifier missing, duplicate identifiers, a non-UTF-8 record, a record
in two executions (a reingest), clock skew between the stream and the store, a trimmed range, a gap
entry of hydrate, the same record read twice, answers that belong to nobody.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cnm_ingest import reconcile as rec

STREAM = "arn:aws:kinesis:us-west-2:123456789012:stream/p-notifications"
SM = "arn:aws:states:us-west-2:123456789012:execution:p-cnm-workflow"
T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def cnm(identifier: str | None = "g-1", collection: str = "COLL", version: str = "1") -> bytes:
    body: dict = {"version": "1.6.1", "provider": "PROV", "collection": {"name": collection, "version": version}}
    if identifier is not None:
        body["identifier"] = identifier
    return json.dumps(body).encode()


def seen(seq: int, data: bytes | None = None, minutes: float = 0, identifier: str | None = "") -> rec.Seen:
    if data is None:
        data = cnm(identifier or f"g-{seq}")
    return rec.Seen(STREAM, "shardId-000000000000", str(seq), T0 + timedelta(minutes=minutes), data)


def execution(seq: int, status: str, minutes: float = 0.5, name: str | None = None, **kw) -> rec.Execution:
    name = name or f"exec-{seq}"
    return rec.Execution(
        arn=f"{SM}:{name}",
        name=name,
        status=status,
        started_at=rec.iso(T0 + timedelta(minutes=minutes)) or "",
        position=(STREAM, "shardId-000000000000", str(seq)),
        identifier=kw.pop("identifier", f"g-{seq}"),
        collection="COLL__1",
        **kw,
    )


def answer(identifier: str, status: str = "SUCCESS", minutes: float = 1, code: str | None = None) -> rec.Answer:
    return rec.Answer(identifier, status, T0 + timedelta(minutes=minutes), code)


def facts(**kw) -> rec.Facts:
    return rec.Facts(start=T0 - timedelta(minutes=1), end=NOW, now=NOW, **kw)


def fates(report: rec.Report) -> list[tuple[str | None, str]]:
    return [(r.identifier, r.fate) for r in report.rows]


def test_every_fate():
    report = rec.decide(
        facts(
            seen=[seen(i, minutes=i) for i in range(1, 9)],
            executions=[
                execution(1, "SUCCEEDED"),
                execution(2, "FAILED", error_code="TRANSFER_ERROR"),
                execution(4, "RUNNING", minutes=50),
                execution(5, "RUNNING", minutes=5),
                execution(6, "ABORTED", minutes=6),
                execution(8, "FAILED", minutes=8),
            ],
            answers=[answer("g-1", minutes=2), answer("g-2", "FAILURE", minutes=3, code="TRANSFER_ERROR")],
            parked=[
                rec.Parked(
                    "record",
                    "CnmValidationError: bad",
                    "CnmValidationError",
                    position=(STREAM, "shardId-000000000000", "3"),
                ),
                rec.Parked(
                    "response",
                    "ClientError: (ProvisionedThroughputExceededException)",
                    "ClientError",
                    execution_arn=f"{SM}:exec-8",
                ),
            ],
        ),
        stuck_after=timedelta(minutes=30),
    )
    assert fates(report) == [
        ("g-1", rec.SUCCESS),
        ("g-2", rec.FAILURE),
        ("g-3", rec.PARKED),
        ("g-4", rec.RUNNING),
        ("g-5", rec.STUCK),
        ("g-6", rec.UNANSWERED),
        ("g-7", rec.LOST),
        ("g-8", rec.PARKED),
    ]
    rows = {r.identifier: r for r in report.rows}
    assert rows["g-2"].detail == "TRANSFER_ERROR"
    assert rows["g-3"].detail == "record: CnmValidationError: bad"
    assert rows["g-6"].detail == "ABORTED"
    assert [rows[i].fix for i in ("g-1", "g-2", "g-3", "g-4", "g-5", "g-6", "g-7", "g-8")] == [
        None,
        None,
        "answer",
        None,
        None,
        "resend",
        "start",
        "resend",
    ]
    assert report.counts() == {
        rec.SUCCESS: 1,
        rec.FAILURE: 1,
        rec.PARKED: 2,
        rec.RUNNING: 1,
        rec.STUCK: 1,
        rec.UNANSWERED: 1,
        rec.LOST: 1,
    }
    # records in = rows out, each once
    assert len(report.rows) == 8 and len({r.position for r in report.rows}) == 8
    assert report.metrics() == {"COLL__1": {"Unanswered": 3, "Stuck": 1, "Lost": 1}}
    assert [r.identifier for r in report.unaccounted()] == ["g-3", "g-5", "g-6", "g-7", "g-8"]


def test_answer_wins_over_parked_and_execution():
    """A bad record is answered FAILURE and parked: the provider got an answer, that is its fate."""
    report = rec.decide(
        facts(
            seen=[seen(1)],
            executions=[execution(1, "FAILED")],
            answers=[answer("g-1", "FAILURE", code="VALIDATION_ERROR")],
            parked=[rec.Parked("record", "x", "CnmValidationError", position=(STREAM, "shardId-000000000000", "1"))],
        )
    )
    assert fates(report) == [("g-1", rec.FAILURE)] and report.rows[0].detail == "VALIDATION_ERROR"
    assert report.rows[0].fix is None


def test_identifier_missing_and_non_utf8_record_still_get_a_fate():
    report = rec.decide(
        facts(
            seen=[seen(1, cnm(None)), seen(2, b"\xff\xfe{not json"), seen(3, b"[1, 2]"), seen(4, b"")],
            answers=[answer("unknown", "FAILURE")],  # an answer naming nobody is nobody's
        )
    )
    assert fates(report) == [(None, rec.LOST)] * 4
    assert all(r.fix == "start" for r in report.rows)  # the consumer decides: it parks what it cannot start
    assert report.rows[0].collection == "COLL__1" and report.rows[1].collection == rec.UNKNOWN_COLLECTION


def test_duplicate_identifiers_take_one_answer_each_in_arrival_order():
    report = rec.decide(
        facts(
            seen=[
                seen(1, minutes=0, identifier="dup"),
                seen(2, minutes=1, identifier="dup"),
                seen(3, minutes=2, identifier="dup"),
            ],
            answers=[answer("dup", "FAILURE", minutes=3, code="PROCESSING_ERROR"), answer("dup", minutes=1.5)],
        )
    )
    assert fates(report) == [("dup", rec.SUCCESS), ("dup", rec.FAILURE), ("dup", rec.LOST)]
    assert {r.duplicates for r in report.rows} == {3}


def test_answer_before_the_record_is_not_its_answer_unless_within_the_skew():
    early = rec.decide(facts(seen=[seen(1, minutes=30)], answers=[answer("g-1", minutes=20)]))
    assert fates(early) == [("g-1", rec.LOST)]
    skewed = rec.decide(facts(seen=[seen(1, minutes=30)], answers=[answer("g-1", minutes=27)]))
    assert fates(skewed) == [("g-1", rec.SUCCESS)]


def test_clock_skew_execution_started_before_the_record_arrived():
    """Step Functions' clock behind the stream's: the execution still belongs to its record (by position)."""
    report = rec.decide(facts(seen=[seen(1, minutes=10)], executions=[execution(1, "RUNNING", minutes=9)]))
    assert fates(report) == [("g-1", rec.RUNNING)]


def test_stuck_uses_the_store_time_not_the_arrival():
    report = rec.decide(
        facts(seen=[seen(1, minutes=0)], executions=[execution(1, "RUNNING", minutes=59)]),
        stuck_after=timedelta(minutes=5),
    )
    assert fates(report) == [("g-1", rec.RUNNING)]


def test_a_record_in_two_executions_the_latest_decides_one_running_makes_it_running():
    ended = rec.decide(
        facts(
            seen=[seen(1)],
            executions=[
                execution(1, "SUCCEEDED", minutes=1),
                execution(1, "ABORTED", minutes=5, name="g-1-reingest-x"),
            ],
        )
    )
    assert fates(ended) == [("g-1", rec.UNANSWERED)] and ended.rows[0].detail == "ABORTED"
    assert ended.rows[0].executions == ["exec-1", "g-1-reingest-x"]
    assert ended.rows[0].execution is not None and ended.rows[0].execution.name == "g-1-reingest-x"
    running = rec.decide(
        facts(
            seen=[seen(1)],
            executions=[execution(1, "RUNNING", minutes=1), execution(1, "FAILED", minutes=5, name="again")],
        )
    )
    assert fates(running) == [("g-1", rec.RUNNING)]


def test_the_same_record_read_twice_is_one_row():
    report = rec.decide(facts(seen=[seen(1), seen(1)]))
    assert len(report.rows) == 1


def test_trimmed_range_is_reported_with_what_the_store_knows():
    """Before the stream's retention: a range (never hidden), with the records the store knows in it."""
    start = T0 - timedelta(hours=30)
    kept_from = T0 - timedelta(hours=1)
    old = [execution(100 + i, "SUCCEEDED", minutes=-600 - i) for i in range(3)]
    old.append(execution(200, "ABORTED", minutes=-700))
    report = rec.decide(
        rec.Facts(
            start=start,
            end=NOW,
            now=NOW,
            seen=[seen(1000)],
            executions=[*old, execution(1000, "SUCCEEDED")],
            answers=[answer("g-1000"), *(answer(f"g-{100 + i}", minutes=-590) for i in range(3))],
            retention_start=kept_from,
            first_kept={(STREAM, "shardId-000000000000"): ("1000", T0)},
        )
    )
    assert [g.as_dict() for g in report.gaps] == [
        {"from": rec.iso(start), "to": rec.iso(kept_from), "shard": None, "known": 4, "stream_count": None}
    ]
    gap_rows = [r for r in report.rows if r.in_gap]
    assert sorted(fates(rec.Report(start, NOW, gap_rows, []))) == [
        ("g-100", rec.SUCCESS),
        ("g-101", rec.SUCCESS),
        ("g-102", rec.SUCCESS),
        ("g-200", rec.UNANSWERED),
    ]
    assert all(r.arrival is None for r in gap_rows)
    assert [r.fate for r in report.rows if not r.in_gap] == [rec.SUCCESS]


def test_trimmed_early_within_retention_is_found_by_sequence_number():
    """Records gone from a shard before the window's end (trimmed early): the store's executions of records
    before the shard's first kept sequence number; an execution of a record the stream still holds, outside
    the window read, is not one of them."""
    first = (STREAM, "shardId-000000000000")
    report = rec.decide(
        facts(
            seen=[seen(10, minutes=10)],
            executions=[
                execution(3, "RUNNING", minutes=3),
                execution(4, "FAILED", minutes=4),
                execution(50, "SUCCEEDED"),
            ],
            answers=[answer("g-50")],
            first_kept={first: ("10", T0 + timedelta(minutes=10))},
        ),
        stuck_after=timedelta(hours=5),
    )
    assert [g.as_dict() for g in report.gaps] == [
        {
            "from": rec.iso(T0 - timedelta(minutes=1)),
            "to": rec.iso(T0 + timedelta(minutes=10)),
            "shard": "shardId-000000000000",
            "known": 2,
            "stream_count": None,
        }
    ]
    assert fates(report) == [("g-10", rec.LOST), ("g-3", rec.RUNNING), ("g-4", rec.UNANSWERED)]
    assert [r.fix for r in report.rows] == ["start", None, "resend"]


def test_trimmed_records_are_bounded_by_their_arrival_not_by_their_start():
    """The store's executions carry their record's arrival (source.arrival): a trimmed record that arrived before
    the window is not the window's, even when its execution started inside it (within the skew, or late after a
    backlog); one that arrived in the window keeps its arrival in the listing. An execution recorded without an
    arrival (before 0.3.0) falls back to its start time, give or take the skew."""
    window = T0 + timedelta(minutes=10)
    first = (STREAM, "shardId-000000000000")
    before = execution(3, "SUCCEEDED", minutes=11, arrival=T0 + timedelta(minutes=2))  # arrived before, started in
    inside = execution(4, "SUCCEEDED", minutes=12, arrival=T0 + timedelta(minutes=10, seconds=30))
    legacy = execution(5, "SUCCEEDED", minutes=9)  # no arrival: started within the skew of the window
    report = rec.decide(
        rec.Facts(
            start=window,
            end=NOW,
            now=NOW,
            seen=[seen(10, minutes=20)],
            executions=[before, inside, legacy],
            answers=[answer("g-3", minutes=11.5), answer("g-4", minutes=12.5), answer("g-5", minutes=9.5)],
            first_kept={first: ("10", T0 + timedelta(minutes=20))},
        )
    )
    gap_rows = {r.identifier: r for r in report.rows if r.in_gap}
    assert sorted(gap_rows) == ["g-4", "g-5"]
    assert gap_rows["g-4"].arrival == rec.iso(T0 + timedelta(minutes=10, seconds=30))
    assert gap_rows["g-5"].arrival is None
    assert [g.known for g in report.gaps] == [2]


def test_the_store_arrival_is_read_from_the_executions_item_and_hostile_values_are_ignored():
    item = {
        "execution_arn": f"{SM}:x",
        "source": {
            "stream_arn": STREAM,
            "shard_id": "s",
            "sequence_number": "1",
            "arrival": "2026-12-07T01:02:03.456Z",
        },
    }
    assert rec.Execution.from_item(item).arrival == datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=UTC)
    for bad in ("yesterday", "", 1733533323, None, {"$date": 1}, "2026-13-45T99:00:00Z"):
        assert rec.Execution.from_item({**item, "source": {**item["source"], "arrival": bad}}).arrival is None


def test_no_gap_inside_retention():
    report = rec.decide(rec.Facts(start=T0, end=NOW, now=NOW, seen=[seen(1)], retention_start=T0 - timedelta(hours=1)))
    assert report.gaps == []


def test_gap_entry_of_hydrate_covers_its_sequence_range():
    gap = rec.Parked.from_envelope(
        {
            "kind": "cnm-ingest.failed-record",
            "reason": "RecordsNotReadBack: 2 missing",
            "error_type": "RecordsNotReadBack",
            "record": None,
            "batch": {
                "streamArn": STREAM,
                "shardId": "shardId-000000000000",
                "startSequenceNumber": "2",
                "endSequenceNumber": "3",
            },
        }
    )
    report = rec.decide(facts(seen=[seen(1), seen(2), seen(3), seen(4)], parked=[gap]))
    assert fates(report) == [("g-1", rec.LOST), ("g-2", rec.PARKED), ("g-3", rec.PARKED), ("g-4", rec.LOST)]
    assert [r.fix for r in report.rows] == ["start", "redrive", "redrive", "start"]


def test_parked_record_fix_depends_on_the_reason():
    def parked(error_type: str, reason: str, payload: bytes | None = b"{}") -> rec.Row:
        p = rec.Parked("record", reason, error_type, position=(STREAM, "shardId-000000000000", "1"), payload=payload)
        return rec.decide(facts(seen=[seen(1)], parked=[p])).rows[0]

    assert parked("ClientError", "ClientError: An error occurred (ThrottlingException) when calling X").fix == "redrive"
    assert parked("IdempotencyStoreError", "IdempotencyStoreError: store down").fix == "redrive"
    assert parked("NoMatchingRuleError", "NoMatchingRuleError: no rule").fix == "answer"
    assert parked("ClientError", "ClientError: An error occurred (AccessDeniedException)").fix == "answer"
    # a retryable one whose offloaded payload is gone is redriven from the stream's copy
    assert parked("ClientError", "ClientError: (ThrottlingException)", payload=None).fix == "redrive"


@pytest.mark.parametrize(
    ("error_type", "reason", "retryable"),
    [
        ("ClientError", "ClientError: An error occurred (ThrottlingException) when calling StartExecution", True),
        ("ClientError", "ClientError: An error occurred (InternalFailure)", True),
        ("ClientError", "ClientError: An error occurred (ValidationException)", False),
        ("ClientError", "ClientError: no code at all", False),
        ("DeadlineError", "DeadlineError: no time left", True),
        ("IdempotencyAlreadyInProgressError", "in progress", True),
        ("CnmValidationError", "CnmValidationError: $.identifier", False),
        ("ReadTimeoutError", "Read timeout", True),
        ("", "", False),
        ("Something\x00odd", "\udcff", False),
    ],
)
def test_reason_is_retryable(error_type, reason, retryable):
    assert rec.reason_is_retryable(error_type, reason) is retryable


def test_response_envelope_names_its_execution_and_record():
    p = rec.Parked.from_envelope(
        {
            "kind": "cnm-ingest.failed-record",
            "envelope": "response",
            "reason": "KMSAccessDeniedException: no",
            "error_type": "KMSAccessDeniedException",
            "record": None,
            "response": {"identifier": "g-1", "response": {"status": "SUCCESS"}},
            "failure_context": {
                "execution_arn": f"{SM}:exec-1",
                "source": {"stream_arn": STREAM, "shard_id": "shardId-000000000000", "sequence_number": "1"},
            },
        }
    )
    assert (p.kind, p.execution_arn, p.position) == ("response", f"{SM}:exec-1", (STREAM, "shardId-000000000000", "1"))
    # matched by its execution, and by its source when the store has not recorded the execution yet
    assert fates(rec.decide(facts(seen=[seen(1)], executions=[execution(1, "FAILED")], parked=[p]))) == [
        ("g-1", rec.PARKED)
    ]
    assert fates(rec.decide(facts(seen=[seen(1)], parked=[p]))) == [("g-1", rec.PARKED)]


def test_hostile_store_items_do_not_break_the_decision():
    items = [
        {},
        {"execution_arn": "arn:x", "status": "RUNNING", "started_at": "not a time", "source": "nope"},
        {
            "execution_arn": "arn:y",
            "status": "SUCCEEDED",
            "source": {"stream_arn": 1},
            "original_error": "x",
            "cnm": "{",
        },
    ]
    execs = [rec.Execution.from_item(i) for i in items]
    assert [e.position for e in execs] == [None, None, None]
    report = rec.decide(facts(seen=[seen(1)], executions=execs), stuck_after=timedelta(seconds=1))
    assert fates(report) == [("g-1", rec.LOST)]


def test_select_by_collection_and_provider():
    report = rec.decide(facts(seen=[seen(1), seen(2, cnm("g-2", collection="OTHER"))]))
    assert [r.identifier for r in rec.select(report, "COLL").rows] == ["g-1"]
    assert [r.identifier for r in rec.select(report, "OTHER__1").rows] == ["g-2"]
    assert rec.select(report, provider="NOBODY").rows == []
    assert len(rec.select(report, provider="PROV").rows) == 2


def test_answers_from_hostile_bytes():
    assert rec.Answer.from_data(b"\xff", T0) is None
    assert rec.Answer.from_data(b'{"identifier": "x", "response": {"status": "MAYBE"}}', T0) is None
    assert rec.Answer.from_data(b'{"identifier": 1}', T0) is None
    assert rec.Answer.from_data(b"[" * 100000, T0) is None  # deep: RecursionError or ValueError, never raised
    a = rec.Answer.from_data(b'{"identifier": "x#?..", "response": {"status": "FAILURE", "errorCode": "X"}}', T0)
    assert a is not None and (a.identifier, a.status, a.error_code) == ("x#?..", "FAILURE", "X")
