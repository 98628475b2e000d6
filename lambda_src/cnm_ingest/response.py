"""CNM responses: build, validate, and put on the response stream."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from . import aws
from .cnm import validate_response
from .errors import ERROR_CODES


def now_iso() -> str:
    """RFC 3339 UTC timestamp with microseconds, as the CNM samples use."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_response(
    cnm: dict[str, Any],
    *,
    status: str,
    received_time: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    product: dict[str, Any] | None = None,
    ingestion_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a CNM response for the notification ``cnm`` and validate it.

    ``identifier``, ``collection``, ``provider``, ``submissionTime`` (and
    ``version``, ``trace``) are copied from the notification; a notification
    without a valid submissionTime gets the receive time, so a FAILURE for a
    malformed message still conforms to the schema.
    """
    if status not in ("SUCCESS", "FAILURE"):
        raise ValueError(f"status must be SUCCESS or FAILURE, not {status!r}")
    received = received_time or now_iso()
    response: dict[str, Any] = {
        "version": cnm.get("version") if cnm.get("version") else "1.6.1",
        "identifier": cnm["identifier"],
        "collection": cnm["collection"],
        "submissionTime": cnm.get("submissionTime") or received,
        "receivedTime": received,
        "processCompleteTime": now_iso(),
        "response": {"status": status},
    }
    for key in ("provider", "trace"):
        if isinstance(cnm.get(key), str):
            response[key] = cnm[key]
    if status == "FAILURE":
        code = error_code if error_code in ERROR_CODES else "PROCESSING_ERROR"
        response["response"]["errorCode"] = code
        response["response"]["errorMessage"] = (error_message or "unknown error")[:4096]
    elif ingestion_metadata:
        response["response"]["ingestionMetadata"] = ingestion_metadata
    if product is not None:
        response["product"] = product
    try:
        return validate_response(response)
    except Exception:
        # A notification that was itself invalid (e.g. a bad version or time
        # string) must still be answered: fall back to schema-safe values.
        response["version"] = "1.6.1"
        if not isinstance(response["submissionTime"], str) or "T" not in response["submissionTime"]:
            response["submissionTime"] = received
        return validate_response(response)


def put_response(response: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """Put a response on the Kinesis response stream, keyed by identifier."""
    return aws.client("kinesis").put_record(
        StreamARN=stream_arn,
        Data=json.dumps(response, separators=(",", ":")).encode("utf-8"),
        PartitionKey=response["identifier"][:256] or "cnm",
    )
