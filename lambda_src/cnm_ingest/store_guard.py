"""The store's failures around one idempotent side effect, sorted by whether the effect happened.

:func:`guarded` is what :mod:`cnm_ingest.once` (the consumer, fallback consumer and hydrate) and
:mod:`cnm_ingest.delivery` (CnmResponse) wrap their Powertools-idempotent calls in. It reads no
environment: a function imports it without taking on the idempotency table of :class:`cnm_ingest.once.Once`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .errors import IdempotencyStoreError, is_retryable, is_store_error

# The success write after a done side effect: tried again this often (botocore's own retries come first).
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
