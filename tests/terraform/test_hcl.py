"""Static checks of the Terraform code: layout, formatting, typed variables, the
safety settings of the stream consumer and the fallback path, least-privilege
IAM. Parsed with python-hcl2; `terraform fmt` and `validate` through tools/tf.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import hcl2
import pytest

from .tfhelpers import RESOURCE_STAR_ACTIONS, ROOT

TF = [sys.executable, str(ROOT / "tools" / "tf.py")]
MODULES = sorted(p for p in (ROOT / "modules").iterdir() if p.is_dir())
# examples/daac-repo is a consumer repository sourcing the release archive, not ../../ (tests/terraform/test_release.py)
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir() and p.name != "daac-repo")
CONFIGS = [ROOT, *MODULES, *EXAMPLES]
OUR_MODULES = [
    "lambda_function",
    "streams",
    "config_tables",
    "dead_letter",
    "consumer",
    "fallback",
    "hydrate",
    "logger",
    "workflow",
    "alarms",
    "s3_bucket",
]

# Key policies: in a KMS key policy, Resource "*" means "this key".
KEY_POLICY_DOCUMENTS = {("examples/complete", "kms")}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() or "."


def _unquote_text(value: str):
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:  # an expression such as "a" == "b"
            return value
    if value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return value


def unquote(value):
    """python-hcl2 keeps string quotes and wraps expressions in ${...}; strip both."""
    if isinstance(value, str):
        return _unquote_text(value)
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


@cache
def load(directory: Path) -> dict[str, list]:
    """Every top-level block of a configuration directory, unquoted, merged across files."""
    merged: dict[str, list] = {}
    for tf_file in sorted(directory.glob("*.tf")):
        with tf_file.open() as fh:
            parsed = hcl2.load(fh)
        for kind, blocks in parsed.items():
            merged.setdefault(kind, []).extend(unquote(blocks))
    return merged


def named(directory: Path, kind: str) -> dict[str, dict]:
    """variable / output / module / locals blocks by name."""
    out = {}
    for block in load(directory).get(kind, []):
        out.update(block)
    return out


def typed(directory: Path, kind: str, rtype: str) -> dict[str, dict]:
    """resource / data blocks of one type, by name."""
    out = {}
    for block in load(directory).get(kind, []):
        out.update(block.get(rtype, {}))
    return out


def only(blocks: dict[str, dict]) -> dict:
    assert len(blocks) == 1, f"expected exactly one block, got {sorted(blocks)}"
    return next(iter(blocks.values()))


def bound_variable(expr) -> str:
    """The variable an argument is bound to (`var.x` -> "x"); fails for anything else."""
    match = re.fullmatch(r"var\.([A-Za-z0-9_]+)", str(expr).strip())
    assert match, f"expected the argument to be bound to a variable, got {expr!r}"
    return match.group(1)


def default_of(directory: Path, name: str):
    variables = named(directory, "variable")
    assert name in variables, f"{rel(directory)} has no variable {name}"
    assert "default" in variables[name], f"{rel(directory)} variable {name} has no default"
    return variables[name]["default"]


def statements(document: dict) -> list[dict]:
    """Statements of an aws_iam_policy_document, the dynamic ones included."""
    out = list(document.get("statement", []))
    for dyn in document.get("dynamic", []):
        if "statement" in dyn:
            out.extend(dyn["statement"].get("content", []))
    return out


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- #
# Layout and formatting
# --------------------------------------------------------------------------- #


def test_terraform_fmt():
    proc = subprocess.run(
        [*TF, f"-chdir={ROOT}", "fmt", "-check", "-recursive", "-diff"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"terraform fmt -check failed; diff:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("name", OUR_MODULES)
def test_our_modules_exist(name):
    assert (ROOT / "modules" / name).is_dir(), f"modules/{name} is missing"


@pytest.mark.parametrize("module", MODULES, ids=rel)
def test_module_files(module):
    missing = [
        f for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md") if not (module / f).is_file()
    ]
    assert not missing, f"{rel(module)} lacks {missing}"
    readme = (module / "README.md").read_text()
    assert "<!-- BEGIN_TF_DOCS -->" in readme and "<!-- END_TF_DOCS -->" in readme, (
        f"{rel(module)}/README.md has no TF_DOCS markers"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=rel)
def test_example_files(example):
    missing = [f for f in ("main.tf", "versions.tf", "outputs.tf", "README.md") if not (example / f).is_file()]
    assert not missing, f"{rel(example)} lacks {missing}"
    sources = [m["source"] for m in named(example, "module").values()]
    assert "../../" in sources, f'{rel(example)} must use the root module as source = "../../"'
    region = named(example, "variable").get("region")
    assert region and region.get("default") == "us-west-2", f"{rel(example)}: region variable must default to us-west-2"


def test_minimal_example_passes_only_required_inputs():
    root_vars = named(ROOT, "variable")
    required = {k for k, v in root_vars.items() if "default" not in v}
    call = named(ROOT / "examples" / "minimal", "module")["cnm_ingest"]
    assert set(call) - {"source"} == required


@pytest.mark.parametrize("config", [ROOT, *MODULES, *EXAMPLES], ids=rel)
def test_versions_allow_the_local_provider(config):
    from .test_min_versions import PROVIDER_VERSION, TERRAFORM_MIN  # the tested lower bounds

    terraform = load(config)["terraform"][0]
    assert terraform["required_version"] == f">= {TERRAFORM_MIN}"
    aws = terraform["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert aws["version"] == f">= {PROVIDER_VERSION}"  # the locally built provider


@pytest.mark.parametrize("config", CONFIGS, ids=rel)
def test_variables_have_type_and_description(config):
    bad = [
        name for name, body in named(config, "variable").items() if not body.get("type") or not body.get("description")
    ]
    assert not bad, f"{rel(config)}: variables without type or description: {bad}"


@pytest.mark.parametrize("config", CONFIGS, ids=rel)
def test_outputs_have_description(config):
    bad = [name for name, body in named(config, "output").items() if not body.get("description")]
    assert not bad, f"{rel(config)}: outputs without description: {bad}"


# --------------------------------------------------------------------------- #
# Message consumer event source mapping
# --------------------------------------------------------------------------- #

CONSUMER = ROOT / "modules" / "consumer"
# The mapping's knobs are declared, defaulted and validated once, by the root
# variables of the same names; the consumer module receives them as one object.
ESM_KNOBS = (
    "batch_size",
    "maximum_batching_window_in_seconds",
    "starting_position",
    "starting_position_timestamp",
    "parallelization_factor",
    "bisect_batch_on_function_error",
    "maximum_retry_attempts",
    "maximum_record_age_in_seconds",
    "function_response_types",
)


@pytest.fixture(scope="module")
def consumer_esm():
    return only(typed(CONSUMER, "resource", "aws_lambda_event_source_mapping"))


def root_knob(consumer_esm, argument: str) -> str:
    """The root variable behind an argument of the consumer's mapping (module object -> root call -> var)."""
    match = re.fullmatch(r"var\.event_source_mapping\.([a-z_]+)", str(consumer_esm[argument]).strip())
    assert match, f"{argument} = {consumer_esm[argument]!r} does not come from var.event_source_mapping"
    call = named(ROOT, "module")["consumer"]["event_source_mapping"]
    return bound_variable(call[match.group(1)])


