"""The whole pipeline in one process, on moto: for the demo and the end-to-end test.

What AWS does between our functions is done here the way AWS does it:

- the event source mapping: read the notification stream with GetRecords and
  hand the records to ``message_consumer`` as a Kinesis event; records named
  in ``batchItemFailures`` are delivered again;
- SNS -> Lambda: the fallback topic is captured by an SQS queue subscribed to
  it (real moto wiring), and each message is handed to ``fallback_consumer``
  as the SNS event Lambda would get;
- Step Functions: moto's interpreter runs the real rendered state machine
  definition (modules/workflow/templates); its Lambda invocations go to our
  task handlers in-process (:class:`LambdaHarness`).
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "lambda_src") not in sys.path:
    sys.path.insert(0, str(ROOT / "lambda_src"))


from localaws.pipeline import read_stream, shared_cnm_dir  # noqa: E402,F401  (re-exported: one implementation)

TEMPLATE = ROOT / "modules" / "workflow" / "templates" / "cnm_workflow.asl.json.tftpl"
REGION = "us-west-2"
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


class LambdaContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name = "cnm-ingest-local"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:cnm-ingest-local"
    memory_limit_in_mb = 256
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/cnm-ingest-local"
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


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


def render_definition(
    *,
    retry_interval: int = 1,
    retry_attempts: int = 3,
    extra_states: dict[str, Any] | None = None,
    extra_states_start_at: str | None = None,
) -> str:
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
    if "${" in text:
        raise ValueError("the template has a placeholder render_definition does not know")
    json.loads(text)  # still valid JSON after rendering
    return text


class LambdaHarness:
    """Dispatches the interpreter's Lambda invocations to our handlers in-process.

    moto 5.2.5's interpreter (``moto.stepfunctions.parser``) invokes a Task
    whose Resource is a Lambda function ARN through
    ``lambda_eval_utils._invoke_lambda_function(parameters, region,
    state_credentials)``. That function is the seam: :meth:`invoke` replaces
    it, picks the handler from the function name, and turns a raised exception
    into what Lambda returns for an unhandled error (``FunctionError:
    "Unhandled"``, ``errorType`` = the class name), so Retry/Catch on error
    names behave as on AWS.
    """

    def __init__(self) -> None:
        # moto runs each execution in a thread of its own; its in-memory backends
        # are not made for concurrent streaming reads and deletes, so task
        # invocations run one at a time (each still interleaves with the others).
        self._lock = threading.Lock()
        self.calls: dict[str, list[dict[str, Any]]] = {state: [] for state in TASKS}
        self._faults: dict[str, list[Callable[[dict[str, Any]], None]]] = {state: [] for state in TASKS}

    def fail_next(self, state: str, exc: BaseException) -> None:
        """Make the next invocation of ``state`` raise ``exc`` before the handler runs."""

        def raise_it(event: dict[str, Any]) -> None:
            raise exc

        self._faults[state].append(raise_it)

    def invoke(self, parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
        with self._lock:
            return self._invoke(parameters)

    def _invoke(self, parameters: dict) -> dict[str, Any]:
        name = parameters["FunctionName"].rsplit(":", 1)[-1]
        state = name[len(PREFIX) + 1 :]
        module = importlib.import_module(f"handlers.{TASKS[state]}")
        event = json.loads(parameters["Payload"])
        self.calls[state].append(event)
        try:
            if self._faults[state]:
                self._faults[state].pop(0)(event)
            result = module.handler(event, LambdaContext())
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

    @contextmanager
    def installed(self) -> Iterator[LambdaHarness]:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        original = lambda_eval_utils._invoke_lambda_function
        lambda_eval_utils._invoke_lambda_function = self.invoke
        try:
            yield self
        finally:
            lambda_eval_utils._invoke_lambda_function = original


def create_status_table(dynamodb, name: str) -> None:
    """The status table as modules/workflow creates it (pk/sk, GSI by_status)."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "status_key", "updated_at")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status_key", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def create_config_tables(dynamodb, names: dict[str, str]) -> None:
    """rules / collections / providers as modules/config_tables creates them."""
    keys = {
        "rules": [("name", "HASH")],
        "collections": [("name", "HASH"), ("version", "RANGE")],
        "providers": [("id", "HASH")],
    }
    for kind, schema in keys.items():
        dynamodb.create_table(
            TableName=names[kind],
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in schema],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in schema],
        )


