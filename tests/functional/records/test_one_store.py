"""One status store (issue 21): the recorder and the workflow's StartStatus/StopStatus write the same items through
cnm_ingest.executions, on the applied examples/complete's table.

Hostile orders and repeats: the recorder's events and the steps' writes arrive in any order, twice, for a granule in
two executions, for aborted and timed-out executions, and with the store throttling half-way. Every applied write is
counted where it lands (DynamoDB UpdateItem answered 200), duplicates not collapsed.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from cnm_ingest import executions

from .conftest import SM, arn, event, scan, workflow_input

START = 1_700_000_000_000
STARTED_ISO = "2023-11-14T22:13:20.000Z"  # START as Step Functions' $$.Execution.StartTime


@pytest.fixture
def writes(table) -> Counter:
    """Applied UpdateItems by table item kind (EXECUTION, SUMMARY, ATTEMPT), counted where they land."""
    from cnm_ingest import aws

    counts: Counter = Counter()

    def landed(http_response: Any, model: Any, params: dict[str, Any] | None = None, **_: Any) -> None:
        if model.name == "UpdateItem" and http_response.status_code == 200:
            counts["all"] += 1

    client = aws.client("dynamodb")
    client.meta.events.register("after-call.dynamodb.UpdateItem", landed, unique_id="count-writes")
    yield counts
    client.meta.events.unregister("after-call.dynamodb.UpdateItem", unique_id="count-writes")


def step_message(identifier: str = "granule-1", **extra: Any) -> dict[str, Any]:
    """The workflow message StartStatus/StopStatus get (the execution input, plus ``exception`` when failed)."""
    return {**json.loads(workflow_input(identifier=identifier)), **extra}


def context(name: str, start: str = STARTED_ISO) -> dict[str, Any]:
    """The task's ``execution`` object, as the state machine builds it from ``$$``."""
    return {"id": arn(name), "name": name, "start_time": start, "state_machine": SM, "state": "StopStatus"}


