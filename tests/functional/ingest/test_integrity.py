"""Issue 8 (ingest side) and 9 (consumer): strict decoding, validators compiled once, all-or-nothing
rules, the rule index, pacing, hydrate's gap entry. The fault matrix is in test_fault_matrix.py."""

from __future__ import annotations

import json

import pytest

from cnm_ingest.cnm import validate
from cnm_ingest.consumer import hydrate, rulebook
from tests.functional.ingest.conftest import SWOT, sample_cnm, swot_cnm


def _with(text_fragment: str, where: str = "extra") -> bytes:
    """A valid notification whose ``where`` member is the raw JSON ``text_fragment``."""
    base = swot_cnm("hostile")
    if where == "size":
        base["product"]["files"][0]["size"] = "@@"
    else:
        base[where] = "@@"
    return json.dumps(base).replace('"@@"', text_fragment).encode()


HOSTILE = {
    # name: (payload, addressable, error type)
    "nested 10,000 deep": (_with("[" * 10_000 + "]" * 10_000), False, "DecodeError"),
    "integer of 5,000 digits": (_with("1" * 5000), False, "DecodeError"),
    "lone surrogate": (_with('"\\ud800"'), True, "DecodeError"),
    "NaN size": (_with("NaN", "size"), True, "DecodeError"),
    "Infinity size": (_with("Infinity", "size"), True, "DecodeError"),
    "1e400 size": (_with("1e400", "size"), True, "DecodeError"),
    "negative size": (_with("-1", "size"), True, "CnmValidationError"),
    "fractional size": (_with("1.5", "size"), True, "CnmValidationError"),
    "boolean size": (_with("true", "size"), True, "CnmValidationError"),
    "not UTF-8": (b"\xff\xfe{}", False, "DecodeError"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_is_a_validation_error_answered_and_parked_at_once(world, notifications, case):
    payload, addressable, error_type = HOSTILE[case]
    event = notifications.put([payload])

    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}  # a redelivery

    assert world.executions() == []  # nothing invalid reaches StartExecution
    assert world.fallback_events() == []  # not an unexpected error: no retry by the fallback consumer
    dead = world.dlq_envelopes()
    assert len(dead) == 1 and dead[0]["error_type"] == error_type and dead[0]["source"] == "message_consumer"
    responses = world.responses()
    if addressable:
        assert [(r["identifier"], r["response"]["errorCode"]) for r in responses] == [("hostile", "VALIDATION_ERROR")]
    else:
        assert responses == []


def test_whole_number_float_size_is_accepted():
    doc = sample_cnm()
    doc["product"]["files"][0]["size"] = 100.0
    assert validate.validate_notification(doc) is doc


def test_every_validator_is_compiled_once_per_process(monkeypatch):
    import fastjsonschema

    from cnm_ingest.cnm import response_message
    from cnm_ingest.workflow import translate_message

    if hasattr(validate, "compiled"):
        validate.compiled.cache_clear()
    calls = []
    original = fastjsonschema.compile

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(fastjsonschema, "compile", counting)
    for i in range(20):
        doc = sample_cnm(f"g-{i}")
        validate.validate_notification(doc)
        translate_message.translate(doc, {}, {})
        response_message.build_response(doc, status="FAILURE", error_code="VALIDATION_ERROR", error_message="x")
    assert len(calls) <= 2  # one notification validator, one response validator


def test_rule_resolution_is_all_or_nothing(world, notifications):
    # A second version of the applied collection (so no version is "the only one"), and beside the
    # applied SWOT rule (version 2.0), a rule asking for version 9, which no collection has.
    world.put_collection(SWOT["collection"], "3.0")
    world.put_rule("b-unresolvable", like=SWOT["rule"], collection_version="9")
    doc = swot_cnm("both-rules")
    del doc["product"]["dataVersion"]  # no version in the CNM: rules of every version match (as in Cumulus)
    event = notifications.put([doc])

    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    assert world.executions() == []  # the good rule did not start either
    (dead,) = world.dlq_envelopes()
    assert dead["error_type"] == "NotConfiguredError" and "version '9'" in dead["reason"]
    assert [r["response"]["status"] for r in world.responses()] == ["FAILURE"]


def _rule(name, coll="C", version="", provider="P", state="ENABLED"):
    return rulebook.Rule(name, coll, version, provider, "arn:sm", "wf", state)


def test_rule_index_matches_exactly_like_the_scan():
    rules = [
        _rule(
            f"r{i}",
            coll=f"C{i % 7}",
            version=["", "1", "2"][i % 3],
            provider=f"P{i % 2}",
            state="DISABLED" if i % 5 == 0 else "ENABLED",
        )
        for i in range(200)
    ]
    index = rulebook.RuleIndex(rules)
    for coll in ["C0", "C3", "C9", {"name": "C1", "version": "1"}, {"name": "C2", "version": "2"}, 5, None]:
        for provider in ["P0", "P1", "P9", None]:
            doc = {"collection": coll, "provider": provider}
            assert index.match(doc) == rulebook.match_rules(doc, rules)
            if not rulebook.match_rules(doc, rules):
                with pytest.raises(rulebook.NoMatchingRuleError):
                    index.require(doc)


def test_rules_are_indexed_once_per_cache_load(world):
    world.use("message_consumer")
    store = rulebook.store()
    assert store.rule_index() is store.rule_index()
    # the applied rules listen on the notification stream (rule stream_arn), and only there
    assert [r.name for r in store.rule_index().match(swot_cnm(), world.stream("notifications"))] == [SWOT["rule"]]
    assert store.rule_index().match(swot_cnm(), world.stream("notifications") + "-other") == []


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_caps_starts_per_second_on_a_fake_clock():
    from cnm_ingest.consumer.pacing import Pacer

    clock = FakeClock()
    pacer = Pacer(rate=10, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(25):
        pacer.acquire()
    # 5 from the burst, then 20 at 10/s
    assert clock.now == pytest.approx(2.0, abs=1e-6)


def test_pacer_gives_up_at_the_deadline_and_backs_off_together():
    from cnm_ingest.consumer.pacing import DeadlineError, Pacer

    clock = FakeClock()
    pacer = Pacer(rate=1, burst=1, deadline=3.5, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        pacer.acquire()
    with pytest.raises(DeadlineError):
        pacer.acquire()
    shared = Pacer(deadline=100, clock=clock, sleep=clock.sleep)
    before = clock.now
    shared.throttled()
    shared.acquire()  # every thread waits out the shared pause
    assert clock.now > before


def test_throttled_start_is_retried_then_given_back_as_a_batch_item_failure(
    world, notifications, monkeypatch, no_start_backoff
):
    """START_MAX_ATTEMPTS as deployed: one throttle fewer is absorbed, as many is a batch item failure."""
    from botocore.exceptions import ClientError

    from cnm_ingest import aws

    attempts = int(world.environment("message_consumer")["START_MAX_ATTEMPTS"])
    sfn = aws.client("stepfunctions")
    original = sfn.start_execution
    throttles = {"left": attempts - 1, "seen": 0}

    def flaky(**kw):
        if throttles["left"]:
            throttles["left"] -= 1
            throttles["seen"] += 1
            raise ClientError(
                {
                    "Error": {"Code": "ThrottlingException", "Message": "slow down"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "StartExecution",
            )
        return original(**kw)

    monkeypatch.setattr(sfn, "start_execution", flaky)
    event = notifications.put([swot_cnm("t-0")])
    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}  # absorbed
    assert len(world.executions()) == 1 and throttles["seen"] == attempts - 1
    throttles.update(left=attempts + 5, seen=0)
    event = notifications.put([swot_cnm("t-1")])
    failed = event["Records"][0]["kinesis"]["sequenceNumber"]
    assert world.invoke("message_consumer", event) == {"batchItemFailures": [{"itemIdentifier": failed}]}
    assert throttles["seen"] == attempts and len(world.executions()) == 1


class _Read:
    def __init__(self, seqs, complete, reached_end):
        self.records = [{"sequenceNumber": str(s)} for s in seqs]
        self.complete, self.reached_end = complete, reached_end


@pytest.mark.parametrize(
    "seqs, complete, reached_end, size, expected",
    [
        ([10, 11, 12], True, True, 3, None),
        ([13, 14], False, True, 5, {"count": 3, "ranges": [{"from": "10", "to": "12"}]}),  # trimmed in front
        ([10, 11], False, False, 5, {"count": 3, "ranges": [{"from": "12", "to": "20"}]}),  # read stopped early
        ([], False, False, 4, {"count": 4, "ranges": [{"from": "10", "to": "20"}]}),
        ([12], False, False, 5, {"count": 4, "ranges": [{"from": "10", "to": "11"}, {"from": "13", "to": "20"}]}),
    ],
)
def test_missing_names_the_exact_ranges_and_count(seqs, complete, reached_end, size, expected):
    assert hydrate.missing(_Read(seqs, complete, reached_end), "10", "20", size) == expected
