"""Processing of one notification record, shared by the message and fallback consumers and hydrate.

:func:`plan`: decode (base64, UTF-8, strict JSON) -> normalise -> validate
(CNM schema) -> match ENABLED rules -> resolve EVERY matching rule
(collection, provider, workflow message): all or nothing, no side effect.
:func:`start_execution`: StartExecution under a name derived from the record,
paced by a shared :class:`~cnm_ingest.consumer.pacing.Pacer`; ``ExecutionAlreadyExists``
means a previous delivery already started it, which counts as done.
:func:`consume`: one record end to end, with its side effects done once
(:mod:`cnm_ingest.idempotency`): a bad record is answered (when addressable) and
parked in the DLQ at once; an unexpected error hands the record to the
fallback topic (message consumer) or raises (fallback consumer).

Errors: a :class:`~cnm_ingest.errors.RecordError` is about the record and is
never retried; :func:`is_retryable` errors (throttling, 5xx, no time left,
the same record in progress elsewhere) are retried by the caller's event
source; anything else is unexpected.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import os
import threading
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from cnm_ingest import aws, errors, idempotency
from cnm_ingest.cnm import notification, validate
from cnm_ingest.cnm.decode import b64decode, decode_json
from cnm_ingest.consumer import rulebook
from cnm_ingest.consumer.pacing import Pacer
from cnm_ingest.errors import NotConfiguredError, RecordError, WorkflowInputTooLargeError
from cnm_ingest.workflow.payload import build_workflow_input, execution_name, offload_threshold

# dlq and response serve bad records only: imported when the first one is parked or answered, not at a cold start.

# Step Functions accepts at most 256 KiB of execution input.
MAX_EXECUTION_INPUT_BYTES = 256 * 1024


_YEAR_10000 = 253_402_300_800  # epoch seconds: arrivals from then on (or before 1970) are not times


@functools.lru_cache(maxsize=256)
def _utc_second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) of an epoch second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


_MILLIS = tuple(f".{m:03d}Z" for m in range(1000))  # the tail of an arrival's text, by its millisecond


# SourceRecord, Planned and Started are built for every record: slotted, not frozen (a frozen dataclass's __init__
# sets each field through object.__setattr__, a microsecond a record for these three). Nothing changes them.
@dataclass(slots=True)
class SourceRecord:
    """One Kinesis record as the envelope's ``record`` describes it (``data`` is base64)."""

    data: str
    sequenceNumber: str
    partitionKey: str
    shardId: str
    streamArn: str
    approximateArrivalTimestamp: float | None = None

    @classmethod
    def from_kinesis_event_record(cls, record: Any) -> SourceRecord:
        """From a Powertools ``KinesisStreamRecord`` (a record of a Lambda Kinesis event)."""
        k = record.kinesis
        return cls(
            data=k.data,
            sequenceNumber=k.sequence_number,
            partitionKey=k.partition_key,
            shardId=record.event_id.split(":", 1)[0],
            streamArn=record.event_source_arn,
            approximateArrivalTimestamp=k.approximate_arrival_timestamp,
        )

    @classmethod
    def from_event(cls, raw: dict[str, Any]) -> SourceRecord:
        """From one record of a Lambda Kinesis event (the raw dict; cheaper than the Powertools data class)."""
        k = raw["kinesis"]
        return cls(
            data=k["data"],
            sequenceNumber=k["sequenceNumber"],
            partitionKey=k["partitionKey"],
            shardId=raw["eventID"].split(":", 1)[0],
            streamArn=raw["eventSourceARN"],
            approximateArrivalTimestamp=k.get("approximateArrivalTimestamp"),
        )

    @classmethod
    def from_envelope(cls, env: dict[str, Any], payload: bytes | None) -> SourceRecord:
        record = dict(env.get("record") or {})
        record["data"] = base64.b64encode(payload or b"").decode("ascii")
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in fields})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def source(self) -> dict[str, Any]:
        """``cumulus_meta.source`` of the workflow message; ``arrival``: the record's approximate arrival time on
        the stream (``YYYY-MM-DDTHH:MM:SS.mmmZ``, the same for every delivery of the record), which bounds
        ``reconcile``'s window once the stream has trimmed the record."""
        source = {
            "stream_arn": self.streamArn,
            "shard_id": self.shardId,
            "sequence_number": self.sequenceNumber,
            "partition_key": self.partitionKey,
        }
        arrival = self.approximateArrivalTimestamp
        # a float (the Lambda event's) or an int, not a bool; the range leaves out NaN and the infinities
        if (type(arrival) is float or (isinstance(arrival, (int, float)) and not isinstance(arrival, bool))) and (
            -1 < arrival < _YEAR_10000
        ):
            # milliseconds, as executions.iso writes them (not imported: the consumers do not read its table);
            # once per record, so the second's text is cached (a batch's records share their seconds)
            seconds, millis = divmod(round(arrival * 1000), 1000)
            if 0 <= seconds < _YEAR_10000:
                source["arrival"] = _utc_second(seconds) + _MILLIS[millis]
        return source


