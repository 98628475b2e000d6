"""Every workflow task the tests run through a state machine is checked against the workflow contract.

Each Lambda Task of moto's Step Functions interpreter goes through the invoker that
``localaws.server.set_lambda_invoker`` installs: the in-process one of the applied-stack tiers
(``tests.worlds.World.lambda_task``) or the localaws runtime's (``Runtime._sfn_invoke``, e2e and
pipeline tests). This plugin wraps whichever invoker is installed: the task event (``config``) and
its message (``input``) are checked before the task runs, and what it returns (``output``) after,
unless the task failed (a failed task has no output: the state's Catch takes over). The checks are
the product's own (:func:`cnm_ingest.workflow.contract_check.validate`, the generated validators);
localaws stays free of the product.

A violation fails the test that was running, after its body (the hook below), naming the step, the
kind and the path. Invocations whose state is not one of ours (a DAAC's extra state) or whose event
is not the state's Parameters (a test invoking a function directly) are not checked: they are
counted as ``skipped``. A test that feeds a step a message outside the contract on purpose says so
with ``@pytest.mark.contract_break``: it then fails unless a violation WAS seen.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Invoker = Callable[..., dict[str, Any]]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes, bytearray)) else value


class ContractWatch:
    """The contract checks of every task invocation, counted without collapsing duplicates."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.checked: Counter[tuple[str, str]] = Counter()
        self.skipped = 0
        self.totals: Counter[str] = Counter()  # the whole session: checks, violations, skipped
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.violations.clear()
            self.checked.clear()
            self.skipped = 0

    def _check(self, step: str, kind: str, message: Any) -> None:
        from cnm_ingest.errors import ContractError
        from cnm_ingest.workflow import contract_check

        try:
            contract_check.validate(step, kind, message)
        except ContractError as exc:
            with self._lock:
                self.violations.append(str(exc)[:2000])
                self.totals["violations"] += 1
        with self._lock:
            self.checked[(step, kind)] += 1
            self.totals["checks"] += 1

    def wrap(self, invoker: Invoker) -> Invoker:
        """``invoker`` with the contract checked around each call (the Lambda Invoke API's shape)."""
        if getattr(invoker, "contract_watch", None) is self:
            return invoker

        def checked(parameters: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
            from cnm_ingest.workflow import contract_check

            event = _json(parameters.get("Payload"))
            step = contract_check.step_of(event)
            if step is None:
                with self._lock:
                    self.skipped += 1
                    self.totals["skipped"] += 1
                return invoker(parameters, *args, **kwargs)
            self._check(step, "config", event)
            self._check(step, "input", event["message"])
            answer = invoker(parameters, *args, **kwargs)
            if not answer.get("FunctionError"):
                self._check(step, "output", _json(answer.get("Payload")))
            return answer

        checked.contract_watch = self  # type: ignore[attr-defined]
        checked.wrapped = invoker  # type: ignore[attr-defined]
        return checked


WATCH = ContractWatch()


def install(watch: ContractWatch = WATCH) -> None:
    """Make ``localaws.server.set_lambda_invoker`` install every invoker wrapped by ``watch`` (once)."""
    from localaws import server

    original = getattr(server.set_lambda_invoker, "unwrapped", server.set_lambda_invoker)

    def set_lambda_invoker(invoker: Invoker | None) -> None:
        original(watch.wrap(invoker) if invoker is not None else None)

    set_lambda_invoker.unwrapped = original  # type: ignore[attr-defined]
    server.set_lambda_invoker = set_lambda_invoker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "contract_break: the test sends a workflow step a message outside its contract on purpose"
    )
    install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    WATCH.reset()
    yield  # a failing test body raises here, and keeps its own failure
    seen = list(WATCH.violations)
    if item.get_closest_marker("contract_break") is not None:
        assert seen, "contract_break: no workflow step saw a message outside its contract"
        return
    if seen:
        shown = "\n  ".join(seen[:10])
        raise AssertionError(f"{len(seen)} workflow contract violation(s) (tests/contract.py):\n  {shown}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if WATCH.totals:
        totals = WATCH.totals
        terminalreporter.write_line(
            f"workflow contract: {totals['checks']} checks, {totals['violations']} violations, "
            f"{totals['skipped']} task invocations not checked (not a state's Parameters)"
        )


@pytest.fixture
def contract_watch() -> ContractWatch:
    """The watch of this test's task invocations (violations, checks per (step, kind), skipped)."""
    return WATCH
