"""localaws.runtime on a small stack: the AWS behaviours it promises, each shown.

The stack here is a toy (one stream, two functions, a topic, two queues) created with
boto3: these tests are about the runtime's event source mapping, async invocation and
isolation semantics, not about the pipeline (tests/e2e runs the pipeline Terraform applied).
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import boto3
import pytest
from botocore.exceptions import ClientError

import build
from localaws.runtime import Runtime

TOY = """
import base64, importlib.util, json, os, sys
SEEN = []
def handler(event, context):
    failures = []
    for r in event.get("Records", []):
        if "kinesis" in r:
            data = base64.b64decode(r["kinesis"]["data"]).decode()
            if data.startswith("crash"):
                raise RuntimeError("a crash record is in the batch")
            if data.startswith("fail"):
                failures.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
        else:
            if r["Sns"]["Message"] == "boom":
                raise ValueError("boom")
    python = "%d.%d" % sys.version_info[:2]
    found = {m: importlib.util.find_spec(m) is not None for m in ("boto3", "moto", "pytest")}
    return {"batchItemFailures": failures, "mode": os.environ["MODE"], "leak": os.environ.get("SECRET_OF_OTHERS"),
            "python": python, "found": found}
"""
NEEDS_UNSET = """
import os
TABLE = os.environ["RULES_TABLE"]  # not in this function's environment
def handler(event, context):
    return TABLE
