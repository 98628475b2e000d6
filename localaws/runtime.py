"""Run what Terraform deployed to the local AWS the way AWS runs it.

`Runtime(session, endpoint, prefix, workdir)` reads the deployed stack
(localaws.deployed: functions, event source mappings, SNS subscriptions, async
invoke configs) and then provides what AWS does between the functions:

- each function runs from the zip Terraform uploaded plus its layers, in a process
  of its own (localaws.bootstrap) with only its own environment and the variables
  Lambda sets, kept warm between invocations and killed at its timeout;
- a Kinesis poller per event source mapping and shard: batches of at most
  BatchSize records gathered for at most MaximumBatchingWindowInSeconds, from
  StartingPosition; checkpointing; ReportBatchItemFailures (retry from the lowest
  failed sequence number; an invalid identifier fails the whole batch);
  BisectBatchOnFunctionError (a failing batch is split, and splitting does not count
  as a retry); MaximumRetryAttempts and MaximumRecordAgeInSeconds, after which the
  batch's on-failure record (KinesisBatchInfo) goes to the mapping's destination;
- SNS -> Lambda subscriptions: each message is an asynchronous invocation (the
  function's event invoke config: MaximumRetryAttempts, MaximumEventAgeInSeconds,
  OnSuccess/OnFailure destinations with the invocation record);
- Step Functions: moto's interpreter runs the executions; their Lambda tasks are
  invoked here.

The one liberty: AWS waits about 1 and 2 minutes between asynchronous retries;
here the waits are ``async_retry_delays`` (seconds, short by default).
"""

from __future__ import annotations

import base64
import heapq
import io
import itertools
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import lambda_python, server
from .deployed import Function, Mapping, Stack

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
ACCOUNT = "123456789012"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Invocation:
    """One invocation's outcome: ``result`` or ``error`` (errorType/errorMessage/stackTrace)."""

    function: str
    request_id: str
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


# --------------------------------------------------------------------------- functions


class FunctionProcess:
    """A warm execution environment of one function: a bootstrap process fed JSON lines."""

    def __init__(
        self,
        fn: Function,
        code_dir: Path,
        layer_dirs: list[Path],
        endpoint: str,
        region: str,
        log_path: Path,
        *,
        python: str = sys.executable,
        runtime_site: Path | None = None,
    ):
        self.fn, self.code_dir, self.layer_dirs = fn, code_dir, layer_dirs
        self.python, self.runtime_site = python, runtime_site
        self.endpoint, self.region, self.log_path = endpoint, region, log_path
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def environment(self) -> dict[str, str]:
        """The function's own variables plus those Lambda sets (credentials, region, names)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": self.fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.fn.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.fn.name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.fn.runtime}",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": self.fn.handler,
            # the one difference from AWS: the SDK talks to the local AWS
            "AWS_ENDPOINT_URL": self.endpoint,
        }
        env.update(self.fn.environment)
        return env

    def _start(self) -> subprocess.Popen[str]:
        log = Path(self.log_path).open("a", encoding="utf-8")  # noqa: SIM115 - owned by the process
        return subprocess.Popen(
            [
                self.python,
                "-I",
                str(BOOTSTRAP),
                str(self.code_dir),
                self.fn.handler,
                *map(str, self.layer_dirs),
                *(["--runtime", str(self.runtime_site)] if self.runtime_site else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=self.environment(),
            cwd=self.code_dir,
        )

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            deadline = time.time() + self.fn.timeout
            proc.stdin.write(
                json.dumps(
                    {"event": event, "request_id": request_id, "deadline": deadline, "function_arn": self.fn.arn}
                )
                + "\n"
            )
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], self.fn.timeout)
            line = proc.stdout.readline() if ready else ""
            if not line:  # timed out or died: Lambda discards the environment
                proc.kill()
                proc.wait()
                self._proc = None
                message = (
                    f"Task timed out after {self.fn.timeout:.2f} seconds"
                    if not ready
                    else "Runtime exited without providing a reason"
                )
                return Invocation(
                    self.fn.name,
                    request_id,
                    error={
                        "errorType": "Sandbox.Timedout" if not ready else "Runtime.ExitError",
                        "errorMessage": message,
                    },
                )
        answer = json.loads(line)
        return Invocation(self.fn.name, request_id, answer.get("result"), answer.get("error"))

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None


def _layer_zip(backend: Any, arn: str) -> bytes:
    layer = backend.layers_versions_by_arn(arn)
    if layer is None:
        raise KeyError(f"layer version not in the emulator: {arn}")
    return bytes(layer.code_bytes)


def _unzip(data: bytes, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(dest)
    return dest


# ----------------------------------------------------------------------- Kinesis ESM


@dataclass
class MappingStats:
    invocations: int = 0
    records_delivered: int = 0
    batch_item_failures: int = 0
    function_errors: int = 0
    retries: int = 0
    bisections: int = 0
    on_failure_records: int = 0
    records_sent_to_on_failure: int = 0


class Poller:
    """What every event source mapping's poller shares: the loop, and when it last found nothing new."""

    rt: Runtime
    m: Mapping
    shard_id: str
    last_empty: float | None  # when the source last had nothing new, with nothing pending

    def run_once(self) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the read position after an error (read again from the checkpoint)."""

    def rewind(self) -> None:
        """Deliver the source again from its starting position (a Kinesis replay; a queue has none)."""

    def pending(self) -> bool:
        return False

    def _turn(self) -> threading.Lock:
        """Held by the poller's thread through each round of work (a read and the invocation it leads to)."""
        return self.__dict__.setdefault("_turn_lock", threading.Lock())  # setdefault: one lock, made once

    def quiesce(self) -> None:
        """Return once the round of work under way, if any, is over: a round that began before a caller
        stopped the poller (``run_once`` replaced, as ``demo.cli_demo.paused`` does) can still read records
        put after that; once this returns, none can."""
        with self._turn():
            pass

    def loop(self) -> None:
        while not self.rt.stopping.is_set():
            with self._turn():
                try:
                    worked = self.run_once()
                except Exception as exc:  # a poller never dies silently
                    self.rt.errors.append(f"poller {self.m.uuid}/{self.shard_id}: {exc!r}")
                    worked = False
                    self.reset()
            self.last_empty = None if (worked or self.pending()) else time.monotonic()
            if not worked:
                time.sleep(self.rt.poll_interval)


