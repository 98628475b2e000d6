"""Reconciliation: every CNM seen in a time window gets exactly one fate (issue 23).

Facts are collected from four places, then :func:`decide` gives each stream record one fate:

- the notification stream, while the window is in its retention (read by time: ``AT_TIMESTAMP``
  iterators, :func:`read_window`);
- the executions store (``cnm_ingest.executions``: the recorder's table), matched to a stream record
  by the execution's ``source`` (stream, shard, sequence number);
- what was parked (DLQ envelopes, or the idempotency markers of the park and of CnmResponse's parking);
- the answers on the response stream (identifier, status, error code).

Fates, in the order one wins over the next:

``answered-success`` / ``answered-failure`` (with its error code)
    an answer for the record's identifier is on the response stream;
``parked`` (with the reason)
    the record, or the response of its execution, is in the DLQ, and no answer reached the provider;
``running`` / ``stuck``
    an execution of the record is RUNNING, for less / more than ``stuck_after``;
``unanswered``
    its executions ended (ABORTED, TIMED_OUT, FAILED, or SUCCEEDED without a response on the stream),
    with no answer and nothing parked;
``lost``
    seen on the stream, never started, never parked, never answered.

A window that starts before the stream's retention has a trimmed range: it is reported as a
:class:`Gap` (its range, and how many records the store still knows in it), and the executions
started in it get their fate from the store (their stream record is gone).

:func:`fixes` says what ``--fix`` would do for each row; :func:`apply_fix` does it, each side effect
at most once through the consumer's own functions (deterministic execution names, the park/answer
markers of :mod:`cnm_ingest.idempotency`, CnmResponse's delivery markers of :mod:`cnm_ingest.workflow.cnm_response`).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from cnm_ingest import aws, errors, executions
from cnm_ingest.cnm import notification

SUCCESS, FAILURE, PARKED, RUNNING, STUCK, UNANSWERED, LOST = (
    "answered-success",
    "answered-failure",
    "parked",
    "running",
    "stuck",
    "unanswered",
    "lost",
)
FATES = (SUCCESS, FAILURE, PARKED, RUNNING, STUCK, UNANSWERED, LOST)
# Fates that need an operator (or --fix): the scheduled run's metrics and the CLI's exit code.
UNACCOUNTED = (PARKED, STUCK, UNANSWERED, LOST)
# The metric each unaccounted fate is counted under (Powertools Metrics, dimension ``collection``).
METRIC_OF = {PARKED: "Unanswered", UNANSWERED: "Unanswered", STUCK: "Stuck", LOST: "Lost"}
METRICS = ("Unanswered", "Stuck", "Lost")
# Time stamps of the stream, Step Functions and the response stream come from different clocks.
DEFAULT_SKEW = timedelta(minutes=5)
# "Running past the workflow's timeout": the state machine's TimeoutSeconds, else this.
DEFAULT_STUCK_AFTER = timedelta(hours=2)
UNKNOWN_COLLECTION = "unknown"

Position = tuple[str, str, str]  # (stream ARN, shard id, sequence number)


# --- facts -----------------------------------------------------------------------------------------


@dataclass
class Seen:
    """One notification record read from the stream."""

    stream_arn: str
    shard_id: str
    sequence_number: str
    arrival: datetime
    data: bytes
    partition_key: str = ""

    @property
    def position(self) -> Position:
        return (self.stream_arn, self.shard_id, self.sequence_number)

    @property
    def notification(self) -> dict[str, Any] | None:
        """The record's JSON object (lenient: a lone surrogate or NaN still names the CNM), or None."""
        try:
            value = json.loads(self.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def source_record(self) -> Any:
        """The record as the consumer takes it (``consume.SourceRecord``)."""
        from cnm_ingest.consumer.consume import SourceRecord

        return SourceRecord(
            data=base64.b64encode(self.data).decode("ascii"),
            sequenceNumber=self.sequence_number,
            partitionKey=self.partition_key,
            shardId=self.shard_id,
            streamArn=self.stream_arn,
            approximateArrivalTimestamp=self.arrival.timestamp(),
        )


@dataclass
class Execution:
    """One execution as the executions store has it."""

    arn: str
    name: str
    status: str
    started_at: str
    position: Position | None = None
    identifier: str | None = None
    collection: str | None = None
    provider: str | None = None
    error_code: str | None = None
    cnm: dict[str, Any] | None = None
    arrival: datetime | None = None  # the record's arrival on the stream (``source.arrival``, since 0.3.0)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Execution:
        source = _dict(item.get("source"))
        position = (
            (str(source["stream_arn"]), str(source["shard_id"]), str(source["sequence_number"]))
            if all(isinstance(source.get(k), str) for k in ("stream_arn", "shard_id", "sequence_number"))
            else None
        )
        original = _dict(item.get("original_error"))
        cnm = executions.json_value(item.get("cnm"))
        return cls(
            arn=str(item.get("execution_arn") or ""),
            name=str(item.get("execution_name") or ""),
            status=str(item.get("status") or ""),
            started_at=str(item.get("started_at") or ""),
            position=position,
            identifier=item.get("cnm_identifier") if isinstance(item.get("cnm_identifier"), str) else None,
            collection=item.get("collection") if isinstance(item.get("collection"), str) else None,
            provider=item.get("provider") if isinstance(item.get("provider"), str) else None,
            error_code=original.get("errorCode") if isinstance(original.get("errorCode"), str) else None,
            cnm=cnm if isinstance(cnm, dict) else None,
            arrival=_when(source["arrival"]) if isinstance(source.get("arrival"), str) else None,
        )


@dataclass
class Answer:
    """One CNM response read from the response stream."""

    identifier: str
    status: str
    arrival: datetime
    error_code: str | None = None
    sequence_number: str = ""

    @classmethod
    def from_data(cls, data: bytes, arrival: datetime, sequence_number: str = "") -> Answer | None:
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(value, dict) or not isinstance(value.get("identifier"), str):
            return None
        response = _dict(value.get("response"))
        status = response.get("status")
        if status not in ("SUCCESS", "FAILURE"):
            return None
        code = response.get("errorCode")
        return cls(value["identifier"], status, arrival, code if isinstance(code, str) else None, sequence_number)


@dataclass
class Parked:
    """Something in the DLQ (or marked as parked): a record, a response, or a gap of a failed batch."""

    kind: str  # "record" | "response" | "gap"
    reason: str
    error_type: str = ""
    position: Position | None = None
    execution_arn: str | None = None
    response: dict[str, Any] | None = None
    payload: bytes | None = None
    gap: tuple[str, str, int, int] | None = None  # (stream ARN, shard id, first, last sequence number)
    ref: Any = None  # the caller's handle on the DLQ message (the CLI's DlqMessage)

    @property
    def retryable(self) -> bool:
        return reason_is_retryable(self.error_type, self.reason)

    def covers(self, position: Position) -> bool:
        if self.position is not None:
            return self.position == position
        if self.gap is None:
            return False
        stream, shard, first, last = self.gap
        try:
            return (stream, shard) == position[:2] and first <= int(position[2]) <= last
        except ValueError:
            return False

    @classmethod
    def from_envelope(cls, env: dict[str, Any], payload: bytes | None = None, ref: Any = None) -> Parked:
        """From a :mod:`cnm_ingest.dlq` envelope (record, response or hydrate's gap entry)."""
        reason, error_type = str(env.get("reason") or ""), str(env.get("error_type") or "")
        if env.get("envelope") == "response":
            context = _dict(env.get("failure_context"))
            source = _dict(context.get("source"))
            return cls(
                "response",
                reason,
                error_type,
                position=_position(source.get("stream_arn"), source.get("shard_id"), source.get("sequence_number")),
                execution_arn=context.get("execution_arn") or None,
                response=env.get("response") if isinstance(env.get("response"), dict) else None,
                ref=ref,
            )
        record = env.get("record") if isinstance(env.get("record"), dict) else None
        if record is None:
            batch = _dict(env.get("batch"))
            gap = None
            with contextlib.suppress(KeyError, TypeError, ValueError):
                gap = (
                    str(batch["streamArn"]),
                    str(batch["shardId"]),
                    int(batch["startSequenceNumber"]),
                    int(batch["endSequenceNumber"]),
                )
            return cls("gap", reason, error_type, gap=gap, ref=ref)
        position = _position(record.get("streamArn"), record.get("shardId"), record.get("sequenceNumber"))
        return cls("record", reason, error_type, position=position, payload=payload, ref=ref)


def _dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _position(stream: Any, shard: Any, sequence: Any) -> Position | None:
    if isinstance(stream, str) and isinstance(shard, str) and isinstance(sequence, str):
        return (stream, shard, sequence)
    return None


def reason_is_retryable(error_type: str, reason: str) -> bool:
    """:func:`cnm_ingest.errors.is_retryable` on a parked envelope's ``error_type`` and ``reason`` (its text).

    The envelope keeps the exception as its class name and ``"<class>: <message>"``; the exception is made
    again (our classes by name, an AWS ClientError from the code in its message) and asked.
    """
    for cls in errors.ERROR_CLASSES:
        if cls.__name__ == error_type:
            return errors.is_retryable(cls(reason))
    if error_type in errors.TRANSIENT_IDEMPOTENCY_ERRORS:
        return True
    if error_type == "ClientError":
        code = reason.split("(", 1)[1].split(")", 1)[0] if "(" in reason and ")" in reason else ""
        status = 500 if "InternalFailure" in code or "ServiceUnavailable" in code else 400
        parsed: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        exc = ClientError(parsed, "reparsed")
        return errors.is_retryable(exc)
    return error_type in ("ReadTimeoutError", "ConnectionError", "EndpointConnectionError", "ConnectTimeoutError")


@dataclass
class Gap:
    """A range of the window the stream no longer holds (trimmed: older than its retention, or gone early)."""

    start: datetime
    end: datetime
    known: int  # records the executions store still knows in it; the stream's own count is unknown
    stream_count: int | None = None
    shard: str | None = None  # None: the whole stream (the window starts before its retention)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": iso(self.start),
            "to": iso(self.end),
            "shard": self.shard,
            "known": self.known,
            "stream_count": self.stream_count,
        }


