"""Deliver a CNM response exactly once, or park it in the DLQ (the CnmResponse step's side effects).

Each side effect (the put on each response stream, the publish to each
response topic, the DLQ parking) runs under Powertools idempotency, keyed by
the execution (ARN, else name), the response status, the effect and the
destination ARN. A Step Functions retry after a partial success (e.g. the put
succeeded, the publish was throttled) therefore repeats only what did not
happen, on each destination. The records live in the
stack's idempotency table (``IDEMPOTENCY_TABLE``, the one the consumers' once-per-record
records use) under ``id = "cnm-response.<effect>#<hash>"`` (:data:`KEY_PREFIX`), and expire
through the table's TTL attribute ``expiration`` after
:data:`EXPIRES_AFTER_SECONDS`.

The response itself is fixed once per execution and status before anything
is sent (:func:`pinned`), so every destination, every retry and a parking get
the same bytes. A failure of the store is never a reason to park or to answer
FAILURE: before a side effect it is an
:class:`~cnm_ingest.errors.IdempotencyStoreError`, which the state machine
retries; after one it is written late and the side effect counts as done
(:func:`cnm_ingest.idempotency.guarded`). A response delivered to any destination is
never parked (:func:`park`). docs/exactly-once.md names what is left.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

from cnm_ingest import aws, dlq
from cnm_ingest.cnm import response_message
from cnm_ingest.errors import IdempotencyStoreError, WorkflowError, is_retryable
from cnm_ingest.idempotency import guarded, persistence_layer
from cnm_ingest.workflow import payload, task

log = Logger(child=True)
# The records' ids start "cnm-response.<effect>#" (the consumers' start "cnm-ingest.<kind>#").
KEY_PREFIX = "cnm-response."
# Longer than any Step Functions retry schedule of CnmResponse (at most 20 retries, hours at most).
EXPIRES_AFTER_SECONDS = 7 * 24 * 3600
# A saved response larger than this is kept in the payload bucket (DynamoDB items are limited to 400 KB).
INLINE_RESPONSE_BYTES = 64 * 1024
CONFIG = IdempotencyConfig(expires_after_seconds=EXPIRES_AFTER_SECONDS, raise_on_no_idempotency_key=True)


def _saved(response: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The effect's result with the response itself, so a retry sends exactly what was sent."""
    if payload.size(response) > INLINE_RESPONSE_BYTES:
        return {**result, "response_ref": payload.store(response)}
    return {**result, "response": response}


def _put(*, key: dict[str, str], response: dict[str, Any], arn: str, cnm: Any) -> dict[str, Any]:
    result = response_message.put_response(response, arn)
    return _saved(response, {"shard_id": result["ShardId"], "sequence_number": result["SequenceNumber"]})


def _publish(*, key: dict[str, str], response: dict[str, Any], arn: str, cnm: Any) -> dict[str, Any]:
    """Publish with PO.DAAC's message attributes (CNM_RESPONSE_STATUS, COLLECTION, DATA_VERSION, ...)."""
    result = response_message.publish_response(response, arn, response_message.message_attributes(response, cnm))
    return _saved(response, {"message_id": result["MessageId"]})


def _pin(*, key: dict[str, str], response: dict[str, Any]) -> dict[str, Any]:
    """The response every destination (and a parking) gets for this execution and status: the first one built.

    No side effect: the result saved by Powertools is the point. ``processCompleteTime`` and the other
    fields of the response are fixed here, before any put or publish, so a repeat of a put (the window of
    docs/exactly-once.md) carries the same bytes and partition key as the first. Kept as its JSON text:
    Powertools saves results with sorted keys, and the text keeps the response's own field order.
    """
    text = json.dumps(response, separators=(",", ":"))
    if len(text) > INLINE_RESPONSE_BYTES:
        return {"response_ref": payload.store(response)}
    return {"response_text": text}


def _response(saved: dict[str, Any]) -> dict[str, Any]:
    if "response_text" in saved:
        return cast(dict[str, Any], json.loads(saved["response_text"]))
    return saved["response"] if "response" in saved else payload.load(saved["response_ref"])


