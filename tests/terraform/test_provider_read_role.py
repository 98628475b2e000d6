"""IAM backs up provider confinement (issue 18): SyncGranule's own role reads no provider bucket or secret;
it may only assume the provider-read role, which each read narrows to one provider with a session policy
(cnm_ingest.transfer.provider_access). Statically (python-hcl2) and on the applied examples/complete."""

from __future__ import annotations

import json

import pytest

from cnm_ingest.transfer import provider_access
from cnm_ingest.workflow import sync_granule

from .test_hcl import ROOT, named, typed

WORKFLOW = ROOT / "modules" / "workflow"


def _statements(doc: dict) -> list[dict]:
    out = list(doc.get("statement") or [])
    for block in doc.get("dynamic") or []:
        out += block["statement"]["content"]
    return out


def test_sync_granule_reads_providers_only_through_the_provider_read_role():
    docs = typed(WORKFLOW, "data", "aws_iam_policy_document")
    own = json.dumps(docs["sync_granule"])
    for word in ("provider_bucket_arns", "provider_secret_arns", "secretsmanager:", "provider_kms_key_arns"):
        assert word not in own, word
    [assume] = [s for s in _statements(docs["sync_granule"]) if s["sid"] == "AssumeProviderReadRole"]
    assert assume["actions"] == ["sts:AssumeRole"] and assume["resources"] == ["local.provider_read_role_arn"]
    env = named(WORKFLOW, "locals")["environment"]["sync_granule"]
    assert env[provider_access.ROLE_ENV] == "local.provider_read_role_arn"
    assert env["EXECUTIONS_TABLE"] == "var.executions_table_name"  # the commit order (transfer.commit_order)
    [order] = [s for s in _statements(docs["sync_granule"]) if s["sid"] == "StagingOrder"]
    assert order["condition"][0]["values"] == ["STAGING#*"]  # only the order items of the status store
    kms = named(WORKFLOW, "locals")["additional_kms_key_arns"]["sync_granule"]
    assert "provider_kms_key_arns" not in kms


def test_the_provider_read_role_is_assumable_by_sync_granule_only_and_reads_what_providers_hold():
    docs = typed(WORKFLOW, "data", "aws_iam_policy_document")
    [trust] = docs["provider_read_assume"]["statement"]
    assert trust["principals"] == [{"type": "AWS", "identifiers": ['module.function["sync_granule"].role_arn']}]
    by_sid = {s["sid"]: s for s in _statements(docs["provider_read"])}
    assert set(by_sid) == {
        "ReadProviderObjects",
        "ListProviderBuckets",
        "WriteStagingTemporaryArea",
        "ReadProviderCredentials",
        "DecryptProviderObjects",
        "EncryptTemporaryCopies",
    }
    assert by_sid["ReadProviderObjects"]["actions"] == ["s3:GetObject"]
    assert by_sid["ListProviderBuckets"]["actions"] == ["s3:ListBucket"]
    assert by_sid["WriteStagingTemporaryArea"]["actions"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert "var.staging_temp_key_prefix" in by_sid["WriteStagingTemporaryArea"]["resources"]
    role = typed(WORKFLOW, "resource", "aws_iam_role")["provider_read"]
    assert role["max_session_duration"] == 3600 and role["permissions_boundary"] == "var.permissions_boundary_arn"
    # the role name SyncGranule's policy and environment name is the role's own
    local = named(WORKFLOW, "locals")
    assert role["name"] == "local.provider_read_role_name"
    assert "local.provider_read_role_name" in local["provider_read_role_arn"]
    assert "var.role_path" in local["provider_read_role_arn"] and role["path"] == "var.role_path"


def test_the_temporary_area_comes_from_the_python_constant():
    import build

    assert build.constants()["staging_temp_key_prefix"] == provider_access.TEMP_AREA == sync_granule.TEMP_PREFIX + "/"
    assert named(ROOT, "module")["workflow"]["staging_temp_key_prefix"] == "local.staging_temp_key_prefix"


def test_collections_other_owner_handling_is_typed_validated_and_seeded():
    var = named(ROOT, "variable")["collections"]
    assert 'other_owner_handling = optional(string, "same_provider")' in json.dumps(var["type"]).replace('\\"', '"')
    assert any("other_owner_handling" in v["condition"] for v in var["validation"])
    assert all(v in var["description"] for v in sync_granule.OTHER_OWNER_HANDLING)
    item = json.dumps(typed(ROOT / "modules" / "config_tables", "resource", "aws_dynamodb_table_item")["collection"])
    assert "other_owner_handling = each.value.other_owner_handling" in item
    assert sync_granule.DEFAULT_OTHER_OWNER_HANDLING == "same_provider"


# --- the applied examples/complete ------------------------------------------------------------------


def _role_policies(iam, role_name: str) -> list[dict]:
    return [
        iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]
        for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    ]


def _resources(statement: dict) -> list[str]:
    r = statement.get("Resource", [])
    return [r] if isinstance(r, str) else list(r)


@pytest.mark.terraform
def test_applied_iam_a_provider_read_runs_under(complete_stack, client):
    """The applied roles: SyncGranule's reads no provider bucket or secret and may assume the provider-read
    role; that role trusts only SyncGranule's, reads the providers' buckets (the configured providers' hosts),
    lists them (404 for a missing file), and writes only the staging buckets' temporary area."""
    iam = client("iam")
    sync = complete_stack.function("sync_granule")
    sync_role = client("lambda").get_function(FunctionName=sync.name)["Configuration"]["Role"]
    role_arn = sync.environment[provider_access.ROLE_ENV]
    role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
    assert role["Arn"] == role_arn and role["MaxSessionDuration"] == 3600
    trust = role["AssumeRolePolicyDocument"]
    [statement] = (json.loads(trust) if isinstance(trust, str) else trust)["Statement"]
    assert statement["Principal"] == {"AWS": sync_role} and statement["Action"] == "sts:AssumeRole"
    own = [s for doc in _role_policies(iam, sync_role.rsplit("/", 1)[1]) for s in doc["Statement"]]
    read = [s for doc in _role_policies(iam, role["RoleName"]) for s in doc["Statement"]]
    providers = client("dynamodb").scan(
        TableName=complete_stack.function("message_consumer").environment["PROVIDERS_TABLE"]
    )
    hosts = {json.loads(i["config"]["S"])["host"] for i in providers["Items"]}
    [objects] = [s for s in read if s["Sid"] == "ReadProviderObjects"]
    assert set(_resources(objects)) == {f"arn:aws:s3:::{h}/*" for h in hosts} and objects["Action"] == "s3:GetObject"
    [listing] = [s for s in read if s["Sid"] == "ListProviderBuckets"]
    assert set(_resources(listing)) == {f"arn:aws:s3:::{h}" for h in hosts}
    [temporary] = [s for s in read if s["Sid"] == "WriteStagingTemporaryArea"]
    assert _resources(temporary) and all(r.endswith(f"/{provider_access.TEMP_AREA}*") for r in _resources(temporary))
    own_resources = {r for s in own for r in _resources(s)}
    assert not any(h in r for h in hosts for r in own_resources)  # no provider bucket in SyncGranule's own policy
    assert not any("secretsmanager:" in json.dumps(s["Action"]) for s in own)
    assert [s for s in own if s["Action"] == "sts:AssumeRole"] == [
        {"Sid": "AssumeProviderReadRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
    ]
    print(json.dumps({"provider-read role policy": read, "SyncGranule role policy": own}, indent=1))
