"""Rule matching (pure), and the cached configuration store and the consumer's rule decisions on the
applied stack (examples/complete's rules, collections and providers)."""

from __future__ import annotations

import json

import pytest

from cnm_ingest import dlq
from cnm_ingest.consumer import rulebook
from cnm_ingest.errors import NoMatchingRuleError
from tests.functional.ingest.conftest import SWOT, sample_cnm, swot_cnm


def rule(name, collection="MODIS_A", version="", provider="PODAAC", state="ENABLED"):
    return rulebook.Rule(name, collection, version, provider, f"arn:sm:{name}", "wf", state)


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
    assert [r.name for r in rulebook.match_rules(sample_cnm(collection=collection), rules)] == expected


def test_provider_must_match_and_missing_provider_matches_any():
    cnm = sample_cnm()
    del cnm["provider"]
    assert [r.name for r in rulebook.match_rules(cnm, [rule("a")])] == ["a"]  # as in Cumulus: provider is optional
    assert rulebook.match_rules(sample_cnm(provider="X"), [rule("a")]) == []


def test_disabled_rule_means_no_rule_with_a_reason():
    with pytest.raises(NoMatchingRuleError, match=r"off.*DISABLED"):
        rulebook.require_rules(sample_cnm(), [rule("off", state="DISABLED")])
    with pytest.raises(NoMatchingRuleError, match="no rule for collection 'MODIS_A'"):
        rulebook.require_rules(sample_cnm(), [])


def test_disabled_rule_parks_the_record(world, notifications):
    """examples/complete applies the sentinel6 rule DISABLED (until its provider is onboarded)."""
    (disabled,) = [r for r in world.items("rules") if r["state"] == "DISABLED"]
    cnm = sample_cnm("g1", collection=disabled["collection_name"], provider=disabled["provider"])
    payload = json.dumps(cnm).encode()
    event = notifications.put([payload])
    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    for ev in world.fallback_events():
        world.invoke("fallback_consumer", ev)
    assert world.executions() == []
    (env,) = world.dlq_envelopes()
    assert "DISABLED" in env["reason"] and env["error_type"] == "NoMatchingRuleError"
    assert disabled["name"] in env["reason"]
    assert dlq.records_from_dlq_message(env)[0].payload == payload
    assert [r["response"]["errorCode"] for r in world.responses()] == ["VALIDATION_ERROR"]


def test_object_form_matches_version_and_multiple_rules_start_one_execution_each(world, notifications):
    """Beside the applied SWOT rule (version 2.0): a version 3.0 collection and rule, a rule for any
    version, and one starting the other applied example's workflow (a rule may name any workflow)."""
    name = SWOT["collection"]
    other = world.machine_of("minimal")
    world.put_collection(name, "3.0", url_path="v3-path")
    world.put_rule("v3", like=SWOT["rule"], collection_version="3.0")
    world.put_rule("any-a", like=SWOT["rule"], collection_version="")
    world.put_rule("any-b", like=SWOT["rule"], collection_version="", workflow_arn=other)
    event = notifications.put(
        [
            swot_cnm("g3", collection={"name": name, "version": "3.0"}),
            swot_cnm("gs"),  # string form: product.dataVersion "2.0"
        ]
    )
    assert world.invoke("message_consumer", event) == {"batchItemFailures": []}
    inputs = world.execution_inputs() + world.execution_inputs(other)
    started = sorted((i["meta"]["cnm"]["identifier"], i["meta"]["rule"]["name"]) for i in inputs)
    assert started == [
        ("g3", "any-a"),
        ("g3", "any-b"),
        ("g3", "v3"),
        ("gs", "any-a"),
        ("gs", "any-b"),
        ("gs", SWOT["rule"]),
    ]
    by_key = {(i["meta"]["cnm"]["identifier"], i["meta"]["rule"]["name"]): i for i in inputs}
    assert by_key[("g3", "v3")]["meta"]["collection"]["url_path"] == "v3-path"
    assert by_key[("g3", "any-a")]["meta"]["collection"]["version"] == "3.0"
    assert by_key[("gs", SWOT["rule"])]["meta"]["collection"]["version"] == "2.0"
    assert by_key[("g3", "any-b")]["cumulus_meta"]["state_machine"] == other
    assert len({i["cumulus_meta"]["execution_name"] for i in inputs}) == 6
    assert world.fallback_events() == []


def test_cache_ttl_is_respected(world):
    now = [1000.0]
    store = rulebook.ConfigStore(
        world.table("rules"), world.table("collections"), world.table("providers"), ttl=60, clock=lambda: now[0]
    )
    applied = sorted(r.name for r in store.rules())
    assert SWOT["rule"] in applied
    world.put_rule("second")
    now[0] += 59
    assert sorted(r.name for r in store.rules()) == applied  # still cached
    now[0] += 2
    assert sorted(r.name for r in store.rules()) == sorted([*applied, "second"])  # expired, reloaded


def test_store_from_env_uses_rules_cache_seconds(world):
    """examples/complete sets rules_cache_seconds = 30: the consumer's store keeps rules that long."""
    world.use("message_consumer")
    store = rulebook.store()
    assert store.ttl == 30 and rulebook.store() is store


def test_unconfigured_collection_or_provider_is_a_record_error(world):
    world.use("message_consumer")
    store = rulebook.ConfigStore.from_env()
    with pytest.raises(NoMatchingRuleError, match="collection 'NOPE'"):
        store.collection("NOPE", "1")
    with pytest.raises(NoMatchingRuleError, match="provider 'NOPE'"):
        store.provider("NOPE")
    assert store.collection(SWOT["collection"], "")["version"] == SWOT["version"]  # the only version configured
