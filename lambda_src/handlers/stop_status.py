"""StopStatus: record SUCCEEDED, or FAILED when the message carries ``exception`` (cnm_ingest.executions)."""

from __future__ import annotations

import cnm_ingest.coldstart

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import executions
from cnm_ingest.workflow import task

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> task.Message:
    return task.run(event, executions.stop)


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
