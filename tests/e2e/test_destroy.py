"""`terraform destroy` of each example leaves nothing behind (runs after every other test
of the stacks: the `destroys` marker, see conftest): nothing in the account, listed through the
AWS APIs, and nothing in Terraform's state. The suite's one destroy: every other run throws the
local AWS away at session end (tests/worlds.py, ``--stack-teardown``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from localaws.deployed import Stack

from .conftest import EXAMPLES, TIMINGS, restore_if_changed, state_resources, unprotect_tables

pytestmark = [pytest.mark.terraform, pytest.mark.provider, pytest.mark.destroys]


def leftovers(client, prefix: str) -> dict[str, list[str]]:
    """Everything whose name says it belongs to ``prefix``, service by service."""
    lam, iam, logs, s3, kms = client("lambda"), client("iam"), client("logs"), client("s3"), client("kms")
    found = {
        "security_groups": [
            g["GroupName"]
            for g in client("ec2").describe_security_groups()["SecurityGroups"]
            if g["GroupName"].startswith(prefix)
        ],
        "buckets": [
            b["Name"]
            for b in s3.list_buckets()["Buckets"]
            if b["Name"].startswith(prefix) and not b["Name"].endswith("-provider-outbox")
        ],  # the provider's
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)],
        "log_groups": [
            g["logGroupName"] for g in logs.describe_log_groups()["logGroups"] if prefix in g["logGroupName"]
        ],
        "layers": [
            layer["LayerName"] for layer in lam.list_layers()["Layers"] if layer["LayerName"].startswith(prefix)
        ],
        "event_source_mappings": [
            m["UUID"]
            for m in lam.list_event_source_mappings()["EventSourceMappings"]
            if f":function:{prefix}-" in m["FunctionArn"]
        ],
        "kms_aliases": [
            a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(f"alias/{prefix}")
        ],
    }
    return {kind: names for kind, names in found.items() if names}


@pytest.fixture(scope="session")
def destroyed(request, session, client, local_aws) -> dict[str, Stack]:
    """Both examples destroyed at once (each `terraform destroy` mostly waits on the provider's
    pollers, e.g. 15 consecutive not-found reads per deleted SQS queue); their stacks as read before.
    The stacks are put back as applied first when a world test of this process changed them: this session
    fixture is set up before the module's own restore (tests/e2e/conftest.py), which would otherwise
    bring the destroyed stacks back."""
    apis = {example: request.getfixturevalue(f"{example}_applied") for example in EXAMPLES}
    restore_if_changed()
    before = {example: Stack.read(session, EXAMPLES[example], local_aws.endpoint) for example in EXAMPLES}
    for example in EXAMPLES:
        unprotect_tables(client, EXAMPLES[example])

    def destroy(example: str) -> None:
        start = time.monotonic()
        apis[example].terraform.destroy()
        TIMINGS[example]["destroy"] = time.monotonic() - start

    with ThreadPoolExecutor(len(apis)) as pool:
        for future in [pool.submit(destroy, example) for example in apis]:
            future.result()
    return before


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_destroy_leaves_nothing(example, destroyed, session, client, local_aws, request):
    prefix = EXAMPLES[example]
    before = destroyed[example]
    assert before.functions  # there was something to destroy
    protected = {n for n, t in before.tables.items() if t.get("DeletionProtectionEnabled")}
    # minimal keeps the module default (config_tables_deletion_protection_enabled: the config tables, the
    # idempotency table and the executions table are protected); complete turns it off
    tables = ("rules", "collections", "providers", "idempotency", "executions")
    assert protected == ({f"{prefix}-{k}" for k in tables} if example == "minimal" else set())
    stack = Stack.read(session, prefix, local_aws.endpoint)
    assert (
        stack.functions,
        stack.mappings,
        stack.subscriptions,
        stack.state_machines,
        stack.queues,
        stack.tables,
        stack.streams,
        stack.alarms,
        stack.topics,
    ) == ({}, [], [], {}, {}, {}, {}, [], [])
    assert leftovers(client, prefix) == {}
    applied = request.getfixturevalue(f"{example}_applied")
    assert TIMINGS[example]["resources"] > 0  # the same `terraform show` listed the applied state
    assert state_resources(applied.terraform.show()) == [], "resources left in Terraform's state"