@dataclass
class Facts:
    """Everything :func:`decide` needs, collected for one window."""

    start: datetime
    end: datetime
    now: datetime
    seen: list[Seen] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    parked: list[Parked] = field(default_factory=list)
    retention_start: datetime | None = None  # the oldest time the stream still holds (None: all of the window)
    # (stream ARN, shard id) -> (sequence number, arrival) of the first record the shard still holds
    first_kept: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)


@dataclass
class Row:
    """One record's fate."""

    identifier: str | None
    fate: str
    detail: str = ""
    position: Position | None = None
    arrival: str | None = None
    collection: str = UNKNOWN_COLLECTION
    provider: str | None = None
    executions: list[str] = field(default_factory=list)
    duplicates: int = 1  # records in the window with this identifier
    in_gap: bool = False
    fix: str | None = None  # what --fix does: start | redrive | answer | resend (None: nothing it can do)
    # not shown: what a fix needs
    seen: Seen | None = field(default=None, repr=False)
    parked: Parked | None = field(default=None, repr=False)
    execution: Execution | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("seen", "parked", "execution")}
        out["position"] = list(self.position) if self.position else None
        return out


@dataclass
class Report:
    start: datetime
    end: datetime
    rows: list[Row]
    gaps: list[Gap]

    def counts(self) -> dict[str, int]:
        found = Counter(r.fate for r in self.rows)
        return {f: found.get(f, 0) for f in FATES}

    def unaccounted(self) -> list[Row]:
        return [r for r in self.rows if r.fate in UNACCOUNTED]

    def metrics(self) -> dict[str, dict[str, int]]:
        """``{collection: {"Unanswered": n, "Stuck": n, "Lost": n}}`` for every collection seen (zeros too)."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            per = out.setdefault(r.collection, dict.fromkeys(METRICS, 0))
            if r.fate in METRIC_OF:
                per[METRIC_OF[r.fate]] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": iso(self.start),
            "to": iso(self.end),
            "records": len(self.rows),
            "counts": self.counts(),
            "gaps": [g.as_dict() for g in self.gaps],
            "rows": [r.as_dict() for r in self.rows],
        }


def iso(moment: datetime | None) -> str | None:
    return executions.iso(moment) if moment is not None else None


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the decision -----------------------------------------------------------------------------------


def collection_of(cnm: dict[str, Any] | None, execution: Execution | None = None) -> str:
    """The collection id (``name__version`` as the store keeps it, else the CNM's name) for the metrics."""
    if execution is not None and execution.collection:
        return execution.collection
    if cnm is not None:
        name = notification.collection_name(cnm)
        if isinstance(name, str) and name:
            from cnm_ingest.workflow.translate_message import collection_id

            version = notification.collection_version(cnm)
            return collection_id(name, version if isinstance(version, str) else None)
    return UNKNOWN_COLLECTION


def _ended_fate(execs: list[Execution], now: datetime, stuck_after: timedelta) -> tuple[str, str, Execution]:
    """The fate an execution history gives (no answer, nothing parked): the latest execution decides, except
    that one still running makes the record running (or stuck)."""
    latest = max(execs, key=lambda e: (e.started_at, e.arn))
    running = [e for e in execs if e.status == executions.RUNNING]
    if running:
        current = max(running, key=lambda e: (e.started_at, e.arn))
        began = _when(current.started_at)
        if began is not None and now - began > stuck_after:
            return STUCK, f"RUNNING since {current.started_at}", current
        return RUNNING, f"RUNNING since {current.started_at}", current
    detail = latest.status + (f" ({latest.error_code})" if latest.error_code else "")
    return UNANSWERED, detail, latest


def decide(facts: Facts, *, stuck_after: timedelta = DEFAULT_STUCK_AFTER, skew: timedelta = DEFAULT_SKEW) -> Report:
    """One fate for every stream record of the window, and for every execution of a trimmed range.

    Answers are matched by identifier, in arrival order: records sharing an identifier take its
    answers one each, oldest record first; an answer that arrived more than ``skew`` before the
    record is not its answer. Executions are matched by their source position (a record in two
    executions, a reingest: the latest decides, one running makes it running).
    """
    by_position: dict[Position, list[Execution]] = defaultdict(list)
    for e in facts.executions:
        if e.position is not None:
            by_position[e.position].append(e)
    answers: dict[str, list[Answer]] = defaultdict(list)
    for a in sorted(facts.answers, key=lambda a: a.arrival):
        answers[a.identifier].append(a)
    parked_responses = {p.execution_arn: p for p in facts.parked if p.kind == "response" and p.execution_arn}

    def parked_for(position: Position | None, execs: list[Execution]) -> Parked | None:
        for e in execs:
            if e.arn in parked_responses:
                return parked_responses[e.arn]
        if position is None:
            return None
        return next((p for p in facts.parked if p.kind != "response" and p.covers(position)), None) or next(
            (p for p in facts.parked if p.kind == "response" and p.position == position), None
        )

    def take_answer(identifier: str | None, after: datetime) -> Answer | None:
        if identifier is None:
            return None
        queue = answers.get(identifier) or []
        for i, a in enumerate(queue):
            if a.arrival >= after - skew:
                return queue.pop(i)
        return None

    rows: list[Row] = []
    seen_positions = set()
    for s in sorted(facts.seen, key=lambda s: (s.arrival, s.shard_id, s.sequence_number)):
        if s.position in seen_positions:  # the same record read twice (overlapping reads): one row
            continue
        seen_positions.add(s.position)
        cnm = s.notification
        ident = cnm.get("identifier") if cnm and isinstance(cnm.get("identifier"), str) else None
        execs = by_position.get(s.position, [])
        row = Row(
            identifier=ident,
            fate=LOST,
            position=s.position,
            arrival=iso(s.arrival),
            collection=collection_of(cnm, execs[0] if execs else None),
            provider=(cnm or {}).get("provider") if isinstance((cnm or {}).get("provider"), str) else None,
            executions=[e.name for e in execs],
            seen=s,
        )
        _fate(row, take_answer(ident, s.arrival), parked_for(s.position, execs), execs, facts.now, stuck_after)
        rows.append(row)

    gaps = _trimmed(facts, rows, seen_positions, by_position, take_answer, parked_for, stuck_after, skew)
    counted = Counter(r.identifier for r in rows if r.identifier is not None)
    for r in rows:
        r.duplicates = counted.get(r.identifier, 1) if r.identifier is not None else 1
    return Report(facts.start, facts.end, rows, gaps)


def _trimmed(
    facts: Facts,
    rows: list[Row],
    seen_positions: set[Position],
    by_position: dict[Position, list[Execution]],
    take_answer: Callable[[str | None, datetime], Answer | None],
    parked_for: Callable[[Position | None, list[Execution]], Parked | None],
    stuck_after: timedelta,
    skew: timedelta,
) -> list[Gap]:
    """Rows for the records the stream no longer holds, and the trimmed ranges (never hidden).

    A record is trimmed when the store knows an execution of it (its source position) whose record arrived in
    the window, and its sequence number is before the first one its shard still holds (:attr:`Facts.first_kept`).
    The record's arrival is the one the consumer recorded (``source.arrival``); an execution recorded without it
    (before 0.3.0) counts when it started in the window, give or take ``skew``. A window starting before the
    stream's retention is a trimmed range even when nothing is known in it.
    """
    gaps: dict[tuple[str, str] | None, Gap] = {}
    if facts.retention_start is not None and facts.start < facts.retention_start:
        gaps[None] = Gap(facts.start, min(facts.retention_start, facts.end), 0)
    done: set[Position] = set(seen_positions)
    for e in sorted(facts.executions, key=lambda e: (e.started_at, e.arn)):
        began = _when(e.started_at)
        if e.position is None or e.position in done or began is None:
            continue
        if e.arrival is not None and not (facts.start <= e.arrival <= facts.end):
            continue  # its record arrived outside the window
        if e.arrival is None and not (facts.start - skew <= began <= facts.end + skew):
            continue
        shard = e.position[:2]
        kept = facts.first_kept.get(shard)
        if kept is None or not _before(e.position[2], kept[0]):
            continue  # the stream holds it: outside the window read, not trimmed
        done.add(e.position)
        execs = by_position.get(e.position, [e])
        row = Row(
            identifier=e.identifier,
            fate=LOST,
            position=e.position,
            arrival=iso(e.arrival),
            collection=collection_of(e.cnm, e),
            provider=e.provider,
            executions=[x.name for x in execs],
            in_gap=True,
        )
        _fate(
            row, take_answer(e.identifier, began - skew), parked_for(e.position, execs), execs, facts.now, stuck_after
        )
        rows.append(row)
        gap = gaps.get(None) or gaps.setdefault(shard, Gap(facts.start, min(kept[1], facts.end), 0, shard=shard[1]))
        gap.known += 1
    return list(gaps.values())


def _before(sequence: str, other: str) -> bool:
    try:
        return int(sequence) < int(other)
    except ValueError:
        return False


def _fate(
    row: Row,
    answer: Answer | None,
    parked: Parked | None,
    execs: list[Execution],
    now: datetime,
    stuck_after: timedelta,
) -> None:
    """Set ``row``'s fate (and the fix --fix would apply) from what is known of its record."""
    row.parked = parked
    if answer is not None:
        row.fate = SUCCESS if answer.status == "SUCCESS" else FAILURE
        row.detail = answer.error_code or "" if answer.status == "FAILURE" else ""
        return
    if parked is not None:
        row.fate, row.detail = PARKED, f"{parked.kind}: {parked.reason}"
        if parked.kind == "response":
            row.fix = "resend"
        elif parked.kind == "record" and parked.retryable and (parked.payload is not None or row.seen is not None):
            row.fix = "redrive"  # from the DLQ's copy, else the stream's
        elif parked.kind == "record" and row.seen is not None and row.identifier is not None:
            row.fix = "answer"  # a bad record nobody answered: its FAILURE answer, once
        elif parked.kind == "gap" and row.seen is not None:
            row.fix = "redrive"  # the stream still holds what hydrate could not read back
        return
    if execs:
        row.fate, row.detail, row.execution = _ended_fate(execs, now, stuck_after)
        if row.fate == UNANSWERED:
            row.fix = "resend"
        return
    row.fate, row.detail = LOST, "never started, parked or answered"
    row.fix = "start" if row.seen is not None else None


def select(report: Report, collection: str | None = None, provider: str | None = None) -> Report:
    """The rows of one collection (its name or its id ``name__version``) and/or provider."""

    def keep(r: Row) -> bool:
        if collection and collection not in (r.collection, r.collection.rsplit("__", 1)[0]):
            return False
        return not provider or r.provider == provider

    return Report(report.start, report.end, [r for r in report.rows if keep(r)], report.gaps)


# --- collecting (AWS) ---------------------------------------------------------------------------------


def shard_ids(stream_arn: str) -> list[str]:
    kinesis = aws.client("kinesis")
    return [
        s["ShardId"]
        for page in kinesis.get_paginator("list_shards").paginate(StreamARN=stream_arn)
        for s in page["Shards"]
    ]


def read_window(
    stream_arn: str, start: datetime, end: datetime, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(shard id, record)`` for every record of the stream that arrived in [start, end] (AT_TIMESTAMP)."""
    kinesis = aws.client("kinesis")
    for shard in shard_ids(stream_arn):
        iterator = kinesis.get_shard_iterator(
            StreamARN=stream_arn, ShardId=shard, ShardIteratorType="AT_TIMESTAMP", Timestamp=start
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, StreamARN=stream_arn)
            for record in page["Records"]:
                arrival = record.get("ApproximateArrivalTimestamp")
                if isinstance(arrival, datetime) and arrival > end:
                    iterator = None
                    break
                yield shard, record
            if progress is not None and page["Records"]:
                progress(len(page["Records"]))
            if iterator is None or (not page["Records"] and not page.get("MillisBehindLatest")):
                break
            iterator = page.get("NextShardIterator")


def first_kept(stream_arn: str) -> dict[tuple[str, str], tuple[str, datetime]]:
    """Per shard, the first record it still holds (TRIM_HORIZON): what is before it is trimmed."""
    kinesis = aws.client("kinesis")
    out: dict[tuple[str, str], tuple[str, datetime]] = {}
    for shard in shard_ids(stream_arn):
        iterator = kinesis.get_shard_iterator(StreamARN=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        for _ in range(100):  # an empty page is possible before the first record: a few more reads
            page = kinesis.get_records(ShardIterator=iterator, StreamARN=stream_arn, Limit=1)
            if page["Records"]:
                first = page["Records"][0]
                out[(stream_arn, shard)] = (first["SequenceNumber"], first["ApproximateArrivalTimestamp"])
                break
            iterator = page.get("NextShardIterator")
            if not iterator or not page.get("MillisBehindLatest"):
                break
    return out


def retention_start(stream_arn: str, now: datetime) -> datetime:
    hours = aws.client("kinesis").describe_stream_summary(StreamARN=stream_arn)["StreamDescriptionSummary"][
        "RetentionPeriodHours"
    ]
    return now - timedelta(hours=int(hours))


def seen_records(
    stream_arn: str, start: datetime, end: datetime, progress: Callable[[int], None] | None = None
) -> list[Seen]:
    return [
        Seen(
            stream_arn,
            shard,
            r["SequenceNumber"],
            r["ApproximateArrivalTimestamp"],
            bytes(r["Data"]),
            r.get("PartitionKey", ""),
        )
        for shard, r in read_window(stream_arn, start, end, progress)
    ]


def answers_on(stream_arn: str, start: datetime, end: datetime) -> list[Answer]:
    found = (
        Answer.from_data(bytes(r["Data"]), r["ApproximateArrivalTimestamp"], r["SequenceNumber"])
        for _, r in read_window(stream_arn, start, end)
    )
    return [a for a in found if a is not None]


def executions_in(table: str, start: datetime, end: datetime) -> list[Execution]:
    """Every execution the store updated in [start, end] (all statuses; ``executions.query_status``)."""
    out: list[Execution] = []
    for status in executions.STATUSES:
        _, items = executions.query_status(table, executions.EXECUTION, status, iso(start) or "", iso(end) or "")
        out.extend(Execution.from_item(i) for i in items)
    return out


def parked_by_markers(facts: Facts, once_table: str) -> list[Parked]:
    """What was parked, from the idempotency markers (no DLQ read: the scheduled run never touches the queue).

    A record with neither an execution nor an answer is checked for the consumer's park marker; an ended
    execution without an answer for CnmResponse's parking marker (per execution and status), in the same table.
    """
    from cnm_ingest import idempotency
    from cnm_ingest.workflow import cnm_response

    marker = idempotency.Once(once_table)
    answered = {a.identifier for a in facts.answers}
    started = {e.position for e in facts.executions if e.position}
    out: list[Parked] = []
    for s in facts.seen:
        cnm = s.notification
        if s.position in started or (cnm and cnm.get("identifier") in answered):
            continue
        if marker.done(idempotency.PARK, idempotency.record_key(s.source_record().as_dict())):
            out.append(Parked("record", "parked (idempotency marker)", position=s.position))
    for e in facts.executions:
        if e.status == executions.RUNNING or e.identifier in answered:
            continue
        for status in ("FAILURE", "SUCCESS"):
            if cnm_response.completed(cnm_response._park, once_table, cnm_response.key({"id": e.arn}, status, "dlq")):
                out.append(Parked("response", "response parked (marker)", position=e.position, execution_arn=e.arn))
                break
    return out


def collect(
    *,
    notification_stream: str,
    response_stream: str,
    executions_table: str,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    skew: timedelta = DEFAULT_SKEW,
    parked: Iterable[Parked] = (),
    progress: Callable[[int], None] | None = None,
) -> Facts:
    """The facts of [start, end]: stream records, executions, answers (up to now), and ``parked`` as given."""
    now = now or datetime.now(UTC)
    kept_from = retention_start(notification_stream, now)
    return Facts(
        start=start,
        end=end,
        now=now,
        seen=seen_records(notification_stream, max(start, kept_from), end, progress),
        executions=executions_in(executions_table, start - skew, now),
        answers=answers_on(response_stream, start - skew, now),
        parked=list(parked),
        retention_start=kept_from if start < kept_from else None,
        first_kept=first_kept(notification_stream),
    )


def stuck_after_of(state_machine_arn: str) -> timedelta:
    """The workflow's own timeout (its definition's TimeoutSeconds), else :data:`DEFAULT_STUCK_AFTER`."""
    try:
        definition = aws.client("stepfunctions").describe_state_machine(stateMachineArn=state_machine_arn)["definition"]
        seconds = json.loads(definition).get("TimeoutSeconds")
    except (ClientError, ValueError, AttributeError):
        return DEFAULT_STUCK_AFTER
    return timedelta(seconds=seconds) if isinstance(seconds, int) and seconds > 0 else DEFAULT_STUCK_AFTER


# --- fixing ---------------------------------------------------------------------------------------------


@dataclass
class Fixer:
    """What ``--fix --apply`` needs: the consumer's run (its store, settings, markers, DLQ, response stream),
    CnmResponse's delivery markers (``status_table``: the idempotency table, where CnmResponse keeps them) and
    the response destinations."""

    run: Any  # consume.Run
    status_table: str
    destinations: list[str]


def failure_answer(row: Row) -> dict[str, Any]:
    """The FAILURE response for an execution that ended without one (aborted, timed out)."""
    from cnm_ingest.cnm.response_message import build_response

    e = row.execution
    cnm = (e.cnm if e else None) or (row.seen.notification if row.seen else None) or {"identifier": row.identifier}
    status = e.status if e else "unknown"
    return build_response(
        cnm,
        status="FAILURE",
        error_code="PROCESSING_ERROR",
        error_message=f"the workflow execution {e.name if e else ''} ended {status} without an answer",
    )


def _resend(row: Row, fixer: Fixer) -> dict[str, Any]:
    from cnm_ingest.workflow import cnm_response

    parked = row.parked
    if parked is not None and parked.kind == "response":
        arn = parked.execution_arn or ""
        response = parked.response
    else:
        arn = row.execution.arn if row.execution else ""
        response = None
    if not arn:
        return {"outcome": "skipped", "reason": "no execution to answer for"}
    execution = {"id": arn, "name": arn.rsplit(":", 1)[-1]}
    if response is None:
        response = failure_answer(row)
    status = response["response"]["status"]
    before = cnm_response.delivered_to(execution, status, table=fixer.status_table, destinations=fixer.destinations)
    if len(before) == len(dict.fromkeys(fixer.destinations)):
        return {"outcome": "already-answered"}
    sent = cnm_response.deliver(response, execution, table=fixer.status_table, destinations=fixer.destinations)
    return {"outcome": "answered", "status": sent["response"]["status"]}


def _consume(row: Row, fixer: Fixer, payload_record: Any) -> dict[str, Any]:
    from cnm_ingest.consumer import consume

    outcome = consume.consume(payload_record, fixer.run)
    if outcome.status == "started":
        new = [s.execution_name for s in outcome.started if not s.already_existed]
        return {
            "outcome": "started" if new else "already-started",
            "executions": [s.execution_name for s in outcome.started],
        }
    return {"outcome": outcome.status, "answer": outcome.answer, "reason": outcome.reason}


def _answer(row: Row, fixer: Fixer) -> dict[str, Any]:
    from cnm_ingest import idempotency
    from cnm_ingest.consumer import consume

    assert row.seen is not None and row.parked is not None
    record = row.seen.source_record()
    key = idempotency.record_key(record.as_dict())
    if fixer.run.once.done(idempotency.ANSWER, key):
        return {"outcome": "already-answered"}
    cls = next((c for c in errors.ERROR_CLASSES if c.__name__ == row.parked.error_type), errors.RecordError)
    exc = (
        cls(row.parked.reason.split(": ", 1)[-1])
        if issubclass(cls, errors.RecordError)
        else errors.RecordError(row.parked.reason)
    )
    return {"outcome": consume.answer_once(record, exc, fixer.run)}


def apply_fix(row: Row, fixer: Fixer) -> dict[str, Any]:  # noqa: PLR0911 - one return per kind of fix
    """Do ``row.fix``, at most once per record (a second run finds it done: ``already-...``)."""
    from cnm_ingest.consumer import consume

    try:
        if row.fix == "start":
            assert row.seen is not None
            return _consume(row, fixer, row.seen.source_record())
        if row.fix == "redrive":
            assert row.parked is not None
            if row.parked.kind == "record" and row.parked.payload is not None:
                from cnm_ingest.consumer.consume import SourceRecord

                stream, shard, seq = row.parked.position or row.position or ("", "", "")
                record = SourceRecord(
                    data=base64.b64encode(row.parked.payload).decode("ascii"),
                    sequenceNumber=seq,
                    partitionKey=row.seen.partition_key if row.seen else "",
                    shardId=shard,
                    streamArn=stream,
                )
                return _consume(row, fixer, record)
            assert row.seen is not None
            return _consume(row, fixer, row.seen.source_record())
        if row.fix == "answer":
            return _answer(row, fixer)
        if row.fix == "resend":
            return _resend(row, fixer)
    except Exception as exc:  # reported per row; a retry of the whole command picks it up
        return {"outcome": "busy" if consume.is_retryable(exc) else "failed", "reason": f"{type(exc).__name__}: {exc}"}
    return {"outcome": "nothing-to-do"}
