"""A patched local AWS (localaws.server) on loopback, and boto3 clients pointed at it."""

from __future__ import annotations

import boto3
import pytest

from localaws.server import REGION, LocalAWS


@pytest.fixture(scope="session")
def local_aws():
    with LocalAWS() as server:
        yield server


@pytest.fixture
def client(local_aws):
    def make(service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=local_aws.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    return make
