"""An existing deployment upgrades with nothing destroyed (the `moved` blocks of moved.tf).

The old state is real: examples/minimal of the code before the issue-11 restructure
(OLD_REF, taken from git history with `git archive`) is applied to the local AWS
(localaws: moto with the listed patches). Then the current examples/minimal is planned
against that state, and the plan must destroy nothing and show each moved resource
at its new address.
"""

from __future__ import annotations

import re
import shutil

import pytest

from .tfhelpers import (
    FUNCTION_KEYS,
    ROOT,
    WORKFLOW_TASKS,
    check,
    current_tree,
    git_tree,
    provider_override,
    show_json,
    tf,
)

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

# main just before modules/dead_letter, the root split and the function object.
OLD_REF = "507d28598649c46c674e712bebbe0fb522ea9624"

# old address -> new address, for what examples/minimal creates (on_failure_destination = "sns").
EXPECTED_MOVES = {
    "module.cnm_ingest.module.fallback.aws_sqs_queue.dlq": "module.cnm_ingest.module.dead_letter.aws_sqs_queue.dlq",
    "module.cnm_ingest.module.fallback.aws_sqs_queue_redrive_allow_policy.dlq": "module.cnm_ingest.module.dead_letter.aws_sqs_queue_redrive_allow_policy.dlq",  # noqa: E501 (an address table)
    "module.cnm_ingest.module.fallback.aws_sqs_queue_policy.dlq": "module.cnm_ingest.aws_sqs_queue_policy.dead_letter",
    "module.cnm_ingest.module.fallback.aws_sns_topic.fallback": "module.cnm_ingest.module.dead_letter.aws_sns_topic.fallback",  # noqa: E501 (an address table)
    "module.cnm_ingest.module.consumer.aws_sns_topic.failed_batch[0]": "module.cnm_ingest.module.dead_letter.aws_sns_topic.failed_batch[0]",  # noqa: E501 (an address table)
    "module.cnm_ingest.module.payload_bucket.aws_s3_bucket.this": "module.cnm_ingest.module.dead_letter.module.payload_bucket.aws_s3_bucket.this",  # noqa: E501 (an address table)
    "module.cnm_ingest.module.payload_bucket.aws_s3_bucket_policy.this": "module.cnm_ingest.module.dead_letter.module.payload_bucket.aws_s3_bucket_policy.this",  # noqa: E501 (an address table)
}


# What the upgrade replaces on purpose (issue 8): hydrate's own idempotency table gives way to the
# table the message consumer, the fallback consumer and hydrate share (its records are short-lived
# dedup keys; a redelivered failed-batch notice is still parked once, through the shared table).
# Issue 21: the workflow's status table gives way to the one status store (modules/executions, created here since
# 0.1.0 had no recorder); its items are not copied (CHANGELOG.md, "Upgrading to 0.3.0", says what they were and how
# to keep the table: `terraform state rm` before the apply).
EXPECTED_DESTROYED = [
    "module.cnm_ingest.module.hydrate[0].aws_dynamodb_table.idempotency[0]",
    "module.cnm_ingest.module.workflow.aws_dynamodb_table.status",
]

# What the features merged alongside issue 11 add (issues 8 and 12): nothing else may be created.
EXPECTED_CREATED = [
    r"module\.cnm_ingest\.aws_dynamodb_table\.idempotency",  # the shared idempotency table
    r"module\.cnm_ingest\.module\.recorder\[0\]\..+",  # execution records (modules/recorder)
    r"module\.cnm_ingest\.module\.executions\.aws_dynamodb_table\.this",  # the one status store (issue 21)
    r'module\.cnm_ingest\.module\.alarms\[0\]\.aws_cloudwatch_metric_alarm\.this\["cnm-workflow-executions-[a-z-]+"\]',
    r'module\.cnm_ingest\.module\.alarms\[0\]\.aws_cloudwatch_metric_alarm\.this\["recorder-errors"\]',
    r"module\.cnm_ingest\.module\.workflow\.aws_iam_role(_policy)?\.provider_read",  # provider reads (issue 18)
    r"module\.cnm_ingest\.module\.reconcile\[0\]\..+",  # scheduled reconciliation (issue 23)
    r'module\.cnm_ingest\.module\.alarms\[0\]\.aws_cloudwatch_metric_alarm\.this\["reconcile-errors"\]',  # its errors
    r"module\.cnm_ingest\.aws_cloudwatch_dashboard\.this\[0\]",  # the dashboard (issue 23)
]

