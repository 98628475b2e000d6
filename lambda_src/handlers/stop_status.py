"""StopStatus: record COMPLETED, or FAILED when the message carries ``exception``."""

from aws_lambda_powertools import Logger

from cnm_ingest import status, task

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    return task.run(event, status.stop)
