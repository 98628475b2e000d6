"""`cnm-ingest redrive-execution` on the local AWS (localaws patch 13: RedriveExecution): a FAILED, TIMED_OUT or
ABORTED execution of the stack's state machine restarts from the state that failed; anything else is refused
with the reason and exit 6; twice and at once, each redrive is one Step Functions redrive."""

from __future__ import annotations

import datetime
import json
import threading
import time
import uuid

import pytest
from cnm_ingest_cli import ops
from cnm_ingest_cli.stack import Stack

from cnm_ingest import aws
from localaws.server import REGION
from tests.cli_runner import Cli

PASS_THEN_FAIL = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "F"},
        "F": {"Type": "Fail", "Error": "Boom", "Cause": "the provider's file is gone"},
    },
}


@pytest.fixture
def stack(local_aws, client, monkeypatch):
    """A stack prefix whose state machine ``<prefix>-cnm-workflow`` exists (fails in its second state), and the
    CLI and this process pointed at the local AWS."""
    prefix = f"cnm-rd{uuid.uuid4().hex[:6]}"
    role = client("iam").create_role(RoleName=f"{prefix}-sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = client("stepfunctions").create_state_machine(
        name=f"{prefix}-cnm-workflow", definition=json.dumps(PASS_THEN_FAIL), roleArn=role
    )["stateMachineArn"]
    env = {
        "AWS_ENDPOINT_URL": local_aws.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_PROFILE": None,
    }
    for k, v in env.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    aws.reset(session=True)
    return {"prefix": prefix, "machine": machine, "role": role, "cli": Cli("--prefix", prefix, env=env)}


def _run(client, machine: str, name: str) -> str:
    return client("stepfunctions").start_execution(stateMachineArn=machine, name=name, input='{"k": "é#?"}')[
        "executionArn"
    ]


def _wait(client, arn: str, *statuses: str) -> dict:
    sfn = client("stepfunctions")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = sfn.describe_execution(executionArn=arn)
        if found["status"] in statuses:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{arn}: {found['status']}")


def _entered(client, arn: str) -> list[str]:
    events = client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def test_a_failed_execution_is_redriven_from_the_failed_state_each_time_asked(stack, client):
    arn = _run(client, stack["machine"], "g1")
    _wait(client, arn, "FAILED")
    done = stack["cli"].json("redrive-execution", "g1")  # by name
    assert (done["execution_arn"], done["status_before"], done["error_before"], done["redrive_count"]) == (
        arn,
        "FAILED",
        "Boom",
        1,
    )
    after = _wait(client, arn, "FAILED")
    assert after["redriveCount"] == 1 and _entered(client, arn) == ["F"]  # not from the start
    text = stack["cli"]("redrive-execution", arn).stdout  # by ARN, and again: a second redrive, counted
    assert "redrove g1 (FAILED: Boom), redrive 2 at " in text
    assert _wait(client, arn, "FAILED")["redriveCount"] == 2


def test_what_cannot_be_redriven_is_refused_with_the_reason(stack, client):
    sfn = client("stepfunctions")
    ok = sfn.create_state_machine(
        name=f"{stack['prefix']}-ok",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=stack["role"],
    )["stateMachineArn"]
    succeeded = _run(client, ok, "s1")
    _wait(client, succeeded, "SUCCEEDED")
    out = stack["cli"]("redrive-execution", succeeded, code=6).output
    assert "is SUCCEEDED: nothing failed" in out
    err = json.loads(stack["cli"]("redrive-execution", succeeded, "--json", code=6).stderr)
    assert (err["error"], err["exit_code"]) == ("RefusedInput", 6)
    assert "no execution 'nope'" in stack["cli"]("redrive-execution", "nope", code=5).output
    assert "Missing argument" in stack["cli"]("redrive-execution", code=2).output
    assert "which stack" in Cli(env=stack["cli"].env)("redrive-execution", "g1", code=3).output

    old = _run(client, stack["machine"], "old")
    _wait(client, old, "FAILED")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=15)
    with pytest.raises(Exception, match=r"more than 14 days ago.*cnm-ingest reingest old"):
        ops.redrive_execution(Stack.from_prefix(stack["prefix"]), old, now=later)
    assert client("stepfunctions").describe_execution(executionArn=old)["redriveCount"] == 0


def test_two_redrives_at_once_restart_it_once_and_a_running_one_is_refused(stack, client):
    sfn = client("stepfunctions")
    slow = sfn.create_state_machine(
        name=f"{stack['prefix']}-slow",
        definition=json.dumps(
            {
                "StartAt": "P",
                "States": {"P": {"Type": "Pass", "Next": "W"}, "W": {"Type": "Wait", "Seconds": 60, "End": True}},
            }
        ),
        roleArn=stack["role"],
    )["stateMachineArn"]
    arn = _run(client, slow, "w1")
    assert "is RUNNING: it is still running" in stack["cli"]("redrive-execution", arn, code=6).output
    sfn.stop_execution(executionArn=arn)
    _wait(client, arn, "ABORTED")
    target = Stack.from_prefix(stack["prefix"])
    go, done, refused = threading.Barrier(2), [], []

    def redrive() -> None:
        go.wait()
        try:
            done.append(ops.redrive_execution(target, arn))
        except Exception as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=redrive) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 1 and len(refused) == 1, (done, refused)
    assert "RUNNING" in refused[0]
    running = sfn.describe_execution(executionArn=arn)
    assert (running["status"], running["redriveCount"]) == ("RUNNING", 1)
    assert _entered(client, arn) == ["W"]  # restarted in the Wait state it was aborted in
    sfn.stop_execution(executionArn=arn)
    _wait(client, arn, "ABORTED")
