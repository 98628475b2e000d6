"""RuleIndex remembers what it found per (stream, name, version, provider): the answers never change by it.

Asked again (the memo), with callers mutating what they got, past the memo's bound, and for the
error path (no rule, DISABLED rules): every answer equals the reference scan's.
"""

from __future__ import annotations

import itertools

import pytest

from cnm_ingest.consumer import rulebook
from cnm_ingest.errors import NoMatchingRuleError

STREAM = "arn:aws:kinesis:us-west-2:123456789012:stream/notifications"
OTHER = "arn:aws:kinesis:us-west-2:123456789012:stream/provider-b"


def rule(name, coll="C", version="", provider="P", state="ENABLED", stream=""):
    return rulebook.Rule(name, coll, version, provider, "arn:sm", "wf", state, {}, stream, "")


def cnm(collection="C", provider="P", version="1"):
    return {"collection": {"name": collection, "version": version}, "provider": provider, "identifier": "g"}


RULES = [
    rule("a"),
    rule("b", version="1"),
    rule("c", provider="Q"),
    rule("off", state="DISABLED"),
    rule("other", stream=OTHER),
    rule("d", coll="D", version="2"),
]
DOCS = [cnm(c, p, v) for c, p, v in itertools.product(["C", "D", "E"], ["P", "Q", "R"], ["1", "2"])]


def test_asked_again_the_index_answers_as_the_scan():
    index = rulebook.RuleIndex(RULES, STREAM)
    for _ in range(3):  # the first pass fills the memo, the others read it
        for doc, stream in itertools.product(DOCS, [STREAM, OTHER, ""]):
            routing = rulebook.Routing(stream, STREAM)
            assert index.match(doc, stream) == rulebook.match_rules(doc, RULES, routing)
            assert index.candidates(doc, stream) == [r for r in RULES if rulebook.rule_matches(doc, r, routing)]


def test_a_caller_mutating_its_answer_does_not_change_the_next():
    index = rulebook.RuleIndex(RULES, STREAM)
    for ask in (index.match, index.candidates, index.require):
        got = ask(cnm(), STREAM)
        expected = list(got)
        got.clear()
        got.append(rule("intruder"))
        assert ask(cnm(), STREAM) == expected


def test_past_its_bound_the_memo_starts_again_and_still_answers(monkeypatch):
    monkeypatch.setattr(rulebook, "MEMO_KEYS", 3)
    index = rulebook.RuleIndex(RULES, STREAM)
    for _ in range(2):
        for doc in DOCS:
            assert index.match(doc, STREAM) == rulebook.match_rules(doc, RULES, rulebook.Routing(STREAM, STREAM))
            assert len(index._memo) <= 3


def test_require_raises_every_time_for_no_rule_and_for_disabled_rules():
    index = rulebook.RuleIndex([rule("off", state="DISABLED")], STREAM)
    for _ in range(2):
        with pytest.raises(NoMatchingRuleError, match="off are DISABLED"):
            index.require(cnm(), STREAM)
        with pytest.raises(NoMatchingRuleError, match="no rule for collection 'E'"):
            index.require(cnm("E"), STREAM)


def test_a_reload_builds_a_new_index_with_an_empty_memo():
    index = rulebook.RuleIndex(RULES, STREAM)
    index.match(cnm(), STREAM)
    assert index._memo and not rulebook.RuleIndex(RULES, STREAM)._memo
