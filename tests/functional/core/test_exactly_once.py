"""Exactly once when the idempotency store itself fails (issue 20), on moto.

CnmResponse runs as the state machine runs it: :func:`run_workflow_tail` drives CnmResponse ->
[ParkResponse] -> StopStatus with the Retry and Catch lists of the module's definition template
(modules/workflow/templates), retrying each error its Retry names and following its Catch. Every
attempt's Lambda context has no time left, so an in-progress idempotency item of a failed attempt has
expired when the next attempt comes: the worst case for repeats.

Faults hit chosen calls of the handlers' own clients (tests/functional/core/idempotency_faults.py):
the DynamoDB idempotency writes (save_inprogress = PutItem, save_success = UpdateItem) of each
effect, and the side effects themselves (Kinesis PutRecord, SNS Publish, SQS SendMessage), each
``before`` (not applied) or ``after`` (applied, answer lost). Every side effect is counted from where
it lands (records on the response stream, messages on the topic's subscriber queue, DLQ messages),
duplicates not collapsed.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from cnm_ingest import aws
from tests.conftest import FakeLambdaContext
from tests.functional.core.idempotency_faults import Faults, idempotency_key

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "modules" / "workflow" / "templates" / "cnm_workflow.asl.json.tftpl"
IDEMPOTENCY_TABLE = "eo-idempotency"

# The crashed invocation's remaining time: long enough that a retry right after it still finds the item in
# progress on a loaded 2-core machine, short enough to wait out.
CRASHED_REMAINING_MS = 3000


def definition() -> dict[str, Any]:
    """The module's definition template, rendered with placeholder ARNs and the module's default retries."""
    values = {
        "response_retry_interval_seconds": "5",
        "response_retry_max_attempts": "3",
        "sync_retry_interval_seconds": "15",
        "sync_retry_max_attempts": "4",
        "sync_next": "CnmResponse",
        "sync_max_invocations": "50",
        "extra_states": "",
    }
    text = re.sub(
        r"\$\{(\w+)\}",
        lambda m: values.get(m.group(1), f"arn:aws:lambda:us-west-2:1:function:{m.group(1)}"),
        TEMPLATE.read_text(),
    )
    return json.loads(text)


class Context(FakeLambdaContext):
    """A Lambda context with ``remaining_ms`` left (0: the in-progress item expires as soon as it is written)."""

    def __init__(self, remaining_ms: int = 0) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class World:
    """moto resources for CnmResponse, the consumer's idempotency table, and counts of every side effect."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        ddb, kinesis, sns, sqs, s3 = (aws.client(s) for s in ("dynamodb", "kinesis", "sns", "sqs", "s3"))
        ddb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        kinesis.create_stream(StreamName="eo-responses", ShardCount=1)
        self.stream_arn = kinesis.describe_stream(StreamName="eo-responses")["StreamDescription"]["StreamARN"]
        self.topic_arn = sns.create_topic(Name="eo-responses")["TopicArn"]
        self.subscriber = sqs.create_queue(QueueName="eo-subscriber")["QueueUrl"]
        subscriber_arn = sqs.get_queue_attributes(QueueUrl=self.subscriber, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=subscriber_arn, Attributes={"RawMessageDelivery": "true"}
        )
        self.dlq_url = sqs.create_queue(QueueName="eo-dlq")["QueueUrl"]
        s3.create_bucket(Bucket="eo-payload", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        self.env = {
            "RESPONSE_STREAM_ARN": self.stream_arn,
            "RESPONSE_TOPIC_ARN": self.topic_arn,
            "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "DLQ_URL": self.dlq_url,
            "PAYLOAD_BUCKET": "eo-payload",
        }
        for k, v in self.env.items():
            monkeypatch.setenv(k, v)
        self._subscriber_seen: list[str] = []
        self._dlq_seen: list[str] = []

    def stream_records(self) -> list[tuple[bytes, str]]:
        """Every record on the response stream: (data bytes, partition key), in order."""
        kinesis = aws.client("kinesis")
        out = []
        for shard in kinesis.list_shards(StreamARN=self.stream_arn)["Shards"]:
            it = kinesis.get_shard_iterator(
                StreamARN=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while it:
                got = kinesis.get_records(ShardIterator=it, StreamARN=self.stream_arn)
                out += [(r["Data"], r["PartitionKey"]) for r in got["Records"]]
                it = got.get("NextShardIterator") if got["Records"] else None
        return out

    def _drain(self, url: str, seen: list[str]) -> list[str]:
        sqs = aws.client("sqs")
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for m in got:
                seen.append(m["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return seen

    def publishes(self) -> list[str]:
        """Every message SNS delivered to the topic's subscriber (one per applied Publish)."""
        return self._drain(self.subscriber, self._subscriber_seen)

    def parked(self) -> list[str]:
        return self._drain(self.dlq_url, self._dlq_seen)

    def counts(self) -> dict[str, int]:
        return {"puts": len(self.stream_records()), "publishes": len(self.publishes()), "parked": len(self.parked())}


@pytest.fixture
def world(aws, monkeypatch):
    from cnm_ingest import idempotency

    monkeypatch.setattr(idempotency, "sleep", lambda _s: None)  # the late success write's backoff, not slept
    return World(monkeypatch)


def error_of(exc: BaseException) -> dict[str, str]:
    name = type(exc).__name__
    return {"Error": name, "Cause": json.dumps({"errorType": name, "errorMessage": str(exc)})}


def matches(names: list[str], error: str) -> bool:
    return error in names or "States.ALL" in names


def retried(retriers: list[dict[str, Any]], used: list[int], error: str) -> bool:
    """Whether the first retrier that matches ``error`` has an attempt left (and then ``used`` counts it)."""
    for i, retrier in enumerate(retriers):
        if matches(retrier["ErrorEquals"], error):
            if used[i] < retrier["MaxAttempts"]:
                used[i] += 1
                return True
            return False
    return False


def run_task(state: dict[str, Any], event: dict[str, Any], attempts: list[str]) -> tuple[Any, dict[str, Any] | None]:
    """One Task state: the handler, retried as the state's Retry says; (output, None) or (None, the catch)."""
    from handlers import cnm_response

    used = [0] * len(state.get("Retry", []))
    while True:
        try:
            out = cnm_response.handler(event, Context())
            attempts.append("ok")
            return out, None
        except Exception as exc:
            error = error_of(exc)
            attempts.append(error["Error"])
            if retried(state.get("Retry", []), used, error["Error"]):
                continue
            for catch in state.get("Catch", []):
                if matches(catch["ErrorEquals"], error["Error"]):
                    return None, {**catch, "error": error}
            if error["Error"] == "WorkflowError":  # the FAILURE answered (a bare task: no Catch given)
                return None, None
            raise


def run_workflow_tail(message: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
    """CnmResponse -> [ParkResponse] -> StopStatus as the definition routes them; the execution's outcome."""
    states = definition()["States"]
    attempts: list[str] = []
    path = ["CnmResponse"]
    out, caught = run_task(states["CnmResponse"], {"message": message, "execution": execution}, attempts)
    if caught is not None:
        message = {**message, caught["ResultPath"].removeprefix("$."): caught["error"]}
        path.append(caught["Next"])
        if caught["Next"] == "ParkResponse":
            out, caught = run_task(
                states["ParkResponse"], {"park": True, "message": message, "execution": execution}, attempts
            )
            if caught is not None:
                out = {**message, "exception": caught["error"]}
        else:
            out = message
    status = "FAILED" if out.get("exception") else "SUCCEEDED"  # StopStatus -> CheckOutcome
    return {"status": status, "path": path, "attempts": attempts, "output": out}


def message_for(samples: dict[str, dict], outcome: str) -> dict[str, Any]:
    cnm = samples["cumulus_sns_v1.0_notification.json"]
    message: dict[str, Any] = {"meta": {"cnm": cnm}, "payload": {}}
    if outcome == "FAILURE":
        cause = {"errorType": "ChecksumMismatchError", "errorMessage": "checksum differs"}
        message["exception"] = {"Error": "ChecksumMismatchError", "Cause": json.dumps(cause)}
    return message


def on_status_table(prefix: str):
    """Calls on CnmResponse's idempotency records of one effect (``pin``, ``put``, ``publish``, ``park``), which
    live in the stack's idempotency table beside the consumers' (ids ``cnm-response.<effect>#...``)."""
    return lambda p: (
        p.get("TableName") == IDEMPOTENCY_TABLE and idempotency_key(p).startswith(f"cnm-response.{prefix}#")
    )


# position -> (service, operation, match, fault): the calls carrying CnmResponse's side effects and their records.
CALLS: dict[str, tuple[str, str, Any, str]] = {
    "pin save_inprogress": ("dynamodb", "PutItem", on_status_table("pin"), "Throttling"),
    "pin save_success": ("dynamodb", "UpdateItem", on_status_table("pin"), "InternalFailure"),
    "put save_inprogress": ("dynamodb", "PutItem", on_status_table("put"), "Throttling"),
    "put": ("kinesis", "PutRecord", lambda p: True, "InternalFailure"),
    "put save_success": ("dynamodb", "UpdateItem", on_status_table("put"), "InternalFailure"),
    "publish save_inprogress": ("dynamodb", "PutItem", on_status_table("publish"), "Throttling"),
    "publish": ("sns", "Publish", lambda p: True, "InternalFailure"),
    "publish save_success": ("dynamodb", "UpdateItem", on_status_table("publish"), "InternalFailure"),
}
# The park path: the put refused for good (AccessDenied is not retried), then these.
PARK_CALLS: dict[str, tuple[str, str, Any, str]] = {
    "park save_inprogress": ("dynamodb", "PutItem", on_status_table("park"), "Throttling"),
    "park": ("sqs", "SendMessageBatch", lambda p: True, "InternalFailure"),
    "park save_success": ("dynamodb", "UpdateItem", on_status_table("park"), "InternalFailure"),
}
# Faults whose side effect was applied and its answer lost: the one repeat exactly once cannot avoid
# (docs/exactly-once.md); the repeat is byte-identical.
LOST_ANSWER = {"after put": "puts", "after publish": "publishes", "after park": "parked"}


def fault_matrix(world: World, samples: dict[str, dict], outcome: str, times: int = 1) -> list[dict[str, Any]]:
    """Every fault position of CnmResponse (and ParkResponse): the execution's outcome and every side effect,
    counted. Each position runs its own execution (no idempotency record shared)."""
    rows = []
    positions = [("none", None, False)]
    positions += [(f"{when} {name}", call, False) for name, call in CALLS.items() for when in ("before", "after")]
    positions += [(f"{when} {name}", call, True) for name, call in PARK_CALLS.items() for when in ("before", "after")]
    for i, (name, call, park_path) in enumerate(positions):
        faults = Faults()
        if park_path:
            faults.add("kinesis", "PutRecord", "before", fault="AccessDenied", times=10**6)
        if call is not None:
            service, operation, match, fault = call
            faults.add(service, operation, name.split()[0], match, fault=fault, times=times)
        before = world.counts()
        execution = {"id": f"arn:exec:{outcome}:{times}:{i}"}
        result = run_workflow_tail(message_for(samples, outcome), execution)
        after = world.counts()
        for rule in faults.rules:  # stop firing before the next position
            rule.times = rule.fired
        rerun = None
        if "ParkResponse" not in result["path"]:  # CnmResponse invoked again for the same execution (a duplicate
            # invocation; after ParkResponse ran, Step Functions never invokes CnmResponse again)
            run_task({}, {"message": message_for(samples, outcome), "execution": execution}, [])
            rerun = sum(world.counts().values()) - sum(after.values())
        rows.append(
            {
                "position": f"{name} (park path)" if park_path else name,
                "status": result["status"],
                **{k: after[k] - before[k] for k in after},
                "rerun": rerun,
                "attempts": len(result["attempts"]),
                "fired": len(faults.log),
            }
        )
    return rows


def print_matrix(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    print()
    print(" | ".join(f"{c:42}" if c == "position" else f"{c:>9}" for c in cols))
    for row in rows:
        print(" | ".join(f"{row[c]!s:42}" if c == "position" else f"{row[c]!s:>9}" for c in cols))


def expected(position: str, outcome: str, times: int) -> dict[str, Any]:
    """What each position must give: one answer per destination, nothing parked that was delivered, the
    execution's outcome its response's. Exceptions, each named in docs/exactly-once.md: an answer lost after
    the service applied the call is repeated (byte-identical); a put or publish failing past its Retry is
    not delivered (the put: parked; the publish after the stream has it: logged, not parked)."""
    status = "SUCCEEDED" if outcome == "SUCCESS" else "FAILED"
    repeats = 1 + (3 if times > 3 else times)  # the first attempt and the state's 3 TransientError retries
    if position.endswith("(park path)"):  # the put refused for good: never delivered, parked once, FAILED
        parked = {"after park (park path)": repeats, "before park (park path)": 0 if times > 3 else 1}
        return {"status": "FAILED", "puts": 0, "publishes": 0, "parked": parked.get(position, 1), "rerun": None}
    # a redelivered invocation repeats nothing, unless the success write stayed down past the late writes:
    # the window (its in-progress item has expired: every attempt here has no time left)
    window = times > 3 and position in ("before put save_success", "before publish save_success")
    row = {"status": status, "puts": 1, "publishes": 1, "parked": 0, "rerun": 1 if window else 0}
    if position == "after put":
        row["puts"] = min(repeats, 4)
    if position == "after publish":
        row["publishes"] = min(repeats, 4)
    if times > 3 and position in ("before put", "after put"):  # never known delivered: parked, FAILED
        row.update(status="FAILED", publishes=0, parked=1, puts=0 if position == "before put" else 4)
    if times > 3 and position == "before publish":  # the stream has it: not parked, the outcome kept
        row["publishes"] = 0
    if times > 3 and position in ("before put", "after put", "before publish", "after publish"):
        row["rerun"] = None  # ParkResponse ran: CnmResponse is not invoked again
    return row


@pytest.mark.parametrize("times", [1, 4])
@pytest.mark.parametrize("outcome", ["SUCCESS", "FAILURE"])
def test_every_fault_position_answers_once_and_never_parks_a_delivered_response(world, samples, outcome, times):
    """Each position fails ``times`` times in a row (4: past botocore's retries, the late success write's and
    CnmResponse's TransientError retries; not past the IdempotencyStoreError Retry)."""
    rows = fault_matrix(world, samples, outcome, times)
    print_matrix(rows)
    for row in rows:
        assert row["fired"] >= (0 if row["position"] == "none" else 1), row  # the fault did hit
    got = {r["position"]: {k: r[k] for k in ("status", "puts", "publishes", "parked", "rerun")} for r in rows}
    assert got == {r["position"]: expected(r["position"], outcome, times) for r in rows}


def test_a_repeated_put_is_byte_identical(world, samples):
    """The put's answer lost (applied, then a 500): the retry puts again, the same bytes under the same key."""
    faults = Faults()
    faults.add("kinesis", "PutRecord", "after", fault="InternalFailure")
    result = run_workflow_tail(message_for(samples, "SUCCESS"), {"id": "arn:exec:lost-put"})
    assert result["status"] == "SUCCEEDED" and result["attempts"] == ["TransientError", "ok"], result
    first, again = world.stream_records()
    assert first == again  # data bytes and partition key
    assert len(world.publishes()) == 1


def test_a_crash_after_the_put_repeats_it_identically_after_the_in_progress_expiry(world, samples, monkeypatch):
    """The window of docs/exactly-once.md: the put happened, the invocation died before its success write;
    the retry after the in-progress expiry puts again, byte for byte the same record."""
    from handlers import cnm_response

    class Crash(BaseException):
        """The invocation dies (timeout, out of memory): nothing of ours or Powertools' catches it."""

    def crash_after_put(http_response, **_):
        raise Crash

    kinesis = aws.client("kinesis")
    kinesis.meta.events.register("after-call.kinesis.PutRecord", crash_after_put, unique_id="crash")
    event = {"message": message_for(samples, "SUCCESS"), "execution": {"id": "arn:exec:crash-after-put"}}
    with pytest.raises(Crash):
        cnm_response.handler(event, Context(remaining_ms=CRASHED_REMAINING_MS))
    crashed_until = time.time() + CRASHED_REMAINING_MS / 1000
    kinesis.meta.events.unregister("after-call.kinesis.PutRecord", unique_id="crash")
    from cnm_ingest.errors import IdempotencyStoreError

    with pytest.raises(IdempotencyStoreError):  # still in progress: the crashed invocation's time is not up
        cnm_response.handler(event, Context())
    time.sleep(max(0.0, crashed_until - time.time()) + 0.1)  # the crashed invocation's remaining time ran out
    cnm_response.handler(event, Context())
    first, again = world.stream_records()
    assert first == again
    assert len(world.publishes()) == 1 and world.parked() == []


def test_a_crash_after_save_inprogress_then_a_retry_after_expiry_puts_once(world, samples):
    """Context registered: the crashed attempt's in-progress item expires with its invocation, not after days."""
    from handlers import cnm_response

    from cnm_ingest.errors import IdempotencyStoreError

    class Crash(BaseException):
        pass

    def crash_before_put(**_):
        raise Crash

    kinesis = aws.client("kinesis")
    kinesis.meta.events.register("before-call.kinesis.PutRecord", crash_before_put, unique_id="crash")
    event = {"message": message_for(samples, "SUCCESS"), "execution": {"id": "arn:exec:crash-before-put"}}
    with pytest.raises(Crash):
        cnm_response.handler(event, Context(remaining_ms=CRASHED_REMAINING_MS))
    crashed_until = time.time() + CRASHED_REMAINING_MS / 1000
    kinesis.meta.events.unregister("before-call.kinesis.PutRecord", unique_id="crash")
    item = next(
        i
        for i in aws.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
        if i["id"]["S"].startswith("cnm-response.put#")
    )
    assert item["status"]["S"] == "INPROGRESS"
    expiry_ms, ttl = int(item["in_progress_expiration"]["N"]), int(item["expiration"]["N"])
    # the in-progress item expires with the invocation's time, not with the record's TTL
    assert expiry_ms <= (time.time() + CRASHED_REMAINING_MS / 1000 + 1) * 1000 < ttl * 1000
    with pytest.raises(IdempotencyStoreError):
        cnm_response.handler(event, Context())
    time.sleep(max(0.0, crashed_until - time.time()) + 0.1)
    cnm_response.handler(event, Context())
    assert len(world.stream_records()) == 1 and len(world.publishes()) == 1


def test_a_response_delivered_somewhere_is_not_parked_and_success_stays_success(world, samples):
    """The put succeeded, the topic refuses the publish for good: ParkResponse parks nothing and the
    execution keeps its SUCCESS (a SUCCESS is never followed by a FAILURE)."""
    faults = Faults()
    faults.add("sns", "Publish", "before", fault="AccessDenied", times=10**6)
    result = run_workflow_tail(message_for(samples, "SUCCESS"), {"id": "arn:exec:topic-denied"})
    assert result["path"] == ["CnmResponse", "ParkResponse"], result
    assert result["status"] == "SUCCEEDED", result
    assert world.counts() == {"puts": 1, "publishes": 0, "parked": 0}
    assert "response_parked" not in result["output"]
