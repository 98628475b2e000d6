"""What `reingest` says changed between the first run's configuration and the one it runs with now
(cnm_ingest_cli.ops.config_changes: pure; the applied-stack case is tests/e2e/test_cli.py)."""

from __future__ import annotations

import copy

from cnm_ingest_cli import ops

FIRST = {
    "cumulus_meta": {"state_machine": "arn:aws:states:us-west-2:1:stateMachine:wf", "execution_name": "e1"},
    "meta": {
        "collection": {"name": "C", "version": "1", "url_path": "{cmrMetadata.x}", "meta": {"a#b": 1}},
        "provider": {"id": "P", "host": "h", "password": "s3cret", "allowed_prefixes": ["in/"]},
        "rule": {"name": "r", "meta": {}},
        "workflow_name": "wf",
        "cnm": {"identifier": "i"},
        "buckets": {"x": 1},
    },
}


def test_nothing_changed_is_an_empty_list_whatever_else_differs():
    now = copy.deepcopy(FIRST)
    now["cumulus_meta"]["execution_name"] = "e1-reingest"  # not configuration
    now["meta"]["cnm"] = {"identifier": "other"}
    now["meta"]["buckets"] = {}
    assert ops.config_changes(FIRST, now) == []


def test_every_changed_setting_is_named_once_with_both_values_and_secrets_hidden():
    now = copy.deepcopy(FIRST)
    now["meta"]["provider"]["allowed_prefixes"] = ["in/ok/"]
    now["meta"]["provider"]["password"] = "n3w"
    del now["meta"]["collection"]["url_path"]
    now["meta"]["collection"]["meta"]["é"] = "\u202e"
    now["cumulus_meta"]["state_machine"] = "arn:aws:states:us-west-2:1:stateMachine:wf2"
    assert ops.config_changes(FIRST, now) == [
        {"setting": "collection.meta.é", "first_run": None, "now": "\u202e"},
        {"setting": "collection.url_path", "first_run": "{cmrMetadata.x}", "now": None},
        {"setting": "provider.allowed_prefixes", "first_run": ["in/"], "now": ["in/ok/"]},
        {"setting": "provider.password", "first_run": "(hidden)", "now": "(hidden)"},
        {
            "setting": "state_machine",
            "first_run": "arn:aws:states:us-west-2:1:stateMachine:wf",
            "now": "arn:aws:states:us-west-2:1:stateMachine:wf2",
        },
    ]


def test_an_unknown_first_run_lists_everything_as_new():
    changes = ops.config_changes(None, FIRST)
    assert {c["setting"] for c in changes} >= {"collection.name", "provider.id", "rule.name", "state_machine"}
    assert all(c["first_run"] is None for c in changes)
    assert next(c for c in changes if c["setting"] == "provider.password")["now"] == "(hidden)"
