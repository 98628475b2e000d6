"""Response destinations (Kinesis streams and SNS topics) and PO.DAAC's SNS message attributes.

On the applied examples/complete (restored before each test): its response stream and the provider's
response topic (response_destinations), its idempotency table (CnmResponse's once-markers), under the
deployed CnmResponse's environment. One more stream and topic stand for further destinations a DAAC
adds (response_destinations takes any); they are receivers outside the stack, made here."""

from __future__ import annotations

import json

import pytest

from cnm_ingest.cnm import response_message
from cnm_ingest.cnm.response_message import destinations_from_env, message_attributes, send_response
from cnm_ingest.errors import ConfigurationError, WorkflowError
from localaws.pipeline import read_stream
from tests.conftest import REGION

ACCOUNT = "123456789012"


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


@pytest.fixture
def sinks(complete_world):
    """Two streams (the applied response stream, a DAAC's further one), two topics (the applied provider
    topic, a further one), each topic with a queue subscribed (raw delivery); os.environ as the deployed
    CnmResponse's for the rest of the test."""
    world = complete_world
    env = world.use("cnm_response")
    kinesis, sns, sqs = (world.client(s) for s in ("kinesis", "sns", "sqs"))
    [applied_topic] = [a for a in json.loads(env["RESPONSE_DESTINATIONS"]) if a.split(":")[2] == "sns"]
    assert env["RESPONSE_STREAM_ARN"] == world.stream("responses")
    kinesis.create_stream(StreamName="daac-further-responses", ShardCount=1)  # outside the stack
    further_stream = kinesis.describe_stream_summary(StreamName="daac-further-responses")["StreamDescriptionSummary"]
    topics = [applied_topic, sns.create_topic(Name="daac-further-responses")["TopicArn"]]  # (the 2nd outside it)
    queues = []
    for n, topic in enumerate(topics):
        queues.append(sqs.create_queue(QueueName=f"provider-copy-{n}")["QueueUrl"])
        qarn = sqs.get_queue_attributes(QueueUrl=queues[-1], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})

    class Sinks:
        distribution_endpoint = env.get("DISTRIBUTION_ENDPOINT")

        def __init__(self):
            self.streams = [env["RESPONSE_STREAM_ARN"], further_stream["StreamARN"]]
            self.topics, self.queues, self.sns, self.sqs, self.world = topics, queues, sns, sqs, world

        def records(self, arn):
            return [json.loads(r["Data"]) for r in read_stream(kinesis, arn)]

        def messages(self, queue):
            out = []
            while True:
                got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
                    "Messages", []
                )
                if not got:
                    return out
                out.extend(got)
                for m in got:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    return Sinks()


def fail_first_put(monkeypatch, failing_arn: str) -> list[str]:
    """The first put on ``failing_arn`` raises (a throttle half-way); returns the list of every put's ARN."""
    calls: list[str] = []
    real = response_message.put_response

    def flaky(response, arn):
        calls.append(arn)
        if arn == failing_arn and calls.count(arn) == 1:
            raise RuntimeError("throttled half-way")
        return real(response, arn)

    monkeypatch.setattr(response_message, "put_response", flaky)
    return calls


def test_destinations_from_env_order_dedupe_and_validation():
    env = {
        "RESPONSE_STREAM_ARN": stream_arn("r1"),
        "RESPONSE_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:t1",
        "RESPONSE_DESTINATIONS": json.dumps([stream_arn("r2"), stream_arn("r1"), f"arn:aws:sns:{REGION}:{ACCOUNT}:t2"]),
    }
    assert destinations_from_env(env) == [
        stream_arn("r1"),
        f"arn:aws:sns:{REGION}:{ACCOUNT}:t1",
        stream_arn("r2"),
        f"arn:aws:sns:{REGION}:{ACCOUNT}:t2",
    ]
    assert destinations_from_env({"RESPONSE_DESTINATIONS": json.dumps([stream_arn("x")])}) == [stream_arn("x")]


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "{}",
        '"arn"',
        "[1]",
        "[null]",
        '["arn:aws:s3:::bucket"]',
        f'["arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/"]',
        f'["arn:aws:sns:{REGION}:{ACCOUNT}:topic:subscription-id"]',
        '["arn:aws:sqs:us-west-2:1:q"]',
        '["https://x/y"]',
        f'["arn:aws:kinesis:{REGION}:{ACCOUNT}:table/x"]',
        "[]",
    ],
)
def test_bad_destinations_are_configuration_errors(raw):
    with pytest.raises(ConfigurationError):
        destinations_from_env({"RESPONSE_DESTINATIONS": raw})


