"""The CLI where no AWS call is needed: stack discovery from Terraform outputs, refused input, usage and exit codes.

Everything that reads or writes the pipeline runs on the Terraform-applied stack (tests/e2e/test_cli.py)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from cnm_ingest_cli import stack as stack_mod
from cnm_ingest_cli.errors import StackNotFound

from tests.cli_runner import Cli

ARN = "arn:aws:kinesis:us-west-2:123456789012:stream/daac-ops-notifications"
ROOT_OUTPUTS = {
    "prefix": "daac-ops",
    "notification_stream_arn": ARN,
    "dlq_url": "http://sqs/123456789012/daac-ops-kinesisFailure",
    "rules_table_name": "daac-ops-rules",
    "executions_table_name": "daac-ops-executions",
    "state_machine_arn": "arn:aws:states:us-west-2:123456789012:stateMachine:daac-ops-cnm-workflow",
}


def _output_json(values: dict) -> dict:
    """As `terraform output -json` prints them."""
    return {k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items()}


def test_outputs_of_the_root_module_from_a_file_and_a_state_directory(tmp_path):
    (tmp_path / "outputs.json").write_text(json.dumps(_output_json(ROOT_OUTPUTS)))
    from_file = stack_mod.find(str(tmp_path / "outputs.json"), None)
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "terraform.tfstate").write_text(
        json.dumps({"version": 4, "outputs": _output_json(ROOT_OUTPUTS)})
    )
    from_dir = stack_mod.find(str(tmp_path / "tf"), None)
    for found in (from_file, from_dir):
        assert (found.prefix, found.rules_table, found.executions_table, found.dlq_url) == (
            "daac-ops",
            "daac-ops-rules",
            "daac-ops-executions",
            ROOT_OUTPUTS["dlq_url"],
        )
        assert found.notification_stream_arn == ARN


def test_outputs_of_a_configuration_wrapping_the_module(tmp_path):
    """examples/complete outputs maps of names and no prefix: the prefix comes from the names the modules make."""
    wrapped = {
        "notification_stream_arn": ARN,
        "config_table_names": {"rules": "r-custom", "collections": "c-custom", "providers": "p-custom"},
        "function_names": {"message_consumer": "daac-ops-message-consumer", "hydrate": "h"},
    }
    found = stack_mod.Stack.from_outputs(stack_mod._values(_output_json(wrapped)))
    assert (found.prefix, found.rules_table, found.collections_table, found.providers_table) == (
        "daac-ops",
        "r-custom",
        "c-custom",
        "p-custom",
    )
    assert found.executions_table == "daac-ops-executions" and found.consumer_function == "daac-ops-message-consumer"
    whole_module = stack_mod.Stack.from_outputs(stack_mod._values(_output_json({"cnm_ingest": ROOT_OUTPUTS})))
    assert (whole_module.prefix, whole_module.executions_table) == ("daac-ops", "daac-ops-executions")


@pytest.mark.parametrize("text", ["[]", '{"kms_key_arn": {"value": "k"}}', "not json"])
def test_outputs_that_are_not_the_module_s_are_stack_not_found(tmp_path, text):
    (tmp_path / "o.json").write_text(text)
    with pytest.raises(StackNotFound):
        stack_mod.find(str(tmp_path / "o.json"), None)
    assert Cli("--outputs", str(tmp_path / "o.json"))("status", code=3)


def test_send_refuses_invalid_cnms_with_the_reason_before_any_put(tmp_path):
    bad = {"version": "1.6.1", "identifier": "bad", "collection": "C", "submissionTime": "x", "provider": "P"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    result = Cli("--prefix", "nobody")("send", str(tmp_path), "--json", code=6)
    assert Cli("--prefix", "nobody")("send", str(tmp_path), code=6)  # the same exit code in text mode
    results = {r["file"].rsplit("/", 1)[1]: r for r in json.loads(result.stdout)}
    assert set(results) == {"bad.json", "binary.json", "deep.json"}
    assert all("sequence_number" not in r for r in results.values())
    assert "not a valid CNM" in results["bad.json"]["refused"]
    assert "not UTF-8" in results["binary.json"]["refused"]
    assert results["deep.json"]["refused"]


def test_errors_have_distinct_exit_codes(tmp_path):
    assert "which stack" in Cli()("status", code=3).output
    assert Cli("--outputs", str(tmp_path / "missing.json"))("status", code=3)
    assert "not a time" in Cli("--prefix", "daac-ops")("status", "--since", "last tuesday", code=2).output
    assert "is before '--from'" in Cli("--prefix", "daac-ops")("replay", "--from", "1h", "--to", "2h", code=2).output
    assert Cli("--prefix", "daac-ops")("status", "--bogus", code=2)
    assert "--all" in Cli("--prefix", "daac-ops")("dlq", "redrive", code=2).output
    assert "no file or directory" in Cli("--prefix", "daac-ops")("send", str(tmp_path / "nope"), code=5).output


def test_an_unknown_profile_is_exit_4():
    result = Cli("--prefix", "local-stack", "--profile", "no-such-profile-anywhere")("rules", "list", code=4)
    assert "no-such-profile-anywhere" in result.output


def test_access_denied_is_exit_4(monkeypatch):
    from cnm_ingest import executions

    def denied(*args, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not you"}}, "Query")

    monkeypatch.setattr(stack_mod.Stack, "require_executions_table", lambda self: "t")
    monkeypatch.setattr(executions, "query_status", denied)
    assert "access denied" in Cli("--prefix", "daac-ops")("status", code=4).output


def test_follow_is_not_blocked_by_an_idle_shard(monkeypatch):
    """`responses --follow` over two shards: the first never gets a record, the answer is on the second."""
    from datetime import UTC, datetime

    from cnm_ingest_cli import ops

    answer = {"identifier": "x", "response": {"status": "SUCCESS"}}
    record = {
        "Data": json.dumps(answer).encode(),
        "SequenceNumber": "7",
        "ApproximateArrivalTimestamp": datetime.now(UTC),
    }

    class Kinesis:
        def get_shard_iterator(self, **kw):
            return {"ShardIterator": kw["ShardId"]}

        def get_records(self, ShardIterator, StreamARN):
            if ShardIterator == "shard-1":
                return {"Records": [record], "NextShardIterator": "shard-1-read", "MillisBehindLatest": 0}
            return {"Records": [], "NextShardIterator": ShardIterator, "MillisBehindLatest": 0}

    monkeypatch.setattr(ops.aws, "client", lambda service: Kinesis())
    monkeypatch.setattr(ops, "shards", lambda stream, only=(): ["shard-0", "shard-1"])
    stack = stack_mod.Stack("p", {"response_stream_arn": ARN})
    found = ops.responses(
        stack, since=None, identifier="x", collection=None, status=None, follow=True, limit=1, sleep=lambda _s: None
    )
    assert [r["message"] for r in found] == [answer]  # returned: the idle shard yielded to the other
