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
from cnm_ingest.errors import WorkflowError
from cnm_ingest.response import build_response, put_response

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
    granules = (message.get("payload") or {}).get("granules") or []
    files = []
    for granule in granules:
        for f in granule.get("files", []):
            entry = {"type": f["type"], "name": f["name"], "uri": f"s3://{f['bucket']}/{f['key']}", "size": f["size"]}
            if f.get("checksum"):
                entry.update(checksumType=f.get("checksumType") or "md5", checksum=f["checksum"])
            files.append(entry)
    if not files:
        return None
    source = cnm.get("product") if isinstance(cnm.get("product"), dict) else {}
    product: dict[str, Any] = {"name": source.get("name") or granules[0]["granuleId"], "files": files}
    for key in ("dataVersion", "dataProcessingType"):
        if isinstance(source.get(key), str):
            product[key] = source[key]
    return product


def respond(message: task.Message, execution: task.Execution, *, stream_arn: str, topic_arn: str | None = None) -> task.Message:
    meta = message.get("meta") or {}
    cnm = addressable(meta.get("cnm") or (message.get("payload") or {}).get("cnm"), message, execution)
    received = meta.get("received_time") or execution.get("start_time")
    exception = message.get("exception")
    error = task.original_error(exception) if exception else None
    if error:
        response = build_response(cnm, status="FAILURE", received_time=received, error_code=error["errorCode"],
                                  error_message=f"{error['Error']}: {error['errorMessage']}")
    else:
        response = build_response(cnm, status="SUCCESS", received_time=received, product=staged_product(message, cnm))
    put_response(response, stream_arn)
    if topic_arn:
        aws.client("sns").publish(
            TopicArn=topic_arn,
            Message=json.dumps(response, separators=(",", ":")),
            MessageAttributes={"status": {"DataType": "String", "StringValue": response["response"]["status"]}},
        )
    logger.info("CNM response sent", extra={"identifier": response["identifier"], "response": response["response"]})
    if error:
        raise WorkflowError(json.dumps(error, separators=(",", ":")))
    return {**message, "meta": {**meta, "cnm_response": response}}


def _respond(message: task.Message, execution: task.Execution) -> task.Message:
    return respond(message, execution, stream_arn=aws.env("RESPONSE_STREAM_ARN"),
                   topic_arn=os.environ.get("RESPONSE_TOPIC_ARN") or None)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> task.Message:
    return task.run(event, _respond)
