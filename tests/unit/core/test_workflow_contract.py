"""The workflow contract as data: one schema per Task state and kind, generated code and docs current.

``lambda_src/cnm_ingest/workflow/schemas/<step>/{input,config,output}.json`` are the source;
``tools/gen_contract.py`` writes ``workflow/contract.py`` (TypedDicts),
``workflow/contract_validators.py`` (fastjsonschema's compiled validators) and renders the message
section of docs/INTERFACES.md (tools/gen_docs.py writes it). ``contract_check`` validates and, under
``CONTRACT_VALIDATION``, ``cnm_ingest.workflow.task.run`` checks each step at run time.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import subprocess
import sys
from typing import Any, get_type_hints

import fastjsonschema
import jsonschema
import pytest

from cnm_ingest.errors import ConfigurationError, ContractError
from cnm_ingest.workflow import contract, contract_check, payload, task, translate_message
from tests.conftest import ROOT
from tools import gen_contract

TEMPLATE = ROOT / "modules" / "workflow" / "templates" / "cnm_workflow.asl.json.tftpl"
EVENT = ROOT / "tests" / "events" / "workflow_translate_message_task.json"
SHA = "0" * 64


def template_states() -> dict[str, Any]:
    """The state machine template's states (its ``${...}`` placeholders replaced by JSON values)."""
    text = TEMPLATE.read_text(encoding="utf-8").replace("${extra_states}", "")
    text = re.sub(r'"\$\{[a-z_]+\}"', '"x"', text)
    text = re.sub(r"\$\{[a-z_]+\}", "1", text)
    states: dict[str, Any] = json.loads(text)["States"]
    return states


def task_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENT.read_text(encoding="utf-8"))
    return event


def as_state(event: dict[str, Any], state: str) -> dict[str, Any]:
    return {**copy.deepcopy(event), "execution": {**event["execution"], "state": state}}


def translated(event: dict[str, Any]) -> dict[str, Any]:
    """What TranslateMessage returns for the event's message (the pure part of the step)."""
    message = event["message"]
    granules = translate_message.translate(message["meta"]["cnm"], message["meta"]["collection"], {})
    return payload.set_part(message, "payload", "granules", granules)


# --- generated, current, complete ----------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(gen_contract.outputs(), key=str), ids=lambda p: p.name)
def test_the_generated_files_are_what_the_schemas_give(path):
    assert path.read_text(encoding="utf-8") == gen_contract.outputs()[path], "run: python tools/gen_contract.py"


def test_the_message_section_of_interfaces_is_what_the_schemas_give():
    text = gen_contract.INTERFACES.read_text(encoding="utf-8")
    found = re.search(r"<!-- BEGIN workflow-contract[^>]*-->\n(.*?)\n<!-- END workflow-contract -->", text, re.S)
    assert found, "docs/INTERFACES.md has no generated workflow-contract section"
    assert found.group(1) == gen_contract.markdown(), "run: python tools/gen_docs.py"
    for step, state in contract.STATES.items():
        assert f"| {state} (`{step}`) |" in found.group(1)
    for field in ("`payload.granules[].files[].checksum`", "`meta.cnm_ref`", "`execution.state`", "`exception`"):
        assert field in found.group(1)


