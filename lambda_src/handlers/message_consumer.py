"""Message consumer: Kinesis notification stream -> one workflow execution per matching rule.

Per record (see :mod:`cnm_ingest.ingest`): started, or already started by an
earlier delivery -> success. A transient AWS error -> batch item failure, the
event source mapping retries from that record. Anything else (a bad record,
no rule, an unexpected error) -> the record is parked on the fallback topic
with the reason, and a bad record that can be addressed is answered with a
FAILURE (VALIDATION_ERROR) response. A record that cannot be parked is a
batch item failure: it is never dropped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from cnm_ingest import aws, config, dlq, ingest, observability
from cnm_ingest.errors import RecordError

SOURCE = "message_consumer"
logger, metrics = observability.tools("message_consumer")
processor = BatchProcessor(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)


def answer(record: ingest.SourceRecord, exc: BaseException, stream_arn: str) -> None:
    """FAILURE response for a bad record; a transient put error propagates (retry), others are logged."""
    if not isinstance(exc, RecordError):
        return
    try:
        if ingest.answer_failure(record, exc, stream_arn):
            metrics.add_metric(name="FailureResponses", unit=MetricUnit.Count, value=1)
    except Exception as put_exc:
        if aws.is_transient(put_exc):
            raise
        logger.exception("could not answer a bad record with a FAILURE response",
                         extra={"sequence_number": record.sequenceNumber})
        metrics.add_metric(name="FailureResponseErrors", unit=MetricUnit.Count, value=1)


def park(record: ingest.SourceRecord, exc: BaseException, topic_arn: str, stream_arn: str) -> None:
    """Answer (when possible) and publish the record with the reason to the fallback topic."""
    answer(record, exc, stream_arn)
    dlq.publish(ingest.failed_envelope(record, exc, SOURCE), topic_arn)
    metrics.add_metric(name="RecordsParked", unit=MetricUnit.Count, value=1)
    logger.warning("record parked on the fallback topic",
                   extra={"sequence_number": record.sequenceNumber, "reason": ingest.reason_for(exc)})


def consume(record: ingest.SourceRecord, store: config.ConfigStore, settings: ingest.Settings,
            topic_arn: str, stream_arn: str) -> str:
    """Process one record: ``"started"`` or ``"parked"``; raises for a batch item failure."""
    try:
        started = ingest.process(record, store, settings)
    except Exception as exc:
        if aws.is_transient(exc):
            metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=1)
            logger.warning("transient error, the record will be retried",
                           extra={"sequence_number": record.sequenceNumber, "reason": ingest.reason_for(exc)})
            raise
        if not isinstance(exc, RecordError):
            logger.exception("unexpected error", extra={"sequence_number": record.sequenceNumber})
        park(record, exc, topic_arn, stream_arn)
        return "parked"
    for s in started:
        metrics.add_metric(name="ExecutionsAlreadyStarted" if s.already_existed else "ExecutionsStarted",
                           unit=MetricUnit.Count, value=1)
    return "started"


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    store = config.store()
    settings = ingest.Settings.from_env()
    topic_arn = aws.env("FALLBACK_TOPIC_ARN")
    stream_arn = aws.env("RESPONSE_STREAM_ARN")
    records = event.get("Records") or []
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=len(records))

    def record_handler(record: KinesisStreamRecord) -> str:
        return consume(ingest.SourceRecord.from_kinesis_event_record(record), store, settings, topic_arn, stream_arn)

    result = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=len(result.get("batchItemFailures", [])))
    return result