def pinned(response: dict[str, Any], execution: dict[str, Any], *, table: str) -> dict[str, Any]:
    """``response``, or the one an earlier attempt of this execution built for the same status (see :func:`_pin`)."""
    status = response["response"]["status"]
    return _response(once(_pin, table, pure=True, key=key(execution, status, "response"), response=response))


def _park(*, key: dict[str, str], env: dict[str, Any], queue_url: str) -> dict[str, int]:
    return {"parked": dlq.send([env], queue_url)}


@functools.cache
def _store(prefix: str, table: str, client_id: int) -> DynamoDBPersistenceLayer:
    # One persistence layer per effect: Powertools keeps the key prefix on the layer object.
    return persistence_layer(table_name=table, boto3_client=aws.client("dynamodb"))


def _layer(effect: Callable[..., Any], table: str) -> tuple[DynamoDBPersistenceLayer, str]:
    prefix = KEY_PREFIX + effect.__name__.strip("_")
    return _store(prefix, table, id(aws.client("dynamodb"))), prefix


def once(effect: Callable[..., Any], table: str, *, pure: bool = False, **kwargs: Any) -> Any:
    """Run ``effect(**kwargs)`` unless it already succeeded for ``kwargs["key"]``; then return its saved result.

    The idempotency store's failures are sorted by :func:`cnm_ingest.idempotency.guarded`: before the effect (or for
    a ``pure`` effect, one without a side effect) an :class:`~cnm_ingest.errors.IdempotencyStoreError`, which
    Step Functions retries (its own Retry entry); after the effect the result, its record written late. An
    attempt still in progress (a concurrent or crashed invocation whose Lambda time has not run out) is an
    IdempotencyStoreError too.
    """
    store, prefix = _layer(effect, table)

    def call(tracked: Callable[[], Any]) -> Any:
        def run(**_: Any) -> Any:
            return tracked()

        wrapped = idempotent_function(
            run, data_keyword_argument="key", persistence_store=store, config=CONFIG, key_prefix=prefix
        )
        return wrapped(**kwargs)

    def save(result: Any) -> None:
        store.save_success(data=kwargs["key"], result=result)

    return guarded(call, lambda: effect(**kwargs), save=None if pure else save, what=f"{prefix} {kwargs.get('key')}")


def completed(effect: Callable[..., Any], table: str, key: dict[str, str]) -> bool:
    """True when ``effect`` completed for ``key`` (a read; no side effect). Store errors are IdempotencyStoreError."""
    store, prefix = _layer(effect, table)
    store.configure(CONFIG, key_prefix=prefix)
    try:
        found = store.get_record(data=key)
    except IdempotencyItemNotFoundError:
        return False
    except Exception as exc:
        if is_retryable(exc):
            raise IdempotencyStoreError(f"reading {prefix} {key}: {type(exc).__name__}: {exc}") from exc
        raise
    return found is not None and found.status == "COMPLETED"


def key(execution: dict[str, Any], status: str, effect: str, destination: str | None = None) -> dict[str, str]:
    out = {"execution": str(execution.get("id") or execution.get("name") or ""), "status": status, "effect": effect}
    if destination is not None:
        out["destination"] = destination
    return out


def deliver(
    response: dict[str, Any], execution: dict[str, Any], *, table: str, destinations: list[str], cnm: Any = None
) -> dict[str, Any]:
    """Send the response to each destination (Kinesis stream or SNS topic ARN, in order), each at most once per
    execution, status and destination.

    Returns the response as it was sent: the one pinned for the execution
    and status (:func:`pinned`; on a retry the one an earlier attempt built,
    not ``response``, whose ``processCompleteTime`` is newer), the same on
    every destination. ``cnm`` is the
    notification, for the SNS message attributes.
    """
    status = response["response"]["status"]
    sent = pinned(response, execution, table=table)
    for arn in dict.fromkeys(destinations):
        kind = response_message.destination_kind(arn)
        once(_effect(kind), table, key=key(execution, status, kind, arn), response=sent, arn=arn, cnm=cnm)
    return sent


def _effect(kind: str) -> Callable[..., Any]:
    return _put if kind == "kinesis" else _publish


