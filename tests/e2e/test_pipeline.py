"""The pipeline Terraform applied (examples/complete), run by localaws.runtime as AWS runs it
(what tests/test_end_to_end.py checked on the hand-built twin, and more).

Traffic: the published CNM samples with their files staged (checksums match), generated
notifications, and poison pills (localaws.pipeline). Every side effect is counted without
collapsing duplicates: records in = workflow executions + records parked in the DLQ, at
most one answer per record, and a redelivery of the whole stream starts nothing new.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from localaws import pipeline, server
from localaws.runtime import Runtime

from .conftest import EXAMPLES, REGION

pytestmark = [pytest.mark.terraform, pytest.mark.provider]
PREFIX = EXAMPLES["complete"]


@pytest.fixture(scope="module")
def run(complete_applied, session, local_aws, tmp_path_factory):
    client = lambda s: session.client(s, endpoint_url=local_aws.endpoint)  # noqa: E731
    bucket = f"{PREFIX}-provider-outbox"
    records = (
        pipeline.sample_traffic(pipeline.shared_cnm_dir() / "samples", bucket)
        + pipeline.generated_traffic(6, bucket)
        + pipeline.poison_traffic(bucket)
    )
    with Runtime(session, local_aws.endpoint, PREFIX, tmp_path_factory.mktemp("runtime")) as rt:
        pipeline.stage_files(client("s3"), records, REGION)
        stream = rt.stack.streams[f"{PREFIX}-notifications"]
        pipeline.put(client("kinesis"), stream, records)
        assert rt.wait_idle(timeout=240), f"the pipeline did not settle: {rt.errors}"
        machines = [m["stateMachineArn"] for m in rt.stack.state_machines.values()]
        (dlq_url,) = [u for u in rt.stack.queues if u.endswith("-kinesisFailure")]

        def read():
            return pipeline.fates(
                records,
                sfn=client("stepfunctions"),
                sqs=client("sqs"),
                kinesis=client("kinesis"),
                state_machine_arns=machines,
                dlq_url=dlq_url,
                response_stream_arn=rt.stack.streams[f"{PREFIX}-responses"],
            )

        first = read()
        # Kinesis delivers at least once: replay the whole stream through every mapping
        for poller in rt.pollers:
            poller.rewind()
        assert rt.wait_idle(timeout=240), f"the redelivery did not settle: {rt.errors}"
        again = read()
        yield {"records": records, "first": first, "again": again, "runtime": rt}


def test_every_record_ends_as_expected(run):
    wrong = [(f.record.label, f.record.expect, f.outcome) for f in run["first"] if f.outcome != f.record.expect]
    assert not wrong
    samples = [f for f in run["first"] if f.record.label.startswith("sample")]
    assert sum(f.outcome == pipeline.SUCCESS for f in samples) >= 5  # the official samples with files succeed


def test_records_in_equal_executions_plus_dlq_entries(run):
    first = run["first"]
    executions = sum(len(f.executions) for f in first)
    dlq_entries = sum(len(f.dlq) for f in first)
    assert len(run["records"]) == executions + dlq_entries
    assert not [f.record.label for f in first if f.executions and f.dlq]  # never both


def test_at_most_one_answer_per_record(run):
    for fate in run["first"]:
        answers = [m for m in fate.responses if "response" in m]
        assert len(answers) <= 1, fate.record.label
        if fate.outcome == pipeline.SUCCESS:
            assert [a["response"]["status"] for a in answers] == ["SUCCESS"], fate.record.label
        if fate.outcome == pipeline.FAILED:
            assert [a["response"]["status"] for a in answers] == ["FAILURE"], fate.record.label


def test_parked_records_keep_their_bytes(run):
    """Each DLQ entry carries the record as it was put on the stream (never destroy good data)."""
    parked = [f for f in run["first"] if f.outcome == pipeline.PARKED]
    assert parked
    for fate in parked:
        for entry in fate.dlq:
            assert pipeline.decode(entry) == fate.record.payload, fate.record.label
            assert entry["reason"], fate.record.label


def test_validation_errors_are_answered_once_with_their_code(run):
    """A checksum that does not match the file and a schema violation in an addressable record are
    both VALIDATION_ERROR answers, as PO.DAAC answers them; once over both deliveries."""
    by_label = {f.record.label: f for f in run["again"]}
    for label, outcome in (
        ("poison: checksum does not match the file", pipeline.FAILED),
        ("poison: schema violation (size is a string)", pipeline.PARKED),
    ):
        fate = by_label[label]
        answers = [(m["response"]["status"], m["response"].get("errorCode")) for m in fate.responses if "response" in m]
        assert (fate.outcome, answers) == (outcome, [("FAILURE", "VALIDATION_ERROR")]), label


def _answers(fate: pipeline.Fate) -> int:
    return len([m for m in fate.responses if "response" in m])


def test_redelivery_starts_no_workflow_and_answers_no_workflow_record_twice(run):
    before = Counter({f.record.label: len(f.executions) for f in run["first"]})
    after = Counter({f.record.label: len(f.executions) for f in run["again"]})
    assert after == before
    for fate in run["again"]:
        if fate.executions:
            assert _answers(fate) <= 1, fate.record.label
        assert len(fate.dlq) <= 2, fate.record.label  # at most one entry per delivery, none lost


def test_redelivered_bad_record_is_answered_and_parked_once(run):
    """A bad record delivered twice is parked once and answered once (FAILURE) when it names an identifier."""
    bad = [f for f in run["again"] if f.outcome == pipeline.PARKED]
    assert bad
    assert all(_answers(f) == (1 if f.record.identifier else 0) and len(f.dlq) == 1 for f in bad), [
        (f.record.label, _answers(f), len(f.dlq)) for f in bad
    ]


def test_poller_semantics_were_exercised(run):
    rt: Runtime = run["runtime"]
    consumer = rt.stack.function("message_consumer")
    (mapping,) = [m for m in rt.stack.mappings if m.function_arn == consumer.arn]
    stats = rt.mapping_stats[mapping.uuid]
    assert stats.records_delivered >= 2 * len(run["records"])  # delivered, then redelivered
    assert len([p for p in rt.pollers if p.m.uuid == mapping.uuid]) == 2  # one per shard of the complete example
    assert not rt.errors


# --- the recorder: Step Functions status events -> EventBridge rule -> SQS -> recorder function ------


def _execution_record(client, table: str, arn: str) -> dict | None:
    item = client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"EXECUTION#{arn}"}, "sk": {"S": "EXECUTION"}}, ConsistentRead=True
    )
    return item.get("Item")


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_recorder_writes_every_execution_as_it_ended(run, client):
    """Each workflow execution of the traffic has its record, at the status Step Functions gives it,
    written by the deployed recorder from the events the deployed EventBridge rule routed."""
    rt: Runtime = run["runtime"]
    table = rt.stack.function("recorder").environment["EXECUTIONS_TABLE"]
    executions = [e for f in run["again"] for e in f.executions]
    assert executions
    sfn = client("stepfunctions")
    for e in executions:
        item = _execution_record(client, table, e["executionArn"])
        assert item is not None, e["executionArn"]
        status = sfn.describe_execution(executionArn=e["executionArn"])["status"]
        assert item["status"]["S"] == status, e["executionArn"]
        assert {"ev:RUNNING:0", f"ev:{status}:0"} <= set(item)  # both events arrived
    recorder = rt.stack.function("recorder")
    (mapping,) = [m for m in rt.stack.mappings if m.function_arn == recorder.arn]
    assert rt.mapping_stats[mapping.uuid].invocations >= 1
    assert rt.invocation_errors["recorder"] == 0 and rt.invocation_errors[recorder.name] == 0


@pytest.mark.contract_break  # started by hand with {"x": 1}: not a workflow message
def test_recorder_writes_an_execution_aborted_by_hand(run, client):
    """StopExecution of a running workflow (held in its first task) is recorded as ABORTED, a status
    the in-workflow StopStatus step never sees."""
    rt: Runtime = run["runtime"]
    table = rt.stack.function("recorder").environment["EXECUTIONS_TABLE"]
    machine = next(iter(rt.stack.state_machines.values()))["stateMachineArn"]
    entered, release = threading.Event(), threading.Event()

    def held(parameters, region, state_credentials=None):
        entered.set()
        release.wait(60)
        return rt._sfn_invoke(parameters, region, state_credentials)

    sfn = client("stepfunctions")
    server.set_lambda_invoker(held)
    try:
        arn = sfn.start_execution(stateMachineArn=machine, name="aborted-by-hand", input=json.dumps({"x": 1}))[
            "executionArn"
        ]
        assert entered.wait(30)
        # moto applies an UpdateItem's actions one by one, so a read may land between them (an item
        # with only its event history); AWS's UpdateItem is atomic. Wait for the whole RUNNING record.
        running = _wait_for(lambda: (r := _execution_record(client, table, arn)) is not None and "status" in r and r)
        assert running, _execution_record(client, table, arn)
        assert running["status"]["S"] == "RUNNING"
        sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    finally:
        release.set()
        server.set_lambda_invoker(rt._sfn_invoke)
    assert _wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", 30)
    aborted = _wait_for(
        lambda: (
            (r := _execution_record(client, table, arn)) is not None and r.get("status", {}).get("S") == "ABORTED" and r
        )
    )
    assert aborted, _execution_record(client, table, arn)
    assert {"ev:RUNNING:0", "ev:ABORTED:0"} <= set(aborted)
    assert aborted["execution_name"]["S"] == "aborted-by-hand"
    assert rt.wait_idle(timeout=60)
