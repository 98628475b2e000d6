"""modules/workflow and the execution alarms, statically (python-hcl2) and by evaluating the
alarm table with Terraform itself (no provider needed: only locals and variables)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cnm_ingest.workflow import cnm_response, payload
from tests.terraform.test_hcl import named, typed

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "modules" / "workflow"
ALARMS = ROOT / "modules" / "alarms"


def test_payload_prefixes_are_the_ones_python_writes():
    """The key prefixes come from the Python constants through build/manifest.json (build.py), never restated."""
    import build
    from cnm_ingest import dlq

    assert build.constants()["workflow_payload_key_prefix"] == payload.KEY_PREFIX
    assert build.constants()["response_key_prefix"] == dlq.RESPONSE_KEY_PREFIX
    source = Path(dlq.__file__).read_text()
    assert 'f"{RESPONSE_KEY_PREFIX}{' in source  # response_envelope's key
    root_locals = named(ROOT, "locals")
    assert root_locals["workflow_payload_key_prefix"] == "local.manifest.constants.workflow_payload_key_prefix"
    assert "local.workflow_payload_key_prefix" in root_locals["workflow_payload_objects_arn"]
    call = named(ROOT, "module")["workflow"]
    assert call["workflow_payload_objects_arn"] == "local.workflow_payload_objects_arn"
    assert "local.response_key_prefix" in call["response_payload_objects_arn"]
    for module in ("consumer", "fallback"):  # the consumers build (and may offload) the workflow message
        assert named(ROOT / "modules" / module, "variable")["workflow_payload_objects_arn"]
        assert named(ROOT, "module")[module]["workflow_payload_objects_arn"] == "local.workflow_payload_objects_arn"
        policy = json.dumps(typed(ROOT / "modules" / module, "data", "aws_iam_policy_document")["this"])
        assert "var.workflow_payload_objects_arn" in policy, module


def test_cnm_response_can_park_and_keep_idempotency_records():
    env = named(WORKFLOW, "locals")["environment"]["cnm_response"]
    for name in ("RESPONSE_STREAM_ARN", "IDEMPOTENCY_TABLE", "DLQ_URL"):
        assert re.search(rf"\b{name}\b", env), name
    assert "STATUS_TABLE" not in env and "EXECUTIONS_TABLE" not in env  # its once-markers left the status store
    doc = typed(WORKFLOW, "data", "aws_iam_policy_document")["cnm_response"]
    policy = json.dumps(doc)
    for action in ("sqs:SendMessage", "dynamodb:PutItem", "dynamodb:DeleteItem", "kinesis:PutRecord"):
        assert action in policy, action
    [records] = [s for s in doc["statement"] if s["sid"] == "IdempotencyRecords"]
    assert records["resources"] == ["var.idempotency_table_arn"]
    # its own records only, not the consumers' (cnm_ingest.workflow.cnm_response.KEY_PREFIX)
    assert records["condition"][0]["variable"] == "dynamodb:LeadingKeys"
    assert records["condition"][0]["values"] == [f"{cnm_response.KEY_PREFIX}*"]
    assert not typed(WORKFLOW, "resource", "aws_dynamodb_table")  # the status store is modules/executions
    root = named(ROOT, "module")["workflow"]
    assert root["idempotency_table_arn"] == "aws_dynamodb_table.idempotency.arn"
    table = typed(ROOT, "resource", "aws_dynamodb_table")["idempotency"]
    assert table["ttl"] == [{"attribute_name": "expiration", "enabled": True}]  # Powertools' expiry attribute
    assert cnm_response.CONFIG.expires_after_seconds >= 24 * 3600
    common = named(WORKFLOW, "locals")["common_environment"]
    assert "WORKFLOW_OFFLOAD_BYTES" in common and "PAYLOAD_BUCKET" in common
    assert named(ROOT, "variable")["workflow_offload_bytes"]["default"] == payload.DEFAULT_OFFLOAD_BYTES
    root = named(ROOT, "module")["workflow"]
    assert root["dlq_url"] == "module.dead_letter.dlq_url"
    assert root["payload_bucket_name"] == "module.dead_letter.payload_bucket_name"
    assert "WORKFLOW_OFFLOAD_BYTES" in json.dumps(named(ROOT, "locals")["routing_environment"])


def test_root_alarms_every_state_machine_it_starts():
    arns = named(ROOT, "module")["alarms"]["state_machine_arns"]
    assert "module.workflow.state_machine_arn" in arns and "var.alarm_state_machine_arns" in arns


def _block(text: str, start: int) -> str:
    """The ``{ ... }`` block whose opening brace is at or after ``start``."""
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[start : j + 1]
    raise ValueError("unbalanced braces")


@pytest.mark.terraform
def test_execution_alarms_for_every_state_machine(tmp_path):
    """Evaluate modules/alarms' alarm table (its locals and variables, verbatim) with Terraform."""
    main = (ALARMS / "main.tf").read_text()
    table = _block(main, main.index("locals {\n  # Step Functions execution metrics"))
    (tmp_path / "variables.tf").write_text((ALARMS / "variables.tf").read_text())
    (tmp_path / "main.tf").write_text(table + '\noutput "alarms" { value = local.alarms }\n')
    arns = {
        "cnm_workflow": "arn:aws:states:us-west-2:123456789012:stateMachine:p-cnm-workflow",
        "daac_reprocess": "arn:aws:states:us-west-2:123456789012:stateMachine:daac",
    }
    tf = [sys.executable, str(ROOT / "tools" / "tf.py"), f"-chdir={tmp_path}"]
    args = [
        "-var",
        "prefix=p",
        "-var",
        "notification_stream_name=s",
        "-var",
        "dlq_name=q",
        "-var",
        f"state_machine_arns={json.dumps(arns)}",
    ]
    for cmd in (["init", "-backend=false", "-no-color"], ["apply", "-auto-approve", "-no-color", *args]):
        proc = subprocess.run([*tf, *cmd], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    out = subprocess.run([*tf, "output", "-json", "alarms"], capture_output=True, text=True, timeout=300)
    alarms = json.loads(out.stdout)
    for key, arn in arns.items():
        for metric, suffix in (
            ("ExecutionsFailed", "executions-failed"),
            ("ExecutionsTimedOut", "executions-timed-out"),
            ("ExecutionsAborted", "executions-aborted"),
        ):
            alarm = alarms[f"{key.replace('_', '-')}-{suffix}"]
            assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == ("AWS/States", metric, "Sum")
            assert alarm["dimensions"] == {"StateMachineArn": arn}
            assert alarm["threshold"] == 0 and alarm["periods"] == 1  # the first failed execution fires it
    assert len([k for k in alarms if "executions-" in k]) == 6
