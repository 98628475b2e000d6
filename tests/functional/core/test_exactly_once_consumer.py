"""Exactly once when the idempotency store fails (issue 20): the consumer's answer, park and fallback hand-over,
and hydrate, on moto, with the consumer's idempotency table failing at chosen points.

The event source is played as it behaves: a record whose processing raises a retryable error (a batch item
failure; a raise for SNS's async invokes) is delivered again, up to :data:`DELIVERIES` times. Every attempt's
Lambda context has no time left, so an in-progress item of a failed attempt has expired at the next delivery
(the worst case for repeats). Every side effect is counted where it lands (response stream records, DLQ
messages, fallback topic messages), duplicates not collapsed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cnm_ingest import aws, idempotency
from cnm_ingest.consumer import consume
from tests.events import kinesis_failure_record
from tests.functional.core.idempotency_faults import Faults, idempotency_key
from tests.functional.core.test_exactly_once import IDEMPOTENCY_TABLE, Context, World

DELIVERIES = 6


class UnreadableRules:
    """A configuration store whose rules cannot be read: an unexpected error, so the record goes to the fallback."""

    def rule_index(self) -> Any:
        raise RuntimeError("rules table unreadable")


@pytest.fixture
def world(aws, monkeypatch):  # ``aws``: the moto fixture (the module is reached through aws_client)
    monkeypatch.setattr(idempotency, "sleep", lambda _s: None)
    w = World(monkeypatch)
    sns, sqs = aws_client("sns"), aws_client("sqs")
    w.fallback_topic = sns.create_topic(Name="eo-fallback")["TopicArn"]
    w.fallback_queue = sqs.create_queue(QueueName="eo-fallback-subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=w.fallback_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=w.fallback_topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return w


def aws_client(service: str) -> Any:
    return aws.client(service)


def put_notifications(world: World, payloads: list[bytes]) -> list[consume.SourceRecord]:
    """Put ``payloads`` on a notification stream; the records as the consumer sees them."""
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="eo-notifications", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="eo-notifications")["StreamDescription"]["StreamARN"]
    out = []
    for i, data in enumerate(payloads):
        put = kinesis.put_record(StreamARN=arn, Data=data, PartitionKey=f"pk{i}")
        out.append(
            consume.SourceRecord(
                data=base64.b64encode(data).decode(),
                sequenceNumber=put["SequenceNumber"],
                partitionKey=f"pk{i}",
                shardId=put["ShardId"],
                streamArn=arn,
            )
        )
    return out


def bad_cnm(samples: dict[str, dict]) -> bytes:
    """Addressable (identifier, collection) but not a CNM: answered FAILURE and parked."""
    cnm = dict(samples["cumulus_sns_v1.0_notification.json"])
    cnm["product"] = "not an object"
    return json.dumps(cnm).encode()


def good_cnm(samples: dict[str, dict]) -> bytes:
    return json.dumps(samples["cumulus_sns_v1.0_notification.json"]).encode()


def make_run(world: World, store: Any = None, remaining_ms: int = 0) -> consume.Run:
    return consume.Run(
        store=store,
        settings=consume.Settings(stack="eo", buckets={}),
        once=idempotency.Once(IDEMPOTENCY_TABLE, Context(remaining_ms)),
        source="message_consumer",
        queue_url=world.dlq_url,
        response_stream_arn=world.stream_arn,
        fallback_topic_arn=world.fallback_topic,
    )


def deliver(record: consume.SourceRecord, world: World, store: Any = None, remaining_ms: int = 0) -> list[str]:
    """Deliver ``record`` until it is consumed (a batch item failure is delivered again); the outcomes.
    ``remaining_ms``: each delivery's invocation time left (0: an in-progress item expires at once)."""
    seen = []
    for _ in range(DELIVERIES):
        try:
            outcome = consume.consume(record, make_run(world, store, remaining_ms))
        except Exception as exc:
            assert consume.is_retryable(exc), exc  # only a retryable error is a batch item failure
            seen.append(type(exc).__name__)
            continue
        seen.append(outcome.status)
        return seen
    return seen


def on_kind(kind: str):
    return lambda p: p.get("TableName") == IDEMPOTENCY_TABLE and idempotency_key(p).startswith(f"{kind}#")


