"""The applied state machine (examples/complete) continues SyncGranule past its deadline (issue 22): in moto's
interpreter, the deployed SyncGranule stops after its first file (its Lambda context says less than
SYNC_DEADLINE_MARGIN_SECONDS is left), returns ``meta.sync_continuation``, and the SyncGranuleContinues Choice
runs it again; the second invocation reuses the verified temporary copy, copies the other file, commits, and the
workflow answers SUCCESS once."""

from __future__ import annotations

import json

import pytest

from cnm_ingest.workflow import sync_granule
from tests.conftest import FakeLambdaContext
from tests.functional.workflow.test_state_machine import BROWSE, DATA, make_cnm


@pytest.fixture
def deadlines(monkeypatch):
    """Each SyncGranule invocation's context has time for ``budgets[i]`` asks (the invocation's start for
    stop_when, the provider-read deadline's, then one per file), then says 60 s are left (under the 120 s margin).
    Other functions' contexts are untouched."""
    budgets: list[int] = []

    def remaining(self) -> int:
        if "sync" not in self.function_name:
            return 300_000
        if not hasattr(self, "_asks_left"):
            self._asks_left = budgets.pop(0) if budgets else 10**9
        self._asks_left -= 1
        return 300_000 if self._asks_left >= 0 else 60_000

    monkeypatch.setattr(FakeLambdaContext, "get_remaining_time_in_millis", remaining)
    return budgets


def test_the_workflow_runs_sync_granule_again_until_the_granule_is_staged(wf, deadlines, reference_schema):
    assert wf.world.function("sync_granule").environment["SYNC_DEADLINE_MARGIN_SECONDS"] == "120"
    deadlines.append(3)  # invocation 1: its start, the deadline's ask and the first file; the second finds no time
    cnm = make_cnm(wf)
    desc = wf.run(cnm)
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)
    calls = wf.calls["sync_granule"]
    assert len(calls) == 2  # no retry: a continuation is a normal output
    assert sync_granule.CONTINUATION not in calls[0]["message"]["meta"]
    marker = calls[1]["message"]["meta"][sync_granule.CONTINUATION]
    assert (marker["invocations"], marker["done"], marker["files"]) == (1, 1, 2)
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in wf.history(desc["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered.count("SyncGranule") == 2 and entered.count("SyncGranuleContinues") == 2
    assert "SyncGranuleUnfinished" not in entered
    prefix = wf.staged_prefix()
    for name, body in (("GRAN_001.nc", DATA), ("GRAN_001.png", BROWSE)):
        got = wf.s3.get_object(Bucket=wf.staging_bucket, Key=f"{prefix}/{name}")["Body"].read()
        assert got == body
    leftovers = wf.s3.list_objects_v2(Bucket=wf.staging_bucket, Prefix=sync_granule.TEMP_PREFIX + "/")
    assert leftovers.get("KeyCount", 0) == 0
    [response] = wf.responses()
    assert response["response"] == {"status": "SUCCESS"} and response["identifier"] == cnm["identifier"]
    assert sync_granule.CONTINUATION not in json.loads(desc["output"])["meta"]


def test_an_invocation_without_progress_is_answered_failure_and_leaves_nothing(wf, deadlines, reference_schema):
    deadlines += [3, 2]  # invocation 2 finds no time for any file
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "FAILED", wf.explain(desc)
    assert len(wf.calls["sync_granule"]) == 2  # SyncUnfinishedError is not retried
    [response] = wf.responses()
    assert response["response"]["status"] == "FAILURE" and response["response"]["errorCode"] == "TRANSFER_ERROR"
    assert wf.s3.list_objects_v2(Bucket=wf.staging_bucket).get("KeyCount", 0) == 0
