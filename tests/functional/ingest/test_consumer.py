"""Message consumer + fallback consumer on real moto resources: poison pills, redelivery, faults.

Every fault-injection test counts records in and out:
records in = executions started + DLQ entries (+ batch item failures still pending).
"""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError
from handlers import fallback_consumer, message_consumer

from cnm_ingest import aws, dlq
from tests.events import kinesis_event, kinesis_record
from tests.functional.ingest.conftest import sample_cnm

STREAM = "arn:aws:kinesis:us-west-2:123456789012:stream/notifications"


def consume(event, ctx):
    return message_consumer.handler(event, ctx)


def run_fallback(pipeline, ctx) -> int:
    """Deliver everything the fallback topic received to the fallback consumer; returns how many."""
    events = pipeline.fallback_events()
    for ev in events:
        fallback_consumer.handler(ev, ctx)
    return len(events)


def payload_of(env) -> bytes:
    return dlq.records_from_dlq_message(env)[0].payload


def client_error(code: str, status: int = 400, op: str = "StartExecution") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, op)


def patch_method(faults, service: str, method: str, fail_when, error: Exception):
    """Make ``aws.client(service).<method>`` raise ``error`` for calls where ``fail_when(kwargs)``."""
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
    """A monkeypatch of its own, so undoing the faults leaves the pipeline's environment alone."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture
def batch():
    good = [sample_cnm(f"granule-{i}") for i in range(3)]
    big = sample_cnm("bad-size")
    big["product"]["files"][0]["size"] = "big"
    coll = sample_cnm("bad-collection", collection=5)
    payloads = [
        json.dumps(good[0]).encode(),
        json.dumps(big).encode(),
        json.dumps(good[1]).encode(),
        json.dumps(coll).encode(),
        b"\xff\xfenot json at all",
        json.dumps(good[2]).encode(),
    ]
    records = [
        kinesis_record(p, str(1000 + i), partition_key=f"pk{i}", stream_arn=STREAM) for i, p in enumerate(payloads)
    ]
    return payloads, kinesis_event(records)


def test_poison_pills_are_parked_good_records_start_once(pipeline, lambda_context, batch):
    pipeline.put_rule("modis")
    payloads, event = batch

    assert consume(event, lambda_context) == {"batchItemFailures": []}
    # bad records are parked at once: nothing for the fallback consumer to retry
    assert run_fallback(pipeline, lambda_context) == 0

    executions = pipeline.executions()
    envelopes = pipeline.dlq_envelopes()
    assert len(executions) == 3
    assert len(payloads) == len(executions) + len(envelopes)

    by_seq = {e["record"]["sequenceNumber"]: e for e in envelopes}
    assert len(by_seq) == len(envelopes)  # one entry per bad record, no duplicates
    assert set(by_seq) == {"1001", "1003", "1004"}
    for seq, env in by_seq.items():
        assert env["source"] == "message_consumer"
        assert payload_of(env) == payloads[int(seq) - 1000]
        assert env["record"]["partitionKey"] == f"pk{int(seq) - 1000}"
        assert env["record"]["streamArn"] == STREAM
    assert "size" in by_seq["1001"]["reason"] and by_seq["1001"]["error_type"] == "CnmValidationError"
    assert "collection" in by_seq["1003"]["reason"]
    assert by_seq["1004"]["error_type"] == "DecodeError"

    # Only the addressable bad record is answered (collection 5 / not JSON cannot be).
    responses = pipeline.responses()
    assert [(r["identifier"], r["response"]["status"], r["response"]["errorCode"]) for r in responses] == [
        ("bad-size", "FAILURE", "VALIDATION_ERROR")
    ]
    assert "size" in responses[0]["response"]["errorMessage"]
    assert not responses[0]["response"]["errorMessage"].startswith("CnmValidationError")  # the message alone (PO.DAAC)

    inputs = pipeline.execution_inputs()
    assert sorted(i["meta"]["cnm"]["identifier"] for i in inputs) == ["granule-0", "granule-1", "granule-2"]
    one = inputs[0]
    assert one["meta"]["collection"]["name"] == "MODIS_A" and one["meta"]["provider"]["id"] == "PODAAC"
    assert one["meta"]["stack"] == "test-stack" and one["meta"]["rule"]["name"] == "modis"
    assert one["cumulus_meta"]["source"]["stream_arn"] == STREAM


def test_redelivery_starts_no_new_execution(pipeline, lambda_context, batch):
    pipeline.put_rule("modis")
    _payloads, event = batch
    assert consume(event, lambda_context) == {"batchItemFailures": []}
    names = sorted(e["name"] for e in pipeline.executions())
    assert consume(event, lambda_context) == {"batchItemFailures": []}
    assert sorted(e["name"] for e in pipeline.executions()) == names
    # and the fallback consumer, seeing a good record again, recognises it too
    record = kinesis_record(json.dumps(sample_cnm("granule-0")), "1000", partition_key="pk0", stream_arn=STREAM)
    env = dlq.envelope(
        "message_consumer",
        "test",
        "Test",
        {
            "data": record["kinesis"]["data"],
            "sequenceNumber": "1000",
            "partitionKey": "pk0",
            "shardId": "shardId-000000000000",
            "streamArn": STREAM,
            "approximateArrivalTimestamp": 0,
        },
    )
    from tests.events import sns_event

    fallback_consumer.handler(sns_event(json.dumps(env)), lambda_context)
    assert sorted(e["name"] for e in pipeline.executions()) == names


def test_transient_error_is_a_batch_item_failure_then_redelivery_succeeds(pipeline, lambda_context, faults):
    pipeline.put_rule("modis")
    payloads = [json.dumps(sample_cnm(f"granule-{i}")).encode() for i in range(4)]
    event = kinesis_event([kinesis_record(p, str(2000 + i), stream_arn=STREAM) for i, p in enumerate(payloads)])
    calls = patch_method(
        faults,
        "stepfunctions",
        "start_execution",
        lambda kw: kw["name"].startswith("granule-2-"),
        client_error("ThrottlingException"),
    )

    result = consume(event, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "2002"}]}
    assert calls["failed"] == 2  # START_MAX_ATTEMPTS=2 in the fixture: retried once, then given back
    assert len(pipeline.executions()) == 3
    assert pipeline.fallback_events() == [] and pipeline.dlq_envelopes() == []
    assert len(payloads) == len(pipeline.executions()) + len(result["batchItemFailures"])

    faults.undo()
    # The ESM retries from the failed record on: 2002 and 2003 (2003 already started).
    retry = kinesis_event(event["Records"][2:])
    assert consume(retry, lambda_context) == {"batchItemFailures": []}
    assert len(pipeline.executions()) == 4
    assert len(payloads) == len(pipeline.executions()) + len(pipeline.dlq_envelopes())


def test_server_error_is_transient(pipeline, lambda_context, faults):
    pipeline.put_rule("modis")
    event = kinesis_event([kinesis_record(sample_cnm("granule-0"), "3000", stream_arn=STREAM)])
    patch_method(faults, "stepfunctions", "start_execution", lambda kw: True, client_error("InternalFailure", 500))
    result = consume(event, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "3000"}]}
    assert pipeline.fallback_events() == []
    assert len(event["Records"]) == len(pipeline.executions()) + len(result["batchItemFailures"])


def test_fallback_consumer_raises_on_transient_errors_so_lambda_retries(pipeline, lambda_context, faults):
    pipeline.put_rule("modis")
    from tests.events import sns_event

    payload = json.dumps(sample_cnm("granule-9")).encode()
    env = dlq.envelope(
        "message_consumer",
        "KeyError: earlier",
        "KeyError",
        {
            "data": base64.b64encode(payload).decode(),
            "sequenceNumber": "3100",
            "partitionKey": "pk",
            "shardId": "shardId-000000000000",
            "streamArn": STREAM,
            "approximateArrivalTimestamp": 0,
        },
    )
    event = sns_event(json.dumps(env))
    patch_method(faults, "stepfunctions", "start_execution", lambda kw: True, client_error("ThrottlingException"))
    with pytest.raises(ClientError):
        fallback_consumer.handler(event, lambda_context)
    assert pipeline.dlq_envelopes() == [] and pipeline.executions() == []
    faults.undo()
    fallback_consumer.handler(event, lambda_context)  # Lambda's async retry
    assert len(pipeline.executions()) == 1 and pipeline.dlq_envelopes() == []


def test_park_failure_keeps_the_record_in_the_stream(pipeline, lambda_context, faults):
    pipeline.put_rule("modis")
    bad = sample_cnm("bad", collection=5)
    event = kinesis_event(
        [
            kinesis_record(sample_cnm("granule-0"), "4000", stream_arn=STREAM),
            kinesis_record(bad, "4001", stream_arn=STREAM),
        ]
    )
    patch_method(
        faults, "sqs", "send_message_batch", lambda kw: True, client_error("AccessDenied", 403, "SendMessageBatch")
    )

    result = consume(event, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "4001"}]}
    assert len(pipeline.executions()) == 1
    assert len(event["Records"]) == len(pipeline.executions()) + len(result["batchItemFailures"])

    faults.undo()
    assert consume(kinesis_event(event["Records"][1:]), lambda_context) == {"batchItemFailures": []}
    assert run_fallback(pipeline, lambda_context) == 0
    assert len(pipeline.dlq_envelopes()) == 1
    assert len(pipeline.executions()) == 1


def test_unexpected_error_is_parked_then_retried_by_the_fallback_consumer(pipeline, lambda_context, faults):
    pipeline.put_rule("modis")
    from cnm_ingest import ingest

    original = ingest.build_workflow_input

    def broken(cnm, **kw):
        if cnm["identifier"] == "granule-1":
            raise KeyError("surprise")
        return original(cnm, **kw)

    faults.setattr(ingest, "build_workflow_input", broken)
    event = kinesis_event(
        [kinesis_record(sample_cnm(f"granule-{i}"), str(5000 + i), stream_arn=STREAM) for i in range(3)]
    )
    assert consume(event, lambda_context) == {"batchItemFailures": []}
    assert len(pipeline.executions()) == 2
    events = pipeline.fallback_events()
    assert len(events) == 1
    env = json.loads(events[0]["Records"][0]["Sns"]["Message"])
    assert env["error_type"] == "KeyError" and "surprise" in env["reason"]
    assert pipeline.responses() == []  # not the record's fault: no FAILURE response

    # Still broken: the fallback consumer raises so Lambda retries it (and later dead-letters it).
    with pytest.raises(KeyError):
        fallback_consumer.handler(events[0], lambda_context)
    assert pipeline.dlq_envelopes() == []

    faults.undo()
    fallback_consumer.handler(events[0], lambda_context)
    assert len(event["Records"]) == len(pipeline.executions()) + len(pipeline.dlq_envelopes())
    assert len(pipeline.executions()) == 3


def test_oversize_bad_record_goes_through_s3(pipeline, lambda_context):
    pipeline.put_rule("modis")
    cnm = sample_cnm("huge", collection=5)
    cnm["padding"] = "x" * (300 * 1024)
    payload = json.dumps(cnm).encode()
    event = kinesis_event([kinesis_record(payload, "6000", stream_arn=STREAM)])

    assert consume(event, lambda_context) == {"batchItemFailures": []}
    assert pipeline.fallback_events() == []
    (env,) = pipeline.dlq_envelopes()
    assert env["record"]["data"] is None and env["payload_s3"]["bucket"] == "payloads"
    assert payload_of(env) == payload
    assert len(event["Records"]) == len(pipeline.executions()) + 1
    assert base64.b64decode(event["Records"][0]["kinesis"]["data"]) == payload