def test_consumer_mapping_knobs_come_from_the_root_variables_of_the_same_name(consumer_esm):
    call = named(ROOT, "module")["consumer"]["event_source_mapping"]
    assert set(call) == set(ESM_KNOBS)
    assert all(bound_variable(call[k]) == k for k in ESM_KNOBS)
    assert not set(ESM_KNOBS) & set(named(CONSUMER, "variable")), "the knobs are declared once, at the root"


def test_consumer_bisects_by_default(consumer_esm):
    assert default_of(ROOT, root_knob(consumer_esm, "bisect_batch_on_function_error")) is True


def test_consumer_retries_are_finite_by_default(consumer_esm):
    default = default_of(ROOT, root_knob(consumer_esm, "maximum_retry_attempts"))
    assert isinstance(default, int) and 0 <= default <= 10, (
        f"maximum_retry_attempts default {default!r} must be small and finite"
    )


def test_consumer_record_age_is_finite_by_default(consumer_esm):
    default = default_of(ROOT, root_knob(consumer_esm, "maximum_record_age_in_seconds"))
    assert isinstance(default, int) and 60 <= default <= 604800, (
        f"maximum_record_age_in_seconds default {default!r} must be finite"
    )


def test_consumer_reports_batch_item_failures_by_default(consumer_esm):
    assert "ReportBatchItemFailures" in default_of(ROOT, root_knob(consumer_esm, "function_response_types"))


def test_consumer_starts_at_trim_horizon_by_default(consumer_esm):
    assert default_of(ROOT, root_knob(consumer_esm, "starting_position")) == "TRIM_HORIZON"


