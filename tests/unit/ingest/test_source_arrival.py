"""``cumulus_meta.source.arrival``: the record's arrival on the stream, the same text for every path that
starts its execution (the Lambda event's float seconds, boto3's datetime in hydrate, replay and ``reconcile
--fix``), so the deterministic execution gets the same input whoever starts it."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from cnm_ingest import executions
from cnm_ingest import reconcile as rec
from cnm_ingest.consumer import consume


def record(arrival: object) -> consume.SourceRecord:
    return consume.SourceRecord(
        "",
        "49590338271490256608559692538361571095921575989136588898",
        "pk",
        "shardId-0",
        "arn:aws:kinesis:us-west-2:123456789012:stream/p-notifications",
        approximateArrivalTimestamp=arrival,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 7, 1, 2, 3, 987000, tzinfo=UTC),
        datetime(2026, 12, 7, 1, 2, 3, 1000, tzinfo=UTC),
        datetime(2026, 12, 7, 1, 2, 3, 999000, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 14, 8, 5000, tzinfo=UTC),
    ],
)
def test_every_path_gives_the_same_arrival_text(moment):
    as_lambda_event = float(f"{moment.timestamp():.3f}")  # the Kinesis event's approximateArrivalTimestamp
    as_boto3 = moment.timestamp()  # hydrate, replay: ApproximateArrivalTimestamp.timestamp()
    seen = rec.Seen("arn:s", "shardId-0", "1", moment, b"{}")  # reconcile --fix
    texts = {record(as_lambda_event).source()["arrival"], record(as_boto3).source()["arrival"]}
    texts.add(seen.source_record().source()["arrival"])
    assert texts == {moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"}
    assert texts == {executions.iso(moment)}  # the store's own format: reconcile parses both alike


@pytest.mark.parametrize(
    "arrival", [None, math.nan, math.inf, -math.inf, True, "2026-12-07T01:02:03Z", 1e300, -1.0, 253402300800.0]
)
def test_no_arrival_or_a_hostile_one_is_left_out(arrival):
    source = record(arrival).source()
    assert "arrival" not in source
    assert source["sequence_number"] == "49590338271490256608559692538361571095921575989136588898"


class Seconds(float):
    """A float subclass (numpy's float64 is one): taken as a float."""


class Whole(int):
    """An int subclass: taken as an int."""


def arrival_as_written_before(arrival: object) -> str | None:
    """The arrival text as ``source`` wrote it before its fast path (isinstance checks, math.isfinite, f-string)."""
    if isinstance(arrival, (int, float)) and not isinstance(arrival, bool) and math.isfinite(arrival):
        seconds, millis = divmod(round(arrival * 1000), 1000)
        if 0 <= seconds < 253_402_300_800:
            return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
    return None


EDGES = [
    0,
    0.0,
    -0.0,
    -0.0004,  # rounds to 0 ms: 1970-01-01T00:00:00.000Z
    -0.0005,
    -0.0006,
    -0.9,
    -1,
    -1.0,
    -1.0001,
    5e-324,
    0.0005,
    0.0015,
    0.9995,
    1700000000.0,
    1700000000.0005,
    1700000000.9995,
    1700000000.9999,
    1700000000,
    253402300799.999,
    253402300799.9994,
    253402300799.9996,  # rounds into year 10000: left out
    253402300800,
    253402300800.0,
    2**53 + 0.0,
    10**30,
    -(10**30),
    Seconds(1700000000.123),
    Whole(1700000000),
    math.nan,
    -math.nan,
    math.inf,
    False,
]


@pytest.mark.parametrize("arrival", EDGES)
def test_the_arrival_text_is_what_it_was_at_every_edge(arrival):
    assert record(arrival).source().get("arrival") == arrival_as_written_before(arrival)


def test_the_arrival_text_is_what_it_was_for_random_times():
    r = random.Random(3)
    for _ in range(20_000):
        arrival = r.choice(
            [
                r.uniform(-2, 2),
                r.uniform(0, 253_402_300_800),
                round(r.uniform(1.6e9, 1.8e9), 3),
                r.randrange(-(10**6), 253_402_300_800 + 10**6),
                r.uniform(253_402_300_799, 253_402_300_801),
            ]
        )
        assert record(arrival).source().get("arrival") == arrival_as_written_before(arrival), arrival
