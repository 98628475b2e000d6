"""cnm_ingest.executions' order of writes (pure): which of the two writers' states may replace which."""

from __future__ import annotations

import pytest

from cnm_ingest import executions

START, STOP = executions.START_STATUS, executions.STOP_STATUS


def test_the_recorders_terminal_status_outranks_stop_status_which_outranks_running():
    running_step = executions.rank("RUNNING", 0, START)
    running_event = executions.rank("RUNNING", 0)
    assert running_step == running_event  # the same state from either writer: the second adds only its time
    for terminal in executions.TERMINAL:
        assert running_event < executions.rank(terminal, 0, STOP) < executions.rank(terminal, 0)
    assert executions.rank("SUCCEEDED", 0, STOP) == executions.rank("FAILED", 0, STOP)


@pytest.mark.parametrize("terminal", executions.TERMINAL)
def test_a_redrive_outranks_everything_of_the_run_before(terminal):
    assert executions.rank("RUNNING", 1) > executions.rank(terminal, 0)
    assert executions.rank(terminal, 1) > executions.rank(terminal, 0, STOP)


def test_a_step_without_an_execution_arn_records_nothing():
    """Invoked outside Step Functions (no $$.Execution.Id): no item can be keyed like the recorder's."""
    for execution in ({}, {"id": ""}, {"id": "not-an-arn", "name": "x"}, {"id": None}, {"id": 7}):
        assert executions.step_fields({"meta": {}}, execution, "RUNNING", "2024-01-01T00:00:00.000Z") is None


def test_step_fields_hold_the_messages_facts_and_the_context():
    cnm = {
        "identifier": "id-1",
        "provider": "P",
        "collection": {"name": "C", "version": "1"},
        "product": {"name": "g-1", "files": []},
    }
    fields = executions.step_fields(
        {"meta": {"cnm": cnm, "collection": {"name": "C", "version": "1"}, "rule": {"name": "r"}}},
        {"id": "arn:aws:states:us-west-2:1:execution:m:n-reingest-abc", "start_time": "2024-01-02T03:04:05Z"},
        "RUNNING",
        "2030-01-01T00:00:00.000Z",
    )
    assert fields is not None
    assert fields["execution_name"] == "n-reingest-abc" and fields["reingest"] is True
    assert fields["started_at"] == "2024-01-02T03:04:05.000Z"  # the execution's start, not the step's clock
    assert (fields["cnm_identifier"], fields["collection"], fields["rule"]) == ("id-1", "C__1", "r")
    assert fields["granule_ids"] == ["g-1"]
