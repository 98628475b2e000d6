"""The operator CLI (`cnm-ingest`, run through Click's CliRunner) on the pipeline Terraform applied
(examples/complete, the session's apply), run by localaws.runtime as AWS runs it.

The stack is found from `terraform output -json` of the applied example (a file), from its
Terraform directory (the state file), and from `--prefix`. Every side effect is counted without
collapsing duplicates: executions per CNM identifier, DLQ messages per record, responses per
identifier, stream records per identifier.

The examples' rules are changed before the runtime starts (`cnm_samples` disabled,
`sentinel6_nrt_any_version` enabled), so a consumer's first read sees them; they are put back at
the end. A change made while consumers run is seen within the stack's RULES_CACHE_SECONDS: the
DLQ test waits that long after `rules enable` before it redrives.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cnm_ingest_cli import ops
from cnm_ingest_cli.errors import NotFound

from cnm_ingest import aws, dlq
from demo import cli_demo
from demo.cli_demo import paused
from localaws import pipeline, server
from localaws.runtime import Runtime
from tests.cli_runner import Cli
from tests.events import sns_event

from .conftest import EXAMPLES, REGION

pytestmark = [pytest.mark.terraform, pytest.mark.provider]
PREFIX = EXAMPLES["complete"]
BUCKET = cli_demo.BUCKET
SWOT, SAMPLES = cli_demo.SWOT, cli_demo.SAMPLES  # SAMPLES: the collection of the rule cnm_samples
SENTINEL6 = ("PODAAC_SENTINEL6", "JASON_CS_S6A_L2_ALT_LR_STD_OST_NRT_F", "F")  # duplicate handling "skip"
RULE_CHANGES = {"cnm_samples": ("disable", "enable"), "sentinel6_nrt_any_version": ("enable", "disable")}


def cnm(name: str, data: bytes, routing: tuple[str, str, str] = SWOT) -> dict[str, Any]:
    """A notification, identifier ``id-<name>``, for one file ``s3://<provider bucket>/cli/<name>.nc``."""
    return cli_demo.cnm(name, data, routing, identifier=f"id-{name}", folder="cli")


class Live:
    """The running stack as the tests see it: the CLI three ways, the runtime, and counters."""

    def __init__(
        self, rt: Runtime, client: Callable[[str], Any], env: dict[str, str | None], outputs: Path, state_dir: Path
    ):
        self.rt, self.client, self.env = rt, client, env
        self.cli = Cli("--outputs", str(outputs), env=env)
        self.by_dir = Cli("--outputs", str(state_dir), env=env)
        self.by_prefix = Cli("--prefix", PREFIX, env=env)
        assert rt.stack is not None
        self.machine = rt.stack.state_machines[f"{PREFIX}-cnm-workflow"]["stateMachineArn"]
        self.rules_cache_seconds = float(rt.stack.function("message_consumer").environment["RULES_CACHE_SECONDS"])
        self.rules_changed_at = 0.0
        self.tmp = outputs.parent

    def stage(self, name: str, data: bytes) -> None:
        pipeline.stage_files(
            self.client("s3"), [pipeline.Record(name, b"", "", {f"s3://{BUCKET}/cli/{name}.nc": data})], REGION
        )

    def send(self, *messages: dict[str, Any], code: int = 0) -> list[dict[str, Any]]:
        """`cnm-ingest send` of one file per message; waits until the pipeline is idle."""
        inbox = self.tmp / f"inbox-{time.monotonic_ns()}"
        inbox.mkdir()
        for i, message in enumerate(messages):
            (inbox / f"{i:02d}.json").write_text(json.dumps(message))
        sent = self.cli.json("send", str(inbox), code=code)
        self.settle()
        return sent

    def settle(self) -> None:
        """The pipeline idle, and the recorder caught up: every execution recorded at its status (the records
        follow asynchronously: EventBridge -> SQS -> recorder, as on AWS)."""
        assert self.rt.wait_idle(timeout=180), f"the pipeline did not settle: {self.rt.errors}"
        sfn, ddb = self.client("stepfunctions"), self.client("dynamodb")
        deadline = time.monotonic() + 60
        while True:
            behind = []
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.machine):
                for e in page["executions"]:
                    item = ddb.get_item(
                        TableName=f"{PREFIX}-executions",
                        Key={"pk": {"S": f"EXECUTION#{e['executionArn']}"}, "sk": {"S": "EXECUTION"}},
                        ConsistentRead=True,
                    ).get("Item")
                    if item is None or item["status"]["S"] != e["status"]:
                        behind.append(e["executionArn"])
            if not behind:
                return
            assert time.monotonic() < deadline, f"the recorder did not catch up: {behind}"
            time.sleep(0.5)

    def executions(self, identifier: str) -> list[dict[str, Any]]:
        """Every execution whose workflow input names this CNM identifier (no collapsing)."""
        sfn = self.client("stepfunctions")
        out = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.machine):
            for e in page["executions"]:
                described = sfn.describe_execution(executionArn=e["executionArn"])
                if json.loads(described["input"]).get("meta", {}).get("cnm", {}).get("identifier") == identifier:
                    out.append(described)
        return sorted(out, key=lambda e: e["startDate"])

    def stream_count(self, identifier: str) -> int:
        """Records on the notification stream carrying this identifier."""
        found = 0
        for record in pipeline.read_stream(self.client("kinesis"), self.rt.stack.streams[f"{PREFIX}-notifications"]):
            try:
                found += json.loads(record["Data"]).get("identifier") == identifier
            except ValueError:
                continue
        return found

    def answers(self, identifier: str) -> list[str]:
        """Response statuses for this identifier, in stream order per shard (`cnm-ingest responses`)."""
        lines = self.cli.lines("responses", "--identifier", identifier)
        assert all(r["message"]["identifier"] == identifier for r in lines)
        return [r["message"]["response"]["status"] for r in lines]

    def dlq(self, *, identifier: str | None = None, sequence_number: str | None = None) -> list[dict[str, Any]]:
        """DLQ messages (`cnm-ingest dlq list`) carrying a record with this identifier or sequence number."""
        return [
            m
            for m in self.cli.json("dlq", "list")
            if any(
                (identifier and r["identifier"] == identifier)
                or (sequence_number and r["sequence_number"] == sequence_number)
                for r in m["records"]
            )
        ]