"""


def _zip(source: str, name: str = "toy.py") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, source)
    return buf.getvalue()


@pytest.fixture
def toy(local_aws, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_OF_OTHERS", "the test process's environment")
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-west-2")
    c = lambda s: session.client(s, endpoint_url=local_aws.endpoint)  # noqa: E731
    prefix = f"toy{uuid.uuid4().hex[:6]}"
    role = c("iam").create_role(
        RoleName=prefix,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    lam, sqs, kin, sns = c("lambda"), c("sqs"), c("kinesis"), c("sns")
    fn = lam.create_function(
        FunctionName=f"{prefix}-toy",
        Runtime="python3.12",
        Role=role,
        Handler="toy.handler",
        Code={"ZipFile": _zip(TOY)},
        Timeout=10,
        Environment={"Variables": {"MODE": "toy"}},
    )
    lam.create_function(
        FunctionName=f"{prefix}-needs-unset",
        Runtime="python3.12",
        Role=role,
        Handler="needs.handler",
        Code={"ZipFile": _zip(NEEDS_UNSET, "needs.py")},
        Timeout=10,
    )
    failures = sqs.create_queue(QueueName=f"{prefix}-on-failure")["QueueUrl"]
    failures_arn = sqs.get_queue_attributes(QueueUrl=failures, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    kin.create_stream(StreamName=f"{prefix}-stream", ShardCount=1)
    stream = kin.describe_stream_summary(StreamName=f"{prefix}-stream")["StreamDescriptionSummary"]["StreamARN"]
    lam.create_event_source_mapping(
        EventSourceArn=stream,
        FunctionName=fn["FunctionArn"],
        StartingPosition="TRIM_HORIZON",
        BatchSize=4,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=2,
        MaximumRecordAgeInSeconds=3600,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": failures_arn}},
    )
    topic = sns.create_topic(Name=f"{prefix}-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn["FunctionArn"])
    lam.put_function_event_invoke_config(
        FunctionName=fn["FunctionName"],
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": failures_arn}},
    )
    runtime = Runtime(session, local_aws.endpoint, prefix, tmp_path / "rt", async_retry_delays=(0.1,))
    with runtime:
        yield {
            "runtime": runtime,
            "kinesis": kin,
            "stream": stream,
            "sqs": sqs,
            "failures": failures,
            "sns": sns,
            "topic": topic,
            "fn": fn,
            "prefix": prefix,
        }


def _drain(sqs, url):
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _put(toy, *payloads: str) -> list[str]:
    """One PutRecords call, so the records arrive together (one batch)."""
    got = toy["kinesis"].put_records(
        StreamARN=toy["stream"], Records=[{"Data": p.encode(), "PartitionKey": "k"} for p in payloads]
    )["Records"]
    return [r["SequenceNumber"] for r in got]


def test_reads_what_was_deployed(toy):
    rt = toy["runtime"]
    (mapping,) = rt.stack.mappings
    assert (mapping.batch_size, mapping.bisect, mapping.maximum_retry_attempts) == (4, True, 2)
    assert mapping.response_types == ["ReportBatchItemFailures"]
    fn = rt.function_by_arn(toy["fn"]["FunctionArn"])
    assert fn.environment == {"MODE": "toy"} and fn.async_config["MaximumRetryAttempts"] == 1


def test_function_sees_only_its_own_environment(toy):
    result = toy["runtime"].invoke(f"{toy['prefix']}-toy", {"Records": []})
    assert {k: result.result[k] for k in ("batchItemFailures", "mode", "leak")} == {
        "batchItemFailures": [],
        "mode": "toy",
        "leak": None,
    }


def test_function_runs_on_the_lambda_runtime_python_with_only_the_runtime_libraries(toy):
    """Python 3.12 as the function's Runtime says (the layer's native wheels are built for it), boto3 from the
    runtime, and nothing of the test environment (moto, pytest) importable."""
    result = toy["runtime"].invoke(f"{toy['prefix']}-toy", {"Records": []}).result
    assert result["python"] == build.RUNTIME.removeprefix("python")
    assert result["found"] == {"boto3": True, "moto": False, "pytest": False}


def test_a_variable_the_module_does_not_set_fails_as_on_aws(toy):
    result = toy["runtime"].invoke(f"{toy['prefix']}-needs-unset", {})
    assert result.failed and result.error["errorType"] == "KeyError" and "RULES_TABLE" in result.error["errorMessage"]


def test_partial_batch_response_retries_from_the_lowest_failure_then_gives_up(toy):
    rt = toy["runtime"]
    seqs = _put(toy, "ok-1", "fail-2", "ok-3")
    assert rt.wait_idle(60)
    (record,) = _drain(toy["sqs"], toy["failures"])
    info = record["KinesisBatchInfo"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3  # first try + 2 retries
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[1], seqs[2], 2)
    stats = rt.mapping_stats[rt.stack.mappings[0].uuid]
    assert stats.invocations == 3  # [ok-1, fail-2, ok-3], then [fail-2, ok-3] twice
    assert stats.retries == 2 and stats.batch_item_failures == 3 and stats.on_failure_records == 1
    assert rt.pollers[0].checkpoint == seqs[2]


def test_bisect_isolates_a_crashing_record(toy):
    rt = toy["runtime"]
    seqs = _put(toy, "ok-a", "ok-b", "crash-c", "ok-d")
    assert rt.wait_idle(60)
    (record,) = _drain(toy["sqs"], toy["failures"])
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[2], seqs[2], 1)
    assert record["responseContext"]["functionError"] == "Unhandled"
    stats = rt.mapping_stats[rt.stack.mappings[0].uuid]
    # [a b c d] -> [a b] ok, [c d] -> [c] fails 3 times (split does not count), [d] ok
    assert stats.bisections == 2 and stats.on_failure_records == 1 and stats.retries == 2


def test_sns_to_lambda_is_async_with_retries_and_on_failure_destination(toy):
    rt = toy["runtime"]
    toy["sns"].publish(TopicArn=toy["topic"], Message="fine")
    toy["sns"].publish(TopicArn=toy["topic"], Message="boom")
    assert rt.wait_idle(60)
    (record,) = _drain(toy["sqs"], toy["failures"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"]["Records"][0]["Sns"]["Message"] == "boom"
    assert record["requestPayload"]["Records"][0]["Sns"]["TopicArn"] == toy["topic"]
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert rt.async_stats["succeeded"] == 1 and rt.async_stats["retried"] == 1 and rt.async_stats["failed"] == 1


SQS_TOY = """
def handler(event, context):
    failures = []
    for r in event["Records"]:
        assert r["eventSource"] == "aws:sqs"
        if r["body"].startswith("crash"):
            raise RuntimeError("a crash message is in the batch")
        if r["body"].startswith("fail"):
            failures.append({"itemIdentifier": r["messageId"]})
    return {"batchItemFailures": failures}