def create_idempotency_table(dynamodb, name: str) -> None:
    """The idempotency table as modules/consumer creates it (key ``id``; TTL ``expiration`` is not emulated)."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )


def kinesis_event(records: list[dict[str, Any]], stream_arn: str, shard_id: str) -> dict[str, Any]:
    """GetRecords records as the event source mapping hands them to Lambda."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode("ascii"),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/consumer",
                "awsRegion": REGION,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def sns_event(
    message: str,
    topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:topic",
    message_id: str = "00000000-0000-0000-0000-000000000001",
) -> dict[str, Any]:
    """An SNS notification as Lambda receives it."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:sub",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": "2024-01-02T03:04:05.678Z",
                    "SignatureVersion": "1",
                    "Signature": "x",
                    "SigningCertUrl": "https://x",
                    "UnsubscribeUrl": "https://x",
                    "MessageAttributes": {},
                },
            }
        ]
    }


class LocalPipeline:
    """Every resource of the pipeline in moto, and the glue AWS would provide.

    Use inside ``moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``
    with :meth:`LambdaHarness.installed` active, and the environment from :meth:`environment`.
    """

    STACK = "local"
    STAGING_BUCKET = "local-staging"
    PAYLOAD_BUCKET = "local-payloads"
    TABLES = {"rules": "local-rules", "collections": "local-collections", "providers": "local-providers"}
    STATUS_TABLE = "local-status"
    IDEMPOTENCY_TABLE = "local-idempotency"

    def __init__(self) -> None:
        from cnm_ingest import aws, once

        aws.reset()
        once.reset()
        self.kinesis = aws.client("kinesis")
        self.sqs = aws.client("sqs")
        self.sns = aws.client("sns")
        self.s3 = aws.client("s3")
        self.sfn = aws.client("stepfunctions")
        self.dynamodb = aws.client("dynamodb")
        self.notification_stream = self._stream("local-notifications")
        self.response_stream = self._stream("local-responses")
        self.dlq_url = self.sqs.create_queue(QueueName="local-kinesisFailure")["QueueUrl"]
        capture = self.sqs.create_queue(QueueName="local-fallback-capture")["QueueUrl"]
        self.fallback_capture = capture
        capture_arn = self.sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.fallback_topic = self.sns.create_topic(Name="local-fallback")["TopicArn"]
        self.sns.subscribe(
            TopicArn=self.fallback_topic,
            Protocol="sqs",
            Endpoint=capture_arn,
            Attributes={"RawMessageDelivery": "false"},
        )
        for bucket in (self.STAGING_BUCKET, self.PAYLOAD_BUCKET):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        create_config_tables(self.dynamodb, self.TABLES)
        create_status_table(self.dynamodb, self.STATUS_TABLE)
        create_idempotency_table(self.dynamodb, self.IDEMPOTENCY_TABLE)
        self.state_machine = self.sfn.create_state_machine(
            name="local-cnm-workflow",
            definition=render_definition(retry_interval=1),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
        )["stateMachineArn"]

    def _stream(self, name: str) -> str:
        self.kinesis.create_stream(StreamName=name, ShardCount=1)
        return self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]

    def environment(self) -> dict[str, str]:
        """The environment the Terraform modules give the functions, pointed at these resources."""
        return {
            "RULES_TABLE": self.TABLES["rules"],
            "COLLECTIONS_TABLE": self.TABLES["collections"],
            "PROVIDERS_TABLE": self.TABLES["providers"],
            "RULES_CACHE_SECONDS": "0",
            "FALLBACK_TOPIC_ARN": self.fallback_topic,
            "DLQ_URL": self.dlq_url,
            "PAYLOAD_BUCKET": self.PAYLOAD_BUCKET,
            "RESPONSE_STREAM_ARN": self.response_stream,
            "STACK": self.STACK,
            "STATUS_TABLE": self.STATUS_TABLE,
            "IDEMPOTENCY_TABLE": self.IDEMPOTENCY_TABLE,
            "BUCKETS": json.dumps({"private": {"name": self.STAGING_BUCKET, "type": "private"}}),
        }

    # --- configuration, as modules/config_tables seeds it -------------------------------
    def add_rule(self, name: str, collection: str, provider: str, version: str = "", state: str = "ENABLED") -> None:
        self.dynamodb.put_item(
            TableName=self.TABLES["rules"],
            Item={
                "name": {"S": name},
                "collection_name": {"S": collection},
                "collection_version": {"S": version},
                "provider": {"S": provider},
                "workflow_arn": {"S": self.state_machine},
                "workflow_name": {"S": "CNMWorkflow"},
                "state": {"S": state},
                "meta": {"S": "{}"},
            },
        )

    def add_collection(self, name: str, version: str, **config: Any) -> None:
        config = {"url_path": "file-staging/{stack}/{collection}", "duplicate_handling": "replace", **config}
        self.dynamodb.put_item(
            TableName=self.TABLES["collections"],
            Item={"name": {"S": name}, "version": {"S": version}, "config": {"S": json.dumps(config)}},
        )

    def add_provider(self, provider_id: str, bucket: str) -> None:
        self.dynamodb.put_item(
            TableName=self.TABLES["providers"],
            Item={"id": {"S": provider_id}, "config": {"S": json.dumps({"protocol": "s3", "host": bucket})}},
        )

    def put_object(self, uri: str, data: bytes) -> None:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        try:
            self.s3.head_bucket(Bucket=bucket)
        except Exception:
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    # --- the provider's side ------------------------------------------------------------
    def notify(self, payload: bytes, partition_key: str = "cnm") -> str:
        """Put a notification on the stream; returns its sequence number."""
        return self.kinesis.put_record(StreamARN=self.notification_stream, Data=payload, PartitionKey=partition_key)[
            "SequenceNumber"
        ]

    # --- what AWS does between our functions ---------------------------------------------
    def deliver_notifications(self, batch_size: int = 100, max_attempts: int = 3) -> dict[str, Any]:
        """The event source mapping: batches to message_consumer, redelivering batch item failures."""
        from handlers import message_consumer

        shard = self.kinesis.list_shards(StreamARN=self.notification_stream)["Shards"][0]["ShardId"]
        pending = read_stream(self.kinesis, self.notification_stream)
        summary = {"invocations": 0, "redelivered": 0}
        for _attempt in range(max_attempts):
            if not pending:
                break
            failed: set[str] = set()
            for i in range(0, len(pending), batch_size):
                batch = pending[i : i + batch_size]
                result = message_consumer.handler(
                    kinesis_event(batch, self.notification_stream, shard), LambdaContext()
                )
                summary["invocations"] += 1
                failed |= {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            # the ESM checkpoints at the lowest failed sequence number and retries from there
            if failed:
                lowest = min(failed, key=int)
                pending = [r for r in pending if int(r["SequenceNumber"]) >= int(lowest)]
                summary["redelivered"] += len(pending)
            else:
                pending = []
        summary["undelivered"] = len(pending)
        return summary

    def deliver_fallback(self) -> int:
        """SNS -> fallback_consumer for everything the fallback topic received."""
        from handlers import fallback_consumer

        delivered = 0
        for body in self._drain(self.fallback_capture):
            note = json.loads(body)
            fallback_consumer.handler(sns_event(note["Message"], note["TopicArn"], note["MessageId"]), LambdaContext())
            delivered += 1
        return delivered

    def wait_for_executions(self, timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            executions = self.sfn.list_executions(stateMachineArn=self.state_machine)["executions"]
            if all(e["status"] != "RUNNING" for e in executions) or time.monotonic() > deadline:
                return [self.sfn.describe_execution(executionArn=e["executionArn"]) for e in executions]
            time.sleep(0.1)

    # --- reading back -------------------------------------------------------------------
    def _drain(self, queue_url: str) -> list[str]:
        bodies: list[str] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            for m in got:
                bodies.append(m["Body"])
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self._drain(self.dlq_url)]

    def responses(self) -> list[dict[str, Any]]:
        return [json.loads(r["Data"]) for r in read_stream(self.kinesis, self.response_stream)]
