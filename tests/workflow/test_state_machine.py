"""The rendered state machine, run in moto's interpreter against our handlers."""

from __future__ import annotations

import hashlib
import json
import os

import jsonschema
import pytest

from cnm_ingest.errors import TransientError
from tests.workflow.conftest import COLLECTION, PROVIDER_BUCKET, STACK, STAGING_BUCKET

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
                {"type": "data", "uri": data_uri, "name": "GRAN_001.nc", "size": len(data),
                 "checksumType": "md5", "checksum": checksum or hashlib.md5(data).hexdigest()},
                {"type": "browse", "uri": browse_uri, "name": "GRAN_001.png", "size": len(BROWSE),
                 "checksumType": "SHA512", "checksum": hashlib.sha512(BROWSE).hexdigest()},
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
