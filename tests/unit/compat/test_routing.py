"""Routing as Cumulus routes (packages/api/lib/rulesHelpers.js `filterRulesByRuleParams`), pure.

- the version is ``collection.version``, else ``product.dataVersion``: a string collection with a
  dataVersion matches only that version's rules (and rules of version "" = any, our addition);
- ``provider`` is optional in the CNM; a CNM without one, or a rule without one, matches on the rest;
- ``allowProviderMismatchOnRuleFilter``: the module default (ALLOW_PROVIDER_MISMATCH), overridden per rule;
- a rule listens on its stream (default: the module's notification stream); a record is matched only
  to the rules of the stream it arrived on (its eventSourceARN; an enhanced fan-out consumer's ARN
  counts as its stream);
- the index gives exactly what the reference scan gives, for every combination.
"""

from __future__ import annotations

import itertools

import pytest

from cnm_ingest.consumer import rulebook
from cnm_ingest.errors import NoMatchingRuleError

STREAM = "arn:aws:kinesis:us-west-2:123456789012:stream/notifications"
OTHER = "arn:aws:kinesis:us-west-2:123456789012:stream/provider-b"


def rule(name, coll="C", version="", provider="P", state="ENABLED", stream="", meta=None, prefix=""):
    return rulebook.Rule(name, coll, version, provider, "arn:sm", "wf", state, meta or {}, stream, prefix)


def cnm(collection="C", provider="P", data_version="1"):
    doc = {"collection": collection, "identifier": "g", "product": {"name": "g"}}
    if data_version is not None:
        doc["product"]["dataVersion"] = data_version
    if provider is not None:
        doc["provider"] = provider
    return doc


def names(rules):
    return [r.name for r in rules]


def both(doc, rules, stream=STREAM, default_stream=STREAM, mismatch=False):
    """The index's answer, checked against the reference scan."""
    index = rulebook.RuleIndex(rules, default_stream, mismatch)
    got = index.match(doc, stream)
    assert got == rulebook.match_rules(doc, rules, rulebook.Routing(stream, default_stream, mismatch))
    return names(got)


VERSIONED = [rule("v1", version="1"), rule("v2", version="2"), rule("any")]


def test_string_collection_takes_the_version_from_product_data_version():
    assert both(cnm(data_version="2"), VERSIONED) == ["any", "v2"]
    assert both(cnm(data_version="1"), VERSIONED) == ["any", "v1"]
    assert both(cnm(data_version="3"), VERSIONED) == ["any"]


def test_collection_version_wins_over_data_version():
    assert both(cnm(collection={"name": "C", "version": "1"}, data_version="2"), VERSIONED) == ["any", "v1"]


@pytest.mark.parametrize("data_version", [None, ""])
def test_no_version_at_all_matches_every_version(data_version):
    assert both(cnm(data_version=data_version), VERSIONED) == ["any", "v1", "v2"]


def test_cnm_without_provider_matches_rules_of_any_provider():
    rules = [rule("p", provider="P"), rule("q", provider="Q"), rule("none", provider="")]
    assert both(cnm(provider=None), rules) == ["none", "p", "q"]
    assert both(cnm(provider="P"), rules) == ["none", "p"]  # a rule without a provider matches any
    assert both(cnm(provider="X"), rules) == ["none"]


def test_allow_provider_mismatch_module_default_and_per_rule_override():
    rules = [
        rule("plain", provider="P"),
        rule("lenient", provider="P", meta={"allowProviderMismatchOnRuleFilter": True}),
        rule("strict", provider="P", meta={"allowProviderMismatchOnRuleFilter": False}),
        rule("lenient-text", provider="P", meta={"allowProviderMismatchOnRuleFilter": "TRUE"}),  # map(any) -> text
        rule("junk", provider="P", meta={"allowProviderMismatchOnRuleFilter": "yes please"}),  # not a bool: default
    ]
    assert both(cnm(provider="X"), rules, mismatch=False) == ["lenient", "lenient-text"]
    assert both(cnm(provider="X"), rules, mismatch=True) == ["junk", "lenient", "lenient-text", "plain"]
    assert both(cnm(provider="P"), rules, mismatch=False) == ["junk", "lenient", "lenient-text", "plain", "strict"]


