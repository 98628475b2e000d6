"""The applied state machine (examples/complete), run in moto's interpreter, each task the deployed
function's handler in-process under its deployed environment (tests/functional/workflow/conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os

import jsonschema
import pytest

from cnm_ingest.errors import TransientError

DATA = os.urandom(150_000)
BROWSE = os.urandom(20_000)


def make_cnm(wf, *, data=DATA, checksum=None, identifier="id-0001") -> dict:
    data_uri = wf.put_file("incoming/GRAN_001.nc", data)
    browse_uri = wf.put_file("incoming/GRAN_001.png", BROWSE)
    return {
        "version": "1.6.1",
        "provider": wf.rule.provider,
        "collection": dict(wf.collection),
        "submissionTime": "2024-05-01T12:00:00.000000Z",
        "identifier": identifier,
        "product": {
            "name": "GRAN_001",
            "dataVersion": "1",
            "files": [
                {
                    "type": "data",
                    "uri": data_uri,
                    "name": "GRAN_001.nc",
                    "size": len(data),
                    "checksumType": "md5",
                    "checksum": checksum or hashlib.md5(data).hexdigest(),
                },
                {
                    "type": "browse",
                    "uri": browse_uri,
                    "name": "GRAN_001.png",
                    "size": len(BROWSE),
                    "checksumType": "SHA512",
                    "checksum": hashlib.sha512(BROWSE).hexdigest(),
                },
            ],
        },
    }


def granule_key(wf) -> str:
    return f"{wf.collection['name']}__{wf.collection['version']}"


def assert_failed(wf, desc, error_code: str, reference_schema) -> dict:
    """One FAILURE response with ``error_code``; execution and status FAILED."""
    assert desc["status"] == "FAILED", wf.explain(desc)
    responses = wf.responses()
    assert len(responses) == 1, responses
    response = responses[0]
    jsonschema.Draft7Validator(reference_schema).validate(response)
    assert response["response"]["status"] == "FAILURE"
    assert response["response"]["errorCode"] == error_code
    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["status"] == "FAILED"
    assert execution["status_key"] == "EXECUTION#FAILED"
    assert execution["original_error"]["errorCode"] == error_code
    assert "stopped_at" in execution
    return response


def test_success(wf, reference_schema):
    cnm = make_cnm(wf)
    desc = wf.run(cnm)
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)

    prefix = wf.staged_prefix()
    for name, body in (("GRAN_001.nc", DATA), ("GRAN_001.png", BROWSE)):
        staged = wf.s3.get_object(Bucket=wf.staging_bucket, Key=f"{prefix}/{name}")["Body"].read()
        assert staged == body

    responses = wf.responses()
    assert len(responses) == 1
    response = responses[0]
    jsonschema.Draft7Validator(reference_schema).validate(response)
    assert response["response"] == {"status": "SUCCESS"}
    assert response["identifier"] == cnm["identifier"]
    assert response["collection"] == cnm["collection"]
    assert response["submissionTime"] == cnm["submissionTime"]
    files = {f["name"]: f for f in response["product"]["files"]}
    assert files["GRAN_001.nc"]["uri"] == wf.staged_uri(f"{prefix}/GRAN_001.nc")
    assert files["GRAN_001.nc"]["checksum"] == hashlib.md5(DATA).hexdigest()
    assert files["GRAN_001.png"]["size"] == len(BROWSE)

    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["status"] == "SUCCEEDED"
    assert execution["granule_ids"] == ["GRAN_001"]
    assert "error" not in execution
    granule = wf.status_item("GRANULE#GRAN_001", f"SUMMARY#{granule_key(wf)}")
    assert granule["status"] == "SUCCEEDED"
    assert granule["execution_arn"] == desc["executionArn"]
    assert json.loads(desc["output"])["meta"]["cnm_response"]["response"]["status"] == "SUCCESS"


def test_wrong_checksum(wf, reference_schema):
    desc = wf.run(make_cnm(wf, checksum="0" * 32))
    response = assert_failed(wf, desc, "VALIDATION_ERROR", reference_schema)  # as PO.DAAC's CnmResponse answers
    assert "the CNM says 000" in response["response"]["errorMessage"]
    assert "ChecksumMismatchError" not in response["response"]["errorMessage"]  # the message alone, no type prefix
    # the mismatching staged copy is gone
    key = f"{wf.staged_prefix()}/GRAN_001.nc"
    listed = wf.s3.list_objects_v2(Bucket=wf.staging_bucket, Prefix=key).get("KeyCount", 0)
    assert listed == 0
    assert wf.status_item("GRANULE#GRAN_001", f"SUMMARY#{granule_key(wf)}")["status"] == "FAILED"
    assert json.loads(desc["cause"])["errorType"] == "WorkflowError"
    assert desc["error"] == "WorkflowError"


def test_missing_file(wf, reference_schema):
    cnm = make_cnm(wf)
    wf.s3.delete_object(Bucket=wf.provider_bucket, Key="incoming/GRAN_001.png")
    desc = wf.run(cnm)
    response = assert_failed(wf, desc, "TRANSFER_ERROR", reference_schema)
    assert response["response"]["errorMessage"].endswith("does not exist at the provider")
    assert "GRAN_001.png" in response["response"]["errorMessage"]


@pytest.mark.parametrize("breakage", ["no collection", "wrong type"])
def test_malformed_cnm(wf, reference_schema, breakage):
    """A CNM the consumer would refuse, put into a workflow input anyway: TranslateMessage validates it."""
    cnm = make_cnm(wf)

    def corrupt(message: dict) -> None:
        if breakage == "no collection":
            del message["meta"]["cnm"]["collection"]
        else:
            message["meta"]["cnm"]["product"]["files"][0]["type"] = "science"

    desc = wf.run(cnm, mutate=corrupt)
    response = assert_failed(wf, desc, "VALIDATION_ERROR", reference_schema)
    assert response["identifier"] == cnm["identifier"]
    # the response is still addressed to the collection the rule matched
    assert response["collection"] == wf.collection
    assert response["response"]["errorMessage"].startswith("CNM schema violation")
    assert wf.calls["sync_granule"] == []
    assert wf.s3.list_objects_v2(Bucket=wf.staging_bucket).get("KeyCount", 0) == 0


def test_transient_sync_error_is_retried(wf, reference_schema):
    wf.fail_next("sync_granule", TransientError("SlowDown: please reduce your request rate"))
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)
    assert len(wf.calls["sync_granule"]) == 2
    assert wf.waits == wf.backoff(wf.retry("SyncGranule"), 1)  # the applied IntervalSeconds, once
    responses = wf.responses()
    assert [r["response"]["status"] for r in responses] == ["SUCCESS"]
    jsonschema.Draft7Validator(reference_schema).validate(responses[0])


def test_transient_error_exhausts_retries_then_fails(wf, reference_schema):
    retry = wf.retry("SyncGranule")  # examples/complete: sync_retry_max_attempts 4, interval 15 s
    assert retry["MaxAttempts"] >= 1
    for _ in range(retry["MaxAttempts"] + 1):
        wf.fail_next("sync_granule", TransientError("throttled"))
    desc = wf.run(make_cnm(wf))
    assert len(wf.calls["sync_granule"]) == retry["MaxAttempts"] + 1  # first try + every retry
    assert wf.waits == wf.backoff(retry, retry["MaxAttempts"])  # doubling from IntervalSeconds
    assert_failed(wf, desc, "PROCESSING_ERROR", reference_schema)


def test_record_errors_are_not_retried(wf, reference_schema):
    desc = wf.run(make_cnm(wf, checksum="f" * 32))
    assert len(wf.calls["sync_granule"]) == 1
    assert len(wf.calls["cnm_response"]) == 1
    assert wf.waits == []
    assert_failed(wf, desc, "VALIDATION_ERROR", reference_schema)


def test_extra_states_run_between_sync_and_response(wf, reference_schema):
    """examples/complete sets extra_states (DaacPostSync, a Pass) and extra_states_start_at."""
    states = wf.definition["States"]
    assert states["SyncGranule"]["Next"] == "SyncGranuleContinues"  # runs SyncGranule again while it continues
    extra = states["SyncGranuleContinues"]["Default"]
    assert extra != "CnmResponse" and states[extra]["Type"] == "Pass" and states[extra]["Next"] == "CnmResponse"
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in wf.history(desc["executionArn"])
        if e["type"].endswith("StateEntered")
    ]
    assert entered.count(extra) == 1
    assert entered.index("SyncGranule") < entered.index(extra) < entered.index("CnmResponse")
    assert [r["response"]["status"] for r in wf.responses()] == ["SUCCESS"]


def test_failure_of_cnm_response_itself_ends_failed(wf, reference_schema):
    wf.kinesis.delete_stream(StreamARN=wf.stream_arn, EnforceConsumerDeletion=True)  # the response stream is gone
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "FAILED"
    [parked] = wf.dead_letters()  # the undeliverable response, parked once
    assert parked["envelope"] == "response" and parked["response"]["response"]["status"] == "SUCCESS"
    assert len(wf.calls["cnm_response"]) == 2  # CnmResponse (not retried: not transient), then ParkResponse
    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["status"] == "FAILED"


def test_cross_provider_source_is_answered_validation_error_without_a_read(wf, reference_schema):
    """A CNM of provider PODAAC_SWOT naming another bucket: FAILED, VALIDATION_ERROR, nothing read or staged."""
    from collections import Counter

    from cnm_ingest import aws

    wf.s3.create_bucket(Bucket="someone-else", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    wf.s3.put_object(Bucket="someone-else", Key="incoming/GRAN_001.nc", Body=DATA)
    cnm = make_cnm(wf)
    cnm["product"]["files"][0]["uri"] = "s3://someone-else/incoming/GRAN_001.nc"
    calls: Counter = Counter()
    aws.client("s3").meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    desc = wf.run(cnm)
    response = assert_failed(wf, desc, "VALIDATION_ERROR", reference_schema)
    assert "someone-else" in response["response"]["errorMessage"]
    assert len(wf.calls["sync_granule"]) == 1
    assert calls == Counter(), calls  # SyncGranule made no S3 call at all
    assert wf.s3.list_objects_v2(Bucket=wf.staging_bucket).get("KeyCount", 0) == 0
