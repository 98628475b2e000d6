"""Recorder: Step Functions execution status changes (EventBridge -> SQS) -> the status store (<prefix>-executions).

Each SQS message is one EventBridge event; :func:`cnm_ingest.executions.record_event`
writes it (idempotent, order-tolerant). A message that fails (not an execution
event, DynamoDB unavailable) is a batch item failure: SQS redelivers it and,
after the queue's maxReceiveCount, moves it to the recorder's DLQ.
"""

from __future__ import annotations

import cnm_ingest.coldstart

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import aws, executions, observability

logger, metrics = observability.tools("recorder")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def load_input(execution_arn: str) -> str | None:
    """The input Step Functions left out of an event (over 256 KiB), from DescribeExecution."""
    return aws.client("stepfunctions").describe_execution(executionArn=execution_arn).get("input")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    table = aws.env("EXECUTIONS_TABLE")

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        result = executions.record_event(table, json.loads(record.body), load_input)
        metrics.add_metric(
            name="EventsRecorded" if result["written"] else "EventsAlreadyRecorded", unit=MetricUnit.Count, value=1
        )
        return result

    result = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=len(result.get("batchItemFailures", [])))
    return dict(result)


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