def test_the_check_mode_of_the_generator_agrees():
    done = subprocess.run([sys.executable, "tools/gen_contract.py", "--check"], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stdout


def test_every_task_state_of_the_state_machine_has_its_three_schemas_and_no_other():
    tasks = {name for name, state in template_states().items() if state["Type"] == "Task"}
    assert tasks == set(contract.STATES.values())
    on_disk = {p.parent.name for p in gen_contract.SCHEMAS.glob("*/*.json")}
    assert on_disk == set(contract.STEPS)
    for step in contract.STEPS:
        assert sorted(p.stem for p in (gen_contract.SCHEMAS / step).glob("*.json")) == sorted(contract.KINDS)
    from cnm_ingest.workflow.contract_validators import FACTORIES

    assert set(FACTORIES) == {(s, k) for s in contract.STEPS for k in contract.KINDS}


def test_each_schema_is_a_valid_draft_07_schema_and_compiles():
    for step, kind, body in gen_contract.schemas():
        assert body["$schema"] == "http://json-schema.org/draft-07/schema#", (step, kind)
        jsonschema.Draft7Validator.check_schema(body)
        fastjsonschema.compile(body)


def test_a_definition_means_the_same_in_every_schema_that_has_it():
    """Each schema stands alone (as Cumulus's task schemas do); a shared name has one meaning."""
    seen: dict[str, Any] = {}
    for step, kind, body in gen_contract.schemas():
        for name, definition in body.get("definitions", {}).items():
            assert seen.setdefault(name, definition) == definition, f"{step}/{kind}: definitions.{name} differs"
    assert {"caught_error", "part_ref", "meta", "granule", "staged_granule", "execution"} <= set(seen)


def test_the_config_schema_is_what_each_state_passes_in_parameters():
    for name, state in template_states().items():
        if state["Type"] != "Task":
            continue
        step = contract_check.STEP_OF_STATE[name]
        params = state["Parameters"]
        config = json.loads((gen_contract.SCHEMAS / step / "config.json").read_text())
        passed = {k.removesuffix(".$") for k in params}
        assert passed == set(config["required"]), name
        assert {k.removesuffix(".$") for k in params["execution"]} == set(
            config["definitions"]["execution"]["required"]
        ), name


def test_the_typed_dicts_name_what_the_schemas_require():
    hints = get_type_hints(contract.SyncGranuleOutput, include_extras=True)
    assert set(hints) >= {"cumulus_meta", "meta", "payload", "exception"}
    assert contract.SyncGranuleOutput.__required_keys__ == {"cumulus_meta", "meta", "payload"}
    assert contract.StagedFile.__required_keys__ >= {"bucket", "key", "size", "checksum", "source"}
    assert contract.ParkResponseConfig.__required_keys__ == {"message", "execution", "park"}
    assert "park" in contract.CnmResponseConfig.__optional_keys__


# --- validate ------------------------------------------------------------------------------------


def test_the_consumers_message_and_the_translated_one_conform():
    event = task_event()
    contract_check.validate("translate_message", "config", event)
    contract_check.validate("start_status", "input", event["message"])
    contract_check.validate("translate_message", "input", event["message"])
    out = translated(event)
    contract_check.validate("translate_message", "output", out)
    contract_check.validate("sync_granule", "input", out)
    with pytest.raises(ContractError, match=r"sync_granule output .* at \$\.payload\.granules\[0\]"):
        contract_check.validate("sync_granule", "output", out)  # not staged yet: no sync_completed


@pytest.mark.parametrize(
    ("step", "kind", "breaks", "path"),
    [
        ("translate_message", "output", lambda m: m["payload"].pop("granules"), r"\$\.payload"),
        ("translate_message", "output", lambda m: m["payload"]["granules"][0].pop("granuleId"), r"granules\[0\]"),
        ("translate_message", "output", lambda m: m["payload"]["granules"][0]["files"].clear(), r"files"),
        ("translate_message", "input", lambda m: m["meta"].pop("cnm"), r"\$\.meta"),
        ("translate_message", "input", lambda m: m.pop("cumulus_meta"), r"\$"),
        # a stored part whose key is not workflow/<sha256>: '..', '#', '?' and another bucket's object
        ("translate_message", "input", lambda m: m["meta"].update(cnm_ref=ref("workflow/../x")), r"cnm_ref\.key"),
        ("translate_message", "input", lambda m: m["meta"].update(cnm_ref=ref(f"workflow/{SHA}#x")), r"cnm_ref"),
        ("translate_message", "input", lambda m: m["meta"].update(cnm_ref=ref(f"workflow/{SHA}?x")), r"cnm_ref"),
        ("translate_message", "input", lambda m: m["meta"].update(cnm_ref={**ref(), "size": -1}), r"cnm_ref\.size"),
        ("translate_message", "input", lambda m: m["meta"].update(cnm_ref={**ref(), "size": True}), r"size"),
        ("sync_granule", "input", lambda m: m["meta"]["collection"].update(duplicate_handling="x"), r"collection"),
        ("sync_granule", "input", lambda m: m["meta"]["buckets"]["private"].pop("name"), r"buckets\.private"),
        ("park_response", "input", lambda m: m.pop("response_exception"), r"\$"),
        ("park_response", "output", lambda m: m.update(response_parked=True), r"\$"),
        ("cnm_response", "output", lambda m: m.update(exception={"Error": "E", "Cause": "c"}), r"\$"),
        ("cnm_response", "input", lambda m: m["payload"].pop("granules"), r"\$"),
        ("stop_status", "input", lambda m: m.update(exception={"Error": "E"}), r"exception"),
    ],
)
def test_a_message_outside_the_contract_is_a_contract_error_naming_where(step, kind, breaks, path):
    message = translated(task_event())
    message["response_exception"] = {"Error": "States.Timeout", "Cause": "x"}
    if kind == "output" and step != "park_response":
        message.pop("response_exception")
    if step == "cnm_response" and kind == "output":
        message["meta"]["cnm_response"] = {"identifier": "i", "response": {"status": "SUCCESS"}}
    if step == "park_response" and kind == "output":
        message.pop("response_exception")
    contract_check.validate(step, kind, message)  # valid before the break
    breaks(message)
    with pytest.raises(ContractError, match=path) as caught:
        contract_check.validate(step, kind, message)
    assert caught.value.step == step and caught.value.kind == kind
    assert ContractError.error_code == "PROCESSING_ERROR"


def ref(key: str = f"workflow/{SHA}") -> dict[str, Any]:
    return {"bucket": "payload", "key": key, "size": 10, "sha256": SHA}


@pytest.mark.parametrize(
    "message",
    [None, [], "text", 7, {"meta": "x"}, {"\ud800": 1}, {"cumulus_meta": {"execution_name": "é" * 10_000}}],
    ids=["null", "list", "text", "number", "meta-text", "surrogate-key", "huge-unicode"],
)
def test_hostile_values_are_contract_errors_not_crashes(message):
    with pytest.raises(ContractError):
        contract_check.validate("start_status", "input", message)


def test_deep_nesting_in_an_open_part_is_allowed_and_does_not_recurse():
    message = task_event()["message"]
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    message["meta"]["rule"]["meta"] = deep  # the rule's meta is open: never walked
    contract_check.validate("start_status", "input", message)


def test_unknown_steps_and_kinds_are_refused():
    with pytest.raises(ValueError, match="no workflow contract"):
        contract_check.validate("Extra", "input", {})
    with pytest.raises(ValueError, match="no workflow contract"):
        contract_check.validate("sync_granule", "schema", {})


def test_the_step_is_known_by_the_state_name_the_parameters_pass():
    event = task_event()
    assert contract_check.step_of(event) == "translate_message"
    assert contract_check.step_of(as_state(event, "ParkResponse")) == "park_response"
    assert contract_check.step_of(as_state(event, "DaacExtraState")) is None
    assert contract_check.step_of(event["message"]) is None  # a bare message (direct invocation)
    assert contract_check.step_of({"message": "x", "execution": {"state": "SyncGranule"}}) is None


# --- at run time, under CONTRACT_VALIDATION ------------------------------------------------------


@pytest.fixture
def contract_mode(monkeypatch):
    def set_mode(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("CONTRACT_VALIDATION", raising=False)
        else:
            monkeypatch.setenv("CONTRACT_VALIDATION", value)
        contract_check.mode.cache_clear()

    yield set_mode
    contract_check.mode.cache_clear()


def dropping_granules(message: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
    """A TranslateMessage that forgets its one job."""
    return {**message, "payload": {}}


def test_off_by_default_nothing_is_checked(contract_mode):
    contract_mode(None)
    assert contract_check.mode() == "off"
    assert task.run(task_event(), dropping_granules)["payload"] == {}


def test_enforce_raises_on_a_step_output_missing_a_required_field(contract_mode):
    contract_mode("enforce")
    with pytest.raises(ContractError, match=r"translate_message output .* at \$\.payload"):
        task.run(task_event(), dropping_granules)
    assert task.run(task_event(), lambda m, e: translated({"message": m}))["payload"]["granules"]


def test_enforce_checks_the_input_before_the_step_runs(contract_mode):
    contract_mode("enforce")
    event = task_event()
    del event["message"]["meta"]["provider"]
    ran = []
    with pytest.raises(ContractError, match=r"translate_message input"):
        task.run(event, lambda m, e: ran.append(m) or m)
    assert ran == []
    with pytest.raises(ContractError, match=r"translate_message config"):
        task.run({**task_event(), "extra": 1}, lambda m, e: ran.append(m) or m)
    assert ran == []


def test_warn_logs_and_goes_on(contract_mode, caplog):
    contract_mode("WARN")
    with caplog.at_level(logging.WARNING, logger=contract_check.__name__):
        out = task.run(task_event(), dropping_granules)
    assert out["payload"] == {}
    [record] = [r for r in caplog.records if "contract" in r.getMessage()]
    assert "translate_message output" in record.getMessage()


def test_enforce_leaves_a_bare_message_and_an_extra_state_alone(contract_mode):
    contract_mode("enforce")
    assert task.run(task_event()["message"], dropping_granules)["payload"] == {}
    assert task.run(as_state(task_event(), "DaacExtraState"), dropping_granules)["payload"] == {}


def test_an_unknown_mode_is_a_configuration_error(contract_mode):
    contract_mode("strict")
    with pytest.raises(ConfigurationError, match="CONTRACT_VALIDATION"):
        task.run(task_event(), dropping_granules)


# --- the tests' hook (tests/contract.py) ---------------------------------------------------------


def test_the_hook_checks_config_and_input_before_and_output_after_and_counts_duplicates():
    from tests.contract import ContractWatch

    watch = ContractWatch()
    event = task_event()
    answers = [
        {"StatusCode": 200, "Payload": json.dumps(translated(event))},
        {"StatusCode": 200, "Payload": {**event["message"], "payload": {}}},  # granules forgotten
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": {"errorType": "E"}},  # no output
    ]
    calls = []

    def invoker(parameters, region, state_credentials=None):
        calls.append(parameters)
        return answers[len(calls) - 1]

    checked = watch.wrap(invoker)
    assert watch.wrap(checked) is checked  # wrapped once
    for _ in answers:
        checked({"FunctionName": "f", "Payload": json.dumps(event)}, "us-west-2")
    assert len(calls) == 3
    assert watch.checked == {
        ("translate_message", "config"): 3,
        ("translate_message", "input"): 3,
        ("translate_message", "output"): 2,
    }
    [violation] = watch.violations
    assert violation.startswith("translate_message output violates the workflow contract at $.payload")
    answers.append(answers[1])
    checked({"FunctionName": "f", "Payload": event["message"]}, "us-west-2")  # a bare message: not checked
    assert watch.skipped == 1 and watch.totals == {"checks": 8, "violations": 1, "skipped": 1}
