"""Rules naming their stream, planned for real (issue 13): one event source mapping per distinct stream,
shared by its rules, the consumer's and hydrate's reads on exactly those streams, the rule items carrying
their stream and executionNamePrefix; and the validations refusing what cannot work.
"""

from __future__ import annotations

import json
import re

import pytest

from .tfhelpers import ROOT, check, provider_override, show_json, tf

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

ACCOUNT = "123456789012"
STREAM_B = f"arn:aws:kinesis:us-west-2:{ACCOUNT}:stream/provider-b"
STREAM_C = f"arn:aws:kinesis:us-west-2:{ACCOUNT}:stream/provider-c"
HOST_KEY = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="  # noqa: E501


def config(modules: dict[str, tuple[str, str, str]]) -> str:
    """One root configuration with a block of the module per entry: ``{name: (rules, providers_config, extra)}``.

    Several cases share one configuration, so that Terraform (and the provider's schema, seconds of CPU each time)
    is started once for them all; each block is on its own, named after its case.
    """
    blocks = [
        f"""
module "{name}" {{
  source = "{ROOT}/"

  prefix              = "cnm-{name}"
  staging_bucket_name = "cnm-{name}-staging"
  rules               = {rules}
  providers_config    = {providers}
  {extra}
}}
"""
        for name, (rules, providers, extra) in modules.items()
    ]
    return 'provider "aws" {\n  region = "us-west-2"\n}\n' + "".join(blocks)


def scoped(plan: dict, name: str) -> dict:
    """Module block ``name``'s part of a plan, addressed as if it were the configuration's only block
    (``module.cnm_ingest``)."""
    prefix = f"module.{name}."
    root = plan["configuration"]["root_module"]
    return {
        **plan,
        "resource_changes": [
            {**rc, "address": "module.cnm_ingest." + rc["address"].removeprefix(prefix)}
            for rc in plan["resource_changes"]
            if rc["address"].startswith(prefix)
        ],
        "configuration": {
            **plan["configuration"],
            "root_module": {**root, "module_calls": {"cnm_ingest": root["module_calls"][name]}},
        },
    }


WORKFLOW = f"arn:aws:states:us-west-2:{ACCOUNT}:stateMachine:daac-workflow"
# Rules with a literal stream and workflow have items known at plan time.
RULES = f"""[
    {{ name = "on-default", collection = {{ name = "C" }}, provider = "P", execution_name_prefix = "modis_" }},
    {{ name = "on-b-1", collection = {{ name = "C", version = "1" }}, stream_arn = "{STREAM_B}",
       workflow_arn = "{WORKFLOW}" }},
    {{ name = "on-b-2", collection = {{ name = "D" }}, provider = "Q", stream_arn = "{STREAM_B}",
       workflow_arn = "{WORKFLOW}", meta = {{ allowProviderMismatchOnRuleFilter = true }} }},
    {{ name = "on-c", collection = {{ name = "E" }}, stream_arn = "{STREAM_C}", workflow_arn = "{WORKFLOW}",
       execution_name_prefix = "e-" }},
  ]"""


def write(tmp_path, text, moto_server):
    work = tmp_path / "cfg"
    work.mkdir()
    (work / "main.tf").write_text(text)
    (work / "aws_provider_override.tf").write_text(provider_override(moto_server))
    check(tf(work, "init", "-input=false", "-no-color"))
    return work


EXISTING = f"arn:aws:kinesis:us-west-2:{ACCOUNT}:stream/existing-notifications"
SFTP = f'[{{ id = "S", protocol = "sftp", host = "h", credentials_secret_arn = "arn:aws:secretsmanager:us-west-2:{ACCOUNT}:secret:s", host_key = ["{HOST_KEY}"], allowed_prefixes = ["outbox"] }}]'  # noqa: E501


