"""CNM messages: decoding, schema validation and field helpers.

Validation uses the published CNM JSON Schema (bundled, see ``schema/``)
through Powertools' validation utility (fastjsonschema underneath). The
published schema is a ``oneOf`` of a notification and a response; we derive
one schema for each, so a response is rejected as a notification and the
other way round, with the error naming the branch that failed.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
from importlib import resources
from typing import Any

from aws_lambda_powertools.utilities.validation import SchemaValidationError, validate

from .errors import CnmValidationError, DecodeError

SCHEMA_FILE = "cnm-schema-1.6.1.json"
SCHEMA_SOURCE = "podaac/cloud-notification-message-schema release 1.6.1 (cumulus_sns_schema.json)"


@functools.lru_cache(maxsize=1)
def published_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("schema", SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _branch(index: int) -> dict[str, Any]:
    schema = copy.deepcopy(published_schema())
    branch = schema.pop("oneOf")[index]
    schema.update(branch)
    return schema


@functools.lru_cache(maxsize=1)
def notification_schema() -> dict[str, Any]:
    return _branch(0)


@functools.lru_cache(maxsize=1)
def response_schema() -> dict[str, Any]:
    return _branch(1)


def _validate(message: Any, schema: dict[str, Any], kind: str) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise CnmValidationError(f"a CNM {kind} must be a JSON object, got {type(message).__name__}")
    try:
        validate(event=message, schema=schema)
    except SchemaValidationError as exc:
        path = getattr(exc, "path", None) or "$"
        if isinstance(path, (list, tuple)):
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
        raise CnmValidationError(f"not a valid CNM {kind}: {getattr(exc, 'validation_message', None) or exc}", str(path)) from None
    return message


def validate_notification(message: Any) -> dict[str, Any]:
    """Return ``message`` if it is a valid CNM notification, else raise CnmValidationError."""
    return _validate(message, notification_schema(), "notification")


def validate_response(message: Any) -> dict[str, Any]:
    """Return ``message`` if it is a valid CNM response, else raise CnmValidationError."""
    return _validate(message, response_schema(), "response")


def decode_json(data: bytes | str) -> Any:
    """Decode UTF-8 JSON bytes with a specific error."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as exc:
        raise DecodeError(f"record data is not UTF-8: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"record data is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def b64decode(data: str) -> bytes:
    """Strict base64 decoding with a specific error."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DecodeError(f"record data is not base64: {exc}") from None


def collection_name(cnm: dict[str, Any]) -> str | None:
    coll = cnm.get("collection")
    if isinstance(coll, dict):
        return coll.get("name")
    return coll if isinstance(coll, str) else None


def collection_version(cnm: dict[str, Any]) -> str | None:
    """The collection version when the CNM carries one (object form, 1.6.1+)."""
    coll = cnm.get("collection")
    if isinstance(coll, dict):
        return coll.get("version")
    return None


def product_files(cnm: dict[str, Any]) -> list[dict[str, Any]]:
    """All files of the product, from ``files`` or flattened from ``filegroups``."""
    product = cnm.get("product") or {}
    if "files" in product:
        return list(product["files"])
    files: list[dict[str, Any]] = []
    for group in product.get("filegroups", []):
        files.extend(group.get("files", []))
    return files


def can_address_response(message: Any) -> bool:
    """True when a (possibly invalid) message carries enough to address a CNM response."""
    return (
        isinstance(message, dict)
        and isinstance(message.get("identifier"), str)
        and collection_name(message) is not None
    )
