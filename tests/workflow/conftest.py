"""Harness: run the real rendered state machine in moto's Step Functions
interpreter, with each Lambda task dispatched in-process to our handler.

moto 5.2.5's interpreter (``moto.stepfunctions.parser``, LocalStack's ASL
engine) invokes a Task whose Resource is a Lambda function ARN through
``lambda_eval_utils._invoke_lambda_function(parameters, region,
state_credentials)``, which calls ``lambda.invoke`` and returns the
InvocationResponse with a decoded ``Payload``. That function is the seam:
:class:`LambdaHarness` replaces it, picks the handler from the function name,
and turns a raised exception into what Lambda returns for an unhandled error
(``FunctionError: "Unhandled"``, payload ``{"errorType": <class name>,
"errorMessage", "stackTrace"}``), so the interpreter names the Step Functions
error after the exception class and Retry/Catch on error names behave as on AWS.
"""

from __future__ import annotations

import importlib
import json
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import REGION, FakeLambdaContext

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "modules" / "workflow" / "templates" / "cnm_workflow.asl.json.tftpl"
ACCOUNT = "123456789012"
PREFIX = "wf-test"

# State name -> handler module (lambda_src/handlers/<module>.py).
TASKS = {
    "StartStatus": "start_status",
    "TranslateMessage": "translate_message",
    "SyncGranule": "sync_granule",
    "CnmResponse": "cnm_response",
    "StopStatus": "stop_status",
}


def function_name(state: str) -> str:
    return f"{PREFIX}-{state}"


def function_arn(state: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(state)}"


def extra_states_fragment(states: dict[str, Any] | None) -> str:
    """What modules/workflow/main.tf substitutes for ${extra_states}: the object's
    members followed by a comma, or nothing."""
    if not states:
        return ""
    return json.dumps(states)[1:-1] + ","


def render_definition(*, retry_interval: int = 1, retry_attempts: int = 3, extra_states: dict[str, Any] | None = None,
                      extra_states_start_at: str | None = None) -> str:
    """Render the template by plain substitution, as templatefile() does."""
    values = {f"{module}_arn": function_arn(state) for state, module in TASKS.items()}
    values.update(
        sync_retry_interval_seconds=str(retry_interval),
        sync_retry_max_attempts=str(retry_attempts),
        response_retry_interval_seconds=str(retry_interval),
        response_retry_max_attempts=str(retry_attempts),
        sync_next=extra_states_start_at or "CnmResponse",
        extra_states=extra_states_fragment(extra_states),
    )
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, "template has a placeholder the harness does not know"
    json.loads(text)  # still valid JSON after rendering
    return text


class LambdaHarness:
    """Dispatches the interpreter's Lambda invocations to our handlers in-process."""

    def __init__(self) -> None:
        self.calls: dict[str, list[dict[str, Any]]] = {state: [] for state in TASKS}
        self._faults: dict[str, list[Callable[[dict[str, Any]], None]]] = {state: [] for state in TASKS}

    def fail_next(self, state: str, exc: BaseException) -> None:
        """Make the next invocation of ``state`` raise ``exc`` before the handler runs."""

        def raise_it(event: dict[str, Any]) -> None:
            raise exc

        self._faults[state].append(raise_it)

    def invoke(self, parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
        name = parameters["FunctionName"].rsplit(":", 1)[-1]
        state = name[len(PREFIX) + 1:]
        module = importlib.import_module(f"handlers.{TASKS[state]}")
        event = json.loads(parameters["Payload"])
        self.calls[state].append(event)
        try:
            if self._faults[state]:
                self._faults[state].pop(0)(event)
            result = module.handler(event, FakeLambdaContext())
        except Exception as exc:  # what Lambda reports for an unhandled exception
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": "$LATEST",
                "Payload": {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                },
            }
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": json.loads(json.dumps(result))}


@pytest.fixture
def lambda_harness(aws_sfn, monkeypatch) -> LambdaHarness:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    harness = LambdaHarness()
    monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", harness.invoke)
    return harness


