"""Message consumer: Kinesis notification stream -> one workflow execution per matching rule.

Per record (see :func:`cnm_ingest.consumer.consume.consume`): started, or already
started by an earlier delivery -> success. A bad record (a RecordError:
undecodable, invalid, no rule, a rule that cannot be resolved) is answered
with a FAILURE response when addressable and parked in the DLQ at once, each
side effect at most once per record (:mod:`cnm_ingest.idempotency`). An unexpected
error hands the record (once) to the fallback topic. A retryable error
(throttling, 5xx, no time left) is a batch item failure: the event source
mapping delivers the record again. A record that cannot be parked is a batch
item failure too: it is never dropped.

Records run on up to ``START_CONCURRENCY`` threads at a time (default 64:
the invoking thread, joined by helpers from a pool kept across invocations
as soon as a record waits on AWS), paced by one
:class:`~cnm_ingest.consumer.pacing.Pacer` (:func:`cnm_ingest.consumer.consume.consume_all`);
Powertools' BatchProcessor then collects the results in stream order, so
the partial batch response is exactly what a sequential run reports:
every failed record's sequence number
(the event source mapping restarts at the lowest; records after it that
finished are idempotent when delivered again). Metrics are counted per
invocation, not per record.
"""

from __future__ import annotations

import cnm_ingest.coldstart

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from cnm_ingest import aws, idempotency, observability
from cnm_ingest.consumer import consume, pacing, rulebook

if TYPE_CHECKING:  # types only: not imported at a cold start
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

SOURCE = "message_consumer"
DEFAULT_CONCURRENCY = 64
logger, metrics = observability.tools("message_consumer")
processor = BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)
_pool: ThreadPoolExecutor | None = None


def concurrency() -> int:
    return max(1, int(os.environ.get("START_CONCURRENCY") or DEFAULT_CONCURRENCY))


def pool() -> ThreadPoolExecutor:
    """The process-wide pool of concurrent starts (kept across invocations)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=concurrency(), thread_name_prefix="start")
    return _pool


def run_for(context: LambdaContext) -> consume.Run:
    return consume.Run(
        store=rulebook.store(),
        settings=consume.Settings.from_env(),
        once=idempotency.Once.from_env(context),
        source=SOURCE,
        queue_url=aws.env("DLQ_URL"),
        response_stream_arn=aws.env("RESPONSE_STREAM_ARN"),
        fallback_topic_arn=aws.env("FALLBACK_TOPIC_ARN"),
        pacer=pacing.Pacer.from_env(context),
    )


def collect(record: consume.SourceRecord, outcome: consume.Outcome | BaseException, counts: Counter) -> str:
    """The result of one record (in the invoking thread): its status, or raise for a batch item failure."""
    if isinstance(outcome, BaseException):
        exc = outcome
        counts["RecordsRetried"] += 1
        logger.warning(
            "record will be delivered again",
            extra={"sequence_number": record.sequenceNumber, "reason": consume.reason_for(exc)},
        )
        raise exc
    if outcome.status == "started":
        for s in outcome.started:
            counts["ExecutionsAlreadyStarted" if s.already_existed else "ExecutionsStarted"] += 1
    else:
        counts["RecordsParked" if outcome.status == "parked" else "RecordsToFallback"] += 1
        counts["FailureResponses"] += outcome.answer == "answered"
        counts["FailureResponseErrors"] += outcome.answer.startswith("failed")
        logger.warning(
            "record not started",
            extra={
                "sequence_number": record.sequenceNumber,
                "status": outcome.status,
                "reason": outcome.reason,
                "answer": outcome.answer,
            },
        )
    return outcome.status


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    run = run_for(context)
    raw = event.get("Records") or []
    counts: Counter = Counter(RecordsIn=len(raw))
    records = [consume.SourceRecord.from_event(r) for r in raw]
    results = iter(zip(records, consume.consume_all(records, run, pool(), concurrency()), strict=True))

    def record_handler(record: KinesisStreamRecord) -> str:
        return collect(*next(results), counts)

    result = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    counts["RecordsFailed"] = len(result.get("batchItemFailures", []))
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return result


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
