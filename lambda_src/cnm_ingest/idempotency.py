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
:mod:`cnm_ingest.workflow.cnm_response`; see docs/exactly-once.md):

- before the side effect (the in-progress write or the read fails): nothing
  happened, :class:`~cnm_ingest.errors.IdempotencyStoreError` (transient) is
  raised and the caller's event source delivers the work again;
- after it (the success write fails): the side effect HAS happened, so it is
  not an error of the caller's: the success write is tried again a few times
  (:data:`cnm_ingest.idempotency.LATE_SAVE_ATTEMPTS`) and the effect's result is returned either way.
  Raising would make the retry repeat the effect once the in-progress item
  expired. What is left is the documented window: a crash, or a redelivery
  for another reason, after that and past the in-progress expiry.

Every call registers the invocation's Lambda context, so an in-progress item
of a crashed attempt expires with the invocation (its remaining time), not
with the record's TTL. Outside Lambda (the CLI's replay, reingest and
``reconcile --fix``) there is no invocation: the context is an
:class:`OperatorLease` of :data:`OPERATOR_LEASE_SECONDS`, so a command killed
half-way blocks its records for that long, not for days.

Powertools' idempotency package is imported when a side effect first runs
(or the error class is first named), not when this module is: the message
consumer builds a :class:`Once` per invocation but uses it only for bad
records, so a cold start does not pay for it (see README "Performance").
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnm_ingest import aws
from cnm_ingest.errors import IdempotencyStoreError, is_retryable, is_store_error

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

PARK = "cnm-ingest.park"
ANSWER = "cnm-ingest.answer"
ANSWER_BODY = "cnm-ingest.answer-body"  # the FAILURE response itself, fixed before its put (no side effect)
FALLBACK = "cnm-ingest.fallback"
GAP = "cnm-ingest.gap"
RECORD_KEY = "[streamArn, shardId, sequenceNumber]"
DEFAULT_TTL_SECONDS = 8 * 24 * 3600  # longer than the longest stream retention Lambda reads from (7 days)


__all__ = ["ANSWER", "ANSWER_BODY", "FALLBACK", "GAP", "PARK", "IdempotencyAlreadyInProgressError", "Once", "guarded"]


# The success write after a done side effect: tried again this often (botocore's own retries come first).
OPERATOR_LEASE_SECONDS = 300  # an operator command's one side effect finishes well inside it
LATE_SAVE_ATTEMPTS = 3
LATE_SAVE_BACKOFF_SECONDS = 0.2
# Tests replace this to avoid real waiting.
sleep: Callable[[float], None] = time.sleep
log = logging.getLogger(__name__)


def guarded(
    run: Callable[[Callable[[], Any]], Any],
    effect: Callable[[], Any],
    *,
    save: Callable[[Any], None] | None,
    what: str,
) -> Any:
    """``run(tracked)``: Powertools' idempotent call of ``tracked`` (which runs ``effect``), with the store's failures
    sorted by whether the side effect happened.

    A transient store error (:func:`~cnm_ingest.errors.is_store_error`) before ``effect`` returned, or one of a
    ``save=None`` (pure) effect, becomes :class:`IdempotencyStoreError`. One after ``effect`` returned (the
    success write failed) is not raised: ``save(result)`` is tried again up to :data:`LATE_SAVE_ATTEMPTS` times
    and the result is returned. Any other error propagates unchanged.
    """
    ran: list[Any] = []

    def tracked() -> Any:
        result = effect()
        ran.append(result)
        return result

    try:
        return run(tracked)
    except Exception as exc:
        if not is_store_error(exc):
            raise
        if not ran or save is None:
            raise IdempotencyStoreError(f"{what}: {type(exc).__name__}: {exc}") from exc
        save_late(save, ran[0], what, exc)
        return ran[0]


