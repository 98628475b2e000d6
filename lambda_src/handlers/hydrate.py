"""Hydrate: a failed batch's ESM on-failure record -> its records, with payloads, in the DLQ.

The on-failure record (from the failed-batch SNS topic) has the shard, the
sequence-number range and ``batchSize`` but no data; the records are read back
from the stream (:func:`cnm_ingest.consumer.hydrate.read_range`). Each record that was
not already done is parked in the DLQ with the batch info and the failure
context. Done means: an execution exists under one of its deterministic
names (it started), or the message consumer already parked it or handed it
to the fallback topic (:mod:`cnm_ingest.idempotency`), so a given-up batch parks
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

import json
import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import aws, idempotency, observability
from cnm_ingest.consumer import consume, hydrate, rulebook

logger, metrics = observability.tools("hydrate")


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    run = consume.Run(
        store=rulebook.store(),
        settings=consume.Settings.from_env(),
        once=idempotency.Once.from_env(context),
        source=hydrate.SOURCE,
        queue_url=aws.env("DLQ_URL"),
    )
    max_calls = int(os.environ.get("MAX_GET_RECORDS_CALLS") or hydrate.DEFAULT_MAX_CALLS)
    limit = int(os.environ.get("GET_RECORDS_LIMIT") or 0) or None
    totals = {"parked": 0, "skipped": 0, "gap": 0}
    for record in event.records:
        failure = json.loads(record.sns.message)
        logger.info("failed batch", extra={"batch": failure.get("KinesisBatchInfo")})
        metrics.add_metric(name="FailedBatches", unit=MetricUnit.Count, value=1)
        for k, v in hydrate.park_batch(failure, run, max_calls=max_calls, limit=limit).items():
            totals[k] += v
    if totals["gap"]:
        metrics.add_metric(name="BatchesNotReadBack", unit=MetricUnit.Count, value=totals["gap"])
    metrics.add_metric(name="RecordsHydrated", unit=MetricUnit.Count, value=totals["parked"])
    metrics.add_metric(name="RecordsAlreadyDone", unit=MetricUnit.Count, value=totals["skipped"])
    return {"dlq_messages": totals["parked"] + totals["gap"], **totals}


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
