"""Pacing StartExecution: a token bucket shared by the pool of concurrent starts, a shared
backoff on throttling, and the invocation's deadline.

Step Functions refills StartExecution tokens at about 300/s (burst 800) per
account and region. :class:`Pacer` absorbs throttling inside the invocation:

- ``rate`` (``START_RATE_LIMIT``, starts per second, 0 = no cap) and ``burst``
  (``START_RATE_BURST``) make a client-side token bucket that every thread of
  the pool draws from, for a deployment that expects sustained throttling
  (a backlog after an outage) or shares the quota with other work;
- a throttled call pauses the whole pool (not only its own thread) for a
  backoff that doubles with each consecutive throttle and resets on success,
  so the pool backs off together instead of hammering the quota;
- one start is tried at most ``START_MAX_ATTEMPTS`` times (default 10) while
  throttled, so a throttle that does not let up ends as a batch item failure
  instead of holding the invocation until its timeout;
- nothing waits past the deadline (the invocation's remaining time minus a
  margin): a start that cannot happen in time raises
  :class:`~cnm_ingest.errors.TransientError`, the record is a batch item
  failure and the event source mapping delivers it again.

``clock`` and ``sleep`` are injectable (and :data:`CLOCK` / :data:`SLEEP` are
the defaults :meth:`Pacer.from_env` uses), so benchmarks run on a scaled clock.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from cnm_ingest.errors import DeadlineError

DEFAULT_MARGIN_SECONDS = 10.0
DEFAULT_MAX_ATTEMPTS = 10
BACKOFF_BASE = 0.025
BACKOFF_MAX = 1.0
CLOCK: Callable[[], float] = time.monotonic
SLEEP: Callable[[float], None] = time.sleep


_SHARED: dict[tuple, Pacer] = {}


class Pacer:
    """Token bucket (optional cap), shared throttling backoff and a deadline for one pool."""

    def __init__(
        self,
        rate: float = 0.0,
        burst: float | None = None,
        deadline: float | None = None,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = float(rate)
        self.max_attempts = max(1, int(max_attempts))
        self.burst = float(burst if burst else max(1.0, self.rate))
        self.deadline = deadline
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()
        self._paused_until = 0.0
        self._throttles = 0

    @classmethod
    def from_env(
        cls,
        context: Any = None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> Pacer:
        clock = clock or CLOCK
        sleep = sleep or SLEEP
        rate = float(os.environ.get("START_RATE_LIMIT") or 0)
        burst = float(os.environ.get("START_RATE_BURST") or 0) or None
        deadline = None
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            remaining = context.get_remaining_time_in_millis() / 1000.0
            margin = float(os.environ.get("START_DEADLINE_MARGIN_SECONDS") or DEFAULT_MARGIN_SECONDS)
            deadline = clock() + max(0.0, remaining - min(margin, remaining / 5))
        attempts = int(os.environ.get("START_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)
        # One bucket per process: invocations of a warm container share it (they run one after another).
        pacer = _SHARED.get((rate, burst, clock, sleep))
        if pacer is None:
            pacer = _SHARED[(rate, burst, clock, sleep)] = cls(rate, burst, clock=clock, sleep=sleep)
        pacer.deadline, pacer.max_attempts = deadline, max(1, attempts)
        return pacer

    def _wait(self, seconds: float) -> None:
        if self.deadline is not None and self.clock() + seconds > self.deadline:
            raise DeadlineError("no time left in this invocation to start the record")
        if seconds > 0:
            self.sleep(seconds)

    def acquire(self) -> None:
        """Wait out the shared pause, then take a token (when capped), within the deadline.

        Tokens are reserved (the bucket may go below zero) and the caller sleeps
        until its token is due, so waiting threads are served in order and no
        thread spins on a token that is a rounding error away.

        Uncapped (``rate`` 0, the default) and not paused, the common case
        takes no lock: :meth:`throttled` only ever moves ``_paused_until``
        forward, and reading one attribute is atomic, so an unlocked read
        sees either the pause or a moment before it, as the locked read of
        :meth:`_acquire` does when it runs just before :meth:`throttled`.
        """
        if self.rate <= 0:
            now = self.clock()
            if self._paused_until <= now:
                if self.deadline is not None and now > self.deadline:
                    raise DeadlineError("no time left in this invocation to start the record")
                return
        self._acquire()

    def _acquire(self) -> None:
        """:meth:`acquire`, every case under the lock."""
        while True:
            with self._lock:
                now = self.clock()
                pause = self._paused_until - now
            if pause <= 0:
                break
            self._wait(pause)
        if self.rate <= 0:
            if self.deadline is not None and self.clock() > self.deadline:
                raise DeadlineError("no time left in this invocation to start the record")
            return
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            due = -self._tokens / self.rate if self._tokens < 0 else 0.0
            if self.deadline is not None and now + due > self.deadline:
                self._tokens += 1  # give the reservation back
                raise DeadlineError("no time left in this invocation to start the record")
        if due > 0:
            self.sleep(due)

    def throttled(self) -> None:
        """A call was throttled: pause the whole pool for a growing, jittered backoff."""
        with self._lock:
            self._throttles += 1
            delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(self._throttles - 1, 10))
            until = self.clock() + delay * (0.5 + random.random() / 2)
            self._paused_until = max(self._paused_until, until)

    def succeeded(self) -> None:
        if self._throttles:
            with self._lock:
                self._throttles = 0
