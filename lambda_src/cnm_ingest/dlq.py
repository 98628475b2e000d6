"""The failed-record envelope, its S3 offload, and sending it to the DLQ or the fallback topic.

Every message our code parks (fallback topic, ``kinesisFailure`` DLQ) is the
envelope described in ``docs/INTERFACES.md``. SNS and SQS messages are
limited to 256 KiB; an envelope that would not fit has its payload stored in
``PAYLOAD_BUCKET`` under a content-addressed key (so a retry writes the same
object) and ``payload_s3`` pointing at it.

:func:`records_from_dlq_message` reads a DLQ message back into the original
payload bytes, for both shapes the queue holds: our envelope, and the
invocation record Lambda's async on-failure destination writes for the
fallback consumer (whose ``requestPayload`` is the SNS event carrying our
envelope).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cnm_ingest import aws

KIND = "cnm-ingest.failed-record"
VERSION = 1
# SNS and SQS accept 256 KiB; keep headroom for SNS's own wrapping and attributes.
MAX_MESSAGE_BYTES = 256 * 1024
OFFLOAD_THRESHOLD = MAX_MESSAGE_BYTES - 16 * 1024
SQS_BATCH = 10
SEND_ATTEMPTS = 5
# Key prefix of offloaded payloads; build.py copies it into manifest.json for the Terraform IAM scopes.
PAYLOAD_KEY_PREFIX = "failed-records/"
# where a parked response too large for SQS is stored (IAM scope of CnmResponse: build.py copies it to the manifest)
RESPONSE_KEY_PREFIX = "failed-responses/"


def envelope(
    source: str,
    reason: str,
    error_type: str,
    record: dict[str, Any] | None,
    batch: dict[str, Any] | None = None,
    failure_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The failed-record envelope (``record`` as described in INTERFACES.md, or None)."""
    return {
        "kind": KIND,
        "version": VERSION,
        "source": source,
        "reason": reason,
        "error_type": error_type,
        "record": record,
        "payload_s3": None,
        "batch": batch,
        "failure_context": failure_context,
    }


RESPONSE_SOURCE = "cnm_response"


def response_envelope(
    response: dict[str, Any],
    reason: str,
    error_type: str,
    failure_context: dict[str, Any] | None = None,
    bucket: str | None = None,
    threshold: int = OFFLOAD_THRESHOLD,
) -> dict[str, Any]:
    """A CNM response that could not be delivered, parked like a failed record (``envelope: "response"``).

    ``record`` and ``payload_s3`` are null (there is no notification payload to
    redrive); the response is in ``response``, or, when the envelope would be
    too large for SQS, in ``PAYLOAD_BUCKET`` under
    ``failed-responses/<sha256>`` with ``response_s3`` pointing at it.
    """
    env = envelope(RESPONSE_SOURCE, reason, error_type, None, failure_context=failure_context)
    env.update(envelope="response", response=response, response_s3=None)
    if len(dumps(env).encode("utf-8")) > threshold:
        body = json.dumps(response, separators=(",", ":")).encode("utf-8")
        bucket = bucket or aws.env("PAYLOAD_BUCKET")
        key = f"{RESPONSE_KEY_PREFIX}{hashlib.sha256(body).hexdigest()}"
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        env.update(response=None, response_s3={"bucket": bucket, "key": key})
    return env


def is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == KIND


def dumps(env: dict[str, Any]) -> str:
    return json.dumps(env, separators=(",", ":"), default=str)


def offload(env: dict[str, Any], bucket: str | None = None, threshold: int = OFFLOAD_THRESHOLD) -> str:
    """Serialise ``env``; when too large for SNS/SQS, move ``record.data`` to S3 first.

    ``env`` is updated in place (``record.data`` = None, ``payload_s3`` set).
    """
    body = dumps(env)
    record = env.get("record")
    if len(body.encode("utf-8")) <= threshold or not record or not record.get("data"):
        return body
    bucket = bucket or aws.env("PAYLOAD_BUCKET")
    payload = base64.b64decode(record["data"])
    key = f"{PAYLOAD_KEY_PREFIX}{hashlib.sha256(payload).hexdigest()}"
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=payload)
    env["payload_s3"] = {"bucket": bucket, "key": key}
    record["data"] = None
    return dumps(env)


def publish(env: dict[str, Any], topic_arn: str) -> str:
    """Publish the envelope to an SNS topic; returns the message id (errors propagate)."""
    return aws.client("sns").publish(TopicArn=topic_arn, Message=offload(env))["MessageId"]


def send(
    envelopes: Iterable[dict[str, Any]],
    queue_url: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = SEND_ATTEMPTS,
) -> int:
    """Send envelopes to the DLQ with SendMessageBatch (chunks of 10).

    Entries SQS reports as ``Failed`` are sent again with backoff; raises
    RuntimeError when some still cannot be sent, so the caller's invocation
    fails and is retried. Returns the number sent.
    """
    bodies = [offload(e) for e in envelopes]
    sqs = aws.client("sqs")
    for start in range(0, len(bodies), SQS_BATCH):
        pending = {str(i): body for i, body in enumerate(bodies[start : start + SQS_BATCH])}
        for attempt in range(attempts):
            if attempt:
                sleep(min(0.2 * 2**attempt, 5.0))
            result = sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": i, "MessageBody": body} for i, body in pending.items()]
            )
            failed = result.get("Failed") or []
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                break
        if pending:
            raise RuntimeError(f"SQS did not accept {len(pending)} DLQ message(s): {failed}")
    return len(bodies)


@dataclass
class ParkedRecord:
    """A record read back from the DLQ: its envelope and the original payload (None when expired)."""

    envelope: dict[str, Any]
    payload: bytes | None


def _payload(env: dict[str, Any]) -> bytes | None:
    pointer = env.get("payload_s3")
    if pointer:
        return aws.client("s3").get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read()
    record = env.get("record") or {}
    data = record.get("data")
    return base64.b64decode(data) if data is not None else None


def _decoded(value: Any) -> Any:
    """``value`` parsed when it is JSON text (None when it is not JSON), else as it is."""
    if not isinstance(value, (str, bytes)):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def _carried(value: dict[str, Any]) -> list[Any]:
    """The messages a delivery wrapper carries: a Lambda async invocation record's request payload, each
    record's SNS message (or SQS body) in an SNS/SQS event, the message of an SNS notification sent on to SQS
    not raw; nothing for any other object."""
    if "requestPayload" in value:  # Lambda async invocation record
        return [value["requestPayload"]]
    if "Records" in value:  # an SNS (or SQS) event
        return [
            (rec.get("Sns") or {}).get("Message") or rec.get("body")
            for rec in value["Records"]
            if isinstance(rec, dict)
        ]
    if value.get("Type") == "Notification" and "Message" in value:  # SNS -> SQS, not raw
        return [value["Message"]]
    return []


def _envelopes(value: Any) -> list[dict[str, Any]]:
    value = _decoded(value)
    if is_envelope(value):
        return [value]
    if not isinstance(value, dict):
        return []
    return [env for message in _carried(value) for env in _envelopes(message)]


def records_from_dlq_message(body: str | bytes | dict[str, Any]) -> list[ParkedRecord]:
    """The parked records of one DLQ message body, with their original payload bytes."""
    return [ParkedRecord(env, _payload(env)) for env in _envelopes(body)]
