"""What Terraform deployed, read back from the (local) AWS through its APIs.

`Stack.read(session, prefix)` lists the functions (handler, environment, layers,
timeout, memory, async invoke config), the event source mappings, the SNS
subscriptions, the state machines, queues, tables, streams and alarms whose names
start with ``prefix``. The apply tier asserts on it; the runtime (localaws.runtime)
runs it. Nothing here creates anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Function:
    name: str
    arn: str
    handler: str
    runtime: str
    environment: dict[str, str]
    layers: list[str]
    timeout: int
    memory: int
    async_config: dict[str, Any] | None = None


@dataclass
class Mapping:
    """An event source mapping as ListEventSourceMappings returns it."""

    uuid: str
    source_arn: str
    function_arn: str
    batch_size: int
    window_seconds: int
    starting_position: str | None
    bisect: bool
    maximum_retry_attempts: int
    maximum_record_age_seconds: int
    response_types: list[str]
    on_failure_arn: str | None
    parallelization_factor: int
    state: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_api(cls, m: dict[str, Any]) -> Mapping:
        return cls(
            uuid=m["UUID"],
            source_arn=m["EventSourceArn"],
            function_arn=m["FunctionArn"],
            batch_size=int(m.get("BatchSize", 100)),
            window_seconds=int(m.get("MaximumBatchingWindowInSeconds", 0)),
            starting_position=m.get("StartingPosition"),
            bisect=bool(m.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=int(m.get("MaximumRetryAttempts", -1)),
            maximum_record_age_seconds=int(m.get("MaximumRecordAgeInSeconds", -1)),
            response_types=list(m.get("FunctionResponseTypes", [])),
            on_failure_arn=m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
            parallelization_factor=int(m.get("ParallelizationFactor", 1)),
            state=m.get("State", "Enabled"),
            raw=m,
        )


@dataclass
class Subscription:
    arn: str
    topic_arn: str
    protocol: str
    endpoint: str
    attributes: dict[str, str]


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]


@dataclass
class Stack:
    prefix: str
    functions: dict[str, Function]
    mappings: list[Mapping]
    subscriptions: list[Subscription]
    state_machines: dict[str, dict[str, Any]]
    queues: dict[str, dict[str, str]]
    tables: dict[str, dict[str, Any]]
    streams: dict[str, str]
    alarms: list[dict[str, Any]]
    topics: list[str]

    @classmethod
    def read(cls, session: Any, prefix: str, endpoint: str | None = None) -> Stack:
        def client(name: str) -> Any:
            return session.client(name, endpoint_url=endpoint)

        lam, sns, sqs, sfn = client("lambda"), client("sns"), client("sqs"), client("stepfunctions")
        ddb, kin, cw = client("dynamodb"), client("kinesis"), client("cloudwatch")
        functions: dict[str, Function] = {}
        for f in _pages(lam, "list_functions", "Functions"):
            if not f["FunctionName"].startswith(prefix):
                continue
            try:
                async_config = lam.get_function_event_invoke_config(FunctionName=f["FunctionName"])
            except lam.exceptions.ResourceNotFoundException:
                async_config = None
            functions[f["FunctionName"]] = Function(
                name=f["FunctionName"],
                arn=f["FunctionArn"],
                handler=f["Handler"],
                runtime=f.get("Runtime", ""),
                environment=dict(f.get("Environment", {}).get("Variables", {})),
                layers=[layer["Arn"] for layer in f.get("Layers", [])],
                timeout=int(f["Timeout"]),
                memory=int(f["MemorySize"]),
                async_config=async_config,
            )
        arns = {f.arn for f in functions.values()}
        mappings = [
            Mapping.from_api(m)
            for m in _pages(lam, "list_event_source_mappings", "EventSourceMappings")
            if m["FunctionArn"] in arns
        ]
        topics = [
            t["TopicArn"]
            for t in _pages(sns, "list_topics", "Topics")
            if t["TopicArn"].rsplit(":", 1)[-1].startswith(prefix)
        ]
        subscriptions = []
        for topic in topics:
            for s in _pages(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic):
                attrs = sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"]
                subscriptions.append(Subscription(s["SubscriptionArn"], topic, s["Protocol"], s["Endpoint"], attrs))
        machines = {}
        for m in _pages(sfn, "list_state_machines", "stateMachines"):
            if m["name"].startswith(prefix):
                machines[m["name"]] = sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])
        queues = {}
        for url in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []):
            queues[url] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        tables = {
            name: ddb.describe_table(TableName=name)["Table"]
            for name in _pages(ddb, "list_tables", "TableNames")
            if name.startswith(prefix)
        }
        streams = {
            s["StreamName"]: s["StreamARN"]
            for s in kin.list_streams().get("StreamSummaries", [])
            if s["StreamName"].startswith(prefix)
        }
        alarms = _pages(cw, "describe_alarms", "MetricAlarms", AlarmNamePrefix=prefix)
        return cls(prefix, functions, mappings, subscriptions, machines, queues, tables, streams, alarms, topics)

    def function(self, role: str) -> Function:
        """The function of ``role`` (message_consumer, ...): named <prefix>-<role with dashes or underscores>."""
        names = [f"{self.prefix}-{role}", f"{self.prefix}-{role.replace('_', '-')}"]
        found = [self.functions[n] for n in names if n in self.functions]
        if not found:
            raise KeyError(f"no function for {role} among {sorted(self.functions)}")
        return found[0]

    def definition(self, machine: str | None = None) -> dict[str, Any]:
        name = machine or next(iter(self.state_machines))
        return json.loads(self.state_machines[name]["definition"])