@dataclass(frozen=True)
class Settings:
    stack: str
    buckets: dict[str, Any]
    # WORKFLOW_OFFLOAD_BYTES, read once per invocation (None: read by every message, message.offload_threshold)
    offload_bytes: int | None = None

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            stack=os.environ.get("STACK", ""),
            buckets=json.loads(os.environ.get("BUCKETS") or "{}"),
            offload_bytes=offload_threshold(),
        )


@dataclass(slots=True)
class Started:
    rule: str
    execution_name: str
    already_existed: bool


def decode(record: SourceRecord) -> Any:
    """The record's JSON value (DecodeError when it is not base64 / UTF-8 / JSON)."""
    return decode_json(b64decode(record.data))


def peek(record: SourceRecord) -> Any:
    """The record's JSON value for addressing a FAILURE response, or None (never raises).

    Lenient where :func:`decode` is strict: a CNM whose ``size`` is ``NaN`` or
    which carries a lone surrogate in some field is still answered (the
    response copies only identifier, collection, provider and times).
    """
    try:
        return decode(record)
    except RecordError:
        pass
    try:
        return json.loads(b64decode(record.data).decode("utf-8"))
    except (RecordError, ValueError, RecursionError):
        return None


@dataclass(slots=True)
class Planned:
    """One execution to start for a record: everything resolved, nothing started yet."""

    rule: str
    state_machine_arn: str
    name: str
    input: str


def _input_text(message: dict[str, Any], text: str | None = None) -> str:
    if text is None:
        text = json.dumps(message, separators=(",", ":"), allow_nan=False)
    # UTF-8 takes at most 4 bytes a character: a short text needs no encoding to be measured.
    if len(text) > MAX_EXECUTION_INPUT_BYTES // 4 and len(text.encode("utf-8")) > MAX_EXECUTION_INPUT_BYTES:
        raise WorkflowInputTooLargeError(
            f"the workflow message is {len(text)} bytes; Step Functions accepts {MAX_EXECUTION_INPUT_BYTES}"
        )
    return text


def plan(record: SourceRecord, store: rulebook.ConfigStore, settings: Settings) -> list[Planned]:
    """The executions to start for ``record``, one per matching ENABLED rule, all resolved (no side effect).

    Raises a RecordError for a bad record, a NotConfiguredError (a RecordError)
    when ANY matching rule cannot be resolved, so either every execution
    starts or none does.
    """
    # normalised and validated, then read once (decode() inlined: a call fewer a record)
    cnm = validate.normalize_and_validate(decode_json(b64decode(record.data)))
    note = notification.Notification.read(cnm)
    source = record.source()  # the same for every rule: the messages are written out (as text) before plan returns
    planned = []
    for rule in store.rule_index().require(note, record.streamArn):
        collection = store.collection(rule.collection_name, rule.collection_version or note.version or "")
        provider = store.provider(provider_id(rule, cnm))
        name = execution_name(note.identifier, record.sequenceNumber, rule.name, rule.execution_name_prefix)
        message, text = build_workflow_input(
            cnm,
            rule=rule.as_message_rule(),
            collection=collection,
            provider=provider,
            stack=settings.stack,
            buckets=settings.buckets,
            state_machine_arn=rule.workflow_arn,
            execution=name,
            source=source,
            offload_bytes=settings.offload_bytes,
        )
        planned.append(Planned(rule.name, rule.workflow_arn, name, _input_text(message, text)))
    return planned