def test_attributes_as_podaac_sets_them(samples):
    cnm = dict(
        samples["cumulus_sns_v1.6_notification.json"], trace="sds-run-7", collection={"name": "SWOT_X", "version": "1"}
    )
    cnm["product"] = dict(cnm["product"], dataVersion="E", dataProcessingType="reprocessing")
    r = response_message.build_response(cnm, status="FAILURE", error_message="x")
    attrs = message_attributes(r, cnm)
    assert {k: v["StringValue"] for k, v in attrs.items()} == {
        "CNM_RESPONSE_STATUS": "FAILURE",
        "COLLECTION": cnm["collection"]["name"],
        "DATA_VERSION": "E",
        "dataProcessingType": "reprocessing",
        "trace": "sds-run-7",
    }
    assert {v["DataType"] for v in attrs.values()} == {"String"}


def test_attributes_without_values_are_left_out_and_long_ones_cut():
    r = response_message.build_response(
        {
            "identifier": "i",
            "collection": "C",
            "trace": "t" * 5000,
            "product": {"dataVersion": "", "dataProcessingType": 5},
        },
        status="SUCCESS",
    )
    attrs = message_attributes(r, {"trace": "t" * 5000, "product": {"dataVersion": "", "dataProcessingType": 5}})
    assert set(attrs) == {"CNM_RESPONSE_STATUS", "COLLECTION", "trace"}
    assert len(attrs["trace"]["StringValue"]) == response_message.MAX_ATTRIBUTE_CHARS
    # the collection version stands in for a missing product.dataVersion
    r = response_message.build_response(
        {"identifier": "i", "collection": {"name": "C", "version": "7"}}, status="SUCCESS"
    )
    assert message_attributes(r, None)["DATA_VERSION"]["StringValue"] == "7"


def test_every_destination_gets_the_response_once_and_filters_work(sinks, samples):
    cnm = dict(samples["cumulus_sns_v1.6_notification.json"], collection={"name": "SWOT_X", "version": "1"})
    # a provider's subscription filter on our attributes: only FAILUREs of this collection
    sub = sinks.sns.list_subscriptions_by_topic(TopicArn=sinks.topics[1])["Subscriptions"][0]["SubscriptionArn"]
    sinks.sns.set_subscription_attributes(
        SubscriptionArn=sub,
        AttributeName="FilterPolicy",
        AttributeValue=json.dumps({"CNM_RESPONSE_STATUS": ["FAILURE"], "COLLECTION": [cnm["collection"]["name"]]}),
    )
    dests = [*sinks.streams, *sinks.topics]
    for status in ("SUCCESS", "FAILURE"):
        r = response_message.build_response(cnm, status=status, error_message="e")
        assert send_response(r, dests, message_attributes(r, cnm)) == dests
    for arn in sinks.streams:
        assert [x["response"]["status"] for x in sinks.records(arn)] == ["SUCCESS", "FAILURE"]
    all_msgs = sinks.messages(sinks.queues[0])
    assert sorted(json.loads(m["Body"])["response"]["status"] for m in all_msgs) == ["FAILURE", "SUCCESS"]
    assert {m["MessageAttributes"]["CNM_RESPONSE_STATUS"]["StringValue"] for m in all_msgs} == {"SUCCESS", "FAILURE"}
    filtered = sinks.messages(sinks.queues[1])
    assert [json.loads(m["Body"])["response"]["status"] for m in filtered] == ["FAILURE"]


def test_a_failure_half_way_resends_only_what_is_missing(sinks, samples, monkeypatch):
    cnm = samples["cumulus_sns_v1.0_notification.json"]
    r = response_message.build_response(cnm, status="SUCCESS")
    dests = [sinks.streams[0], sinks.topics[0], sinks.streams[1]]
    fail_first_put(monkeypatch, sinks.streams[1])
    done: set[str] = set()
    with pytest.raises(RuntimeError):
        send_response(r, dests, {}, done)
    assert done == {sinks.streams[0], sinks.topics[0]}
    assert send_response(r, dests, {}, done) == [sinks.streams[1]]  # the retry
    for arn in sinks.streams:
        assert len(sinks.records(arn)) == 1
    assert len(sinks.messages(sinks.queues[0])) == 1


