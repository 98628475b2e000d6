"""Plumbing shared by the workflow tasks (TranslateMessage ... StopStatus).

The state machine passes every task ``{"message": <workflow message>,
"execution": {id, name, start_time, state, state_machine}}`` (built with
``Parameters`` from ``$`` and the context object ``$$``), and the task returns
the updated workflow message, which becomes the state output. A task invoked
directly with a bare workflow message works too (``execution`` is then read
from ``cumulus_meta``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cnm_ingest import aws
from cnm_ingest.errors import TransientError
from cnm_ingest.workflow import contract_check

Message = dict[str, Any]
Execution = dict[str, Any]
MAX_ERROR_CHARS = 8192


def unwrap(event: dict[str, Any]) -> tuple[Message, Execution]:
    """Split a task event into the workflow message and the execution context."""
    if not isinstance(event, dict):
        raise TypeError(f"a task event must be a JSON object, got {type(event).__name__}")
    if isinstance(event.get("message"), dict):
        message, execution = event["message"], dict(event.get("execution") or {})
    else:
        message, execution = event, {}
    meta = message.get("cumulus_meta") or {}
    execution.setdefault("name", meta.get("execution_name", ""))
    execution.setdefault("state_machine", meta.get("state_machine", ""))
    execution.setdefault("id", "")
    execution.setdefault("start_time", None)
    return message, execution


def run(event: dict[str, Any], step: Callable[[Message, Execution], Message]) -> Message:
    """Run one task step; a transient AWS error becomes :class:`TransientError`.

    Step Functions retries ``TransientError`` (see the state machine's Retry
    blocks); every other exception keeps its class name as the Step Functions
    error name, which the Catch blocks route to CnmResponse. Under
    ``CONTRACT_VALIDATION`` the task event, the input and the output are checked
    against the step's schemas (:mod:`cnm_ingest.workflow.contract_check`).
    """
    message, execution = unwrap(event)
    contract = contract_check.step_of(event)  # checked under CONTRACT_VALIDATION (default off)
    try:
        contract_check.check(contract, "config", event)
        contract_check.check(contract, "input", message)
        out = step(message, execution)
        contract_check.check(contract, "output", out)
    except Exception as exc:
        if aws.is_transient(exc):
            raise bounded(TransientError(f"{type(exc).__name__}: {exc}")) from exc
        bounded(exc)
        raise
    return out


def bounded(exc: BaseException) -> BaseException:
    """``exc`` with its message cut to :data:`MAX_ERROR_CHARS`.

    Step Functions puts the error into the next state's input (``$.exception``);
    an unbounded message (e.g. quoting a huge CNM value) could push that input
    over 256 KiB, and ``States.DataLimitExceeded`` is not caught by
    ``States.ALL``: the record would be neither answered nor parked.
    """
    text = str(exc)
    if len(text) > MAX_ERROR_CHARS:
        exc.args = (f"{text[:MAX_ERROR_CHARS]}... [{len(text) - MAX_ERROR_CHARS} more characters]",)
    return exc


def parse_exception(exception: Any) -> tuple[str, str]:
    """``(error type, error message)`` from a Step Functions ``{"Error", "Cause"}``.

    A Lambda error's Cause is a JSON string ``{"errorMessage", "errorType",
    "stackTrace"}``; other errors (States.*) carry plain text.
    """
    if not isinstance(exception, dict):
        return "UnknownError", str(exception)
    error = str(exception.get("Error") or "UnknownError")
    cause = exception.get("Cause")
    message = cause if isinstance(cause, str) else json.dumps(cause)
    decoded = json_object(cause)
    if decoded is not None:
        message = str(decoded.get("errorMessage") or decoded.get("errorType") or cause)
    return error, message or error


def json_object(text: Any) -> dict[str, Any] | None:
    """``text`` decoded when it is a JSON object (string), else None."""
    if not isinstance(text, str):
        return None
    try:
        decoded = json.loads(text)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def original_error(exception: Any) -> dict[str, str]:
    """The error that failed the workflow, seen through a CnmResponse WorkflowError.

    Returns ``{"Error", "errorCode", "errorMessage"}``.
    """
    from cnm_ingest.errors import error_code_for

    error, message = parse_exception(exception)
    if error == "WorkflowError":
        inner = json_object(message)
        if inner is not None and "Error" in inner:
            return {
                "Error": str(inner["Error"]),
                "errorCode": str(inner.get("errorCode") or error_code_for(str(inner["Error"]))),
                "errorMessage": str(inner.get("errorMessage") or ""),
            }
    return {"Error": error, "errorCode": error_code_for(error), "errorMessage": message}


def _config(entry: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(entry, its nested config)`` for ``{..., "config": {...} or JSON string}``; config None when flattened."""
    if not isinstance(entry, dict):
        return {}, None
    config = entry.get("config")
    if isinstance(config, str):
        config = json_object(config)
    return entry, config if isinstance(config, dict) else None


def collection_config(meta: dict[str, Any]) -> dict[str, Any]:
    """The collection's config from ``meta.collection``.

    Accepts both ``{"name", "version", "config": {...}}`` and the flattened
    ``{"name", "version", <config keys>}`` form.
    """
    collection, config = _config(meta.get("collection") or {})
    return config if config is not None else collection


def provider_config(meta: dict[str, Any]) -> dict[str, Any]:
    """The provider's config from ``meta.provider``.

    Accepts ``{"id", "config": {...}}`` (``config`` may be a JSON string) and
    the flattened ``{"id", <config keys>}`` form :mod:`cnm_ingest.consumer.rulebook` builds.
    """
    provider, config = _config(meta.get("provider") or {})
    return {**config, "id": provider.get("id")} if config is not None else provider
