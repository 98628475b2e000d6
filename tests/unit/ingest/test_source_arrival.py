"""``cumulus_meta.source.arrival``: the record's arrival on the stream, the same text for every path that
starts its execution (the Lambda event's float seconds, boto3's datetime in hydrate, replay and ``reconcile
--fix``), so the deterministic execution gets the same input whoever starts it."""

from __future__ import annotations

import math
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
