"""CnmResponse: answer the provider on the response stream, then end the workflow truthfully.

SUCCESS carries the staged files; FAILURE carries the CNM error code of the
caught error (``exception``). After a FAILURE response this task raises
:class:`~cnm_ingest.errors.WorkflowError` (its message is the original error as
JSON), so StopStatus records FAILED and the execution ends FAILED.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger

from cnm_ingest import aws, task
from cnm_ingest import response as response_mod
from cnm_ingest.errors import WorkflowError
from cnm_ingest.response import build_response

logger = Logger()


def addressable(cnm: Any, message: task.Message, execution: task.Execution) -> dict[str, Any]:
    """The notification with a usable identifier and collection, from the workflow when the CNM lacks them."""
    cnm = dict(cnm) if isinstance(cnm, dict) else {}
    meta = message.get("meta") or {}
    if not isinstance(cnm.get("identifier"), str) or not cnm["identifier"]:
        cnm["identifier"] = execution.get("name") or (message.get("cumulus_meta") or {}).get("execution_name") or "unknown"
    coll = cnm.get("collection")
    valid_object = isinstance(coll, dict) and isinstance(coll.get("name"), str) and isinstance(coll.get("version"), str)
    if not isinstance(coll, str) and not valid_object:
        known = meta.get("collection") if isinstance(meta.get("collection"), dict) else {}
        name, version = known.get("name"), known.get("version")
        cnm["collection"] = {"name": name, "version": version} if name and version else str(name or "unknown")
    if not isinstance(cnm.get("submissionTime"), str):
        cnm.pop("submissionTime", None)
    return cnm


def staged_product(message: task.Message, cnm: dict[str, Any]) -> dict[str, Any] | None:
    """The response ``product``: the staged files of every granule."""
    return response_mod.response_product((message.get("payload") or {}).get("granules") or [], cnm,
                                         os.environ.get("DISTRIBUTION_ENDPOINT") or None)


def respond(message: task.Message, execution: task.Execution, *, stream_arn: str, topic_arn: str | None = None,
            extra_destinations: list[str] | None = None) -> task.Message:
    meta = message.get("meta") or {}
    cnm = addressable(meta.get("cnm") or (message.get("payload") or {}).get("cnm"), message, execution)
    received = meta.get("received_time") or execution.get("start_time")
    exception = message.get("exception")
    error = task.original_error(exception) if exception else None
    if error:
        response = build_response(cnm, status="FAILURE", received_time=received, error_code=error["errorCode"],
                                  error_message=error["errorMessage"])
    else:
        response = build_response(cnm, status="SUCCESS", received_time=received, product=staged_product(message, cnm),
                                  ingestion_metadata=response_mod.ingestion_metadata_from(message))
    destinations = [stream_arn, *([topic_arn] if topic_arn else []), *(extra_destinations or [])]
    response_mod.send_response(response, list(dict.fromkeys(destinations)), response_mod.message_attributes(response, cnm))
    logger.info("CNM response sent", extra={"identifier": response["identifier"], "response": response["response"]})
    if error:
        raise WorkflowError(json.dumps(error, separators=(",", ":")))
    return {**message, "meta": {**meta, "cnm_response": response}}


def _respond(message: task.Message, execution: task.Execution) -> task.Message:
    return respond(message, execution, stream_arn=aws.env("RESPONSE_STREAM_ARN"),
                   topic_arn=os.environ.get("RESPONSE_TOPIC_ARN") or None,
                   extra_destinations=response_mod.destinations_from_env())


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> task.Message:
    return task.run(event, _respond)
