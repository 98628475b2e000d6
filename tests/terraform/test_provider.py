"""Terraform for real: init against the locally built AWS provider, validate, plan.

`terraform init` installs hashicorp/aws only from the local filesystem mirror
that tools/terraform-provider.sh builds (offline), the way a DAAC's CI would
install it from the registry. `plan` of the complete example runs against a
moto server on loopback standing in for AWS. The assertions read the plan JSON
(`terraform show -json`).
"""

from __future__ import annotations

import json
import shutil

import pytest

from .tfhelpers import FUNCTION_KEYS, RESOURCE_STAR_ACTIONS, ROOT, check, copy_config, provider_override, show_json, tf

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

# examples/daac-repo sources the release archive: tests/terraform/test_release.py plans it
CONFIGS = [
    ".",
    *sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "examples").iterdir()
        if (p / "main.tf").exists() and p.name != "daac-repo"
    ),
]


VALIDATE_IGNORE = shutil.ignore_patterns(  # what a configuration of the tree never reads
    ".git",
    ".venv",
    ".tools",
    ".terraform",
    ".terraform.lock.hcl",
    "*.tfstate*",
    ".pytest_cache",
    "__pycache__",
    "lambda_src",
    "tests",
    "docs",
    "scripts",
)


@pytest.mark.parametrize("config", CONFIGS)
def test_init_and_validate(config, mirror, packages, tmp_path):
    """Every root configuration, on a copy of the tree (the examples' module sources as they are: ``../../``; no
    stale .terraform or lock file), initialises offline and validates, with no warning (deprecations included)."""
    shutil.copytree(ROOT, tmp_path / "repo", ignore=VALIDATE_IGNORE)
    work = tmp_path / "repo" / config
    check(tf(work, "init", "-backend=false", "-input=false", "-no-color"))
    result = json.loads(tf(work, "validate", "-json", "-no-color").stdout)
    assert result["valid"] is True and not result["diagnostics"], json.dumps(result["diagnostics"], indent=2)


def _plan(example: str, tmp_path_factory, moto_server) -> dict:
    work = copy_config(ROOT / "examples" / example, tmp_path_factory.mktemp(f"plan-{example}") / example)
    (work / "aws_provider_override.tf").write_text(provider_override(moto_server))
    check(tf(work, "init", "-input=false", "-no-color"))
    output = check(plan := tf(work, "plan", "-input=false", "-no-color", "-lock=false", "-out=tfplan"))
    assert "Warning" not in output + plan.stderr, output[-4000:] + plan.stderr[-4000:]  # deprecations included
    return show_json(work, "tfplan")


@pytest.fixture(scope="module")
def complete_plan(mirror, packages, moto_server, tmp_path_factory):
    return _plan("complete", tmp_path_factory, moto_server)


@pytest.fixture(scope="module")
def minimal_plan(mirror, packages, moto_server, tmp_path_factory):
    return _plan("minimal", tmp_path_factory, moto_server)


def changes(plan: dict, rtype: str) -> dict[str, dict]:
    """Planned creations of ``rtype``: address -> `after` values."""
    return {
        rc["address"]: rc["change"]["after"]
        for rc in plan["resource_changes"]
        if rc["type"] == rtype and rc["mode"] == "managed" and "create" in rc["change"]["actions"]
    }


def unknown(plan: dict, address: str) -> dict:
    return next(rc["change"]["after_unknown"] for rc in plan["resource_changes"] if rc["address"] == address)


def is_unknown(after_unknown, *path) -> bool:
    """True when the value at ``path`` (or a block containing it) is known only after apply."""
    node = after_unknown
    for key in path:
        if node is True:
            return True
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    return node is True


def config_resources(plan: dict, rtype: str):
    """(module path, resource config) for every resource/data block of ``rtype`` in the configuration."""

    def walk(mod, path):
        for r in mod.get("resources", []):
            if r["type"] == rtype:
                yield path, r
        for name, call in mod.get("module_calls", {}).items():
            yield from walk(call["module"], f"{path}.{name}" if path else name)

    yield from walk(plan["configuration"]["root_module"], "")


