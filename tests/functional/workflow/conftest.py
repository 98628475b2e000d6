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

import json
import time
from typing import Any

import pytest

from tests.conftest import REGION
from tools.local_pipeline import (  # noqa: F401  (re-exported for the tests)
    ACCOUNT,
    PREFIX,
    TASKS,
    TEMPLATE,
    LambdaHarness,
    create_status_table,
    extra_states_fragment,
    function_arn,
    function_name,
    render_definition,
)


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
PAYLOAD_BUCKET = "payload-bucket"
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
        for bucket in (PROVIDER_BUCKET, STAGING_BUCKET, PAYLOAD_BUCKET):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.kinesis.create_stream(StreamName="responses", ShardCount=1)
        self.stream_arn = self.kinesis.describe_stream_summary(StreamName="responses")["StreamDescriptionSummary"][
            "StreamARN"
        ]
        create_status_table(self.dynamodb, STATUS_TABLE)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dlq_url = self.sqs.create_queue(QueueName="kinesisFailure")["QueueUrl"]
        self.collection_config: dict[str, Any] = {
            "url_path": "file-staging/{stack}/{collection}",
            "duplicate_handling": "error",
        }

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
            source={
                "stream_arn": "arn:aws:kinesis:us-west-2:123456789012:stream/notifications",
                "shard_id": "shardId-000000000000",
                "sequence_number": "1",
                "partition_key": "pk",
            },
        )

    def run(self, cnm: dict[str, Any], *, name: str = "exec-1", timeout: float = 60, **render: Any) -> dict[str, Any]:
        """Start an execution with the workflow message for ``cnm`` and wait for it to end."""
        arn = self.state_machine(**render)
        started = self.sfn.start_execution(
            stateMachineArn=arn, name=name, input=json.dumps(self.message(cnm, arn, name))
        )
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
            it = self.kinesis.get_shard_iterator(
                StreamARN=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            out.extend(
                json.loads(r["Data"])
                for r in self.kinesis.get_records(ShardIterator=it, StreamARN=self.stream_arn)["Records"]
            )
        return out

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every DLQ message body, duplicates kept (received once each, then deleted)."""
        bodies = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for m in got:
                bodies.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])

    def status_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(TableName=STATUS_TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()} if item else None


@pytest.fixture
def wf(lambda_harness, monkeypatch) -> Env:
    env = Env(lambda_harness)
    monkeypatch.setenv("STATUS_TABLE", STATUS_TABLE)
    monkeypatch.setenv("RESPONSE_STREAM_ARN", env.stream_arn)
    monkeypatch.setenv("DLQ_URL", env.dlq_url)
    monkeypatch.setenv("PAYLOAD_BUCKET", PAYLOAD_BUCKET)
    monkeypatch.delenv("RESPONSE_TOPIC_ARN", raising=False)
    return env
