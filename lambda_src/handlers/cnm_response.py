"""CnmResponse: answer the provider on the response stream, then end the workflow truthfully.

SUCCESS carries the staged files; FAILURE carries the CNM error code of the
caught error (``exception``). After a FAILURE response this task raises
:class:`~cnm_ingest.errors.WorkflowError` (its message is the original error as
JSON), so StopStatus records FAILED and the execution ends FAILED.

The response goes to every destination (``RESPONSE_STREAM_ARN``,
``RESPONSE_TOPIC_ARN``, then the ``RESPONSE_DESTINATIONS`` streams and
topics; SNS messages carry PO.DAAC's attributes), each put or publish once per
execution, status and destination (:mod:`cnm_ingest.workflow.cnm_response`). When the response cannot be delivered (any
error other than WorkflowError, after the state's retries), the state
machine's ParkResponse state invokes this function again with ``"park":
true``: the response is parked in the DLQ as a response envelope
(:func:`cnm_ingest.dlq.response_envelope`), once, and the execution ends FAILED,
unless the response reached one of the destinations: a delivered response is
never parked, and the execution keeps its outcome (docs/exactly-once.md).
"""

from __future__ import annotations

import cnm_ingest.coldstart

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest.workflow import cnm_response, task

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> task.Message:
    cnm_response.CONFIG.register_lambda_context(context)
    parking = isinstance(event, dict) and event.get("park") is True
    return task.run(event, cnm_response.park_step if parking else cnm_response.respond_step)


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