def test_a_record_matches_only_the_rules_of_its_stream():
    rules = [rule("default"), rule("b", stream=OTHER), rule("explicit-default", stream=STREAM)]
    assert both(cnm(), rules, stream=STREAM) == ["default", "explicit-default"]
    assert both(cnm(), rules, stream=OTHER) == ["b"]
    assert both(cnm(), rules, stream="arn:aws:kinesis:us-west-2:123456789012:stream/unknown") == []
    assert both(cnm(), rules, stream=f"{OTHER}/consumer/cnm-consumer:1700000000") == ["b"]  # enhanced fan-out
    assert both(cnm(), rules, stream="") == []  # a record without a stream matches no stream's rules


def test_rule_streams_without_a_configured_default_stream():
    """Outside the module (no NOTIFICATION_STREAM_ARN), rules without a stream listen on every stream."""
    rules = [rule("default"), rule("b", stream=OTHER)]
    assert both(cnm(), rules, stream=STREAM, default_stream="") == ["default"]
    assert both(cnm(), rules, stream=OTHER, default_stream="") == ["b", "default"]


def test_no_rule_explains_stream_version_and_provider():
    index = rulebook.RuleIndex([rule("b", stream=OTHER)], STREAM)
    with pytest.raises(NoMatchingRuleError, match=r"version '1' and provider 'P' on stream '.+notifications'"):
        index.require(cnm(), STREAM)
    index = rulebook.RuleIndex([rule("off", state="DISABLED")], STREAM)
    with pytest.raises(NoMatchingRuleError, match="off are DISABLED"):
        index.require(cnm(), STREAM)


def test_hostile_cnm_values_match_nothing_and_never_raise():
    rules = [rule("a")]
    for doc in [
        {"collection": 5, "provider": "P"},
        {"collection": None},
        {"collection": {"name": ["C"]}, "provider": "P"},
        {"collection": "C", "provider": {"id": "P"}, "product": {"dataVersion": 1}},
        {"collection": "C", "provider": "P", "product": "not an object"},
        {"collection": "C\u0000", "provider": "P"},
    ]:
        got = names(rulebook.RuleIndex(rules, STREAM).match(doc, STREAM))
        assert got == names(rulebook.match_rules(doc, rules, rulebook.Routing(STREAM, STREAM)))
        assert got in ([], ["a"])
    # a provider that is not a string cannot equal a rule's provider
    assert names(rulebook.RuleIndex(rules, STREAM).match({"collection": "C", "provider": {"id": "P"}}, STREAM)) == []


def test_index_equals_the_scan_for_every_combination():
    streams = ["", STREAM, OTHER]
    rules = [
        rule(
            f"r{i:03d}",
            coll=f"C{i % 3}",
            version=["", "1", "2"][i % 3 - 1],
            provider=["", "P0", "P1"][(i // 3) % 3],
            state="DISABLED" if i % 7 == 0 else "ENABLED",
            stream=streams[(i // 9) % 3],
            meta=[{}, {"allowProviderMismatchOnRuleFilter": True}, {"allowProviderMismatchOnRuleFilter": False}][
                (i // 27) % 3
            ],
        )
        for i in range(162)
    ]
    collections = ["C0", "C1", "C9", {"name": "C1", "version": "1"}, {"name": "C2", "version": "3"}, 5]
    checked = 0
    for default, mismatch in itertools.product(["", STREAM], [False, True]):
        index = rulebook.RuleIndex(rules, default, mismatch)
        for coll, provider, version, stream in itertools.product(
            collections, ["P0", "P1", "P9", None], ["1", "2", None], streams
        ):
            doc = cnm(coll, provider, version)
            routing = rulebook.Routing(stream, default, mismatch)
            assert index.match(doc, stream) == rulebook.match_rules(doc, rules, routing), (doc, stream, default)
            checked += 1
    assert checked == 4 * 6 * 4 * 3 * 3


def test_index_lookups_do_not_scan_all_rules():
    """With 10,000 rules of the collection for other providers, a record's candidates come from its keys only."""
    calls = []

    class Counting(rulebook.Rule):
        def allows_provider_mismatch(self, default):
            calls.append(self.name)
            return super().allows_provider_mismatch(default)

    rules = [Counting(f"r{i}", "C", "", f"P{i}", "arn:sm", "wf", "ENABLED") for i in range(10_000)]
    index = rulebook.RuleIndex(rules, STREAM)
    calls.clear()
    assert names(index.match(cnm(provider="P42"), STREAM)) == ["r42"]
    assert calls == []  # no per-rule predicate ran for a CNM with a version and a provider
    assert names(rulebook.match_rules(cnm(provider="P42"), rules)) == ["r42"] and len(calls) == 10_000  # the scan does