def consumer_esm(plan: dict) -> tuple[dict, dict]:
    address = 'module.cnm_ingest.module.consumer.aws_lambda_event_source_mapping.this["notification"]'
    return changes(plan, "aws_lambda_event_source_mapping")[address], unknown(plan, address)


@pytest.mark.parametrize(
    "example, expected",
    [
        # examples/complete sets every knob; examples/minimal shows the defaults
        (
            "complete",
            {
                "batch_size": 50,
                "maximum_batching_window_in_seconds": 5,
                "parallelization_factor": 2,
                "maximum_retry_attempts": 5,
                "maximum_record_age_in_seconds": 7200,
            },
        ),
        (
            "minimal",
            {
                "batch_size": 100,
                "parallelization_factor": 1,
                "maximum_retry_attempts": 3,
                "maximum_record_age_in_seconds": 3600,
            },
        ),
    ],
)
def test_consumer_event_source_mapping(example, expected, request):
    plan = request.getfixturevalue(f"{example}_plan")
    esm, esm_unknown = consumer_esm(plan)
    for key, value in expected.items():
        assert esm[key] == value, key
    assert esm["bisect_batch_on_function_error"] is True
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]
    assert esm["starting_position"] == "TRIM_HORIZON"
    assert 0 <= esm["maximum_retry_attempts"] < 10000  # finite, never -1
    assert 60 <= esm["maximum_record_age_in_seconds"] <= 604800
    # whole failed batches go somewhere: the failed-batch topic (known after apply)
    assert is_unknown(esm_unknown, "destination_config", 0, "on_failure", 0, "destination_arn")
    topics = [t["name"] for t in changes(plan, "aws_sns_topic").values()]
    assert any(name.endswith("-failed-batch") for name in topics), topics


def test_complete_uses_enhanced_fan_out(complete_plan):
    consumers = changes(complete_plan, "aws_kinesis_stream_consumer")
    assert len(consumers) == 1
    _, esm_unknown = consumer_esm(complete_plan)
    assert esm_unknown["event_source_arn"] is True  # the consumer ARN, known after apply
    consumer = next(iter(consumers.values()))
    assert consumer["name"].startswith("cnm-complete")


@pytest.mark.parametrize("example", ["complete", "minimal"])
def test_dead_letter_queue_and_fallback_wiring(example, request):
    plan = request.getfixturevalue(f"{example}_plan")
    queues = changes(plan, "aws_sqs_queue")
    dlq = next(q for q in queues.values() if q["name"].endswith("-kinesisFailure"))
    assert dlq["message_retention_seconds"] == 1209600
    dlq_address = next(a for a, q in queues.items() if q is dlq)
    if example == "complete":  # the customer key
        assert is_unknown(unknown(plan, dlq_address), "kms_master_key_id")
    else:
        assert dlq["sqs_managed_sse_enabled"] is True
    invoke_configs = changes(plan, "aws_lambda_function_event_invoke_config")
    fallback = next(c for c in invoke_configs.values() if c["function_name"].endswith("fallback-consumer"))
    assert 0 <= fallback["maximum_retry_attempts"] <= 2
    fallback_address = next(a for a, c in invoke_configs.items() if c is fallback)
    assert is_unknown(unknown(plan, fallback_address), "destination_config", 0, "on_failure", 0, "destination")
    subscriptions = changes(plan, "aws_sns_topic_subscription")
    assert {s["protocol"] for s in subscriptions.values()} == {"lambda"}
    assert len(subscriptions) == 2  # fallback consumer + hydrate