def test_consumer_has_an_on_failure_destination(consumer_esm):
    on_failure = consumer_esm["destination_config"][0]["on_failure"][0]
    assert bound_variable(on_failure["destination_arn"]) == "on_failure_destination_arn"
    assert (
        named(ROOT, "module")["consumer"]["on_failure_destination_arn"]
        == "module.dead_letter.on_failure_destination_arn"
    )
    assert default_of(ROOT, "on_failure_destination") == "sns"


def test_consumer_knob_validations_cover_the_aws_ranges():
    variables = named(ROOT, "variable")
    expectations = {
        "batch_size": ["1", "10000"],
        "maximum_batching_window_in_seconds": ["0", "300"],
        "parallelization_factor": ["1", "10"],
        "maximum_retry_attempts": ["-1", "10000"],
        "maximum_record_age_in_seconds": ["-1", "60", "604800"],
    }
    for name, bounds in expectations.items():
        conditions = " ".join(v["condition"] for v in variables[name].get("validation", []))
        for bound in bounds:
            assert re.search(rf"(?<![0-9]){re.escape(bound)}(?![0-9])", conditions), (
                f"{name}: no validation bound {bound}"
            )


def test_enhanced_fan_out_switches_the_event_source():
    consumers = typed(CONSUMER, "resource", "aws_kinesis_stream_consumer")
    assert "enhanced_fan_out" in only(consumers)["for_each"]
    locals_ = named(CONSUMER, "locals")
    assert "aws_kinesis_stream_consumer.this[k].arn" in locals_["event_source"]


def test_loggers_have_finite_retries_and_partial_batch_response():
    logger = ROOT / "modules" / "logger"
    esm = only(typed(logger, "resource", "aws_lambda_event_source_mapping"))
    assert default_of(logger, bound_variable(esm["bisect_batch_on_function_error"])) is True
    retries = default_of(logger, bound_variable(esm["maximum_retry_attempts"]))
    assert 0 <= retries <= 10
    assert default_of(logger, bound_variable(esm["maximum_record_age_in_seconds"])) > 0
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]


# --------------------------------------------------------------------------- #
# Fallback path and dead-letter queue
# --------------------------------------------------------------------------- #

FALLBACK = ROOT / "modules" / "fallback"
DEAD_LETTER = ROOT / "modules" / "dead_letter"
LAMBDA_FUNCTION = ROOT / "modules" / "lambda_function"


def test_fallback_invoke_config_retries_then_dlq():
    call = named(FALLBACK, "module")["function"]
    assert call["source"] == "../lambda_function"
    assert call["create_async_event_config"] is True
    assert bound_variable(call["async_maximum_retry_attempts"]) == "maximum_retry_attempts"
    assert bound_variable(call["async_maximum_event_age_in_seconds"]) == "maximum_event_age_in_seconds"
    assert bound_variable(call["async_on_failure_destination_arn"]) == "dlq_arn"
    root_call = named(ROOT, "module")["fallback"]
    assert bound_variable(root_call["maximum_retry_attempts"]) == "fallback_maximum_retry_attempts"
    assert default_of(ROOT, "fallback_maximum_retry_attempts") == 2
    assert bound_variable(root_call["maximum_event_age_in_seconds"]) == "fallback_maximum_event_age_in_seconds"
    assert 60 <= default_of(ROOT, "fallback_maximum_event_age_in_seconds") <= 21600
    assert root_call["dlq_arn"] == "module.dead_letter.dlq_arn"

    config = only(typed(LAMBDA_FUNCTION, "resource", "aws_lambda_function_event_invoke_config"))
    assert bound_variable(config["maximum_retry_attempts"]) == "async_maximum_retry_attempts"
    assert bound_variable(config["maximum_event_age_in_seconds"]) == "async_maximum_event_age_in_seconds"
    dynamic = config["dynamic"][0]["destination_config"]
    assert dynamic["content"][0]["on_failure"][0]["destination"] == "destination_config.value"
    assert "async_on_failure_destination_arn" in named(LAMBDA_FUNCTION, "locals")["has_async_dest"]


def test_fallback_retry_validation_is_0_to_2():
    conditions = " ".join(
        v["condition"] for v in named(ROOT, "variable")["fallback_maximum_retry_attempts"]["validation"]
    )
    assert ">= 0" in conditions and "<= 2" in conditions


