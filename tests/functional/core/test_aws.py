"""cnm_ingest.aws: one boto3 Session per process, clients per (service, config), built from the environment."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.config import Config

from cnm_ingest import aws


@pytest.fixture
def fresh(monkeypatch):
    """No cached Session or clients; count the Sessions created."""
    created = []
    real = boto3.session.Session

    class Counting(real):
        def __init__(self, *a, **k):
            created.append(self)
            super().__init__(*a, **k)

    aws.reset(session=True)
    monkeypatch.setattr(aws.boto3.session, "Session", Counting)
    yield created
    aws.reset(session=True)


def test_clients_for_many_services_come_from_one_session(fresh):
    s3 = aws.client("s3")
    assert aws.client("s3") is s3  # a second request reuses the client
    sqs, sfn = aws.client("sqs"), aws.client("stepfunctions")
    assert len(fresh) == 1, "a second client request must reuse the Session"
    assert aws.session() is fresh[0]
    assert len({id(s3), id(sqs), id(sfn)}) == 3


def test_reset_drops_clients_but_keeps_the_session(fresh):
    first = aws.client("sns")
    aws.reset()
    second = aws.client("sns")
    assert second is not first
    assert len(fresh) == 1
    aws.reset(session=True)
    aws.client("sns")
    assert len(fresh) == 2


def test_endpoint_from_the_environment_is_honoured(fresh, monkeypatch):
    assert "amazonaws.com" in aws.client("sqs").meta.endpoint_url
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    aws.reset()  # clients read the environment when built
    assert aws.client("sqs").meta.endpoint_url == "http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://localhost:9000")
    aws.reset()
    assert aws.client("s3").meta.endpoint_url == "http://localhost:9000"  # the per-service one wins
    assert aws.client("sqs").meta.endpoint_url == "http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    aws.reset()
    assert aws.client("sqs").meta.region_name == "eu-west-1"
    assert len(fresh) == 1


def test_clients_are_cached_per_config_and_keep_the_default_retries(fresh, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    adaptive = Config(retries={"mode": "adaptive"}, max_pool_connections=32)
    default = aws.client("stepfunctions")
    tuned = aws.client("stepfunctions", adaptive)
    assert tuned is not default
    assert aws.client("stepfunctions", adaptive) is tuned
    assert tuned.meta.config.retries["mode"] == "adaptive"
    assert tuned.meta.config.max_pool_connections == 32
    assert default.meta.config.retries["mode"] == "standard"
    assert default.meta.config.retries["total_max_attempts"] == 7  # AWS_MAX_ATTEMPTS counts the first call (the SDKs)
    assert len(fresh) == 1


def test_concurrent_first_requests_build_one_session_and_one_client(fresh):
    barrier = threading.Barrier(8)
    got = []

    def ask():
        barrier.wait()
        got.append(aws.client("kinesis"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len({id(c) for c in got}) == 1
    assert len(fresh) == 1


def test_a_client_built_before_moto_started_is_not_used_inside_it(aws_env):
    """The moto fixtures reset the cache, so no client leaks from outside moto into it (or out of it)."""
    from moto import mock_aws

    outside = aws.client("s3")
    aws.reset()
    with mock_aws():
        inside = aws.client("s3")
        assert inside is not outside
        inside.create_bucket(Bucket="cnm-test-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        assert [b["Name"] for b in inside.list_buckets()["Buckets"]] == ["cnm-test-bucket"]
    aws.reset()


@pytest.fixture
def loads(monkeypatch):
    """No model loader yet; count every JSON file botocore parses (by name, duplicates kept)."""
    import botocore.loaders

    parsed: list[str] = []
    real = botocore.loaders.JSONFileLoader.load_file

    def counting(self, file_path):
        parsed.append("/".join(file_path.split("/")[-3:]))  # e.g. sqs/2012-11-05/service-2
        return real(self, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", counting)
    monkeypatch.setattr(aws, "_loaders", {})
    aws.reset(session=True)
    yield parsed
    aws.reset(session=True)


def test_a_session_after_a_reset_reuses_the_parsed_models(loads, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    first = aws.session()
    aws.client("sqs")
    once = list(loads)
    assert any(name.endswith("endpoints") for name in once), once
    assert any("sqs" in name for name in once), once
    for _ in range(3):
        aws.reset(session=True)
        assert aws.session() is not first  # a new Session: new credentials are read
        aws.client("sqs")
    assert loads == once, "a new Session parsed the models again"
    # boto3 adds its data folder to the loader with every Session: the search path does not grow
    assert len(aws.session()._loader.search_paths) == len(set(aws.session()._loader.search_paths))


def test_a_session_after_a_reset_reads_credentials_and_region_again(loads, monkeypatch):
    """Another tenant's credentials are never carried over by the shared loader."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATENANTONE0000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "one")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    one = aws.client("sqs")
    assert one._request_signer._credentials.access_key == "AKIATENANTONE0000000"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATENANTTWO0000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "two")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws.reset(session=True)
    two = aws.client("sqs")
    assert two._request_signer._credentials.access_key == "AKIATENANTTWO0000000"
    assert two.meta.region_name == "eu-west-1"
    assert one._request_signer._credentials.access_key == "AKIATENANTONE0000000"


def test_a_changed_data_path_gets_a_loader_of_its_own(loads, monkeypatch, tmp_path):
    """AWS_DATA_PATH changed between two Sessions: the models there are found, not the earlier loader's."""
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    assert "cnmtest" not in aws.session().get_available_services()
    model = tmp_path / "cnmtest" / "2020-01-01" / "service-2.json"
    model.parent.mkdir(parents=True)
    model.write_text('{"version": "2.0", "metadata": {}, "operations": {}, "shapes": {}}')
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    aws.reset(session=True)
    assert "cnmtest" in aws.session().get_available_services()
    monkeypatch.delenv("AWS_DATA_PATH")
    aws.reset(session=True)
    assert "cnmtest" not in aws.session().get_available_services()
