"""Hydrate: an ESM on-failure record -> the failed batch's records, read back from the applied notification
stream (examples/complete), in the applied DLQ. The handler runs in-process under its deployed environment."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from cnm_ingest import aws, dlq
from cnm_ingest.consumer import hydrate
from tests.events import kinesis_failure_record, sns_event

SHARD = "shardId-000000000000"  # where ExplicitHashKey 0 puts a record


@pytest.fixture
def stream(world):
    """The applied notification stream: what the consumer's mapping reads, and hydrate reads back."""
    return world.stream("notifications")


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(hydrate, "sleep", slept.append)
    return slept


def put(stream_arn: str, payloads: list[bytes]) -> list[str]:
    k = aws.client("kinesis")
    puts = [
        k.put_record(StreamARN=stream_arn, Data=p, PartitionKey=f"pk-{i}", ExplicitHashKey="0")
        for i, p in enumerate(payloads)
    ]
    assert {p["ShardId"] for p in puts} == {SHARD}
    return [p["SequenceNumber"] for p in puts]


def failure_record(stream_arn: str, start: str, end: str, size: int, shard: str = SHARD) -> dict:
    return kinesis_failure_record(stream_arn, start, end, size, shard_id=shard)


def hydrate_once(world, failure: dict) -> dict:
    """The failure record as SNS delivers it to hydrate from the applied failed-batch topic."""
    return world.invoke("hydrate", sns_event(json.dumps(failure), topic_arn=world.topic("failed-batch")))


def parked(world) -> list[dlq.ParkedRecord]:
    out = []
    for body in world.dlq_bodies():
        out.extend(dlq.records_from_dlq_message(body))
    return out


def payloads_by_seq(records: list[dlq.ParkedRecord]) -> dict[str, bytes]:
    return {r.envelope["record"]["sequenceNumber"]: r.payload for r in records}


@pytest.mark.parametrize("limit", [None, "2"])
def test_range_is_read_back_without_neighbours(world, stream, limit):
    """As deployed, and with GET_RECORDS_LIMIT=2 (pages of two: the test is about that variable)."""
    if limit:
        world.override("hydrate", GET_RECORDS_LIMIT=limit)
    before = put(stream, [b"before-%d" % i for i in range(3)])
    payloads = [json.dumps({"n": i}).encode() + b"\x00\xff" for i in range(7)]
    seqs = put(stream, payloads)
    after = put(stream, [b"after-%d" % i for i in range(3)])

    failure = failure_record(stream, seqs[0], seqs[-1], len(seqs))
    assert hydrate_once(world, failure)["dlq_messages"] == 7

    got = parked(world)
    assert len(got) == len(seqs)  # records in the failed batch = DLQ entries
    assert payloads_by_seq(got) == dict(zip(seqs, payloads, strict=True))
    assert not set(payloads_by_seq(got)) & set(before + after)
    env = got[0].envelope
    assert env["source"] == "hydrate" and env["error_type"] == "RetryAttemptsExhausted"
    assert env["batch"] == failure["KinesisBatchInfo"]
    assert env["failure_context"]["requestContext"]["requestId"] == "req-1"
    assert env["record"]["shardId"] == SHARD and env["record"]["streamArn"] == stream
    assert {r.envelope["record"]["partitionKey"] for r in got} == {f"pk-{i}" for i in range(7)}


def test_small_pages_take_several_get_records_calls(world, stream):
    world.use("hydrate")
    seqs = put(stream, [b"x%d" % i for i in range(9)])
    read = hydrate.read_range(stream, SHARD, seqs[2], seqs[7], 6, limit=2, sleep=lambda s: None)
    assert read.complete and read.calls >= 3
    assert [r["sequenceNumber"] for r in read.records] == seqs[2:8]


def test_call_bound_parks_what_was_read_and_says_what_was_not(world, stream):
    """About MAX_GET_RECORDS_CALLS (and GET_RECORDS_LIMIT): both overridden."""
    world.override("hydrate", GET_RECORDS_LIMIT="1", MAX_GET_RECORDS_CALLS="2")
    seqs = put(stream, [b"y%d" % i for i in range(5)])
    hydrate_once(world, failure_record(stream, seqs[0], seqs[-1], 5))
    got = parked(world)
    assert [r.payload for r in got if r.payload is not None] == [b"y0", b"y1"]
    (gap,) = [r for r in got if r.payload is None]
    assert "only 2 of 5" in gap.envelope["reason"] and "MAX_GET_RECORDS_CALLS" in gap.envelope["reason"]


