"""The workflow tasks as plain functions and handlers, no state machine, on the applied examples/complete
(its staging bucket, response stream, provider topic and status table; each under its function's deployed
environment). The provider's bucket is the provider's side, created here."""

from __future__ import annotations

import hashlib
import json
import os
import sys

import pytest

from cnm_ingest.cnm import checksum
from cnm_ingest.cnm.validate import validate_response
from cnm_ingest.errors import (
    ChecksumMismatchError,
    CnmValidationError,
    DuplicateFileError,
    FileNotFoundAtSourceError,
    WorkflowError,
    error_code_for,
)
from cnm_ingest.workflow import sync_granule, task, translate_message
from tests.conftest import REGION, is_response

BUCKET = "provider"
STAGE = ""  # the applied staging bucket, set by the s3 fixture
PROVIDER = {"id": "P", "protocol": "s3", "host": BUCKET}


@pytest.fixture
def s3(wf, monkeypatch):
    """The provider's bucket (made here) and the applied staging bucket, under SyncGranule's deployed env."""
    monkeypatch.setattr(sys.modules[__name__], "STAGE", wf.staging_bucket)
    wf.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    with wf.env("sync_granule"):
        yield wf.s3


def gfile(s3, name: str, data: bytes, *, checksum_type="md5", digest=None) -> dict:
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}", Body=data)
    algo = checksum.algorithm(checksum_type)
    return {
        "name": name,
        "bucket": BUCKET,
        "key": f"in/{name}",
        "source": f"s3://{BUCKET}/in/{name}",
        "size": len(data),
        "checksumType": checksum_type,
        "checksum": digest or hashlib.new(algo, data).hexdigest(),
        "type": "data",
    }


def sync(file, handling="error", execution="exec-1", **kw):
    return sync_granule.sync_file(
        file,
        bucket=STAGE,
        prefix="p",
        duplicate_handling=handling,
        checksum_required=False,
        execution_name=execution,
        provider=PROVIDER,
        **kw,
    )


# --- CNM samples -------------------------------------------------------------------------------


def test_every_response_sample_is_a_valid_response(samples):
    responses = {name: msg for name, msg in samples.items() if is_response(msg)}
    assert len(responses) >= 4
    for name, msg in responses.items():
        assert validate_response(msg) is msg, name


def test_notifications_are_not_responses(samples):
    for msg in samples.values():
        if not is_response(msg):
            with pytest.raises(CnmValidationError):
                validate_response(msg)


# --- TranslateMessage --------------------------------------------------------------------------


def well_formed(cnm: dict) -> dict:
    """``cnm`` with each file's checksum replaced by a well-formed one of its type: the published samples'
    checksums ("addjd872342bfbf", ...) are placeholders that no file can have, refused at intake (issue 18)."""
    cnm = json.loads(json.dumps(cnm))
    groups = cnm["product"].get("filegroups") or [{"files": cnm["product"].get("files") or []}]
    for group in groups:
        for f in group["files"]:
            if "checksum" in f:
                f["checksum"] = hashlib.new(checksum.algorithm(f.get("checksumType")), f["name"].encode()).hexdigest()
    return cnm


def test_the_samples_placeholder_checksums_are_refused_at_intake(samples):
    for name in ("cumulus_sns_v1.1_dataVersions.json", "cumulus_sns_v1.0_notification.json"):
        with pytest.raises(CnmValidationError, match=r"files\[\]\.checksum"):
            translate_message.translate(samples[name], {}, {})


def test_translate_filegroups_dedupes_repeated_files(samples):
    [g] = translate_message.translate(well_formed(samples["cumulus_sns_v1.1_dataVersions.json"]), {}, {})
    assert g["granuleId"] == "sampleGranuleName001"
    assert g["dataType"] == "SWOT_Prod_l2:1"
    assert [f["name"] for f in g["files"]] == ["production_file.nc", "production_file.png"]
    assert g["files"][0]["bucket"] == "sampleIngestBucket"
    assert g["files"][0]["key"] == "prod_20170926T11:30:36/production_file.nc"


def test_translate_granule_id_from_regex(samples):
    cnm = well_formed(samples["cumulus_sns_v1.6_notification.json"])
    name = cnm["product"]["name"]
    [g] = translate_message.translate(cnm, {"name": "C", "version": "2"}, {"granule_id_extraction": r"^(.*)Name\d+$"})
    assert (g["granuleId"], g["producerGranuleId"]) == (name[: name.index("Name")], name)
    assert (g["dataType"], g["version"]) == ("C", "2")
    [g] = translate_message.translate(cnm, {}, {"granule_id_extraction": r"^(.*)\.h5$"})  # no match: the product name
    assert g["granuleId"] == name


