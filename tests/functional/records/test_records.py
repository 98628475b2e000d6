"""cnm_ingest.executions, the recorder's writes: one record per execution, every status, idempotent,
order-tolerant, hostile input."""

from __future__ import annotations

import json

import pytest

from cnm_ingest import executions

from .conftest import arn, event, scan, workflow_input

START = 1_700_000_000_000


def by_sk(table: str) -> dict[str, dict]:
    return {f"{i['pk']}|{i['sk']}": i for i in scan(table)}


@pytest.mark.parametrize("status", executions.STATUSES)
def test_every_status_is_recorded_with_the_message_facts(table, status):
    error = None if status in ("RUNNING", "SUCCEEDED") else "States.Timeout" if status == "TIMED_OUT" else "SomeError"
    result = executions.record_event(table, event("e1", status, error=error, cause="why" if error else None))
    assert result["written"] is True
    item = executions.get_execution(table, arn("e1"))
    assert item["status"] == status
    assert item["status_key"] == f"EXECUTION#{status}"
    assert item["started_at"] == "2023-11-14T22:13:20.000Z"
    assert (item.get("stopped_at") == "2023-11-14T22:13:25.000Z") is (status != "RUNNING")
    assert item["granule_ids"] == ["granule-1"]
    assert item["collection"] == "COLL__1"
    assert item["provider"] == "PROV"
    assert item["rule"] == "coll-rule"
    assert item["cnm_identifier"] == "granule-1"
    assert item["source"] == {
        "stream_arn": "arn:aws:kinesis:us-west-2:123456789012:stream/n",
        "shard_id": "shardId-000000000000",
        "sequence_number": "495901",
        "partition_key": "granule-1",
    }
    assert json.loads(item["cnm"])["identifier"] == "granule-1"
    assert item.get("error") == error and item.get("cause") == ("why" if error else None)
    granule = executions.get_granule(table, "granule-1")
    assert [s["status"] for s in granule["summaries"]] == [status]
    assert [(a["execution_arn"], a["status"]) for a in granule["attempts"]] == [(arn("e1"), status)]
    assert len(scan(table)) == 3  # execution, granule summary, one attempt


def test_redelivered_events_write_nothing_new(table):
    for _ in range(3):
        executions.record_event(table, event("e1", "RUNNING"))
    first = by_sk(table)
    results = [executions.record_event(table, event("e1", "FAILED", error="E", cause="c")) for _ in range(3)]
    assert [r["written"] for r in results] == [True, False, False]
    after = by_sk(table)
    assert len(after) == len(first) == 3
    execution = after[f"EXECUTION#{arn('e1')}|EXECUTION"]
    assert execution["status"] == "FAILED"
    assert executions.events_of(execution) == {
        "RUNNING:0": "2023-11-14T22:13:20.000Z",
        "FAILED:0": "2023-11-14T22:13:25.000Z",
    }


def test_running_after_succeeded_does_not_regress_but_is_kept_in_the_history(table):
    assert executions.record_event(table, event("e1", "SUCCEEDED"))["written"] is True
    late = executions.record_event(table, event("e1", "RUNNING"))
    assert late["written"] is False and late["granules"] == {"granule-1": False}
    item = executions.get_execution(table, arn("e1"))
    assert item["status"] == "SUCCEEDED" and item["stopped_at"] == "2023-11-14T22:13:25.000Z"
    assert set(executions.events_of(item)) == {"SUCCEEDED:0", "RUNNING:0"}
    granule = executions.get_granule(table, "granule-1")
    assert granule["summaries"][0]["status"] == "SUCCEEDED"
    assert [a["status"] for a in granule["attempts"]] == ["SUCCEEDED"]