def provider_id(rule: rulebook.Rule, cnm: dict[str, Any]) -> str:
    """Whose configuration (host, credentials) the workflow reads files with: the rule's provider, as in
    Cumulus; for a rule without one, the provider the CNM names (NotConfiguredError when neither has one)."""
    provider = rule.provider or cnm.get("provider")
    if not isinstance(provider, str) or not provider:
        raise NotConfiguredError(f"rule {rule.name!r} names no provider and neither does the CNM")
    return provider


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def start_execution(
    state_machine_arn: str, name: str, message: dict[str, Any] | str, pacer: Pacer | None = None
) -> bool:
    """StartExecution; False when an execution of that name exists already (a redelivery).

    Throttling and 5xx left after botocore's own retries are retried here,
    paced by ``pacer`` (shared by the pool) until its deadline; then the
    error propagates (a batch item failure).
    """
    text = message if isinstance(message, str) else _input_text(message)
    sfn = aws.client("stepfunctions")
    attempts = 0
    while True:
        if pacer is not None:
            pacer.acquire()
        attempts += 1
        try:
            sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=text)
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                return False
            if pacer is None or not aws.is_transient(exc) or attempts >= pacer.max_attempts:
                raise
            pacer.throttled()
            continue
        if pacer is not None:
            pacer.succeeded()
        return True


def process(
    record: SourceRecord, store: rulebook.ConfigStore, settings: Settings, pacer: Pacer | None = None
) -> list[Started]:
    """Start one workflow execution per ENABLED rule matching the record (all resolved first)."""
    return [
        Started(p.rule, p.name, not start_execution(p.state_machine_arn, p.name, p.input, pacer))
        for p in plan(record, store, settings)
    ]