@pytest.mark.parametrize("example", ["complete", "minimal"])
def test_encryption_at_rest_everywhere(example, request):
    plan = request.getfixturevalue(f"{example}_plan")
    for address, stream in changes(plan, "aws_kinesis_stream").items():
        assert stream["encryption_type"] == "KMS", address
    for address, table in changes(plan, "aws_dynamodb_table").items():
        assert table["server_side_encryption"][0]["enabled"] is True, address
        assert table["point_in_time_recovery"][0]["enabled"] is True, address
    for address, topic in changes(plan, "aws_sns_topic").items():
        if topic["name"].endswith("-alarms") and example == "minimal":
            continue  # CloudWatch cannot publish to an aws/sns-encrypted topic; only with a customer key
        assert topic.get("kms_master_key_id") or unknown(plan, address).get("kms_master_key_id"), address
    sse = changes(plan, "aws_s3_bucket_server_side_encryption_configuration")
    assert sse and len(sse) == len(changes(plan, "aws_s3_bucket"))
    for address, group in changes(plan, "aws_cloudwatch_log_group").items():
        assert group["retention_in_days"] in ((90,) if example == "complete" else (30,)), address


@pytest.mark.parametrize("example", ["complete", "minimal"])
def test_alarms_watch_the_stream_the_dlq_and_every_function(example, request):
    plan = request.getfixturevalue(f"{example}_plan")
    alarms = {a["alarm_name"]: a for a in changes(plan, "aws_cloudwatch_metric_alarm").values()}
    functions = sorted(fn["function_name"] for fn in changes(plan, "aws_lambda_function").values())
    prefix = f"cnm-{example}-"
    expected = [
        "notification-stream-iterator-age",
        "dlq-not-empty",
        "message-consumer-iterator-age",
        "recorder-dlq-not-empty",
    ]
    expected += [f"{name.removeprefix(prefix)}-errors" for name in functions]
    expected += [f"cnm-workflow-executions-{m}" for m in ("failed", "timed-out", "aborted")]  # issue 8
    expected += [f"reconcile-{m}" for m in ("unanswered", "stuck", "lost")]  # issue 23, every collection
    assert sorted(alarms) == sorted(prefix + e for e in expected)
    for m in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        [alarm] = [a for a in alarms.values() if a["metric_name"] == m]
        assert (alarm["namespace"], alarm["threshold"]) == ("AWS/States", 0)
    assert alarms[f"{prefix}dlq-not-empty"]["threshold"] == 0
    assert alarms[f"{prefix}dlq-not-empty"]["dimensions"] == {"QueueName": f"{prefix}kinesisFailure"}
    assert alarms[f"{prefix}notification-stream-iterator-age"]["namespace"] == "AWS/Kinesis"
    for name in functions:
        alarm = alarms[f"{prefix}{name.removeprefix(prefix)}-errors"]
        assert (alarm["metric_name"], alarm["dimensions"]) == ("Errors", {"FunctionName": name})
    has_topic = example == "complete"  # complete creates the encrypted alarm topic; minimal has no actions
    for address, alarm in changes(plan, "aws_cloudwatch_metric_alarm").items():
        assert alarm["treat_missing_data"] == "notBreaching", address
        assert bool(unknown(plan, address).get("alarm_actions")) is has_topic, (
            address
        )  # the topic ARN, known after apply
        if not has_topic:
            assert not alarm["alarm_actions"] and not alarm["ok_actions"], address  # empty set: null in the plan


@pytest.mark.parametrize("example", ["complete", "minimal"])
def test_every_function_is_packaged_from_the_manifest(example, request, packages):
    plan = request.getfixturevalue(f"{example}_plan")
    functions = changes(plan, "aws_lambda_function")
    hashes = {f["base64sha256"] for f in packages["functions"].values()}
    roles = [
        "message-consumer",
        "fallback-consumer",
        "hydrate",
        "inbound-logger",
        "outbound-logger",
        "start-status",
        "translate-message",
        "sync-granule",
        "cnm-response",
        "stop-status",
        "recorder",
        "reconcile",
    ]
    assert sorted(fn["function_name"] for fn in functions.values()) == sorted(f"cnm-{example}-{r}" for r in roles)
    for address, fn in functions.items():
        assert fn["runtime"] == "python3.12", address
        assert fn["source_code_hash"] in hashes, address
        assert fn["handler"].endswith(".handler"), address


