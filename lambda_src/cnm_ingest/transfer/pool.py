"""Bounded concurrent transfers with one shared backoff on throttling (SyncGranule, issue 22).

:func:`run_all` calls a function on every item with at most ``limit`` calls
at once (threads: the work is waiting on S3). Work is handed out as workers
free up, so at most ``limit`` items are in flight and nothing is read ahead:
memory does not grow with the file count beyond the list of results. Each
call runs in a copy of the caller's :mod:`contextvars` context, so the
invocation's provider-read deadline (:func:`cnm_ingest.transfer.confine.provider_reads`)
holds in every worker.

Throttling (``SlowDown``, a 503, or any throttling code botocore gave up
on after its own retries) is answered by one :class:`Backoff` shared by all
workers: the first worker to see it pauses every worker (none starts an S3
step while the pause lasts), the pause doubles with each throttle in a row
up to :data:`Backoff.cap`, and the throttled step is tried again (every step
given to :func:`run_all` is idempotent: it writes one temporary key or the
same target again). After :data:`Backoff.attempts` throttles of one step the
error is raised (a TransientError to the workflow, which retries the task).

On the first failure no new item starts, the items running finish, and the
first error is raised; :class:`~cnm_ingest.errors.PartialTransferError` (its ``done``) tells the caller
which items completed, for cleanup or for continuing later.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from cnm_ingest.errors import ConfigurationError, PartialTransferError

T = TypeVar("T")
R = TypeVar("R")

CONCURRENCY_ENV = "SYNC_CONCURRENCY"
DEFAULT_CONCURRENCY = 32
MAX_CONCURRENCY = 256  # modules/workflow validates the same range
THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "503",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
    }
)


def whole_setting(env: str, from_env: str | None, default: int, low: int, high: int, value: Any = None) -> int:
    """A whole-number setting: ``value``, else ``from_env`` (the environment variable ``env``, read by the caller
    by its literal name: tests/e2e/test_contract.py finds the reads that way), else ``default``; ``low..high``.

    Anything else (a fraction, a bool, text, out of range) is a :class:`ConfigurationError` naming ``env``."""
    raw = value if value is not None else from_env or default
    try:
        number = int(raw)
    except (TypeError, ValueError):
        number = low - 1
    if isinstance(raw, bool) or not low <= number <= high or str(number) != str(raw).strip():
        raise ConfigurationError(f"{env} must be a whole number from {low} to {high}, not {raw!r}")
    return number


def concurrency(value: Any = None) -> int:
    """Transfers at once: ``value``, else ``SYNC_CONCURRENCY``, else :data:`DEFAULT_CONCURRENCY`; 1..MAX."""
    return whole_setting(
        CONCURRENCY_ENV, os.environ.get("SYNC_CONCURRENCY"), DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY, value
    )


def is_throttle(exc: BaseException) -> bool:
    """True for S3's ``SlowDown`` / 503 and the other throttling answers."""
    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
    return code in THROTTLE_CODES or status == 503


@dataclass
class Backoff:
    """One pause shared by every worker: set by a throttle, doubled by the next, eased by a success."""

    base: float = 0.25
    cap: float = 20.0
    attempts: int = 8  # throttles of one step before its error is raised
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    throttles: int = 0  # counted, for logs and tests
    _level: int = field(default=0, init=False)
    _until: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def wait(self) -> None:
        """Return when no pause is in force."""
        while True:
            with self._lock:
                left = self._until - self.clock()
            if left <= 0:
                return
            self.sleep(left)

    def hit(self) -> float:
        """A throttle: pause every worker (``base * 2**n``, at most ``cap``); returns the pause."""
        with self._lock:
            self.throttles += 1
            pause = min(self.cap, self.base * 2**self._level)
            self._level += 1
            self._until = max(self._until, self.clock() + pause)
            return pause

    def ok(self) -> None:
        with self._lock:
            self._level = max(0, self._level - 1)

    def call(self, fn: Callable[[T], R], item: T) -> R:
        """``fn(item)``, waiting out the shared pause first and again after each throttle."""
        for attempt in range(self.attempts):
            self.wait()
            try:
                result = fn(item)
            except ClientError as exc:
                if not is_throttle(exc) or attempt == self.attempts - 1:
                    raise
                self.hit()
                continue
            self.ok()
            return result
        raise AssertionError("unreachable")  # pragma: no cover


def run_all(
    fn: Callable[[T], R],
    items: Sequence[T] | Iterable[T],
    *,
    limit: int,
    backoff: Backoff | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` with at most ``limit`` calls at once, results in the items' order.

    The first error stops new work; the running calls finish; then that error is
    raised (later ones are added to it as notes). ``stop`` (e.g. the invocation's
    time running out) is asked before each new item: once it says True no new item
    starts, and :class:`~cnm_ingest.errors.PartialTransferError` is raised when the running ones finish.
    """
    items = list(items)
    backoff = backoff or Backoff()
    results: list[Any] = [None] * len(items)
    done: set[int] = set()
    if limit <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            if stop is not None and stop():
                raise PartialTransferError(done, results)
            results[i] = backoff.call(fn, item)
            done.add(i)
        return results
    errors: list[BaseException] = []
    stopped = False
    with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="transfer") as pool:
        running: dict[Future[Any], int] = {}
        pending = iter(enumerate(items))
        while True:
            while not errors and not stopped and len(running) < limit:
                nxt = next(pending, None)
                if nxt is None:
                    break
                if stop is not None and stop():
                    stopped = True
                    break
                context = contextvars.copy_context()  # one per task: a Context is entered by one thread at a time
                running[pool.submit(context.run, backoff.call, fn, nxt[1])] = nxt[0]
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                index = running.pop(future)
                exc = future.exception()
                if exc is None:
                    results[index] = future.result()
                    done.add(index)
                else:
                    errors.append(exc)
    if errors:
        first = errors[0]
        for other in errors[1:4]:
            first.add_note(f"also failed meanwhile: {type(other).__name__}: {str(other)[:300]}")
        raise first
    if stopped:
        raise PartialTransferError(done, results)
    return results
