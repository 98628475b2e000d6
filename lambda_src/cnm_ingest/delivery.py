"""Deliver a CNM response exactly once, or park it in the DLQ (the CnmResponse step's side effects).

Each side effect (the put on the response stream, the optional topic publish,
the DLQ parking) runs under Powertools idempotency, keyed by the execution
(ARN, else name), the response status and the effect. A Step Functions retry
after a partial success (e.g. the put succeeded, the publish was throttled)
therefore repeats only what did not happen. The records live in the
workflow's status table (``STATUS_TABLE``; no second table) under
``pk = "IDEMPOTENCY#cnm_response"``, ``sk = "<effect>#<hash>"``, and expire
through the table's TTL attribute ``expiration`` after
:data:`EXPIRES_AFTER_SECONDS`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from . import aws, dlq
from . import message as workflow_message
from .errors import TransientError
from .response import put_response

PARTITION = "IDEMPOTENCY#cnm_response"
# Longer than any Step Functions retry schedule of CnmResponse (at most 20 retries, hours at most).
EXPIRES_AFTER_SECONDS = 7 * 24 * 3600
# A saved response larger than this is kept in the payload bucket (DynamoDB items are limited to 400 KB).
INLINE_RESPONSE_BYTES = 64 * 1024
CONFIG = IdempotencyConfig(expires_after_seconds=EXPIRES_AFTER_SECONDS, raise_on_no_idempotency_key=True)


def _put(*, key: dict[str, str], response: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """Put the response; the saved result carries the response itself, so a retry sends exactly what was put."""
    result = put_response(response, stream_arn)
    saved: dict[str, Any] = {"shard_id": result["ShardId"], "sequence_number": result["SequenceNumber"]}
    if workflow_message.size(response) > INLINE_RESPONSE_BYTES:
        saved["response_ref"] = workflow_message.store(response)
    else:
        saved["response"] = response
    return saved


def _publish(*, key: dict[str, str], response: dict[str, Any], topic_arn: str) -> dict[str, str]:
    result = aws.client("sns").publish(
        TopicArn=topic_arn,
        Message=json.dumps(response, separators=(",", ":")),
        MessageAttributes={"status": {"DataType": "String", "StringValue": response["response"]["status"]}},
    )
    return {"message_id": result["MessageId"]}


def _park(*, key: dict[str, str], env: dict[str, Any], queue_url: str) -> dict[str, int]:
    return {"parked": dlq.send([env], queue_url)}


@functools.lru_cache(maxsize=None)
def _once(effect: Callable[..., Any], table: str, client_id: int) -> Callable[..., Any]:
    store = DynamoDBPersistenceLayer(table_name=table, key_attr="pk", sort_key_attr="sk", static_pk_value=PARTITION,
                                     boto3_client=aws.client("dynamodb"))
    return idempotent_function(effect, data_keyword_argument="key", persistence_store=store, config=CONFIG,
                               key_prefix=effect.__name__.strip("_"))


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


def key(execution: dict[str, Any], status: str, effect: str) -> dict[str, str]:
    return {"execution": str(execution.get("id") or execution.get("name") or ""), "status": status, "effect": effect}


def deliver(response: dict[str, Any], execution: dict[str, Any], *, table: str, stream_arn: str,
            topic_arn: str | None = None) -> dict[str, Any]:
    """Put the response on the stream (and publish it to the topic), each at most once per execution and status.

    Returns the response as it was put: on a retry, the one an earlier attempt
    put (not ``response``, whose ``processCompleteTime`` is newer), which is
    also what the topic gets.
    """
    status = response["response"]["status"]
    saved = once(_put, table, key=key(execution, status, "stream"), response=response, stream_arn=stream_arn)
    put = saved["response"] if "response" in saved else workflow_message.load(saved["response_ref"])
    if topic_arn:
        once(_publish, table, key=key(execution, status, "topic"), response=put, topic_arn=topic_arn)
    return put


def park(env: dict[str, Any], execution: dict[str, Any], status: str, *, table: str, queue_url: str) -> None:
    """Send the response envelope to the DLQ, at most once per execution and status."""
    once(_park, table, key=key(execution, status, "dlq"), env=env, queue_url=queue_url)
