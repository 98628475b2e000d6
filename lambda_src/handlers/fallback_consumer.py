"""Fallback consumer: a record parked on the fallback topic gets one more try.

Invoked asynchronously by SNS with our failed-record envelope. The record runs
through the same processing as in the message consumer. A bad record (a
:class:`~cnm_ingest.errors.RecordError`) goes straight to the DLQ with the
latest reason: retrying cannot help. A transient or unexpected error is
raised, so Lambda's async retries run and then its on-failure destination
(the DLQ) receives the invocation record with the SNS event.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source

from cnm_ingest import aws, config, dlq, ingest, observability
from cnm_ingest.errors import RecordError

SOURCE = "fallback_consumer"
logger, metrics = observability.tools("fallback_consumer")


def retry(parked: dlq.ParkedRecord, store: config.ConfigStore, settings: ingest.Settings, queue_url: str) -> str:
    """``"started"``, or ``"dead-lettered"`` for a bad record; other errors propagate."""
    if parked.payload is None:
        raise ValueError(f"fallback envelope without a payload: {parked.envelope.get('reason')}")
    record = ingest.SourceRecord.from_envelope(parked.envelope, parked.payload)
    try:
        ingest.process(record, store, settings)
    except RecordError as exc:
        dlq.send([ingest.failed_envelope(record, exc, SOURCE)], queue_url)
        metrics.add_metric(name="RecordsDeadLettered", unit=MetricUnit.Count, value=1)
        logger.warning("record sent to the DLQ",
                       extra={"sequence_number": record.sequenceNumber, "reason": ingest.reason_for(exc)})
        return "dead-lettered"
    metrics.add_metric(name="RecordsRecovered", unit=MetricUnit.Count, value=1)
    return "started"


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: Any) -> dict[str, Any]:
    store = config.store()
    settings = ingest.Settings.from_env()
    queue_url = aws.env("DLQ_URL")
    outcomes = []
    for record in event.records:
        metrics.add_metric(name="FallbackMessages", unit=MetricUnit.Count, value=1)
        parked = dlq.records_from_dlq_message(record.sns.message)
        if not parked:
            raise ValueError(f"SNS message {record.sns.message_id} is not a cnm-ingest failed-record envelope")
        outcomes.extend(retry(p, store, settings, queue_url) for p in parked)
    return {"outcomes": outcomes}
