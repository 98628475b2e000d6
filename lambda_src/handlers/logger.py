"""Stream logger (inbound notifications and outbound responses): each record, decoded, to the logs.

The payload is logged as JSON when it parses, as UTF-8 text otherwise, and as
base64 with a note when it is not text; it is capped at ``LOG_MAX_BYTES``.
Logging never fails a batch.
"""

from __future__ import annotations

import cnm_ingest.coldstart

import base64
import binascii
import functools
import json
import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import observability

DEFAULT_MAX_BYTES = 16384
logger, metrics = observability.tools("logger")
processor = BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)


def describe(data: str, max_bytes: int) -> dict[str, Any]:
    """What to log for base64 ``data``: ``payload`` (JSON value or text), ``encoding``, ``truncated``, ``note``."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return {
            "payload": str(data)[:max_bytes],
            "encoding": "invalid-base64",
            "size": len(str(data)),
            "truncated": len(str(data)) > max_bytes,
            "note": "record data is not valid base64",
        }
    out: dict[str, Any] = {"size": len(raw), "truncated": len(raw) > max_bytes}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        encoded = base64.b64encode(raw[:max_bytes]).decode("ascii")
        return {**out, "payload": encoded, "encoding": "base64", "note": "record data is not UTF-8 text"}
    if not out["truncated"]:
        try:
            return {**out, "payload": json.loads(text), "encoding": "json"}
        except ValueError:
            pass
    capped = raw[:max_bytes].decode("utf-8", errors="ignore")
    return {**out, "payload": capped, "encoding": "text"}


def log_record(record: KinesisStreamRecord, max_bytes: int) -> None:
    try:
        details = describe(record.kinesis.data, max_bytes)
    except Exception as exc:  # never fail the batch because of what a record contains
        details = {"payload": None, "encoding": "unknown", "note": f"could not decode: {exc!r}"}
    logger.info(
        "kinesis record",
        extra={
            "stream_arn": record.event_source_arn,
            "shard_id": (record.event_id or "").split(":", 1)[0],
            "sequence_number": record.kinesis.sequence_number,
            "partition_key": record.kinesis.partition_key,
            "approximate_arrival_timestamp": record.kinesis.approximate_arrival_timestamp,
            **details,
        },
    )


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    max_bytes = int(os.environ.get("LOG_MAX_BYTES") or DEFAULT_MAX_BYTES)
    result = process_partial_response(
        event=event,
        record_handler=functools.partial(log_record, max_bytes=max_bytes),
        processor=processor,
        context=context,
    )
    metrics.add_metric(name="RecordsLogged", unit=MetricUnit.Count, value=len(event.get("Records") or []))
    return result


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