STACK = "teststack"
PROVIDER_BUCKET = "provider-bucket"
STAGING_BUCKET = "staging-bucket"
STATUS_TABLE = "wf-test-status"
COLLECTION = {"name": "TEST_COLL", "version": "1"}


class Env:
    """The AWS side of a workflow test: buckets, stream, status table, state machine."""

    def __init__(self, harness: LambdaHarness) -> None:
        import boto3

        self.harness = harness
        self.s3 = boto3.client("s3", region_name=REGION)
        self.kinesis = boto3.client("kinesis", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        for bucket in (PROVIDER_BUCKET, STAGING_BUCKET):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.kinesis.create_stream(StreamName="responses", ShardCount=1)
        self.stream_arn = self.kinesis.describe_stream_summary(StreamName="responses")["StreamDescriptionSummary"]["StreamARN"]
        create_status_table(self.dynamodb, STATUS_TABLE)
        self.collection_config: dict[str, Any] = {"url_path": "file-staging/{stack}/{collection}", "duplicate_handling": "error"}

    def put_file(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=PROVIDER_BUCKET, Key=key, Body=data)
        return f"s3://{PROVIDER_BUCKET}/{key}"

    def state_machine(self, **render: Any) -> str:
        name = f"cnm-{len(self.sfn.list_state_machines()['stateMachines'])}"
        return self.sfn.create_state_machine(
            name=name, definition=render_definition(**render), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
        )["stateMachineArn"]

    def message(self, cnm: dict[str, Any], state_machine_arn: str, execution: str) -> dict[str, Any]:
        from cnm_ingest.message import build_workflow_message

        return build_workflow_message(
            cnm,
            rule={"name": "test-rule", "workflow_name": "CNMWorkflow", "meta": {}},
            collection={**self.collection_config, **COLLECTION},  # as cnm_ingest.config builds it
            provider={"id": "PODAAC_SWOT", "config": {"protocol": "s3", "host": PROVIDER_BUCKET}},
            stack=STACK,
            buckets={"private": {"name": STAGING_BUCKET, "type": "private"}},
            state_machine_arn=state_machine_arn,
            execution=execution,
            source={"stream_arn": "arn:aws:kinesis:us-west-2:123456789012:stream/notifications",
                    "shard_id": "shardId-000000000000", "sequence_number": "1", "partition_key": "pk"},
        )

    def run(self, cnm: dict[str, Any], *, name: str = "exec-1", timeout: float = 60, **render: Any) -> dict[str, Any]:
        """Start an execution with the workflow message for ``cnm`` and wait for it to end."""
        arn = self.state_machine(**render)
        started = self.sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(self.message(cnm, arn, name)))
        deadline = time.monotonic() + timeout
        while True:
            desc = self.sfn.describe_execution(executionArn=started["executionArn"])
            if desc["status"] != "RUNNING":
                return desc
            if time.monotonic() > deadline:
                pytest.fail(f"execution still RUNNING after {timeout}s")
            time.sleep(0.05)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def responses(self) -> list[dict[str, Any]]:
        out = []
        for shard in self.kinesis.list_shards(StreamARN=self.stream_arn)["Shards"]:
            it = self.kinesis.get_shard_iterator(StreamARN=self.stream_arn, ShardId=shard["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            out.extend(json.loads(r["Data"]) for r in self.kinesis.get_records(ShardIterator=it, StreamARN=self.stream_arn)["Records"])
        return out

    def status_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(TableName=STATUS_TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()} if item else None


def create_status_table(dynamodb, name: str) -> None:
    """The status table as modules/workflow creates it (pk/sk, GSI by_status)."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "status_key", "updated_at")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_status",
            "KeySchema": [{"AttributeName": "status_key", "KeyType": "HASH"}, {"AttributeName": "updated_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )


@pytest.fixture
def wf(lambda_harness, monkeypatch) -> Env:
    env = Env(lambda_harness)
    monkeypatch.setenv("STATUS_TABLE", STATUS_TABLE)
    monkeypatch.setenv("RESPONSE_STREAM_ARN", env.stream_arn)
    monkeypatch.delenv("RESPONSE_TOPIC_ARN", raising=False)
    return env
