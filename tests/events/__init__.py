"""Lambda events as JSON files (tests/events/<name>.json), read by one loader that fills per-test values.

Each file is one event as the AWS event source hands it to Lambda; each event file holds one
record as the template for the helpers below. tests/unit/events checks every file against
Powertools' event data classes, so a malformed fixture fails there.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent
SHARD_ID = "shardId-000000000000"


@cache
def _read(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


def _merge(base: Any, overrides: dict[str, Any]) -> Any:
    """``base`` with ``overrides`` applied: dicts are merged key by key, anything else replaces."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_event(name: str, **overrides: Any) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json with ``overrides`` merged in (nested dicts key by key)."""
    return _merge(copy.deepcopy(_read(name)), overrides)


def load_record(name: str, **overrides: Any) -> dict[str, Any]:
    """The first record of tests/events/<name>.json (the template), with ``overrides`` merged in."""
    return _merge(copy.deepcopy(_read(name)["Records"][0]), overrides)


# --- Kinesis (message_consumer, logger) ----------------------------------------------------------
def kinesis_record(
    payload: bytes | str | dict,
    sequence: str,
    *,
    partition_key: str = "pk",
    stream_arn: str = "arn:aws:kinesis:us-west-2:123456789012:stream/notifications",
    shard_id: str = SHARD_ID,
    arrival: float | None = None,
) -> dict[str, Any]:
    """One record of a Lambda Kinesis event, as the event source mapping delivers it."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    kinesis: dict[str, Any] = {
        "partitionKey": partition_key,
        "sequenceNumber": sequence,
        "data": base64.b64encode(payload).decode("ascii"),
    }
    if arrival is not None:
        kinesis["approximateArrivalTimestamp"] = arrival
    return load_record("kinesis_batch", kinesis=kinesis, eventID=f"{shard_id}:{sequence}", eventSourceARN=stream_arn)


def kinesis_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return load_event("kinesis_batch", Records=records)


def kinesis_event_from_stream(records: list[dict[str, Any]], stream_arn: str, shard_id: str = SHARD_ID) -> dict:
    """GetRecords records (boto3 shapes) as the event source mapping hands them to Lambda."""
    return kinesis_event(
        [
            kinesis_record(
                r["Data"],
                r["SequenceNumber"],
                partition_key=r["PartitionKey"],
                stream_arn=stream_arn,
                shard_id=shard_id,
                arrival=r["ApproximateArrivalTimestamp"].timestamp(),
            )
            for r in records
        ]
    )


# --- SNS (fallback_consumer, hydrate) ------------------------------------------------------------
def sns_event(
    message: str,
    topic_arn: str = "arn:aws:sns:us-west-2:123456789012:topic",
    message_id: str = "00000000-0000-0000-0000-000000000001",
) -> dict[str, Any]:
    """An SNS notification as Lambda receives it."""
    record = load_record(
        "sns_fallback",
        EventSubscriptionArn=f"{topic_arn}:sub",
        Sns={"Message": message, "TopicArn": topic_arn, "MessageId": message_id},
    )
    return load_event("sns_fallback", Records=[record])


def kinesis_failure_record(
    stream_arn: str, start: str, end: str, size: int, *, shard_id: str = SHARD_ID, **overrides: Any
) -> dict[str, Any]:
    """What the Kinesis event source mapping's on-failure destination publishes (the SNS message hydrate reads)
    when it gives up the range ``start``..``end`` (``size`` records) of a shard."""
    batch = {"shardId": shard_id, "startSequenceNumber": start, "endSequenceNumber": end, "batchSize": size}
    return load_event("kinesis_esm_failure", KinesisBatchInfo={**batch, "streamArn": stream_arn}, **overrides)


# --- SQS carrying EventBridge events (recorder) --------------------------------------------------
def sqs_event(bodies: list[Any], queue: str = "execution-events") -> dict[str, Any]:
    """SQS messages carrying ``bodies`` (dicts are JSON-encoded, strings passed as they are)."""
    records = []
    for i, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        records.append(
            load_record(
                "sqs_recorder",
                messageId=f"00000000-0000-0000-0000-{i:012d}",
                receiptHandle=f"rh-{i}",
                body=text,
                md5OfBody=hashlib.md5(text.encode()).hexdigest(),
                eventSourceARN=f"arn:aws:sqs:us-west-2:123456789012:{queue}",
            )
        )
    return load_event("sqs_recorder", Records=records)


def status_change_event(**detail: Any) -> dict[str, Any]:
    """A Step Functions Execution Status Change (EventBridge), ``detail`` fields replaced."""
    event = load_event("stepfunctions_status_change", detail=detail)
    event["resources"] = [event["detail"]["executionArn"]]
    return event
