"""The lower bounds every versions.tf claims are the versions this project runs.

Terraform: tools/terraform-min.sh builds the lowest Terraform the module claims from the Go module
proxy (cached outside the repository); both examples initialise, validate and plan with it (against
a moto server standing in for AWS), with no error and no warning. The AWS provider: the only one the
project runs is the one tools/terraform-provider.sh builds, so that is the lower bound. Every
versions.tf claims both (tests/terraform/test_hcl.py reads them).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess

import pytest

from .tfhelpers import ROOT, copy_config, provider_override

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

MIN_SCRIPT = ROOT / "tools" / "terraform-min.sh"
EXAMPLES = ["minimal", "complete"]


def script_default(script: str, name: str) -> str:
    """The default of ``NAME="${NAME:-value}"`` in a tools/ script."""
    m = re.search(rf'^{name}="\$\{{{name}:-v?([^}}]+)\}}"', (ROOT / "tools" / script).read_text(), re.M)
    assert m, f"{name} not found in tools/{script}"
    return m.group(1)


TERRAFORM_MIN = script_default("terraform-min.sh", "TERRAFORM_MIN_VERSION")
PROVIDER_VERSION = script_default("terraform-provider.sh", "PROVIDER_VERSION")


@pytest.fixture(scope="session")
def terraform_min() -> str:
    """The lowest Terraform claimed, built when absent (tens of minutes the first time; never skips)."""
    proc = subprocess.run(["bash", str(MIN_SCRIPT)], capture_output=True, text=True, timeout=4800)
    assert proc.returncode == 0, f"building Terraform {TERRAFORM_MIN} failed:\n{proc.stderr[-4000:]}"
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def min_env(mirror) -> dict[str, str]:
    """tools/tf.py's environment: the CLI config that installs the provider from the local mirror."""
    spec = importlib.util.spec_from_file_location("cnm_tf", ROOT / "tools" / "tf.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.environ()


def run(binary: str, directory, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, f"-chdir={directory}", *args], capture_output=True, text=True, timeout=900, env=env)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"terraform failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def test_the_built_terraform_is_the_claimed_lower_bound(terraform_min, min_env):
    version = json.loads(
        ok(subprocess.run([terraform_min, "version", "-json"], capture_output=True, text=True, env=min_env))
    )
    assert version["terraform_version"] == TERRAFORM_MIN


@pytest.mark.parametrize("example", EXAMPLES)
def test_examples_validate_and_plan_with_the_lowest_terraform(
    example, terraform_min, min_env, packages, moto_server, tmp_path
):
    work = copy_config(ROOT / "examples" / example, tmp_path / example)
    (work / "aws_provider_override.tf").write_text(provider_override(moto_server))
    ok(run(terraform_min, work, min_env, "init", "-input=false", "-no-color"))
    lock = (work / ".terraform.lock.hcl").read_text()
    assert f'version     = "{PROVIDER_VERSION}"' in lock, lock  # the provider the lower bound names

    result = json.loads(run(terraform_min, work, min_env, "validate", "-json", "-no-color").stdout)
    assert result["valid"] is True, json.dumps(result["diagnostics"], indent=2)
    assert result["diagnostics"] == [], json.dumps(result["diagnostics"], indent=2)  # no warning either

    plan = run(terraform_min, work, min_env, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan")
    ok(plan)
    assert "Warning" not in plan.stdout + plan.stderr, plan.stdout[-4000:] + plan.stderr[-4000:]
    shown = json.loads(ok(run(terraform_min, work, min_env, "show", "-json", "tfplan")))
    assert shown["terraform_version"] == TERRAFORM_MIN
    created = [rc for rc in shown["resource_changes"] if rc["change"]["actions"] == ["create"]]
    assert len(created) > 80, len(created)  # every resource of the example, not an empty plan
