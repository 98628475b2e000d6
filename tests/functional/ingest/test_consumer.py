"""Message consumer + fallback consumer on the applied stack (examples/complete): poison pills,
redelivery, faults. Each handler runs in-process under its deployed function's environment; the
records are put on the applied notification stream and delivered as the mapping would.

Every fault-injection test counts records in and out, duplicates not collapsed:
records in = executions started + DLQ entries (+ batch item failures still pending).
"""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError

from cnm_ingest import aws, dlq
from tests.events import sns_event
from tests.functional.ingest.conftest import SWOT, swot_cnm


def run_fallback(world) -> int:
    """Deliver everything SNS delivered to the fallback consumer's subscription to it; returns how many."""
    events = world.fallback_events()
    for ev in events:
        world.invoke("fallback_consumer", ev)
    return len(events)


def payload_of(env) -> bytes:
    return dlq.records_from_dlq_message(env)[0].payload


def client_error(code: str, status: int = 400, op: str = "StartExecution") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, op)


def patch_method(faults, service: str, method: str, fail_when, error: Exception):
    """Make ``aws.client(service).<method>`` (the handlers' cached client) raise ``error`` for calls
    where ``fail_when(kwargs)``."""
    client = aws.client(service)
    original = getattr(client, method)
    calls = {"failed": 0}

    def wrapper(**kwargs):
        if fail_when(kwargs):
            calls["failed"] += 1
            raise error
        return original(**kwargs)

    faults.setattr(client, method, wrapper)
    return calls


@pytest.fixture
def faults():
    """A monkeypatch of its own, so undoing the faults leaves the world's environment alone."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def envelope_of(event: dict, index: int, reason: str = "test", error_type: str = "Test") -> dict:
    """The DLQ envelope the message consumer would write for the event's ``index``-th record."""
    record = event["Records"][index]
    return dlq.envelope(
        "message_consumer",
        reason,
        error_type,
        {
            "data": record["kinesis"]["data"],
            "sequenceNumber": record["kinesis"]["sequenceNumber"],
            "partitionKey": record["kinesis"]["partitionKey"],
            "shardId": record["eventID"].split(":")[0],
            "streamArn": record["eventSourceARN"],
            "approximateArrivalTimestamp": record["kinesis"]["approximateArrivalTimestamp"],
        },
    )


@pytest.fixture
def batch(notifications):
    good = [swot_cnm(f"granule-{i}") for i in range(3)]
    big = swot_cnm("bad-size")
    big["product"]["files"][0]["size"] = "big"
    coll = swot_cnm("bad-collection", collection=5)
    payloads = [
        json.dumps(good[0]).encode(),
        json.dumps(big).encode(),
        json.dumps(good[1]).encode(),
        json.dumps(coll).encode(),
        b"\xff\xfenot json at all",
        json.dumps(good[2]).encode(),
    ]
    return payloads, notifications.put(payloads)


def seqs(event: dict) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]


def test_poison_pills_are_parked_good_records_start_once(world, batch):
    payloads, event = batch
    stream, numbers = world.stream("notifications"), seqs(event)

    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    # bad records are parked at once: nothing for the fallback consumer to retry
    assert run_fallback(world) == 0

    executions = world.executions()
    envelopes = world.dlq_envelopes()
    assert len(executions) == 3
    assert len(payloads) == len(executions) + len(envelopes)

    by_seq = {e["record"]["sequenceNumber"]: e for e in envelopes}
    assert len(by_seq) == len(envelopes)  # one entry per bad record, no duplicates
    assert set(by_seq) == {numbers[1], numbers[3], numbers[4]}
    for seq, env in by_seq.items():
        i = numbers.index(seq)
        assert env["source"] == "message_consumer"
        assert payload_of(env) == payloads[i]
        assert env["record"]["partitionKey"] == f"pk{i}"
        assert env["record"]["streamArn"] == stream
    assert "size" in by_seq[numbers[1]]["reason"] and by_seq[numbers[1]]["error_type"] == "CnmValidationError"
    assert "collection" in by_seq[numbers[3]]["reason"]
    assert by_seq[numbers[4]]["error_type"] == "DecodeError"

    # Only the addressable bad record is answered (collection 5 / not JSON cannot be).
    responses = world.responses()
    assert [(r["identifier"], r["response"]["status"], r["response"]["errorCode"]) for r in responses] == [
        ("bad-size", "FAILURE", "VALIDATION_ERROR")
    ]
    assert "size" in responses[0]["response"]["errorMessage"]
    assert not responses[0]["response"]["errorMessage"].startswith("CnmValidationError")  # the message alone (PO.DAAC)

    inputs = world.execution_inputs()
    assert sorted(i["meta"]["cnm"]["identifier"] for i in inputs) == ["granule-0", "granule-1", "granule-2"]
    one = inputs[0]
    assert one["meta"]["collection"]["name"] == SWOT["collection"] and one["meta"]["provider"]["id"] == SWOT["provider"]
    assert one["meta"]["stack"] == world.environment("message_consumer")["STACK"]
    assert one["meta"]["rule"]["name"] == SWOT["rule"]
    assert one["cumulus_meta"]["source"]["stream_arn"] == stream


def test_redelivery_starts_no_new_execution(world, batch):
    _payloads, event = batch
    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    names = sorted(e["name"] for e in world.executions())
    assert len(names) == 3
    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    assert sorted(e["name"] for e in world.executions()) == names
    # and the fallback consumer, seeing a good record again, recognises it too
    world.invoke("fallback_consumer", sns_event(json.dumps(envelope_of(event, 0))))
    assert sorted(e["name"] for e in world.executions()) == names


