"""Fixtures for the recorder: the executions table of the applied examples/complete (restored before each
test; tests/worlds.py), the deployed recorder run in-process, and status-change events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.events import status_change_event

TABLE = "test-executions"
SM = "arn:aws:states:us-west-2:123456789012:stateMachine:test-cnm-workflow"


def arn(name: str) -> str:
    return SM.replace(":stateMachine:", ":execution:") + f":{name}"


def workflow_input(
    identifier: str = "granule-1",
    collection: str = "COLL",
    version: str = "1",
    provider: str = "PROV",
    rule: str = "coll-rule",
    sequence: str = "495901",
) -> str:
    cnm = {
        "version": "1.6.1",
        "provider": provider,
        "collection": {"name": collection, "version": version},
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": identifier,
        "product": {
            "name": identifier,
            "files": [{"type": "data", "uri": f"s3://prov/{identifier}.nc", "name": f"{identifier}.nc", "size": 1}],
        },
    }
    return json.dumps(
        {
            "cumulus_meta": {
                "state_machine": SM,
                "execution_name": "x",
                "message_source": "kinesis",
                "source": {
                    "stream_arn": "arn:aws:kinesis:us-west-2:123456789012:stream/n",
                    "shard_id": "shardId-000000000000",
                    "sequence_number": sequence,
                    "partition_key": identifier,
                },
            },
            "meta": {
                "stack": "test",
                "collection": {"name": collection, "version": version, "config": {}},
                "provider": {"id": provider, "config": {}},
                "rule": {"name": rule, "meta": {}},
                "cnm": cnm,
            },
            "payload": {"cnm": cnm, "files": cnm["product"]["files"]},
        }
    )


def event(
    name: str,
    status: str,
    *,
    start: int = 1_700_000_000_000,
    stop: int | None = None,
    input: Any = "default",
    error: Any = None,
    cause: Any = None,
    redrive: int = 0,
    **detail: Any,
) -> dict:
    if input == "default":
        input = workflow_input()
    if status != "RUNNING" and stop is None:
        stop = start + 5_000
    d = {
        "executionArn": arn(name),
        "stateMachineArn": SM,
        "name": name,
        "status": status,
        "startDate": start,
        "stopDate": stop if status != "RUNNING" else None,
        "input": input,
        "inputDetails": {"included": True},
        "output": None,
        "error": error,
        "cause": cause,
        "redriveCount": redrive,
        **detail,
    }
    return status_change_event(**d)


@pytest.fixture
def table(complete_world) -> str:
    """The applied executions table, with os.environ as the deployed recorder's for the rest of the test."""
    return complete_world.use("recorder")["EXECUTIONS_TABLE"]


def scan(table_name: str) -> list[dict[str, Any]]:
    from cnm_ingest import aws as aws_mod
    from cnm_ingest import executions

    return [executions.plain(i) for i in aws_mod.client("dynamodb").scan(TableName=table_name)["Items"]]
