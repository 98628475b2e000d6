"""The contract hook (tests/contract.py) on the applied state machine: every task of an execution is
checked (config and input before it runs, output after), and a step whose output breaks its schema is
caught, naming the step, the kind and where."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import REGION
from tests.functional.workflow.test_state_machine import make_cnm


def test_every_task_of_a_successful_execution_is_checked(wf, contract_watch):
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)
    steps = ("start_status", "translate_message", "sync_granule", "cnm_response", "stop_status")
    assert contract_watch.checked == Counter({(s, k): 1 for s in steps for k in ("config", "input", "output")})
    assert contract_watch.violations == []


@pytest.mark.contract_break
def test_a_step_output_missing_a_required_field_is_caught(wf, contract_watch, monkeypatch):
    from handlers import translate_message

    real = translate_message.translate

    def forgets_the_granules(message, execution):
        out = real(message, execution)
        return {**out, "payload": {}}  # TranslateMessage's one job, undone

    monkeypatch.setattr(translate_message, "translate", forgets_the_granules)
    desc = wf.run(make_cnm(wf))
    # the step itself fails later (SyncGranule: no granules) and the workflow answers FAILURE ...
    assert desc["status"] == "FAILED", wf.explain(desc)
    # ... but the hook names the step that broke the contract first, then the next step's input
    first, then = contract_watch.violations
    assert first.startswith("translate_message output violates the workflow contract at $.payload")
    assert then.startswith("sync_granule input violates the workflow contract at $.payload")
    assert contract_watch.checked[("translate_message", "output")] == 1
    assert contract_watch.checked[("sync_granule", "output")] == 0  # it failed: no output to check


def test_an_event_that_is_not_a_states_parameters_is_counted_not_checked(wf, contract_watch):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    wf.world.run_tasks = True
    message = wf.message(make_cnm(wf))  # a bare workflow message: no execution.state names the step
    invoke = lambda_eval_utils._invoke_lambda_function  # what the interpreter calls: the hook's wrapper
    answer = invoke({"FunctionName": wf.world.function("start_status").arn, "Payload": json.dumps(message)}, REGION)
    assert "FunctionError" not in answer, answer
    assert contract_watch.skipped == 1
    assert sum(contract_watch.checked.values()) == 0


def test_under_enforce_a_step_breaking_its_contract_fails_and_is_answered_once(
    wf, contract_watch, monkeypatch, request, reference_schema
):
    """CONTRACT_VALIDATION=enforce (Terraform contract_validation) on every task: the broken output is
    a ContractError of TranslateMessage, caught and answered FAILURE once; nothing is staged."""
    from handlers import translate_message

    from cnm_ingest.workflow import contract_check
    from tests.functional.workflow.conftest import TASK_ROLES
    from tests.functional.workflow.test_state_machine import assert_failed

    for role in TASK_ROLES:
        wf.world.override(role, CONTRACT_VALIDATION="enforce")
    contract_check.mode.cache_clear()  # read once per process: the handlers run in this one
    request.addfinalizer(contract_check.mode.cache_clear)
    real = translate_message.translate
    monkeypatch.setattr(translate_message, "translate", lambda m, e: {**real(m, e), "payload": {}})
    staged = wf.s3.list_objects_v2(Bucket=wf.staging_bucket).get("Contents", [])
    desc = wf.run(make_cnm(wf))
    response = assert_failed(wf, desc, "PROCESSING_ERROR", reference_schema)
    assert (
        "translate_message output violates the workflow contract at $.payload" in response["response"]["errorMessage"]
    )
    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["original_error"]["Error"] == "ContractError"
    assert len(wf.calls["translate_message"]) == 1  # a ContractError is not retried
    assert wf.calls["sync_granule"] == []
    assert wf.s3.list_objects_v2(Bucket=wf.staging_bucket).get("Contents", []) == staged
    # the hook saw no output to check: the step failed (its input and config were checked, and valid)
    assert contract_watch.violations == []
    assert contract_watch.checked[("translate_message", "input")] == 1
    assert contract_watch.checked[("translate_message", "output")] == 0