def execution_arn(state_machine_arn: str, name: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def already_started(record: SourceRecord, store: rulebook.ConfigStore, settings: Settings) -> bool:
    """True when an execution exists under one of the record's deterministic names.

    A record that is not valid (or has no rule) cannot have started anything.
    """
    try:
        planned = plan(record, store, settings)
    except RecordError:
        return False
    sfn = aws.client("stepfunctions")
    for p in planned:
        try:
            sfn.describe_execution(executionArn=execution_arn(p.state_machine_arn, p.name))
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                continue
            raise
        return True
    return False


# Worth delivering again: AWS throttling/5xx, no time left, the same record in progress elsewhere, a failure of
# the idempotency store. One decision for the consumer, hydrate and CnmResponse (cnm_ingest.errors).
is_retryable = errors.is_retryable


def reason_for(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def failed_envelope(record: SourceRecord, exc: BaseException, source: str) -> dict[str, Any]:
    from cnm_ingest import dlq

    return dlq.envelope(source, reason_for(exc), type(exc).__name__, record.as_dict())


def failure_response(record: SourceRecord, exc: RecordError) -> dict[str, Any] | None:
    """The FAILURE response for a record that cannot be ingested, or None when it is not addressable."""
    from cnm_ingest.cnm.response_message import build_response

    message = peek(record)
    if not notification.can_address_response(message):
        return None
    return build_response(message, status="FAILURE", error_code=exc.error_code, error_message=str(exc))


@dataclass
class Run:
    """What one invocation needs to consume records (built by the handler)."""

    store: rulebook.ConfigStore
    settings: Settings
    once: idempotency.Once
    source: str
    queue_url: str
    response_stream_arn: str | None = None
    fallback_topic_arn: str | None = None  # None: an unexpected error raises (fallback consumer)
    pacer: Pacer | None = None


@dataclass
class Outcome:
    """What happened to one record."""

    status: str  # "started", "parked", "fallback"
    started: list[Started] = field(default_factory=list)
    answer: str = ""  # "answered", "unaddressable", "failed: <reason>" or "" (not a bad record)
    reason: str = ""


def answer_once(record: SourceRecord, exc: RecordError, run: Run) -> str:
    """FAILURE response for a bad record, at most once per record; a retryable put error propagates.

    The response is fixed first (:data:`idempotency.ANSWER_BODY`, no side effect), so a repeated put (the window of
    docs/exactly-once.md) carries the same bytes and partition key as the first.
    """
    from cnm_ingest.cnm.response_message import put_response

    if run.response_stream_arn is None or failure_response(record, exc) is None:
        return "unaddressable"
    key = idempotency.record_key(record.as_dict())
    stream_arn = run.response_stream_arn
    try:
        # As JSON text: Powertools saves results with sorted keys; the text keeps the response's field order.
        text = run.once.run(
            idempotency.ANSWER_BODY,
            key,
            lambda: json.dumps(failure_response(record, exc), separators=(",", ":")),
            pure=True,
        )
        response = json.loads(text)
        run.once.run(idempotency.ANSWER, key, lambda: bool(put_response(response, stream_arn)))
    except Exception as put_exc:
        if is_retryable(put_exc):
            raise
        return f"failed: {reason_for(put_exc)}"
    return "answered"


def park_bad(record: SourceRecord, exc: RecordError, run: Run) -> Outcome:
    """Answer (once, when addressable) and park (once) a bad record in the DLQ."""
    from cnm_ingest import dlq

    answer = answer_once(record, exc, run)
    key = idempotency.record_key(record.as_dict())
    run.once.run(idempotency.PARK, key, lambda: dlq.send([failed_envelope(record, exc, run.source)], run.queue_url))
    return Outcome("parked", answer=answer, reason=reason_for(exc))


def hand_to_fallback(record: SourceRecord, exc: BaseException, run: Run) -> Outcome:
    """Publish (once) a record that met an unexpected error to the fallback topic."""
    from cnm_ingest import dlq

    key = idempotency.record_key(record.as_dict())
    topic = run.fallback_topic_arn or ""
    run.once.run(idempotency.FALLBACK, key, lambda: dlq.publish(failed_envelope(record, exc, run.source), topic))
    return Outcome("fallback", reason=reason_for(exc))


def consume(record: SourceRecord, run: Run) -> Outcome:
    """One record end to end; raises only what the event source must deliver again."""
    try:
        planned = plan(record, run.store, run.settings)
        started = [
            Started(p.rule, p.name, not start_execution(p.state_machine_arn, p.name, p.input, run.pacer))
            for p in planned
        ]
    except RecordError as exc:
        return park_bad(record, exc, run)
    except Exception as exc:
        if is_retryable(exc) or run.fallback_topic_arn is None:
            raise
        return hand_to_fallback(record, exc, run)
    return Outcome("started", started=started)


# A record that took longer than this is waiting on AWS, not on the CPU: add workers.
SPAWN_AFTER_SECONDS = 0.002


def consume_all(
    records: list[SourceRecord], run: Run, executor: Executor | None = None, workers: int = 1
) -> list[Outcome | BaseException]:
    """:func:`consume` every record, up to ``workers`` at a time (the calling thread and helpers on
    ``executor``); the outcome or the exception of each record, in order.

    Each worker takes the next record when it is done with one. Work starts in
    the calling thread alone; as soon as one record waited on AWS
    (StartExecution latency) helpers join it on ``executor``, up to
    ``workers`` in all, so I/O-bound batches run concurrently and CPU-bound
    ones (fast starts) pay neither for threads fighting over the GIL nor for
    handing the batch to another thread (10% of a record's CPU when the
    first worker was a pool thread too).
    """
    results: list[Outcome | BaseException | None] = [None] * len(records)
    indexes = itertools.count()
    helpers = min(max(1, workers), len(records)) - 1 if executor is not None else 0
    futures: list[Any] = []
    lock = threading.Lock()

    def grow() -> None:
        with lock:
            while executor is not None and len(futures) < helpers:
                futures.append(executor.submit(work))

    def work() -> None:
        while (i := next(indexes)) < len(records):
            began = time.monotonic()
            try:
                results[i] = consume(records[i], run)
            except Exception as exc:
                results[i] = exc
            if len(futures) < helpers and time.monotonic() - began > SPAWN_AFTER_SECONDS:
                grow()

    work()
    done = 0
    while done < len(futures):  # the helpers finish the records they took
        futures[done].result()
        done += 1
    return results  # type: ignore[return-value]