def test_deleted_stream_parks_the_batch_info(world, stream):
    seqs = put(stream, [b"a", b"b"])
    world.client("kinesis").delete_stream(StreamARN=stream, EnforceConsumerDeletion=True)
    failure = failure_record(stream, seqs[0], seqs[-1], 2)
    assert hydrate_once(world, failure)["dlq_messages"] == 1
    (only,) = parked(world)
    assert only.payload is None and only.envelope["record"] is None
    assert only.envelope["batch"] == failure["KinesisBatchInfo"]
    assert "only 0 of 2" in only.envelope["reason"] and "ResourceNotFound" in only.envelope["reason"]


def test_missing_shard_parks_the_batch_info(world, stream):
    seqs = put(stream, [b"a"])
    hydrate_once(world, failure_record(stream, seqs[0], seqs[0], 1, shard="shardId-000000000042"))
    (only,) = parked(world)
    assert only.envelope["record"] is None and only.envelope["batch"]["shardId"] == "shardId-000000000042"
    assert "could be read back" in only.envelope["reason"]


def test_records_gone_from_the_range_parks_the_batch_info(world, stream):
    seqs = put(stream, [b"a", b"b"])
    # A range past the last record: nothing there any more (as after expiry).
    start = str(int(seqs[-1]) + 1)
    end = str(int(seqs[-1]) + 1000)
    hydrate_once(world, failure_record(stream, start, end, 3))
    (only,) = parked(world)
    assert only.envelope["record"] is None and "only 0 of 3" in only.envelope["reason"]


def test_throttling_and_expired_iterator_are_retried(world, stream, no_sleep, monkeypatch):
    world.use("hydrate")
    seqs = put(stream, [b"r%d" % i for i in range(6)])
    k = aws.client("kinesis")
    original_get, original_iter = k.get_records, k.get_shard_iterator
    errors = ["ProvisionedThroughputExceededException", None, "ExpiredIteratorException"]
    iterator_types = []

    def get_records(**kw):
        code = errors.pop(0) if errors else None
        if code:
            raise ClientError(
                {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "GetRecords"
            )
        return original_get(**kw)

    def get_shard_iterator(**kw):
        iterator_types.append((kw["ShardIteratorType"], kw["StartingSequenceNumber"]))
        return original_iter(**kw)

    monkeypatch.setattr(k, "get_records", get_records)
    monkeypatch.setattr(k, "get_shard_iterator", get_shard_iterator)
    read = hydrate.read_range(stream, SHARD, seqs[0], seqs[-1], 6, limit=2, sleep=no_sleep.append)
    assert read.complete and [r["sequenceNumber"] for r in read.records] == seqs
    assert len(no_sleep) == 2
    # after the expired iterator, reading resumed after the last record seen
    assert iterator_types == [("AT_SEQUENCE_NUMBER", seqs[0]), ("AFTER_SEQUENCE_NUMBER", seqs[1])]


def test_redelivered_failure_is_parked_once_with_idempotency(world, stream):
    """The deployed hydrate's idempotency table (IDEMPOTENCY_TABLE as Terraform set it)."""
    assert world.environment("hydrate")["IDEMPOTENCY_TABLE"] in world.stack.tables
    seqs = put(stream, [b"i0", b"i1", b"i2"])
    failure = failure_record(stream, seqs[0], seqs[-1], 3)
    hydrate_once(world, failure)
    failure["requestContext"]["requestId"] = "req-2"  # same batch, a new notification
    hydrate_once(world, failure)
    assert sorted(r.payload for r in parked(world)) == [b"i0", b"i1", b"i2"]
    # another failed batch holding an already parked record does not park it again
    hydrate_once(world, failure_record(stream, seqs[1], seqs[1], 1))
    assert parked(world) == []


def test_dlq_failed_entries_are_retried_then_raise(world, monkeypatch):
    world.use("hydrate")
    sqs = aws.client("sqs")
    original = sqs.send_message_batch
    state = {"fail_rounds": 1}

    def flaky(**kw):
        if state["fail_rounds"]:
            state["fail_rounds"] -= 1
            first = kw["Entries"][0]["Id"]
            rest = kw["Entries"][1:]
            result = original(QueueUrl=kw["QueueUrl"], Entries=rest) if rest else {"Successful": []}
            result.setdefault("Failed", []).append({"Id": first, "SenderFault": False, "Code": "InternalError"})
            return result
        return original(**kw)

    monkeypatch.setattr(sqs, "send_message_batch", flaky)
    envs = [dlq.envelope("hydrate", "r", "T", {"data": "eA==", "sequenceNumber": str(i)}) for i in range(12)]
    dlq_url = world.environment("hydrate")["DLQ_URL"]
    assert dlq_url == world.queue("kinesisFailure")
    assert dlq.send(envs, dlq_url, sleep=lambda s: None) == 12
    assert sorted(int(e["record"]["sequenceNumber"]) for e in world.dlq_envelopes()) == list(range(12))

    state["fail_rounds"] = 100
    with pytest.raises(RuntimeError, match="did not accept"):
        dlq.send(envs[:1], dlq_url, sleep=lambda s: None)