def test_a_granule_keeps_every_attempt_and_follows_the_latest(table):
    executions.record_event(table, event("first", "RUNNING", start=START))
    executions.record_event(table, event("first", "FAILED", start=START, error="FileNotFoundAtSourceError"))
    executions.record_event(table, event("again-reingest-1", "RUNNING", start=START + 60_000))
    # a late duplicate of the older execution's end must not mask the newer attempt
    executions.record_event(table, event("first", "FAILED", start=START, error="FileNotFoundAtSourceError"))
    executions.record_event(table, event("again-reingest-1", "SUCCEEDED", start=START + 60_000))
    granule = executions.get_granule(table, "granule-1")
    assert [(a["execution_arn"].rsplit(":", 1)[1], a["status"], a["reingest"]) for a in granule["attempts"]] == [
        ("first", "FAILED", False),
        ("again-reingest-1", "SUCCEEDED", True),
    ]
    (summary,) = granule["summaries"]
    assert summary["status"] == "SUCCEEDED" and summary["execution_arn"] == arn("again-reingest-1")
    assert not {"error", "cause", "original_error"} & set(summary)  # the failed attempt's error stays with it
    assert granule["attempts"][0]["error"] == "FileNotFoundAtSourceError"
    # the older execution's late RUNNING changes nothing either
    executions.record_event(table, event("first", "RUNNING", start=START))
    assert executions.get_granule(table, "granule-1")["summaries"][0]["status"] == "SUCCEEDED"
    assert len(scan(table)) == 2 + 1 + 2  # two executions, one summary, two attempts


def test_a_redriven_execution_moves_from_failed_to_succeeded(table):
    executions.record_event(table, event("e1", "FAILED", error="E"))
    executions.record_event(table, event("e1", "RUNNING", redrive=1))
    executions.record_event(table, event("e1", "FAILED", error="E"))  # redelivered old event
    executions.record_event(table, event("e1", "SUCCEEDED", redrive=1))
    item = executions.get_execution(table, arn("e1"))
    assert item["status"] == "SUCCEEDED" and item["redrive_count"] == 1
    assert "error" not in item and "original_error" not in item
    assert set(executions.events_of(item)) == {"FAILED:0", "RUNNING:1", "SUCCEEDED:1"}


def test_listing_by_status_and_window(table):
    for i, status in enumerate(["FAILED", "FAILED", "SUCCEEDED", "ABORTED"]):
        executions.record_event(
            table,
            event(
                f"e{i}",
                status,
                start=START + i * 1000,
                input=workflow_input(identifier=f"g{i}", provider="P" if i else "Q"),
            ),
        )
    since, until = "2023-11-14T00:00:00.000Z", "2023-11-15T00:00:00.000Z"
    count, items = executions.query_status(table, "EXECUTION", "FAILED", since, until)
    assert count == 2 and [i["execution_name"] for i in items] == ["e1", "e0"]
    assert executions.query_status(table, "GRANULE", "FAILED", since, until, provider="P")[0] == 1
    assert executions.query_status(table, "EXECUTION", "FAILED", "2023-11-15T00:00:00.000Z", "2023-11-16")[0] == 0


# --- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_input",
    [
        None,
        "",
        "{not json",
        "[1, 2]",
        "null",
        json.dumps({"meta": "x"}),
        json.dumps({"meta": {"cnm": {"identifier": 7, "product": []}}}),
    ],
)
def test_missing_or_garbled_input_still_records_the_execution(table, bad_input):
    executions.record_event(table, event("e1", "ABORTED", input=bad_input))
    item = executions.get_execution(table, arn("e1"))
    assert item["status"] == "ABORTED" and item.get("granule_ids", []) == []
    assert executions.get_granule(table, "granule-1") is None
    assert len(scan(table)) == 1


def test_input_left_out_of_the_event_is_read_back(table):
    calls = []

    def load(execution_arn):
        calls.append(execution_arn)
        return workflow_input(identifier="big-one")

    executions.record_event(table, event("e1", "SUCCEEDED", input=None, inputDetails={"included": False}), load)
    assert calls == [arn("e1")]
    assert executions.get_execution(table, arn("e1"))["cnm_identifier"] == "big-one"


def test_huge_cause_and_odd_unicode_are_stored_bounded(table):
    identifier = "g\u202e\U0001f600\u0000-é"
    cause = "\ud800" + "x" * (2 * 1024 * 1024)
    executions.record_event(
        table, event("e1", "FAILED", error="E" * 5000, cause=cause, input=workflow_input(identifier=identifier))
    )
    item = executions.get_execution(table, arn("e1"))
    assert len(item["cause"].encode("utf-8")) <= executions.MAX_CAUSE_BYTES
    assert item["cause"].startswith("?x") and item["cause"].endswith("bytes cut]")
    assert len(item["error"].encode("utf-8")) <= executions.MAX_ERROR_BYTES
    assert item["cnm_identifier"] == identifier
    assert executions.get_granule(table, identifier)["summaries"][0]["cause"] == item["cause"]


