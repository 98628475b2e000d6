"""What EventBridge and SQS do for the recorder, on moto (moto's Step Functions emits no events).

- :func:`status_event`: the "Step Functions Execution Status Change" event AWS
  publishes, built from DescribeExecution (same fields, epoch-millisecond dates);
- :func:`sqs_event`: events as the recorder's SQS event source mapping hands them to Lambda;
- :func:`create_executions_table`: the table as ``modules/recorder`` creates it;
- :func:`feed`: every status change of the given executions, through the recorder handler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

REGION = "us-west-2"
ACCOUNT = "123456789012"


def create_executions_table(dynamodb: Any, name: str) -> None:
    """pk/sk, GSI ``by_status`` (status_key, updated_at), as modules/recorder/main.tf."""
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


def status_event(description: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    """The EventBridge event for ``description`` (a DescribeExecution result) at ``status`` (default: its own)."""
    from localaws.patches import execution_status_event  # the detail the local AWS publishes, one definition

    detail = execution_status_event(description, status)
    status = detail["status"]
    moment = detail["stopDate"] or detail["startDate"] or 0
    ident = hashlib.sha256(f"{detail['executionArn']}|{status}".encode()).hexdigest()
    return {
        "version": "0",
        "id": f"{ident[:8]}-{ident[8:12]}-{ident[12:16]}-{ident[16:20]}-{ident[20:32]}",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": datetime.fromtimestamp(moment / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [detail["executionArn"]],
        "detail": detail,
    }


def sqs_event(events: Iterable[Any], queue: str = "execution-events") -> dict[str, Any]:
    """SQS messages carrying ``events`` (dicts are JSON-encoded, strings passed as they are)."""
    records = []
    for i, body in enumerate(events):
        text = body if isinstance(body, str) else json.dumps(body)
        records.append(
            {
                "messageId": f"00000000-0000-0000-0000-{i:012d}",
                "receiptHandle": f"rh-{i}",
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "events.amazonaws.com",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def lifecycle(description: dict[str, Any]) -> list[dict[str, Any]]:
    """RUNNING, then the final status when the execution has ended."""
    events = [status_event(description, "RUNNING")]
    if description["status"] != "RUNNING":
        events.append(status_event(description))
    return events


def feed(sfn: Any, execution_arns: Iterable[str], context: Any = None) -> dict[str, Any]:
    """Deliver every status change of the executions to the recorder handler (env ``EXECUTIONS_TABLE``)."""
    from handlers import recorder

    events = [e for arn in execution_arns for e in lifecycle(sfn.describe_execution(executionArn=arn))]
    if context is None:
        from tools.local_pipeline import LambdaContext

        context = LambdaContext()
    return recorder.handler(sqs_event(events), context) if events else {"batchItemFailures": []}