class KinesisPoller(Poller):
    """One event source mapping on one shard."""

    def __init__(self, runtime: Runtime, mapping: Mapping, stream_arn: str, shard_id: str):
        self.rt, self.m, self.stream_arn, self.shard_id = runtime, mapping, stream_arn, shard_id
        self.kinesis = runtime.client("kinesis")
        self.checkpoint: str | None = None  # sequence number of the last record done with
        self.last_empty: float | None = None  # when the shard last had nothing new, with nothing pending
        self._buffer: list[dict[str, Any]] = []
        self._iterator: str | None = None
        self._empty_at: int | None = None  # server.kinesis_writes() when a read last found the shard empty
        self._rewind_requested = False

    def rewind(self) -> None:
        """Ask for a replay: before its next batch the poller forgets its checkpoint and what it has
        buffered, and reads the shard again from its starting position (what a redelivery of everything
        looks like to the function). Done in the poller's own thread, so a read under way cannot undo it;
        ``pending()`` is true until then."""
        self._rewind_requested = True
        self.last_empty = None

    def _new_iterator(self) -> str:
        if self.checkpoint is not None:
            kwargs: dict[str, Any] = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": self.checkpoint,
            }
        elif self.m.starting_position == "AT_TIMESTAMP":
            kwargs = {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": self.m.raw["StartingPositionTimestamp"]}
        else:
            kwargs = {"ShardIteratorType": self.m.starting_position or "TRIM_HORIZON"}
        return self.kinesis.get_shard_iterator(StreamARN=self.stream_arn, ShardId=self.shard_id, **kwargs)[
            "ShardIterator"
        ]

    def _fill(self) -> bool:
        """Read into the buffer; True when the shard had nothing more right now.

        A shard a read found empty is not read again until a Kinesis write reaches the local AWS (the server runs in
        this process: ``server.kinesis_writes()``): it cannot hold anything new before. On AWS the mapping polls an
        idle shard about once a second; here each idle read was a GetRecords through botocore and moto, about a
        quarter of a core for the complete example's seven pollers, all suite long.
        """
        if self._iterator is None:
            self._iterator, self._empty_at = self._new_iterator(), None
        writes = server.kinesis_writes()  # read before the read: a write after it makes the next round read
        if writes is not None and writes == self._empty_at:
            return True
        page = self.kinesis.get_records(
            ShardIterator=self._iterator, StreamARN=self.stream_arn, Limit=max(1, self.m.batch_size - len(self._buffer))
        )
        self._iterator = page.get("NextShardIterator")
        self._buffer.extend(page["Records"])
        self._empty_at = None if page["Records"] else writes
        return not page["Records"]

    def run_once(self) -> bool:
        """Gather one batch (window permitting) and deliver it; False when there was nothing."""
        if self._rewind_requested:
            self._rewind_requested = False
            self.checkpoint, self._iterator, self._buffer = None, None, []
        started = time.monotonic()
        drained = self._fill()
        while self._buffer and len(self._buffer) < self.m.batch_size and not drained:
            drained = self._fill()
        while (
            self._buffer
            and len(self._buffer) < self.m.batch_size
            and time.monotonic() - started < self.m.window_seconds
            and not self.rt.stopping.is_set()
        ):
            time.sleep(min(0.2, self.m.window_seconds))
            self._fill()
        if not self._buffer:
            return False
        batch, self._buffer = self._buffer[: self.m.batch_size], self._buffer[self.m.batch_size :]
        self.deliver(batch)
        return True

    def _event(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        role = self.rt.function_by_arn(self.m.function_arn).name
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
                    "eventID": f"{self.shard_id}:{r['SequenceNumber']}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                    "awsRegion": self.rt.region,
                    "eventSourceARN": self.stream_arn,
                }
                for r in records
            ]
        }

    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Deliver ``batch`` until done, retrying, bisecting and finally sending it on failure."""
        self.last_empty = None  # busy until the batch is done
        stats = self.rt.mapping_stats[self.m.uuid]
        work: list[tuple[list[dict[str, Any]], int]] = [(batch, 0)]  # (records, failed attempts so far)
        while work:
            records, attempts = work.pop(0)
            if self.m.maximum_record_age_seconds >= 0:
                cutoff = time.time() - self.m.maximum_record_age_seconds
                expired = [r for r in records if r["ApproximateArrivalTimestamp"].timestamp() < cutoff]
                if expired:
                    self.on_failure(expired, "RecordAgeExceeded", attempts)
                    records = [r for r in records if r not in expired]
                    if not records:
                        continue
            invocation = self.rt.invoke(self.m.function_arn, self._event(records))
            stats.invocations += 1
            stats.records_delivered += len(records)
            failed_from = self._failed_from(records, invocation)
            if failed_from is None:
                self.checkpoint = records[-1]["SequenceNumber"]
                continue
            if invocation.failed:
                stats.function_errors += 1
            else:
                stats.batch_item_failures += 1
            if failed_from > 0:  # records before the lowest failure are done
                self.checkpoint = records[failed_from - 1]["SequenceNumber"]
            remaining = records[failed_from:]
            if self.m.bisect and invocation.failed and len(remaining) > 1:
                stats.bisections += 1
                half = len(remaining) // 2
                work[:0] = [(remaining[:half], attempts), (remaining[half:], attempts)]
                continue
            if 0 <= self.m.maximum_retry_attempts <= attempts:
                self.on_failure(remaining, "RetryAttemptsExhausted", attempts + 1, invocation)
                continue
            stats.retries += 1
            work.insert(0, (remaining, attempts + 1))

    def _failed_from(self, records: list[dict[str, Any]], invocation: Invocation) -> int | None:
        """Index of the first record to retry; None when the batch succeeded."""
        if invocation.failed:
            return 0
        if "ReportBatchItemFailures" not in self.m.response_types or not isinstance(invocation.result, dict):
            return None
        failures = invocation.result.get("batchItemFailures") or []
        if not failures:
            return None
        index = {r["SequenceNumber"]: i for i, r in enumerate(records)}
        ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(i not in index for i in ids):  # an invalid identifier fails the whole batch
            return 0
        return min(index[i] for i in ids)

    def on_failure(
        self, records: list[dict[str, Any]], condition: str, invoke_count: int, invocation: Invocation | None = None
    ) -> None:
        """The mapping's on-failure record for ``records`` (discarded when there is no destination)."""
        stats = self.rt.mapping_stats[self.m.uuid]
        self.checkpoint = records[-1]["SequenceNumber"]
        stats.on_failure_records += 1
        stats.records_sent_to_on_failure += len(records)
        arrivals = [r["ApproximateArrivalTimestamp"].timestamp() for r in records]
        record = {
            "requestContext": {
                "requestId": invocation.request_id if invocation else str(uuid.uuid4()),
                "functionArn": self.m.function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled" if invocation and invocation.failed else "",
            },
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(min(arrivals)),
                "approximateArrivalOfLastRecord": _iso(max(arrivals)),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        self.rt.on_failure_log.append(record)
        if self.m.on_failure_arn:
            self.rt.send_to_destination(self.m.on_failure_arn, record)

    def reset(self) -> None:
        self._iterator = None

    def pending(self) -> bool:
        return bool(self._buffer) or self._rewind_requested


# --------------------------------------------------------------------------- SQS ESM


class SqsPoller(Poller):
    """One SQS event source mapping: batches of at most BatchSize messages gathered for at most
    MaximumBatchingWindowInSeconds; a batch that succeeds is deleted; with ReportBatchItemFailures
    only the messages not reported failed are; a function error deletes none. What is not deleted
    comes back after the queue's visibility timeout, and SQS moves it to the queue's dead-letter
    queue after maxReceiveCount receives (the queue's redrive policy, applied by the emulator)."""

    def __init__(self, runtime: Runtime, mapping: Mapping):
        self.rt, self.m = runtime, mapping
        self.shard_id = "sqs"  # (for progress output, like a Kinesis poller's shard)
        self.sqs = runtime.client("sqs")
        queue = mapping.source_arn.rsplit(":", 2)
        self.url = self.sqs.get_queue_url(QueueName=queue[2], QueueOwnerAWSAccountId=queue[1])["QueueUrl"]
        self.last_empty: float | None = None

    def _receive(self, limit: int) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(10, limit)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def run_once(self) -> bool:
        started = time.monotonic()
        # an idle queue is not asked: moto's own queue says whether a receive would return anything (on AWS the
        # mapping long-polls; here each idle receive was a request through botocore and moto, five a second)
        batch = self._receive(self.m.batch_size) if server.sqs_has_visible(self.m.source_arn) else []
        while (
            batch
            and len(batch) < self.m.batch_size
            and time.monotonic() - started < self.m.window_seconds
            and not self.rt.stopping.is_set()
        ):
            more = self._receive(self.m.batch_size - len(batch))
            batch.extend(more)
            if not more:
                time.sleep(min(0.2, self.m.window_seconds))
        if not batch:
            return False
        self.deliver(batch)
        return True

    def _event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {
                        k: {
                            "stringValue": v.get("StringValue"),
                            "binaryValue": base64.b64encode(v["BinaryValue"]).decode() if "BinaryValue" in v else None,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v["DataType"],
                        }
                        for k, v in m.get("MessageAttributes", {}).items()
                    },
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.m.source_arn,
                    "awsRegion": self.rt.region,
                }
                for m in messages
            ]
        }

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        self.last_empty = None  # busy until the batch is done
        stats = self.rt.mapping_stats[self.m.uuid]
        invocation = self.rt.invoke(self.m.function_arn, self._event(messages))
        stats.invocations += 1
        stats.records_delivered += len(messages)
        if invocation.failed:
            stats.function_errors += 1
            return  # every message comes back after the visibility timeout
        failed: set[str] = set()
        if "ReportBatchItemFailures" in self.m.response_types and isinstance(invocation.result, dict):
            ids = [
                f.get("itemIdentifier") if isinstance(f, dict) else None
                for f in invocation.result.get("batchItemFailures") or []
            ]
            known = {m["MessageId"] for m in messages}
            # an identifier that is not in the batch fails the whole batch
            failed = known if any(i not in known for i in ids) else set(ids)  # type: ignore[arg-type]
        if failed:
            stats.batch_item_failures += 1
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )


