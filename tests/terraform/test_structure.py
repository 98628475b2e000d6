"""The shape of the Terraform (issue 11): modules depend one way, each Lambda setting is
declared once, one package interface, one spelling per concept, moved blocks for
every changed address. Parsed with python-hcl2 (no provider needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import hcl2
import pytest

from tools.module_graph import cycles, module_graph

from .tfhelpers import ROOT

MODULES = sorted(p for p in (ROOT / "modules").iterdir() if p.is_dir())
# Every Lambda setting; none may be a variable of an internal module: the root declares
# (and validates) each once, and the modules receive them inside the `function` object.
LAMBDA_SETTINGS = [
    "runtime",
    "layers",
    "timeout",
    "memory_size",
    "reserved_concurrent_executions",
    "environment_variables",
    "additional_kms_key_arns",
    "log_retention_days_function",
    "tracing_enabled_function",
    "vpc_subnet_ids",
    "vpc_security_group_ids",
    "package",
    "package_dir",
    "manifest",
    "layer_arn",
    "architectures",
    "handler",
    "filename",
    "source_code_hash",
    "function_name",
    "function_log_level",
    "log_level",
]


def variables(directory: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as fh:
            for block in hcl2.load(fh).get("variable", []):
                out.update({k.strip('"'): v for k, v in block.items()})
    return out


def tf_files():
    return [p for p in ROOT.rglob("*.tf") if not {".terraform", ".venv", ".tools", "build"} & set(p.parts)]


# --------------------------------------------------------------------------- #
# Dependencies flow one way
# --------------------------------------------------------------------------- #


def test_module_graph_has_no_cycle():
    graph = module_graph(ROOT)
    assert {"dead_letter", "consumer", "fallback", "hydrate", "workflow"} <= set(graph)
    assert cycles(graph) == []


def test_dead_letter_is_at_the_bottom():
    """The shared sinks read no other module, and every writer reads them."""
    graph = module_graph(ROOT)
    assert graph["dead_letter"] == set()
    for writer in ("consumer", "fallback", "hydrate"):
        assert "dead_letter" in graph[writer], writer
    assert not (graph["consumer"] | graph["hydrate"]) & {"fallback"}
    assert not graph["fallback"] & {"consumer", "hydrate"}
    module_text = "".join(p.read_text() for p in (ROOT / "modules" / "dead_letter").glob("*.tf"))
    assert not re.search(r"role_arn|function_arn", module_text), "dead_letter must not know its writers"


def test_root_split_by_concern_in_dependency_order():
    """Each root file refers only to module calls, locals and resources declared in itself or the files before it."""
    order = [
        "main.tf",
        "streams.tf",
        "packages.tf",
        "dead_letter.tf",
        "stores.tf",
        "workflow.tf",
        "ingest.tf",
        "observability.tf",
        "dashboard.tf",
    ]
    present = sorted(p.name for p in ROOT.glob("*.tf") if p.name not in ("variables.tf", "outputs.tf", "versions.tf"))
    assert present == sorted([*order, "moved.tf"])
    declared: dict[str, int] = {}
    texts = {}
    for index, name in enumerate(order):
        with (ROOT / name).open() as fh:
            parsed = hcl2.load(fh)
        texts[name] = (ROOT / name).read_text()
        for block in parsed.get("module", []):
            declared.update({f"module.{k.strip(chr(34))}": index for k in block})
        for block in parsed.get("locals", []):
            declared.update({f"local.{k}": index for k in block if not k.startswith("__")})
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, byname in block.items():
                    prefix = "data." if kind == "data" else ""
                    declared.update({f"{prefix}{rtype.strip(chr(34))}.{k.strip(chr(34))}": index for k in byname})
    late = []
    for index, name in enumerate(order):
        refs = set(
            re.findall(r"\b(module\.[a-z0-9_]+|local\.[a-z0-9_]+|(?:data\.)?aws_[a-z0-9_]+\.[a-z0-9_]+)", texts[name])
        )
        late += [f"{name} reads {ref} ({order[declared[ref]]})" for ref in refs if declared.get(ref, -1) > index]
    assert not late, late
    assert {"local.functions", "module.dead_letter", "module.consumer"} <= set(declared)


# --------------------------------------------------------------------------- #
# Each setting declared once; one package interface
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_internal_modules_declare_no_lambda_setting(module):
    declared = set(variables(module)) & set(LAMBDA_SETTINGS)
    assert not declared, f"modules/{module.name} declares {sorted(declared)}: pass them in the function object"


def test_the_function_object_type_is_declared_once():
    """modules/lambda_function declares the function object's type; the modules in between take it whole."""
    function = variables(ROOT / "modules" / "lambda_function")["function"]
    type_text = json.dumps(function["type"])
    for attribute in (
        "package",
        "runtime",
        "layers",
        "timeout",
        "memory_size",
        "reserved_concurrent_executions",
        "environment_variables",
        "log_retention_days",
        "kms_key_arn",
        "tracing_enabled",
        "vpc_subnet_ids",
        "vpc_security_group_ids",
        "permissions_boundary_arn",
        "role_path",
    ):
        assert attribute in type_text, f"the function object has no {attribute}"
    assert "default" not in function and "optional" not in type_text, "the root module always builds the whole object"
    for name in ("consumer", "fallback", "hydrate", "logger"):
        passed = variables(ROOT / "modules" / name)["function"]
        assert passed["type"].strip("${}") == "any" and "default" not in passed, name
        call = (ROOT / "modules" / name / "main.tf").read_text()
        assert re.search(r"function\s+= (var\.function\b|merge\(var\.function,)", call), name