def test_handler_answers_every_destination_with_https_uris_and_message_alone(sinks, samples):
    """About RESPONSE_DESTINATIONS: the deployed list (the provider's topic) plus a further stream."""
    from cnm_ingest.workflow import cnm_response

    sinks.world.use("cnm_response", RESPONSE_DESTINATIONS=json.dumps([sinks.streams[1], sinks.topics[0]]))
    endpoint = sinks.distribution_endpoint  # examples/complete: distribution_endpoint
    assert endpoint and endpoint.startswith("https://")
    cnm = samples["cumulus_sns_v1.0_notification.json"]
    granule = {
        "granuleId": "g",
        "producerGranuleId": cnm["product"]["name"],
        "files": [{"type": "data", "name": "a#1.nc", "bucket": "prot", "key": "C/a#1.nc", "size": 3}],
    }
    ok = {
        "meta": {"cnm": cnm, "ingestionMetadata": {"catalogId": "G9-DAAC", "catalogUrl": "https://cmr/G9"}},
        "payload": {"granules": [granule]},
    }
    out = cnm_response.respond_step(ok, {"name": "e1"})
    response = out["meta"]["cnm_response"]
    assert response["product"]["files"][0]["uri"] == endpoint.rstrip("/") + "/prot/C/a%231.nc"
    assert response["product"]["name"] == cnm["product"]["name"]
    assert response["response"]["ingestionMetadata"] == {"catalogId": "G9-DAAC", "catalogUrl": "https://cmr/G9"}
    cause = json.dumps({"errorType": "UnexpectedFileSize", "errorMessage": "s3://b/k is 4 bytes, expected 3"})
    with pytest.raises(WorkflowError):
        cnm_response.respond_step(
            {"meta": {"cnm": cnm}, "exception": {"Error": "UnexpectedFileSize", "Cause": cause}}, {"name": "e2"}
        )
    for arn in sinks.streams:
        got = sinks.records(arn)
        assert [x["response"]["status"] for x in got] == ["SUCCESS", "FAILURE"]
        assert got[1]["response"] == {
            "status": "FAILURE",
            "errorCode": "VALIDATION_ERROR",
            "errorMessage": "s3://b/k is 4 bytes, expected 3",
        }
    assert len(sinks.messages(sinks.queues[0])) == 2


def test_handler_retry_after_a_failure_half_way_answers_each_destination_once(sinks, samples, monkeypatch):
    """CnmResponse retried by Step Functions after the second stream failed: every destination ends with exactly
    one response (one idempotency record per destination), SNS messages carry PO.DAAC's attributes."""
    from cnm_ingest.workflow import cnm_response

    # about RESPONSE_DESTINATIONS: the deployed list (the provider's topic) plus a further stream and topic
    sinks.world.use(
        "cnm_response", RESPONSE_DESTINATIONS=json.dumps([sinks.topics[0], sinks.streams[1], sinks.topics[1]])
    )
    cnm = samples["cumulus_sns_v1.0_notification.json"]
    message = {"meta": {"cnm": cnm}, "payload": {}}
    calls = fail_first_put(monkeypatch, sinks.streams[1])
    real_publish = response_message.publish_response
    monkeypatch.setattr(
        response_message, "publish_response", lambda r, arn, a: calls.append(arn) or real_publish(r, arn, a)
    )
    with pytest.raises(RuntimeError):
        cnm_response.respond_step(message, {"id": "arn:exec:half"})
    first = list(calls)
    out = cnm_response.respond_step(message, {"id": "arn:exec:half"})  # the retry
    assert first == [sinks.streams[0], sinks.topics[0], sinks.streams[1]]
    assert calls[len(first) :] == [sinks.streams[1], sinks.topics[1]]  # only what was missing
    sent = out["meta"]["cnm_response"]
    for arn in sinks.streams:
        assert sinks.records(arn) == [sent]
    for queue in sinks.queues:
        [m] = sinks.messages(queue)
        assert json.loads(m["Body"]) == sent
        assert m["MessageAttributes"]["CNM_RESPONSE_STATUS"]["StringValue"] == "SUCCESS"
