"""CnmResponse side effects (issue 8): a response that cannot be put is parked in the DLQ as a
response envelope and the execution ends FAILED; a retry after a successful put does not put a
second response. Every put, publish and DLQ message is counted; nothing is collapsed.

On the applied examples/complete (tests/functional/workflow/conftest.py): its CnmResponse answers
on the response stream and on the provider's topic (response_destinations); the retry counts are
the applied definition's."""

from __future__ import annotations

import json
from collections import Counter

import jsonschema
import pytest
from botocore.exceptions import ClientError

from cnm_ingest import aws, dlq
from tests.functional.workflow.test_state_machine import make_cnm


def count_calls(service: str) -> Counter:
    """Every API call of the handlers' (cached) client for ``service``, by operation name."""
    calls: Counter = Counter()
    aws.client(service).meta.events.register(f"before-call.{service}", lambda model, **_: calls.update([model.name]))
    return calls


def failing(monkeypatch, service: str, method: str, code: str, times: int | None = None) -> Counter:
    """Make ``aws.client(service).<method>`` raise ``code`` (``times`` times, or always); counts every call."""
    client = aws.client(service)
    real = getattr(client, method)
    seen: Counter = Counter()

    def fake(**kw):
        seen["calls"] += 1
        if times is None or seen["calls"] <= times:
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, method)
        return real(**kw)

    monkeypatch.setattr(client, method, fake)
    return seen


def drain(sqs, queue: str) -> list[dict]:
    out = []
    while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return out


@pytest.mark.parametrize("outcome", ["SUCCESS", "FAILURE"])
@pytest.mark.parametrize("fault", ["AccessDenied", "ResourceNotFound", "throttled after retries"])
def test_an_undeliverable_response_is_parked_once_and_the_execution_fails(
    wf, reference_schema, monkeypatch, outcome, fault
):
    if fault == "ResourceNotFound":  # the response stream deleted: the real behaviour of a missing stream
        wf.kinesis.delete_stream(StreamARN=wf.stream_arn, EnforceConsumerDeletion=True)
        puts = count_calls("kinesis")
    else:  # what our code sees once botocore's own retries gave up
        code = "AccessDeniedException" if fault == "AccessDenied" else "ProvisionedThroughputExceededException"
        puts = failing(monkeypatch, "kinesis", "put_record", code)
    cnm = make_cnm(wf, checksum=None if outcome == "SUCCESS" else "0" * 32)
    retry = wf.retry("CnmResponse")  # examples/complete: response_retry_max_attempts 6, interval 5 s
    desc = wf.run(cnm)

    assert desc["status"] == "FAILED", wf.explain(desc)
    if fault != "ResourceNotFound":
        assert wf.responses() == []
    parked = wf.dead_letters()
    assert len(parked) == 1, parked  # exactly one DLQ entry, duplicates not collapsed
    [env] = parked
    assert dlq.is_envelope(env) and env["envelope"] == "response" and env["source"] == "cnm_response"
    assert env["record"] is None and env["payload_s3"] is None  # nothing a notification redrive could replay
    assert env["failure_context"]["execution_arn"] == desc["executionArn"]
    jsonschema.Draft7Validator(reference_schema).validate(env["response"])
    assert env["response"]["identifier"] == cnm["identifier"]
    assert env["response"]["response"]["status"] == outcome
    # transient errors were retried by Step Functions (1 + every retry of the applied Retry); the others were not
    attempts = puts["PutRecord"] if fault == "ResourceNotFound" else puts["calls"]
    transient = fault == "throttled after retries"
    assert attempts == (1 + retry["MaxAttempts"] if transient else 1)
    assert wf.waits == (wf.backoff(retry, retry["MaxAttempts"]) if transient else [])
    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["status"] == "FAILED"
    if outcome == "FAILURE":  # StopStatus keeps the original error
        assert execution["original_error"]["Error"] == "ChecksumMismatchError"
    else:
        assert execution["original_error"]["Error"] == "ResponseNotDelivered"


def test_a_retry_after_a_successful_put_does_not_put_again(wf, reference_schema, monkeypatch):
    """The put succeeds, the topic publish is throttled: Step Functions retries CnmResponse, which
    publishes but does not put a second response."""
    queue = wf.provider_subscriber()
    puts = count_calls("kinesis")
    publishes = failing(monkeypatch, "sns", "publish", "Throttling", times=1)
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)
    assert len(wf.calls["cnm_response"]) == 2  # the first attempt failed after its put
    assert wf.waits == wf.backoff(wf.retry("CnmResponse"), 1)
    assert puts["PutRecord"] == 1
    assert publishes["calls"] == 2
    responses = wf.responses()
    assert [r["response"]["status"] for r in responses] == ["SUCCESS"]
    assert drain(wf.sqs, queue) == responses
    assert wf.dead_letters() == []


