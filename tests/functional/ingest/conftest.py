"""The ingest-side handlers (message_consumer, fallback_consumer, hydrate) on the applied stack.

Each test gets ``world``: examples/complete as `terraform apply` left it (the session snapshot,
restored; tests/stack.py), and runs one deployed function's handler in-process under exactly
that function's deployed environment. Notifications go on the applied notification stream and
come back as the Kinesis event the event source mapping would deliver (``notifications``).
Rules, collections and providers are the example's own; a test needing another writes it in the
applied items' shape (``World.put_rule`` / ``put_collection``).

Below the line: the hand-built twin (``pipeline``, ``EventSourceMapping``, ``TrimmedStream``),
kept only for tests/ingest/test_fault_matrix.py and tests/functional/compat until they run on
the applied stack (helpers m10, w10); delete it then.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from localaws.pipeline import read_stream as _read_stream
from tests.conftest import REGION
from tests.events import kinesis_event_from_stream, kinesis_failure_record, sns_event

ACCOUNT = "123456789012"
PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sfn"
# examples/complete's first rule: its collection, version and provider (tests/e2e/test_apply.py reads them back)
SWOT = {"collection": "SWOT_L2_LR_SSH", "version": "2.0", "provider": "PODAAC_SWOT", "rule": "swot_l2_lr_ssh"}


@pytest.fixture
def world(complete_world):
    """examples/complete, restored as applied (see tests/stack.py World)."""
    return complete_world


@pytest.fixture
def no_start_backoff(monkeypatch):
    """StartExecution retries without real sleeps (the consumer's pacer sleeps through ``pacing.SLEEP``)."""
    from cnm_ingest import pacing

    slept: list[float] = []
    monkeypatch.setattr(pacing, "SLEEP", slept.append)
    return slept


def swot_cnm(identifier: str = "granule-1", bucket: str = "cnm-complete-provider-outbox", **overrides: Any) -> dict:
    """A valid notification for examples/complete's SWOT_L2_LR_SSH rule (string-form collection,
    product.dataVersion "2.0"), its file in the provider's bucket."""
    cnm = sample_cnm(identifier, collection=SWOT["collection"], provider=SWOT["provider"])
    cnm["product"]["dataVersion"] = SWOT["version"]
    cnm["product"]["files"][0]["uri"] = f"s3://{bucket}/{identifier}.nc"
    cnm.update(overrides)
    return cnm


class Notifications:
    """Payloads put on the applied notification stream (all on one shard, as one event source
    mapping batch holds one shard's records) and read back as the Kinesis event Lambda gets."""

    def __init__(self, world: Any):
        self.world = world
        self.stream = world.stream("notifications")
        self.shard: str | None = None

    def put(self, payloads: list[bytes | str | dict], partition_keys: list[str] | None = None) -> dict[str, Any]:
        """Put ``payloads`` (in order) and return the event holding exactly them, in order."""
        kinesis = self.world.client("kinesis")
        seqs = []
        for i, payload in enumerate(payloads):
            data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
            data = data.encode() if isinstance(data, str) else data
            put = kinesis.put_record(
                StreamARN=self.stream,
                Data=data,
                PartitionKey=partition_keys[i] if partition_keys else f"pk{i}",
                ExplicitHashKey="0",  # the first shard
            )
            self.shard = put["ShardId"]
            seqs.append(put["SequenceNumber"])
        by_seq = {r["SequenceNumber"]: r for r in _read_stream(kinesis, self.stream)}
        return kinesis_event_from_stream([by_seq[s] for s in seqs], self.stream, self.shard or "")


@pytest.fixture
def notifications(world) -> Notifications:
    return Notifications(world)


def sample_cnm(
    identifier: str = "granule-1", collection: Any = "MODIS_A", provider: str = "PODAAC", **overrides: Any
) -> dict[str, Any]:
    cnm = {
        "version": "1.6.1",
        "provider": provider,
        "collection": collection,
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": identifier,
        "product": {
            "name": identifier,
            "dataVersion": "1",
            "files": [
                {
                    "type": "data",
                    "uri": f"s3://provider-bucket/{identifier}.nc",
                    "name": f"{identifier}.nc",
                    "size": 100,
                    "checksumType": "md5",
                    "checksum": "d41d8cd98f00b204e9800998ecf8427e",
                }
            ],
        },
    }
    cnm.update(overrides)
    return cnm


# ------------------------------------------------------------------------------------------------
# LEGACY: the hand-built twin, for tests/ingest/test_fault_matrix.py and tests/functional/compat only.


@pytest.fixture(autouse=True)
def fresh_config_cache():
    from cnm_ingest import config, once

    config.reset()
    once.reset()
    yield
    config.reset()
    once.reset()


def create_idempotency_table(name: str) -> str:
    """The idempotency table as modules/consumer creates it (key ``id``, TTL ``expiration``)."""
    from cnm_ingest import aws

    aws.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    return name


@dataclass
class Pipeline:
    """Names and ARNs of the moto resources, plus helpers that read them back."""

    notification_stream: str
    response_stream: str
    fallback_topic: str
    fallback_capture: str
    dlq_url: str
    bucket: str
    state_machine: str
    other_state_machine: str
    tables: dict[str, str] = field(default_factory=dict)

    # --- configuration -------------------------------------------------
    def put_rule(
        self,
        name: str,
        collection_name: str = "MODIS_A",
        collection_version: str = "",
        provider: str = "PODAAC",
        state: str = "ENABLED",
        workflow_arn: str | None = None,
    ) -> None:
        from cnm_ingest import aws

        aws.client("dynamodb").put_item(
            TableName=self.tables["rules"],
            Item={
                "name": {"S": name},
                "collection_name": {"S": collection_name},
                "collection_version": {"S": collection_version},
                "provider": {"S": provider},
                "workflow_arn": {"S": workflow_arn or self.state_machine},
                "workflow_name": {"S": "CNMIngest"},
                "state": {"S": state},
                "meta": {"S": json.dumps({"rule_meta": name})},
            },
        )

    def put_collection(self, name: str = "MODIS_A", version: str = "1", **config: Any) -> None:
        from cnm_ingest import aws

        aws.client("dynamodb").put_item(
            TableName=self.tables["collections"],
            Item={
                "name": {"S": name},
                "version": {"S": version},
                "config": {"S": json.dumps({"url_path": "file-staging/{stack}/{collection}", **config})},
            },
        )

    def put_provider(self, provider_id: str = "PODAAC") -> None:
        from cnm_ingest import aws

        aws.client("dynamodb").put_item(
            TableName=self.tables["providers"],
            Item={"id": {"S": provider_id}, "config": {"S": json.dumps({"protocol": "s3", "host": "provider-bucket"})}},
        )

    # --- reading back ----------------------------------------------------
    def executions(self, state_machine: str | None = None) -> list[dict[str, Any]]:
        from cnm_ingest import aws

        sfn = aws.client("stepfunctions")
        return sfn.list_executions(stateMachineArn=state_machine or self.state_machine)["executions"]

    def execution_inputs(self, state_machine: str | None = None) -> list[dict[str, Any]]:
        from cnm_ingest import aws

        sfn = aws.client("stepfunctions")
        return [
            json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            for e in self.executions(state_machine)
        ]

    def drain(self, queue_url: str) -> list[str]:
        """Every message body in the queue (received and deleted)."""
        from cnm_ingest import aws

        sqs = aws.client("sqs")
        bodies: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return bodies
            for m in got:
                bodies.append(m["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    def dlq_envelopes(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.drain(self.dlq_url)]

    def fallback_events(self) -> list[dict[str, Any]]:
        """What the fallback topic received, as the SNS events Lambda would deliver, one per message."""
        events = []
        for body in self.drain(self.fallback_capture):
            note = json.loads(body)
            events.append(sns_event(note["Message"], topic_arn=note["TopicArn"], message_id=note["MessageId"]))
        return events

    def responses(self) -> list[dict[str, Any]]:
        return [json.loads(r["Data"]) for r in read_stream(self.response_stream)]


def read_stream(stream_arn: str) -> list[dict[str, Any]]:
    from cnm_ingest import aws

    return _read_stream(aws.client("kinesis"), stream_arn)


def create_stream(name: str) -> str:
    from cnm_ingest import aws

    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


@pytest.fixture
def pipeline(aws, monkeypatch) -> Pipeline:
    from cnm_ingest import aws as aws_mod

    ddb = aws_mod.client("dynamodb")
    tables = {"rules": "t-rules", "collections": "t-collections", "providers": "t-providers"}
    ddb.create_table(
        TableName=tables["rules"],
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
    )
    ddb.create_table(
        TableName=tables["collections"],
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}, {"AttributeName": "version", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "name", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "S"},
        ],
    )
    ddb.create_table(
        TableName=tables["providers"],
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )

    sqs = aws_mod.client("sqs")
    dlq_url = sqs.create_queue(QueueName="kinesisFailure")["QueueUrl"]
    capture_url = sqs.create_queue(QueueName="fallback-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns = aws_mod.client("sns")
    topic = sns.create_topic(Name="fallback")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=capture_arn)

    aws_mod.client("s3").create_bucket(Bucket="payloads", CreateBucketConfiguration={"LocationConstraint": REGION})
    sfn = aws_mod.client("stepfunctions")
    sm = sfn.create_state_machine(name="cnm-ingest", definition=PASS_DEFINITION, roleArn=ROLE_ARN)["stateMachineArn"]
    other = sfn.create_state_machine(name="cnm-other", definition=PASS_DEFINITION, roleArn=ROLE_ARN)["stateMachineArn"]

    p = Pipeline(
        notification_stream=create_stream("notifications"),
        response_stream=create_stream("responses"),
        fallback_topic=topic,
        fallback_capture=capture_url,
        dlq_url=dlq_url,
        bucket="payloads",
        state_machine=sm,
        other_state_machine=other,
        tables=tables,
    )
    env = {
        "RULES_TABLE": tables["rules"],
        "COLLECTIONS_TABLE": tables["collections"],
        "PROVIDERS_TABLE": tables["providers"],
        "RULES_CACHE_SECONDS": "60",
        "FALLBACK_TOPIC_ARN": topic,
        "DLQ_URL": dlq_url,
        "PAYLOAD_BUCKET": "payloads",
        "RESPONSE_STREAM_ARN": p.response_stream,
        "STACK": "test-stack",
        "BUCKETS": json.dumps({"private": {"name": "private-bucket", "type": "private"}}),
        "IDEMPOTENCY_TABLE": create_idempotency_table("t-idempotency"),
        "START_MAX_ATTEMPTS": "2",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    p.put_collection()
    p.put_provider()
    return p


class EventSourceMapping:
    """What the Lambda event source mapping does with the notification stream, for the fault matrix.

    Reads every record of the (moto) stream with GetRecords, hands batches to
    ``message_consumer`` as Kinesis events, and on batch item failures
    delivers again from the lowest failed sequence number (AWS checkpoints
    there). After ``max_retries`` retries the remaining range is given up: the
    on-failure record AWS would publish to the failed-batch topic
    (``KinesisBatchInfo`` with the range and ``batchSize``) goes to ``hydrate``.
    ``redeliver(n)`` emulates whole-batch duplicates (a timed-out invocation,
    an ESM restart): the batch is delivered n more times.
    """

    def __init__(self, pipeline: Pipeline, context: Any, batch_size: int = 100, max_retries: int = 2):
        self.pipeline, self.context = pipeline, context
        self.batch_size, self.max_retries = batch_size, max_retries
        self.given_up: list[dict[str, Any]] = []
        self.invocations = 0

    def records(self) -> list[dict[str, Any]]:
        from cnm_ingest import aws

        return _read_stream(aws.client("kinesis"), self.pipeline.notification_stream)

    def event(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return kinesis_event_from_stream(records, self.pipeline.notification_stream)

    def deliver(self, records: list[dict[str, Any]] | None = None) -> None:
        from handlers import message_consumer

        records = self.records() if records is None else records
        for start in range(0, len(records), self.batch_size):
            batch = records[start : start + self.batch_size]
            for _attempt in range(self.max_retries + 1):
                result = message_consumer.handler(self.event(batch), self.context)
                self.invocations += 1
                failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
                if not failed:
                    batch = []
                    break
                lowest = min(int(f) for f in failed)
                batch = [r for r in batch if int(r["SequenceNumber"]) >= lowest]
            if batch:
                self.give_up(batch)

    def redeliver(self, times: int) -> None:
        for _ in range(times):
            self.deliver()

    def give_up(self, batch: list[dict[str, Any]]) -> None:
        failure = kinesis_failure_record(
            self.pipeline.notification_stream,
            batch[0]["SequenceNumber"],
            batch[-1]["SequenceNumber"],
            len(batch),
            requestContext={"requestId": f"esm-{len(self.given_up)}", "approximateInvokeCount": self.max_retries + 1},
            responseContext={"functionError": None},
        )
        self.given_up.append(failure)

    def hydrate(self) -> None:
        from handlers import hydrate

        for failure in self.given_up:
            hydrate.handler(sns_event(json.dumps(failure)), self.context)

    def fallback(self) -> None:
        from handlers import fallback_consumer

        for event in self.pipeline.fallback_events():
            fallback_consumer.handler(event, self.context)


class TrimmedStream:
    """Kinesis trimming records from the front of a shard, which moto cannot do (the ONE place it is emulated).

    Records before ``trim_before`` are no longer returned by GetRecords, and
    GetShardIterator AT_SEQUENCE_NUMBER for a trimmed sequence number answers
    InvalidArgumentException; TRIM_HORIZON starts at the first kept record.
    """

    def __init__(self, monkeypatch: Any, trim_before: str):
        from botocore.exceptions import ClientError

        from cnm_ingest import aws

        client = aws.client("kinesis")
        get_iterator, get_records = client.get_shard_iterator, client.get_records
        cut = int(trim_before)

        def get_shard_iterator(**kw: Any) -> dict[str, Any]:
            if kw.get("ShardIteratorType") == "AT_SEQUENCE_NUMBER" and int(kw["StartingSequenceNumber"]) < cut:
                raise ClientError(
                    {
                        "Error": {"Code": "InvalidArgumentException", "Message": "sequence number is trimmed"},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "GetShardIterator",
                )
            return get_iterator(**kw)

        def trimmed_get_records(**kw: Any) -> dict[str, Any]:
            page = get_records(**kw)
            page["Records"] = [r for r in page["Records"] if int(r["SequenceNumber"]) >= cut]
            return page

        monkeypatch.setattr(client, "get_shard_iterator", get_shard_iterator)
        monkeypatch.setattr(client, "get_records", trimmed_get_records)