# ------------------------------------------------------------------------- async


@dataclass(order=True)
class AsyncEvent:
    due: float
    seq: int
    function_arn: str = field(compare=False)
    event: Any = field(compare=False)
    first_seen: float = field(compare=False)
    attempts: int = field(compare=False, default=0)


# ------------------------------------------------------------------------- runtime


class Runtime:
    def __init__(
        self,
        session: Any,
        endpoint: str,
        prefix: str,
        workdir: Path,
        *,
        region: str = server.REGION,
        poll_interval: float = 0.2,
        async_retry_delays: tuple[float, ...] = (0.5, 1.0),
        log: Callable[[str], None] | None = None,
    ):
        self.session, self.endpoint, self.prefix, self.workdir = session, endpoint, prefix, Path(workdir)
        self.region, self.poll_interval, self.async_retry_delays = region, poll_interval, async_retry_delays
        self.log = log or (lambda _msg: None)
        self.stopping = threading.Event()
        self.stack: Stack | None = None
        self.processes: dict[str, FunctionProcess] = {}
        self.pollers: list[Poller] = []
        self.mapping_stats: dict[str, MappingStats] = {}
        self.invocations: Counter[str] = Counter()
        self.invocation_errors: Counter[str] = Counter()
        self.async_stats: Counter[str] = Counter()
        self.on_failure_log: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.python_note = ""
        self._async: list[AsyncEvent] = []
        self._async_cv = threading.Condition()
        self._async_busy = 0
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint)
        return self._clients[service]

    # --- reading the deployed stack ---------------------------------------------------
    def start(self) -> Runtime:
        from moto.awslambda.models import lambda_backends

        self.stack = Stack.read(self.session, self.prefix, self.endpoint)
        backend = lambda_backends[ACCOUNT][self.region]
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        # each function's Lambda runtime's Python (native wheels in the layer are built for it) and its boto3
        pythons: dict[str, tuple[str, Path]] = {}

        def runtime_python(runtime: str) -> tuple[str, Path]:
            if runtime not in pythons:
                python, note = lambda_python.interpreter(runtime)
                self.python_note = self.python_note or note
                cache = Path.home() / ".cache" / "cnm-ingest" / "localaws"
                pythons[runtime] = python, lambda_python.runtime_site(python, cache)
            return pythons[runtime]

        layer_dirs: dict[str, Path] = {}  # a layer version shared by functions is extracted once

        def layer_dir(arn: str) -> Path:
            if arn not in layer_dirs:
                where = self.workdir / "layers" / arn.rsplit(":", 2)[-2] / arn.rsplit(":", 1)[-1]
                layer_dirs[arn] = _unzip(_layer_zip(backend, arn), where)
            return layer_dirs[arn]

        for fn in self.stack.functions.values():
            # the zip Terraform uploaded, and each layer version's zip, as stored by the emulator
            code = _unzip(backend.get_function(fn.name).code_bytes, self.workdir / "functions" / fn.name)
            layers = [layer_dir(arn) for arn in fn.layers]
            python, site = runtime_python(fn.runtime)
            self.processes[fn.arn] = FunctionProcess(
                fn,
                code,
                layers,
                self.endpoint,
                self.region,
                self.workdir / "logs" / f"{fn.name}.log",
                python=python,
                runtime_site=site,
            )
        server.set_lambda_invoker(self._sfn_invoke)
        server.set_sns_lambda_deliverer(self._sns_deliver)
        server.set_moto_event_source_push(False)
        kinesis = self.client("kinesis")
        for m in self.stack.mappings:
            self.mapping_stats[m.uuid] = MappingStats()
            if m.state not in ("Enabled", "Creating", "Enabling", "Updating"):
                continue
            if ":sqs:" in m.source_arn:  # the recorder's: Step Functions status events via EventBridge
                self.pollers.append(SqsPoller(self, m))
                continue
            stream_arn = m.source_arn.split("/consumer/")[0]  # an enhanced fan-out consumer reads its stream
            for shard in kinesis.list_shards(StreamARN=stream_arn)["Shards"]:
                self.pollers.append(KinesisPoller(self, m, stream_arn, shard["ShardId"]))
        for poller in self.pollers:
            self._spawn(poller.loop, f"poller-{poller.shard_id}")
        self._spawn(self._async_loop, "async")
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        with self._async_cv:
            self._async_cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        for proc in self.processes.values():
            proc.stop()
        server.set_lambda_invoker(None)
        server.set_sns_lambda_deliverer(None)
        server.set_moto_event_source_push(True)

    def __enter__(self) -> Runtime:  # noqa: PYI034 - start() returns the runtime itself
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- invoking -----------------------------------------------------------------------
    def function_by_arn(self, name_or_arn: str) -> Function:
        return self.process(name_or_arn).fn

    def process(self, name_or_arn: str) -> FunctionProcess:
        base = name_or_arn.removesuffix(":$LATEST")
        for arn, proc in self.processes.items():
            if base in (arn, proc.fn.name):
                return proc
        raise KeyError(f"function not deployed: {name_or_arn}")

    def invoke(self, name_or_arn: str, event: Any) -> Invocation:
        """A synchronous invocation (RequestResponse)."""
        proc = self.process(name_or_arn)
        invocation = proc.invoke(event)
        self.invocations[proc.fn.name] += 1
        if invocation.error is not None:
            self.invocation_errors[proc.fn.name] += 1
            self.log(
                f"{proc.fn.name} failed: {invocation.error.get('errorType')}: "
                f"{str(invocation.error.get('errorMessage'))[:200]}"
            )
        return invocation

    def _sfn_invoke(self, parameters: dict[str, Any], region: str, state_credentials: Any = None) -> dict[str, Any]:
        """A Step Functions Lambda task: the Invoke API's answer, as moto's interpreter expects it."""
        payload = parameters.get("Payload")
        event = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
        invocation = self.invoke(parameters["FunctionName"], event)
        answer: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        if invocation.failed:
            answer.update(FunctionError="Unhandled", Payload=invocation.error)
        else:
            answer["Payload"] = invocation.result
        return answer

    # --- asynchronous invocations (SNS -> Lambda) ----------------------------------------
    def _sns_deliver(
        self, subscription: Any, message: str, message_id: str, subject: str | None, attributes: dict[str, Any] | None
    ) -> None:
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": subscription.arn,
                    "Sns": {
                        "Type": "Notification",
                        "MessageId": message_id,
                        "TopicArn": subscription.topic.arn,
                        "Subject": subject,
                        "Message": message,
                        "Timestamp": _iso(time.time()),
                        "SignatureVersion": "1",
                        "Signature": "localaws",
                        "SigningCertUrl": "https://localaws/cert",
                        "UnsubscribeUrl": f"https://localaws/unsubscribe/{subscription.arn}",
                        "MessageAttributes": {
                            k: {"Type": v.get("Type", v.get("DataType")), "Value": v.get("Value", v.get("StringValue"))}
                            for k, v in (attributes or {}).items()
                        },
                    },
                }
            ]
        }
        self.invoke_async(subscription.endpoint, event)

    def invoke_async(self, name_or_arn: str, event: Any) -> None:
        now = time.time()
        with self._async_cv:
            heapq.heappush(self._async, AsyncEvent(now, next(self._seq), self.process(name_or_arn).fn.arn, event, now))
            self.async_stats["queued"] += 1
            self._async_cv.notify()

    def _async_loop(self) -> None:
        while not self.stopping.is_set():
            with self._async_cv:
                while not self.stopping.is_set() and (not self._async or self._async[0].due > time.time()):
                    timeout = (self._async[0].due - time.time()) if self._async else None
                    self._async_cv.wait(timeout=timeout if timeout is None else max(0.01, timeout))
                if self.stopping.is_set():
                    return
                item = heapq.heappop(self._async)
                self._async_busy += 1
            try:
                self._run_async(item)
            except Exception as exc:  # the dispatcher never dies silently
                self.errors.append(f"async {item.function_arn}: {exc!r}")
            finally:
                with self._async_cv:
                    self._async_busy -= 1

    def _run_async(self, item: AsyncEvent) -> None:
        fn = self.function_by_arn(item.function_arn)
        config = fn.async_config or {}
        max_retries = int(config.get("MaximumRetryAttempts", 2))
        max_age = int(config.get("MaximumEventAgeInSeconds", 21600))
        destinations = config.get("DestinationConfig", {})
        invocation = self.invoke(item.function_arn, item.event)
        item.attempts += 1
        if not invocation.failed:
            self.async_stats["succeeded"] += 1
            target = destinations.get("OnSuccess", {}).get("Destination")
            if target:
                self.send_to_destination(target, self._invocation_record(item, invocation, "Success"))
            return
        if item.attempts <= max_retries and time.time() - item.first_seen < max_age:
            self.async_stats["retried"] += 1
            delay = self.async_retry_delays[min(item.attempts - 1, len(self.async_retry_delays) - 1)]
            with self._async_cv:
                item.due = time.time() + delay
                heapq.heappush(self._async, item)
                self._async_cv.notify()
            return
        condition = "RetriesExhausted" if item.attempts > max_retries else "EventAgeExceeded"
        self.async_stats["failed"] += 1
        target = destinations.get("OnFailure", {}).get("Destination")
        if target:
            self.send_to_destination(target, self._invocation_record(item, invocation, condition))
        else:
            self.async_stats["discarded"] += 1

    @staticmethod
    def _invocation_record(item: AsyncEvent, invocation: Invocation, condition: str) -> dict[str, Any]:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if invocation.failed:
            response["functionError"] = "Unhandled"
        return {
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "requestContext": {
                "requestId": invocation.request_id,
                "functionArn": f"{item.function_arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": item.attempts,
            },
            "requestPayload": item.event,
            "responseContext": response,
            "responsePayload": invocation.error if invocation.failed else invocation.result,
        }

    def send_to_destination(self, arn: str, record: dict[str, Any]) -> None:
        """An SQS queue, SNS topic or Lambda function as a destination."""
        body = json.dumps(record)
        service = arn.split(":")[2]
        if service == "sqs":
            name = arn.rsplit(":", 1)[-1]
            url = self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
            self.client("sqs").send_message(QueueUrl=url, MessageBody=body)
        elif service == "sns":
            self.client("sns").publish(TopicArn=arn, Message=body)
        elif service == "lambda":
            self.invoke_async(arn, record)
        else:
            raise ValueError(f"unsupported destination {arn}")

    # --- waiting --------------------------------------------------------------------------
    def busy_reasons(self, since: float = 0.0) -> list[str]:
        """What is still going on (for progress output)."""
        reasons = []
        with self._async_cv:
            if self._async or self._async_busy:
                reasons.append(f"{len(self._async)} async events queued, {self._async_busy} running")
        reasons.extend(
            f"poller {self.function_by_arn(p.m.function_arn).name}/{p.shard_id} reading"
            for p in self.pollers
            if p.last_empty is None or p.last_empty < since
        )
        return reasons

    def busy(self, since: float = 0.0) -> bool:
        """True while work is pending: a poller that has not found its shard empty after ``since``
        (a monotonic time), an asynchronous event queued or running, or a running execution."""
        with self._async_cv:
            if self._async or self._async_busy:
                return True
        if any(p.last_empty is None or p.last_empty < since for p in self.pollers):
            return True
        return bool(self.running_executions(limit=1))

    def running_executions(self, limit: int | None = None) -> list[str]:
        """ARNs of the stack's executions that are RUNNING, over every page of ListExecutions (at most
        ``limit``)."""
        sfn = self.client("stepfunctions")
        found: list[str] = []
        for machine in self.stack.state_machines.values() if self.stack else []:
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )
            for page in pages:
                found += [e["executionArn"] for e in page["executions"] if e["status"] == "RUNNING"]
                if limit is not None and len(found) >= limit:
                    return found[:limit]
        return found

    def wait_idle(self, timeout: float = 180, settle: int = 3) -> bool:
        """Wait until every poller has caught up, no async event is pending and no execution
        runs, ``settle`` checks in a row; False at ``timeout``."""
        start = time.monotonic()
        deadline = start + timeout
        quiet = 0
        while time.monotonic() < deadline:
            quiet = 0 if self.busy(since=start) else quiet + 1
            if quiet >= settle:
                return True
            time.sleep(self.poll_interval * 2)
        return False
