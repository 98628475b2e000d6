"""In-memory fakes for the message consumer benchmarks: only our code counts.

``setup(root)`` puts ``<root>/lambda_src`` first on ``sys.path`` (so the same
benchmark measures another checkout, e.g. main, with ``--root``), sets the
environment the Terraform modules give the consumer, and replaces
``cnm_ingest.aws.client`` with fakes: DynamoDB answers the configuration
tables from memory, Step Functions records StartExecution calls (with an
optional per-call latency and an optional token-bucket quota), and
SNS/SQS/Kinesis record what they are sent.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STREAM = "arn:aws:kinesis:us-west-2:123456789012:stream/notifications"
STATE_MACHINE = "arn:aws:states:us-west-2:123456789012:stateMachine:cnm"


def root_from_argv(argv: list[str]) -> Path:
    """``--root PATH`` from the command line (default: this checkout)."""
    if "--root" in argv:
        return Path(argv[argv.index("--root") + 1]).resolve()
    return ROOT


def setup(root: Path = ROOT) -> None:
    src = str(root / "lambda_src")
    if sys.path[:1] != [src]:
        sys.path.insert(0, src)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_REGION": "us-west-2",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "RULES_TABLE": "rules",
            "COLLECTIONS_TABLE": "collections",
            "PROVIDERS_TABLE": "providers",
            "RULES_CACHE_SECONDS": "3600",
            "FALLBACK_TOPIC_ARN": "arn:aws:sns:x:1:fb",
            "RESPONSE_STREAM_ARN": STREAM + "-responses",
            "DLQ_URL": "https://sqs/dlq",
            "PAYLOAD_BUCKET": "payloads",
            "IDEMPOTENCY_TABLE": "idempotency",
            "STACK": "bench",
            "POWERTOOLS_METRICS_NAMESPACE": "bench",
            "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "BUCKETS": json.dumps({"private": {"name": "staging", "type": "private"}}),
        }
    )


@contextlib.contextmanager
def session(root: Path = ROOT) -> Iterator[None]:
    """:func:`setup` for the length of a benchmark; the environment, ``aws.client`` and the pacing
    clock are put back afterwards, so a runner can run other benchmarks in the same process."""
    saved_env = dict(os.environ)
    setup(root)
    aws = importlib.import_module("cnm_ingest.aws")
    saved_client = aws.client
    try:
        pacing = importlib.import_module("cnm_ingest.consumer.pacing")
        saved_pacing = (pacing.CLOCK, pacing.SLEEP)
    except ImportError:
        pacing, saved_pacing = None, None
    try:
        yield
    finally:
        aws.client = saved_client  # type: ignore[method-assign]
        if pacing is not None and saved_pacing is not None:
            pacing.CLOCK, pacing.SLEEP = saved_pacing
        importlib.import_module("cnm_ingest.consumer.rulebook").reset()
        os.environ.clear()
        os.environ.update(saved_env)


def client_error(code: str, op: str):
    from botocore.exceptions import ClientError as BotoClientError

    return BotoClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": 400}}, op)


class TokenBucket:
    """The StartExecution quota as AWS applies it: ``refill``/s up to ``burst``, on ``clock``."""

    def __init__(self, refill: float, burst: float, clock: Callable[[], float]):
        self.refill, self.burst, self.clock = refill, burst, clock
        self.tokens, self.stamp = burst, clock()
        self.lock = threading.Lock()
        self.throttled = 0

    def take(self) -> bool:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.refill)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            self.throttled += 1
            return False


class FakeStepFunctions:
    def __init__(
        self, latency: float = 0.0, bucket: TokenBucket | None = None, sleep: Callable[[float], None] = time.sleep
    ):
        self.latency, self.bucket, self.sleep = latency, bucket, sleep
        self.names: set[str] = set()
        self.calls = 0
        self.lock = threading.Lock()

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:  # noqa: A002  (boto3 passes input=)
        if self.latency:
            self.sleep(self.latency)
        with self.lock:
            self.calls += 1
        if self.bucket is not None and not self.bucket.take():
            raise client_error("ThrottlingException", "StartExecution")
        with self.lock:
            if name in self.names:
                raise client_error("ExecutionAlreadyExists", "StartExecution")
            self.names.add(name)
        return {"executionArn": f"{stateMachineArn}:{name}", "startDate": 0}


class _Paginator:
    def __init__(self, items: list[dict[str, Any]]):
        self.items = items

    def paginate(self, **_: Any):
        return [{"Items": self.items}]


class FakeDynamoDB:
    def __init__(self, rules: int):
        self.rules = [
            {
                "name": {"S": f"rule-{i:04d}"},
                "collection_name": {"S": f"COLL_{i}"},
                "collection_version": {"S": "1"},
                "provider": {"S": "PROV"},
                "workflow_arn": {"S": STATE_MACHINE},
                "workflow_name": {"S": "CNM"},
                "state": {"S": "ENABLED"},
                "meta": {"S": "{}"},
            }
            for i in range(rules)
        ]
        self.items: dict[str, dict[str, Any]] = {}

    def get_paginator(self, _op: str) -> _Paginator:
        return _Paginator(self.rules)

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        if TableName == "collections":
            return {
                "Item": {
                    "name": Key["name"],
                    "version": Key["version"],
                    "config": {"S": json.dumps({"url_path": "{collection}"})},
                }
            }
        if TableName == "providers":
            return {"Item": {"id": Key["id"], "config": {"S": json.dumps({"protocol": "s3", "host": "prov"})}}}
        item = self.items.get(json.dumps(Key, sort_keys=True))
        return {"Item": item} if item else {}

    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}

    def put_item(self, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.items[json.dumps({"id": Item["id"]}, sort_keys=True)] = Item
        return {}

    def update_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {}

    def delete_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.items.pop(json.dumps(Key, sort_keys=True), None)
        return {}


class FakeSink:
    """SNS / SQS / Kinesis / S3: records what is sent."""

    def __init__(self):
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, op: str):
        def call(**kwargs: Any) -> dict[str, Any]:
            self.sent.append((op, kwargs))
            return {"MessageId": "m", "SequenceNumber": "1", "ShardId": "s", "Successful": [], "Failed": []}

        return call


class Fakes:
    def __init__(self, rules: int, sfn: FakeStepFunctions):
        self.sfn = sfn
        self.clients = {
            "stepfunctions": sfn,
            "dynamodb": FakeDynamoDB(rules),
            "sns": FakeSink(),
            "sqs": FakeSink(),
            "kinesis": FakeSink(),
            "s3": FakeSink(),
        }

    def install(self) -> None:
        aws = importlib.import_module("cnm_ingest.aws")
        aws.client = lambda service: self.clients[service]  # type: ignore[assignment]
        config = importlib.import_module("cnm_ingest.consumer.rulebook")
        config.reset()


def notification(i: int, rules: int) -> bytes:
    ident = f"granule-{i}"
    return json.dumps(
        {
            "version": "1.6.1",
            "provider": "PROV",
            "collection": {"name": f"COLL_{i % rules}", "version": "1"},
            "submissionTime": "2024-01-02T03:04:05.678Z",
            "identifier": ident,
            "product": {
                "name": ident,
                "dataVersion": "1",
                "files": [
                    {
                        "type": "data",
                        "uri": f"s3://prov/{ident}.nc",
                        "name": f"{ident}.nc",
                        "size": 1000 + i,
                        "checksumType": "md5",
                        "checksum": "d41d8cd98f00b204e9800998ecf8427e",
                    },
                    {
                        "type": "metadata",
                        "uri": f"s3://prov/{ident}.cmr.json",
                        "name": f"{ident}.cmr.json",
                        "size": 200,
                        "checksumType": "md5",
                        "checksum": "d41d8cd98f00b204e9800998ecf8427e",
                    },
                ],
            },
        }
    ).encode()


def kinesis_records(payloads: list[bytes], first_sequence: int = 10**20) -> list[dict[str, Any]]:
    return [
        {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": f"pk-{i}",
                "sequenceNumber": str(first_sequence + i),
                "data": base64.b64encode(p).decode("ascii"),
                "approximateArrivalTimestamp": 1700000000.0,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{first_sequence + i}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::1:role/c",
            "awsRegion": "us-west-2",
            "eventSourceARN": STREAM,
        }
        for i, p in enumerate(payloads)
    ]


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:bench"
    memory_limit_in_mb = 1769
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def __init__(self, remaining_ms: int = 300_000):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def consumer():
    """The message consumer handler of the checkout on sys.path (stdout from EMF metrics silenced by callers)."""
    return importlib.import_module("handlers.message_consumer")


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'benchmark':58} {'value':>12} {'unit':12} {'ratio':>8} {'goal':>8}  limit")
    for r in rows:
        print(
            f"{r['name']:58} {r['value']:>12.4g} {r['unit']:12} {r['ratio']:>8.3g} {r.get('goal', ''):>8}  {r['limit']}"
        )
