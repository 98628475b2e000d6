"""Fixtures for the Terraform tiers: the provider mirror, packages, a moto server."""

from __future__ import annotations

import socket

import pytest

from tests.worlds import built

from .tfhelpers import provider_mirror


@pytest.fixture(scope="session")
def mirror():
    return provider_mirror()


@pytest.fixture(scope="session")
def packages():
    """Terraform reads build/manifest.json; make sure it is there and current (once per process)."""
    return built()


@pytest.fixture(scope="session")
def moto_server():
    """A moto server on loopback standing in for AWS during `terraform plan`."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def isolated_aws():
    """A local AWS server on an empty moto of its own, for a test that applies an example under the
    names the session's applied stacks (tests/worlds.py, sharing this process's moto) use; those are
    put back afterwards."""
    from localaws import snapshot
    from localaws.server import LocalAWS

    with snapshot.isolated(), LocalAWS() as aws:
        yield aws.endpoint
