"""StartStatus: record the execution (and its granules) as RUNNING in the status store (cnm_ingest.executions)."""

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
    return task.run(event, executions.start)


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