# In-place updates the same features explain, by resource type and the attributes they change: new
# IAM statements, environment variables (and the code that reads them), the status table's TTL, the
# DLQ writers, the workflow's ParkResponse state. Any other update must be one the old code plans too.
FEATURE_UPDATED_ATTRIBUTES = {
    "aws_iam_role_policy": {"policy"},
    "aws_lambda_function": {
        "environment",
        "source_code_hash",
        "code_sha256",
        "last_modified",
        "qualified_arn",
        "qualified_invoke_arn",
        "version",
    },
    "aws_dynamodb_table": {"ttl"},
    "aws_sqs_queue_policy": {"policy"},
    "aws_sfn_state_machine": {"definition", "revision_id", "state_machine_version_arn", "version_description"},
}


def changed_attributes(change: dict) -> set[str]:
    """Top-level attributes an update changes: different before/after, or unknown until apply."""
    before, after = change.get("before") or {}, change.get("after") or {}
    unknown = {k for k, v in (change.get("after_unknown") or {}).items() if v is True}
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k) and k in after} | unknown


def old_tree(dest):
    """The repository at OLD_REF (fails, never skips, when the history is not there)."""
    return git_tree(OLD_REF, dest)


@pytest.fixture(scope="module")
def upgrade_plan(mirror, packages, isolated_aws, tmp_path_factory):
    local_aws = isolated_aws
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

    # Today's tree laid out like the old one, so paths such as the layer's "../../build/..." (a
    # layer's filename forces a new version) are the same strings as in the old deployment.
    new = current_tree(base / "new") / "examples" / "minimal"
    (new / "aws_provider_override.tf").write_text(provider_override(local_aws))
    shutil.copy(state, new / "terraform.tfstate")
    check(tf(new, "init", "-input=false", "-no-color"))
    check(tf(new, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan"))
    plan = show_json(new, "tfplan")
    # Carry the upgrade out: the deployment then runs today's code (and its state holds the
    # environment each function really got, which a plan cannot show: the provider marks a map
    # with any value known only after apply as unknown as a whole).
    check(tf(new, "apply", "-input=false", "-no-color", "-lock=false", "tfplan"))
    return plan, show_json(old_example, "terraform.tfstate"), baseline, show_json(new, "terraform.tfstate")


def actions(plan: dict) -> dict[str, list[str]]:
    return {
        rc["address"]: rc["change"]["actions"] for rc in plan.get("resource_changes", []) if rc["mode"] == "managed"
    }


def test_upgrade_destroys_nothing(upgrade_plan):
    plan, old_state, _, _ = upgrade_plan
    old_resources = [r["address"] for r in _resources(old_state["values"]["root_module"]) if r["mode"] == "managed"]
    assert len(old_resources) > 50  # a real deployment: every resource of examples/minimal
    changes = [rc for rc in plan["resource_changes"] if rc["mode"] == "managed"]
    destroyed = [rc["address"] for rc in changes if "delete" in rc["change"]["actions"]]
    assert destroyed == EXPECTED_DESTROYED, f"the upgrade would destroy (or replace) {destroyed}"
    replaced = [
        rc["address"]
        for rc in changes
        if rc["change"]["actions"] == ["delete", "create"] or rc["change"]["actions"] == ["create", "delete"]
    ]
    assert replaced == [], replaced
    created = [rc["address"] for rc in changes if "create" in rc["change"]["actions"]]
    unexpected = [a for a in created if not any(re.fullmatch(p, a) for p in EXPECTED_CREATED)]
    assert unexpected == [], f"the upgrade would create {unexpected}"
    for pattern in EXPECTED_CREATED:
        assert any(re.fullmatch(pattern, a) for a in created), f"nothing created matches {pattern}"


def test_upgrade_changes_nothing_the_old_code_would_not(upgrade_plan):
    """Every in-place update of the upgrade is one the old code plans against its own deployment too."""
    plan, _, baseline, _ = upgrade_plan
    # What the old code changes in its own deployment (the emulator's drift), per address and attribute.
    drift = {rc["address"]: changed_attributes(rc["change"]) for rc in baseline["resource_changes"]}
    unexplained, examined = {}, set()
    for rc in plan["resource_changes"]:
        if rc["mode"] != "managed" or rc["change"]["actions"] != ["update"]:
            continue
        examined.add(rc["type"])
        old_address = rc.get("previous_address", rc["address"])  # a moved resource drifts at its old address
        explained = FEATURE_UPDATED_ATTRIBUTES.get(rc["type"], set()) | drift.get(old_address, set())
        extra = changed_attributes(rc["change"]) - explained
        if extra:
            unexplained[rc["address"]] = sorted(extra)
    assert {"aws_lambda_function", "aws_iam_role_policy"} <= examined  # the upgrade's feature updates were read
    assert unexplained == {}, f"updates no feature explains (attribute names per address): {unexplained}"


def test_moved_resources_keep_their_identity(upgrade_plan):
    plan, _, _, _ = upgrade_plan
    moved = {rc["previous_address"]: rc["address"] for rc in plan["resource_changes"] if rc.get("previous_address")}
    for old, new in EXPECTED_MOVES.items():
        assert moved.get(old) == new, f"{old} should have moved to {new}, moves: {moved}"


def _resources(module: dict):
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _resources(child)


def interfaces_environment() -> dict[str, tuple[set[str], bool]]:
    """docs/INTERFACES.md's environment table: variable -> (functions that get it, optional?)."""
    text = (ROOT / "docs" / "INTERFACES.md").read_text()
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        who = {w.strip() for w in cells[1].split(",")}
        who = set(FUNCTION_KEYS) if who == {"all"} else who
        who = (who - {"logger"}) | ({"inbound_logger", "outbound_logger"} if "logger" in who else set())
        who = (who - {"every workflow task"}) | (set(WORKFLOW_TASKS) if "every workflow task" in who else set())
        optional = cells[2].startswith("optional")
        for name in re.findall(r"`([A-Z_]+)`", cells[0]):  # a variable may have a row per group of functions
            before, was_optional = table.get(name, (set(), True))
            table[name] = (before | who, was_optional and optional)
    assert len(table) >= 15, table
    return table


def test_function_environment_matches_interfaces(upgrade_plan):
    """The environment each deployed function got (root object + call site + module), read from the
    state after the upgrade, against docs/INTERFACES.md: every variable it must have, none it should not."""
    _, _, _, state = upgrade_plan
    table = interfaces_environment()
    functions = {
        r["values"]["function_name"].removeprefix("cnm-minimal-").replace("-", "_"): r["values"]
        for r in _resources(state["values"]["root_module"])
        if r["type"] == "aws_lambda_function"
    }
    assert sorted(functions) == sorted(FUNCTION_KEYS)
    for key, fn in functions.items():
        names = set(fn["environment"][0]["variables"])
        required = {n for n, (who, optional) in table.items() if key in who and not optional}
        allowed = {n for n, (who, _) in table.items() if key in who}
        assert required <= names, f"{key} lacks {sorted(required - names)}"
        assert names <= allowed, f"{key} has variables INTERFACES.md does not give it: {sorted(names - allowed)}"
        variables = fn["environment"][0]["variables"]
        assert (variables["POWERTOOLS_SERVICE_NAME"], variables["POWERTOOLS_LOG_LEVEL"]) == (key, "INFO")
    assert functions["hydrate"]["environment"][0]["variables"]["IDEMPOTENCY_TABLE"] == "cnm-minimal-idempotency"
    routing = functions["message_consumer"]["environment"][0]["variables"]  # issue 13: Cumulus routing settings
    assert routing["ALLOW_PROVIDER_MISMATCH"] == "false"
    assert routing["NOTIFICATION_STREAM_ARN"].endswith(":stream/cnm-minimal-notifications")
