"""The local pipeline (tools/local_pipeline.py) plus what the CLI reads: the recorder's executions table,
the message consumer's function configuration, and the Terraform-style outputs naming it all.

Use inside ``moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`` with
:meth:`LambdaHarness.installed` active (like LocalPipeline). On the Terraform-applied stack none of this is
needed: the CLI reads ``terraform output -json``.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from tools.local_pipeline import LocalPipeline
from tools.recorder_feed import create_executions_table, feed


class CliStack(LocalPipeline):
    EXECUTIONS_TABLE = "local-executions"

    def __init__(self) -> None:
        super().__init__()
        create_executions_table(self.dynamodb, self.EXECUTIONS_TABLE)
        self._consumer_function()
        self.recorded: set[tuple[str, str]] = set()
        self.checkpoint = -1

    def deliver_new(self) -> dict[str, Any]:
        """The event source mapping after its checkpoint: only records not delivered before, in one batch."""
        from handlers import message_consumer

        from tools.local_pipeline import LambdaContext, kinesis_event, read_stream

        shard = self.kinesis.list_shards(StreamARN=self.notification_stream)["Shards"][0]["ShardId"]
        fresh = [
            r for r in read_stream(self.kinesis, self.notification_stream) if int(r["SequenceNumber"]) > self.checkpoint
        ]
        if not fresh:
            return {"batchItemFailures": []}
        self.checkpoint = max(int(r["SequenceNumber"]) for r in fresh)
        return message_consumer.handler(kinesis_event(fresh, self.notification_stream, shard), LambdaContext())

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "EXECUTIONS_TABLE": self.EXECUTIONS_TABLE}

    def _consumer_function(self) -> None:
        """The message consumer as Lambda knows it: the CLI's replay reads STACK and BUCKETS from it."""
        from cnm_ingest import aws

        role = aws.client("iam").create_role(RoleName="local-message-consumer", AssumeRolePolicyDocument="{}")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("message_consumer.py", "def handler(event, context):\n    return {}\n")
        env = self.environment()
        aws.client("lambda").create_function(
            FunctionName=f"{self.STACK}-message-consumer",
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="message_consumer.handler",
            Code={"ZipFile": code.getvalue()},
            Environment={
                "Variables": {
                    k: env[k] for k in ("STACK", "BUCKETS", "RULES_TABLE", "COLLECTIONS_TABLE", "PROVIDERS_TABLE")
                }
            },
        )

    def outputs(self) -> dict[str, Any]:
        """What ``terraform output -json`` prints for the root module, for these resources."""
        values = {
            "prefix": self.STACK,
            "notification_stream_arn": self.notification_stream,
            "response_stream_arn": self.response_stream,
            "dlq_url": self.dlq_url,
            "rules_table_name": self.TABLES["rules"],
            "collections_table_name": self.TABLES["collections"],
            "providers_table_name": self.TABLES["providers"],
            "state_machine_arn": self.state_machine,
            "executions_table_name": self.EXECUTIONS_TABLE,
            "payload_bucket_name": self.PAYLOAD_BUCKET,
            "message_consumer_function_name": f"{self.STACK}-message-consumer",
        }
        return {k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items()}

    def record(self) -> int:
        """EventBridge -> SQS -> recorder for every status change not delivered yet; returns how many."""
        fresh: list[str] = []
        for e in self.sfn.list_executions(stateMachineArn=self.state_machine)["executions"]:
            if (e["executionArn"], e["status"]) not in self.recorded:
                fresh.append(e["executionArn"])
                self.recorded.add((e["executionArn"], e["status"]))
        result = feed(self.sfn, fresh)
        if result["batchItemFailures"]:
            raise RuntimeError(f"the recorder failed: {result}")
        return len(fresh)

    def dead_letter_count(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        return sum(int(v) for v in attrs["Attributes"].values())

    def stream_payloads(self) -> list[bytes]:
        from tools.local_pipeline import read_stream

        return [r["Data"] for r in read_stream(self.kinesis, self.notification_stream)]


def write_outputs(stack: CliStack, path: str) -> None:
    with open(path, "w") as fh:
        json.dump(stack.outputs(), fh, indent=1)
