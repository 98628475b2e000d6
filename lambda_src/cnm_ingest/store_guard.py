"""The store's failures around one idempotent side effect, sorted by whether the effect happened.

:func:`guarded` is what :mod:`cnm_ingest.once` (the consumer, fallback consumer and hydrate) and
:mod:`cnm_ingest.delivery` (CnmResponse) wrap their Powertools-idempotent calls in. It reads no
environment: a function imports it without taking on the idempotency table of :class:`cnm_ingest.once.Once`.

:func:`persistence_layer` is the DynamoDB persistence layer both use: Powertools' own, which also recognises
its own in-progress write when the answer to it was lost (see :func:`is_own_write`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import IdempotencyStoreError, is_retryable, is_store_error

# The success write after a done side effect: tried again this often (botocore's own retries come first).
LATE_SAVE_ATTEMPTS = 3
LATE_SAVE_BACKOFF_SECONDS = 0.2
# Tests replace this to avoid real waiting.
sleep: Callable[[float], None] = time.sleep
log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord


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
        except Exception as exc:  # noqa: BLE001 - the effect is done; only logged
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