def step(table: str, name: str, which: str, message: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return executions.record_step(table, message or step_message(), context(name, **kw), which)


def status(table: str, name: str) -> str:
    item = executions.get_execution(table, arn(name))
    assert item is not None, name
    return str(item["status"])


def summary(table: str, granule: str = "granule-1") -> dict[str, Any]:
    found = executions.get_granule(table, granule)
    assert found is not None and len(found["summaries"]) == 1, found
    return found["summaries"][0]


def test_start_and_stop_write_the_recorders_items(table):
    """The steps' items are the recorder's: one key scheme, one table, the same granule summary and attempts."""
    step(table, "e1", executions.START_STATUS)
    assert status(table, "e1") == "RUNNING" and summary(table)["status"] == "RUNNING"
    step(table, "e1", executions.STOP_STATUS)
    item = executions.get_execution(table, arn("e1"))
    assert item["status"] == "SUCCEEDED" and item["granule_ids"] == ["granule-1"]
    assert item["cnm_identifier"] == "granule-1" and item["rule"] == "coll-rule" and "stopped_at" in item
    assert set(executions.events_of(item)) == {"RUNNING:0:StartStatus", "SUCCEEDED:0:StopStatus"}
    # the recorder's own events for the same execution add their history, and the terminal one is Step Functions'
    executions.record_event(table, event("e1", "RUNNING", start=START))
    executions.record_event(table, event("e1", "SUCCEEDED", start=START))
    item = executions.get_execution(table, arn("e1"))
    assert item["status"] == "SUCCEEDED" and item["status_rank"] == 3
    assert set(executions.events_of(item)) == {
        "RUNNING:0:StartStatus",
        "SUCCEEDED:0:StopStatus",
        "RUNNING:0",
        "SUCCEEDED:0",
    }
    kinds = Counter(i["sk"].split("#")[0] for i in scan(table))
    assert kinds == {"EXECUTION": 1, "SUMMARY": 1, "ATTEMPT": 1}  # no duplicate items


def test_stop_status_after_the_recorders_abort_keeps_aborted(table):
    """An operator aborts while StopStatus is in flight: the recorder's ABORTED lands first and stays."""
    executions.record_event(table, event("e1", "RUNNING", start=START))
    executions.record_event(table, event("e1", "ABORTED", start=START))
    result = step(table, "e1", executions.STOP_STATUS)
    assert result["written"] is False and result["granules"] == {"granule-1": False}
    assert status(table, "e1") == "ABORTED" and summary(table)["status"] == "ABORTED"


@pytest.mark.parametrize("terminal", ["TIMED_OUT", "ABORTED", "FAILED"])
def test_the_recorders_terminal_status_replaces_stop_status(table, terminal):
    """StopStatus said SUCCEEDED, then the execution timed out / was aborted / failed after it: Step Functions wins."""
    step(table, "e1", executions.START_STATUS)
    step(table, "e1", executions.STOP_STATUS)
    executions.record_event(table, event("e1", terminal, start=START, error="States.Timeout", cause="late"))
    item = executions.get_execution(table, arn("e1"))
    assert item["status"] == terminal and item["error"] == "States.Timeout"
    assert summary(table)["status"] == terminal


def test_a_late_start_status_never_overwrites_a_terminal_status(table):
    """SUCCEEDED (recorder) before RUNNING (recorder) before a StartStatus retried late: SUCCEEDED stays."""
    executions.record_event(table, event("e1", "SUCCEEDED", start=START))
    executions.record_event(table, event("e1", "RUNNING", start=START))
    result = step(table, "e1", executions.START_STATUS)
    assert result["written"] is False
    assert status(table, "e1") == "SUCCEEDED" and summary(table)["status"] == "SUCCEEDED"
    history = executions.events_of(executions.get_execution(table, arn("e1")))
    assert set(history) == {"SUCCEEDED:0", "RUNNING:0", "RUNNING:0:StartStatus"}


def test_an_execution_aborted_before_its_first_task(table):
    """ABORTED with no step ever run: only the recorder sees it; a StartStatus that runs after changes nothing."""
    executions.record_event(table, event("e1", "ABORTED", start=START))
    assert status(table, "e1") == "ABORTED"
    step(table, "e1", executions.START_STATUS)
    assert status(table, "e1") == "ABORTED" and summary(table)["status"] == "ABORTED"


def test_redelivered_events_and_retried_steps_write_once(table, writes):
    """Each write lands once; repeats only touch the history attribute once more (if_not_exists: unchanged)."""
    first = [
        step(table, "e1", executions.START_STATUS)["written"],
        executions.record_event(table, event("e1", "RUNNING", start=START))["written"],
        step(table, "e1", executions.STOP_STATUS)["written"],
        executions.record_event(table, event("e1", "SUCCEEDED", start=START))["written"],
    ]
    assert first == [True, False, True, True]  # the recorder's RUNNING ranks with StartStatus's: already there
    # applied: each new state writes execution, attempt and summary (3 x 3); the refused RUNNING adds its time to
    # the execution's and the attempt's history (2; the summary keeps no history)
    assert writes["all"] == 3 * 3 + 2
    items = {f"{i['pk']}|{i['sk']}": i for i in scan(table)}
    again = [
        step(table, "e1", executions.START_STATUS)["written"],
        executions.record_event(table, event("e1", "RUNNING", start=START))["written"],
        step(table, "e1", executions.STOP_STATUS)["written"],
        executions.record_event(table, event("e1", "SUCCEEDED", start=START))["written"],
        executions.record_event(table, event("e1", "SUCCEEDED", start=START))["written"],
    ]
    assert again == [False] * 5
    assert {f"{i['pk']}|{i['sk']}": i for i in scan(table)} == items  # nothing changed, no item added
    assert writes["all"] == 3 * 3 + 2 + 5 * 2  # each repeat: the two history touches only (if_not_exists)


def test_a_granule_in_two_executions_follows_the_one_started_last(table):
    """Two CNMs of one granule: both attempts kept, the summary shows the later start whatever the write order."""
    later = "2023-11-14T23:00:00.000Z"
    step(table, "new", executions.START_STATUS, start=later)
    step(table, "new", executions.STOP_STATUS, start=later)
    step(table, "old", executions.START_STATUS)
    failed = step_message(exception={"Error": "ChecksumMismatchError", "Cause": json.dumps({"errorMessage": "bad"})})
    step(table, "old", executions.STOP_STATUS, failed)
    found = executions.get_granule(table, "granule-1")
    assert [(a["execution_name"], a["status"]) for a in found["attempts"]] == [("old", "FAILED"), ("new", "SUCCEEDED")]
    assert summary(table)["execution_arn"] == arn("new") and summary(table)["status"] == "SUCCEEDED"
    old = executions.get_execution(table, arn("old"))
    assert old["original_error"]["errorCode"] == "VALIDATION_ERROR" and old["error"] == "ChecksumMismatchError"
    # the listing by status sees one of each
    assert executions.query_status(table, executions.EXECUTION, "FAILED", "2000", "3000")[0] == 1
    assert executions.query_status(table, executions.GRANULE, "SUCCEEDED", "2000", "3000")[0] == 1


def test_the_store_throttling_half_way_then_the_retry_completes_it(table, writes):
    """The execution item is written, the granule's attempt throttled (after botocore's retries): the step fails
    (Step Functions retries TransientError); the retry completes the granule without a second execution write."""
    from cnm_ingest import aws
    from cnm_ingest.workflow import task
    from tests.functional.core.idempotency_faults import Faults

    faults = Faults()
    faults.add(
        "dynamodb",
        "UpdateItem",
        "before",
        lambda p: p.get("Key", {}).get("sk", {}).get("S", "").startswith("ATTEMPT#"),
        fault="Throttling",
        times=1,
    )
    event_in = {"message": step_message(), "execution": context("e1")}

    def start_status(message: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
        executions.record_step(table, message, execution, executions.START_STATUS)
        return message

    with pytest.raises(Exception) as raised:
        task.run(event_in, start_status)
    assert type(raised.value).__name__ == "TransientError" and aws.is_transient(raised.value.__cause__)
    assert faults.log == ["before dynamodb.UpdateItem Throttling"]
    assert status(table, "e1") == "RUNNING" and executions.get_granule(table, "granule-1") is None
    assert writes["all"] == 1  # the execution only
    assert task.run(event_in, start_status) == event_in["message"]  # Step Functions' retry
    assert writes["all"] == 1 + 3  # the execution's history touch, the attempt, the summary
    assert summary(table)["status"] == "RUNNING"
    kinds = Counter(i["sk"].split("#")[0] for i in scan(table))
    assert kinds == {"EXECUTION": 1, "SUMMARY": 1, "ATTEMPT": 1}