def test_dlq_named_kinesis_failure_retained_14_days_encrypted():
    queue = typed(DEAD_LETTER, "resource", "aws_sqs_queue")["dlq"]
    assert default_of(DEAD_LETTER, bound_variable(queue["message_retention_seconds"])) == 1209600
    assert queue["name"] == "${var.prefix}-kinesisFailure"
    # SQS-managed SSE by default, the customer key when one is given.
    assert "sqs_managed_sse_enabled" in queue and "true" in str(queue["sqs_managed_sse_enabled"])
    assert bound_variable(queue["kms_master_key_id"]) == "kms_key_arn"


def test_dlq_has_redrive_allow_and_tls_only_policy():
    assert (
        only(typed(DEAD_LETTER, "resource", "aws_sqs_queue_redrive_allow_policy"))["queue_url"]
        == "aws_sqs_queue.dlq.id"
    )
    doc = typed(ROOT, "data", "aws_iam_policy_document")["dead_letter"]
    denies = [s for s in statements(doc) if s.get("effect") == "Deny"]
    assert any(c["variable"] == "aws:SecureTransport" for s in denies for c in s.get("condition", []))


def test_dlq_policy_names_every_writer_and_is_composed_at_the_root():
    """The policy lists the writers, which exist only after the sinks: so it lives at the root, not in dead_letter."""
    assert not typed(DEAD_LETTER, "resource", "aws_sqs_queue_policy")
    policy = only(typed(ROOT, "resource", "aws_sqs_queue_policy"))
    assert policy["queue_url"] == "module.dead_letter.dlq_url"
    doc = typed(ROOT, "data", "aws_iam_policy_document")["dead_letter"]
    by_sid = {s["sid"]: s for s in statements(doc)}
    senders = by_sid["PipelineFunctionsSend"]["principals"][0]["identifiers"]
    assert "module.fallback.role_arn" in senders and "module.hydrate" in senders
    assert by_sid["SnsRedriveUndeliverable"]["condition"][0]["values"] == "module.dead_letter.dlq_sns_source_topic_arns"


def test_sns_subscriptions_redrive_to_the_dlq():
    for module in (FALLBACK, ROOT / "modules" / "hydrate"):
        sub = only(typed(module, "resource", "aws_sns_topic_subscription"))
        assert "var.dlq_arn" in sub["redrive_policy"], rel(module)
    assert set(named(DEAD_LETTER, "locals")["dlq_sns_redrives"].replace(" ", "").split(",")) >= {
        "concat([aws_sns_topic.fallback.arn]",
        "aws_sns_topic.failed_batch[*].arn)",
    }


def test_topics_are_encrypted():
    for name in ("fallback", "failed_batch"):
        topic = typed(DEAD_LETTER, "resource", "aws_sns_topic")[name]
        assert topic["kms_master_key_id"] == "local.topic_key", name
    assert "alias/aws/sns" in named(DEAD_LETTER, "locals")["topic_key"]


def test_streams_are_kms_encrypted():
    streams = ROOT / "modules" / "streams"
    stream = only(typed(streams, "resource", "aws_kinesis_stream"))
    assert stream["encryption_type"] == "KMS"
    assert stream["kms_key_id"] == 'var.kms_key_arn != null ? var.kms_key_arn : "alias/aws/kinesis"'


