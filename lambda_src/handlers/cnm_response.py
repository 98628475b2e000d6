"""CnmResponse: answer the provider on the response stream, then end the workflow truthfully.

SUCCESS carries the staged files; FAILURE carries the CNM error code of the
caught error (``exception``). After a FAILURE response this task raises
:class:`~cnm_ingest.errors.WorkflowError` (its message is the original error as
JSON), so StopStatus records FAILED and the execution ends FAILED.

The response goes to every destination (``RESPONSE_STREAM_ARN``,
``RESPONSE_TOPIC_ARN``, then the ``RESPONSE_DESTINATIONS`` streams and
topics; SNS messages carry PO.DAAC's attributes), each put or publish once per
execution, status and destination (:mod:`cnm_ingest.delivery`). When the response cannot be delivered (any
error other than WorkflowError, after the state's retries), the state
machine's ParkResponse state invokes this function again with ``"park":
true``: the response is parked in the DLQ as a response envelope
(:func:`cnm_ingest.dlq.response_envelope`), once, and the execution ends FAILED,
unless the response reached one of the destinations: a delivered response is
never parked, and the execution keeps its outcome (docs/exactly-once.md).
"""

from __future__ import annotations

import cnm_ingest.coldstart

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import aws, delivery, dlq, task
from cnm_ingest import message as workflow_message
from cnm_ingest import response as response_mod
from cnm_ingest.errors import WorkflowError
from cnm_ingest.response import build_response

logger = Logger()


def addressable(cnm: Any, message: task.Message, execution: task.Execution) -> dict[str, Any]:
    """The notification with a usable identifier and collection, from the workflow when the CNM lacks them."""
    cnm = dict(cnm) if isinstance(cnm, dict) else {}
    meta = message.get("meta") or {}
    if not isinstance(cnm.get("identifier"), str) or not cnm["identifier"]:
        cnm["identifier"] = (
            execution.get("name") or (message.get("cumulus_meta") or {}).get("execution_name") or "unknown"
        )
    coll = cnm.get("collection")
    valid_object = isinstance(coll, dict) and isinstance(coll.get("name"), str) and isinstance(coll.get("version"), str)
    if not isinstance(coll, str) and not valid_object:
        known = meta.get("collection")
        if not isinstance(known, dict):
            known = {}
        name, version = known.get("name"), known.get("version")
        cnm["collection"] = {"name": name, "version": version} if name and version else str(name or "unknown")
    if not isinstance(cnm.get("submissionTime"), str):
        cnm.pop("submissionTime", None)
    return cnm


def response_for(message: task.Message, execution: task.Execution) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The CNM response for the workflow's outcome, and the original error (None on success)."""
    meta = message.get("meta") or {}
    cnm = addressable(workflow_message.cnm_if_readable(message), message, execution)
    received = meta.get("received_time") or execution.get("start_time")
    exception = message.get("exception")
    error = task.original_error(exception) if exception else None
    if error:
        response = build_response(
            cnm,
            status="FAILURE",
            received_time=received,
            error_code=error["errorCode"],
            error_message=error["errorMessage"],
        )
    else:
        granules = workflow_message.granules(message) or []  # read once, also when kept in the payload bucket
        product = response_mod.response_product(granules, cnm, os.environ.get("DISTRIBUTION_ENDPOINT") or None)
        extra = response_mod.ingestion_metadata_from({"meta": meta, "payload": {"granules": granules}})
        response = build_response(
            cnm, status="SUCCESS", received_time=received, product=product, ingestion_metadata=extra
        )
    return response, error


def respond(
    message: task.Message,
    execution: task.Execution,
    *,
    stream_arn: str,
    topic_arn: str | None = None,
    extra_destinations: list[str] | None = None,
    table: str | None = None,
) -> task.Message:
    """Answer on every destination (the stream, the topic, then ``extra_destinations``), each once."""
    response, error = response_for(message, execution)
    destinations = list(dict.fromkeys([stream_arn, *([topic_arn] if topic_arn else []), *(extra_destinations or [])]))
    response = delivery.deliver(
        response,
        execution,
        table=table or aws.env("IDEMPOTENCY_TABLE"),
        destinations=destinations,
        cnm=workflow_message.cnm_if_readable(message),
    )
    logger.info("CNM response sent", extra={"identifier": response["identifier"], "response": response["response"]})
    if error:
        raise WorkflowError(json.dumps(error, separators=(",", ":")))
    return workflow_message.set_part(message, "meta", "cnm_response", response)


def park(
    message: task.Message,
    execution: task.Execution,
    *,
    queue_url: str,
    table: str | None = None,
    destinations: list[str] | None = None,
) -> task.Message:
    """ParkResponse: the response CnmResponse could not deliver goes to the DLQ; the execution will end FAILED.

    ``response_exception`` is the error that stopped the delivery; the
    original ``exception`` (if any) is kept for StopStatus. A workflow that
    had succeeded gets ``exception = ResponseNotDelivered``. A response that
    reached one of ``destinations`` is not parked and adds no exception.
    """
    table = table or aws.env("IDEMPOTENCY_TABLE")
    response = delivery.pinned(response_for(message, execution)[0], execution, table=table)
    error_type, reason = task.parse_exception(message.get("response_exception"))
    meta = message.get("cumulus_meta") or {}
    context = {
        "execution_arn": execution.get("id") or "",
        "execution_name": execution.get("name") or "",
        "state_machine_arn": execution.get("state_machine") or "",
        "source": meta.get("source"),
    }
    env = dlq.response_envelope(response, f"{error_type}: {reason}"[:4096], error_type, failure_context=context)
    delivered = delivery.park(
        env, execution, response["response"]["status"], table=table, queue_url=queue_url, destinations=destinations
    )
    out = {k: v for k, v in message.items() if k != "response_exception"}
    if delivered:
        logger.error(
            "CNM response not parked: it was delivered",
            extra={"identifier": response["identifier"], "delivered_to": delivered, "reason": reason[:1000]},
        )
        return out
    logger.error(
        "CNM response parked in the DLQ", extra={"identifier": response["identifier"], "reason": reason[:1000]}
    )
    out["response_parked"] = True
    if not out.get("exception"):
        cause = json.dumps({"errorType": "ResponseNotDelivered", "errorMessage": f"{error_type}: {reason}"[:4096]})
        out["exception"] = {"Error": "ResponseNotDelivered", "Cause": cause}
    return out


def _respond(message: task.Message, execution: task.Execution) -> task.Message:
    return respond(
        message,
        execution,
        stream_arn=aws.env("RESPONSE_STREAM_ARN"),
        topic_arn=os.environ.get("RESPONSE_TOPIC_ARN") or None,
        extra_destinations=response_mod.destinations_from_env(),
    )


def _park(message: task.Message, execution: task.Execution) -> task.Message:
    return park(message, execution, queue_url=aws.env("DLQ_URL"), destinations=response_mod.destinations_from_env())


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> task.Message:
    delivery.CONFIG.register_lambda_context(context)
    return task.run(event, _park if isinstance(event, dict) and event.get("park") is True else _respond)


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