def test_translate_handler_keeps_cnm_in_meta(samples, lambda_context):
    from handlers import translate_message

    cnm = well_formed(samples["cumulus_sns_v1.0_notification.json"])
    out = translate_message.handler({"message": {"meta": {"cnm": cnm}, "payload": {}}, "execution": {}}, lambda_context)
    assert out["meta"]["cnm"] == cnm and "cnm" not in out["payload"]  # already valid: nothing normalised
    assert out["payload"]["granules"][0]["files"][1]["checksum"] == cnm["product"]["files"][1]["checksum"]
    bad = dict(cnm, product={"name": "x"})
    with pytest.raises(CnmValidationError) as err:
        translate_message.handler({"meta": {"cnm": bad}, "payload": {}}, lambda_context)
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"


# --- checksums ---------------------------------------------------------------------------------


def test_checksum_streams_in_chunks(s3, monkeypatch):
    data = os.urandom(300_000)
    s3.put_object(Bucket=BUCKET, Key="big", Body=data)
    monkeypatch.setattr(checksum, "CHUNK_SIZE", 64 * 1024)
    chunks = []
    real = checksum.digest_chunks

    def spy(iterable, algo):
        def counted():
            for c in iterable:
                assert len(c) <= 64 * 1024
                chunks.append(len(c))
                yield c

        return real(counted(), algo)

    monkeypatch.setattr(checksum, "digest_chunks", spy)
    for ctype, algo in (
        ("md5", "md5"),
        ("SHA1", "sha1"),
        ("SHA2", "sha256"),
        ("SHA256", "sha256"),
        ("SHA512", "sha512"),
    ):
        chunks.clear()
        digest, size = checksum.s3_digest(BUCKET, "big", checksum.algorithm(ctype))
        assert digest == hashlib.new(algo, data).hexdigest()
        assert size == len(data) == sum(chunks)
        assert len(chunks) > 1


def test_checksum_accepts_hex_any_case_and_base64():
    import base64

    raw = hashlib.md5(b"x").digest()
    assert checksum.matches(raw.hex().upper(), raw.hex())
    assert checksum.matches(base64.b64encode(raw).decode(), raw.hex())
    assert not checksum.matches("00" * 16, raw.hex())
    with pytest.raises(CnmValidationError):
        checksum.algorithm("crc32")


# --- SyncGranule -------------------------------------------------------------------------------


def test_sync_copies_and_verifies(s3):
    data = os.urandom(10_000)
    staged = sync(gfile(s3, "a.nc", data, checksum_type="SHA256"))
    assert (staged["bucket"], staged["key"], staged["size"]) == (STAGE, "p/a.nc", len(data))
    obj = s3.get_object(Bucket=STAGE, Key="p/a.nc")
    assert obj["Body"].read() == data
    assert obj["Metadata"][sync_granule.EXECUTION_METADATA] == "exec-1"


def test_sync_multipart_copy_with_small_threshold(s3, monkeypatch):
    data = os.urandom(11 * 1024 * 1024 + 123)
    calls = []

    def record(params, **_):  # on every client: the temporary copy runs under the provider-read role
        calls.append(params["CopySourceRange"])

    sync_granule.aws.reset()
    sync_granule.aws.session().events.register("before-parameter-build.s3.UploadPartCopy", record)
    try:
        staged = sync(gfile(s3, "big.nc", data), multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024)
    finally:
        sync_granule.aws.session().events.unregister("before-parameter-build.s3.UploadPartCopy", record)
        sync_granule.aws.reset()
    # three parts into the temporary key, three more moving the verified copy into place
    assert len(calls) == 6
    assert calls[2] == calls[-1] == f"bytes={10 * 1024 * 1024}-{len(data) - 1}"
    assert s3.get_object(Bucket=STAGE, Key=staged["key"])["Body"].read() == data


def test_sync_checksum_mismatch_deletes_staged_copy(s3):
    with pytest.raises(ChecksumMismatchError) as err:
        sync(gfile(s3, "a.nc", b"abc", digest="0" * 32))
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
    assert s3.list_objects_v2(Bucket=STAGE).get("KeyCount", 0) == 0


def test_sync_missing_source(s3):
    f = gfile(s3, "a.nc", b"abc")
    s3.delete_object(Bucket=BUCKET, Key="in/a.nc")
    with pytest.raises(FileNotFoundAtSourceError) as err:
        sync(f)
    assert error_code_for(type(err.value).__name__) == "TRANSFER_ERROR"


