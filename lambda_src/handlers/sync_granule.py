"""SyncGranule: copy the granule's files into the staging bucket and verify them."""

from __future__ import annotations

import cnm_ingest.coldstart

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import message as workflow_message
from cnm_ingest import staging, task

logger = Logger()


def sync(message: task.Message, execution: task.Execution) -> task.Message:
    result = staging.sync_message(message, execution)
    for g in workflow_message.granules(result):
        logger.info("granule staged", extra={"granuleId": g["granuleId"], "files": len(g["files"])})
    return result


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> task.Message:
    return task.run(event, sync)


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
