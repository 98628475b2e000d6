"""`cnm-ingest reconcile` on the pipeline Terraform applied (examples/complete), run by localaws.runtime.

One scenario, the issue's (issue 23), at a small scale in CI; ``CNM_RECONCILE_SCALE=issue`` runs the issue's
own figures (1,000 CNMs: 20 bad, 10 answers that cannot be delivered, 5 aborted by hand, 5 that never finish):

- good CNMs, answered SUCCESS; the first few of one shard then trimmed from the stream (localaws.faults.trim):
  their fates come from the executions store and the trimmed range is reported with its count;
- bad CNMs (schema violations, addressable): parked and answered FAILURE by the consumer;
- answers that cannot be delivered (PutRecord on the response stream refused): parked as responses;
- executions aborted by hand while held in their first task: ended without an answer;
- executions that never finish (held in their first task): stuck past ``--stuck-after``;
- CNMs put while the consumer is down: lost (never started, parked or answered).

``reconcile`` gives every record its fate exactly; ``--fix --apply``, run twice concurrently and then again,
brings every fixable record to one answer, and each side effect is counted per identifier without collapsing:
executions, DLQ entries, answers.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cnm_ingest_cli import reconcile as reconcile_cli
from cnm_ingest_cli.stack import find

from cnm_ingest import aws
from cnm_ingest import reconcile as rec
from demo.cli_demo import paused
from localaws import faults, pipeline, server
from localaws.runtime import Runtime
from tests.cli_runner import Cli

from .conftest import EXAMPLES, REGION
from .test_cli import _terraform_output_json

pytestmark = [pytest.mark.terraform, pytest.mark.provider]
PREFIX = EXAMPLES["complete"]
BUCKET = f"{PREFIX}-provider-outbox"

SCALES = {
    #        good, trimmed, bad, undeliverable, aborted, never finish, lost
    "small": (16, 3, 4, 2, 2, 2, 2),
    "issue": (953, 20, 20, 10, 5, 5, 7),  # 1,000 CNMs
}
GOOD, TRIMMED, BAD, UNDELIVERABLE, ABORTED, HUNG, LOST = SCALES[os.environ.get("CNM_RECONCILE_SCALE", "small")]


def traffic() -> dict[str, list[pipeline.Record]]:
    """The CNMs of each group, identifiers ``rec-<group>-<n>`` (unique in the session)."""
    base = pipeline.generated_traffic(GOOD + UNDELIVERABLE + ABORTED + HUNG + LOST, BUCKET)
    groups: dict[str, list[pipeline.Record]] = {}
    sizes = {"good": GOOD, "undeliverable": UNDELIVERABLE, "aborted": ABORTED, "hung": HUNG, "lost": LOST}
    it = iter(base)
    for group, n in sizes.items():
        groups[group] = []
        for i in range(n):
            record = next(it)
            cnm = json.loads(record.payload)
            cnm["identifier"] = f"rec-{group}-{i}"
            groups[group].append(pipeline.Record(record.label, json.dumps(cnm).encode(), record.expect, record.files))
    groups["bad"] = []
    for i in range(BAD):
        cnm = copy.deepcopy(json.loads(base[0].payload))
        cnm["identifier"] = f"rec-bad-{i}"
        cnm["product"]["files"][0]["size"] = "big"  # a schema violation in an addressable CNM
        groups["bad"].append(pipeline.Record(f"bad {i}", json.dumps(cnm).encode(), pipeline.PARKED, {}))
    return groups


def identifier(record: pipeline.Record) -> str:
    return json.loads(record.payload)["identifier"]


class Held:
    """Lambda task invocations of chosen identifiers held by the Step Functions interpreter (the first task:
    the execution stays RUNNING) until released."""

    def __init__(self, rt: Runtime, identifiers: set[str]):
        self.rt, self.identifiers = rt, identifiers
        self.entered: dict[str, threading.Event] = {i: threading.Event() for i in identifiers}
        self.release: dict[str, threading.Event] = {i: threading.Event() for i in identifiers}

    def __call__(self, parameters: dict[str, Any], region: str, state_credentials: Any = None) -> dict[str, Any]:
        payload = parameters.get("Payload")
        if isinstance(payload, (bytes, bytearray)):
            text = bytes(payload).decode("utf-8", "replace")
        else:
            text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        for ident in self.identifiers:
            if f'"identifier": "{ident}"' in text or f'"identifier":"{ident}"' in text:
                self.entered[ident].set()
                self.release[ident].wait(900)
        return self.rt._sfn_invoke(parameters, region, state_credentials)

    def free(self, identifiers: set[str] | None = None) -> None:
        for ident in identifiers or self.identifiers:
            self.release[ident].set()


def settle(rt: Runtime, client: Any, held: set[str], timeout: float = 600) -> None:
    """Every poller caught up, no async event, no running execution but the held ones, and the recorder caught
    up (every execution recorded at its status), three checks in a row."""
    sfn, ddb = client("stepfunctions"), client("dynamodb")
    (machine,) = [m["stateMachineArn"] for m in rt.stack.state_machines.values() if m["name"].endswith("-cnm-workflow")]
    start = time.monotonic()
    quiet = 0
    while quiet < 3:
        assert time.monotonic() - start < timeout, f"the pipeline did not settle: {rt.busy_reasons(start)}"
        time.sleep(rt.poll_interval * 2)
        with rt._async_cv:
            busy = bool(rt._async or rt._async_busy)
        busy = busy or any(p.last_empty is None or p.last_empty < start for p in rt.pollers)
        if not busy:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
                for e in page["executions"]:
                    if e["status"] == "RUNNING" and e["name"] not in held:
                        busy = True
                    item = ddb.get_item(
                        TableName=f"{PREFIX}-executions",
                        Key={"pk": {"S": f"EXECUTION#{e['executionArn']}"}, "sk": {"S": "EXECUTION"}},
                        ConsistentRead=True,
                    ).get("Item")
                    busy = busy or item is None or item["status"]["S"] != e["status"]
        quiet = 0 if busy else quiet + 1


def executions_of(client: Any, rt: Runtime, identifiers: set[str]) -> dict[str, str]:
    """{identifier: execution ARN} of the executions whose input names one of ``identifiers``."""
    sfn = client("stepfunctions")
    (machine,) = [m["stateMachineArn"] for m in rt.stack.state_machines.values() if m["name"].endswith("-cnm-workflow")]
    out = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        for e in page["executions"]:
            message = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            # other tests of the session share the stack, and start executions of their own (some by hand)
            identifier = ((message.get("meta") or {}).get("cnm") or {}).get("identifier")
            if identifier in identifiers:
                out[identifier] = e["executionArn"]
    return out


def ours(ident: Any) -> bool:
    """An identifier of this scenario's CNMs: the session's other tests share the stack (their records, executions,
    answers and DLQ entries are theirs, not counted here)."""
    return isinstance(ident, str) and ident.startswith("rec-")


def _identifier_of(payload: str | bytes | None) -> Any:
    """The identifier of a parked record's payload, or None: other tests of the session park bytes that are not
    JSON, or JSON that is not an object (their poison pills), on the one DLQ."""
    try:
        message = json.loads(payload) if payload else None
    except ValueError:
        return None
    return message.get("identifier") if isinstance(message, dict) else None


def scenario_only(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with only this scenario's records (a trimmed record of another test keeps its row), counts
    recomputed from them."""
    rows = [r for r in report["rows"] if ours(r.get("identifier"))]
    counts = {fate: sum(1 for r in rows if r["fate"] == fate) for fate in report["counts"]}
    return {**report, "rows": rows, "counts": counts}