CONSUMER_CALLS = {
    "answer-body save_inprogress": ("dynamodb", "PutItem", on_kind(idempotency.ANSWER_BODY), "Throttling"),
    "answer-body save_success": ("dynamodb", "UpdateItem", on_kind(idempotency.ANSWER_BODY), "InternalFailure"),
    "answer save_inprogress": ("dynamodb", "PutItem", on_kind(idempotency.ANSWER), "Throttling"),
    "answer put": ("kinesis", "PutRecord", lambda p: True, "InternalFailure"),
    "answer save_success": ("dynamodb", "UpdateItem", on_kind(idempotency.ANSWER), "InternalFailure"),
    "park save_inprogress": ("dynamodb", "PutItem", on_kind(idempotency.PARK), "Throttling"),
    "park": ("sqs", "SendMessageBatch", lambda p: True, "InternalFailure"),
    "park save_success": ("dynamodb", "UpdateItem", on_kind(idempotency.PARK), "InternalFailure"),
}
FALLBACK_CALLS = {
    "fallback save_inprogress": ("dynamodb", "PutItem", on_kind(idempotency.FALLBACK), "Throttling"),
    "fallback publish": ("sns", "Publish", lambda p: True, "InternalFailure"),
    "fallback save_success": ("dynamodb", "UpdateItem", on_kind(idempotency.FALLBACK), "InternalFailure"),
}


def fallback_messages(world: World) -> int:
    return len(world._drain(world.fallback_queue, []))


@pytest.mark.parametrize("times", [1, 4])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("position", [*CONSUMER_CALLS, *FALLBACK_CALLS])
def test_the_consumer_answers_parks_and_hands_over_once(world, samples, position, when, times):
    fallback = position in FALLBACK_CALLS
    service, operation, match, fault = {**CONSUMER_CALLS, **FALLBACK_CALLS}[position]
    [record] = put_notifications(world, [good_cnm(samples) if fallback else bad_cnm(samples)])
    faults = Faults()
    faults.add(service, operation, when, match, fault=fault, times=times)
    outcomes = deliver(record, world, UnreadableRules() if fallback else None)
    assert faults.log, "the fault did not hit"
    assert outcomes[-1] == ("fallback" if fallback else "parked"), outcomes  # consumed in the end
    assert all(o in ("IdempotencyStoreError", "TransientError", "ClientError") for o in outcomes[:-1]), outcomes
    items = aws.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    if times == 1:  # the success records are written (late, after a failed success write), so ...
        assert {i["status"]["S"] for i in items} == {"COMPLETED"}, items
        deliver(record, world, UnreadableRules() if fallback else None)  # ... a redelivery repeats nothing
    answers, parked, handed = world.stream_records(), world.parked(), fallback_messages(world)
    # the side effect's own answer lost after it applied: delivered again, identical (docs/exactly-once.md)
    lost = when == "after" and position in ("answer put", "park", "fallback publish")
    repeats = 1 + min(times, DELIVERIES - 1) if lost else 1
    if fallback:
        assert (len(answers), len(parked), handed) == (0, 0, repeats), outcomes
        return
    assert len(answers) == (repeats if position == "answer put" else 1), outcomes
    assert len(parked) == (repeats if position == "park" else 1), outcomes
    assert handed == 0
    assert len(set(answers)) == 1, answers  # every repeat byte-identical, the same partition key
    assert len(set(parked)) == 1, parked
    response = json.loads(answers[0][0])
    assert response["response"]["status"] == "FAILURE" and answers[0][1] == response["identifier"]


def test_a_lost_answer_is_repeated_byte_for_byte(world, samples):
    """The FAILURE put applied, its answer lost: the redelivery puts the same bytes under the same key."""
    [record] = put_notifications(world, [bad_cnm(samples)])
    Faults().add("kinesis", "PutRecord", "after", fault="InternalFailure")
    assert deliver(record, world) == ["ClientError", "parked"]
    first, again = world.stream_records()
    assert first == again
    assert len(world.parked()) == 1


