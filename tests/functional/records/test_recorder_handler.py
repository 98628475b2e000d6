"""The deployed recorder (examples/complete, in-process under its deployed environment), fed SQS events
(JSON files in tests/events) as its event source mapping hands them, writing the applied executions table."""

from __future__ import annotations

import json

import pytest

from cnm_ingest import executions
from tests.events import load_event

from .conftest import arn, scan


def load(name: str) -> dict:
    return load_event(f"sqs_recorder_{name.removesuffix('.json')}")


class Deployed:
    """The deployed recorder function, invoked in-process (World.invoke)."""

    def __init__(self, world) -> None:
        self.world = world

    def handler(self, event: dict, context=None) -> dict:
        return self.world.invoke("recorder", event)


@pytest.fixture
def recorder(complete_world, table) -> Deployed:
    return Deployed(complete_world)


def test_a_lifecycle_batch_is_recorded_and_a_redelivery_changes_nothing(recorder, table, lambda_context):
    assert recorder.handler(load("lifecycle.json"), lambda_context) == {"batchItemFailures": []}
    items = scan(table)
    assert len(items) == 2 + 2 * 2  # two executions; summary + attempt for each granule
    assert executions.get_execution(table, arn("g-1-0001"))["status"] == "SUCCEEDED"
    failed = executions.get_execution(table, arn("g-2-0002"))
    assert failed["status"] == "FAILED" and failed["error"] == "WorkflowError"
    assert json.loads(failed["cause"])["errorType"] == "FileNotFoundAtSourceError"
    assert failed["original_error"]["errorCode"] == "PROCESSING_ERROR"  # a WorkflowError whose message is not JSON
    assert recorder.handler(load("lifecycle.json"), lambda_context) == {"batchItemFailures": []}
    assert sorted(map(json.dumps, scan(table))) == sorted(map(json.dumps, items))


def test_out_of_order_and_hostile_messages(recorder, table, lambda_context):
    result = recorder.handler(load("out_of_order_and_hostile.json"), lambda_context)
    # only the message that is not an event fails: SQS retries it, then parks it in the recorder's DLQ
    assert result == {"batchItemFailures": [{"itemIdentifier": "00000000-0000-0000-0000-000000000002"}]}
    aborted = executions.get_execution(table, arn("g-3-0003"))
    assert aborted["status"] == "ABORTED" and set(executions.events_of(aborted)) == {"ABORTED:0", "RUNNING:0"}
    timed_out = executions.get_execution(table, arn("no-input-0004"))
    assert timed_out["status"] == "TIMED_OUT" and timed_out["input_error"] == "no input"
    assert executions.get_granule(table, "g-3")["summaries"][0]["status"] == "ABORTED"


def test_a_dynamodb_failure_fails_the_records_instead_of_dropping_them(recorder, table, complete_world, lambda_context):
    complete_world.client("dynamodb").delete_table(TableName=table)  # the table is gone: every write fails
    result = recorder.handler(load("lifecycle.json"), lambda_context)
    assert len(result["batchItemFailures"]) == 4