"""


@pytest.fixture
def sqs_toy(local_aws, tmp_path):
    """One function on an SQS queue (visibility 1 s, to a DLQ after 2 receives), as modules/recorder maps its buffer."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-west-2")
    c = lambda s: session.client(s, endpoint_url=local_aws.endpoint)  # noqa: E731
    prefix = f"sqstoy{uuid.uuid4().hex[:6]}"
    role = c("iam").create_role(RoleName=prefix, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam, sqs = c("lambda"), c("sqs")
    fn = lam.create_function(
        FunctionName=f"{prefix}-fn",
        Runtime="python3.12",
        Role=role,
        Handler="toy.handler",
        Code={"ZipFile": _zip(SQS_TOY)},
        Timeout=10,
    )
    dlq = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=f"{prefix}-queue",
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=fn["FunctionArn"],
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    with Runtime(session, local_aws.endpoint, prefix, tmp_path / "rt") as rt:
        yield {"runtime": rt, "sqs": sqs, "queue": queue, "dlq": dlq}


def _wait_dlq(sqs, dlq, expected: int, timeout: float = 30.0) -> list[str]:
    import time

    deadline, bodies = time.monotonic() + timeout, []
    while len(bodies) < expected and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies += [m["Body"] for m in got]
    return sorted(bodies)


def test_sqs_mapping_deletes_what_succeeded_and_redrives_reported_failures(sqs_toy):
    rt, sqs = sqs_toy["runtime"], sqs_toy["sqs"]
    sqs.send_message_batch(
        QueueUrl=sqs_toy["queue"],
        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(["ok-1", "fail-2", "ok-3 #?..", "ok-4 é"])],
    )
    # the failed message comes back after the visibility timeout, is failed again, then SQS moves it to the DLQ
    assert _wait_dlq(sqs, sqs_toy["dlq"], 1) == ["fail-2"]
    assert rt.wait_idle(30)
    attrs = sqs.get_queue_attributes(QueueUrl=sqs_toy["queue"], AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    (mapping,) = rt.stack.mappings
    stats = rt.mapping_stats[mapping.uuid]
    assert stats.records_delivered == 4 + 1  # the four, then fail-2 once more (its second receive)
    assert stats.batch_item_failures == 2 and stats.function_errors == 0


def test_sqs_mapping_function_error_returns_the_whole_batch(sqs_toy):
    rt, sqs = sqs_toy["runtime"], sqs_toy["sqs"]
    sqs.send_message_batch(
        QueueUrl=sqs_toy["queue"], Entries=[{"Id": "0", "MessageBody": "ok-a"}, {"Id": "1", "MessageBody": "crash-b"}]
    )
    assert _wait_dlq(sqs, sqs_toy["dlq"], 2) == ["crash-b", "ok-a"]  # a function error deletes nothing
    (mapping,) = rt.stack.mappings
    assert rt.mapping_stats[mapping.uuid].function_errors == 2


def test_an_idle_queue_is_not_received_from_and_a_delayed_message_still_arrives(sqs_toy):
    """The SQS poller asks moto's queue (in this process) before each receive: no ReceiveMessage while nothing is
    visible; a message delayed 2 s, which no write makes visible, is received once its delay is over."""
    rt, sqs = sqs_toy["runtime"], sqs_toy["sqs"]
    (poller,) = rt.pollers
    received: list[int] = []
    poller.sqs.meta.events.register(
        "after-call.sqs.ReceiveMessage", lambda parsed, **_: received.append(len(parsed.get("Messages", [])))
    )
    assert rt.wait_idle(60)
    time.sleep(1.5)  # about 7 rounds of the poller at 0.2 s
    assert received == []
    sqs.send_message(QueueUrl=sqs_toy["queue"], MessageBody="ok-delayed", DelaySeconds=2)
    time.sleep(1.0)
    assert received == []  # delayed: not visible yet
    _wait(lambda: sum(received) == 1)
    assert rt.wait_idle(60) and _drain(sqs, sqs_toy["dlq"]) == []
    assert rt.mapping_stats[rt.stack.mappings[0].uuid].records_delivered == 1


def test_rewind_replays_the_shard_once_even_while_the_poller_is_reading(toy):
    """A replay asked for from another thread is done by the poller itself before its next batch, so a
    read under way cannot undo it, and the poller counts as busy (pending) until it has replayed."""
    rt = toy["runtime"]
    _put(toy, "ok-1", "ok-2", "ok-3")
    assert rt.wait_idle(60)
    stats = rt.mapping_stats[rt.stack.mappings[0].uuid]
    assert stats.records_delivered == 3
    for round_ in (1, 2):
        (poller,) = rt.pollers
        poller.rewind()
        assert poller.pending() and poller.last_empty is None
        assert rt.wait_idle(60)
        assert not poller.pending()
        assert stats.records_delivered == 3 * (1 + round_)


def test_an_idle_shard_is_read_again_only_after_a_write_and_no_record_is_missed(toy):
    """A shard a read found empty is not read again until a Kinesis write reaches the local AWS (any stream, a
    failed one too); records put right after the empty read, before the poller noted it, are still delivered."""
    rt, kin = toy["runtime"], toy["kinesis"]
    (poller,) = rt.pollers
    stats = rt.mapping_stats[rt.stack.mappings[0].uuid]
    reads: list[int] = []

    def counted(parsed, **_):
        reads.append(len(parsed.get("Records", [])))

    poller.kinesis.meta.events.register("after-call.kinesis.GetRecords", counted)
    _put(toy, "ok-1")
    assert rt.wait_idle(60) and stats.records_delivered == 1
    idle = len(reads)
    time.sleep(1.5)  # about 7 rounds of the poller at 0.2 s
    assert len(reads) == idle, reads  # nothing written: not read
    assert rt.wait_idle(60)  # and the poller still counts as caught up
    kin.create_stream(StreamName=f"{toy['prefix']}-other", ShardCount=1)  # a write elsewhere: read once more
    _wait(lambda: len(reads) > idle)
    with pytest.raises(ClientError):  # a write that fails counts as well (the counter does not tell them apart)
        kin.put_record(StreamName=f"{toy['prefix']}-missing", Data=b"x", PartitionKey="k")
    _wait(lambda: len(reads) > idle + 1)
    assert stats.records_delivered == 1

    def put_after_the_empty_read(parsed, **_):  # in the poller's thread, before it notes the shard empty
        if not parsed.get("Records") and not late:
            late.extend(_put(toy, "ok-late"))

    late: list[str] = []
    poller.kinesis.meta.events.register("after-call.kinesis.GetRecords", put_after_the_empty_read)
    _put(toy, "ok-2")
    _wait(lambda: stats.records_delivered == 3)
    assert late and rt.wait_idle(60) and stats.records_delivered == 3  # each record once


def test_without_a_local_aws_in_this_process_nothing_is_counted_and_every_round_reads(toy, monkeypatch):
    """A runtime pointed at a server it does not share a process with could not see writes: then the counter says
    None, and the poller reads its shard every round (as before the counter)."""
    from localaws import server

    rt = toy["runtime"]
    assert isinstance(server.kinesis_writes(), int)
    (poller,) = rt.pollers
    reads: list[int] = []
    poller.kinesis.meta.events.register("after-call.kinesis.GetRecords", lambda **_: reads.append(1))
    assert rt.wait_idle(60)
    monkeypatch.setattr(server, "_counting", False)
    assert server.kinesis_writes() is None
    _wait(lambda: len(reads) >= 3)  # idle, and read anyway


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sqs_push_stays_off_under_concurrent_sends(local_aws, monkeypatch):
    """While the runtime's pollers deliver (moto's push off), many threads sending to a mapped queue at
    once never reach moto's own (Docker-based) SQS -> Lambda push, and the queue keeps its mapping.
    (The push was hidden by swapping the queue's mappings attribute: concurrent sends restored each
    other's empty swap out of order, and one send went to moto's push.)"""
    import sys
    import threading

    from moto.awslambda import models as lambda_models
    from moto.sqs.models import sqs_backends

    from localaws import server

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-west-2")
    c = lambda s: session.client(s, endpoint_url=local_aws.endpoint)  # noqa: E731
    prefix = f"race{uuid.uuid4().hex[:6]}"
    role = c("iam").create_role(RoleName=prefix, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    fn = c("lambda").create_function(
        FunctionName=f"{prefix}-fn", Runtime="python3.12", Role=role, Handler="toy.handler", Code={"ZipFile": _zip(TOY)}
    )
    url = c("sqs").create_queue(QueueName=f"{prefix}-q")["QueueUrl"]
    arn = c("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    c("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName=fn["FunctionArn"], BatchSize=10)
    backend = sqs_backends["123456789012"]["us-west-2"]
    queue = backend.get_queue(f"{prefix}-q")
    assert list(queue.lambda_event_source_mappings) == [fn["FunctionArn"]]
    pushed: list[str] = []
    monkeypatch.setattr(
        lambda_models.LambdaBackend, "send_sqs_batch", lambda self, *a, **k: pushed.append(a[0]) or True
    )
    threads, per_thread = 8, 100
    server.set_moto_event_source_push(False)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # switch threads as often as possible: the race needs a switch mid-send
    try:
        go = threading.Barrier(threads)

        def send(t: int) -> None:
            go.wait()
            for i in range(per_thread):
                backend.send_message(queue_name=f"{prefix}-q", message_body=f"{t}-{i}")

        workers = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
        server.set_moto_event_source_push(True)
    assert pushed == []
    assert list(queue.lambda_event_source_mappings) == [fn["FunctionArn"]]  # the mapping survived
    assert len(queue._messages) == threads * per_thread


def test_busy_sees_a_running_execution_on_any_page(local_aws, tmp_path):
    """ListExecutions answers 100 executions a page: the runtime is busy while any execution of its
    stack runs, on whatever page (it read only the first, and said idle with one still running)."""
    from localaws.deployed import Stack

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-west-2")
    sfn = session.client("stepfunctions", endpoint_url=local_aws.endpoint)
    prefix = f"pages{uuid.uuid4().hex[:6]}"
    definition = {
        "StartAt": "Hold",
        "States": {
            "Hold": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.hold", "BooleanEquals": True, "Next": "W"}],
                "Default": "Done",
            },
            "W": {"Type": "Wait", "Seconds": 120, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name=f"{prefix}-sm", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    held = sfn.start_execution(stateMachineArn=machine, name="held", input='{"hold": true}')["executionArn"]
    for i in range(150):
        sfn.start_execution(stateMachineArn=machine, name=f"quick-{i:03d}", input='{"hold": false}')
    rt = Runtime(session, local_aws.endpoint, prefix, tmp_path / "rt")
    rt.stack = Stack.read(session, prefix, local_aws.endpoint)
    try:
        pages = list(sfn.get_paginator("list_executions").paginate(stateMachineArn=machine))
        assert len(pages) == 2 and sum(len(p["executions"]) for p in pages) == 151
        running_on = [n for n, p in enumerate(pages) for e in p["executions"] if e["executionArn"] == held]
        assert running_on == [1]  # the second page (newest first, as AWS lists them)
        assert [e["status"] for e in pages[0]["executions"]] == ["SUCCEEDED"] * 100
        assert rt.busy()
        assert rt.running_executions() == [held]
    finally:
        sfn.stop_execution(executionArn=held)
    # the stop answers at once and the interpreter thread then ends the execution ABORTED (moto, as Step
    # Functions, says so a moment later): wait for that, on a busy machine too (CI of 3193509 read it RUNNING)
    import time as clock

    deadline = clock.monotonic() + 30
    while sfn.describe_execution(executionArn=held)["status"] == "RUNNING" and clock.monotonic() < deadline:
        clock.sleep(0.05)
    assert sfn.describe_execution(executionArn=held)["status"] == "ABORTED"
    assert not rt.busy() and rt.running_executions() == []


def test_quiesce_waits_for_the_round_under_way_and_a_stopped_poller_starts_no_other():
    """A poller stopped while a round is under way (``demo.cli_demo.paused`` replaces ``run_once``) may still
    read and deliver in that round: ``quiesce()`` returns only after it, and no round starts after that (the
    reconcile test's outage: a record put after the pause was delivered by a read already under way)."""
    import threading
    import time as clock
    from types import SimpleNamespace

    from localaws.runtime import Poller

    inside, release, rounds = threading.Event(), threading.Event(), []

    class Held(Poller):
        def __init__(self) -> None:
            self.rt = SimpleNamespace(stopping=threading.Event(), errors=[], poll_interval=0.01)
            self.m, self.shard_id, self.last_empty = SimpleNamespace(uuid="u"), "s", None

        def run_once(self) -> bool:
            rounds.append(clock.monotonic())
            inside.set()
            assert release.wait(30)
            return True

    poller = Held()
    thread = threading.Thread(target=poller.loop, daemon=True)
    thread.start()
    assert inside.wait(30)
    poller.run_once = lambda: False  # type: ignore[method-assign]  # the pause, set mid-round
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (poller.quiesce(), done.set()), daemon=True)
    waiter.start()
    assert not done.wait(0.3)  # the round under way is not over: quiesce waits for it
    release.set()
    assert done.wait(30)
    quiet = len(rounds)
    clock.sleep(0.2)
    assert len(rounds) == quiet == 1  # no round of real work after the pause
    poller.rt.stopping.set()
    thread.join(5)