def test_a_cause_cut_on_a_multibyte_character_stays_valid_utf8():
    text = executions.clean("é" * 100, 51)
    text.encode("utf-8")  # would raise on a broken character
    assert len(text.encode("utf-8")) <= 51


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"detail": "x"}),
        json.dumps({"detail": {"executionArn": "a", "status": "RUNNING"}}),
        json.dumps({"detail": {"executionArn": arn("e"), "status": "PENDING"}}),
    ],
)
def test_what_is_not_an_execution_event_is_refused(table, body):
    with pytest.raises(executions.NotAnExecutionEvent):
        executions.record_event(table, body)
    assert scan(table) == []


def test_dates_in_any_form():
    assert executions.iso(0) == "1970-01-01T00:00:00.000Z"
    assert executions.iso("2024-01-02T03:04:05Z") == "2024-01-02T03:04:05.000Z"
    assert executions.iso("2024-01-02T03:04:05.678+02:00") == "2024-01-02T01:04:05.678Z"
    assert executions.iso(True) is None and executions.iso("yesterday") is None and executions.iso(10**20) is None


def offloaded_input(identifier: str, files: int = 20) -> tuple[str, dict]:
    """A workflow input whose CNM lives in the payload bucket (``meta.cnm_ref``), as the consumer builds it for a
    large granule: the real cnm_ingest.workflow.payload.fit under the recorder's deployed PAYLOAD_BUCKET."""
    from cnm_ingest.workflow import payload

    text = json.loads(workflow_input(identifier=identifier))
    cnm = text["meta"]["cnm"]
    cnm["product"]["files"] = [
        {"type": "data", "uri": f"s3://prov/{identifier}/f{i:05d}.nc", "name": f"f{i:05d}.nc", "size": i + 1}
        for i in range(files)
    ]
    text["payload"] = {}
    fitted = payload.fit(text, threshold=1024)
    assert "cnm" not in fitted["meta"] and fitted["meta"]["cnm_ref"]["key"].startswith(payload.KEY_PREFIX)
    return json.dumps(fitted), fitted["meta"]["cnm_ref"]


def test_an_offloaded_cnm_of_a_3000_file_granule_keeps_its_granule_and_identifier(table):
    """Issue 23: the CNM of a large granule is in the payload bucket; the recorder reads it back (its role may read
    the bucket's workflow/ prefix) and keeps the granule id and the CNM identifier, so `status GRANULE` finds it."""
    text, ref = offloaded_input("big-granule", files=3000)
    assert ref["size"] > executions.MAX_CNM_BYTES  # too large to keep in the item itself
    result = executions.record_event(table, event("big", "SUCCEEDED", input=text))
    assert result["written"] and result["granules"] == {"big-granule": True}
    item = executions.get_execution(table, arn("big"))
    assert item["cnm_identifier"] == "big-granule" and item["granule_ids"] == ["big-granule"]
    assert item["collection"] == "COLL__1" and item["provider"] == "PROV" and "cnm" not in item
    found = executions.get_granule(table, "big-granule")
    assert [s["execution_arn"] for s in found["summaries"]] == [arn("big")]
    assert [a["status"] for a in found["attempts"]] == ["SUCCEEDED"]


def test_an_offloaded_cnm_that_cannot_be_read_still_records_the_execution(table):
    """The stored part is gone, changed, or the reference points elsewhere: the execution is recorded with what
    else is known (never another bucket's object, never a crash that would park the event)."""
    from cnm_ingest import aws as aws_mod

    text, ref = offloaded_input("gone")
    aws_mod.client("s3").delete_object(Bucket=ref["bucket"], Key=ref["key"])
    executions.record_event(table, event("e2", "FAILED", input=text))
    item = executions.get_execution(table, arn("e2"))
    assert item["status"] == "FAILED" and "cnm_identifier" not in item and item["rule"] == "coll-rule"

    hostile = json.loads(offloaded_input("elsewhere")[0])
    cases = {
        "other bucket": {**hostile["meta"]["cnm_ref"], "bucket": "someone-elses-bucket"},
        "climb": {**hostile["meta"]["cnm_ref"], "key": "workflow/../failed-records/x"},
        "not a ref": "s3://b/k",
    }
    for n, (name, bad) in enumerate(cases.items()):
        message = {**hostile, "meta": {**hostile["meta"], "cnm_ref": bad}}
        executions.record_event(table, event(f"bad-{n}", "FAILED", input=json.dumps(message)))
        item = executions.get_execution(table, arn(f"bad-{n}"))
        assert item["status"] == "FAILED" and "cnm_identifier" not in item, name
