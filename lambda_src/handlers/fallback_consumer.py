"""Fallback consumer: a record the message consumer handed over after an unexpected error gets one more try.

Invoked asynchronously by SNS with our failed-record envelope. The record runs
through the same processing as in the message consumer
(:func:`cnm_ingest.consumer.consume.consume`). A bad record (a
:class:`~cnm_ingest.errors.RecordError`) is answered when addressable and goes
straight to the DLQ, each at most once per record: retrying cannot help. A
transient or unexpected error is raised, so Lambda's async retries run and then
its on-failure destination (the DLQ) receives the invocation record with the
SNS event.
"""

from __future__ import annotations

import cnm_ingest.coldstart

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import aws, dlq, idempotency, observability
from cnm_ingest.consumer import consume, pacing, rulebook

SOURCE = "fallback_consumer"
logger, metrics = observability.tools("fallback_consumer")


def retry(parked: dlq.ParkedRecord, run: consume.Run) -> str:
    """``"started"``, or ``"dead-lettered"`` for a bad record; other errors propagate."""
    if parked.payload is None:
        raise ValueError(f"fallback envelope without a payload: {parked.envelope.get('reason')}")
    record = consume.SourceRecord.from_envelope(parked.envelope, parked.payload)
    outcome = consume.consume(record, run)
    if outcome.status == "parked":
        metrics.add_metric(name="RecordsDeadLettered", unit=MetricUnit.Count, value=1)
        logger.warning(
            "record sent to the DLQ",
            extra={"sequence_number": record.sequenceNumber, "reason": outcome.reason, "answer": outcome.answer},
        )
        return "dead-lettered"
    metrics.add_metric(name="RecordsRecovered", unit=MetricUnit.Count, value=1)
    return "started"


@metrics.log_metrics
@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    run = consume.Run(
        store=rulebook.store(),
        settings=consume.Settings.from_env(),
        once=idempotency.Once.from_env(context),
        source=SOURCE,
        queue_url=aws.env("DLQ_URL"),
        response_stream_arn=os.environ.get("RESPONSE_STREAM_ARN") or None,
        pacer=pacing.Pacer.from_env(context),
    )
    outcomes: list[str] = []
    for record in event.records:
        metrics.add_metric(name="FallbackMessages", unit=MetricUnit.Count, value=1)
        parked = dlq.records_from_dlq_message(record.sns.message)
        if not parked:
            raise ValueError(f"SNS message {record.sns.message_id} is not a cnm-ingest failed-record envelope")
        outcomes.extend(retry(p, run) for p in parked)
    return {"outcomes": outcomes}


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