def test_iam_policies_name_only_the_resources_they_need(complete_plan):
    """Every Allow statement of the pipeline's roles names its resources by reference, not "*"."""
    statements = 0
    for path, doc in config_resources(complete_plan, "aws_iam_policy_document"):
        if not path.startswith("cnm_ingest"):
            continue  # the example's own KMS key policy
        # a document made only of dynamic blocks / source_policy_documents has no static expressions
        for st in doc.get("expressions", {}).get("statement", []):
            if st.get("principals") or st.get("effect", {}).get("constant_value") == "Deny":
                continue  # resource policies and deny guards
            statements += 1
            actions = set(st["actions"].get("constant_value", []))
            resources = st.get("resources", {})
            if "*" in resources.get("constant_value", []):
                assert actions <= RESOURCE_STAR_ACTIONS, f"{path}: {sorted(actions)} on *"
            else:
                assert resources.get("references"), f"{path} {st.get('sid')}: no resources named"
            assert not any(a.endswith(":*") or a == "*" for a in actions), f"{path}: wildcard action {actions}"
    assert statements >= 20


def test_consumer_role_reaches_exactly_its_resources(complete_plan):
    doc = next(
        r
        for path, r in config_resources(complete_plan, "aws_iam_policy_document")
        if path == "cnm_ingest.consumer" and r["name"] == "this"
    )
    by_sid = {st["sid"]["constant_value"]: st for st in doc["expressions"]["statement"]}
    # the notification stream and the streams rules name (modules/consumer local.streams), nothing else
    assert by_sid["ReadNotificationStream"]["resources"]["references"] == ["local.streams"]
    assert by_sid["StartWorkflows"]["actions"]["constant_value"] == ["states:StartExecution"]
    assert by_sid["PublishFallback"]["resources"]["references"] == ["var.fallback_topic_arn"]
    assert set(by_sid["WriteResponses"]["actions"]["constant_value"]) <= {"kinesis:PutRecord", "kinesis:PutRecords"}


@pytest.mark.parametrize("example, level", [("complete", "ALL"), ("minimal", "ERROR")])
def test_workflow_state_machine(example, level, request):
    plan = request.getfixturevalue(f"{example}_plan")
    (machine,) = changes(plan, "aws_sfn_state_machine").values()
    assert machine["type"] == "STANDARD"
    assert machine["logging_configuration"][0]["level"] == level
    assert machine["logging_configuration"][0]["include_execution_data"] is False
    assert machine["tracing_configuration"][0]["enabled"] is (example == "complete")


def test_response_destinations_and_distribution_endpoint(complete_plan):
    """The complete example's extra response topic and distribution endpoint reach the CnmResponse function."""
    address = next(
        a
        for a, f in changes(complete_plan, "aws_lambda_function").items()
        if f["function_name"] == "cnm-complete-cnm-response"
    )
    # the environment holds ARNs known only after apply; the whole map is then unknown at plan time
    assert is_unknown(unknown(complete_plan, address), "environment", 0, "variables")
    workflow = complete_plan["configuration"]["root_module"]["module_calls"]["cnm_ingest"]["module"]["module_calls"][
        "workflow"
    ]
    assert workflow["expressions"]["response_destinations"]["references"] == ["var.response_destinations"]
    assert workflow["expressions"]["distribution_endpoint"]["references"] == ["var.distribution_endpoint"]
    assert "cnm-complete-provider-responses" in {t["name"] for t in changes(complete_plan, "aws_sns_topic").values()}


# --------------------------------------------------------------------------- #
# One function object per function: settings merged, NGAP placement everywhere
# --------------------------------------------------------------------------- #

ACCOUNT = "123456789012"  # moto's account


def functions_by_key(plan: dict, example: str) -> dict[str, tuple[str, dict]]:
    """function key -> (address, planned values)."""
    prefix = f"cnm-{example}-"
    out = {}
    for address, fn in changes(plan, "aws_lambda_function").items():
        out[fn["function_name"].removeprefix(prefix).replace("-", "_")] = (address, fn)
    assert sorted(out) == sorted(FUNCTION_KEYS)
    return out