def _terraform_output_json(tf_api, path: Path) -> None:
    """`terraform output -json` of the applied example (pytest-terraform's work and state), saved to ``path``."""
    runner = tf_api.terraform
    proc = subprocess.run(
        [runner.tf_bin, "output", "-json", f"-state={runner.state_path}"],
        cwd=runner.module_dir,
        env={**os.environ, "TF_DATA_DIR": runner.work_dir, "TF_IN_AUTOMATION": "yes"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    outputs = json.loads(proc.stdout)
    assert outputs["notification_stream_arn"]["value"].endswith(f"/{PREFIX}-notifications")
    path.write_text(proc.stdout)


@pytest.fixture(scope="module")
def live(complete_applied, session, local_aws, tmp_path_factory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("cli")
    _terraform_output_json(complete_applied, tmp / "outputs.json")
    env = {
        "AWS_ENDPOINT_URL": local_aws.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PROFILE": None,  # unset (CliRunner)
    }
    state_dir = Path(complete_applied.terraform.state_path).resolve().parent
    cli = Cli("--outputs", str(tmp / "outputs.json"), env=env)
    for rule, (before, _after) in RULE_CHANGES.items():
        assert cli.json("rules", before, rule)["name"] == rule
    try:
        with Runtime(session, local_aws.endpoint, PREFIX, tmp / "runtime") as rt:
            yield Live(
                rt, lambda s: session.client(s, endpoint_url=local_aws.endpoint), env, tmp / "outputs.json", state_dir
            )
    finally:
        for rule, (_before, after) in RULE_CHANGES.items():
            cli.json("rules", after, rule)


def test_the_stack_is_found_from_outputs_file_directory_and_prefix(live):
    listed = live.cli.json("rules", "list")
    assert {r["name"]: r["state"] for r in listed} == {
        "cnm_samples": "DISABLED",
        "sentinel6_nrt_any_version": "ENABLED",
        "swot_l2_lr_ssh": "ENABLED",
    }
    assert live.by_dir.json("rules", "list") == listed == live.by_prefix.json("rules", "list")
    window = ("status", "--since", "2026-01-01T00:00:00Z", "--until", "2099-01-01T00:00:00Z")
    assert live.by_dir.json(*window) == live.cli.json(*window) == live.by_prefix.json(*window)
    # a valid CNM, so that there is something to put: refusing invalid files needs no stack (exit 6 in both modes)
    (live.tmp / "nobody").mkdir(exist_ok=True)
    (live.tmp / "nobody" / "cnm.json").write_text(json.dumps(cnm("cli-nobody", b"x")))
    out = Cli("--prefix", "cnm-nobody", env=live.env)("send", str(live.tmp / "nobody"), code=3).output
    assert "no stream cnm-nobody-notifications in " in out and "wrong --prefix or region" in out


def test_rules_disable_and_enable_are_effective_on_the_consumer(live):
    """Sentinel-6 (DISABLED in the example, enabled by the CLI) is ingested; a sample-collection CNM
    (its rule disabled by the CLI) is parked once and answered once, FAILURE."""
    s6, parked = b"sentinel-6 bytes" * 40, b"sample collection bytes" * 40
    live.stage("cli-s6-ok", s6)
    live.stage("cli-dlq", parked)
    live.send(cnm("cli-s6-ok", s6, SENTINEL6), cnm("cli-dlq", parked, SAMPLES))
    assert [e["status"] for e in live.executions("id-cli-s6-ok")] == ["SUCCEEDED"]
    assert live.executions("id-cli-dlq") == []
    (entry,) = live.dlq(identifier="id-cli-dlq")
    assert "DISABLED" in entry["records"][0]["reason"]
    assert live.answers("id-cli-dlq") == ["FAILURE"] and live.answers("id-cli-s6-ok") == ["SUCCESS"]
    assert live.cli.json("rules", "enable", "cnm_samples") == {"name": "cnm_samples", "state": "ENABLED"}
    live.rules_changed_at = time.monotonic()


def test_failed_granule_is_found_fixed_and_reingested_to_success(live):
    good = b"the real sentinel-6 granule" * 64
    live.stage("cli-bad", bytes(len(good)))  # the provider's mistake: the right size, the wrong bytes
    (sent,) = live.send(cnm("cli-bad", good, SENTINEL6))
    assert sent["identifier"] == "id-cli-bad" and sent["sequence_number"]
    (first,) = live.executions("id-cli-bad")
    assert first["status"] == "FAILED"

    failed = live.cli.json("status", "--granules", "--status", "FAILED", "--since", "1h")
    assert [(g["granule_id"], g["provider"]) for g in failed if g["granule_id"] == "cli-bad"] == [
        ("cli-bad", "PODAAC_SENTINEL6")
    ]
    filtered = ("status", "--granules", "--status", "FAILED", "--collection", f"{SENTINEL6[1]}__F")
    assert [g["granule_id"] for g in live.cli.json(*filtered, "--provider", SENTINEL6[0])] == ["cli-bad"]
    assert live.cli.json(*filtered, "--provider", "PODAAC_SWOT") == []
    detail = live.cli.json("status", "cli-bad")
    assert [(g["status"], g["execution_arn"]) for g in detail["granule"]] == [("FAILED", first["executionArn"])]
    assert detail["granule"][0]["original_error"]["errorCode"] == "VALIDATION_ERROR"
    assert detail["cnm"]["identifier"] == "id-cli-bad"
    assert "FAILED" in live.cli("status", "cli-bad").stdout  # the human view renders

    live.stage("cli-bad", good)  # fixed at the provider
    again = live.cli.json("reingest", "cli-bad")
    assert again["started"] is True and again["reingest_of"] == first["executionArn"]
    assert "-reingest-" in again["execution_name"] and len(again["execution_name"]) <= 80
    live.settle()
    executions = live.executions("id-cli-bad")
    assert [(e["executionArn"], e["status"]) for e in executions] == [
        (first["executionArn"], "FAILED"),
        (again["execution_arn"], "SUCCEEDED"),
    ]
    meta = json.loads(executions[1]["input"])["meta"]
    collection = meta["collection"]
    assert (collection.get("config") or collection)["duplicate_handling"] == "replace"  # the collection says skip
    assert meta["reingest"] == {"of": first["executionArn"]}
    granule = live.cli.json("status", "cli-bad")
    assert granule["granule"][0]["status"] == "SUCCEEDED"
    assert [(a["status"], a["reingest"]) for a in granule["attempts"]] == [("FAILED", False), ("SUCCEEDED", True)]
    assert live.answers("id-cli-bad") == ["FAILURE", "SUCCESS"]
    # a script retrying with an idempotency key starts one execution, not two
    keyed = [live.cli.json("reingest", "cli-bad", "--idempotency-key", "ticket-42") for _ in range(2)]
    assert [k["started"] for k in keyed] == [True, False] and keyed[0]["execution_name"] == keyed[1]["execution_name"]
    live.settle()
    assert [e["status"] for e in live.executions("id-cli-bad")] == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert len(live.cli.json("status", "cli-bad")["attempts"]) == 3


class ConfigItem:
    """One item of a configuration table (providers, collections), changed by a test and put back after."""

    def __init__(self, live: Live, kind: str, key: dict[str, str]):
        self.ddb, self.table = live.client("dynamodb"), f"{PREFIX}-{kind}"
        self.key = {k: {"S": v} for k, v in key.items()}
        self.original = self.ddb.get_item(TableName=self.table, Key=self.key, ConsistentRead=True)["Item"]

    def change(self, **config: Any) -> None:
        item = dict(self.original)
        item["config"] = {"S": json.dumps({**json.loads(self.original["config"]["S"]), **config})}
        self.ddb.put_item(TableName=self.table, Item=item)

    def delete(self) -> None:
        self.ddb.delete_item(TableName=self.table, Key=self.key)

    def restore(self) -> None:
        self.ddb.put_item(TableName=self.table, Item=self.original)


def test_reingest_runs_with_the_configuration_as_it_is_now_and_says_what_changed(live, monkeypatch):
    """Cumulus's reingest reloads the provider and the collection: so does ours. A provider's allowed_prefixes
    tightened after the first run fails the reingest (the file is now outside them); a url_path fixed is used;
    the collection deleted is refused (exit 6). Two operators reingesting at once with one key start one."""
    data = b"reconfigured granule" * 50
    live.stage("cli-reconf", data)
    live.send(cnm("cli-reconf", data))
    (first,) = live.executions("id-cli-reconf")
    assert first["status"] == "SUCCEEDED"
    provider = ConfigItem(live, "providers", {"id": SWOT[0]})
    collection = ConfigItem(live, "collections", {"name": SWOT[1], "version": SWOT[2]})
    try:
        provider.change(allowed_prefixes=["somewhere-else/"])
        tightened = live.cli.json("reingest", "cli-reconf")
        assert tightened["started"] is True and tightened["first_run_known"] is True
        assert tightened["changes"] == [
            {"setting": "provider.allowed_prefixes", "first_run": None, "now": ["somewhere-else/"]}
        ]
        # the text view shows it: reingest the first execution itself (the granule's latest attempt is now the
        # reingest above, written to the one status store at its start, which already ran with this configuration)
        assert "provider.allowed_prefixes" in live.cli("reingest", first["executionArn"]).stdout
        live.settle()
        statuses = [e["status"] for e in live.executions("id-cli-reconf")]
        assert statuses == ["SUCCEEDED", "FAILED", "FAILED"], statuses  # outside the provider's prefixes now
        provider.restore()
        collection.change(url_path="fixed/{collection}")
        fixed = live.cli.json("reingest", "cli-reconf")  # the granule's latest execution: a tightened one
        url_path = json.loads(collection.original["config"]["S"]).get("url_path")
        assert fixed["changes"] == [
            {"setting": "collection.url_path", "first_run": url_path, "now": "fixed/{collection}"},
            {"setting": "provider.allowed_prefixes", "first_run": ["somewhere-else/"], "now": None},
        ]
        live.settle()
        last = live.executions("id-cli-reconf")[-1]
        assert last["executionArn"] == fixed["execution_arn"] and last["status"] == "SUCCEEDED"
        assert json.loads(last["input"])["meta"]["collection"]["url_path"] == "fixed/{collection}"

        # two operators at once, one idempotency key: one execution
        monkeypatch.setenv("AWS_ENDPOINT_URL", live.env["AWS_ENDPOINT_URL"])
        aws.reset()
        stack = live_stack(live)
        results: list[dict[str, Any]] = []
        threads = [
            threading.Thread(target=lambda: results.append(ops.reingest(stack, "cli-reconf", key="ticket-7")))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len({r["execution_name"] for r in results}) == 1 and len(results) == 2
        live.settle()
        assert len(live.executions("id-cli-reconf")) == 5  # first, two tightened, fixed, one of the two at once

        collection.delete()
        refused = live.cli("reingest", "cli-reconf", code=6).output
        assert "configuration as it is now" in refused and SWOT[1] in refused
        assert len(live.executions("id-cli-reconf")) == 5  # nothing started
    finally:
        provider.restore()
        collection.restore()
    assert Counter(live.answers("id-cli-reconf")) == {"SUCCESS": 3, "FAILURE": 2}  # one answer an execution


def test_send_refuses_an_invalid_cnm_and_responses_filter_by_identifier(live):
    data = b"sent by the cli" * 30
    live.stage("cli-sent", data)
    invalid = cnm("cli-invalid", data)
    del invalid["product"]["files"][0]["size"]
    results = {r["file"].rsplit("/", 1)[1]: r for r in live.send(cnm("cli-sent", data), invalid, code=6)}
    assert results["00.json"]["identifier"] == "id-cli-sent" and results["00.json"]["sequence_number"]
    assert "size" in results["01.json"]["refused"] and "sequence_number" not in results["01.json"]
    assert (live.stream_count("id-cli-sent"), live.stream_count("id-cli-invalid")) == (1, 0)
    assert [e["status"] for e in live.executions("id-cli-sent")] == ["SUCCEEDED"]
    assert live.answers("id-cli-sent") == ["SUCCESS"]
    assert live.answers("id-cli-invalid") == []
    followed = live.cli.lines(
        "responses", "--follow", "--limit", "1", "--identifier", "id-cli-sent"
    )  # ends at the limit
    assert [r["message"]["response"]["status"] for r in followed] == ["SUCCESS"]
    assert live.cli.lines("responses", "--identifier", "id-cli-sent", "--status", "FAILURE") == []


def test_replay_of_a_window_starts_only_what_had_not_started(live, monkeypatch):
    """Replayed twice, and then twice at once: records the consumer started, parked or answered are already
    done; each record is started, parked and answered once in all (every DLQ entry and answer counted)."""
    names = ("cli-replay-a", "cli-replay-b", "cli-replay-c")
    for name in names:
        live.stage(name, name.encode() * 100)
    time.sleep(1.1)
    start = datetime.now(UTC)
    live.send(cnm(names[0], names[0].encode() * 100))  # ingested by the consumer
    kinesis, stream = live.client("kinesis"), live.rt.stack.streams[f"{PREFIX}-notifications"]
    poison = kinesis.put_record(StreamARN=stream, Data=b"{not json", PartitionKey="poison")["SequenceNumber"]
    live.settle()  # parked by the consumer (not addressable: no answer)
    assert len(live.dlq(sequence_number=poison)) == 1
    norule = cnm("cli-replay-norule", b"x", ("PODAAC_SWOT", "NO_SUCH_COLLECTION", "1"))
    with paused(live.rt, "message_consumer"):  # the consumer is down while b, c and a bad record arrive
        for name in names[1:]:
            kinesis.put_record(
                StreamARN=stream, Data=json.dumps(cnm(name, name.encode() * 100)).encode(), PartitionKey=name
            )
        bad = kinesis.put_record(StreamARN=stream, Data=json.dumps(norule).encode(), PartitionKey="norule")
        time.sleep(1.1)
        end = datetime.now(UTC)
        assert [live.executions(f"id-{n}") for n in names[1:]] == [[], []]
        window = ("replay", "--from", start.isoformat(), "--to", end.isoformat())
        summary = live.cli.json(*window)
        counts = ("records", "started", "already_done", "parked", "failed", "executions_started")
        assert {k: summary[k] for k in counts} == dict(zip(counts, (5, 2, 2, 1, 0, 2), strict=True))
        reasons = {d["sequence_number"]: d.get("reason") for d in summary["details"]}
        assert reasons[poison] == "parked already" and "no rule" in reasons[bad["SequenceNumber"]].lower()
        live.settle()
        again = live.cli.json(*window)
        assert {k: again[k] for k in counts} == dict(zip(counts, (5, 0, 5, 0, 0, 0), strict=True))
        # two operators at once: nothing new either
        monkeypatch.setenv("AWS_ENDPOINT_URL", live.env["AWS_ENDPOINT_URL"])
        aws.reset()
        stack = live_stack(live)
        results: list[dict[str, Any]] = []
        threads = [threading.Thread(target=lambda: results.append(ops.replay(stack, start, end))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert [(r["records"], r["already_done"], r["parked"], r["started"]) for r in results] == [(5, 5, 0, 0)] * 2
    live.settle()  # the consumer resumes from its checkpoints: b, c and the bad record add nothing new
    for name in names:
        assert [e["status"] for e in live.executions(f"id-{name}")] == ["SUCCEEDED"], name
        assert live.answers(f"id-{name}") == ["SUCCESS"], name
    sources = Counter(r["source"] for m in live.dlq(sequence_number=poison) for r in m["records"])
    assert sources == {"message_consumer": 1}, sources  # parked once, by the consumer; no replay re-parked it
    sources = Counter(r["source"] for m in live.dlq(sequence_number=bad["SequenceNumber"]) for r in m["records"])
    assert sources == {"cli_replay": 1}, sources  # parked once, by the first replay; not by the consumer after it
    assert live.answers(norule["identifier"]) == ["FAILURE"]  # answered once
    assert live.executions(norule["identifier"]) == []


def live_stack(live: Live) -> Any:
    """The stack as the CLI finds it from the outputs file (for calling cnm_ingest_cli.ops from threads)."""
    from cnm_ingest_cli.stack import find

    return find(str(live.tmp / "outputs.json"), None)


def test_an_execution_aborted_by_hand_has_a_record(live):
    """A workflow held in its first task is stopped with StopExecution; `status` (via --prefix) shows it ABORTED."""
    data = b"to be aborted" * 20
    live.stage("cli-abort", data)
    entered, release = threading.Event(), threading.Event()

    def held(parameters, region, state_credentials=None):
        entered.set()
        release.wait(60)
        return live.rt._sfn_invoke(parameters, region, state_credentials)

    server.set_lambda_invoker(held)
    try:
        live.cli.json("send", str(_file(live.tmp / "abort.json", cnm("cli-abort", data))))
        assert entered.wait(60)
        (running,) = live.executions("id-cli-abort")
        live.client("stepfunctions").stop_execution(
            executionArn=running["executionArn"], error="Operator", cause="stopped by hand"
        )
    finally:
        release.set()
        server.set_lambda_invoker(live.rt._sfn_invoke)
    live.settle()
    assert [e["status"] for e in live.executions("id-cli-abort")] == ["ABORTED"]
    detail = live.by_prefix.json("status", running["executionArn"])
    assert detail["execution"]["status"] == "ABORTED" and detail["execution"]["granule_ids"] == ["cli-abort"]
    assert {"RUNNING:0", "ABORTED:0"} <= set(detail["events"])
    assert detail["execution"]["source"]["sequence_number"]
    aborted = live.by_prefix.json("status", "--executions", "--status", "ABORTED", "--since", "1h")
    assert running["executionArn"] in [e["execution_arn"] for e in aborted]
    assert live.by_prefix.json("status", "cli-abort")["granule"][0]["status"] == "ABORTED"
    assert live.by_prefix.json("status", "--since", "1h")["executions"]["ABORTED"] >= 1


def test_a_dead_letter_is_redriven_once_and_ingested(live):
    """The record parked while its rule was disabled (test above): listed, shown, dry run, redriven once
    even when parked twice and redriven again, then ingested."""
    (entry,) = live.dlq(identifier="id-cli-dlq")
    shown = live.cli.json("dlq", "show", entry["message_id"])
    payload = json.loads(shown["records"][0]["payload"]["text"])
    assert payload["identifier"] == "id-cli-dlq" and payload["collection"]["name"] == SAMPLES[1]
    dry = live.cli.json("dlq", "redrive", entry["message_id"], "--dry-run")
    assert [o["outcome"] for o in dry] == ["would-put"]
    assert (len(live.dlq(identifier="id-cli-dlq")), live.stream_count("id-cli-dlq")) == (1, 1)  # nothing put

    # the same record parked a second time (a duplicate DLQ message)
    sqs = live.client("sqs")
    (url,) = [u for u in live.rt.stack.queues if u.endswith("-kinesisFailure")]
    body = shown["body"] if isinstance(shown["body"], str) else json.dumps(shown["body"])
    sqs.send_message(QueueUrl=url, MessageBody=body)
    copies = [m["message_id"] for m in live.dlq(identifier="id-cli-dlq")]
    assert len(copies) == 2
    # consumers see `rules enable` within RULES_CACHE_SECONDS
    time.sleep(max(0.0, live.rules_changed_at + live.rules_cache_seconds + 1 - time.monotonic()))
    outcomes = live.cli.json("dlq", "redrive", *copies)
    assert sorted(o["outcome"] for o in outcomes) == ["already-redriven", "put"]
    sqs.send_message(QueueUrl=url, MessageBody=body)  # and once more, later
    (late,) = [m["message_id"] for m in live.dlq(identifier="id-cli-dlq")]
    assert [o["outcome"] for o in live.cli.json("dlq", "redrive", late)] == ["already-redriven"]
    live.settle()
    assert live.dlq(identifier="id-cli-dlq") == []
    assert live.stream_count("id-cli-dlq") == 2  # the original and exactly one redrive
    assert [e["status"] for e in live.executions("id-cli-dlq")] == ["SUCCEEDED"]
    assert live.answers("id-cli-dlq") == ["FAILURE", "SUCCESS"]
    assert live.cli.json("status", "cli-dlq")["granule"][0]["status"] == "SUCCEEDED"
    assert not live.rt.errors


# --- helpers ------------------------------------------------------------------------------------------


def _file(path: Path, message: dict[str, Any]) -> Path:
    path.write_text(json.dumps(message))
    return path


@pytest.mark.parametrize("identifier", ["a#b?c/../d", "g\u202e\U0001f600 é", "x" * 300])
def test_odd_identifiers_are_sent_recorded_and_found(live, identifier):
    name = f"cli-odd-{hashlib.sha256(identifier.encode()).hexdigest()[:8]}"
    data = name.encode() * 10
    live.stage(name, data)
    (sent,) = live.send(cnm(name, data) | {"identifier": identifier})
    assert sent["identifier"] == identifier
    (execution,) = live.executions(identifier)
    assert execution["status"] == "SUCCEEDED"
    found = live.cli.json("status", execution["executionArn"])
    assert found["execution"]["cnm_identifier"] == identifier and found["execution"]["granule_ids"] == [name]
    assert live.cli.json("status", name)["granule"][0]["execution_arn"] == execution["executionArn"]
    assert live.answers(identifier) == ["SUCCESS"]


def test_a_granule_in_two_collections_needs_collection(live):
    """The same product name ingested in two collections: `reingest` refuses to guess, `--collection` chooses."""
    data = b"one name, two collections" * 10
    live.stage("cli-twin", data)
    live.send(cnm("cli-twin", data) | {"identifier": "id-cli-twin-swot"}, cnm("cli-twin", data, SENTINEL6))
    assert "several collections" in live.cli("reingest", "cli-twin", code=6).output
    both = live.cli.json("status", "cli-twin")["granule"]
    assert sorted(g["collection"] for g in both) == [f"{SENTINEL6[1]}__F", f"{SWOT[1]}__2.0"]
    chosen = live.cli.json("reingest", "cli-twin", "--collection", f"{SWOT[1]}__2.0")
    assert chosen["reingest_of"] == live.executions("id-cli-twin-swot")[0]["executionArn"]
    live.settle()
    assert [e["status"] for e in live.executions("id-cli-twin-swot")] == ["SUCCEEDED", "SUCCEEDED"]
    assert [e["status"] for e in live.executions("id-cli-twin")] == ["SUCCEEDED"]


def test_not_found_is_exit_5(live):
    assert "no granule or execution" in live.cli("status", "cli-nope", code=5).output
    assert "no granule or execution" in live.cli("reingest", "cli-nope", code=5).output
    assert "no rule" in live.cli("rules", "enable", "nope", code=5).output
    assert "no message" in live.cli("dlq", "show", "00000000-0000-0000-0000-000000000000", code=5).output
    assert "no shard" in live.cli("replay", "--from", "1h", "--shard", "shardId-9", code=5).output


def _envelope(live: Live, name: str, data: bytes) -> dict[str, Any]:
    """What the pipeline parks for a record of the notification stream carrying ``cnm(name, data)``."""
    live.stage(name, data)
    payload = json.dumps(cnm(name, data)).encode()
    record = {
        "data": base64.b64encode(payload).decode(),
        "sequenceNumber": str(int(hashlib.sha256(name.encode()).hexdigest()[:20], 16)),
        "partitionKey": name,
        "shardId": "shardId-000000000000",
        "streamArn": live.rt.stack.streams[f"{PREFIX}-notifications"],
    }
    return dlq.envelope("message_consumer", f"parked by the test ({name})", "TestParked", record)


def _dlq_url(live: Live) -> str:
    (url,) = [u for u in live.rt.stack.queues if u.endswith("-kinesisFailure")]
    return url


def test_every_envelope_kind_is_decoded_redriven_and_ingested(live, monkeypatch):
    """Our envelope, one offloaded to the payload bucket, Lambda's async failure record around an SNS event,
    an SNS notification, and a body nobody can decode (kept in the DLQ, exit 7)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", live.env["AWS_ENDPOINT_URL"])
    aws.reset()
    bucket = json.loads((live.tmp / "outputs.json").read_text())["payload_bucket_name"]["value"]
    kinds = {k: _envelope(live, f"cli-kind-{k}", f"kind {k}".encode() * 30) for k in ("plain", "s3", "async", "sns")}
    bodies = {
        "plain": dlq.dumps(kinds["plain"]),
        "s3": dlq.offload(kinds["s3"], bucket=bucket, threshold=10),
        "async": json.dumps(
            {
                "requestContext": {"condition": "RetriesExhausted"},
                "requestPayload": sns_event(dlq.dumps(kinds["async"])),
                "responseContext": {"statusCode": 200},
                "responsePayload": {"errorType": "X"},
            }
        ),
        "sns": json.dumps({"Type": "Notification", "MessageId": "m", "Message": dlq.dumps(kinds["sns"])}),
        "junk": "hello, not JSON",
    }
    sqs, url = live.client("sqs"), _dlq_url(live)
    ids = {k: sqs.send_message(QueueUrl=url, MessageBody=b)["MessageId"] for k, b in bodies.items()}
    assert kinds["s3"]["record"]["data"] is None and kinds["s3"]["payload_s3"]  # offloaded indeed
    listed = {m["message_id"]: m for m in live.cli.json("dlq", "list", "--payloads") if m["message_id"] in ids.values()}
    shown = {k: (listed[i]["kind"], [r["identifier"] for r in listed[i]["records"]]) for k, i in ids.items()}
    assert shown == {
        "plain": ("envelope", ["id-cli-kind-plain"]),
        "s3": ("envelope", ["id-cli-kind-s3"]),
        "async": ("lambda-async-failure", ["id-cli-kind-async"]),
        "sns": ("sns-notification", ["id-cli-kind-sns"]),
        "junk": ("unknown", []),
    }
    result = live.cli("dlq", "redrive", *ids.values(), "--json", code=7)
    assert sorted(o["outcome"] for o in json.loads(result.stdout)) == ["put"] * 4 + ["undecodable"]
    live.settle()
    remaining = [m["message_id"] for m in live.cli.json("dlq", "list")]
    assert [k for k, i in ids.items() if i in remaining] == ["junk"]  # only the undecodable message stays
    for k in kinds:
        assert [e["status"] for e in live.executions(f"id-cli-kind-{k}")] == ["SUCCEEDED"], k
        assert live.stream_count(f"id-cli-kind-{k}") == 1, k
    _delete(sqs, url, ids["junk"])  # not ours to keep: later tests read every DLQ message as JSON


def test_a_failed_put_keeps_the_message_and_a_later_redrive_puts_it(live, monkeypatch):
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    sqs, url = live.client("sqs"), _dlq_url(live)
    message_id = sqs.send_message(
        QueueUrl=url, MessageBody=dlq.dumps(_envelope(live, "cli-throttled", b"throttled" * 40))
    )["MessageId"]
    real = BaseClient._make_api_call

    def throttled(self, operation, params):
        if operation == "PutRecord":
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, operation
            )
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", throttled)
    outcomes = json.loads(live.cli("dlq", "redrive", message_id, "--json", code=7).stdout)
    assert [o["outcome"] for o in outcomes] == ["failed"] and "Throughput" in outcomes[0]["reason"]
    monkeypatch.setattr(BaseClient, "_make_api_call", real)
    assert [m["message_id"] for m in live.dlq(identifier="id-cli-throttled")] == [message_id]
    assert live.stream_count("id-cli-throttled") == 0
    assert [o["outcome"] for o in live.cli.json("dlq", "redrive", message_id)] == ["put"]
    live.settle()
    assert live.dlq(identifier="id-cli-throttled") == [] and live.stream_count("id-cli-throttled") == 1
    assert [e["status"] for e in live.executions("id-cli-throttled")] == ["SUCCEEDED"]


def _delete(sqs, url: str, message_id: str) -> None:
    for _ in range(20):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get("Messages", []):
            if m["MessageId"] == message_id:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                return
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    raise AssertionError(f"no DLQ message {message_id}")


def _gap_stream(live: Live, name: str, payloads: list[bytes]) -> tuple[str, list[str]]:
    """A stream no consumer reads (standing in for records a failed batch gave up on), holding ``payloads``."""
    kinesis = live.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    seqs = [
        kinesis.put_record(StreamARN=arn, Data=p, PartitionKey=f"k{i}")["SequenceNumber"]
        for i, p in enumerate(payloads)
    ]
    return arn, seqs


def _gap_envelope(stream: str, start: str, end: str, size: int) -> dict[str, Any]:
    """What hydrate parks for a failed batch it could not read back (handlers/hydrate.py gap_envelope)."""
    info = {
        "shardId": "shardId-000000000000",
        "startSequenceNumber": start,
        "endSequenceNumber": end,
        "batchSize": size,
        "streamArn": stream,
    }
    env = dlq.envelope("hydrate", "the batch failed; not read back", "RecordsNotReadBack", None, batch=info)
    env["missing"] = {"count": size, "ranges": [{"from": start, "to": end}]}
    return env


def test_dlq_redrive_resends_a_parked_response_once_and_rehydrates_a_gap_or_says_it_is_lost(live, monkeypatch):
    """A parked response is sent again once (twice parked, redriven twice and at once: one answer); a gap entry
    whose range is still in the stream is read again and its records ingested once; a range the stream no longer
    has is reported lost with its range and count, stays in the DLQ, and the exit code is 7."""
    from cnm_ingest.cnm.response_message import build_response

    monkeypatch.setenv("AWS_ENDPOINT_URL", live.env["AWS_ENDPOINT_URL"])
    aws.reset()
    sqs, url = live.client("sqs"), _dlq_url(live)
    # a response CnmResponse could not deliver, parked twice (a duplicate DLQ message)
    note = cnm("cli-undelivered", b"x") | {"identifier": "id-cli-undelivered"}
    response = build_response(note, status="FAILURE", error_code="PROCESSING_ERROR", error_message="a#b?c")
    context = {
        "execution_arn": live.machine.replace(":stateMachine:", ":execution:") + ":undelivered-1",
        "execution_name": "undelivered-1",
    }
    body = dlq.dumps(
        dlq.response_envelope(response, "ProvisionedThroughputExceededException: slow", "X", failure_context=context)
    )
    copies = [sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"] for _ in range(3)]
    dry = live.cli.json("dlq", "redrive", copies[0], "--dry-run")
    assert [(o["kind"], o["outcome"]) for o in dry] == [("response", "would-answer")]
    assert live.answers("id-cli-undelivered") == []
    first = live.cli.json("dlq", "redrive", copies[0])
    assert [(o["kind"], o["outcome"], o["status"]) for o in first] == [("response", "answered", "FAILURE")]
    # two operators at once on the other two copies (a copy the other one holds invisible is not found: exit 5)
    outcomes: list[str] = []
    stack = live_stack(live)

    def redrive(copy: str) -> None:
        with contextlib.suppress(NotFound):
            outcomes.extend(o["outcome"] for o in ops.dlq_redrive(stack, [copy]))

    threads = [threading.Thread(target=redrive, args=(c,)) for c in copies[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    time.sleep(1)
    for c in set(copies[1:]) & {m["message_id"] for m in live.cli.json("dlq", "list")}:
        outcomes.extend(o["outcome"] for o in live.cli.json("dlq", "redrive", c))
    assert outcomes == ["already-answered", "already-answered"]
    assert live.answers("id-cli-undelivered") == ["FAILURE"]  # once, whatever the number of redrives
    remaining = {m["message_id"] for m in live.cli.json("dlq", "list")}
    assert not remaining & set(copies)

    # a gap whose records are still in the stream: read again, ingested once, the entry deleted
    names = ("cli-gap-a", "cli-gap-b")
    for name in names:
        live.stage(name, name.encode() * 20)
    payloads = [json.dumps(cnm(n, n.encode() * 20)).encode() for n in names]
    stream, seqs = _gap_stream(live, f"{PREFIX}-gap-{time.monotonic_ns()}", payloads)
    gap = dlq.dumps(_gap_envelope(stream, seqs[0], seqs[1], 2))
    gaps = [sqs.send_message(QueueUrl=url, MessageBody=gap)["MessageId"] for _ in range(2)]
    out = live.cli.json("dlq", "redrive", gaps[0])
    assert [(o["kind"], o["sequence_number"], o["outcome"]) for o in out] == [
        ("gap", seqs[0], "put"),
        ("gap", seqs[1], "put"),
    ]
    assert [o["outcome"] for o in live.cli.json("dlq", "redrive", gaps[1])] == ["already-redriven"] * 2
    live.settle()
    for name in names:
        assert [e["status"] for e in live.executions(f"id-{name}")] == ["SUCCEEDED"], name
        assert live.stream_count(f"id-{name}") == 1 and live.answers(f"id-{name}") == ["SUCCESS"], name

    # a gap the stream no longer fully has: what is there is done already, the rest is lost and said so (exit 7)
    partial = sqs.send_message(QueueUrl=url, MessageBody=dlq.dumps(_gap_envelope(stream, seqs[0], seqs[1], 5)))
    result = live.cli("dlq", "redrive", partial["MessageId"], code=7)
    assert "3 record(s) of shardId-000000000000" in result.output and "lost" in result.output
    rows = json.loads(live.cli("dlq", "redrive", partial["MessageId"], "--json", code=7).stdout)
    assert [o["outcome"] for o in rows] == ["already-redriven", "already-redriven", "lost"]
    assert rows[-1]["lost"] == {"count": 3, "ranges": [{"from": seqs[0], "to": seqs[1]}]}
    live.client("kinesis").delete_stream(StreamARN=stream)  # trimmed away entirely
    gone = json.loads(live.cli("dlq", "redrive", partial["MessageId"], "--json", code=7).stdout)
    assert [o["outcome"] for o in gone] == ["lost"] and gone[0]["lost"]["ranges"] == [{"from": seqs[0], "to": seqs[1]}]
    assert partial["MessageId"] in {m["message_id"] for m in live.cli.json("dlq", "list")}  # kept, not silently
    _delete(sqs, url, partial["MessageId"])
    for name in names:
        assert len(live.executions(f"id-{name}")) == 1, name  # no redrive started anything twice
