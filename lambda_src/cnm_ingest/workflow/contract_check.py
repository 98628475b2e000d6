"""Checking a workflow step's message against its contract (``schemas/<step>/{input,config,output}.json``).

:func:`validate` checks one message with the step's compiled validator
(``contract_validators``, written by ``tools/gen_contract.py``) and raises
:class:`~cnm_ingest.errors.ContractError`. At run time the task wrapper
(:func:`cnm_ingest.workflow.task.run`) checks each step's task event and input before
the step and its output after it when ``CONTRACT_VALIDATION`` (read once per
process) is ``warn`` (log the violation, go on) or ``enforce`` (raise it: the
state's Catch answers FAILURE); ``off`` (the default) checks nothing and never
imports the validators. A step is known by the state name its ``Parameters``
pass (``execution.state``); a task invoked with a bare message, or by a state
that is not one of ours (a DAAC's extra state), is not checked.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from cnm_ingest.errors import ConfigurationError, ContractError
from cnm_ingest.workflow.contract import KINDS, STATES

MODES = ("off", "warn", "enforce")
STEP_OF_STATE = {state: step for step, state in STATES.items()}
# SyncGranule stopped at its deadline: its message goes back to SyncGranule (the SyncGranuleContinues Choice),
# so it is checked as SyncGranule's input, not as its output (cnm_ingest.workflow.sync_granule.Continuation).
CONTINUATION = "sync_continuation"
log = logging.getLogger(__name__)


@functools.cache
def _validator(step: str, kind: str) -> Callable[[Any], Any]:
    """The compiled validator of ``step``'s ``kind``, built on first use (once per process)."""
    from cnm_ingest.workflow.contract_validators import FACTORIES

    return FACTORIES[(step, kind)]()


def validate(step: str, kind: str, message: Any) -> Any:
    """``message`` when it conforms to ``step``'s ``kind`` schema; :class:`ContractError` otherwise."""
    if step not in STATES or kind not in KINDS:
        raise ValueError(f"no workflow contract for {step!r} {kind!r}: steps {sorted(STATES)}, kinds {KINDS}")
    if (step, kind) == ("sync_granule", "output") and isinstance(message, dict):
        kind = "input" if CONTINUATION in (message.get("meta") or {}) else kind
    try:
        _validator(step, kind)(message)
    except Exception as exc:
        from fastjsonschema import JsonSchemaValueException  # imported already, by the validators

        if not isinstance(exc, JsonSchemaValueException):
            raise
        where = "$" + str(exc.name or "data").removeprefix("data")
        raise ContractError(step, kind, str(exc.message), where) from None
    return message


def step_of(event: Any) -> str | None:
    """The step a task event is for (``execution.state`` as the state's Parameters pass it), else None."""
    execution = event.get("execution") if isinstance(event, dict) and isinstance(event.get("message"), dict) else None
    state = execution.get("state") if isinstance(execution, dict) else None
    return STEP_OF_STATE.get(state) if isinstance(state, str) else None


@functools.cache
def mode() -> str:
    """``CONTRACT_VALIDATION``: off (default), warn or enforce; read once per process."""
    value = (os.environ.get("CONTRACT_VALIDATION") or "off").strip().lower()
    if value not in MODES:
        raise ConfigurationError(f"CONTRACT_VALIDATION must be one of {MODES}, not {value!r}")
    return value


def check(step: str | None, kind: str, message: Any) -> None:
    """The run-time check of :func:`cnm_ingest.workflow.task.run`: nothing when off or for an unknown step."""
    if step is None or mode() == "off":
        return
    try:
        validate(step, kind, message)
    except ContractError as exc:
        if mode() == "enforce":
            raise
        log.warning("workflow contract violated: %s", exc)