def test_respond_and_park_are_idempotent_per_execution_and_status(wf, samples):
    from cnm_ingest.workflow import cnm_response

    cnm = samples["cumulus_sns_v1.0_notification.json"]
    message = {"meta": {"cnm": cnm}, "payload": {}}
    puts = count_calls("kinesis")
    with wf.env("cnm_response"):
        for _ in range(3):  # three deliveries of the same invocation
            cnm_response.respond(message, {"id": "arn:exec:1"}, stream_arn=wf.stream_arn)
        cnm_response.respond(message, {"id": "arn:exec:2"}, stream_arn=wf.stream_arn)  # another execution
    assert puts["PutRecord"] == 2 and len(wf.responses()) == 2

    failed = {**message, "response_exception": {"Error": "AccessDeniedException", "Cause": "denied"}}
    with wf.env("cnm_response"):
        for _ in range(3):
            out = cnm_response.park(failed, {"id": "arn:exec:3"}, queue_url=wf.dlq_url)
    assert out["response_parked"] is True and out["exception"]["Error"] == "ResponseNotDelivered"
    assert "response_exception" not in out
    assert len(wf.dead_letters()) == 1


def test_a_large_parked_response_is_offloaded(wf):
    response = {"identifier": "x", "response": {"status": "SUCCESS"}, "product": {"files": ["f" * 300_000]}}
    with wf.env("cnm_response"):
        env = dlq.response_envelope(response, "AccessDenied", "ClientError")
    assert env["response"] is None
    pointer = env["response_s3"]
    assert pointer["bucket"] == wf.payload_bucket  # the applied payload bucket, under the deployed prefix
    body = aws.client("s3").get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read()
    assert json.loads(body) == response
    assert len(dlq.dumps(env)) < 256 * 1024
    assert dlq.records_from_dlq_message(dlq.dumps(env))[0].payload is None  # never replayed as a notification


def test_a_large_response_retried_returns_exactly_what_was_put(wf, samples):
    """Above INLINE_RESPONSE_BYTES the saved result is a payload-bucket reference;
    a retry still sends the same bytes."""
    from cnm_ingest.workflow import cnm_response

    cnm = samples["cumulus_sns_v1.0_notification.json"]
    files = [
        {
            "type": "data",
            "name": f"f{i:05d}.nc",
            "bucket": wf.staging_bucket,
            "key": f"p/f{i:05d}.nc",
            "size": 1,
            "checksumType": "md5",
            "checksum": "0" * 32,
        }
        for i in range(1000)
    ]
    message = {"meta": {"cnm": cnm}, "payload": {"granules": [{"granuleId": "G", "files": files}]}}
    puts = count_calls("kinesis")
    with wf.env("cnm_response"):
        first = cnm_response.respond(message, {"id": "arn:exec:big"}, stream_arn=wf.stream_arn)
        again = cnm_response.respond(message, {"id": "arn:exec:big"}, stream_arn=wf.stream_arn)
        put = first["meta"].get("cnm_response") or aws_load(first["meta"]["cnm_response_ref"])
        again_put = again["meta"].get("cnm_response") or aws_load(again["meta"]["cnm_response_ref"])
    assert len(json.dumps(put)) > cnm_response.INLINE_RESPONSE_BYTES
    assert puts["PutRecord"] == 1
    assert wf.responses() == [put]
    assert again_put == put


def aws_load(ref):  # a stored part of the workflow message
    from cnm_ingest.workflow import payload

    return payload.load(ref)


def test_a_failing_idempotency_store_is_retried_not_parked(wf, monkeypatch):
    """Issue 20 as the soak met it, on the applied state machine: the put's success write fails after the put
    (UpdateItem InternalFailure; written again in-process) and the topic's in-progress write is throttled
    (PutItem Throttling). CnmResponse is retried (IdempotencyStoreError, its own retrier), nothing is parked,
    one answer on each destination, and the execution SUCCEEDS (before the fix: answered SUCCESS, parked,
    FAILED)."""
    from cnm_ingest import idempotency
    from tests.functional.core.idempotency_faults import Faults, idempotency_key

    monkeypatch.setattr(idempotency, "sleep", lambda _s: None)  # the late success write's backoff

    def on(prefix: str):
        return lambda p: (
            p.get("TableName") == wf.idempotency_table and idempotency_key(p).startswith(f"cnm-response.{prefix}#")
        )

    queue = wf.provider_subscriber()
    puts = count_calls("kinesis")
    faults = Faults()
    faults.add("dynamodb", "UpdateItem", "before", on("put"), fault="InternalFailure", times=1)
    faults.add("dynamodb", "PutItem", "before", on("publish"), fault="Throttling", times=1)
    desc = wf.run(make_cnm(wf))
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)
    assert faults.log == ["before dynamodb.UpdateItem InternalFailure", "before dynamodb.PutItem Throttling"]
    assert len(wf.calls["cnm_response"]) == 2  # retried once, for the throttled in-progress write
    assert wf.waits == wf.backoff(wf.retry("CnmResponse", "IdempotencyStoreError"), 1)
    assert puts["PutRecord"] == 1
    responses = wf.responses()
    assert [r["response"]["status"] for r in responses] == ["SUCCESS"]
    assert drain(wf.sqs, queue) == responses  # one publish, the same response
    assert wf.dead_letters() == []
    execution = wf.status_item(f"EXECUTION#{desc['executionArn']}", "EXECUTION")
    assert execution["status"] == "SUCCEEDED"
