"""StartStatus: record the execution (and its granule) as RUNNING in the status table."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from cnm_ingest import aws, status, task

logger = Logger()


def start(message: task.Message, execution: task.Execution) -> task.Message:
    return status.record_start(aws.env("STATUS_TABLE"), message, execution)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> task.Message:
    return task.run(event, start)
