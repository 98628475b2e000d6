"""DLQ redrive (once, even when asked twice) and ingest; every envelope kind decoded; replay of a window starts
only what had not started; an execution aborted by hand has a record."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

from cnm_ingest import dlq
from tests.events import sns_event
from tools.local_pipeline import ACCOUNT
from tools.recorder_feed import feed

from .conftest import notification


def test_a_dead_letter_is_redriven_once_and_ingested(local, cli):
    data = b"late granule" * 10
    local.put_object("s3://provider-bucket/g-dl.nc", data)
    payload = json.dumps(notification("g-dl", data)).encode()
    cli("rules", "disable", "coll")
    local.notify(payload, "g-dl")
    local.deliver_new()
    local.deliver_fallback()  # the fallback consumer tries again, then dead-letters it
    assert local.dead_letter_count() == 1
    (entry,) = cli.json("dlq", "list")
    assert entry["kind"] == "envelope" and entry["records"][0]["identifier"] == "g-dl"
    assert "DISABLED" in entry["records"][0]["reason"]
    shown = cli.json("dlq", "show", entry["message_id"])
    assert json.loads(shown["records"][0]["payload"]["text"]) == json.loads(payload)

    cli("rules", "enable", "coll")
    dry = cli.json("dlq", "redrive", "--all", "--dry-run")
    assert [o["outcome"] for o in dry] == ["would-put"]
    assert local.dead_letter_count() == 1 and local.stream_payloads().count(payload) == 1

    body = local.sqs.receive_message(QueueUrl=local.dlq_url, VisibilityTimeout=0)["Messages"][0]["Body"]
    local.sqs.send_message(QueueUrl=local.dlq_url, MessageBody=body)  # the same record parked twice
    outcomes = cli.json("dlq", "redrive", "--all")
    assert sorted(o["outcome"] for o in outcomes) == ["already-redriven", "put"]
    assert local.dead_letter_count() == 0
    local.sqs.send_message(QueueUrl=local.dlq_url, MessageBody=body)  # and once more, later
    assert [o["outcome"] for o in cli.json("dlq", "redrive", "--all")] == ["already-redriven"]
    assert local.dead_letter_count() == 0
    assert local.stream_payloads().count(payload) == 2  # the original and exactly one redrive

    local.deliver_new()
    (execution,) = local.wait_for_executions()
    assert execution["status"] == "SUCCEEDED"
    local.record()
    assert cli.json("status", "g-dl")["granule"][0]["status"] == "SUCCEEDED"
    # a replay over the window does not start the parked original again: its redriven copy was ingested
    replayed = cli.json("replay", "--from", "1h")
    assert (replayed["records"], replayed["started"], replayed["already_done"]) == (2, 0, 2)
    assert "redriven from the DLQ" in [d.get("reason") for d in replayed["details"]]
    assert len(local.wait_for_executions()) == 1


def test_every_envelope_kind_is_decoded_and_redriven(local, cli):
    def env(ident: str) -> dict:
        record = {
            "data": base64.b64encode(json.dumps(notification(ident, b"x")).encode()).decode(),
            "sequenceNumber": f"seq-{ident}",
            "partitionKey": ident,
            "shardId": "shardId-000000000000",
            "streamArn": local.notification_stream,
        }
        return dlq.envelope("message_consumer", f"reason {ident}", "NoMatchingRuleError", record)

    plain = dlq.dumps(env("plain"))
    big = env("offloaded")
    offloaded = dlq.offload(big, bucket=local.PAYLOAD_BUCKET, threshold=10)
    async_failure = json.dumps(
        {
            "requestContext": {"condition": "RetriesExhausted"},
            "requestPayload": sns_event(dlq.dumps(env("async"))),
            "responseContext": {"statusCode": 200},
            "responsePayload": {"errorType": "X"},
        }
    )
    sns_wrapped = json.dumps({"Type": "Notification", "MessageId": "m", "Message": dlq.dumps(env("sns"))})
    for body in (plain, offloaded, async_failure, sns_wrapped, "hello, not JSON"):
        local.sqs.send_message(QueueUrl=local.dlq_url, MessageBody=body)

    listed = cli.json("dlq", "list", "--payloads")
    kinds = sorted((m["kind"], r["identifier"]) for m in listed for r in m["records"] or [{"identifier": None}])
    assert kinds == [
        ("envelope", "offloaded"),
        ("envelope", "plain"),
        ("lambda-async-failure", "async"),
        ("sns-notification", "sns"),
        ("unknown", None),
    ]
    assert all(r["payload"]["text"] for m in listed for r in m["records"])
    assert "lambda-async-failure" in cli("dlq", "list").stdout  # the human table renders every kind
    result = cli("dlq", "redrive", "--all", "--json", code=7)
    outcomes = json.loads(result.stdout)
    assert sorted(o["outcome"] for o in outcomes) == ["put"] * 4 + ["undecodable"]
    assert local.dead_letter_count() == 1  # only the undecodable message stays
    idents = sorted(json.loads(p)["identifier"] for p in local.stream_payloads())
    assert idents == ["async", "offloaded", "plain", "sns"]


def test_a_failed_put_keeps_the_message_and_a_later_redrive_puts_it(local, cli, monkeypatch):
    local.sqs.send_message(
        QueueUrl=local.dlq_url,
        MessageBody=dlq.dumps(
            dlq.envelope(
                "hydrate",
                "r",
                "E",
                {
                    "data": base64.b64encode(b"{}").decode(),
                    "sequenceNumber": "1",
                    "partitionKey": "p",
                    "shardId": "s",
                    "streamArn": local.notification_stream,
                },
            )
        ),
    )
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real = BaseClient._make_api_call

    def throttled(self, operation, params):
        if operation == "PutRecord":
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, operation
            )
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", throttled)
    outcomes = json.loads(cli("dlq", "redrive", "--all", "--json", code=7).stdout)
    assert [o["outcome"] for o in outcomes] == ["failed"] and "Throughput" in outcomes[0]["reason"]
    assert local.dead_letter_count() == 1 and local.stream_payloads() == []
    monkeypatch.setattr(BaseClient, "_make_api_call", real)
    assert [o["outcome"] for o in cli.json("dlq", "redrive", "--all")] == ["put"]
    assert local.dead_letter_count() == 0 and local.stream_payloads() == [b"{}"]


def test_replay_starts_only_what_had_not_started(local, cli):
    start = datetime.now(UTC) - timedelta(seconds=5)
    sent = {}
    for ident in ("r1", "r2", "r3", "r4"):
        data = ident.encode() * 50
        local.put_object(f"s3://provider-bucket/{ident}.nc", data)
        sent[ident] = json.dumps(notification(ident, data)).encode()
    local.notify(sent["r1"], "r1")
    local.notify(sent["r2"], "r2")
    local.deliver_new()  # r1, r2 started; then the consumer is down
    local.notify(sent["r3"], "r3")
    local.notify(sent["r4"], "r4")
    local.notify(b"\xff not a CNM", "junk")
    local.checkpoint = 10**30  # nothing more is delivered by the mapping
    local.wait_for_executions()

    summary = cli.json("replay", "--from", start.isoformat(), "--to", "now")
    assert {k: summary[k] for k in ("records", "started", "already_done", "parked", "failed")} == {
        "records": 5,
        "started": 2,
        "already_done": 2,
        "parked": 1,
        "failed": 0,
    }
    assert summary["executions_started"] == 2
    executions = local.wait_for_executions()
    assert sorted(json.loads(e["input"])["meta"]["cnm"]["identifier"] for e in executions) == ["r1", "r2", "r3", "r4"]
    assert all(e["status"] == "SUCCEEDED" for e in executions)
    again = cli.json("replay", "--from", start.isoformat())
    assert (again["started"], again["already_done"], again["executions_started"]) == (0, 4, 0)
    assert len(local.wait_for_executions()) == 4
    parked = [m for m in cli.json("dlq", "list") for r in m["records"] if r["source"] == "cli_replay"]
    assert len(parked) == 2  # parked once per replay: duplicates possible, losses not
    # a window before anything was sent holds nothing
    empty = cli.json(
        "replay", "--from", (start - timedelta(hours=2)).isoformat(), "--to", (start - timedelta(hours=1)).isoformat()
    )
    assert empty["records"] == 0
    assert "no shard" in cli("replay", "--from", "1h", "--shard", "shardId-9", code=5).output


def test_an_execution_aborted_by_hand_has_a_record(local, cli):
    waiting = local.sfn.create_state_machine(
        name="local-slow-workflow",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}),
    )["stateMachineArn"]
    message = {
        "cumulus_meta": {
            "state_machine": waiting,
            "execution_name": "stuck-1",
            "source": {
                "stream_arn": local.notification_stream,
                "shard_id": "shardId-000000000000",
                "sequence_number": "42",
            },
        },
        "meta": {
            "collection": {"name": "COLL", "version": "1"},
            "provider": {"id": "PROV"},
            "rule": {"name": "coll"},
            "cnm": notification("g-stuck", b"x"),
        },
        "payload": {},
    }
    arn = local.sfn.start_execution(stateMachineArn=waiting, name="stuck-1", input=json.dumps(message))["executionArn"]
    for _ in range(50):  # moto's interpreter thread may start after a StopExecution and set RUNNING again
        local.sfn.stop_execution(executionArn=arn, error="Operator", cause="aborted by hand")
        time.sleep(0.2)
        if local.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
    assert local.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    assert feed(local.sfn, [arn]) == {"batchItemFailures": []}

    detail = cli.json("status", arn)
    assert detail["execution"]["status"] == "ABORTED"
    assert detail["execution"]["granule_ids"] == ["g-stuck"]
    assert detail["execution"]["source"]["sequence_number"] == "42"
    assert set(detail["events"]) == {"RUNNING:0", "ABORTED:0"}
    assert cli.json("status", "--since", "1h")["executions"]["ABORTED"] == 1
    assert [g["granule_id"] for g in cli.json("status", "--granules", "--status", "ABORTED")] == ["g-stuck"]
