"""One source of truth for what Terraform and Python share, checked on the applied stack.

- Environment: every variable a deployed function's code requires (``aws.env("X")``,
  ``os.environ["X"]``) is in the environment Terraform gave that function, and every
  variable Terraform gives is read by the function's code (or is Powertools' own).
  The code is the function's handler module and the cnm_ingest modules it imports,
  found by parsing them, so a new `aws.env` read without a Terraform change fails here.
- The key prefixes of the payload bucket: the prefixes the Python code writes under
  (cnm_ingest.dlq / message constants, copied by build.py into build/manifest.json, which
  Terraform reads) are exactly what each writing function's IAM policy allows.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cnm_ingest import dlq
from cnm_ingest.workflow import payload

from .conftest import ROOT
from .test_apply import ROLES

pytestmark = [pytest.mark.terraform, pytest.mark.provider]
SRC = ROOT / "lambda_src"


def _module_path(name: str) -> Path | None:
    for candidate in (
        SRC / "handlers" / f"{name}.py",
        SRC / Path(*name.split(".")).with_suffix(".py"),
        SRC / Path(*name.split(".")) / "__init__.py",
    ):
        if candidate.exists():
            return candidate
    return None


def env_reads(handler_module: str) -> tuple[set[str], set[str]]:
    """(required, optional) environment variable names read by the handler and what it imports."""
    required: set[str] = set()
    optional: set[str] = set()
    seen: set[Path] = set()
    todo = [_module_path(handler_module)]
    while todo:
        path = todo.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnm_ingest"):
                todo.append(_module_path(node.module))
                todo.extend(_module_path(f"{node.module}.{a.name}") for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level and path.parent.name == "cnm_ingest":
                # `from . import x` and `from .x import y`
                base = f"cnm_ingest.{node.module}" if node.module else "cnm_ingest"
                todo.append(_module_path(base))
                todo.extend(_module_path(f"{base}.{a.name}") for a in node.names)
            name = _literal_env_read(node)
            if name:
                (required if name[1] else optional).add(name[0])
    return required, optional - required


def _literal_env_read(node: ast.AST) -> tuple[str, bool] | None:
    """("X", required?) for aws.env("X"), env("X"), env_flag("X"), os.environ["X"], os.environ.get("X"),
    os.getenv("X")."""
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value, True
    if (
        isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        func = ast.unparse(node.func)
        if func in ("aws.env", "env"):
            return node.args[0].value, len(node.args) < 2 and not node.keywords
        optional_readers = ("os.environ.get", "os.getenv", "env_flag", "rulebook.env_flag")
        if func in optional_readers or func.endswith("environ.get"):  # an `environ` mapping passed in
            return node.args[0].value, False
    return None


def test_the_parser_finds_known_reads():
    required, optional = env_reads("message_consumer")
    assert {"FALLBACK_TOPIC_ARN", "RESPONSE_STREAM_ARN"} <= required
    assert "START_CONCURRENCY" in optional
    assert "ALLOW_PROVIDER_MISMATCH" in optional  # rulebook.env_flag


def test_each_function_gets_exactly_the_environment_its_code_reads(complete_stack):
    problems = []
    for role, module in ROLES.items():
        fn = complete_stack.function(role)
        required, optional = env_reads(module)
        given = set(fn.environment)
        missing = required - given
        unused = {k for k in given - required - optional if not k.startswith("POWERTOOLS_")}
        if missing:
            problems.append(f"{role}: code requires {sorted(missing)}, Terraform does not set them")
        if unused:
            problems.append(f"{role}: Terraform sets {sorted(unused)}, no code of the function reads them")
    assert not problems, "\n".join(problems)


def _s3_object_resources(client, role_name: str) -> list[str]:
    iam = client("iam")
    docs = [
        iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]
        for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    ]
    return [
        r
        for doc in docs
        for s in doc["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        if r.startswith("arn:aws:s3:::") and "/" in r
    ]


def test_manifest_constants_are_the_python_constants():
    constants = json.loads((ROOT / "build" / "manifest.json").read_text())["constants"]
    assert constants["payload_key_prefix"] == dlq.PAYLOAD_KEY_PREFIX
    assert constants["response_key_prefix"] == dlq.RESPONSE_KEY_PREFIX
    assert constants["workflow_payload_key_prefix"] == payload.KEY_PREFIX


@pytest.mark.parametrize(
    ("role", "prefix"),
    [
        ("message_consumer", dlq.PAYLOAD_KEY_PREFIX),
        ("fallback_consumer", dlq.PAYLOAD_KEY_PREFIX),
        ("hydrate", dlq.PAYLOAD_KEY_PREFIX),
        ("cnm_response", dlq.RESPONSE_KEY_PREFIX),
        ("message_consumer", payload.KEY_PREFIX),
        ("sync_granule", payload.KEY_PREFIX),
    ],
)
def test_payload_key_prefix_is_what_iam_allows(complete_stack, client, role, prefix):
    """The functions write payloads under the Python constant; the applied IAM policy allows that prefix."""
    fn = complete_stack.function(role)
    bucket = fn.environment["PAYLOAD_BUCKET"]
    assert f"arn:aws:s3:::{bucket}/{prefix}*" in _s3_object_resources(client, fn.name), role


def test_the_recorder_reads_only_the_payload_buckets_workflow_prefix(complete_stack, client):
    """Issue 23: the applied recorder role may read the workflow message's offloaded parts, and no other object."""
    fn = complete_stack.function("recorder")
    bucket = fn.environment["PAYLOAD_BUCKET"]
    assert _s3_object_resources(client, fn.name) == [f"arn:aws:s3:::{bucket}/{payload.KEY_PREFIX}*"]