class Counts:
    """Side effects per identifier, read from AWS, no collapsing."""

    def __init__(self, client: Any, rt: Runtime):
        self.client, self.rt = client, rt
        (self.machine,) = [
            m["stateMachineArn"] for m in rt.stack.state_machines.values() if m["name"].endswith("-cnm-workflow")
        ]
        (self.dlq_url,) = [u for u in rt.stack.queues if u.endswith("-kinesisFailure")]

    def executions(self) -> Counter[str]:
        sfn = self.client("stepfunctions")
        found: Counter[str] = Counter()
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.machine):
            for e in page["executions"]:
                message = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
                ident = ((message.get("meta") or {}).get("cnm") or {}).get("identifier")
                if ours(ident):
                    found[ident] += 1
        return found

    def answers(self) -> Counter[tuple[str, str]]:
        records = pipeline.read_stream(self.client("kinesis"), self.rt.stack.streams[f"{PREFIX}-responses"])
        found: Counter[tuple[str, str]] = Counter()
        for r in records:
            m = json.loads(r["Data"])
            if ours(m.get("identifier")):
                found[(m["identifier"], m["response"]["status"])] += 1
        return found

    def dlq(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for entry in pipeline.dlq_entries(self.client("sqs"), self.dlq_url):
            if entry.get("envelope") == "response":
                ident = (entry.get("response") or {}).get("identifier")
                if ours(ident):
                    found[f"response:{ident}"] += 1
            else:
                ident = _identifier_of(pipeline.decode(entry))
                if ours(ident):
                    found[f"record:{ident}"] += 1
        return found

    def all(self) -> dict[str, Any]:
        return {"executions": self.executions(), "answers": self.answers(), "dlq": self.dlq()}


@pytest.fixture(scope="module")
def scenario(complete_applied, session, local_aws, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("reconcile")
    _terraform_output_json(complete_applied, tmp / "outputs.json")
    env = {
        "AWS_ENDPOINT_URL": local_aws.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    saved = {k: os.environ.get(k) for k in (*env, "AWS_PROFILE")}
    os.environ.update(env)
    os.environ.pop("AWS_PROFILE", None)
    aws.reset(session=True)
    client = lambda s: session.client(s, endpoint_url=local_aws.endpoint)  # noqa: E731
    groups = traffic()
    try:
        with Runtime(session, local_aws.endpoint, PREFIX, tmp / "runtime") as rt:
            held = Held(rt, {identifier(r) for r in groups["aborted"] + groups["hung"]})
            server.set_lambda_invoker(held)
            try:
                yield run_scenario(rt, client, groups, held, Cli("--outputs", str(tmp / "outputs.json"), env=env))
            finally:
                held.free()
                server.set_lambda_invoker(rt._sfn_invoke)
                assert rt.wait_idle(timeout=300), rt.busy_reasons()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        aws.reset(session=True)


def run_scenario(rt: Runtime, client: Any, groups: dict[str, list[pipeline.Record]], held: Held, cli: Cli) -> dict:
    kinesis = client("kinesis")
    stream = rt.stack.streams[f"{PREFIX}-notifications"]
    responses = rt.stack.streams[f"{PREFIX}-responses"]
    everything = [r for g in groups.values() for r in g]
    pipeline.stage_files(client("s3"), everything, REGION)
    start = datetime.now(UTC) - timedelta(seconds=2)
    undeliverable = {identifier(r) for r in groups["undeliverable"]}
    positions: dict[str, tuple[str, str]] = {}

    def put(records: list[pipeline.Record]) -> None:
        for r in records:
            out = kinesis.put_record(StreamARN=stream, Data=r.payload, PartitionKey=identifier(r))
            positions[identifier(r)] = (out["ShardId"], out["SequenceNumber"])

    with faults.injected() as inj:
        refused = inj.fail(
            "kinesis",
            ("PutRecord",),
            "AccessDeniedException",
            when=lambda req: (
                req.get("StreamARN", "").endswith("-responses") and req.get("PartitionKey") in undeliverable
            ),
        )
        put(groups["good"] + groups["bad"] + groups["undeliverable"] + groups["aborted"] + groups["hung"])
        for ident in {identifier(r) for r in groups["aborted"]}:
            assert held.entered[ident].wait(300), ident
        aborted = {identifier(r) for r in groups["aborted"]}
        for arn in executions_of(client, rt, aborted).values():
            client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
        held.free(aborted)
        hung = {identifier(r) for r in groups["hung"]}
        for ident in hung:
            assert held.entered[ident].wait(300), ident
        hung_names = {arn.rsplit(":", 1)[-1] for arn in executions_of(client, rt, hung).values()}
        assert len(hung_names) == HUNG
        settle(rt, client, held=hung_names)
        assert refused.fired >= UNDELIVERABLE and not refused.predicate_errors
    with paused(rt, "message_consumer"):
        put(groups["lost"])
        end = datetime.now(UTC) + timedelta(seconds=1)
        time.sleep(2.5)  # --stuck-after 2s: the held executions are stuck
        # the first records of the shard with the most good CNMs are trimmed (gone from the stream)
        shard = Counter(s for ident, (s, _) in positions.items() if ident.startswith("rec-good")).most_common(1)[0][0]
        on_shard = sorted(
            (int(seq), ident) for ident, (s, seq) in positions.items() if s == shard and ident.startswith("rec-good")
        )
        trimmed = {ident for _, ident in on_shard[:TRIMMED]}
        with faults.injected() as inj:
            inj.trim(stream, before=str(on_shard[TRIMMED][0]), shard_id=shard)
            window = ("reconcile", "--from", start.isoformat(), "--to", end.isoformat(), "--stuck-after", "2s")
            before = scenario_only(cli.json(*window, code=8))
            before_text = cli(*window, code=8).output
            counts_before = Counts(client, rt).all()
            # --fix --apply twice at once (threads), then once more: each side effect at most once
            stack = find(cli.base[1], None)
            report = reconcile_cli.report(stack, start, end, stuck_after=timedelta(seconds=2))
            fixes: list[list[dict[str, Any]]] = [[], []]

            def apply(i: int) -> None:
                fixes[i] = reconcile_cli.fix(stack, report, apply=True)

            threads = [threading.Thread(target=apply, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
            dry = cli.json(*window, "--fix", code=8)
            third = cli.json(*window, "--fix", "--apply")
        settle(rt, client, held=hung_names)  # the lost records' executions, still with the consumer down
        counts_fixed = Counts(client, rt).all()
        with faults.injected() as inj:
            inj.trim(stream, before=str(on_shard[TRIMMED][0]), shard_id=shard)
            after = scenario_only(cli.json(*window, code=8))
            after_text = cli(*window, code=8).output
            fourth = cli.json(*window, "--fix", "--apply")
    settle(rt, client, held=hung_names)  # the consumer resumes: the lost records, started already, start nothing
    counts_resumed = Counts(client, rt).all()
    return {
        "groups": groups,
        "trimmed": trimmed,
        "window": window,
        "before": before,
        "before_text": before_text,
        "after": after,
        "after_text": after_text,
        "fixes": fixes,
        "dry": dry,
        "third": third,
        "fourth": fourth,
        "counts_before": counts_before,
        "counts_fixed": counts_fixed,
        "counts_resumed": counts_resumed,
        "cli": cli,
        "responses": responses,
    }


def fates_by_identifier(report: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    out: dict[str, tuple[str, bool]] = {}
    for row in report["rows"]:
        assert row["identifier"] not in out, f"two rows for {row['identifier']}"
        out[row["identifier"]] = (row["fate"], row["in_gap"])
    return out


def expected_before(s: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    g = s["groups"]
    out = {identifier(r): (rec.SUCCESS, identifier(r) in s["trimmed"]) for r in g["good"]}
    out |= {identifier(r): (rec.FAILURE, False) for r in g["bad"]}
    out |= {identifier(r): (rec.PARKED, False) for r in g["undeliverable"]}
    out |= {identifier(r): (rec.UNANSWERED, False) for r in g["aborted"]}
    out |= {identifier(r): (rec.STUCK, False) for r in g["hung"]}
    out |= {identifier(r): (rec.LOST, False) for r in g["lost"]}
    return out


def test_every_record_gets_its_fate_exactly(scenario):
    before = scenario["before"]
    assert fates_by_identifier(before) == expected_before(scenario)
    assert before["counts"] == {
        rec.SUCCESS: GOOD,
        rec.FAILURE: BAD,
        rec.PARKED: UNDELIVERABLE,
        rec.RUNNING: 0,
        rec.STUCK: HUNG,
        rec.UNANSWERED: ABORTED,
        rec.LOST: LOST,
    }
    (gap,) = before["gaps"]
    # the store knows this scenario's trimmed records (each row above says in_gap), and any earlier test's on
    # that shard: the session's tests share the stack
    assert gap["known"] >= TRIMMED and gap["stream_count"] is None and gap["shard"]
    bad = [r for r in before["rows"] if r["identifier"].startswith("rec-bad")]
    assert {r["detail"] for r in bad} == {"VALIDATION_ERROR"}
    parked = [r for r in before["rows"] if r["fate"] == rec.PARKED]
    assert all(r["detail"].startswith("response: ") and "AccessDenied" in r["detail"] for r in parked), parked
    text = scenario["before_text"]
    assert "trimmed range" in text and "lost" in text and "stuck" in text


def test_fix_brings_every_fixable_record_to_one_answer(scenario):
    s, g = scenario, scenario["groups"]
    fixable = {identifier(r) for r in g["undeliverable"] + g["aborted"] + g["lost"]}
    # the dry run changed nothing and says what it would do
    assert {(f["identifier"], f["outcome"]) for f in s["dry"]["fixes"]} <= {
        (i, o) for i in fixable for o in ("would-resend", "would-start")
    }
    # two fixers at once: each fixable record fixed by them (the side effects are counted once each in
    # test_every_side_effect_once). Both may say "started" for one record: StartExecution with the name and
    # input of an existing execution answers as if it started it (Step Functions' own idempotency), and a
    # response put once by the delivery markers answers both callers with its saved result.
    first, second = s["fixes"]
    allowed = {"started", "answered", "already-started", "already-answered", "busy"}
    assert {f["outcome"] for f in first + second} <= allowed, (first, second)
    for ident in fixable:
        outcomes = [f["outcome"] for f in first + second + s["third"]["fixes"] if f["identifier"] == ident]
        assert {"started", "answered"} & set(outcomes), (ident, outcomes)
    # the third run has at most what a busy fixer left; the fourth finds nothing left to do
    assert {f["outcome"] for f in s["third"]["fixes"]} <= {"already-started", "already-answered", "started", "answered"}
    assert {f["outcome"] for f in s["fourth"]["fixes"]} <= {"already-started", "already-answered"}

    after = fates_by_identifier(s["after"])
    expected = expected_before(s)
    expected |= {identifier(r): (rec.SUCCESS, False) for r in g["undeliverable"] + g["lost"]}
    expected |= {identifier(r): (rec.FAILURE, False) for r in g["aborted"]}
    assert after == expected
    assert (
        s["after"]["counts"][rec.STUCK] == HUNG
        and sum(s["after"]["counts"][f] for f in (rec.LOST, rec.PARKED, rec.UNANSWERED)) == 0
    )


def test_every_side_effect_once(scenario):
    s, g = scenario, scenario["groups"]
    ids = {k: [identifier(r) for r in v] for k, v in g.items()}
    before, fixed, resumed = s["counts_before"], s["counts_fixed"], s["counts_resumed"]
    # executions: one per started record; none for bad ones; the lost ones started once by --fix, and the
    # consumer resuming from its checkpoint starts nothing more (the same deterministic names)
    for counts in (fixed, resumed):
        assert counts["executions"] == Counter(
            {i: 1 for k in ("good", "undeliverable", "aborted", "hung", "lost") for i in ids[k]}
        )
    assert sum(before["executions"].values()) == GOOD + UNDELIVERABLE + ABORTED + HUNG
    # answers: one per record, none twice
    expected = Counter({(i, "SUCCESS"): 1 for k in ("good", "undeliverable", "lost") for i in ids[k]})
    expected |= Counter({(i, "FAILURE"): 1 for k in ("bad", "aborted") for i in ids[k]})
    assert fixed["answers"] == resumed["answers"] == expected
    # DLQ: the bad records and the undelivered responses, once each; --fix parks nothing
    dlq = Counter({f"record:{i}": 1 for i in ids["bad"]}) | Counter({f"response:{i}": 1 for i in ids["undeliverable"]})
    assert before["dlq"] == fixed["dlq"] == resumed["dlq"] == dlq
    # records in = executions + DLQ record entries
    records_in = sum(len(v) for v in g.values())
    assert records_in == len(resumed["executions"]) + sum(1 for k in resumed["dlq"] if k.startswith("record:"))


def test_transcript(scenario, capsys):
    """The reconcile transcript before and after --fix (for the closing note)."""
    with capsys.disabled():
        print("\n--- reconcile before --fix ---\n" + scenario["before_text"])
        print("--- reconcile after --fix --apply ---\n" + scenario["after_text"])
