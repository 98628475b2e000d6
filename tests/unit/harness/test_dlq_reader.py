"""localaws.pipeline reads DLQ messages as plain JSON; it agrees with the product's reader on every shape."""

from __future__ import annotations

import json

import pytest

from cnm_ingest import dlq
from localaws import pipeline


def _record(seq: str, shard: str = "shardId-000000000000") -> dict:
    return {"shardId": shard, "sequenceNumber": seq, "data": "eyJhIjoxfQ==", "partitionKey": "p"}


def _envelope(seq: str, shard: str = "shardId-000000000000") -> dict:
    return dlq.envelope("ingest", "bad", "ValidationError", _record(seq, shard))


def _sns_event(*envelopes: dict) -> dict:
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(e)}} for e in envelopes]}


SHAPES = {
    "envelope": _envelope("1"),
    "envelope, other shard": _envelope("1", "shardId-000000000001"),
    "async invocation record": {"requestContext": {}, "requestPayload": _sns_event(_envelope("2"), _envelope("3"))},
    "sns event": _sns_event(_envelope("4")),
    "response envelope (no record)": dlq.response_envelope({"identifier": "x"}, "r", "E"),
    "envelope without a sequence number": dlq.envelope("ingest", "bad", "E", {"shardId": "s", "data": None}),
    "other json": {"kind": "something-else", "record": _record("9")},
    "list": [_envelope("5")],
    "sns message not json": {"Records": [{"Sns": {"Message": "{not json"}}, "not a record"]},
    "unicode and odd ids": _envelope("4963#?..\u00e9\u202e", "shard/../\u2028"),
}


@pytest.mark.parametrize("body", SHAPES.values(), ids=SHAPES.keys())
def test_parked_records_match_the_product_reader(body):
    product = [p.envelope.get("record") or {} for p in dlq.records_from_dlq_message(body)]
    expected = [(r.get("shardId", ""), r["sequenceNumber"]) for r in product if r.get("sequenceNumber")]
    assert pipeline.parked_records(body) == expected


def test_parked_records_of_an_async_record_keep_order_and_duplicates():
    body = {"requestPayload": _sns_event(_envelope("7"), _envelope("7"), _envelope("6"))}
    assert pipeline.parked_records(body) == [("shardId-000000000000", "7")] * 2 + [("shardId-000000000000", "6")]


def test_a_deeply_nested_body_is_read_without_recursion_error():
    body: dict = _envelope("8")
    for _ in range(50):
        body = {"requestPayload": body}
    assert pipeline.parked_records(body) == [("shardId-000000000000", "8")]
