"""The recorder's executions table as ``modules/recorder`` creates it, for the moto tests of the recorder.

tests/terraform/test_recorder_module.py checks this against the HCL, so the two cannot drift. (What
EventBridge and SQS do for the recorder runs on the local AWS: localaws.patches publishes the Step
Functions status-change events, and the runtime's SQS poller hands them to the deployed recorder.)
"""

from __future__ import annotations

from typing import Any


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
