"""Side effects done once per stream record: Powertools idempotency on DynamoDB.

Parking a record in the DLQ, answering it with a FAILURE response and handing
it to the fallback topic each happen at most once per record, however often
the record is delivered (event source mapping retries, redeliveries after a
transient error on an earlier record, a given-up batch re-read by hydrate).
The key is the record's identity, ``[streamArn, shardId, sequenceNumber]``,
under one prefix per kind of side effect (``cnm-ingest.park`` ...), the same
in every function, so the message consumer, the fallback consumer and hydrate
see each other's work. The table is ``IDEMPOTENCY_TABLE`` (created by
modules/consumer; key ``id``, TTL attribute ``expiration``).

A side effect that raises leaves no record, so a retry does it again; a
record still in progress elsewhere raises
``IdempotencyAlreadyInProgressError``, which callers treat as transient.

When the store itself fails (:func:`guarded`, used here and by
:mod:`cnm_ingest.delivery`; see docs/exactly-once.md):

- before the side effect (the in-progress write or the read fails): nothing
  happened, :class:`~cnm_ingest.errors.IdempotencyStoreError` (transient) is
  raised and the caller's event source delivers the work again;
- after it (the success write fails): the side effect HAS happened, so it is
  not an error of the caller's: the success write is tried again a few times
  (:data:`cnm_ingest.store_guard.LATE_SAVE_ATTEMPTS`) and the effect's result is returned either way.
  Raising would make the retry repeat the effect once the in-progress item
  expired. What is left is the documented window: a crash, or a redelivery
  for another reason, after that and past the in-progress expiry.

Every call registers the invocation's Lambda context, so an in-progress item
of a crashed attempt expires with the invocation (its remaining time), not
with the record's TTL.

Powertools' idempotency package is imported when a side effect first runs
(or the error class is first named), not when this module is: the message
consumer builds a :class:`Once` per invocation but uses it only for bad
records, so a cold start does not pay for it (see README "Performance").
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import aws
from .errors import IdempotencyStoreError, is_retryable
from .store_guard import guarded, persistence_layer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

PARK = "cnm-ingest.park"
ANSWER = "cnm-ingest.answer"
ANSWER_BODY = "cnm-ingest.answer-body"  # the FAILURE response itself, fixed before its put (no side effect)
FALLBACK = "cnm-ingest.fallback"
GAP = "cnm-ingest.gap"
RECORD_KEY = "[streamArn, shardId, sequenceNumber]"
DEFAULT_TTL_SECONDS = 8 * 24 * 3600  # longer than the longest stream retention Lambda reads from (7 days)


__all__ = ["ANSWER", "ANSWER_BODY", "FALLBACK", "GAP", "PARK", "IdempotencyAlreadyInProgressError", "Once", "guarded"]


def __getattr__(name: str) -> Any:
    """``IdempotencyAlreadyInProgressError``, imported when first named (PEP 562)."""
    if name == "IdempotencyAlreadyInProgressError":
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

        return IdempotencyAlreadyInProgressError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _layer(table: str, kind: str) -> DynamoDBPersistenceLayer:
    # One persistence layer per kind: Powertools keeps the key prefix on the layer object.
    return persistence_layer(table_name=table, boto3_client=aws.client("dynamodb"))


def reset() -> None:
    _layer.cache_clear()


def record_key(record: dict[str, Any]) -> dict[str, Any]:
    """The identity of a stream record (``record`` in the envelope shape)."""
    return {
        "streamArn": record.get("streamArn"),
        "shardId": record.get("shardId"),
        "sequenceNumber": record.get("sequenceNumber"),
    }


class Once:
    """Run a side effect at most once per record key, on the table ``table``."""

    def __init__(self, table: str, context: Any = None, *, ttl: int | None = None):
        self.table = table
        self.ttl = ttl or int(os.environ.get("IDEMPOTENCY_TTL_SECONDS") or DEFAULT_TTL_SECONDS)
        self.context = context
        self._config: IdempotencyConfig | None = None

    @property
    def config(self) -> IdempotencyConfig:
        """The Powertools configuration (built on first use)."""
        if self._config is None:
            from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

            config = IdempotencyConfig(
                event_key_jmespath=RECORD_KEY, raise_on_no_idempotency_key=True, expires_after_seconds=self.ttl
            )
            if self.context is not None:
                config.register_lambda_context(self.context)
            self._config = config
        return self._config

    @classmethod
    def from_env(cls, context: Any = None) -> Once:
        return cls(aws.env("IDEMPOTENCY_TABLE"), context)

    def run(
        self,
        kind: str,
        key: dict[str, Any],
        effect: Callable[[], Any],
        *,
        key_path: str | None = None,
        pure: bool = False,
    ) -> Any:
        """``effect()`` unless it already completed for ``key`` (then its saved result).

        Store failures as :func:`guarded` sorts them; ``pure``: ``effect`` has no side effect (its saved result
        is the point), so a failed success write raises too.
        """
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        config = self.config
        if key_path:
            config = IdempotencyConfig(
                event_key_jmespath=key_path,
                raise_on_no_idempotency_key=True,
                expires_after_seconds=self.config.expires_after_seconds,
                lambda_context=self.config.lambda_context,
            )

        layer = _layer(self.table, kind)

        def call(tracked: Callable[[], Any]) -> Any:
            def do(data: dict[str, Any]) -> Any:
                return tracked()

            return idempotent_function(
                do, data_keyword_argument="data", persistence_store=layer, config=config, key_prefix=kind
            )(data=key)

        def save(result: Any) -> None:
            layer.save_success(data=key, result=result)

        return guarded(call, effect, save=None if pure else save, what=f"{kind} {key}")

    def done(self, kind: str, key: dict[str, Any]) -> bool:
        """True when the side effect ``kind`` completed for ``key`` (no side effect of its own)."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

        layer = _layer(self.table, kind)
        layer.configure(self.config, key_prefix=kind)
        try:
            found = layer.get_record(key)
            return found is not None and found.status == "COMPLETED" and not found.is_expired
        except IdempotencyItemNotFoundError:
            return False
        except Exception as exc:
            if is_retryable(exc):
                raise IdempotencyStoreError(f"reading {kind} {key}: {type(exc).__name__}: {exc}") from exc
            raise
