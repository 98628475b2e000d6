"""The chaos soak's parts that need no stack (bench/chaos_soak.py): the seeded fault plan, the
traffic, and the checks on a made-up outcome (each check can fail)."""

from __future__ import annotations

import json

from bench import chaos_soak as cs
from localaws import pipeline


def _records(n: int = 40):
    records = cs.traffic(n, "cnm-complete-provider-outbox", 0.25, seed=5)
    for i, r in enumerate(records):
        r.shard_id, r.sequence_number = f"shardId-00000000000{i % 2}", str(1000 + i)
    return records


def test_traffic_is_valid_and_bad_unique_and_seeded():
    records = _records()
    assert len(records) == 40 and sum(r.expect == pipeline.SUCCESS for r in records) == 30
    assert {r.expect for r in records} == {pipeline.SUCCESS, pipeline.PARKED, pipeline.FAILED}
    identifiers = [r.identifier for r in records if r.identifier]
    assert len(identifiers) == len(set(identifiers))
    assert len({r.payload for r in records}) == 40
    assert [r.label for r in records] == [r.label for r in _records()]  # the seed decides the order
    tokens = cs.tokens_of(records)
    assert sorted(set(tokens.values())) == list(range(40))  # every record can be named in a request


def test_the_plan_is_the_seeds_and_a_retry_is_the_same_call():
    a, b = cs.FaultPlan(1, 0.3, 4, 0.3, {}), cs.FaultPlan(1, 0.3, 4, 0.3, {})
    idents = [
        cs.identity("dynamodb", "PutItem", {"TableName": "t", "Item": {"id": {"S": f"k{i}"}}}) for i in range(300)
    ]
    decisions = [a.decide("dynamodb", i) for i in idents]
    assert decisions == [b.decide("dynamodb", i) for i in idents]
    assert decisions != [cs.FaultPlan(2, 0.3, 4, 0.3, {}).decide("dynamodb", i) for i in idents]
    hit = [d for d in decisions if d is not None]
    assert 50 < len(hit) < 130 and {d.after for d in hit} == {True, False}
    assert {d.times for d in hit} == {1, 2, 3, 4}
    # the same item written again (a retry, with another expiry) is the same call
    first = {"TableName": "t", "Item": {"id": {"S": "k"}, "expiration": {"N": "1"}}}
    again = {"TableName": "t", "Item": {"id": {"S": "k"}, "expiration": {"N": "2"}}}
    assert cs.identity("dynamodb", "PutItem", first) == cs.identity("dynamodb", "PutItem", again)
    assert cs.identity("s3", "CopyObject", {"Bucket": "b", "Key": "k", "CopySource": "x/y"}) != cs.identity(
        "s3", "CopyObject", {"Bucket": "b", "Key": "k", "CopySource": "x/z"}
    )


def _result(records, outcome, plan=None):
    result = cs.Result(1, records, plan or cs.FaultPlan(1, 0, 1, 0, {}), outcome, True, 1.0, [], {}, "replay")
    result.failures = cs.check(result)
    return result


def _answer(record, status):
    return json.dumps({"identifier": record.identifier, "response": {"status": status}}).encode()


def _healthy(records):
    o = cs.Outcome()
    for i, r in enumerate(records):
        if r.expect == pipeline.PARKED:
            o.parked[i].append(json.dumps({"record": i}))
            if r.identifier:
                o.answers[i].append(_answer(r, "FAILURE"))
        else:
            status = "SUCCEEDED" if r.expect == pipeline.SUCCESS else "FAILED"
            o.executions[i].append({"executionArn": f"arn:{i}", "status": status, "rule": "r"})
            o.answers[i].append(_answer(r, "SUCCESS" if r.expect == pipeline.SUCCESS else "FAILURE"))
    return o


def test_checks_hold_on_a_healthy_outcome_and_each_can_fail():
    records = _records()
    assert _result(records, _healthy(records)).failures == {}
    valid = next(i for i, r in enumerate(records) if r.expect == pipeline.SUCCESS)
    bad = next(i for i, r in enumerate(records) if r.expect == pipeline.PARKED and r.identifier)

    o = _healthy(records)
    o.parked[valid].append("{}")  # started and parked
    failures = _result(records, o).failures
    assert failures["started and parked"] == [valid] and any(k.startswith("records in") for k in failures)

    o = _healthy(records)
    o.answers[valid].append(o.answers[valid][0])  # answered twice, no lost response to explain it
    assert _result(records, o).failures == {"not one answer per answerable record": [valid]}
    plan = cs.FaultPlan(1, 0, 1, 0, {})
    plan.after_payloads[cs._digest(o.answers[valid][0])] += 1  # ... a put whose response was lost: an echo
    result = _result(records, o, plan)
    assert result.failures == {} and result.row()["echoes"] == 1 and result.row()["duplicates"] == 1

    o = _healthy(records)
    o.executions[valid][0]["status"] = "FAILED"
    assert _result(records, o).failures == {"valid record not SUCCEEDED once with a SUCCESS answer": [valid]}

    o = _healthy(records)
    o.parked_answers[bad].append({"envelope": "response"})
    assert _result(records, o).failures == {"a delivered response parked": [bad]}

    o = _healthy(records)
    o.temporary.append("s3://b/.cnm-ingest-tmp/x")
    o.zombies.append("arn:z")
    o.store_problems.append("arn:1 store None")
    assert set(_result(records, o).failures) == {
        "temporary objects left",
        "zombies (RUNNING after the drain)",
        "store: not one final status per execution",
    }
    explained = cs.explain(_result(records, o))
    assert "replay: replay" in explained and ".cnm-ingest-tmp/x" in explained


