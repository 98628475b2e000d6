"""Rule matching (pure) and the cached configuration store (moto DynamoDB)."""

from __future__ import annotations

import json

import pytest
from handlers import fallback_consumer, message_consumer

from cnm_ingest import config, dlq
from cnm_ingest.errors import NoMatchingRuleError
from tests.events import kinesis_event, kinesis_record
from tests.functional.ingest.conftest import sample_cnm


def rule(name, collection="MODIS_A", version="", provider="PODAAC", state="ENABLED"):
    return config.Rule(name, collection, version, provider, f"arn:sm:{name}", "wf", state)


@pytest.mark.parametrize(
    "collection, expected",
    [
        ("MODIS_A", ["any", "v1"]),  # string form: the version is product.dataVersion ("1"), as in Cumulus
        ({"name": "MODIS_A", "version": "1"}, ["any", "v1"]),  # object form: exact or "" rule version
        ({"name": "MODIS_A", "version": "3"}, ["any"]),
        ("OTHER", []),
    ],
)
def test_match_rules_on_collection_and_version(collection, expected):
    rules = [
        rule("v1", version="1"),
        rule("v2", version="2"),
        rule("any"),
        rule("off", state="DISABLED"),
        rule("other-provider", provider="NOPE"),
    ]
    assert [r.name for r in config.match_rules(sample_cnm(collection=collection), rules)] == expected


def test_provider_must_match_and_missing_provider_matches_any():
    cnm = sample_cnm()
    del cnm["provider"]
    assert [r.name for r in config.match_rules(cnm, [rule("a")])] == ["a"]  # as in Cumulus: provider is optional
    assert config.match_rules(sample_cnm(provider="X"), [rule("a")]) == []


def test_disabled_rule_means_no_rule_with_a_reason():
    with pytest.raises(NoMatchingRuleError, match="off.*DISABLED"):
        config.require_rules(sample_cnm(), [rule("off", state="DISABLED")])
    with pytest.raises(NoMatchingRuleError, match="no rule for collection 'MODIS_A'"):
        config.require_rules(sample_cnm(), [])


def test_disabled_rule_parks_the_record(pipeline, lambda_context):
    pipeline.put_rule("modis", state="DISABLED")
    payload = json.dumps(sample_cnm("g1")).encode()
    event = kinesis_event([kinesis_record(payload, "10")])
    assert message_consumer.handler(event, lambda_context) == {"batchItemFailures": []}
    for ev in pipeline.fallback_events():
        fallback_consumer.handler(ev, lambda_context)
    assert pipeline.executions() == []
    (env,) = pipeline.dlq_envelopes()
    assert "DISABLED" in env["reason"] and env["error_type"] == "NoMatchingRuleError"
    assert dlq.records_from_dlq_message(env)[0].payload == payload
    assert [r["response"]["errorCode"] for r in pipeline.responses()] == ["VALIDATION_ERROR"]


def test_object_form_matches_version_and_multiple_rules_start_one_execution_each(pipeline, lambda_context):
    pipeline.put_collection("MODIS_A", "2", url_path="v2-path")
    pipeline.put_rule("v1", collection_version="1")
    pipeline.put_rule("v2", collection_version="2")
    pipeline.put_rule("any-a")
    pipeline.put_rule("any-b", workflow_arn=pipeline.other_state_machine)
    event = kinesis_event(
        [
            kinesis_record(sample_cnm("g2", collection={"name": "MODIS_A", "version": "2"}), "20"),
            kinesis_record(sample_cnm("gs", collection="MODIS_A"), "21"),  # dataVersion "1"
        ]
    )
    assert message_consumer.handler(event, lambda_context) == {"batchItemFailures": []}
    inputs = pipeline.execution_inputs() + pipeline.execution_inputs(pipeline.other_state_machine)
    started = sorted((i["meta"]["cnm"]["identifier"], i["meta"]["rule"]["name"]) for i in inputs)
    assert started == [
        ("g2", "any-a"),
        ("g2", "any-b"),
        ("g2", "v2"),
        ("gs", "any-a"),
        ("gs", "any-b"),
        ("gs", "v1"),
    ]
    by_key = {(i["meta"]["cnm"]["identifier"], i["meta"]["rule"]["name"]): i for i in inputs}
    assert by_key[("g2", "v2")]["meta"]["collection"]["url_path"] == "v2-path"
    assert by_key[("g2", "any-a")]["meta"]["collection"]["version"] == "2"
    assert by_key[("gs", "v1")]["meta"]["collection"]["version"] == "1"
    assert by_key[("g2", "any-b")]["cumulus_meta"]["state_machine"] == pipeline.other_state_machine
    assert len({i["cumulus_meta"]["execution_name"] for i in inputs}) == 6
    assert pipeline.fallback_events() == []


def test_cache_ttl_is_respected(pipeline):
    now = [1000.0]
    store = config.ConfigStore(
        pipeline.tables["rules"],
        pipeline.tables["collections"],
        pipeline.tables["providers"],
        ttl=60,
        clock=lambda: now[0],
    )
    pipeline.put_rule("first")
    assert [r.name for r in store.rules()] == ["first"]
    pipeline.put_rule("second")
    now[0] += 59
    assert [r.name for r in store.rules()] == ["first"]  # still cached
    now[0] += 2
    assert sorted(r.name for r in store.rules()) == ["first", "second"]  # expired, reloaded


def test_store_from_env_uses_rules_cache_seconds(pipeline, monkeypatch):
    monkeypatch.setenv("RULES_CACHE_SECONDS", "5")
    store = config.store()
    assert store.ttl == 5 and config.store() is store


def test_unconfigured_collection_or_provider_is_a_record_error(pipeline):
    store = config.ConfigStore.from_env()
    with pytest.raises(NoMatchingRuleError, match="collection 'NOPE'"):
        store.collection("NOPE", "1")
    with pytest.raises(NoMatchingRuleError, match="provider 'NOPE'"):
        store.provider("NOPE")
    assert store.collection("MODIS_A", "")["version"] == "1"  # the only version configured
