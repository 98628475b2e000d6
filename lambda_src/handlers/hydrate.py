"""Hydrate: a failed batch's ESM on-failure record -> its records, with payloads, in the DLQ.

The on-failure record (from the failed-batch SNS topic) has the shard and the
sequence-number range but no data; the records are read back from the stream
(:func:`cnm_ingest.kinesis.read_range`) and each is sent to the DLQ with the
batch info and the failure context. Records that can no longer be read
(expired, stream or shard gone) still leave one envelope with ``record: null``
and a reason, so the failure is never silent. If the DLQ does not take the
messages the invocation fails and is retried.

With ``IDEMPOTENCY_TABLE`` set, Powertools idempotency (DynamoDB) keys each
failed batch on shard + start + end sequence number, so a redelivered
notification does not park the same records twice.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from cnm_ingest import aws, dlq, kinesis, observability

SOURCE = "hydrate"
BATCH_KEY = "KinesisBatchInfo.[shardId, startSequenceNumber, endSequenceNumber]"
logger, metrics = observability.tools("hydrate")
# Tests replace this to avoid real waiting on throttling backoff.
sleep: Callable[[float], None] = time.sleep


def envelopes_for(failure: dict[str, Any], read: kinesis.ReadResult) -> list[dict[str, Any]]:
    """The DLQ envelopes for a failed batch and what could be read back of it."""
    info = failure["KinesisBatchInfo"]
    request = failure.get("requestContext") or {}
    context = {k: failure.get(k) for k in ("requestContext", "responseContext", "version", "timestamp")}
    condition = request.get("condition") or "BatchFailed"
    reason = (f"the batch failed in {request.get('functionArn', 'the consumer')} ({condition}, "
              f"{request.get('approximateInvokeCount', '?')} invocations); record read back from the stream")
    out = [dlq.envelope(SOURCE, reason, condition, rec, batch=info, failure_context=context) for rec in read.records]
    if not read.complete:
        missing = (f"the batch failed in {request.get('functionArn', 'the consumer')} ({condition}); "
                   f"only {len(read.records)} of {info.get('batchSize', '?')} records could be read back from "
                   f"shard {info.get('shardId')} between {info.get('startSequenceNumber')} and "
                   f"{info.get('endSequenceNumber')} (expired from the stream?): {read.reason}")
        out.append(dlq.envelope(SOURCE, missing, "RecordsNotReadBack", None, batch=info, failure_context=context))
    return out


def park_batch(failure: dict[str, Any], queue_url: str, *, max_calls: int, limit: int | None) -> int:
    """Read back the failed batch and send it to the DLQ; returns the number of DLQ messages."""
    info = failure["KinesisBatchInfo"]
    read = kinesis.read_range(info["streamArn"], info["shardId"], info["startSequenceNumber"],
                              info["endSequenceNumber"], info.get("batchSize"),
                              max_calls=max_calls, limit=limit, sleep=sleep)
    envelopes = envelopes_for(failure, read)
    sent = dlq.send(envelopes, queue_url, sleep=sleep)
    metrics.add_metric(name="RecordsHydrated", unit=MetricUnit.Count, value=len(read.records))
    if not read.complete:
        metrics.add_metric(name="BatchesNotReadBack", unit=MetricUnit.Count, value=1)
        logger.warning("failed batch not fully read back", extra={"batch": info, "reason": read.reason})
    return sent


def idempotent(func: Callable[..., int], context: Any) -> Callable[..., int]:
    """``func`` made idempotent on the batch key when ``IDEMPOTENCY_TABLE`` is set."""
    table = os.environ.get("IDEMPOTENCY_TABLE")
    if not table:
        return func
    store = DynamoDBPersistenceLayer(table_name=table, boto3_client=aws.client("dynamodb"))
    config = IdempotencyConfig(event_key_jmespath=BATCH_KEY, raise_on_no_idempotency_key=True)
    config.register_lambda_context(context)
    return idempotent_function(func, data_keyword_argument="failure", persistence_store=store, config=config)


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: Any) -> dict[str, Any]:
    queue_url = aws.env("DLQ_URL")
    max_calls = int(os.environ.get("MAX_GET_RECORDS_CALLS") or kinesis.DEFAULT_MAX_CALLS)
    limit = int(os.environ.get("GET_RECORDS_LIMIT") or 0) or None
    park = idempotent(park_batch, context)
    sent = 0
    for record in event.records:
        failure = json.loads(record.sns.message)
        logger.info("failed batch", extra={"batch": failure.get("KinesisBatchInfo")})
        metrics.add_metric(name="FailedBatches", unit=MetricUnit.Count, value=1)
        sent += park(failure=failure, queue_url=queue_url, max_calls=max_calls, limit=limit)
    return {"dlq_messages": sent}
