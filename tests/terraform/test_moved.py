"""An existing deployment upgrades with nothing destroyed (the `moved` blocks of moved.tf).

The old state is real: examples/minimal of the code before the issue-11 restructure
(OLD_REF, taken from git history with `git archive`) is applied to the local AWS
(localaws: moto with the listed patches). Then the current examples/minimal is planned
against that state, and the plan must destroy nothing and show each moved resource
at its new address.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile

import pytest

from .tfhelpers import ROOT, check, copy_config, provider_override, show_json, tf

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

# main just before modules/dead_letter, the root split and the function object.
OLD_REF = "507d28598649c46c674e712bebbe0fb522ea9624"

# old address -> new address, for what examples/minimal creates (on_failure_destination = "sns").
EXPECTED_MOVES = {
    "module.cnm_ingest.module.fallback.aws_sqs_queue.dlq": "module.cnm_ingest.module.dead_letter.aws_sqs_queue.dlq",
    "module.cnm_ingest.module.fallback.aws_sqs_queue_redrive_allow_policy.dlq":
        "module.cnm_ingest.module.dead_letter.aws_sqs_queue_redrive_allow_policy.dlq",
    "module.cnm_ingest.module.fallback.aws_sqs_queue_policy.dlq": "module.cnm_ingest.aws_sqs_queue_policy.dead_letter",
    "module.cnm_ingest.module.fallback.aws_sns_topic.fallback": "module.cnm_ingest.module.dead_letter.aws_sns_topic.fallback",
    "module.cnm_ingest.module.consumer.aws_sns_topic.failed_batch[0]":
        "module.cnm_ingest.module.dead_letter.aws_sns_topic.failed_batch[0]",
    "module.cnm_ingest.module.payload_bucket.aws_s3_bucket.this":
        "module.cnm_ingest.module.dead_letter.module.payload_bucket.aws_s3_bucket.this",
    "module.cnm_ingest.module.payload_bucket.aws_s3_bucket_policy.this":
        "module.cnm_ingest.module.dead_letter.module.payload_bucket.aws_s3_bucket_policy.this",
}


@pytest.fixture(scope="module")
def local_aws():
    from localaws.server import LocalAWS

    with LocalAWS() as aws:
        yield aws.endpoint


def old_tree(dest):
    """The repository at OLD_REF (fails, never skips, when the history is not there)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", OLD_REF],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.fixture(scope="module")
def upgrade_plan(mirror, packages, local_aws, tmp_path_factory):
    base = tmp_path_factory.mktemp("moved")
    old = old_tree(base / "old")
    shutil.copytree(ROOT / "build", old / "build")  # same packages: the old code reads build/manifest.json too
    old_example = old / "examples" / "minimal"
    (old_example / "aws_provider_override.tf").write_text(provider_override(local_aws))
    check(tf(old_example, "init", "-input=false", "-no-color"))
    check(tf(old_example, "apply", "-input=false", "-no-color", "-auto-approve", "-lock=false"))
    state = old_example / "terraform.tfstate"
    assert state.stat().st_size > 0
    # What the old code itself would change in its own deployment: the emulator's drift
    # (moto does not return every attribute the provider set), the baseline of the upgrade.
    check(tf(old_example, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan"))
    baseline = show_json(old_example, "tfplan")

    new = copy_config(ROOT / "examples" / "minimal", base / "new")
    (new / "aws_provider_override.tf").write_text(provider_override(local_aws))
    shutil.copy(state, new / "terraform.tfstate")
    check(tf(new, "init", "-input=false", "-no-color"))
    check(tf(new, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan"))
    plan = show_json(new, "tfplan")
    return plan, show_json(old_example, "terraform.tfstate"), baseline


def actions(plan: dict) -> dict[str, list[str]]:
    return {rc["address"]: rc["change"]["actions"] for rc in plan.get("resource_changes", []) if rc["mode"] == "managed"}


def test_upgrade_destroys_nothing(upgrade_plan):
    plan, old_state, _ = upgrade_plan
    old_resources = [r["address"] for r in _resources(old_state["values"]["root_module"]) if r["mode"] == "managed"]
    assert len(old_resources) > 50  # a real deployment: every resource of examples/minimal
    changes = [rc for rc in plan["resource_changes"] if rc["mode"] == "managed"]
    destroyed = [rc["address"] for rc in changes if "delete" in rc["change"]["actions"]]
    assert destroyed == [], f"the upgrade would destroy (or replace) {destroyed}"
    created = [rc["address"] for rc in changes if "create" in rc["change"]["actions"]]
    assert created == [], f"the upgrade would create {created}"


def test_upgrade_changes_nothing_the_old_code_would_not(upgrade_plan):
    """Every in-place update of the upgrade is one the old code plans against its own deployment too."""
    plan, _, baseline = upgrade_plan
    updated = {a for a, act in actions(plan).items() if act != ["no-op"]}
    assert updated <= {a for a, act in actions(baseline).items() if act != ["no-op"]}


def test_moved_resources_keep_their_identity(upgrade_plan):
    plan, _, _ = upgrade_plan
    moved = {rc["previous_address"]: rc["address"] for rc in plan["resource_changes"] if rc.get("previous_address")}
    for old, new in EXPECTED_MOVES.items():
        assert moved.get(old) == new, f"{old} should have moved to {new}, moves: {moved}"


def _resources(module: dict):
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _resources(child)
