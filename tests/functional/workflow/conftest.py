"""The workflow tier on the applied stack: examples/complete as `terraform apply` created it
(tests/worlds.py applies it once per session and restores its snapshot before each test).

- The APPLIED state machine runs in moto's Step Functions interpreter (the local AWS runs in a
  thread of this process). Each Lambda Task goes to the world's invoker (tests/worlds.py
  ``World.lambda_task``): the deployed function the Resource ARN names, its handler (from the
  function's handler string) run in-process under exactly that function's deployed environment.
  An exception becomes what Lambda returns for an unhandled error (``FunctionError: "Unhandled"``,
  ``errorType`` = the class name), so Retry and Catch on error names behave as on AWS.
- Retry waits: the interpreter sleeps IntervalSeconds x BackoffRate^n before each retry. The
  waits are recorded instead of slept (:attr:`Workflow.waits`), and the tests compare them with
  the applied definition's Retry (examples/complete: SyncGranule 15 s x 4 attempts, CnmResponse
  5 s x 6: about 7.5 and 5 minutes of sleeping otherwise).
- An execution starts as the deployed consumer starts it: ``cnm_ingest.consumer.consume.plan`` under the
  message_consumer's deployed environment, reading the applied rules, collections and providers
  tables (rule ``swot_l2_lr_ssh``), for a record of the applied notification stream.
- What tests create by hand is the provider's side only: the provider's bucket and its files, a
  subscriber queue on the provider's response topic.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import REGION

RULE = "swot_l2_lr_ssh"  # examples/complete: SWOT_L2_LR_SSH 2.0 from PODAAC_SWOT, checksum_required
# The workflow's task functions, by role.
TASK_ROLES = ("start_status", "translate_message", "sync_granule", "cnm_response", "stop_status")


class RecordedSleep:
    """Stands in for the ``time`` module of moto's retrier: records each retry wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class Workflow:
    """The applied workflow of examples/complete, and the provider's side of a test."""

    def __init__(self, world: Any, retries: RecordedSleep) -> None:
        self.world, self.stack, self.retries = world, world.stack, retries
        self.s3, self.kinesis, self.dynamodb, self.sfn, self.sqs, self.sns = (
            world.client(s) for s in ("s3", "kinesis", "dynamodb", "stepfunctions", "sqs", "sns")
        )
        self.consumer = world.function("message_consumer")
        self.response = world.function("cnm_response")
        [self.machine] = self.stack.state_machines.values()
        self.definition: dict[str, Any] = json.loads(self.machine["definition"])
        self._sequence = itertools.count(1)
        with self.env("message_consumer"):
            from cnm_ingest.consumer import rulebook

            store = rulebook.ConfigStore.from_env()
            [rule] = [r for r in store.rules() if r.name == RULE]
            self.rule = rule
            self.collection = {"name": rule.collection_name, "version": rule.collection_version}
            self.collection_config = store.collection(rule.collection_name, rule.collection_version)
            self.provider = store.provider(rule.provider)
        self.stack_name = self.consumer.environment["STACK"]
        self.staging_bucket = json.loads(self.consumer.environment["BUCKETS"])["private"]["name"]
        self.provider_bucket = self.provider["host"]
        self.stream_arn = self.response.environment["RESPONSE_STREAM_ARN"]
        self.dlq_url = self.response.environment["DLQ_URL"]
        # the status store (cnm_ingest.executions) StartStatus/StopStatus write, and CnmResponse's once-markers
        self.status_table = world.function("start_status").environment["EXECUTIONS_TABLE"]
        self.idempotency_table = self.response.environment["IDEMPOTENCY_TABLE"]
        self.payload_bucket = self.response.environment["PAYLOAD_BUCKET"]
        self.distribution_endpoint = self.response.environment.get("DISTRIBUTION_ENDPOINT") or None
        self.notification_stream = world.stream("notifications")
        # the provider's bucket: the provider's side, created by the test
        self.s3.create_bucket(Bucket=self.provider_bucket, CreateBucketConfiguration={"LocationConstraint": REGION})

    # --- the deployed stack ------------------------------------------------------------------------
    @contextmanager
    def env(self, role: str) -> Iterator[dict[str, str]]:
        """os.environ as the deployed ``role`` function has it (World.env)."""
        with self.world.env(role) as env:
            yield env

    @property
    def calls(self) -> dict[str, list[dict[str, Any]]]:
        """Each task function's invocations (events), in order, duplicates kept."""
        out: dict[str, list[dict[str, Any]]] = {role: [] for role in TASK_ROLES}
        for role, event in self.world.task_calls:
            out.setdefault(role, []).append(event)
        return out

    def fail_next(self, role: str, exc: BaseException) -> None:
        self.world.fail_next(role, exc)

    def retry(self, state: str, error: str = "TransientError") -> dict[str, Any]:
        """The applied definition's retrier of ``state`` for ``error``."""
        [retry] = [r for r in self.definition["States"][state]["Retry"] if error in r["ErrorEquals"]]
        return retry

    @staticmethod
    def backoff(retry: dict[str, Any], retries: int) -> list[float]:
        """The waits before ``retries`` retries under ``retry`` (IntervalSeconds x BackoffRate^n)."""
        return [retry["IntervalSeconds"] * retry.get("BackoffRate", 2.0) ** n for n in range(retries)]

    @property
    def waits(self) -> list[float]:
        return self.retries.waits

    def staged_prefix(self) -> str:
        """Where the rule's collection stages (its url_path, as the module seeds it)."""
        url_path = self.collection_config["url_path"]
        return url_path.format(
            stack=self.stack_name, collection=f"{self.collection['name']}__{self.collection['version']}"
        )

    def staged_uri(self, key: str) -> str:
        if self.distribution_endpoint:
            return f"{self.distribution_endpoint.rstrip('/')}/{self.staging_bucket}/{key}"
        return f"s3://{self.staging_bucket}/{key}"

    @property
    def response_topic(self) -> str:
        """The provider's response topic among the deployed CnmResponse's RESPONSE_DESTINATIONS."""
        destinations = json.loads(self.response.environment["RESPONSE_DESTINATIONS"])
        [topic] = [a for a in destinations if a.split(":")[2] == "sns"]
        return topic

    # --- the provider's side ------------------------------------------------------------------------
    def provider_subscriber(self) -> str:
        """The provider's queue subscribed (raw delivery) to the response topic; returns its URL."""
        queue = self.sqs.create_queue(QueueName="provider-response-copy")["QueueUrl"]
        qarn = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(
            TopicArn=self.response_topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"}
        )
        return queue

    def put_file(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=self.provider_bucket, Key=key, Body=data)
        return f"s3://{self.provider_bucket}/{key}"

    # --- running ------------------------------------------------------------------------------------
    def plan(self, cnm: dict[str, Any]) -> Any:
        """What the deployed consumer plans for a record carrying ``cnm`` (rule ``swot_l2_lr_ssh``):
        cnm_ingest.consumer.consume.plan under message_consumer's deployed env, on the applied config tables."""
        from cnm_ingest.consumer import consume, rulebook

        record = consume.SourceRecord(
            data=base64.b64encode(json.dumps(cnm).encode()).decode(),
            sequenceNumber=f"4959{next(self._sequence):020d}",
            partitionKey="pk",
            shardId="shardId-000000000000",
            streamArn=self.notification_stream,
        )
        with self.env("message_consumer"):
            [planned] = consume.plan(record, rulebook.ConfigStore.from_env(), consume.Settings.from_env())
        assert planned.rule == RULE and planned.state_machine_arn == self.machine["stateMachineArn"]
        return planned

    def message(self, cnm: dict[str, Any]) -> dict[str, Any]:
        """The workflow message the deployed consumer would start for ``cnm``."""
        return json.loads(self.plan(cnm).input)

    def start(self, cnm: dict[str, Any], *, mutate: Callable[[dict[str, Any]], None] | None = None) -> str:
        """Start the execution the deployed consumer starts for ``cnm`` (``mutate`` edits its input first,
        for a CNM the consumer itself would refuse); returns its ARN."""
        planned = self.plan(cnm)
        text = planned.input
        if mutate is not None:
            message = json.loads(text)
            mutate(message)
            text = json.dumps(message)
        return self.sfn.start_execution(stateMachineArn=planned.state_machine_arn, name=planned.name, input=text)[
            "executionArn"
        ]

    def run(self, cnm: dict[str, Any], *, timeout: float = 60, **kw: Any) -> dict[str, Any]:
        """Start the execution for ``cnm``, its tasks run in-process, and wait for it to end."""
        self.world.run_tasks = True
        arn = self.start(cnm, **kw)
        try:
            return self.world.wait(arn, timeout)
        except TimeoutError as exc:
            pytest.fail(str(exc))

    # --- reading back -------------------------------------------------------------------------------
    def explain(self, desc: dict[str, Any]) -> str:
        """An execution's status, error and cause, and every failed task's error, for assertion messages."""
        failures = [
            {k: v for k, v in e.items() if k.endswith("EventDetails")}
            for e in self.history(desc["executionArn"])
            if e["type"] in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed")
        ]
        return json.dumps({k: desc.get(k) for k in ("status", "error", "cause")} | {"failures": failures})[:6000]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def responses(self) -> list[dict[str, Any]]:
        """Every response on the applied response stream (all shards), duplicates kept."""
        assert self.world.stream("responses") == self.stream_arn
        return self.world.responses()

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every DLQ message body, duplicates kept (received once each, then deleted)."""
        assert self.world.queue("kinesisFailure") == self.dlq_url
        return self.world.dlq_envelopes()

    def status_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(TableName=self.status_table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()} if item else None


@pytest.fixture
def wf(complete_world, monkeypatch) -> Workflow:
    """The applied examples/complete, restored; its state machine's tasks run in-process; retry waits
    recorded instead of slept."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    retries = RecordedSleep()
    monkeypatch.setattr(retrier_decl, "time", retries)
    return Workflow(complete_world, retries)