@pytest.fixture(scope="module")
def plans(mirror, packages, moto_server, tmp_path_factory):
    """The planned cases, as blocks of one configuration planned once."""
    work = write(
        tmp_path_factory.mktemp("rule-streams"),
        config(
            {
                "streams": (RULES, "[]", "allow_provider_mismatch = true"),
                "sftp": ("[]", SFTP, ""),
                "existing": (
                    f'[{{ name = "r", collection = {{ name = "C" }}, stream_arn = "{EXISTING}" }}]',
                    "[]",
                    f'existing_notification_stream_arn = "{EXISTING}"',
                ),
            }
        ),
        moto_server,
    )
    check(tf(work, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan"))
    return show_json(work, "tfplan")


@pytest.fixture(scope="module")
def streams_plan(plans):
    return scoped(plans, "streams")


def created(plan, rtype):
    return {
        rc["address"]: rc["change"]["after"]
        for rc in plan["resource_changes"]
        if rc["type"] == rtype and "create" in rc["change"]["actions"]
    }


def test_one_mapping_per_distinct_stream(streams_plan):
    esms = created(streams_plan, "aws_lambda_event_source_mapping")
    consumer = {a: v for a, v in esms.items() if a.startswith("module.cnm_ingest.module.consumer.")}
    assert sorted(consumer) == [
        f'module.cnm_ingest.module.consumer.aws_lambda_event_source_mapping.this["{STREAM_B}"]',
        f'module.cnm_ingest.module.consumer.aws_lambda_event_source_mapping.this["{STREAM_C}"]',
        'module.cnm_ingest.module.consumer.aws_lambda_event_source_mapping.this["notification"]',
    ]
    assert (
        consumer[f'module.cnm_ingest.module.consumer.aws_lambda_event_source_mapping.this["{STREAM_B}"]'][
            "event_source_arn"
        ]
        == STREAM_B
    )
    # every mapping has the same settings: partial batch responses, bisection, an on-failure destination
    for esm in consumer.values():
        assert esm["function_response_types"] == ["ReportBatchItemFailures"]
        assert esm["bisect_batch_on_function_error"] is True


def _policy(plan, module):
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_iam_role_policy" and rc["address"].startswith(f"module.cnm_ingest.module.{module}"):
            policy = rc["change"]["after"].get("policy")
            if policy:
                return json.loads(policy)
    return None


def test_reads_are_granted_on_the_rule_streams(streams_plan):
    """The named streams are in the consumer's read statement (the created stream's ARN is unknown at plan)."""
    policy = _policy(streams_plan, "consumer")
    if policy is None:  # the policy document depends on the created stream: known only after apply
        config_ = streams_plan["configuration"]["root_module"]["module_calls"]["cnm_ingest"]["module"]
        consumer = config_["module_calls"]["consumer"]["expressions"]
        assert "local.rule_stream_arns" in json.dumps(consumer["rule_stream_arns"])
        return
    reads = [s for s in policy["Statement"] if "kinesis:GetRecords" in s["Action"]]
    assert {STREAM_B, STREAM_C} <= set(reads[0]["Resource"])


def test_rule_items_carry_stream_prefix_and_meta(streams_plan):
    items = created(streams_plan, "aws_dynamodb_table_item")
    rules = {
        json.loads(v["item"])["name"]["S"]: json.loads(v["item"])
        for a, v in items.items()
        if ".aws_dynamodb_table_item.rule[" in a and v.get("item")
    }
    assert sorted(rules) == ["on-b-1", "on-b-2", "on-c"]  # on-default's item holds the created stream's ARN
    assert rules["on-b-1"]["stream_arn"] == {"S": STREAM_B}
    assert rules["on-b-1"]["provider"] == {"S": ""}  # provider optional
    assert rules["on-c"]["execution_name_prefix"] == {"S": "e-"}
    assert rules["on-b-1"]["execution_name_prefix"] == {"S": ""}
    assert json.loads(rules["on-b-2"]["meta"]["S"]) == {"allowProviderMismatchOnRuleFilter": True}


REFUSED = [  # (rules, providers_config, what the refusal names)
    ('[{ name = "r", collection = { name = "C" }, stream_arn = "arn:aws:sqs:us-west-2:1:q" }]', "[]", "stream_arn"),
    ('[{ name = "r", collection = { name = "C" }, execution_name_prefix = "a b" }]', "[]", "execution_name_prefix"),
    (f'[{{ name = "r", collection = {{ name = "C" }}, execution_name_prefix = "{"x" * 41}" }}]', "[]", "40"),
    ("[]", '[{ id = "S", protocol = "sftp", host = "h", credentials_secret_arn = "arn:s" }]', "host_key"),
    ("[]", f'[{{ id = "S", protocol = "sftp", host = "h", host_key = ["{HOST_KEY}"] }}]', "host_key"),
    ("[]", '[{ id = "S", protocol = "ftp", host = "h" }]', "sftp"),
]


@pytest.fixture(scope="module")
def refusals(mirror, packages, moto_server, tmp_path_factory) -> dict[str, list[str]]:
    """Every refused case as a block of one configuration (``case<i>``), validated, then planned if validation
    passed (variable validations with literal values may run at plan): each block's error messages."""
    blocks = {f"case{i}": (rules, providers, "") for i, (rules, providers, _) in enumerate(REFUSED)}
    work = write(tmp_path_factory.mktemp("refused"), config(blocks), moto_server)
    proc = tf(work, "validate", "-no-color")
    if proc.returncode == 0:
        proc = tf(work, "plan", "-input=false", "-no-color", "-lock=false")
    assert proc.returncode != 0, proc.stdout[-3000:]
    errors: dict[str, list[str]] = {name: [] for name in blocks}
    for error in (proc.stdout + proc.stderr).split("Error: ")[1:]:
        names = set(re.findall(r'in module "(case\d+)"', error))
        assert len(names) == 1, error  # each error is one block's
        errors[names.pop()].append(error)
    return errors


@pytest.mark.parametrize("case", range(len(REFUSED)), ids=[message for *_, message in REFUSED])
def test_validations_refuse(case, refusals):
    *_, message = REFUSED[case]
    assert refusals[f"case{case}"], f"case{case} was not refused: {refusals}"
    assert any(message in error for error in refusals[f"case{case}"]), refusals[f"case{case}"]


def test_an_sftp_provider_with_key_and_secret_plans(plans):
    items = created(scoped(plans, "sftp"), "aws_dynamodb_table_item")
    (provider,) = [json.loads(v["item"]) for a, v in items.items() if ".provider[" in a]
    config_ = json.loads(provider["config"]["S"])
    assert (config_["host_key"], config_["allowed_prefixes"]) == ([HOST_KEY], ["outbox"])


def test_a_rule_naming_the_existing_notification_stream_shares_its_mapping(plans):
    esms = created(scoped(plans, "existing"), "aws_lambda_event_source_mapping")
    consumer = {a: v for a, v in esms.items() if ".module.consumer." in a}
    assert list(consumer) == ['module.cnm_ingest.module.consumer.aws_lambda_event_source_mapping.this["notification"]']
    assert next(iter(consumer.values()))["event_source_arn"] == EXISTING
