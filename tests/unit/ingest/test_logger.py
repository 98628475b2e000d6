"""The stream logger: decoded, structured, size-capped, never failing a batch."""

from __future__ import annotations

import io
import json

import pytest
from handlers import logger as stream_logger

from tests.events import kinesis_event, kinesis_record

STREAM = "arn:aws:kinesis:us-west-2:123456789012:stream/responses"


@pytest.fixture
def log_output():
    """The handler's Powertools log output (its stream was bound at import time)."""
    handler = stream_logger.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def logged(buffer: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "kinesis record"]


def test_logs_decoded_json_with_record_context(lambda_context, log_output):
    cnm = {"identifier": "g1", "response": {"status": "SUCCESS"}}
    event = kinesis_event([kinesis_record(cnm, "77", partition_key="g1", stream_arn=STREAM)])
    assert stream_logger.handler(event, lambda_context) == {"batchItemFailures": []}
    (entry,) = logged(log_output)
    assert entry["payload"] == cnm and entry["encoding"] == "json"
    assert entry["stream_arn"] == STREAM and entry["shard_id"] == "shardId-000000000000"
    assert entry["sequence_number"] == "77" and entry["partition_key"] == "g1"


def test_caps_size(lambda_context, log_output, monkeypatch):
    monkeypatch.setenv("LOG_MAX_BYTES", "100")
    big = {"identifier": "g", "padding": "p" * 5000}
    stream_logger.handler(kinesis_event([kinesis_record(big, "1")]), lambda_context)
    (entry,) = logged(log_output)
    assert entry["truncated"] is True and entry["size"] > 5000
    assert len(entry["payload"].encode()) <= 100 and entry["encoding"] == "text"


def test_binary_and_bad_base64_do_not_fail_the_batch(lambda_context, log_output):
    records = [
        kinesis_record(b"\x00\xff\xfe binary", "1"),
        kinesis_record("plain text", "2"),
        kinesis_record({"ok": True}, "3"),
    ]
    records[1]["kinesis"]["data"] = "!!not base64!!"
    assert stream_logger.handler(kinesis_event(records), lambda_context) == {"batchItemFailures": []}
    entries = logged(log_output)
    assert [e["encoding"] for e in entries] == ["base64", "invalid-base64", "json"]
    assert "not UTF-8" in entries[0]["note"] and entries[0]["payload"] == "AP/+IGJpbmFyeQ=="
    assert "not valid base64" in entries[1]["note"]