def test_transient_error_is_a_batch_item_failure_then_redelivery_succeeds(
    world, notifications, faults, no_start_backoff
):
    """Throttled StartExecution is tried START_MAX_ATTEMPTS times (the deployed value), then given back."""
    attempts = int(world.environment("message_consumer")["START_MAX_ATTEMPTS"])
    payloads = [json.dumps(swot_cnm(f"granule-{i}")).encode() for i in range(4)]
    event = notifications.put(payloads)
    numbers = seqs(event)
    calls = patch_method(
        faults,
        "stepfunctions",
        "start_execution",
        lambda kw: kw["name"].startswith("granule-2-"),
        client_error("ThrottlingException"),
    )

    result = world.invoke("message_consumer", event)
    assert result == {"batchItemFailures": [{"itemIdentifier": numbers[2]}]}
    assert calls["failed"] == attempts  # every attempt the deployed function allows, then given back
    assert len(world.executions()) == 3
    assert world.fallback_events() == [] and world.dlq_envelopes() == []
    assert len(payloads) == len(world.executions()) + len(result["batchItemFailures"])

    faults.undo()
    # The ESM retries from the failed record on: the third and fourth (the fourth already started).
    retry = {**event, "Records": event["Records"][2:]}
    assert world.invoke("message_consumer", retry) == {"batchItemFailures": []}
    assert len(world.executions()) == 4
    assert len(payloads) == len(world.executions()) + len(world.dlq_envelopes())


def test_server_error_is_transient(world, notifications, faults, no_start_backoff):
    event = notifications.put([swot_cnm("granule-0")])
    patch_method(faults, "stepfunctions", "start_execution", lambda kw: True, client_error("InternalFailure", 500))
    result = world.invoke("message_consumer", event)
    assert result == {"batchItemFailures": [{"itemIdentifier": seqs(event)[0]}]}
    assert world.fallback_events() == []
    assert len(event["Records"]) == len(world.executions()) + len(result["batchItemFailures"])


def test_fallback_consumer_raises_on_transient_errors_so_lambda_retries(world, notifications, faults):
    event = notifications.put([swot_cnm("granule-9")])
    sns = sns_event(json.dumps(envelope_of(event, 0, "KeyError: earlier", "KeyError")))
    patch_method(faults, "stepfunctions", "start_execution", lambda kw: True, client_error("ThrottlingException"))
    with pytest.raises(ClientError):
        world.invoke("fallback_consumer", sns)
    assert world.dlq_envelopes() == [] and world.executions() == []
    faults.undo()
    world.invoke("fallback_consumer", sns)  # Lambda's async retry
    assert len(world.executions()) == 1 and world.dlq_envelopes() == []


def test_park_failure_keeps_the_record_in_the_stream(world, notifications, faults):
    event = notifications.put([swot_cnm("granule-0"), swot_cnm("bad", collection=5)])
    patch_method(
        faults, "sqs", "send_message_batch", lambda kw: True, client_error("AccessDenied", 403, "SendMessageBatch")
    )

    result = world.invoke("message_consumer", event)
    assert result == {"batchItemFailures": [{"itemIdentifier": seqs(event)[1]}]}
    assert len(world.executions()) == 1
    assert len(event["Records"]) == len(world.executions()) + len(result["batchItemFailures"])

    faults.undo()
    assert world.invoke("message_consumer", {**event, "Records": event["Records"][1:]}) == {"batchItemFailures": []}
    assert run_fallback(world) == 0
    assert len(world.dlq_envelopes()) == 1
    assert len(world.executions()) == 1


def test_unexpected_error_is_parked_then_retried_by_the_fallback_consumer(world, notifications, faults):
    from cnm_ingest.consumer import consume

    original = consume.build_workflow_input

    def broken(cnm, **kw):
        if cnm["identifier"] == "granule-1":
            raise KeyError("surprise")
        return original(cnm, **kw)

    faults.setattr(consume, "build_workflow_input", broken)
    event = notifications.put([swot_cnm(f"granule-{i}") for i in range(3)])
    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    assert len(world.executions()) == 2
    events = world.fallback_events()  # what SNS delivered to the fallback consumer's subscription
    assert len(events) == 1
    env = json.loads(events[0]["Records"][0]["Sns"]["Message"])
    assert env["error_type"] == "KeyError" and "surprise" in env["reason"]
    assert world.responses() == []  # not the record's fault: no FAILURE response

    # Still broken: the fallback consumer raises so Lambda retries it (and later dead-letters it).
    with pytest.raises(KeyError):
        world.invoke("fallback_consumer", events[0])
    assert world.dlq_envelopes() == []

    faults.undo()
    world.invoke("fallback_consumer", events[0])
    assert len(event["Records"]) == len(world.executions()) + len(world.dlq_envelopes())
    assert len(world.executions()) == 3


def test_oversize_bad_record_goes_through_s3(world, notifications):
    cnm = swot_cnm("huge", collection=5)
    cnm["padding"] = "x" * (300 * 1024)
    payload = json.dumps(cnm).encode()
    event = notifications.put([payload])

    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    assert world.fallback_events() == []
    (env,) = world.dlq_envelopes()
    bucket = world.environment("message_consumer")["PAYLOAD_BUCKET"]
    assert env["record"]["data"] is None and env["payload_s3"]["bucket"] == bucket
    assert payload_of(env) == payload  # read back from the deployed payload bucket
    assert len(event["Records"]) == len(world.executions()) + 1
    assert base64.b64decode(event["Records"][0]["kinesis"]["data"]) == payload
