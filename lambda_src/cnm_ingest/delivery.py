"""Deliver a CNM response exactly once, or park it in the DLQ (the CnmResponse step's side effects).

Each side effect (the put on each response stream, the publish to each
response topic, the DLQ parking) runs under Powertools idempotency, keyed by
the execution (ARN, else name), the response status, the effect and the
destination ARN. A Step Functions retry after a partial success (e.g. the put
succeeded, the publish was throttled) therefore repeats only what did not
happen, on each destination. The records live in the
workflow's status table (``STATUS_TABLE``; no second table) under
``pk = "IDEMPOTENCY#cnm_response"``, ``sk = "<effect>#<hash>"``, and expire
through the table's TTL attribute ``expiration`` after
:data:`EXPIRES_AFTER_SECONDS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from . import aws, dlq
from . import message as workflow_message
from . import response as response_mod
from .errors import TransientError

PARTITION = "IDEMPOTENCY#cnm_response"
# Longer than any Step Functions retry schedule of CnmResponse (at most 20 retries, hours at most).
EXPIRES_AFTER_SECONDS = 7 * 24 * 3600
# A saved response larger than this is kept in the payload bucket (DynamoDB items are limited to 400 KB).
INLINE_RESPONSE_BYTES = 64 * 1024
CONFIG = IdempotencyConfig(expires_after_seconds=EXPIRES_AFTER_SECONDS, raise_on_no_idempotency_key=True)


def _saved(response: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The effect's result with the response itself, so a retry sends exactly what was sent."""
    if workflow_message.size(response) > INLINE_RESPONSE_BYTES:
        return {**result, "response_ref": workflow_message.store(response)}
    return {**result, "response": response}


def _put(*, key: dict[str, str], response: dict[str, Any], arn: str, cnm: Any) -> dict[str, Any]:
    result = response_mod.put_response(response, arn)
    return _saved(response, {"shard_id": result["ShardId"], "sequence_number": result["SequenceNumber"]})


def _publish(*, key: dict[str, str], response: dict[str, Any], arn: str, cnm: Any) -> dict[str, Any]:
    """Publish with PO.DAAC's message attributes (CNM_RESPONSE_STATUS, COLLECTION, DATA_VERSION, ...)."""
    result = response_mod.publish_response(response, arn, response_mod.message_attributes(response, cnm))
    return _saved(response, {"message_id": result["MessageId"]})


def _park(*, key: dict[str, str], env: dict[str, Any], queue_url: str) -> dict[str, int]:
    return {"parked": dlq.send([env], queue_url)}


@functools.cache
def _once(effect: Callable[..., Any], table: str, client_id: int) -> Callable[..., Any]:
    store = DynamoDBPersistenceLayer(
        table_name=table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=PARTITION,
        boto3_client=aws.client("dynamodb"),
    )
    return idempotent_function(
        effect,
        data_keyword_argument="key",
        persistence_store=store,
        config=CONFIG,
        key_prefix=effect.__name__.strip("_"),
    )


def once(effect: Callable[..., Any], table: str, **kwargs: Any) -> Any:
    """Run ``effect(**kwargs)`` unless it already succeeded for ``kwargs["key"]``; then return its saved result.

    An attempt still in progress (a concurrent or crashed invocation whose
    Lambda time has not run out) is a :class:`TransientError`, so Step
    Functions retries later.
    """
    try:
        return _once(effect, table, id(aws.client("dynamodb")))(**kwargs)
    except IdempotencyAlreadyInProgressError as exc:
        raise TransientError(f"the same response side effect is in progress: {exc}") from exc


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

    Returns the response as it was sent: on a retry, the one an earlier
    attempt sent first (not ``response``, whose ``processCompleteTime`` is
    newer), which is also what every later destination gets. ``cnm`` is the
    notification, for the SNS message attributes.
    """
    status = response["response"]["status"]
    sent = response
    for i, arn in enumerate(dict.fromkeys(destinations)):
        kind = response_mod.destination_kind(arn)
        effect = _put if kind == "kinesis" else _publish
        saved = once(effect, table, key=key(execution, status, kind, arn), response=sent, arn=arn, cnm=cnm)
        if i == 0:
            sent = saved["response"] if "response" in saved else workflow_message.load(saved["response_ref"])
    return sent


def park(env: dict[str, Any], execution: dict[str, Any], status: str, *, table: str, queue_url: str) -> None:
    """Send the response envelope to the DLQ, at most once per execution and status."""
    once(_park, table, key=key(execution, status, "dlq"), env=env, queue_url=queue_url)
