"""Throttled backlog: 10,000 records against an emulated StartExecution quota, on a scaled clock.

The quota is a token bucket as Step Functions applies it (300/s refill, 800
burst). The event source mapping is emulated: batches of 100, a batch item
failure redelivers from the lowest failed record, a batch still failing after
``maximum_retry_attempts`` (3, the module default) is given up (its records
counted as DLQ). Goal: all started, 0 DLQ, 0 duplicates, drained within
1.15x of the quota's minimum time ((10,000 - 800) / 300 s). The clock runs
``SCALE`` times faster than real time (pacing, backoff, the quota and the
deadline all use it). Rows: with ``START_RATE_LIMIT=300`` (the documented cap)
and without a cap (shared backoff only).

    python bench/consumer_backlog.py [--root OTHER_CHECKOUT]
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import consumer_fakes as fakes

RECORDS = 10_000
REFILL, BURST = 300.0, 800.0
BATCH = 100
MAX_RETRIES = 3
SCALE = 4.0
LIMIT = 1.15


def scaled_clock() -> float:
    return time.monotonic() * SCALE


def scaled_sleep(seconds: float) -> None:
    time.sleep(seconds / SCALE)


def drain(cap: float | None, records: int = RECORDS) -> dict:
    os.environ["START_RATE_LIMIT"] = str(cap or 0)
    os.environ.pop("START_RATE_BURST", None)
    bucket = fakes.TokenBucket(REFILL, BURST, scaled_clock)
    sfn = fakes.FakeStepFunctions(bucket=bucket)
    fakes.Fakes(1, sfn).install()
    try:
        pacing = importlib.import_module("cnm_ingest.consumer.pacing")
        pacing.CLOCK, pacing.SLEEP = scaled_clock, scaled_sleep
    except ImportError:  # a checkout without pacing (main): nothing absorbs throttling
        pass
    handler = fakes.consumer().handler
    pending = fakes.kinesis_records([fakes.notification(i, 1) for i in range(records)], 10**8)
    dlq, invocations, retries = 0, 0, 0
    started_at = scaled_clock()
    with contextlib.redirect_stdout(io.StringIO()):
        while pending:
            batch, attempt = pending[:BATCH], 0
            while batch:
                result = handler({"Records": batch}, fakes.Context())
                invocations += 1
                failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
                if not failed:
                    break
                lowest = min(int(f) for f in failed)
                batch = [r for r in batch if int(r["kinesis"]["sequenceNumber"]) >= lowest]
                attempt += 1
                retries += 1
                if attempt > MAX_RETRIES:  # given up: the on-failure path (hydrate -> DLQ)
                    dlq += len(batch)
                    break
            pending = pending[BATCH:]
    elapsed = scaled_clock() - started_at
    return {
        "elapsed": elapsed,
        "started": len(sfn.names),
        "calls": sfn.calls,
        "dlq": dlq,
        "invocations": invocations,
        "retries": retries,
        "throttled": bucket.throttled,
    }


def run(root: Path | None = None, records: int = RECORDS, quick: bool = False) -> list[dict]:
    records = min(records, 5_000) if quick else records  # a 5,000 backlog still drains within 1.15x at 300/s
    minimum = (records - BURST) / REFILL
    rows = []
    for cap, label in ((REFILL, f"START_RATE_LIMIT={int(REFILL)}"), (None, "no cap")):
        with fakes.session(root or fakes.ROOT):
            r = drain(cap, records)
        # Execution names are deterministic, so a duplicate could only be a name outside the records' own.
        name = (
            f"backlog {records}, {label}: started {r['started']}, DLQ {r['dlq']}, "
            f"duplicates {r['started'] - min(r['started'], records)}, throttled {r['throttled']} (time/min)"
        )
        # A record not started, or given up to the DLQ, misses the goal whatever the time.
        lost = r["started"] < records or r["dlq"] > 0
        rows.append(
            {
                "name": name,
                "value": r["elapsed"],
                "unit": "s (emulated)",
                "limit": f"quota minimum {minimum:.1f} s ({REFILL:.0f}/s, burst {BURST:.0f})",
                "ratio": float("inf") if lost else r["elapsed"] / minimum,
                "goal": f"<= {LIMIT}",
            }
        )
    return rows


if __name__ == "__main__":
    fakes.print_rows(run(fakes.root_from_argv(sys.argv)))
