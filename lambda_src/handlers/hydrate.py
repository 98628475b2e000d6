"""Hydrate: a failed batch's ESM on-failure record -> its records, with payloads, in the DLQ.

The on-failure record (from the failed-batch SNS topic) has the shard, the
sequence-number range and ``batchSize`` but no data; the records are read back
from the stream (:func:`cnm_ingest.kinesis.read_range`). Each record that was
not already done is parked in the DLQ with the batch info and the failure
context. Done means: an execution exists under one of its deterministic
names (it started), or the message consumer already parked it or handed it
to the fallback topic (:mod:`cnm_ingest.once`), so a given-up batch parks
only what was not done, and each record at most once.

When fewer than ``batchSize`` records can be read back (trimmed from the
stream, stream or shard gone, GetRecords bound reached) ONE gap entry
(``record: null``, ``error_type: RecordsNotReadBack``) names the missing
sequence range(s) and the count, so a loss is never silent; the read is
never reported complete with records missing. If the DLQ does not take a
message the invocation fails and is retried (what was parked stays parked).
"""

from __future__ import annotations

import cnm_ingest.coldstart

import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import aws, config, dlq, ingest, kinesis, observability, once

SOURCE = "hydrate"
GAP_KEY = "[streamArn, shardId, startSequenceNumber, endSequenceNumber]"
logger, metrics = observability.tools("hydrate")
# Tests replace this to avoid real waiting on throttling backoff.
sleep: Callable[[float], None] = time.sleep


def _context(failure: dict[str, Any]) -> dict[str, Any]:
    return {k: failure.get(k) for k in ("requestContext", "responseContext", "version", "timestamp")}


def record_envelope(failure: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The DLQ envelope of one record read back from a failed batch."""
    info = failure["KinesisBatchInfo"]
    request = failure.get("requestContext") or {}
    condition = request.get("condition") or "BatchFailed"
    reason = (
        f"the batch failed in {request.get('functionArn', 'the consumer')} ({condition}, "
        f"{request.get('approximateInvokeCount', '?')} invocations); record read back from the stream"
    )
    return dlq.envelope(SOURCE, reason, condition, record, batch=info, failure_context=_context(failure))


def gap_envelope(failure: dict[str, Any], read: kinesis.ReadResult) -> dict[str, Any] | None:
    """The one gap entry for what could not be read back, or None when nothing is missing."""
    info = failure["KinesisBatchInfo"]
    gap = kinesis.missing(read, info["startSequenceNumber"], info["endSequenceNumber"], info.get("batchSize"))
    if gap is None:
        return None
    request = failure.get("requestContext") or {}
    condition = request.get("condition") or "BatchFailed"
    ranges = "; ".join(f"{r['from']}..{r['to']}" for r in gap["ranges"])
    reason = (
        f"the batch failed in {request.get('functionArn', 'the consumer')} ({condition}); "
        f"only {len(read.records)} of {info.get('batchSize', '?')} records could be read back from "
        f"shard {info.get('shardId')}: {gap['count']} missing in sequence range(s) {ranges} "
        f"(expired from the stream?): {read.reason}"
    )
    env = dlq.envelope(SOURCE, reason, "RecordsNotReadBack", None, batch=info, failure_context=_context(failure))
    env["missing"] = gap
    return env


def park_batch(failure: dict[str, Any], run: ingest.Run, *, max_calls: int, limit: int | None) -> dict[str, int]:
    """Read back the failed batch and park what was not done; returns counts."""
    info = failure["KinesisBatchInfo"]
    read = kinesis.read_range(
        info["streamArn"],
        info["shardId"],
        info["startSequenceNumber"],
        info["endSequenceNumber"],
        info.get("batchSize"),
        max_calls=max_calls,
        limit=limit,
        sleep=sleep,
    )
    counts = {"parked": 0, "skipped": 0, "gap": 0}
    for rec in read.records:
        key = once.record_key(rec)
        record = ingest.SourceRecord(**rec)
        if (
            run.once.done(once.PARK, key)
            or run.once.done(once.FALLBACK, key)
            or ingest.already_started(record, run.store, run.settings)
        ):
            counts["skipped"] += 1
            continue
        run.once.run(
            once.PARK, key, functools.partial(dlq.send, [record_envelope(failure, rec)], run.queue_url, sleep=sleep)
        )
        counts["parked"] += 1
    gap = gap_envelope(failure, read)
    if gap is not None:
        gap_key = {
            "streamArn": info["streamArn"],
            "shardId": info["shardId"],
            "startSequenceNumber": info["startSequenceNumber"],
            "endSequenceNumber": info["endSequenceNumber"],
        }
        run.once.run(once.GAP, gap_key, lambda: dlq.send([gap], run.queue_url, sleep=sleep), key_path=GAP_KEY)
        counts["gap"] = 1
        metrics.add_metric(name="BatchesNotReadBack", unit=MetricUnit.Count, value=1)
        logger.warning("failed batch not fully read back", extra={"batch": info, "missing": gap["missing"]})
    metrics.add_metric(name="RecordsHydrated", unit=MetricUnit.Count, value=counts["parked"])
    metrics.add_metric(name="RecordsAlreadyDone", unit=MetricUnit.Count, value=counts["skipped"])
    return counts


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    run = ingest.Run(
        store=config.store(),
        settings=ingest.Settings.from_env(),
        once=once.Once.from_env(context),
        source=SOURCE,
        queue_url=aws.env("DLQ_URL"),
    )
    max_calls = int(os.environ.get("MAX_GET_RECORDS_CALLS") or kinesis.DEFAULT_MAX_CALLS)
    limit = int(os.environ.get("GET_RECORDS_LIMIT") or 0) or None
    totals = {"parked": 0, "skipped": 0, "gap": 0}
    for record in event.records:
        failure = json.loads(record.sns.message)
        logger.info("failed batch", extra={"batch": failure.get("KinesisBatchInfo")})
        metrics.add_metric(name="FailedBatches", unit=MetricUnit.Count, value=1)
        for k, v in park_batch(failure, run, max_calls=max_calls, limit=limit).items():
            totals[k] += v
    return {"dlq_messages": totals["parked"] + totals["gap"], **totals}


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