def save_late(save: Callable[[Any], None], result: Any, what: str, first: BaseException) -> bool:
    """Write the success record of a side effect that happened; False (logged) when the store stays down."""
    error: BaseException = first
    for attempt in range(LATE_SAVE_ATTEMPTS):
        sleep(LATE_SAVE_BACKOFF_SECONDS * 2**attempt)
        try:
            save(result)
            return True
        except Exception as exc:
            error = exc
            if not is_retryable(exc):
                break
    log.warning(
        "side effect done but its idempotency record is not saved (a repeat after the in-progress expiry would "
        "repeat it): %s: %s: %s",
        what,
        type(error).__name__,
        error,
    )
    return False


def is_own_write(found: DataRecord | None, attempted: DataRecord) -> bool:
    """True when ``found``, the item under its key that a conditional in-progress write ran into, is that very write.

    DynamoDB applied the write and its answer was lost (a 500 or a timeout after the write, on AWS as in the
    chaos soak), so botocore sent it again and the condition refused the copy: the item is in progress with
    exactly the expiry (seconds) and in-progress expiry (milliseconds, the invocation's deadline) this call
    wrote. Any other attempt (another invocation, a redelivery) has a deadline of its own. Without this, the
    caller met its own item as "already in progress" until its invocation's time ran out (up to the function
    timeout, 300 s for the consumer), past every retry of the event source mapping and of hydrate: the park
    or the answer was never done (bench/chaos_soak at 1,000 records, seeds 2 and 3).
    """
    return (
        found is not None
        and attempted.in_progress_expiry_timestamp is not None
        and found.status == attempted.status == "INPROGRESS"
        and found.expiry_timestamp == attempted.expiry_timestamp
        and found.in_progress_expiry_timestamp == attempted.in_progress_expiry_timestamp
    )


@functools.cache
def _layer_class() -> type[DynamoDBPersistenceLayer]:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemAlreadyExistsError,
        IdempotencyItemNotFoundError,
    )

    class Layer(DynamoDBPersistenceLayer):
        """Powertools' layer; an in-progress write that meets itself (:func:`is_own_write`) has succeeded."""

        def _put_record(self, data_record: DataRecord) -> None:
            try:
                super()._put_record(data_record)
            except IdempotencyItemAlreadyExistsError as exc:
                found = exc.old_data_record
                if found is None:  # no ReturnValuesOnConditionCheckFailure: read it (strongly consistent)
                    try:
                        found = self._get_record(data_record.idempotency_key)
                    except IdempotencyItemNotFoundError:
                        raise exc from None
                if not is_own_write(found, data_record):
                    raise
                log.info(
                    "in-progress write applied, its answer lost: the item is ours (%s)", data_record.idempotency_key
                )

    return Layer


def persistence_layer(**kwargs: Any) -> DynamoDBPersistenceLayer:
    """A Powertools ``DynamoDBPersistenceLayer(**kwargs)`` that knows its own in-progress write (:func:`is_own_write`).

    Powertools is imported on the first call, not when this module is.
    """
    return _layer_class()(**kwargs)


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


class OperatorLease:
    """The Lambda context's stand-in outside Lambda: Powertools asks it only for the time left, and sets an
    in-progress item's expiry from the answer. Each side effect gets the whole lease."""

    def __init__(self, seconds: float = OPERATOR_LEASE_SECONDS):
        self.millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


class Once:
    """Run a side effect at most once per record key, on the table ``table``; ``context``: the invocation's
    Lambda context (none: an :class:`OperatorLease`)."""

    def __init__(self, table: str, context: Any = None, *, ttl: int | None = None):
        self.table = table
        self.ttl = ttl or int(os.environ.get("IDEMPOTENCY_TTL_SECONDS") or DEFAULT_TTL_SECONDS)
        self.context: Any = context if context is not None else OperatorLease()  # duck-typed: the time left
        self._config: IdempotencyConfig | None = None

    @property
    def config(self) -> IdempotencyConfig:
        """The Powertools configuration (built on first use)."""
        if self._config is None:
            from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

            config = IdempotencyConfig(
                event_key_jmespath=RECORD_KEY, raise_on_no_idempotency_key=True, expires_after_seconds=self.ttl
            )
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