def test_sync_checksum_required(s3):
    f = dict(gfile(s3, "a.nc", b"abc"), checksum=None, checksumType=None)
    with pytest.raises(CnmValidationError):
        sync_granule.sync_file(
            f,
            bucket=STAGE,
            prefix="p",
            duplicate_handling="error",
            checksum_required=True,
            execution_name="e",
            provider=PROVIDER,
        )
    assert sync(f)["size"] == 3  # size-only verification when not required


@pytest.fixture
def duplicate(s3):
    """An existing staged p/a.nc from another execution, and a new version of the file."""
    s3.put_object(Bucket=STAGE, Key="p/a.nc", Body=b"old", Metadata={sync_granule.EXECUTION_METADATA: "earlier"})
    return gfile(s3, "a.nc", b"new contents")


def test_duplicate_error(s3, duplicate):
    with pytest.raises(DuplicateFileError):
        sync(duplicate, "error")
    assert s3.get_object(Bucket=STAGE, Key="p/a.nc")["Body"].read() == b"old"


def test_duplicate_skip(s3, duplicate):
    staged = sync(duplicate, "skip")
    assert staged["duplicate"] == "skipped"
    assert s3.get_object(Bucket=STAGE, Key="p/a.nc")["Body"].read() == b"old"


def test_duplicate_replace(s3, duplicate):
    assert sync(duplicate, "replace")["duplicate"] == "replaced"
    assert s3.get_object(Bucket=STAGE, Key="p/a.nc")["Body"].read() == b"new contents"
    assert s3.list_objects_v2(Bucket=STAGE)["KeyCount"] == 1


def test_duplicate_version(s3, duplicate):
    staged = sync(duplicate, "version")
    assert staged["duplicate"] == "versioned"
    assert staged["versionedKey"].startswith("p/a.nc.v")
    assert s3.get_object(Bucket=STAGE, Key="p/a.nc")["Body"].read() == b"new contents"
    assert s3.get_object(Bucket=STAGE, Key=staged["versionedKey"])["Body"].read() == b"old"


def test_retry_of_same_execution_is_not_a_duplicate(s3):
    f = gfile(s3, "a.nc", b"abc")
    sync(f, "error", execution="exec-9")
    assert sync(f, "error", execution="exec-9")["key"] == "p/a.nc"
    with pytest.raises(DuplicateFileError):
        sync(f, "error", execution="exec-10")


def test_url_path_template():
    assert (
        sync_granule.url_path("file-staging/{stack}/{collection}", stack="s", name="C", version="1", granule_id="g")
        == "file-staging/s/C__1"
    )
    assert (
        sync_granule.url_path("{collection}/{granuleId}/", stack="s", name="C", version=None, granule_id="g") == "C/g"
    )
    with pytest.raises(Exception) as err:
        sync_granule.url_path("{nope}", stack="s", name="C", version="1", granule_id="g")
    assert type(err.value).__name__ == "ConfigurationError"


# --- CnmResponse -------------------------------------------------------------------------------


@pytest.fixture
def stream(wf):
    """The applied response stream, under CnmResponse's deployed env (its idempotency table keeps the
    idempotency records)."""
    with wf.env("cnm_response"):
        yield wf.stream_arn


def read_stream(arn):
    """Every record on the stream, all shards."""
    from cnm_ingest import aws
    from localaws.pipeline import read_stream as read_all

    return read_all(aws.client("kinesis"), arn)


def test_response_failure_parses_cause_and_raises_workflow_error(stream, samples, reference_schema):
    import jsonschema

    from cnm_ingest.workflow import cnm_response

    cnm = samples["cumulus_sns_v1.0_notification.json"]
    cause = json.dumps({"errorMessage": "s3://x/y has md5 1, the CNM says 2", "errorType": "ChecksumMismatchError"})
    message = {"meta": {"cnm": cnm}, "payload": {}, "exception": {"Error": "ChecksumMismatchError", "Cause": cause}}
    with pytest.raises(WorkflowError) as err:
        cnm_response.respond(message, {"name": "e", "start_time": "2024-01-01T00:00:00.000Z"}, stream_arn=stream)
    assert json.loads(str(err.value))["Error"] == "ChecksumMismatchError"
    [record] = read_stream(stream)
    assert record["PartitionKey"] == cnm["identifier"]
    response = json.loads(record["Data"])
    jsonschema.Draft7Validator(reference_schema).validate(response)
    assert response["response"]["errorCode"] == "VALIDATION_ERROR"
    assert response["response"]["errorMessage"] == "s3://x/y has md5 1, the CNM says 2"
    assert response["receivedTime"] == "2024-01-01T00:00:00.000Z"