def test_buckets_encrypted_and_private():
    bucket = ROOT / "modules" / "s3_bucket"
    pab = only(typed(bucket, "resource", "aws_s3_bucket_public_access_block"))
    assert all(
        pab[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    sse = only(typed(bucket, "resource", "aws_s3_bucket_server_side_encryption_configuration"))
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"


def test_config_tables_encrypted_with_pitr():
    tables = ROOT / "modules" / "config_tables"
    table = only(typed(tables, "resource", "aws_dynamodb_table"))
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["server_side_encryption"][0]["enabled"] is True
    assert default_of(tables, bound_variable(table["point_in_time_recovery"][0]["enabled"])) is True
    assert set(named(tables, "locals")["tables"]) == {"rules", "collections", "providers"}


def test_payload_bucket_outlives_dlq_messages():
    assert default_of(ROOT, "payload_bucket_expiration_days") >= 14
    conditions = " ".join(
        v["condition"] for v in named(ROOT, "variable")["payload_bucket_expiration_days"]["validation"]
    )
    assert ">= 14" in conditions


# --------------------------------------------------------------------------- #
# Lambda functions: explicit log groups, environment per docs/INTERFACES.md
# --------------------------------------------------------------------------- #


def test_functions_have_explicit_log_group_with_retention():
    group = only(typed(LAMBDA_FUNCTION, "resource", "aws_cloudwatch_log_group"))
    assert group["retention_in_days"] == "local.fn.log_retention_days"
    assert default_of(ROOT, "log_retention_days") == 30
    function = only(typed(LAMBDA_FUNCTION, "resource", "aws_lambda_function"))
    assert function["logging_config"][0]["log_group"] == "aws_cloudwatch_log_group.this.name"


@pytest.mark.parametrize("module", ["consumer", "fallback", "hydrate", "logger", "workflow"])
def test_function_modules_reuse_lambda_function(module):
    path = ROOT / "modules" / module
    assert not typed(path, "resource", "aws_lambda_function"), f"modules/{module} must use ../lambda_function"
    assert named(path, "module")["function"]["source"] == "../lambda_function"
    if module != "workflow":
        assert not typed(path, "resource", "aws_iam_role")


def test_manifest_drives_the_packages():
    root_locals = named(ROOT, "locals")
    assert root_locals["manifest_path"] == "${local.package_dir}/manifest.json"
    assert root_locals["manifest"].startswith("try(jsondecode(file(local.manifest_path))")
    assert "path.module}/build" in root_locals["package_dir"]
    assert "base64sha256" in json.dumps(root_locals["packages"])
    assert root_locals["payload_key_prefix"] == "local.manifest.constants.payload_key_prefix"


def test_workflow_module_wired_with_the_agreed_interface():
    call = named(ROOT, "module")["workflow"]
    expected = {
        "source",
        "prefix",
        "functions",
        "response_stream_arn",
        "response_stream_kms_key_arn",
        "staging_bucket_name",
        "provider_bucket_arns",
        "log_retention_days",
        "kms_key_arn",
        "state_machine_log_level",
        "tracing_enabled",
        "permissions_boundary_arn",
        "role_path",
        "tags",
        "sync_retry_interval_seconds",
        "sync_retry_max_attempts",
        "response_retry_interval_seconds",
        "response_retry_max_attempts",
        "extra_states",
        "extra_states_start_at",
        "extra_states_policy_json",
        # issue 8: the workflow message's large parts, and where an undeliverable response is parked
        "payload_bucket_name",
        "payload_bucket_kms_key_arn",
        "workflow_payload_objects_arn",
        "response_payload_objects_arn",
        "workflow_offload_bytes",
        "dlq_url",
        "dlq_arn",
        "dlq_kms_key_arn",
        "response_destinations",
        "response_destinations_kms_key_arns",
        "distribution_endpoint",
        "placement_bucket_names",
        "provider_secret_arns",
        # issue 18: the temporary area the provider-read role may write (from the build manifest)
        "staging_temp_key_prefix",
        # issue 22: files SyncGranule transfers at once
        "sync_concurrency",
        # issue 22: SyncGranule's deadline margin and its bound on continued invocations
        "sync_deadline_margin_seconds",
        "sync_max_invocations",
        # issue 21: the one status store (modules/executions) and the idempotency table (CnmResponse)
        "executions_table_name",
        "executions_table_arn",
        "idempotency_table_name",
        "idempotency_table_arn",
        # issue 21: the workflow contract checked at run time
        "contract_validation",
    }
    assert set(call) == expected
    assert call["source"] == "./modules/workflow"
    assert "local.functions[key]" in call["functions"]


def test_contract_validation_is_off_by_default_validated_and_set_only_when_on():
    """CONTRACT_VALIDATION (cnm_ingest.workflow.contract_check.MODES): root -> modules/workflow -> every task."""
    from cnm_ingest.workflow import contract_check

    assert named(ROOT, "module")["workflow"]["contract_validation"] == "var.contract_validation"
    for directory in (ROOT, ROOT / "modules" / "workflow"):
        variable = named(directory, "variable")["contract_validation"]
        assert default_of(directory, "contract_validation") == "off" and variable["type"] == "string"
        [validation] = variable["validation"]
        assert all(f'"{mode}"' in validation["condition"] for mode in contract_check.MODES), validation
    main = (ROOT / "modules" / "workflow" / "main.tf").read_text()
    assert 'var.contract_validation == "off" ? {} : { CONTRACT_VALIDATION = var.contract_validation }' in main


def test_rules_without_workflow_use_the_builtin_state_machine():
    root_locals = named(ROOT, "locals")
    assert root_locals["default_workflow_arn"] == "module.workflow.state_machine_arn"
    assert "local.default_workflow_arn" in json.dumps(root_locals["rules"])


def test_rule_validations():
    validations = named(ROOT, "variable")["rules"]["validation"]
    conditions = " ".join(v["condition"] for v in validations)
    assert "ENABLED" in conditions and "DISABLED" in conditions
    assert "distinct" in conditions  # unique names


# --------------------------------------------------------------------------- #
# Least privilege
# --------------------------------------------------------------------------- #


def _policy_documents():
    for config in CONFIGS:
        for name, doc in typed(config, "data", "aws_iam_policy_document").items():
            yield config, name, doc


def test_no_allow_statement_on_resource_star():
    offenders = []
    for config, name, doc in _policy_documents():
        if (rel(config), name) in KEY_POLICY_DOCUMENTS:
            continue
        for stmt in statements(doc):
            if stmt.get("effect", "Allow") != "Allow":
                continue
            resources = as_list(stmt.get("resources", []))
            if "*" in resources:
                actions = set(as_list(stmt.get("actions", [])))
                if not actions <= RESOURCE_STAR_ACTIONS:
                    offenders.append(
                        f"{rel(config)} data.aws_iam_policy_document.{name} "
                        f"sid={stmt.get('sid')} actions={sorted(actions)}"
                    )
    assert not offenders, 'Resource "*" on actions that support resource-level permissions:\n' + "\n".join(offenders)


def test_no_resource_star_in_jsonencoded_policies():
    pattern = re.compile(r'Resource\s*=\s*(\[\s*)?"\*"')
    offenders = [rel(p) for p in ROOT.glob("**/*.tf") if ".terraform" not in p.parts and pattern.search(p.read_text())]
    assert not offenders, f'jsonencode\'d policies with Resource "*": {offenders}'


def test_no_wildcard_actions_in_function_policies():
    offenders = []
    for config, name, doc in _policy_documents():
        if (rel(config), name) in KEY_POLICY_DOCUMENTS:
            continue
        for stmt in statements(doc):
            if stmt.get("effect", "Allow") == "Allow":
                offenders += [
                    f"{rel(config)}:{name}:{a}"
                    for a in as_list(stmt.get("actions", []))
                    if a.endswith(":*") or a == "*"
                ]
    assert not offenders, offenders


def test_kinesis_reads_scoped_to_the_stream():
    """Reads only on the notification stream and the streams rules name (rule_stream_arns), nothing wider."""
    allowed = {
        "consumer": "values(local.streams)",  # {notification = var.stream_arn} + var.rule_stream_arns
        "hydrate": "concat([var.stream_arn], var.rule_stream_arns)",
        "logger": ["var.stream_arn"],
    }
    consumer_locals = named(ROOT / "modules" / "consumer", "locals")
    assert "notification = var.stream_arn" in consumer_locals["streams"]
    assert "for arn in var.rule_stream_arns : arn => arn" in consumer_locals["streams"]
    for module, doc_name in (("consumer", "this"), ("hydrate", "this"), ("logger", "this")):
        doc = typed(ROOT / "modules" / module, "data", "aws_iam_policy_document")[doc_name]
        reads = [s for s in statements(doc) if "kinesis:GetRecords" in as_list(s.get("actions", []))]
        assert reads and all(s["resources"] == allowed[module] for s in reads), (
            f"{module}: kinesis reads must be on {allowed[module]}"
        )


def test_dlq_send_scoped_to_the_queue():
    for module in ("hydrate", "fallback"):
        doc = typed(ROOT / "modules" / module, "data", "aws_iam_policy_document")["this"]
        sends = [s for s in statements(doc) if "sqs:SendMessage" in as_list(s.get("actions", []))]
        assert sends and all(s["resources"] == ["var.dlq_arn"] for s in sends), module


def test_statement_parser_sees_dynamic_statements():
    """Guards the least-privilege tests: the X-Ray statement lives in a dynamic block."""
    doc = typed(LAMBDA_FUNCTION, "data", "aws_iam_policy_document")["this"]
    sids = {s.get("sid") for s in statements(doc)}
    assert {"WriteOwnLogs", "XRayWrite", "UseCustomerKeys"} <= sids


def test_no_managed_policy_attachments():
    """Every role gets an inline least-privilege policy; no broad AWS managed policies."""
    for config in CONFIGS:
        attachments = typed(config, "resource", "aws_iam_role_policy_attachment")
        assert not attachments, f"{rel(config)} attaches managed policies: {sorted(attachments)}"