# --- table key schemas: the Python code keys on what Terraform created ------------------------------


@pytest.fixture
def python_on_the_stack(local_aws, monkeypatch):
    """cnm_ingest's clients pointed at the local AWS (as AWS_ENDPOINT_URL points a function's)."""
    from cnm_ingest import aws

    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint)
    aws.reset()
    yield
    aws.reset()


def _hash_range(table: dict) -> tuple[str, ...]:
    return tuple(k["AttributeName"] for k in sorted(table["KeySchema"], key=lambda k: k["KeyType"]))


def test_config_tables_are_read_with_the_keys_terraform_created(complete_stack, python_on_the_stack):
    """cnm_ingest.consumer.rulebook reads the items Terraform seeded (rules by scan, collections by name + version,
    providers by id): a key schema drift makes GetItem fail with a ValidationException here."""
    from cnm_ingest.consumer import rulebook

    env = complete_stack.function("message_consumer").environment
    store = rulebook.ConfigStore(env["RULES_TABLE"], env["COLLECTIONS_TABLE"], env["PROVIDERS_TABLE"])
    assert {r.name for r in store.rules()} == {"swot_l2_lr_ssh", "cnm_samples", "sentinel6_nrt_any_version"}
    assert store.collection("SWOT_L2_LR_SSH", "2.0")["checksum_required"] is True
    assert store.provider("PODAAC_SENTINEL6")["meta"] == {"contact": "ops@example.org"}
    assert _hash_range(complete_stack.tables[env["COLLECTIONS_TABLE"]]) == ("name", "version")


def test_idempotency_and_status_store_tables_have_the_python_keys(complete_stack, python_on_the_stack):
    from cnm_ingest import executions, idempotency
    from cnm_ingest.workflow import cnm_response

    consumer = complete_stack.function("message_consumer").environment
    idempotency_table = complete_stack.tables[consumer["IDEMPOTENCY_TABLE"]]
    assert _hash_range(idempotency_table) == (idempotency._layer(consumer["IDEMPOTENCY_TABLE"], "contract").key_attr,)
    # CnmResponse's once-markers share that table (issue 21), under the same key attribute
    response = complete_stack.function("cnm_response").environment
    assert response["IDEMPOTENCY_TABLE"] == consumer["IDEMPOTENCY_TABLE"]
    assert _hash_range(idempotency_table) == (
        cnm_response._store("contract", response["IDEMPOTENCY_TABLE"], 0).key_attr,
    )
    # one status store: the recorder, StartStatus, StopStatus and SyncGranule get the same table
    store = {complete_stack.function(f).environment["EXECUTIONS_TABLE"] for f in RECORDER_AND_STEPS}
    assert len(store) == 1, store
    assert _hash_range(complete_stack.tables[store.pop()]) == tuple(executions.execution_key("arn:aws:states:x"))
    assert not [t for t in complete_stack.tables if t.endswith("-workflow-status")]


RECORDER_AND_STEPS = ("recorder", "start_status", "stop_status", "sync_granule")


# --- the DLQ envelope: what the functions write is what INTERFACES.md documents ------------------------


def test_dlq_envelope_kind_and_version_are_documented():
    text = (ROOT / "docs" / "INTERFACES.md").read_text()
    assert f'{{"kind": "{dlq.KIND}", "version": {dlq.VERSION},' in text
    envelope = dlq.envelope("contract", "reason", "E", None)
    assert (envelope["kind"], envelope["version"]) == (dlq.KIND, dlq.VERSION)