def test_response_unknown_error_is_processing_error(stream, samples):
    from cnm_ingest.workflow import cnm_response

    message = {
        "meta": {"cnm": samples["cumulus_sns_v1.0_notification.json"]},
        "exception": {"Error": "States.Timeout", "Cause": "task timed out"},
    }
    with pytest.raises(WorkflowError):
        cnm_response.respond(message, {}, stream_arn=stream)
    response = json.loads(read_stream(stream)[0]["Data"])
    assert response["response"]["errorCode"] == "PROCESSING_ERROR"
    assert "task timed out" in response["response"]["errorMessage"]


def test_response_published_to_topic(wf, stream, samples):
    from cnm_ingest.workflow import cnm_response

    sqs, topic = wf.sqs, wf.response_topic
    queue = wf.provider_subscriber()
    out = cnm_response.respond(
        {"meta": {"cnm": samples["cumulus_sns_v1.0_notification.json"]}, "payload": {}},
        {},
        stream_arn=stream,
        topic_arn=topic,
    )
    [msg] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(msg["Body"]) == out["meta"]["cnm_response"]
    assert out["meta"]["cnm_response"]["response"]["status"] == "SUCCESS"


def test_original_error_through_workflow_error():
    inner = {"Error": "FileNotFoundAtSourceError", "errorCode": "TRANSFER_ERROR", "errorMessage": "gone"}
    outer = {
        "Error": "WorkflowError",
        "Cause": json.dumps({"errorType": "WorkflowError", "errorMessage": json.dumps(inner)}),
    }
    assert task.original_error(outer) == inner
    assert task.original_error({"Error": "Lambda.Unknown", "Cause": "boom"})["errorCode"] == "PROCESSING_ERROR"


# --- StartStatus / StopStatus ------------------------------------------------------------------


def test_status_lifecycle_and_older_execution_does_not_mask_newer(wf, samples, lambda_context):
    from handlers import start_status, stop_status

    from cnm_ingest import executions

    ddb, table = wf.dynamodb, wf.status_table
    cnm = samples["cumulus_sns_v1.0_notification.json"]
    msg = {"meta": {"cnm": cnm, "collection": {"name": "C", "version": "1"}}, "payload": {}}
    new = {"id": "arn:exec:new", "name": "new", "start_time": "2024-01-02T00:00:00Z"}
    old = {"id": "arn:exec:old", "name": "old", "start_time": "2024-01-01T00:00:00Z"}
    with wf.env("start_status"):
        start_status.handler({"message": msg, "execution": new}, lambda_context)

    def item(pk, sk):
        return ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]

    assert item("EXECUTION#arn:exec:new", "EXECUTION")["status"]["S"] == "RUNNING"
    assert item("GRANULE#sampleGranuleName001", "SUMMARY#C__1")["status"]["S"] == "RUNNING"
    with wf.env("stop_status"):
        stop_status.handler({"message": msg, "execution": new}, lambda_context)
    assert item("GRANULE#sampleGranuleName001", "SUMMARY#C__1")["status"]["S"] == "SUCCEEDED"
    # a late StopStatus of an older execution records its own failure but not over the granule
    failed = dict(msg, exception={"Error": "ChecksumMismatchError", "Cause": json.dumps({"errorMessage": "bad"})})
    with wf.env("stop_status"):
        stop_status.handler({"message": failed, "execution": old}, lambda_context)
    assert item("EXECUTION#arn:exec:old", "EXECUTION")["status"]["S"] == "FAILED"
    assert item("EXECUTION#arn:exec:old", "EXECUTION")["original_error"]["M"]["errorCode"]["S"] == "VALIDATION_ERROR"
    assert item("GRANULE#sampleGranuleName001", "SUMMARY#C__1")["status"]["S"] == "SUCCEEDED"
    # each execution keeps its own attempt of the granule
    attempts = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": {"S": "GRANULE#sampleGranuleName001"}, ":a": {"S": "ATTEMPT#"}},
    )["Items"]
    assert sorted((i["execution_arn"]["S"], i["status"]["S"]) for i in attempts) == [
        ("arn:exec:new", "SUCCEEDED"),
        ("arn:exec:old", "FAILED"),
    ]
    by_status = ddb.query(
        TableName=table,
        IndexName=executions.STATUS_INDEX,
        KeyConditionExpression="status_key = :k",
        ExpressionAttributeValues={":k": {"S": "EXECUTION#FAILED"}},
    )["Items"]
    assert [i["pk"]["S"] for i in by_status] == ["EXECUTION#arn:exec:old"]
