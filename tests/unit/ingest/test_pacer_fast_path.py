"""Pacer.acquire's lock-free shortcut (uncapped, not paused) gives what the locked path gives, in every state."""

from __future__ import annotations

import itertools

import pytest

from cnm_ingest.consumer.pacing import Pacer
from cnm_ingest.errors import DeadlineError

NOW = 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _pacer(rate: float, paused_until: float, deadline: float | None, throttles: int) -> tuple[Pacer, Clock]:
    clock = Clock()
    pacer = Pacer(rate=rate, burst=2 if rate else None, deadline=deadline, clock=clock, sleep=clock.sleep)
    pacer._paused_until, pacer._throttles = paused_until, throttles
    return pacer, clock


def _run(pacer: Pacer, clock: Clock, method: str) -> tuple:
    outcome = "returned"
    try:
        for _ in range(3):
            getattr(pacer, method)()
    except DeadlineError as exc:
        outcome = f"DeadlineError: {exc}"
    return outcome, clock.now, clock.sleeps, pacer._paused_until, pacer._tokens, pacer._throttles


STATES = list(
    itertools.product(
        (0.0, -1.0, 5.0),  # rate: uncapped (the shortcut), a negative rate (uncapped too), capped
        (0.0, NOW - 1, NOW, NOW + 0.25),  # paused until: never, over, ending now, still paused
        (None, NOW - 1, NOW, NOW + 0.1, NOW + 100),  # deadline
        (0, 3),  # consecutive throttles
    )
)


@pytest.mark.parametrize(("rate", "paused_until", "deadline", "throttles"), STATES)
def test_acquire_gives_what_the_locked_path_gives(rate, paused_until, deadline, throttles):
    fast = _run(*_pacer(rate, paused_until, deadline, throttles), "acquire")
    general = _run(*_pacer(rate, paused_until, deadline, throttles), "_acquire")
    assert fast == general


def test_the_shortcut_is_taken_only_when_uncapped_and_not_paused(monkeypatch):
    calls = []
    pacer, _clock = _pacer(0.0, 0.0, NOW + 100, 0)
    monkeypatch.setattr(pacer, "_acquire", lambda: calls.append("locked"))
    pacer.acquire()
    assert calls == []
    pacer._paused_until = NOW + 1  # a throttle paused the pool: the locked path waits it out
    pacer.acquire()
    assert calls == ["locked"]
    capped, _ = _pacer(5.0, 0.0, None, 0)
    monkeypatch.setattr(capped, "_acquire", lambda: calls.append("capped"))
    capped.acquire()
    assert calls == ["locked", "capped"]


def test_a_throttle_seen_by_the_shortcut_pauses_the_next_start():
    pacer, clock = _pacer(0.0, 0.0, NOW + 100, 0)
    pacer.acquire()
    pacer.throttled()
    pacer.acquire()
    assert clock.sleeps and clock.sleeps[0] > 0
    assert clock.now >= pacer._paused_until
