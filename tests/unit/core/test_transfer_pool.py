"""SyncGranule's bounded transfers (issue 22) as plain functions: run_all's bound, order, failure and stop;
the shared Backoff on throttling (an injected clock and sleep: no timed test); the concurrency setting;
plan_copy for every size up to S3's 5 TiB; the checksum algorithms S3 computes."""

from __future__ import annotations

import itertools
import threading

import pytest
from botocore.exceptions import ClientError

from cnm_ingest.cnm import checksum
from cnm_ingest.errors import ConfigurationError, PartialTransferError
from cnm_ingest.transfer import plan, pool

GiB, MiB = 1024**3, 1024**2


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "CopyObject")


class Clock:
    """A fake monotonic clock whose sleep advances it (and records every pause)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --- run_all -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 4, 32])
def test_results_in_order_and_never_more_than_the_limit_at_once(limit):
    lock, running, peak = threading.Lock(), [0], [0]
    gate = threading.Barrier(min(limit, 4)) if limit > 1 else None

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if gate is not None and i < 4:
            gate.wait(timeout=30)  # the first four meet: proves they ran at once
        with lock:
            running[0] -= 1
        return i * i

    items = list(range(200))
    assert pool.run_all(work, items, limit=limit) == [i * i for i in items]
    assert 1 <= peak[0] <= limit
    if limit > 1:
        assert peak[0] >= 4


def test_the_first_error_stops_new_work_and_is_raised_after_the_running_ones_finish():
    started: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        if i == 3:
            raise ValueError("file 3 is bad")
        return i

    with pytest.raises(ValueError, match="file 3 is bad"):
        pool.run_all(work, range(10_000), limit=4)
    assert len(started) < 100  # not every item was started after the failure
    assert len(started) == len(set(started))  # none twice


def test_stop_starts_no_new_item_and_reports_what_is_done():
    calls: list[int] = []

    def work(i: int) -> int:
        calls.append(i)
        return i

    with pytest.raises(PartialTransferError) as caught:
        pool.run_all(work, range(10), limit=1, stop=lambda: len(calls) >= 3)
    assert caught.value.done == {0, 1, 2} and calls == [0, 1, 2]


def test_a_worker_keeps_the_callers_context():
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("invocation deadline")
    assert pool.run_all(lambda _: var.get(), range(8), limit=4) == ["invocation deadline"] * 8


# --- the shared backoff ----------------------------------------------------------------------------------


def test_throttles_pause_every_worker_doubling_up_to_the_cap_then_the_step_is_retried():
    clock = Clock()
    backoff = pool.Backoff(base=0.25, cap=1.0, attempts=8, clock=clock, sleep=clock.sleep)
    answers = iter([client_error("SlowDown", 503)] * 4 + ["ok"])

    def step(_):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert backoff.call(step, None) == "ok"
    assert clock.slept == [0.25, 0.5, 1.0, 1.0] and backoff.throttles == 4
    # the next step of any worker waits out the same pause first
    backoff.hit()
    backoff.wait()
    assert clock.slept[-1] == 1.0


def test_a_throttle_that_does_not_end_is_raised_after_the_attempts():
    clock = Clock()
    backoff = pool.Backoff(attempts=3, clock=clock, sleep=clock.sleep)
    calls = []

    def step(_):
        calls.append(1)
        raise client_error("ServiceUnavailable", 503)

    with pytest.raises(ClientError):
        backoff.call(step, None)
    assert len(calls) == 3 and backoff.throttles == 2


def test_other_errors_are_not_retried():
    calls = []

    def step(_):
        calls.append(1)
        raise client_error("AccessDenied", 403)

    with pytest.raises(ClientError):
        pool.Backoff().call(step, None)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("code", "status", "throttle"),
    [
        ("SlowDown", 503, True),
        ("", 503, True),
        ("Throttling", 400, True),
        ("NoSuchKey", 404, False),
        ("InternalError", 500, False),
    ],
)
def test_what_counts_as_throttling(code, status, throttle):
    assert pool.is_throttle(client_error(code, status)) is throttle


@pytest.mark.parametrize("value", [0, -1, 257, "32x", "", True, 1.5, " "])
def test_a_bad_concurrency_is_a_configuration_error(value, monkeypatch):
    monkeypatch.delenv(pool.CONCURRENCY_ENV, raising=False)
    with pytest.raises(ConfigurationError):
        pool.concurrency(value)


def test_concurrency_from_the_environment(monkeypatch):
    monkeypatch.delenv(pool.CONCURRENCY_ENV, raising=False)
    assert pool.concurrency() == pool.DEFAULT_CONCURRENCY
    monkeypatch.setenv(pool.CONCURRENCY_ENV, "8")
    assert pool.concurrency() == 8
    monkeypatch.setenv(pool.CONCURRENCY_ENV, "0")
    with pytest.raises(ConfigurationError):
        pool.concurrency()


# --- plan_copy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5 * GiB - 1])
def test_below_5_gib_one_copy(size):
    p = plan.plan_copy(size)
    assert (p.multipart, p.parts) == (False, 1)


@pytest.mark.parametrize("size", [5 * GiB, 5 * GiB + 1, 100 * GiB, 4 * 1024 * GiB, 5 * 1024 * GiB])
def test_multipart_parts_cover_the_object_within_s3_limits(size):
    p = plan.plan_copy(size)
    ranges = list(p.ranges())
    assert p.multipart and len(ranges) == p.parts <= plan.MAX_PARTS
    assert ranges[0][1] == 0 and ranges[-1][2] == size - 1
    assert all(b[1] == a[2] + 1 for a, b in itertools.pairwise(ranges))  # contiguous, no overlap
    assert all(plan.MIN_PART_SIZE <= e - s + 1 <= plan.MAX_PART_SIZE for _, s, e in ranges[:-1])
    assert [n for n, _, _ in ranges] == list(range(1, p.parts + 1))


def test_a_100_gib_file_is_copied_well_within_the_task_limit():
    p = plan.plan_copy(100 * GiB)
    assert (p.part_size, p.parts, p.streams) == (512 * MiB, 200, 16)
    assert p.seconds(100e6) == pytest.approx(13 * 512 * MiB / 100e6)  # 13 rounds of 16 parts
    assert p.seconds(100e6) < 900 / 8


def test_the_part_size_grows_to_stay_within_10000_parts():
    p = plan.plan_copy(5 * 1024 * GiB, part_size=5 * MiB)
    assert p.parts <= plan.MAX_PARTS and p.part_size >= 5 * 1024 * GiB / plan.MAX_PARTS


@pytest.mark.parametrize("size", [-1, 5 * 1024 * GiB + 1, True, 1.5, "1"])
def test_sizes_s3_cannot_hold_are_refused(size):
    with pytest.raises(ValueError):
        plan.plan_copy(size)


# --- checksums S3 computes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "s3"),
    [
        ("SHA256", "SHA256"),
        ("SHA2", "SHA256"),
        ("sha1", "SHA1"),
        ("SHA1", "SHA1"),
        ("md5", None),
        (None, None),
        ("SHA512", None),
    ],
)
def test_s3_computed_algorithms(kind, s3):
    assert checksum.s3_algorithm(kind) == s3