def test_outside_lambda_an_in_progress_item_expires_with_the_operator_lease(world, samples):
    """The CLI's replay and reconcile --fix have no Lambda context: a command killed after its in-progress write
    blocks the record for the lease (OPERATOR_LEASE_SECONDS), not for the record's TTL (8 days)."""
    import time

    class Killed(BaseException):
        pass

    def killed(**_):
        raise Killed

    [record] = put_notifications(world, [bad_cnm(samples)])
    sqs = aws.client("sqs")
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", killed, unique_id="killed")
    run = make_run(world)
    run.once = idempotency.Once(IDEMPOTENCY_TABLE)  # as cli/ builds it: no context
    written = time.time()
    with pytest.raises(Killed):
        consume.consume(record, run)
    sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", unique_id="killed")
    [park] = [
        i
        for i in aws.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
        if i["id"]["S"].startswith(f"{idempotency.PARK}#")
    ]
    assert park["status"]["S"] == "INPROGRESS"
    lease_ms = idempotency.OPERATOR_LEASE_SECONDS * 1000
    expiry_ms = int(park["in_progress_expiration"]["N"])
    assert (written * 1000 + lease_ms - 1000) <= expiry_ms <= (time.time() * 1000 + lease_ms + 1000)
    assert expiry_ms < int(park["expiration"]["N"]) * 1000 - 24 * 3600 * 1000  # days before the record's TTL
    assert world.parked() == []  # killed before the park: nothing sent


def test_the_consumer_registers_the_invocation_context(world, samples):
    """A crashed attempt's in-progress item expires with the invocation's remaining time, not the record's TTL."""
    import time

    class Crash(BaseException):
        pass

    def crash(**_):
        raise Crash

    [record] = put_notifications(world, [bad_cnm(samples)])
    sqs = aws.client("sqs")
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", crash, unique_id="crash")
    run = make_run(world)
    crashed_ms = 3000  # long enough that the next call still finds the item in progress on a loaded machine
    run.once = idempotency.Once(IDEMPOTENCY_TABLE, Context(remaining_ms=crashed_ms))
    with pytest.raises(Crash):
        consume.consume(record, run)
    crashed_until = time.time() + crashed_ms / 1000
    sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", unique_id="crash")
    items = aws.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    [park] = [i for i in items if i["id"]["S"].startswith(f"{idempotency.PARK}#")]
    assert park["status"]["S"] == "INPROGRESS"
    expiry_ms = int(park["in_progress_expiration"]["N"])
    assert expiry_ms <= (time.time() + crashed_ms / 1000 + 1) * 1000 < int(park["expiration"]["N"]) * 1000
    run.once = idempotency.Once(IDEMPOTENCY_TABLE, Context(remaining_ms=60_000))
    with pytest.raises(Exception) as raised:  # still in progress: delivered again later
        consume.consume(record, run)
    assert consume.is_retryable(raised.value)
    time.sleep(max(0.0, crashed_until - time.time()) + 0.1)  # the crashed invocation's time ran out
    assert consume.consume(record, make_run(world)).status == "parked"
    assert len(world.parked()) == 1 and len(world.stream_records()) == 1


# An invocation with a minute left: an in-progress item of it blocks every redelivery for that minute.
MINUTE_LEFT = 60_000


@pytest.mark.parametrize("kind", [idempotency.ANSWER_BODY, idempotency.ANSWER, idempotency.PARK, idempotency.FALLBACK])
def test_an_in_progress_write_whose_answer_was_lost_is_ours(world, samples, kind):
    """The in-progress PutItem applied, its answer lost, botocore sends it again and meets the item it wrote.

    The chaos soak at 1,000 records (seeds 2 and 3): Powertools called that item "already in progress", so every
    redelivery met it until the invocation's deadline, past the mapping's retries and hydrate's: the record was
    answered and never parked, or parked and never answered. The write is recognised as ours: the first delivery
    does the side effect, once, and a redelivery repeats nothing.
    """
    fallback = kind == idempotency.FALLBACK
    [record] = put_notifications(world, [good_cnm(samples) if fallback else bad_cnm(samples)])
    store = UnreadableRules() if fallback else None
    faults = Faults()
    lost = faults.add("dynamodb", "PutItem", "lost", on_kind(kind))
    assert deliver(record, world, store, MINUTE_LEFT) == ["fallback" if fallback else "parked"], faults.log
    assert lost.fired == 1, faults.log
    items = aws.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    assert {i["status"]["S"] for i in items} == {"COMPLETED"}, items
    assert deliver(record, world, store, MINUTE_LEFT) == ["fallback" if fallback else "parked"]  # redelivered
    answers, parked, handed = world.stream_records(), world.parked(), fallback_messages(world)
    assert (len(answers), len(parked), handed) == ((0, 0, 1) if fallback else (1, 1, 0))


