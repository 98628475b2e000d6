"""Routing as Cumulus routes, through the deployed message consumer of examples/complete (in-process under
its deployed environment; the applied tables, state machine, DLQ and response stream, restored before each
test). Rules, the MODIS_A collection and the PODAAC provider are written as items shaped as the applied
ones (World.put_rule / put_collection / put_provider). A second provider's stream is the provider's side.

Every test counts side effects without collapsing duplicates: records in = executions + DLQ entries,
and at most one response per record.
"""

from __future__ import annotations

import re

import pytest

from tests.events import kinesis_event, kinesis_record
from tests.functional.ingest.conftest import sample_cnm

NAME = re.compile(r"^[0-9A-Za-z_-]{1,80}$")


def put_rule(world, name, *, provider="PODAAC", version="", stream="", prefix="", meta=None):
    """A rule on MODIS_A, as Terraform writes one; ``stream`` "" = the stack's notification stream (what the
    root module writes for its rules)."""
    world.put_rule(
        name,
        collection_name="MODIS_A",
        collection_version=version,
        provider=provider,
        workflow_arn=world.machine,
        state="ENABLED",
        meta=meta or {},
        stream_arn=stream or world.stream("notifications"),
        execution_name_prefix=prefix,
    )


def started(world):
    """(rule, execution name, provider id) of every execution, duplicates kept."""
    return sorted(
        (i["meta"]["rule"]["name"], i["cumulus_meta"]["execution_name"], i["meta"]["provider"]["id"])
        for i in world.execution_inputs()
    )


def provider_stream(world, name: str) -> str:
    """A provider's own notification stream (the provider's side)."""
    kinesis = world.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


@pytest.fixture
def world(complete_world):
    """examples/complete as applied, with the MODIS_A collection (versions 1 and 2 written as needed) and the
    PODAAC provider written as items shaped as the applied ones."""
    complete_world.put_collection("MODIS_A", "1")
    complete_world.put_provider("PODAAC", host="provider-bucket")
    return complete_world


@pytest.fixture
def consume(world):
    def run(records, lambda_context=None, **overrides):
        event = kinesis_event(records)
        assert world.invoke("message_consumer", event, **overrides) == {"batchItemFailures": []}

    return run


@pytest.fixture
def streams(world):
    return world.stream("notifications"), provider_stream(world, "provider-b")


def test_each_stream_starts_only_its_own_rules_and_redelivery_starts_nothing(world, streams, consume, lambda_context):
    default, other = streams
    put_rule(world, "on-default", prefix="modis_")
    put_rule(world, "on-b", stream=other, prefix="b-")
    put_rule(world, "on-b-too", stream=other)
    records = [
        kinesis_record(sample_cnm("g-default"), "100", stream_arn=default),
        kinesis_record(sample_cnm("g-b"), "200", stream_arn=other),
        kinesis_record(sample_cnm("g-b-efo"), "201", stream_arn=f"{other}/consumer/cnm:1700000000"),
    ]
    consume(records, lambda_context)
    consume(records, lambda_context)  # the whole batch again: a redelivery
    got = started(world)
    assert [(r, n.split("-")[0]) for r, n, _ in got] == [
        ("on-b", "b"),
        ("on-b", "b"),
        ("on-b-too", "g"),
        ("on-b-too", "g"),
        ("on-default", "modis_g"),
    ]
    assert all(NAME.match(n) for _, n, _ in got)
    assert len(world.executions()) == 5 and world.dlq_envelopes() == [] and world.responses() == []
    assert len(world.executions(world.machine_of("minimal"))) == 0


def test_a_record_on_a_stream_no_rule_listens_on_is_parked_and_answered_once(world, streams, consume, lambda_context):
    put_rule(world, "on-default")
    stray = provider_stream(world, "stray")
    record = kinesis_record(sample_cnm("g-stray"), "300", stream_arn=stray)
    consume([record], lambda_context)
    consume([record], lambda_context)
    assert world.executions() == []
    (env,) = world.dlq_envelopes()
    assert env["error_type"] == "NoMatchingRuleError" and "stray" in env["reason"]
    assert [r["response"]["status"] for r in world.responses()] == ["FAILURE"]


