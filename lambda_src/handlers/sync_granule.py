"""SyncGranule: copy the granule's files into the staging bucket and verify them.

Reads from a provider's http, https or sftp host end by a deadline derived from
the invocation's remaining time (:func:`cnm_ingest.transfer.confine.deadline_for`), so a
stalled or dripping server is a ConnectionTimeoutError (retried) well before
Lambda's own timeout, with time left to clean up and answer.

Deadline-aware: once less than ``SYNC_DEADLINE_MARGIN_SECONDS`` of the invocation
is left no new file starts (:func:`cnm_ingest.workflow.sync_granule.stop_when`), and
the step returns ``meta.sync_continuation``; the state machine's Choice runs
SyncGranule again, which goes on from there.
"""

from __future__ import annotations

import cnm_ingest.coldstart

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest.transfer import confine
from cnm_ingest.workflow import payload, sync_granule, task

logger = Logger()


def sync(message: task.Message, execution: task.Execution, stop: Callable[[], bool] | None = None) -> task.Message:
    result = sync_granule.sync_message(message, execution, stop=stop)
    marker = (result.get("meta") or {}).get(sync_granule.CONTINUATION)
    if marker is not None:
        logger.info(
            "granule continues in the next invocation", extra={k: marker[k] for k in ("invocations", "done", "files")}
        )
        return result
    for g in payload.granules(result):
        logger.info("granule staged", extra={"granuleId": g["granuleId"], "files": len(g["files"])})
    return result


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> task.Message:
    stop = sync_granule.stop_when(context.get_remaining_time_in_millis, sync_granule.deadline_margin())
    with confine.provider_reads(confine.deadline_for(context.get_remaining_time_in_millis())):
        return task.run(event, lambda message, execution: sync(message, execution, stop))


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
