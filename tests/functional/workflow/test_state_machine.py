"""The rendered state machine, run in moto's interpreter against our handlers."""

from __future__ import annotations

import hashlib
import json
import os

import jsonschema
import pytest

from cnm_ingest.errors import TransientError
from tests.functional.workflow.conftest import COLLECTION, PROVIDER_BUCKET, STACK, STAGING_BUCKET

DATA = os.urandom(150_000)
BROWSE = os.urandom(20_000)
PREFIX = f"file-staging/{STACK}/{COLLECTION['name']}__{COLLECTION['version']}"


def make_cnm(wf, *, data=DATA, checksum=None, identifier="id-0001") -> dict:
    data_uri = wf.put_file("incoming/GRAN_001.nc", data)
    browse_uri = wf.put_file("incoming/GRAN_001.png", BROWSE)
    return {
        "version": "1.6.1",
        "provider": "PODAAC_SWOT",
        "collection": dict(COLLECTION),
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


def assert_failed(wf, desc, error_code: str, reference_schema) -> dict:
    """One FAILURE response with ``error_code``; execution and status FAILED."""
    assert desc["status"] == "FAILED", desc
    responses = wf.responses()
    assert len(responses) == 1, responses
    response = responses[0]
    jsonschema.Draft7Validator(reference_schema).validate(response)
    assert response["response"]["status"] == "FAILURE"
    assert response["response"]["errorCode"] == error_code
    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["status"] == "FAILED"
    assert execution["status_key"] == "EXECUTION#FAILED"
    assert execution["error"]["errorCode"] == error_code
    assert "completed_at" in execution
    return response


def test_success(wf, reference_schema):
    cnm = make_cnm(wf)
    desc = wf.run(cnm)
    assert desc["status"] == "SUCCEEDED", desc

    for name, body in (("GRAN_001.nc", DATA), ("GRAN_001.png", BROWSE)):
        staged = wf.s3.get_object(Bucket=STAGING_BUCKET, Key=f"{PREFIX}/{name}")["Body"].read()
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
    assert files["GRAN_001.nc"]["uri"] == f"s3://{STAGING_BUCKET}/{PREFIX}/GRAN_001.nc"
    assert files["GRAN_001.nc"]["checksum"] == hashlib.md5(DATA).hexdigest()
    assert files["GRAN_001.png"]["size"] == len(BROWSE)

    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["status"] == "COMPLETED"
    assert execution["granule_ids"] == ["GRAN_001"]
    assert "error" not in execution
    granule = wf.status_item("GRANULE#TEST_COLL__1#GRAN_001", "GRANULE")
    assert granule["status"] == "COMPLETED"
    assert granule["execution_arn"] == desc["executionArn"]
    assert json.loads(desc["output"])["meta"]["cnm_response"]["response"]["status"] == "SUCCESS"


def test_wrong_checksum(wf, reference_schema):
    desc = wf.run(make_cnm(wf, checksum="0" * 32))
    response = assert_failed(wf, desc, "VALIDATION_ERROR", reference_schema)  # as PO.DAAC's CnmResponse answers
    assert "the CNM says 000" in response["response"]["errorMessage"]
    assert "ChecksumMismatchError" not in response["response"]["errorMessage"]  # the message alone, no type prefix
    # the mismatching staged copy is gone
    listed = wf.s3.list_objects_v2(Bucket=STAGING_BUCKET, Prefix=f"{PREFIX}/GRAN_001.nc").get("KeyCount", 0)
    assert listed == 0
    assert wf.status_item("GRANULE#TEST_COLL__1#GRAN_001", "GRANULE")["status"] == "FAILED"
    assert json.loads(desc["cause"])["errorType"] == "WorkflowError"
    assert desc["error"] == "WorkflowError"


def test_missing_file(wf, reference_schema):
    cnm = make_cnm(wf)
    wf.s3.delete_object(Bucket=PROVIDER_BUCKET, Key="incoming/GRAN_001.png")
    desc = wf.run(cnm)
    response = assert_failed(wf, desc, "TRANSFER_ERROR", reference_schema)
    assert response["response"]["errorMessage"].endswith("does not exist at the provider")
    assert "GRAN_001.png" in response["response"]["errorMessage"]


@pytest.mark.parametrize("breakage", ["no collection", "wrong type"])
def test_malformed_cnm(wf, reference_schema, breakage):
    cnm = make_cnm(wf)
    if breakage == "no collection":
        del cnm["collection"]
    else:
        cnm["product"]["files"][0]["type"] = "science"
    desc = wf.run(cnm)
    response = assert_failed(wf, desc, "VALIDATION_ERROR", reference_schema)
    assert response["identifier"] == cnm["identifier"]
    # the response is still addressed to the collection the rule matched
    assert response["collection"] in (COLLECTION, cnm.get("collection"))
    assert response["response"]["errorMessage"].startswith("CNM schema violation")
    assert wf.harness.calls["SyncGranule"] == []
    assert wf.s3.list_objects_v2(Bucket=STAGING_BUCKET).get("KeyCount", 0) == 0


def test_transient_sync_error_is_retried(wf, reference_schema):
    wf.harness.fail_next("SyncGranule", TransientError("SlowDown: please reduce your request rate"))
    desc = wf.run(make_cnm(wf), retry_interval=1)
    assert desc["status"] == "SUCCEEDED", desc
    assert len(wf.harness.calls["SyncGranule"]) == 2
    responses = wf.responses()
    assert [r["response"]["status"] for r in responses] == ["SUCCESS"]
    jsonschema.Draft7Validator(reference_schema).validate(responses[0])


def test_transient_error_exhausts_retries_then_fails(wf, reference_schema):
    for _ in range(3):
        wf.harness.fail_next("SyncGranule", TransientError("throttled"))
    desc = wf.run(make_cnm(wf), retry_interval=1, retry_attempts=2)
    assert len(wf.harness.calls["SyncGranule"]) == 3  # first try + 2 retries
    assert_failed(wf, desc, "PROCESSING_ERROR", reference_schema)


def test_record_errors_are_not_retried(wf, reference_schema):
    desc = wf.run(make_cnm(wf, checksum="f" * 32), retry_interval=1)
    assert len(wf.harness.calls["SyncGranule"]) == 1
    assert len(wf.harness.calls["CnmResponse"]) == 1
    assert_failed(wf, desc, "VALIDATION_ERROR", reference_schema)


def test_extra_states_run_between_sync_and_response(wf, reference_schema):
    extra = {"DaacStep": {"Type": "Pass", "Result": "done", "ResultPath": "$.daac_step", "Next": "CnmResponse"}}
    desc = wf.run(make_cnm(wf), extra_states=extra, extra_states_start_at="DaacStep")
    assert desc["status"] == "SUCCEEDED", desc
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in wf.history(desc["executionArn"])
        if e["type"].endswith("StateEntered")
    ]
    assert entered.index("SyncGranule") < entered.index("DaacStep") < entered.index("CnmResponse")
    assert json.loads(desc["output"])["daac_step"] == "done"
    assert [r["response"]["status"] for r in wf.responses()] == ["SUCCESS"]


def test_failure_of_cnm_response_itself_ends_failed(wf, reference_schema, monkeypatch):
    monkeypatch.setenv("RESPONSE_STREAM_ARN", wf.stream_arn.replace("responses", "no-such-stream"))
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "FAILED"
    assert wf.responses() == []
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
    assert calls == Counter(), calls  # SyncGranule made no S3 call at all
    assert wf.s3.list_objects_v2(Bucket=STAGING_BUCKET).get("KeyCount", 0) == 0