def test_cnm_without_provider_starts_with_the_rules_provider_configuration(world, streams, consume, lambda_context):
    default, _ = streams
    put_rule(world, "modis")
    doc = sample_cnm("g-noprov")
    del doc["provider"]
    consume([kinesis_record(doc, "400", stream_arn=default)], lambda_context)
    assert [(r, p) for r, _, p in started(world)] == [("modis", "PODAAC")]
    assert world.dlq_envelopes() == []


def test_rule_without_provider_uses_the_cnms_provider_and_fails_when_neither_names_one(
    world, streams, consume, lambda_context
):
    default, _ = streams
    put_rule(world, "anyone", provider="")
    consume([kinesis_record(sample_cnm("g-named"), "500", stream_arn=default)], lambda_context)
    doc = sample_cnm("g-nobody")
    del doc["provider"]
    consume([kinesis_record(doc, "501", stream_arn=default)], lambda_context)
    assert [(r, p) for r, _, p in started(world)] == [("anyone", "PODAAC")]
    (env,) = world.dlq_envelopes()
    assert env["error_type"] == "NotConfiguredError" and "names no provider" in env["reason"]


@pytest.mark.parametrize(
    "module_default, rule_meta, starts",
    [
        ("false", {}, False),
        ("true", {}, True),
        ("false", {"allowProviderMismatchOnRuleFilter": True}, True),
        ("true", {"allowProviderMismatchOnRuleFilter": False}, False),  # the rule's meta wins
    ],
)
def test_allow_provider_mismatch(world, streams, consume, lambda_context, module_default, rule_meta, starts):
    """About ALLOW_PROVIDER_MISMATCH (the module's allow_provider_mismatch): overridden per case."""
    default, _ = streams
    put_rule(world, "modis", meta=rule_meta)
    record = kinesis_record(sample_cnm("g-other", provider="SOMEONE_ELSE"), "600", stream_arn=default)
    consume([record], lambda_context, ALLOW_PROVIDER_MISMATCH=module_default)
    if starts:
        # the file access is still the rule's provider's: another provider's CNM cannot choose whose host is read
        assert [(r, p) for r, _, p in started(world)] == [("modis", "PODAAC")]
        assert world.dlq_envelopes() == []
    else:
        assert world.executions() == []
        assert [e["error_type"] for e in world.dlq_envelopes()] == ["NoMatchingRuleError"]


def test_string_collection_routes_on_data_version(world, streams, consume, lambda_context):
    default, _ = streams
    world.put_collection("MODIS_A", "2")
    put_rule(world, "v1", version="1")
    put_rule(world, "v2", version="2")
    doc = sample_cnm("g-v2")
    doc["product"]["dataVersion"] = "2"
    consume([kinesis_record(doc, "700", stream_arn=default)], lambda_context)
    (execution,) = world.execution_inputs()
    assert execution["meta"]["rule"]["name"] == "v2" and execution["meta"]["collection"]["version"] == "2"


@pytest.mark.parametrize(
    "prefix",
    [
        "../../etc/passwd",
        "x" * 300,
        "évil\u202eprefix\n\x00",
        ":arn:aws:states:",
        "-" * 80,
        "a b?c#d",
    ],
)
def test_hostile_execution_name_prefix_gives_a_valid_stable_name(world, streams, consume, lambda_context, prefix):
    default, _ = streams
    put_rule(world, "modis", prefix=prefix)
    record = kinesis_record(sample_cnm("g-" + "y" * 100), "800", stream_arn=default)
    consume([record], lambda_context)
    consume([record], lambda_context)
    ((_, name, _),) = started(world)
    assert NAME.match(name), name
    assert world.dlq_envelopes() == []