def delivered_to(execution: dict[str, Any], status: str, *, table: str, destinations: list[str]) -> list[str]:
    """The destinations whose put or publish of this execution's ``status`` response completed."""
    out = []
    for arn in dict.fromkeys(destinations):
        kind = response_message.destination_kind(arn)
        if completed(_effect(kind), table, key(execution, status, kind, arn)):
            out.append(arn)
    return out


def park_envelope(
    env: dict[str, Any],
    execution: dict[str, Any],
    status: str,
    *,
    table: str,
    queue_url: str,
    destinations: list[str] | None = None,
) -> list[str]:
    """Send the response envelope to the DLQ, at most once per execution and status, unless it was delivered.

    Returns the ``destinations`` the response was already delivered to: when there is one, nothing is parked
    (a delivered response is never parked; the DLQ is for responses nobody got).
    """
    done = delivered_to(execution, status, table=table, destinations=destinations or [])
    if not done:
        once(_park, table, key=key(execution, status, "dlq"), env=env, queue_url=queue_url)
    return done


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
    cnm = addressable(payload.cnm_if_readable(message), message, execution)
    received = meta.get("received_time") or execution.get("start_time")
    exception = message.get("exception")
    error = task.original_error(exception) if exception else None
    if error:
        response = response_message.build_response(
            cnm,
            status="FAILURE",
            received_time=received,
            error_code=error["errorCode"],
            error_message=error["errorMessage"],
        )
    else:
        granules = payload.granules(message) or []  # read once, also when kept in the payload bucket
        product = response_message.response_product(granules, cnm, os.environ.get("DISTRIBUTION_ENDPOINT") or None)
        extra = response_message.ingestion_metadata_from({"meta": meta, "payload": {"granules": granules}})
        response = response_message.build_response(
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
    response = deliver(
        response,
        execution,
        table=table or aws.env("IDEMPOTENCY_TABLE"),
        destinations=destinations,
        cnm=payload.cnm_if_readable(message),
    )
    log.info("CNM response sent", extra={"identifier": response["identifier"], "response": response["response"]})
    if error:
        raise WorkflowError(json.dumps(error, separators=(",", ":")))
    return payload.set_part(message, "meta", "cnm_response", response)


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
    response = pinned(response_for(message, execution)[0], execution, table=table)
    error_type, reason = task.parse_exception(message.get("response_exception"))
    meta = message.get("cumulus_meta") or {}
    context = {
        "execution_arn": execution.get("id") or "",
        "execution_name": execution.get("name") or "",
        "state_machine_arn": execution.get("state_machine") or "",
        "source": meta.get("source"),
    }
    env = dlq.response_envelope(response, f"{error_type}: {reason}"[:4096], error_type, failure_context=context)
    delivered = park_envelope(
        env, execution, response["response"]["status"], table=table, queue_url=queue_url, destinations=destinations
    )
    out = {k: v for k, v in message.items() if k != "response_exception"}
    if delivered:
        log.error(
            "CNM response not parked: it was delivered",
            extra={"identifier": response["identifier"], "delivered_to": delivered, "reason": reason[:1000]},
        )
        return out
    log.error("CNM response parked in the DLQ", extra={"identifier": response["identifier"], "reason": reason[:1000]})
    out["response_parked"] = True
    if not out.get("exception"):
        cause = json.dumps({"errorType": "ResponseNotDelivered", "errorMessage": f"{error_type}: {reason}"[:4096]})
        out["exception"] = {"Error": "ResponseNotDelivered", "Cause": cause}
    return out


def respond_step(message: task.Message, execution: task.Execution) -> task.Message:
    return respond(
        message,
        execution,
        stream_arn=aws.env("RESPONSE_STREAM_ARN"),
        topic_arn=os.environ.get("RESPONSE_TOPIC_ARN") or None,
        extra_destinations=response_message.destinations_from_env(),
    )


def park_step(message: task.Message, execution: task.Execution) -> task.Message:
    return park(message, execution, queue_url=aws.env("DLQ_URL"), destinations=response_message.destinations_from_env())
