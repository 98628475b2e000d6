"""The functional tier's world (tests/worlds.py): a deployed function's handler in-process sees exactly
its deployed environment, and Step Functions tasks run the deployed functions in-process only when
the test asks for it."""

from __future__ import annotations

import json
import os

import pytest

from localaws import pipeline
from tests.conftest import REGION
from tests.functional.ingest.conftest import Notifications


def test_a_function_sees_only_its_own_deployed_variables(complete_world):
    consumer = complete_world.environment("message_consumer")
    hydrate = complete_world.environment("hydrate")
    only_hydrate = set(hydrate) - set(consumer)
    assert only_hydrate  # the functions' environments differ (each module sets its own)
    with complete_world.env("message_consumer"):
        assert {k: os.environ[k] for k in consumer} == consumer
        assert not only_hydrate & set(os.environ)  # another function's variable is unset, as on AWS
        assert os.environ["AWS_ENDPOINT_URL"] == complete_world.endpoint
    with complete_world.env("hydrate", GET_RECORDS_LIMIT="3", DLQ_URL=None):
        assert os.environ["GET_RECORDS_LIMIT"] == "3" and "DLQ_URL" not in os.environ
    assert not only_hydrate & set(os.environ)  # restored on exit


def test_a_variable_the_module_does_not_set_fails_as_on_aws(complete_world):
    """hydrate reads the DLQ from DLQ_URL; deployed without it, the handler fails, as it would on AWS
    (the variable is not inherited from the test process or another function's environment)."""
    from tests.events import kinesis_failure_record, sns_event

    failure = kinesis_failure_record(complete_world.stream("notifications"), "1", "2", 2)
    assert "DLQ_URL" in complete_world.environment("message_consumer")  # another function has it
    with pytest.raises(RuntimeError, match="DLQ_URL is not set"):
        complete_world.invoke("hydrate", sns_event(json.dumps(failure)), DLQ_URL=None)


def test_workflow_tasks_are_refused_unless_asked_then_run_in_process(complete_world):
    world = complete_world
    (swot,) = [p for p in world.items("providers") if p["id"] == "PODAAC_SWOT"]
    bucket = json.loads(swot["config"])["host"]  # the provider's bucket, as applied
    records = pipeline.generated_traffic(2, bucket)
    pipeline.stage_files(world.client("s3"), records, REGION)
    notes = Notifications(world)

    # by default a task answers TaskNotRun at once: the execution ends, nothing ran
    world.invoke("message_consumer", notes.put([records[0].payload]))
    (first,) = world.executions()
    assert world.wait(first["executionArn"])["status"] == "FAILED"
    assert world.task_calls and {role for role, _ in world.task_calls} <= {
        "start_status",
        "translate_message",
        "sync_granule",
        "cnm_response",
        "stop_status",
    }
    assert world.responses() == []  # no task ran, so no answer

    # asked: each task runs the deployed function's handler in-process; the granule is ingested
    world.task_calls.clear()
    world.run_tasks = True
    world.invoke("message_consumer", notes.put([records[1].payload]))
    (second,) = [e for e in world.executions() if e["executionArn"] != first["executionArn"]]
    assert world.wait(second["executionArn"])["status"] == "SUCCEEDED"
    roles = [role for role, _ in world.task_calls]
    assert roles[0] == "start_status" and "sync_granule" in roles and roles[-1] == "stop_status"
    answers = [r for r in world.responses() if r["identifier"] == records[1].identifier]
    assert [a["response"]["status"] for a in answers] == ["SUCCESS"]