@pytest.mark.parametrize(
    "example, expected",
    [
        # complete: lambda_function_settings = {defaults = {memory_size = 512}, message_consumer = {600, 1024, 20},
        #           fallback_consumer = {reserved 5}, sync_granule = {memory_size = 2048}}
        (
            "complete",
            {
                "message_consumer": (600, 1024, 20),
                "fallback_consumer": (300, 512, 5),
                "hydrate": (300, 512, -1),
                "inbound_logger": (60, 512, -1),
                "sync_granule": (900, 2048, -1),
                "cnm_response": (60, 512, -1),
            },
        ),
        # minimal: the built-in defaults
        (
            "minimal",
            {
                "message_consumer": (300, 512, -1),
                "fallback_consumer": (300, 512, -1),
                "hydrate": (300, 512, -1),
                "inbound_logger": (60, 256, -1),
                "sync_granule": (900, 1024, -1),
                "cnm_response": (60, 256, -1),
            },
        ),
    ],
)
def test_function_settings_merge_defaults_and_overrides(example, expected, request):
    """Each function gets: its own setting, else lambda_function_settings.defaults, else the built-in default."""
    functions = functions_by_key(request.getfixturevalue(f"{example}_plan"), example)
    for key, (timeout, memory, reserved) in expected.items():
        fn = functions[key][1]
        assert (fn["timeout"], fn["memory_size"], fn["reserved_concurrent_executions"]) == (
            timeout,
            memory,
            reserved,
        ), key


def test_every_function_and_role_carries_the_ngap_placement(complete_plan):
    """examples/complete: every function in the given subnets with the security group made in vpc_id,
    every role (functions and state machine) under the permissions boundary and role path."""
    subnets = sorted(["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"])
    (group,) = changes(complete_plan, "aws_security_group").values()
    assert group["vpc_id"] == "vpc-0a1b2c3d4e5f60718" and group["name"] == "cnm-complete-lambda"
    assert not group.get("ingress")  # none configured (computed, so unknown in the plan)
    assert [(e["from_port"], e["to_port"], e["protocol"]) for e in group["egress"]] == [(443, 443, "tcp")]
    for address, fn in changes(complete_plan, "aws_lambda_function").items():
        (vpc,) = fn["vpc_config"]
        assert sorted(vpc["subnet_ids"]) == subnets, address
        assert is_unknown(unknown(complete_plan, address), "vpc_config", 0, "security_group_ids"), (
            address
        )  # the group's id
    roles = changes(complete_plan, "aws_iam_role")
    assert len(roles) == len(FUNCTION_KEYS) + 2  # every function, the state machine and the provider-read role
    for address, role in roles.items():
        assert role["permissions_boundary"] == f"arn:aws:iam::{ACCOUNT}:policy/NGAPShRoleBoundary", address
        assert role["path"] == "/cnm-ingest/", address


def test_minimal_functions_outside_a_vpc_and_roles_without_boundary(minimal_plan):
    assert not changes(minimal_plan, "aws_security_group")
    for address, fn in changes(minimal_plan, "aws_lambda_function").items():
        assert not fn.get("vpc_config"), address
    for address, role in changes(minimal_plan, "aws_iam_role").items():
        assert role.get("permissions_boundary") is None and role["path"] == "/", address


@pytest.mark.parametrize("example", ["complete", "minimal"])
def test_one_status_store(example, request):
    """Issue 21: one table holds executions and granules (the by_status index), at modules/executions, whatever
    create_recorder says; no workflow status table."""
    plan = request.getfixturevalue(f"{example}_plan")
    tables = changes(plan, "aws_dynamodb_table")
    with_status_index = {
        a: t for a, t in tables.items() if [g["name"] for g in t.get("global_secondary_index") or []] == ["by_status"]
    }
    assert list(with_status_index) == ["module.cnm_ingest.module.executions.aws_dynamodb_table.this"], sorted(tables)
    [store] = with_status_index.values()
    assert store["name"].endswith("-executions")
    assert not [a for a in tables if "workflow" in a or "recorder" in a]
