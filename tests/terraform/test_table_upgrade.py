"""The move off the deprecated DynamoDB `hash_key`/`range_key` of a global secondary index replaces no table.

Provider 6.x deprecates a GSI's `hash_key`/`range_key` for `key_schema` blocks (the table's own
`hash_key`/`range_key` stay). The old state is real: the DynamoDB tables of examples/minimal as the
code before the change (OLD_REF) declares them are applied to the local AWS. Then today's
examples/minimal is planned against that state: every table must be left as it is (no-op, so no
destroy, no replacement, no index rebuilt), nothing may be destroyed, and the plan prints no warning.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from .tfhelpers import ROOT, check, current_tree, git_tree, provider_override, show_json, tf

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

# main before the GSIs moved to key_schema (issue 19).
OLD_REF = "dc92ab331606150ee6d3ee44008b1536fd983f2b"

# Every table examples/minimal creates; the two with a GSI declared it with hash_key/range_key at OLD_REF.
TABLES = [
    'module.cnm_ingest.module.config_tables.aws_dynamodb_table.this["collections"]',
    'module.cnm_ingest.module.config_tables.aws_dynamodb_table.this["providers"]',
    'module.cnm_ingest.module.config_tables.aws_dynamodb_table.this["rules"]',
    "module.cnm_ingest.aws_dynamodb_table.idempotency",
    "module.cnm_ingest.module.recorder[0].aws_dynamodb_table.executions",
    "module.cnm_ingest.module.workflow.aws_dynamodb_table.status",
]
WITH_GSI = TABLES[-2:]
# Issue 21: the recorder's table is the one status store (moved.tf), at its new address; the workflow's old status
# table is the one table the upgrade destroys, on purpose and in the plan (CHANGELOG.md, "Upgrading to 0.3.0").
NEW_ADDRESS = {
    "module.cnm_ingest.module.recorder[0].aws_dynamodb_table.executions": (
        "module.cnm_ingest.module.executions.aws_dynamodb_table.this"
    ),
}
RETIRED = ["module.cnm_ingest.module.workflow.aws_dynamodb_table.status"]
KEPT = [NEW_ADDRESS.get(a, a) for a in TABLES if a not in RETIRED]


def _resources(module: dict):
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _resources(child)


@pytest.fixture(scope="module")
def upgrade(mirror, packages, isolated_aws, tmp_path_factory):
    base = tmp_path_factory.mktemp("key-schema")
    old = git_tree(OLD_REF, base / "old")
    for module in ("recorder", "workflow"):  # the premise: the old code declares the deprecated arguments
        assert 'hash_key        = "status_key"' in (old / "modules" / module / "main.tf").read_text(), module
    shutil.copytree(ROOT / "build", old / "build")
    old_example = old / "examples" / "minimal"
    (old_example / "aws_provider_override.tf").write_text(provider_override(isolated_aws))
    targets = [f"-target={address}" for address in TABLES]
    check(tf(old_example, "init", "-input=false", "-no-color"))
    check(tf(old_example, "apply", "-input=false", "-no-color", "-auto-approve", "-lock=false", *targets))
    old_state = show_json(old_example, "terraform.tfstate")

    new = current_tree(base / "new") / "examples" / "minimal"
    (new / "aws_provider_override.tf").write_text(provider_override(isolated_aws))
    shutil.copy(old_example / "terraform.tfstate", new / "terraform.tfstate")
    check(tf(new, "init", "-input=false", "-no-color"))
    proc = tf(new, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan")
    check(proc)
    return old_state, show_json(new, "tfplan"), proc.stdout + proc.stderr


def test_the_old_state_holds_every_table_with_its_index(upgrade):
    old_state, _, _ = upgrade
    tables = {
        r["address"]: r["values"] for r in _resources(old_state["values"]["root_module"]) if r["mode"] == "managed"
    }
    assert sorted(a for a in tables if ".aws_dynamodb_table." in f".{a}") == sorted(TABLES)
    for address in WITH_GSI:
        (gsi,) = tables[address]["global_secondary_index"]
        assert (gsi["name"], gsi["hash_key"], gsi["range_key"]) == ("by_status", "status_key", "updated_at"), gsi


def test_the_upgrade_leaves_every_table_as_it_is(upgrade):
    _, plan, _ = upgrade
    actions = {rc["address"]: rc["change"]["actions"] for rc in plan["resource_changes"] if rc["mode"] == "managed"}
    assert {address: actions.get(address) for address in KEPT} == {address: ["no-op"] for address in KEPT}
    moved = {rc["previous_address"]: rc["address"] for rc in plan["resource_changes"] if rc.get("previous_address")}
    assert {old: moved.get(old) for old in NEW_ADDRESS} == NEW_ADDRESS
    destroyed = [address for address, action in actions.items() if "delete" in action]
    assert destroyed == RETIRED, f"the upgrade would destroy or replace {destroyed}"
    assert actions[RETIRED[0]] == ["delete"]  # destroyed, not replaced
    # the new configuration declares the same index through key_schema
    config = {rc["address"]: rc["change"]["after"] for rc in plan["resource_changes"]}
    for address in [NEW_ADDRESS.get(a, a) for a in WITH_GSI if a not in RETIRED]:
        (gsi,) = config[address]["global_secondary_index"]
        keys = [(k["attribute_name"], k["key_type"]) for k in gsi["key_schema"]]
        assert keys == [("status_key", "HASH"), ("updated_at", "RANGE")], json.dumps(gsi)


def test_the_upgrade_plan_prints_no_warning(upgrade):
    _, _, output = upgrade
    # only what the old targeted state lacks is added: no existing resource changes; the retired status table goes
    assert re.search(r"^Plan: [1-9]\d* to add, 0 to change, 1 to destroy\.$", output, re.M), output[-4000:]
    assert "Warning" not in output and "deprecated" not in output.lower(), output[-4000:]
