"""Every JSON event in tests/events, and what the loader builds from it, reads as Powertools' event data classes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, KinesisStreamEvent, SNSEvent, SQSEvent

from tests import events


def read_kinesis(event: dict) -> None:
    parsed = KinesisStreamEvent(event)
    records = list(parsed.records)
    assert records
    for r in records:
        k = r.kinesis
        assert k.kinesis_schema_version == "1.0" and k.partition_key and k.sequence_number.isdigit()
        assert isinstance(k.approximate_arrival_timestamp, float)
        k.data_as_bytes()  # valid base64
        assert r.event_id == f"{r.event_id.split(':', 1)[0]}:{k.sequence_number}"
        assert r.event_id.startswith("shardId-")
        assert (r.event_source, r.event_name, r.event_version) == ("aws:kinesis", "aws:kinesis:record", "1.0")
        assert r.event_source_arn.startswith("arn:aws:kinesis:") and ":stream/" in r.event_source_arn
        assert r.invoke_identity_arn.startswith("arn:aws:iam::") and r.aws_region


def read_sns(event: dict) -> None:
    records = list(SNSEvent(event).records)
    assert records
    for r in records:
        assert (r.event_source, r.event_version) == ("aws:sns", "1.0")
        s = r.sns
        assert r.event_subscription_arn.startswith(s.topic_arn + ":")
        assert s.get_type == "Notification" and s.message_id and isinstance(s.message, str)
        assert s.topic_arn.startswith("arn:aws:sns:") and s.signature_version and s.signature
        assert s.signing_cert_url and s.unsubscribe_url and isinstance(s.message_attributes, dict)
        datetime.fromisoformat(s.timestamp)
        s.subject  # noqa: B018  (present, may be null)


def read_sqs(event: dict) -> None:
    records = list(SQSEvent(event).records)
    assert records
    for r in records:
        assert r.message_id and r.receipt_handle and isinstance(r.body, str)
        a = r.attributes
        assert a.approximate_receive_count and a.sent_timestamp and a.sender_id
        assert a.approximate_first_receive_timestamp
        assert isinstance(r.message_attributes, dict) and len(r.md5_of_body) == 32
        assert r.event_source == "aws:sqs" and r.event_source_arn.startswith("arn:aws:sqs:") and r.aws_region
        try:
            body = json.loads(r.body)
        except ValueError:
            continue  # a hostile body (the recorder must park it); the SQS record itself was read above
        if isinstance(body, dict) and "detail-type" in body:
            read_eventbridge(body)


def read_eventbridge(event: dict) -> None:
    e = EventBridgeEvent(event)
    assert e.get_id and e.version == "0" and e.account and e.region and e.time
    assert e.source == "aws.states" and e.detail_type == "Step Functions Execution Status Change"
    assert isinstance(e.resources, list) and isinstance(e.detail, dict)
    assert e.detail["executionArn"] in e.resources


def read_kinesis_failure(record: dict) -> None:
    """The on-failure destination record (no Powertools class): every field hydrate and the DLQ read."""
    request, response, batch = record["requestContext"], record["responseContext"], record["KinesisBatchInfo"]
    assert request["requestId"] and request["functionArn"].startswith("arn:aws:lambda:")
    assert request["condition"] and isinstance(request["approximateInvokeCount"], int)
    assert response["statusCode"] == 200 and "functionError" in response and record["version"] == "1.0"
    datetime.fromisoformat(record["timestamp"])
    assert batch["shardId"].startswith("shardId-") and batch["streamArn"].startswith("arn:aws:kinesis:")
    assert int(batch["startSequenceNumber"]) <= int(batch["endSequenceNumber"]) and batch["batchSize"] >= 1
    datetime.fromisoformat(batch["approximateArrivalOfFirstRecord"])
    datetime.fromisoformat(batch["approximateArrivalOfLastRecord"])
    read_sns(events.sns_event(json.dumps(record)))  # as hydrate receives it


def read_schedule(event: dict) -> None:
    """An EventBridge schedule's event (the reconcile function's)."""
    e = EventBridgeEvent(event)
    assert e.get_id and e.version == "0" and e.account and e.region and e.time
    assert (e.source, e.detail_type, e.detail) == ("aws.events", "Scheduled Event", {})
    assert len(e.resources) == 1 and e.resources[0].startswith("arn:aws:events:") and ":rule/" in e.resources[0]


def read_workflow_task(event: dict) -> None:
    """A workflow task event as a state's Parameters build it (no Powertools class): its step's contract."""
    from cnm_ingest.workflow import contract_check

    step = contract_check.step_of(event)
    assert step is not None, event.get("execution")
    contract_check.validate(step, "config", event)
    contract_check.validate(step, "input", event["message"])


READERS: dict[str, Callable[[dict], None]] = {
    "eventbridge_scheduled": read_schedule,
    "kinesis_batch": read_kinesis,
    "kinesis_esm_failure": read_kinesis_failure,
    "sns_fallback": read_sns,
    "sqs_recorder": read_sqs,
    "sqs_recorder_lifecycle": read_sqs,
    "sqs_recorder_out_of_order_and_hostile": read_sqs,
    "stepfunctions_status_change": read_eventbridge,
    "workflow_translate_message_task": read_workflow_task,
}


def test_every_event_file_has_a_reader():
    assert {p.stem for p in events.EVENTS.glob("*.json")} == set(READERS)


@pytest.mark.parametrize("name", sorted(READERS))
def test_event_files_read_as_powertools_events(name):
    READERS[name](events.load_event(name))


def test_what_the_loader_builds_reads_as_powertools_events():
    read_kinesis(events.kinesis_event([events.kinesis_record({"a": "é#?"}, "7"), events.kinesis_record(b"\xff", "8")]))
    read_sns(events.sns_event("{}", topic_arn="arn:aws:sns:us-west-2:123456789012:fallback", message_id="m-1"))
    read_sqs(events.sqs_event([events.status_change_event(name="x"), "not JSON"]))
    read_eventbridge(events.status_change_event(executionArn="arn:aws:states:us-west-2:1:execution:sm:x"))
    read_kinesis_failure(events.kinesis_failure_record("arn:aws:kinesis:us-west-2:1:stream/s", "5", "9", 5))


def test_per_test_values_are_filled_and_the_template_is_not_shared():
    record = events.kinesis_record(b"payload", "42", partition_key="g-1", stream_arn="arn:aws:kinesis:r:1:stream/s")
    assert record["kinesis"]["sequenceNumber"] == "42" and record["eventID"] == "shardId-000000000000:42"
    assert record["kinesis"]["partitionKey"] == "g-1" and record["eventSourceARN"] == "arn:aws:kinesis:r:1:stream/s"
    record["kinesis"]["data"] = "changed"
    assert events.load_record("kinesis_batch")["kinesis"]["data"] != "changed"
    assert events.load_event("kinesis_batch", Records=[]) == {"Records": []}


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("kinesis_batch", ("Records", 0, "kinesis", "sequenceNumber")),
        ("kinesis_batch", ("Records", 0, "eventSourceARN")),
        ("sns_fallback", ("Records", 0, "Sns", "TopicArn")),
        ("sqs_recorder", ("Records", 0, "receiptHandle")),
        ("stepfunctions_status_change", ("detail-type",)),
        ("kinesis_esm_failure", ("KinesisBatchInfo", "streamArn")),
    ],
)
def test_a_malformed_event_fails_its_reader(name, path):
    event = events.load_event(name)
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises((KeyError, AssertionError, TypeError)):
        READERS[name](event)
