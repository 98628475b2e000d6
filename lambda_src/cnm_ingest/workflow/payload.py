"""The Cumulus-style workflow message, the one place that says where its parts live,
and deterministic execution names.

The CNM is carried once, at ``meta.cnm``. Step Functions limits every state's
input and output to 256 KiB, so when the serialised message would exceed
:func:`offload_threshold` (``WORKFLOW_OFFLOAD_BYTES``, default 200 KiB, which
leaves room for the task envelope and a caught ``exception``), its largest
parts (:data:`PARTS`: the CNM, the granule list, the CNM response) move to
``PAYLOAD_BUCKET`` under ``workflow/<sha256>`` and the message carries
``<part>_ref = {"bucket", "key", "size", "sha256"}`` in their place. Every task
reads and writes the parts only through :func:`get_part` / :func:`set_part`
(and the :func:`cnm` / :func:`granules` shorthands), so the rule lives here.
Stored parts are content-addressed: a retry writes the same object.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

import orjson

from cnm_ingest import aws
from cnm_ingest.errors import ConfigurationError, WorkflowPayloadError

DEFAULT_OFFLOAD_BYTES = 200 * 1024
KEY_PREFIX = "workflow/"
# (section, name) of the parts that may live in the payload bucket, in the message.
PARTS = (("meta", "cnm"), ("payload", "granules"), ("meta", "cnm_response"))

# Step Functions execution names: 1-80 chars of [0-9A-Za-z_-].
_NAME_MAX = 80
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]+")
# A rule's executionNamePrefix keeps this many characters (the rest of the 80 are the record's).
PREFIX_MAX = 40


def execution_name(identifier: str, sequence_number: str, rule_name: str = "", prefix: str = "") -> str:
    """A Step Functions execution name derived from the record.

    The same record (same CNM identifier, same stream sequence number, same
    rule) always gives the same name, so a redelivered record hits
    ``ExecutionAlreadyExists`` instead of starting a second execution. The
    rule's ``executionNamePrefix`` (reduced to Step Functions' characters, at
    most :data:`PREFIX_MAX`) comes first, as in Cumulus; then a readable part of
    the identifier for operators; a SHA-256 digest of the full key keeps names
    unique within the 80-character limit.
    """
    key = f"{rule_name}\x1f{identifier}\x1f{sequence_number}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    lead = _UNSAFE.sub("-", prefix)[:PREFIX_MAX] if prefix and isinstance(prefix, str) else ""
    room = _NAME_MAX - len(digest) - 1 - len(lead)
    readable = _UNSAFE.sub("-", identifier).strip("-")[:room]
    head = f"{lead}{readable}".rstrip("-") if readable else lead
    return f"{head}-{digest}" if head else digest


def offload_threshold() -> int:
    """``WORKFLOW_OFFLOAD_BYTES`` (default 200 KiB): above it, parts of the message move to S3."""
    return int(os.environ.get("WORKFLOW_OFFLOAD_BYTES") or DEFAULT_OFFLOAD_BYTES)


def size(message: dict[str, Any]) -> int:
    """Bytes of the message as Step Functions counts them (compact UTF-8 JSON)."""
    return len(_dumps(message))


# What orjson would write differently from the standard library goes to the standard library instead.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON: ``json.dumps(separators=(",", ":"), ensure_ascii=False, allow_nan=False)``, encoded.

    orjson writes the same text about 15 times faster (strings and integers
    byte for byte; a float may be spelled differently, ``1e-05`` as
    ``0.00001``, the same number). What it cannot write as the standard
    library does is left to the standard library, which raises what it
    raised before: integers beyond 64 bits, non-string keys, lone surrogates,
    nesting deeper than 254, dataclasses, datetimes and subclasses of the
    JSON types (passed through). orjson writes NaN and infinities as
    ``null``, so any ``null`` in its output is checked by the standard
    library too (``allow_nan=False`` raises). One difference is left: orjson
    writes an ``Enum`` or a ``UUID`` by its value where the standard library
    raises; workflow messages are built from JSON and strings and hold none.
    """
    try:
        body = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        body = b"null"
    if body.find(b"null") < 0:  # not `in`: bytes.__contains__ first tries b"null" as an integer (a TypeError raised)
        return body
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def store(value: Any, bucket: str | None = None) -> dict[str, Any]:
    """Put ``value`` (JSON) in the payload bucket under its SHA-256; returns its reference."""
    body = _dumps(value)
    digest = hashlib.sha256(body).hexdigest()
    bucket = bucket or os.environ.get("PAYLOAD_BUCKET")
    if not bucket:
        raise ConfigurationError("the workflow message is too large and PAYLOAD_BUCKET is not set")
    key = f"{KEY_PREFIX}{digest}"
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return {"bucket": bucket, "key": key, "size": len(body), "sha256": digest}


_STORED_KEY = re.compile(rf"{re.escape(KEY_PREFIX)}[0-9a-f]{{64}}")


def check_ref(ref: Any) -> dict[str, Any]:
    """``ref`` when it can only point at a part :func:`store` wrote; WorkflowPayloadError otherwise (no S3 call).

    The bucket must be the stack's payload bucket (``PAYLOAD_BUCKET``) and the
    key exactly ``workflow/<sha256>`` with the reference's own digest, so a
    reference cannot name a staged file, a provider's object, a parked record
    or anything else the task's role may read.
    """
    if not isinstance(ref, dict) or not all(isinstance(ref.get(k), str) for k in ("bucket", "key", "sha256")):
        raise WorkflowPayloadError(f"not a payload reference: {ref!r}"[:500])
    size = ref.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise WorkflowPayloadError(f"payload reference without a valid size: {ref!r}"[:500])
    bucket = os.environ.get("PAYLOAD_BUCKET")
    if not bucket:
        raise ConfigurationError("PAYLOAD_BUCKET is not set: a stored workflow part cannot be read")
    if ref["bucket"] != bucket:
        raise WorkflowPayloadError(f"payload reference to s3://{ref['bucket'][:100]}/... is not in the payload bucket")
    if not _STORED_KEY.fullmatch(ref["key"]) or ref["key"] != f"{KEY_PREFIX}{ref['sha256']}":
        raise WorkflowPayloadError(f"payload reference key {ref['key'][:200]!r} is not {KEY_PREFIX}<its sha256>")
    return ref


