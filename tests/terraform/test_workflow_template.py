"""The ASL template as Terraform renders it (templatefile in modules/workflow)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.local_pipeline import TASKS, TEMPLATE, function_arn, render_definition

ROOT = Path(__file__).resolve().parents[2]
MAIN_TF = ROOT / "modules" / "workflow" / "main.tf"

# The locals of modules/workflow/main.tf that build the extra_states fragment, verbatim.
FRAGMENT_LOCALS = [
    "extra_states_json     = jsonencode(local.extra_states)",
    'extra_states_fragment = length(local.extra_states) == 0 ? "" : '
    '"${substr(local.extra_states_json, 1, length(local.extra_states_json) - 2)},"',
]


def test_template_placeholders_match_module_variables():
    placeholders = set(re.findall(r"\$\{(\w+)\}", TEMPLATE.read_text()))
    main = MAIN_TF.read_text()
    call = main[main.index("templatefile(") :]
    call = call[: call.index("})")]
    passed = set(re.findall(r"^\s*(\w+)\s*=", call, re.M))
    assert placeholders == passed
    for line in FRAGMENT_LOCALS:
        assert line in main


def test_template_states():
    definition = json.loads(render_definition())
    states = definition["States"]
    assert definition["StartAt"] == "StartStatus"
    chain = ["StartStatus", "TranslateMessage", "SyncGranule", "CnmResponse", "StopStatus", "CheckOutcome"]
    for a, b in zip(chain, chain[1:], strict=False):
        assert states[a]["Next"] == b
    for state in TASKS:
        assert states[state]["Resource"] == function_arn(state)
        *first, catch = states[state]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        if state == "CnmResponse":  # an answered FAILURE ends the workflow; anything else parks the response
            assert first == [{"ErrorEquals": ["WorkflowError"], "ResultPath": "$.exception", "Next": "StopStatus"}]
            assert (catch["ResultPath"], catch["Next"]) == ("$.response_exception", "ParkResponse")
        else:
            assert first == [] and catch["ResultPath"] == "$.exception"
            assert catch["Next"] == {"StopStatus": "WorkflowFailed"}.get(state, "CnmResponse")
        [retry] = states[state]["Retry"]
        assert "TransientError" in retry["ErrorEquals"] and "States.ALL" not in retry["ErrorEquals"]
        assert not {"CnmValidationError", "ChecksumMismatchError", "FileNotFoundAtSourceError"} & set(
            retry["ErrorEquals"]
        )
    park = states["ParkResponse"]
    assert park["Resource"] == function_arn("CnmResponse") and park["Parameters"]["park"] is True
    assert park["Next"] == "StopStatus" and park["Catch"][0]["Next"] == "StopStatus"
    assert "TransientError" in park["Retry"][0]["ErrorEquals"]
    assert states["WorkflowFailed"]["Type"] == "Fail"
    assert states["CheckOutcome"]["Choices"][0]["Next"] == "WorkflowFailed"


@pytest.mark.terraform
def test_terraform_renders_what_the_tests_run(tmp_path):
    """templatefile() + main.tf's fragment logic gives the definition the harness runs."""
    extra = {"DaacStep": {"Type": "Pass", "Next": "CnmResponse"}}
    values = {f"{m}_arn": f'"{function_arn(s)}"' for s, m in TASKS.items()}
    values.update(
        sync_retry_interval_seconds="7",
        sync_retry_max_attempts="2",
        response_retry_interval_seconds="7",
        response_retry_max_attempts="2",
        sync_next='"DaacStep"',
        extra_states="local.extra_states_fragment",
    )
    args = ", ".join(f"{k} = {v}" for k, v in values.items())
    (tmp_path / "main.tf").write_text(
        "locals {\n"
        f"  extra_states = jsondecode({json.dumps(json.dumps(extra))})\n  " + "\n  ".join(FRAGMENT_LOCALS) + "\n}\n"
        f'output "definition" {{ value = templatefile("{TEMPLATE}", {{ {args} }}) }}\n'
    )
    tf = [sys.executable, str(ROOT / "tools" / "tf.py"), f"-chdir={tmp_path}"]
    for cmd in (["init", "-backend=false", "-no-color"], ["apply", "-auto-approve", "-no-color"]):
        proc = subprocess.run([*tf, *cmd], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    out = subprocess.run([*tf, "output", "-raw", "definition"], capture_output=True, text=True, timeout=300)
    rendered = json.loads(out.stdout)
    expected = json.loads(
        render_definition(retry_interval=7, retry_attempts=2, extra_states=extra, extra_states_start_at="DaacStep")
    )
    assert rendered == expected
    assert rendered["States"]["SyncGranule"]["Next"] == "DaacStep"
    assert rendered["States"]["StartStatus"]["Parameters"]["execution"]["id.$"] == "$$.Execution.Id"
