"""A failed granule is found with `status`, fixed at the provider and reingested to SUCCEEDED; stack discovery;
exit codes."""

from __future__ import annotations

import json

from .conftest import Cli, notification


def test_failed_granule_found_fixed_and_reingested(local, cli, tmp_path):
    good = b"the real granule" * 64
    local.put_object("s3://provider-bucket/g-bad.nc", b"a truncated upload")  # the provider's mistake
    cnm_file = tmp_path / "g-bad.json"
    cnm_file.write_text(json.dumps(notification("g-bad", good)))
    sent = cli.json("send", str(cnm_file))
    assert [s["identifier"] for s in sent] == ["g-bad"] and sent[0]["sequence_number"]
    local.deliver_notifications()
    (first,) = local.wait_for_executions()
    assert first["status"] == "FAILED"
    local.record()

    counts = cli.json("status", "--since", "1h")
    assert counts["executions"]["FAILED"] == 1 and counts["granules"]["FAILED"] == 1
    assert sum(counts["executions"].values()) == 1
    failed = cli.json("status", "--granules", "--status", "FAILED", "--collection", "COLL__1")
    assert [(g["granule_id"], g["provider"]) for g in failed] == [("g-bad", "PROV")]
    detail = cli.json("status", "g-bad")
    assert detail["granule"][0]["status"] == "FAILED" and detail["granule"][0]["error"]
    assert detail["granule"][0]["original_error"]["Error"] == "SizeMismatchError"
    assert detail["granule"][0]["original_error"]["errorCode"] == "VALIDATION_ERROR"  # size mismatch (issue 13)
    assert detail["cnm"]["identifier"] == "g-bad"
    execution = cli.json("status", first["executionArn"])
    assert execution["execution"]["status"] == "FAILED" and "FAILED:0" in execution["events"]
    assert any(e["type"] == "ExecutionFailed" for e in execution["history"])
    human = cli("status", "g-bad").stdout
    assert "FAILED" in human and "attempts" in human

    local.put_object("s3://provider-bucket/g-bad.nc", good)  # fixed at the provider
    again = cli.json("reingest", "g-bad")
    assert again["started"] is True and again["reingest_of"] == first["executionArn"]
    assert "-reingest-" in again["execution_name"] and len(again["execution_name"]) <= 80
    executions = {e["executionArn"]: e for e in local.wait_for_executions()}
    assert executions[again["execution_arn"]]["status"] == "SUCCEEDED"
    reingest_input = json.loads(executions[again["execution_arn"]]["input"])
    assert reingest_input["meta"]["collection"]["duplicate_handling"] == "replace"  # the collection says "error"
    assert reingest_input["meta"]["reingest"] == {"of": first["executionArn"]}
    local.record()

    granule = cli.json("status", "g-bad")
    assert granule["granule"][0]["status"] == "SUCCEEDED"
    assert [(a["status"], a["reingest"]) for a in granule["attempts"]] == [("FAILED", False), ("SUCCEEDED", True)]
    # a script retrying with an idempotency key starts one execution, not two
    keyed = [cli.json("reingest", "g-bad", "--idempotency-key", "ticket-42") for _ in range(2)]
    assert [k["started"] for k in keyed] == [True, False]
    assert keyed[0]["execution_name"] == keyed[1]["execution_name"] and "-reingest-" in keyed[0]["execution_name"]
    local.wait_for_executions()
    local.record()
    assert len(cli.json("status", "g-bad")["attempts"]) == 3
    assert cli.json("status", "--since", "1h")["granules"] == {
        "RUNNING": 0,
        "SUCCEEDED": 1,
        "FAILED": 0,
        "TIMED_OUT": 0,
        "ABORTED": 0,
    }
    assert (
        local.s3.get_object(Bucket=local.STAGING_BUCKET, Key="file-staging/local/COLL__1/g-bad.nc")["Body"].read()
        == good
    )
    lines = cli("responses", "--identifier", "g-bad", "--json").stdout.splitlines()
    assert [json.loads(line)["message"]["response"]["status"] for line in lines] == ["FAILURE", "SUCCESS", "SUCCESS"]
    assert cli("responses", "--status", "FAILURE", "--limit", "1").stdout.count("FAILURE  g-bad") == 1
    followed = cli("responses", "--follow", "--limit", "2", "--json").stdout.splitlines()  # returns at the limit
    assert [json.loads(line)["message"]["identifier"] for line in followed] == ["g-bad", "g-bad"]


def test_send_refuses_invalid_cnms_with_the_reason(local, cli, tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(notification("ok", b"x")))
    (tmp_path / "bad.json").write_text(json.dumps(notification("bad", b"x", product={"name": "bad"})))
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    result = cli("send", str(tmp_path), "--json", code=6)
    results = {r["file"].rsplit("/", 1)[1]: r for r in json.loads(result.stdout)}
    assert "sequence_number" in results["ok.json"]
    assert "not a valid CNM" in results["bad.json"]["refused"]
    assert "not UTF-8" in results["binary.json"]["refused"]
    assert len(local.stream_payloads()) == 1  # only the valid one was put


def test_stack_from_terraform_outputs_file_and_directory(local, tmp_path):
    from tools.cli_stack import write_outputs

    write_outputs(local, str(tmp_path / "outputs.json"))
    assert Cli("--outputs", str(tmp_path / "outputs.json")).json("rules", "list")[0]["name"] == "coll"
    state = {"version": 4, "outputs": {k: {"value": v["value"], "type": "string"} for k, v in local.outputs().items()}}
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "terraform.tfstate").write_text(json.dumps(state))
    assert Cli("--outputs", str(tmp_path / "tf")).json("rules", "list")[0]["name"] == "coll"


def test_errors_have_distinct_exit_codes(local, cli, tmp_path):
    assert "which stack" in Cli()("status", code=3).output
    assert Cli("--outputs", str(tmp_path / "missing.json"))("status", code=3)
    assert "no stream" in Cli("--prefix", "other")("send", str(tmp_path), code=3).output
    assert "no granule or execution" in cli("status", "nope", code=5).output
    assert "no granule or execution" in cli("reingest", "nope", code=5).output
    assert "no rule" in cli("rules", "enable", "nope", code=5).output
    assert "not a time" in cli("status", "--since", "last tuesday", code=6).output
    assert cli("status", "--bogus", code=2)


def test_access_denied_is_exit_4(local, cli, monkeypatch):
    from botocore.exceptions import ClientError

    from cnm_ingest import records

    def denied(*args, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not you"}}, "Query")

    monkeypatch.setattr(records, "query_status", denied)
    assert "access denied" in cli("status", code=4).output


def test_rules_enable_disable(local, cli):
    assert cli.json("rules", "disable", "coll") == {"name": "coll", "state": "DISABLED"}
    assert [r["state"] for r in cli.json("rules", "list")] == ["DISABLED"]
    cli("rules", "enable", "coll")
    assert "ENABLED" in cli("rules", "list").stdout