def test_workflow_tasks_take_the_same_object():
    functions = variables(ROOT / "modules" / "workflow")["functions"]
    assert functions["type"].strip("${}") == "map(any)"
    workflow_main = (ROOT / "modules" / "workflow" / "main.tf").read_text()
    assert "function = merge(var.functions[each.key], {" in workflow_main


def test_root_declares_each_lambda_setting_once():
    root = variables(ROOT)
    for name in (
        "lambda_function_settings",
        "log_level",
        "log_retention_days",
        "tracing_enabled",
        "kms_key_arn",
        "lambda_subnet_ids",
        "lambda_security_group_ids",
        "vpc_id",
        "permissions_boundary_arn",
        "role_path",
    ):
        assert name in root, name
    counts = {}
    for path in tf_files():
        for match in re.finditer(r'^variable "([a-z_]+)"', path.read_text(), flags=re.M):
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    twice = {
        n: counts[n]
        for n in ("lambda_function_settings", "log_level", "permissions_boundary_arn", "lambda_subnet_ids", "role_path")
        if counts.get(n, 0) > 1
    }
    # the workflow's state machine role is the one non-function role: it takes boundary and path itself
    assert twice == {"permissions_boundary_arn": 2, "role_path": 3} or not twice, twice


def test_the_runtime_is_the_manifests():
    """build.py fixes the runtime; no Terraform file names one."""
    offenders = [str(p.relative_to(ROOT)) for p in tf_files() if re.search(r'"python3\.\d+"', p.read_text())]
    assert not offenders, offenders
    assert "runtime     = local.manifest.runtime" in (ROOT / "packages.tf").read_text()


def test_no_terraform_value_restates_a_python_constant():
    """The payload key prefix comes from the manifest (build.py copies it from cnm_ingest.dlq)."""
    offenders = [str(p.relative_to(ROOT)) for p in tf_files() if "failed-records" in p.read_text()]
    assert not offenders, offenders
    import build
    from cnm_ingest import dlq
    from cnm_ingest.transfer import provider_access
    from cnm_ingest.workflow import payload

    assert build.constants() == {
        "payload_key_prefix": dlq.PAYLOAD_KEY_PREFIX,
        "response_key_prefix": dlq.RESPONSE_KEY_PREFIX,
        "workflow_payload_key_prefix": payload.KEY_PREFIX,
        "staging_temp_key_prefix": provider_access.TEMP_AREA,
    }
    for value in build.constants().values():
        offenders = [str(p.relative_to(ROOT)) for p in tf_files() if f'"{value}' in p.read_text()]
        assert not offenders, (value, offenders)


def test_build_stops_on_a_constant_the_source_does_not_assign(tmp_path, monkeypatch):
    import build

    (tmp_path / "cnm_ingest").mkdir()
    (tmp_path / "cnm_ingest" / "dlq.py").write_text("PAYLOAD_KEY_PREFIX = compute()\n")  # not a literal
    monkeypatch.setattr(build, "SRC", tmp_path)
    with pytest.raises(SystemExit, match="PAYLOAD_KEY_PREFIX"):
        build.constants()


# --------------------------------------------------------------------------- #
# One spelling per concept
# --------------------------------------------------------------------------- #


def test_one_spelling_for_kms_keys():
    bad = [
        f"{path.relative_to(ROOT).as_posix() or '.'}: {name}"
        for path in [ROOT, *MODULES]
        for name in variables(path)
        if "kms" in name and not re.fullmatch(r"(?:[a-z_]+_)?kms_key_arns?", name)
    ]
    assert not bad, bad


def test_log_level_names():
    """log_level is the functions' Powertools level, state_machine_log_level the workflow's, everywhere."""
    assert set(variables(ROOT)) >= {"log_level", "state_machine_log_level"}
    workflow = variables(ROOT / "modules" / "workflow")
    assert "state_machine_log_level" in workflow and "log_level" not in workflow
    for module in MODULES:
        assert "log_level" not in variables(module), module.name


def test_prefix_validated_once():
    validated = [
        p.relative_to(ROOT).as_posix() or "."
        for p in [ROOT, *MODULES]
        if variables(p).get("prefix", {}).get("validation")
    ]
    assert validated == ["."]


# --------------------------------------------------------------------------- #
# moved blocks
# --------------------------------------------------------------------------- #


def moved_blocks() -> list[tuple[str, str]]:
    with (ROOT / "moved.tf").open() as fh:
        return [(b["from"].strip("${}"), b["to"].strip("${}")) for b in hcl2.load(fh)["moved"]]


def test_moved_blocks_cover_the_shared_sinks():
    moves = dict(moved_blocks())
    assert moves == {
        "module.payload_bucket": "module.dead_letter.module.payload_bucket",
        "module.fallback.aws_sqs_queue.dlq": "module.dead_letter.aws_sqs_queue.dlq",
        "module.fallback.aws_sqs_queue_redrive_allow_policy.dlq": "module.dead_letter.aws_sqs_queue_redrive_allow_policy.dlq",  # noqa: E501 (an address table)
        "module.fallback.aws_sqs_queue_policy.dlq": "aws_sqs_queue_policy.dead_letter",
        "module.fallback.aws_sns_topic.fallback": "module.dead_letter.aws_sns_topic.fallback",
        "module.consumer.aws_sns_topic.failed_batch": "module.dead_letter.aws_sns_topic.failed_batch",
        "module.consumer.module.failed_batch_bucket": "module.dead_letter.module.failed_batch_bucket",
        # issue 8's shared idempotency table, first declared in modules/consumer, belongs to no single writer
        "module.consumer.aws_dynamodb_table.idempotency": "aws_dynamodb_table.idempotency",
        # issue 21's one status store: the recorder's executions table, now written by the workflow too
        "module.recorder[0].aws_dynamodb_table.executions": "module.executions.aws_dynamodb_table.this",
    }