def load(ref: Any) -> Any:
    """The value a reference points at (:func:`check_ref` first), checked against its size and SHA-256."""
    ref = check_ref(ref)
    from botocore.exceptions import ClientError

    try:
        body = aws.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
    except ClientError as exc:
        if aws.is_transient(exc):
            raise
        raise WorkflowPayloadError(f"cannot read s3://{ref['bucket']}/{ref['key']}: {exc}") from None
    if len(body) != ref.get("size") or hashlib.sha256(body).hexdigest() != ref["sha256"]:
        raise WorkflowPayloadError(f"s3://{ref['bucket']}/{ref['key']} does not match its reference")
    return json.loads(body)


def get_part(message: dict[str, Any], section: str, name: str) -> Any:
    """``message[section][name]``, read from the payload bucket when the message holds ``<name>_ref``."""
    part = message.get(section) if isinstance(message, dict) else None
    if not isinstance(part, dict):
        return None
    if part.get(name) is None and part.get(f"{name}_ref") is not None:
        return load(part[f"{name}_ref"])
    return part.get(name)


def set_part(
    message: dict[str, Any],
    section: str,
    name: str,
    value: Any,
    *,
    threshold: int | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """A copy of ``message`` with ``section.name = value``, fitted under the threshold (:func:`fit`)."""
    part = {k: v for k, v in (message.get(section) or {}).items() if k != f"{name}_ref"}
    return fit({**message, section: {**part, name: value}}, threshold=threshold, bucket=bucket)


def fit(message: dict[str, Any], *, threshold: int | None = None, bucket: str | None = None) -> dict[str, Any]:
    """Move the largest inline :data:`PARTS` to the payload bucket until the message is under the threshold."""
    return fit_encoded(message, threshold=threshold, bucket=bucket)[0]


def fit_encoded(
    message: dict[str, Any], *, threshold: int | None = None, bucket: str | None = None
) -> tuple[dict[str, Any], str]:
    """:func:`fit`, also returning the fitted message as the compact JSON text Step Functions gets (encoded once)."""
    limit = offload_threshold() if threshold is None else threshold
    while True:
        body = _dumps(message)
        if len(body) <= limit:
            return message, body.decode("utf-8")
        total = len(body)
        del body  # not held while the parts are measured and stored (a 10,000-file granule: MiBs)
        inline = [
            (size(message[s][n]), s, n)
            for s, n in PARTS
            if isinstance(message.get(s), dict) and message[s].get(n) is not None
        ]
        if not inline:
            raise ConfigurationError(
                f"the workflow message is {total} bytes without its CNM, granules and "
                f"response; the limit is {limit} (collection or provider config too large?)"
            )
        _, section, name = max(inline)
        part = {k: v for k, v in message[section].items() if k != name}
        message = {**message, section: {**part, f"{name}_ref": store(message[section][name], bucket)}}


def cnm(message: dict[str, Any]) -> Any:
    """The CNM notification of a workflow message (``meta.cnm``, inline or stored)."""
    return get_part(message, "meta", "cnm")


def cnm_if_readable(message: dict[str, Any]) -> dict[str, Any]:
    """:func:`cnm` for the steps that must go on when it is unreadable (status, FAILURE response): ``{}`` then."""
    try:
        value = cnm(message)
    except WorkflowPayloadError:
        return {}
    return value if isinstance(value, dict) else {}


def granules(message: dict[str, Any]) -> Any:
    """``payload.granules`` (inline or stored); None before TranslateMessage."""
    return get_part(message, "payload", "granules")


def build_workflow_input(
    cnm: dict[str, Any],
    *,
    rule: dict[str, Any],
    collection: dict[str, Any],
    provider: dict[str, Any],
    stack: str,
    buckets: dict[str, Any],
    state_machine_arn: str,
    execution: str,
    source: dict[str, Any],
    payload_bucket: str | None = None,
    offload_bytes: int | None = None,
) -> tuple[dict[str, Any], str]:
    """The input of a workflow execution for one CNM notification, and its JSON text (encoded once).

    ``source`` describes where the record came from (stream ARN, shard,
    sequence number) so every later step, and every FAILURE response, can be
    traced back to it. The CNM is at ``meta.cnm``, or in ``payload_bucket``
    (default ``PAYLOAD_BUCKET``) with ``meta.cnm_ref`` when the message
    would exceed ``offload_bytes`` (default :func:`offload_threshold`).
    """
    message = {
        "cumulus_meta": {
            "state_machine": state_machine_arn,
            "execution_name": execution,
            "message_source": "kinesis",
            "source": source,
        },
        "meta": {
            "stack": stack,
            "buckets": buckets,
            "collection": collection,
            "provider": provider,
            "rule": {"name": rule["name"], "meta": rule.get("meta", {})},
            "workflow_name": rule.get("workflow_name", ""),
            "cnm": cnm,
        },
        "payload": {},
    }
    return fit_encoded(message, threshold=offload_bytes, bucket=payload_bucket)


def build_workflow_message(cnm: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """:func:`build_workflow_input` without the text."""
    return build_workflow_input(cnm, **kwargs)[0]