def test_an_in_progress_write_of_another_attempt_still_blocks(world, samples):
    """Only the very item this call wrote is ours: another invocation's in-progress park (same record, its own
    deadline) is still "in progress" (retryable), and nothing is parked twice."""
    [record] = put_notifications(world, [bad_cnm(samples)])
    other = make_run(world, remaining_ms=MINUTE_LEFT)
    blocked = []

    def park_while_another_holds_it() -> None:
        with pytest.raises(Exception) as raised:
            consume.consume(record, make_run(world, remaining_ms=MINUTE_LEFT))
        blocked.append(consume.is_retryable(raised.value))

    other.once.run(idempotency.PARK, idempotency.record_key(record.as_dict()), park_while_another_holds_it)
    assert blocked == [True]
    assert len(world.parked()) == 0 and len(world.stream_records()) == 1


def hydrate_run(world: World, remaining_ms: int = 0) -> consume.Run:
    return consume.Run(
        store=None,
        settings=consume.Settings(stack="eo", buckets={}),
        once=idempotency.Once(IDEMPOTENCY_TABLE, Context(remaining_ms)),
        source="hydrate",
        queue_url=world.dlq_url,
    )


def test_hydrate_parks_once_when_the_answer_to_its_in_progress_write_is_lost(world, samples):
    from cnm_ingest.consumer import hydrate

    records = put_notifications(world, [bad_cnm(samples), bad_cnm(samples)])
    faults = Faults()
    lost = faults.add("dynamodb", "PutItem", "lost", on_kind(idempotency.PARK))
    failure = kinesis_failure_record(
        records[0].streamArn, records[0].sequenceNumber, records[-1].sequenceNumber, 2, shard_id=records[0].shardId
    )
    counts = hydrate.park_batch(failure, hydrate_run(world, MINUTE_LEFT), max_calls=10, limit=None)
    assert lost.fired == 1 and counts == {"parked": 2, "skipped": 0, "gap": 0}, (faults.log, counts)
    again = hydrate.park_batch(failure, hydrate_run(world, MINUTE_LEFT), max_calls=10, limit=None)
    assert again == {"parked": 0, "skipped": 2, "gap": 0}
    parked = world.parked()
    assert len(parked) == 2 and len(set(parked)) == 2, parked  # each record once


@pytest.mark.parametrize("position", ["park save_inprogress", "park save_success", "park"])
def test_hydrate_parks_each_record_once_when_the_store_fails(world, samples, position):
    from cnm_ingest.consumer import hydrate

    records = put_notifications(world, [bad_cnm(samples), bad_cnm(samples)])
    service, operation, match, fault = CONSUMER_CALLS[position]
    faults = Faults()
    faults.add(service, operation, "before", match, fault=fault, times=1)
    failure = kinesis_failure_record(
        records[0].streamArn, records[0].sequenceNumber, records[-1].sequenceNumber, 2, shard_id=records[0].shardId
    )
    run = hydrate_run(world)
    raised = []
    for _ in range(DELIVERIES):  # SNS's async invoke: a raise is retried
        try:
            counts = hydrate.park_batch(failure, run, max_calls=10, limit=None)
            break
        except Exception as exc:
            assert consume.is_retryable(exc), exc
            raised.append(type(exc).__name__)
    assert faults.log, "the fault did not hit"
    # before the park: a raise, retried; the success write after it: written late, nothing raised
    assert len(raised) == (0 if position == "park save_success" else 1), raised
    assert counts["gap"] == 0
    parked = world.parked()
    assert len(parked) == 2 and len(set(parked)) == 2, parked  # each record once