def _parked_body(record, reason="bad"):
    from cnm_ingest import dlq

    source = {"data": "", "shardId": record.shard_id, "sequenceNumber": record.sequence_number, "streamArn": "s"}
    return dlq.dumps(dlq.envelope("message_consumer", reason, "CnmValidationError", source))


def test_the_matcher_keeps_two_bad_records_of_one_kind_apart():
    """Issue 20's 1,000-record finding looked like two records' outcomes swapped. The soak ties a DLQ entry to
    its record by shard and sequence number and an answer by identifier, never by what two bad records of one
    kind share (reason, error type, template): each gets its own."""
    from cnm_ingest import dlq

    records = _records()
    for kind in ("poison: schema violation", "poison: not JSON"):
        first, second = [i for i, r in enumerate(records) if r.label.startswith(kind)][:2]
        match, out = cs.Matcher(records), cs.Outcome()
        for i in (second, first):
            body = _parked_body(records[i])  # the same reason and error type for both
            match.dlq_message(out, body, dlq.records_from_dlq_message(body))
            if records[i].identifier:
                match.answer(out, _answer(records[i], "FAILURE"))
        assert {k: len(v) for k, v in out.parked.items()} == {first: 1, second: 1}, kind
        assert json.loads(out.parked[first][0])["record"]["sequenceNumber"] == records[first].sequence_number
        addressable = records[first].identifier is not None
        assert {k: len(v) for k, v in out.answers.items()} == ({first: 1, second: 1} if addressable else {})
        assert out.unknown == []


def test_a_dlq_message_without_a_record_is_not_tied_to_one_and_fails_the_run():
    """Hydrate's own on-failure record (Lambda's invocation record of an SNS event carrying the mapping's
    KinesisBatchInfo) has no record with its payload: the soak names it instead of skipping it."""
    from cnm_ingest import dlq
    from tests.events import kinesis_failure_record

    records = _records()
    info = kinesis_failure_record("arn:aws:kinesis:us-west-2:1:stream/n", "1", "2", 2)
    sns_event = {"Records": [{"Sns": {"Message": json.dumps(info)}}]}
    body = json.dumps({"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": sns_event})
    out = _healthy(records)
    cs.Matcher(records).dlq_message(out, body, dlq.records_from_dlq_message(body))
    assert len(out.unknown) == 1 and out.unknown[0].startswith("DLQ message without a record envelope")
    assert set(_result(records, out).failures) == {"not tied to a record"}


def test_the_row_counts_lost_in_progress_writes():
    """The exposure of the 1,000-record finding: an in-progress PutItem of an idempotency store answered 500 after
    the write (the consumer's table, and CnmResponse's records on the status table); nothing else counts."""
    records = _records()
    plan = cs.FaultPlan(1, 0, 1, 0, {})

    def hit(operation, identity, after=True):
        return cs.Hit(1.0, "dynamodb", operation, "InternalServerError", 500, after, identity, [])

    plan.hits = [
        hit("PutItem", 'PutItem:t-idempotency:{"id": {"S": "cnm-ingest.park#ab"}}'),
        hit("PutItem", 'PutItem:t-status:{"pk": {"S": "IDEMPOTENCY#cnm_response"}, "sk": {"S": "put#cd"}}'),
        hit("PutItem", 'PutItem:t-idempotency:{"id": {"S": "cnm-ingest.answer#ef"}}', after=False),
        hit("UpdateItem", 'UpdateItem:t-idempotency:{"id": {"S": "cnm-ingest.park#ab"}}'),
        hit("PutItem", 'PutItem:t-status:{"pk": {"S": "STAGING#c___1"}, "sk": {"S": "GRANULE#g"}}'),
    ]
    row = _result(records, _healthy(records), plan).row()
    assert (row["inprogress_lost"], row["after"]) == (2, 4)
