"""The failed-record envelope: S3 offload (to the applied payload bucket, under the deployed
payload key prefix) and reading both DLQ message shapes back."""

from __future__ import annotations

import base64
import json
import os

import pytest

from cnm_ingest import aws, dlq
from tests.events import sns_event


@pytest.fixture
def bucket(complete_world) -> str:
    """The consumer's environment as deployed; its payload bucket."""
    return complete_world.use("message_consumer")["PAYLOAD_BUCKET"]


def record(payload: bytes) -> dict:
    return {
        "data": base64.b64encode(payload).decode("ascii"),
        "sequenceNumber": "42",
        "partitionKey": "pk",
        "shardId": "shardId-000000000000",
        "streamArn": "arn:aws:kinesis:us-west-2:1:stream/s",
        "approximateArrivalTimestamp": 0,
    }


def async_invocation_record(sns_message: str) -> dict:
    """What Lambda's async on-failure destination writes for the fallback consumer."""
    return {
        "version": "1.0",
        "timestamp": "2024-01-02T03:04:05.678Z",
        "requestContext": {
            "requestId": "r",
            "functionArn": "arn:aws:lambda:us-west-2:1:function:fallback",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": sns_event(sns_message),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "boom", "errorType": "KeyError"},
    }


def test_small_envelope_stays_inline(bucket):
    env = dlq.envelope("message_consumer", "why", "CnmValidationError", record(b"small"))
    body = dlq.offload(env)
    assert json.loads(body)["record"]["data"] == base64.b64encode(b"small").decode()
    assert env["payload_s3"] is None
    assert aws.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_oversize_payload_goes_to_s3_and_reads_back_in_both_shapes(bucket):
    payload = os.urandom(300 * 1024)
    env = dlq.envelope("fallback_consumer", "why", "CnmValidationError", record(payload))
    body = dlq.offload(env)
    assert len(body.encode()) < dlq.MAX_MESSAGE_BYTES
    stored = json.loads(body)
    assert stored["record"]["data"] is None and stored["payload_s3"]["bucket"] == bucket
    assert stored["payload_s3"]["key"].startswith(dlq.PAYLOAD_KEY_PREFIX)  # what IAM allows (tests/e2e contract)
    assert stored["record"]["sequenceNumber"] == "42"
    obj = aws.client("s3").get_object(**{k.capitalize(): v for k, v in stored["payload_s3"].items()})
    assert obj["Body"].read() == payload

    # our envelope, as the DLQ holds it
    (ours,) = dlq.records_from_dlq_message(body)
    assert ours.payload == payload and ours.envelope["reason"] == "why"
    # Lambda's async invocation record wrapping the SNS event with our envelope
    (theirs,) = dlq.records_from_dlq_message(json.dumps(async_invocation_record(body)))
    assert theirs.payload == payload
    # and an SNS notification delivered to SQS without raw delivery
    (wrapped,) = dlq.records_from_dlq_message(json.dumps({"Type": "Notification", "Message": body}))
    assert wrapped.payload == payload


def test_inline_payload_reads_back_in_both_shapes(bucket):
    payload = b'{"identifier": "x"}\xff'
    body = dlq.offload(dlq.envelope("message_consumer", "why", "T", record(payload)))
    assert [r.payload for r in dlq.records_from_dlq_message(body)] == [payload]
    assert [r.payload for r in dlq.records_from_dlq_message(json.dumps(async_invocation_record(body)))] == [payload]


def test_expired_record_envelope_and_foreign_messages():
    env = dlq.envelope("hydrate", "expired", "RecordsNotReadBack", None, batch={"shardId": "s"})
    (r,) = dlq.records_from_dlq_message(dlq.dumps(env))
    assert r.payload is None and r.envelope["batch"] == {"shardId": "s"}
    assert dlq.records_from_dlq_message("not json") == []
    assert dlq.records_from_dlq_message({"something": "else"}) == []


def test_same_payload_offloads_to_the_same_key(bucket):
    payload = b"z" * (300 * 1024)
    a = json.loads(dlq.offload(dlq.envelope("s", "r", "T", record(payload))))
    b = json.loads(dlq.offload(dlq.envelope("s", "r2", "T", record(payload))))
    assert a["payload_s3"] == b["payload_s3"]
