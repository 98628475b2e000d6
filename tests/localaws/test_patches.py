"""Each patch in localaws.patches, shown through boto3 against the local server:
the AWS behaviour it restores, and the hostile variants."""

from __future__ import annotations

import json
import uuid

import botocore.model
import pytest
from botocore.exceptions import ClientError

from localaws import patches


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_every_patch_is_listed_and_applied(local_aws):
    assert patches.apply() == patches.PATCHES
    assert len(set(patches.PATCHES)) == len(patches.PATCHES) == 22


# ---- 1 and 2: SQS SetQueueAttributes -------------------------------------------------


def _queue(client):
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, dlq, arn


def test_set_queue_attributes_keeps_redrive_allow_policy(client):
    sqs, dlq, arn = _queue(client)
    allow = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn.replace("dlq", "src")]})
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": allow})
    got = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["RedriveAllowPolicy"])["Attributes"]
    assert json.loads(got["RedriveAllowPolicy"]) == json.loads(allow)
    assert "RedriveAllowPolicy" in sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    # an empty value removes it, as on AWS
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": ""})
    assert "RedriveAllowPolicy" not in sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]


def test_set_queue_attributes_without_policy_keeps_policy(client):
    sqs, dlq, arn = _queue(client)
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                }
            ],
        }
    )
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"Policy": policy})
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"VisibilityTimeout": "45"})
    sqs.set_queue_attributes(
        QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})}
    )
    attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert json.loads(attrs["Policy"]) == json.loads(policy)
    assert attrs["VisibilityTimeout"] == "45"
    # Policy given as "" removes it
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"Policy": ""})
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]


def test_unknown_queue_attribute_name_still_rejected(client):
    sqs, dlq, _ = _queue(client)
    with pytest.raises(ClientError):
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["NoSuchAttribute"])


# ---- 3 and 4: Step Functions ---------------------------------------------------------

GOOD = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "B"}], "Default": "C"},
        "B": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}],
            "Next": "C",
        },
        "C": {"Type": "Succeed"},
    },
}


def test_validate_state_machine_definition_ok(client):
    result = client("stepfunctions").validate_state_machine_definition(definition=json.dumps(GOOD))
    assert result["result"] == "OK" and result["diagnostics"] == []


@pytest.mark.parametrize(
    "definition, location",
    [
        ("{not json", "/"),
        (json.dumps({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}), "/StartAt"),
        (json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Gone"}}}), "/States/A"),
        (
            json.dumps(
                {
                    "StartAt": "A",
                    "States": {
                        "A": {
                            "Type": "Parallel",
                            "End": True,
                            "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "C"}}}],
                        }
                    },
                }
            ),
            "/States/A/Branches/0/States/P",
        ),
        (json.dumps([1, 2]), "/"),
    ],
)
def test_validate_state_machine_definition_fails_on_broken_definitions(client, definition, location):
    result = client("stepfunctions").validate_state_machine_definition(definition=definition)
    assert result["result"] == "FAIL"
    assert [d["location"] for d in result["diagnostics"]][:1] == [location]
    assert all(d["severity"] == "ERROR" for d in result["diagnostics"])


def test_list_state_machine_versions(client):
    sfn = client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/sfn"
    arn = sfn.create_state_machine(name=_name("sm"), definition=json.dumps(GOOD), roleArn=role)["stateMachineArn"]
    assert sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"] == []
    published = sfn.create_state_machine(name=_name("smv"), definition=json.dumps(GOOD), roleArn=role, publish=True)
    versions = sfn.list_state_machine_versions(stateMachineArn=published["stateMachineArn"])["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [published["stateMachineVersionArn"]]
    with pytest.raises(ClientError):
        sfn.list_state_machine_versions(stateMachineArn=arn + "-missing")


# ---- 5: CloudWatch over Smithy RPC v2 CBOR -------------------------------------------


@pytest.fixture
def cbor_cloudwatch(client, monkeypatch):
    """A CloudWatch client speaking rpc-v2-cbor on the wire, as the AWS SDK for Go v2 does
    (boto3 prefers JSON; putting CBOR first in botocore's order makes it speak CBOR)."""
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor", "json", "query"))
    cw = client("cloudwatch")
    assert cw.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    seen = []
    cw.meta.events.register("before-send.cloudwatch.*", lambda request, **_: seen.append(request))
    return cw, seen


def test_cloudwatch_rpc_v2_cbor_round_trip(cbor_cloudwatch):
    cw, seen = cbor_cloudwatch
    name = _name("alarm ünïcödé #?..")
    cw.put_metric_alarm(
        AlarmName=name,
        MetricName="IteratorAge",
        Namespace="AWS/Lambda",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=300000.0,
        ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": "f"}],
        AlarmActions=["arn:aws:sns:us-west-2:123456789012:t"],
        Tags=[{"Key": "k", "Value": "v"}],
    )
    alarms = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert seen[0].headers["smithy-protocol"] == b"rpc-v2-cbor" or seen[0].headers["smithy-protocol"] == "rpc-v2-cbor"
    assert "/operation/PutMetricAlarm" in seen[0].url
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["AlarmName"] == name and alarm["Threshold"] == 300000.0 and alarm["EvaluationPeriods"] == 2
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": "f"}]
    assert alarm["AlarmConfigurationUpdatedTimestamp"].year >= 2020  # a CBOR timestamp decoded
    tags = cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert tags == [{"Key": "k", "Value": "v"}]
    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_cloudwatch_rpc_v2_cbor_errors_are_cbor(cbor_cloudwatch):
    cw, _ = cbor_cloudwatch
    with pytest.raises(ClientError) as err:
        cw.get_dashboard(DashboardName=_name("missing"))
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404  # as AWS answers it


def test_cbor_garbage_and_unknown_operations_answer_errors(local_aws):
    import urllib.error
    import urllib.request

    for path, body, status in [
        ("/service/GraniteServiceVersion20100801/operation/NoSuchOperation", b"\xa0", 404),
        ("/service/NotAService/operation/PutMetricAlarm", b"\xa0", 404),
    ]:
        req = urllib.request.Request(
            local_aws.endpoint + path,
            data=body,
            method="POST",
            headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == status
        assert err.value.headers["smithy-protocol"] == "rpc-v2-cbor"


# ---- 6: event source mapping on an enhanced fan-out consumer ----------------------------


def test_event_source_mapping_on_a_stream_consumer(client):
    iam, lam, kin = client("iam"), client("lambda"), client("kinesis")
    name = _name("efo")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("f.py", "def handler(e, c):\n    return e\n")
    fn = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="f.handler", Code={"ZipFile": buf.getvalue()}
    )
    kin.create_stream(StreamName=name, ShardCount=1)
    stream = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kin.register_stream_consumer(StreamARN=stream, ConsumerName=name)["Consumer"]["ConsumerARN"]
    esm = lam.create_event_source_mapping(
        EventSourceArn=consumer, FunctionName=fn["FunctionArn"], StartingPosition="LATEST", BatchSize=7
    )
    listed = lam.list_event_source_mappings(FunctionName=fn["FunctionArn"])["EventSourceMappings"]
    assert [(m["UUID"], m["EventSourceArn"], m["BatchSize"]) for m in listed] == [(esm["UUID"], consumer, 7)]
    with pytest.raises(ClientError) as err:
        lam.create_event_source_mapping(
            EventSourceArn=f"{stream}/consumer/not-registered:1",
            FunctionName=fn["FunctionArn"],
            StartingPosition="LATEST",
        )
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    lam.delete_event_source_mapping(UUID=esm["UUID"])
    assert lam.list_event_source_mappings(FunctionName=fn["FunctionArn"])["EventSourceMappings"] == []


# ---- 7: DenyInsecureTransport does not deny requests that AWS would get over TLS ----------


def _bucket_with(client, *statements):
    s3 = client("s3")
    bucket = _name("bucket")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {**st, "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]} for st in statements
                ],
            }
        ),
    )
    return s3, bucket


DENY_INSECURE = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_deny_insecure_transport_lets_sdk_requests_through(client):
    s3, bucket = _bucket_with(client, DENY_INSECURE)
    s3.put_object(Bucket=bucket, Key="a/b.nc", Body=b"data")
    assert s3.head_object(Bucket=bucket, Key="a/b.nc")["ContentLength"] == 4
    s3.copy_object(CopySource={"Bucket": bucket, "Key": "a/b.nc"}, Bucket=bucket, Key="c.nc")
    assert s3.get_object(Bucket=bucket, Key="c.nc")["Body"].read() == b"data"


def test_other_deny_statements_still_deny(client):
    s3, bucket = _bucket_with(
        client, DENY_INSECURE, {"Sid": "DenyAll", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject"}
    )
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="x", Body=b"data")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # a condition that is not only SecureTransport=false is evaluated as moto does (here: denies)
    s3b, other = _bucket_with(
        client,
        {
            **DENY_INSECURE,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:username": "x"}},
        },
    )
    with pytest.raises(ClientError):
        s3b.put_object(Bucket=other, Key="x", Body=b"data")


# ---- 8: Kinesis resource tags (streams and stream consumers) -----------------------------


def test_kinesis_tags_on_streams_and_consumers(client):
    kin = client("kinesis")
    name = _name("tags")
    kin.create_stream(StreamName=name, ShardCount=1)
    stream = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kin.register_stream_consumer(StreamARN=stream, ConsumerName=name)["Consumer"]["ConsumerARN"]
    assert kin.list_tags_for_resource(ResourceARN=consumer)["Tags"] == []
    kin.tag_resource(ResourceARN=consumer, Tags={"Project": "cnm-ingest", "k": "v"})
    kin.untag_resource(ResourceARN=consumer, TagKeys=["k"])
    assert kin.list_tags_for_resource(ResourceARN=consumer)["Tags"] == [{"Key": "Project", "Value": "cnm-ingest"}]
    kin.tag_resource(ResourceARN=stream, Tags={"s": "1"})
    assert kin.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "s", "Value": "1"}]
    assert kin.list_tags_for_resource(ResourceARN=stream)["Tags"] == [{"Key": "s", "Value": "1"}]
    with pytest.raises(ClientError) as err:
        kin.list_tags_for_resource(ResourceARN=f"{stream}/consumer/not-registered:1")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ---- 9: Step Functions execution status change events on EventBridge --------------------


def _status_rule(client, machine_arns):
    """An EventBridge rule like modules/recorder's, targeting a new queue."""
    events, sqs = client("events"), client("sqs")
    queue = sqs.create_queue(QueueName=_name("status"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = _name("status")
    pattern = {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": machine_arns},
    }
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    return sqs, queue


def _machine(client, definition, kind="STANDARD"):
    iam, sfn = client("iam"), client("stepfunctions")
    role = iam.create_role(RoleName=_name("sfn"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return sfn.create_state_machine(name=_name("sm"), definition=json.dumps(definition), roleArn=role, type=kind)[
        "stateMachineArn"
    ]


def _drain(sqs, queue, expected, timeout=20.0):
    import time

    got, deadline = [], time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return got


def _wait_status(sfn, arn, statuses=("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"), timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = sfn.describe_execution(executionArn=arn)["status"]
        if status in statuses:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{arn} still {status}")


def test_execution_status_changes_reach_the_rule_target(client):
    sfn = client("stepfunctions")
    ok = _machine(client, {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"x": 1}, "End": True}}})
    bad = _machine(client, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c#?"}}})
    other = _machine(client, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})  # not in the rule
    sqs, queue = _status_rule(client, [ok, bad])
    runs = {
        sfn.start_execution(stateMachineArn=m, name=_name("x"), input=json.dumps({"k": "é"}))["executionArn"]: m
        for m in (ok, bad, other)
    }
    assert [_wait_status(sfn, arn) for arn in runs] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    events = _drain(sqs, queue, 4)
    assert len(_drain(sqs, queue, 1, timeout=2)) == 0  # nothing more: the other machine's events match no rule
    seen = sorted((e["detail"]["executionArn"], e["detail"]["status"]) for e in events)
    ok_arn, bad_arn = (a for a, m in runs.items() if m in (ok, bad))
    assert seen == sorted([(ok_arn, "RUNNING"), (ok_arn, "SUCCEEDED"), (bad_arn, "RUNNING"), (bad_arn, "FAILED")])
    for e in events:
        assert (e["source"], e["detail-type"], e["resources"]) == (
            "aws.states",
            "Step Functions Execution Status Change",
            [e["detail"]["executionArn"]],
        )
        d = e["detail"]
        assert json.loads(d["input"]) == {"k": "é"} and isinstance(d["startDate"], int)
        assert (d["stopDate"] is None) == (d["status"] == "RUNNING")
        if d["status"] == "SUCCEEDED":
            assert json.loads(d["output"]) == {"x": 1}
        if d["status"] == "FAILED":
            assert (d["error"], d["cause"], d["output"]) == ("E", "c#?", None)


def test_stop_execution_publishes_aborted(client):
    sfn = client("stepfunctions")
    slow = _machine(client, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}})
    sqs, queue = _status_rule(client, [slow])
    arn = sfn.start_execution(stateMachineArn=slow, name=_name("x"))["executionArn"]
    sfn.stop_execution(executionArn=arn)
    assert _wait_status(sfn, arn) == "ABORTED"
    events = _drain(sqs, queue, 2)
    assert [e["detail"]["status"] for e in events] == ["RUNNING", "ABORTED"]


def test_express_executions_publish_nothing(client):
    sfn = client("stepfunctions")
    express = _machine(client, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, kind="EXPRESS")
    sqs, queue = _status_rule(client, [express])
    arn = sfn.start_execution(stateMachineArn=express, name=_name("x"))["executionArn"]
    _wait_status(sfn, arn)
    assert _drain(sqs, queue, 1, timeout=2) == []


# ---- 13: a schedule rule receives no events ----------------------------------------------------


def test_a_schedule_rule_beside_a_status_rule_receives_no_event(client):
    """A schedule rule (no event pattern) with a Lambda target, on the default bus beside the status rule:
    the status events still reach the status rule's queue, and the schedule rule's targets get nothing."""
    sfn, events = client("stepfunctions"), client("events")
    ok = _machine(client, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    sqs, queue = _status_rule(client, [ok])
    schedule = _name("schedule")
    events.put_rule(Name=schedule, ScheduleExpression="rate(1 hour)")
    other = sqs.create_queue(QueueName=_name("schedule-target"))["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fn = "arn:aws:lambda:us-west-2:123456789012:function:" + _name("reconcile")
    # a queue first (it would receive every event without the patch), then a function (moto cannot deliver to it)
    events.put_targets(Rule=schedule, Targets=[{"Id": "q", "Arn": other_arn}, {"Id": "f", "Arn": fn}])
    try:
        arn = sfn.start_execution(stateMachineArn=ok, name=_name("x"))["executionArn"]
        assert _wait_status(sfn, arn) == "SUCCEEDED"
        assert [e["detail"]["status"] for e in _drain(sqs, queue, 2)] == ["RUNNING", "SUCCEEDED"]
        assert _drain(sqs, other, 1, timeout=2) == []
        # nor does any other event put on the bus
        events.put_events(Entries=[{"Source": "test.x", "DetailType": "t", "Detail": "{}"}])
        assert _drain(sqs, other, 1, timeout=2) == []
    finally:
        events.remove_targets(Rule=schedule, Ids=["f", "q"])
        events.delete_rule(Name=schedule)


# ---- 10: deleting versions of a bucket whose versioning is suspended ------------------------


def test_versions_are_deleted_one_by_one_after_versioning_is_suspended(client):
    """What `terraform destroy` of a versioned, force_destroy bucket does: suspend versioning
    (aws_s3_bucket_versioning destroyed), then delete every version and delete marker by id."""
    s3 = client("s3")
    bucket = _name("versioned")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    tmp = ".cnm-ingest-tmp/a#b?c"
    s3.put_object(Bucket=bucket, Key=tmp, Body=b"1")
    s3.put_object(Bucket=bucket, Key=tmp, Body=b"22")
    s3.copy_object(Bucket=bucket, Key="granule/x.nc", CopySource={"Bucket": bucket, "Key": tmp})
    s3.delete_object(Bucket=bucket, Key=tmp)  # a delete marker on top of two versions
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    listed = s3.list_object_versions(Bucket=bucket)
    versions = [(v["Key"], v["VersionId"]) for v in listed["Versions"]]
    markers = [(m["Key"], m["VersionId"]) for m in listed["DeleteMarkers"]]
    assert len(versions) == 3 and len(markers) == 1
    old_tmp = [vid for key, vid in versions if key == tmp and not _is_latest(listed, key, vid)]
    # one version by DeleteObject: only that version goes, the others stay readable
    gone = s3.delete_object(Bucket=bucket, Key=tmp, VersionId=old_tmp[0])
    assert gone["VersionId"] == old_tmp[0]
    left = [(v["Key"], v["VersionId"]) for v in s3.list_object_versions(Bucket=bucket)["Versions"]]
    assert sorted(left) == sorted(v for v in versions if v[1] != old_tmp[0])
    other = next(vid for key, vid in left if key == tmp)
    assert s3.get_object(Bucket=bucket, Key=tmp, VersionId=other)["Body"].read() in (b"1", b"22")
    # the rest, with the delete marker, by DeleteObjects (the provider's force_destroy)
    rest = [{"Key": k, "VersionId": v} for k, v in left + markers]
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": rest, "Quiet": False})
    assert "Errors" not in answer and len(answer["Deleted"]) == len(rest)
    after = s3.list_object_versions(Bucket=bucket)
    assert after.get("Versions", []) == [] and after.get("DeleteMarkers", []) == []
    s3.delete_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def _is_latest(listed, key, version_id):
    return any(v["Key"] == key and v["VersionId"] == version_id and v["IsLatest"] for v in listed["Versions"])


# ---- 11: an execution is RUNNING from its creation ------------------------------------


def test_an_execution_is_running_before_its_worker_starts(client, monkeypatch):
    """Between StartExecution creating an execution and its interpreter starting, AWS already lists
    and describes it as RUNNING (and a second start of the same name is idempotent); moto answered
    500 there (no status yet). The interpreter's start is held here to open that window."""
    import threading

    from moto.stepfunctions.parser.backend import execution as sfn_execution

    held, release = threading.Event(), threading.Event()
    original_start = sfn_execution.Execution.start

    def start(self):
        held.set()
        release.wait(30)
        return original_start(self)

    monkeypatch.setattr(sfn_execution.Execution, "start", start)
    sfn = client("stepfunctions")
    machine = _machine(client, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    started: dict = {}
    starter = threading.Thread(
        target=lambda: started.update(sfn.start_execution(stateMachineArn=machine, name="early", input="{}"))
    )
    starter.start()
    try:
        assert held.wait(30)
        (listed,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert listed["status"] == "RUNNING" and listed["name"] == "early"
        assert sfn.describe_execution(executionArn=listed["executionArn"])["status"] == "RUNNING"
    finally:
        release.set()
        starter.join(30)
    assert started["executionArn"] == listed["executionArn"]
    assert _wait_status(sfn, listed["executionArn"]) == "SUCCEEDED"


PASS_MACHINE = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def test_a_start_whose_interpreter_fails_to_start_creates_nothing(client, monkeypatch):
    """Patch 12: StartExecution answering an error leaves no execution behind (moto kept it, RUNNING
    and never run: a zombie); the same start afterwards creates one that runs."""
    from moto.stepfunctions.parser.backend import execution as sfn_execution

    sfn = client("stepfunctions")
    machine = _machine(client, PASS_MACHINE)

    def broken(self):
        raise RuntimeError("the interpreter could not start")

    monkeypatch.setattr(sfn_execution.Execution, "_get_start_execution_worker", broken)
    with pytest.raises(ClientError) as err:
        sfn.start_execution(stateMachineArn=machine, name="z", input='{"k": 1}')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
    arn = machine.replace(":stateMachine:", ":execution:") + ":z"
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(executionArn=arn)
    monkeypatch.undo()
    assert sfn.start_execution(stateMachineArn=machine, name="z", input='{"k": 1}')["executionArn"] == arn
    assert _wait_status(sfn, arn) == "SUCCEEDED"


def test_a_status_event_that_cannot_be_delivered_does_not_stop_the_execution(client, monkeypatch):
    """Patch 12: the RUNNING event's delivery failing (it once reached moto's Docker-based SQS push)
    does not fail the start: the execution runs, the failure is kept in EVENT_DELIVERY_ERRORS."""
    sfn = client("stepfunctions")
    machine = _machine(client, PASS_MACHINE)
    real = patches._publish_status

    def undeliverable(execution, status):
        if status == "RUNNING":
            raise RuntimeError("delivery failed")
        return real(execution, status)

    monkeypatch.setattr(patches, "_publish_status", undeliverable)
    errors = len(patches.EVENT_DELIVERY_ERRORS)
    arn = sfn.start_execution(stateMachineArn=machine, name="d", input="{}")["executionArn"]
    assert _wait_status(sfn, arn) == "SUCCEEDED"
    assert len(patches.EVENT_DELIVERY_ERRORS) == errors + 1 and arn in patches.EVENT_DELIVERY_ERRORS[-1]


def test_a_start_whose_response_is_lost_has_created_an_execution_that_runs(client):
    """A fault after the create (the response lost, as on AWS): the execution exists and runs to its end;
    the SDK's retry of the same name and input while it runs is answered with the same execution."""
    import boto3
    from botocore.config import Config

    from localaws import faults

    sfn = client("stepfunctions")
    once = boto3.client(
        "stepfunctions",
        endpoint_url=sfn.meta.endpoint_url,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    machine = _machine(client, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 2, "End": True}}})
    with faults.injected() as inj:
        lost = inj.lose("stepfunctions", "StartExecution", times=1)
        with pytest.raises(ClientError) as err:
            once.start_execution(stateMachineArn=machine, name="lost", input='{"r": 1}')
        again = sfn.start_execution(stateMachineArn=machine, name="lost", input='{"r": 1}')  # the retry
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500 and lost.fired == 1
    (listed,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert again["executionArn"] == listed["executionArn"]
    assert _wait_status(sfn, listed["executionArn"]) == "SUCCEEDED"


def test_concurrent_starts_of_one_name_create_one_execution(client):
    import threading

    sfn = client("stepfunctions")
    machine = _machine(client, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 2, "End": True}}})
    go, arns, errors = threading.Barrier(8), [], []

    def start():
        go.wait()
        try:
            arns.append(sfn.start_execution(stateMachineArn=machine, name="same", input="{}")["executionArn"])
        except ClientError as exc:
            errors.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
    assert len(set(arns)) == 1 and len(arns) + len(errors) == 8 and set(errors) <= {"ExecutionAlreadyExists"}


# ---- 13: RedriveExecution ---------------------------------------------------------------


def _entered(sfn, arn) -> list[tuple[str, dict]]:
    events = sfn.get_execution_history(executionArn=arn)["events"]
    return [
        (e["stateEnteredEventDetails"]["name"], json.loads(e["stateEnteredEventDetails"]["input"]))
        for e in events
        if e["type"].endswith("StateEntered")
    ]


def test_a_failed_execution_is_redriven_from_the_state_that_failed(client):
    sfn = client("stepfunctions")
    machine = _machine(
        client,
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Result": "done", "ResultPath": "$.a", "Next": "F"},
                "F": {"Type": "Fail", "Error": "Boom", "Cause": "c"},
            },
        },
    )
    sqs, queue = _status_rule(client, [machine])
    arn = sfn.start_execution(stateMachineArn=machine, name=_name("x"), input=json.dumps({"k": "é"}))["executionArn"]
    assert _wait_status(sfn, arn) == "FAILED"
    first = sfn.describe_execution(executionArn=arn)
    assert (first["redriveCount"], first["redriveStatus"]) == (0, "REDRIVABLE")
    assert [n for n, _ in _entered(sfn, arn)] == ["A", "F"]

    redriven = sfn.redrive_execution(executionArn=arn)
    assert redriven["redriveDate"].tzinfo is not None
    assert _wait_status(sfn, arn) == "FAILED"
    after = sfn.describe_execution(executionArn=arn)
    assert after["redriveCount"] == 1 and after["redriveDate"] == redriven["redriveDate"]
    assert (after["error"], after["input"]) == ("Boom", first["input"])
    assert _entered(sfn, arn) == [("F", {"k": "é", "a": "done"})]  # from the failed state, with its input: A not rerun
    statuses = [e["detail"]["status"] for e in _drain(sqs, queue, 4)]
    assert statuses == ["RUNNING", "FAILED", "RUNNING", "FAILED"]
    sfn.redrive_execution(executionArn=arn)  # again: the count goes on
    assert _wait_status(sfn, arn) == "FAILED" and sfn.describe_execution(executionArn=arn)["redriveCount"] == 2


def test_redrive_is_refused_unless_failed_timed_out_or_aborted_within_14_days(client):
    import datetime

    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from localaws.server import REGION

    sfn = client("stepfunctions")
    ok = _machine(client, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    slow = _machine(
        client,
        {
            "StartAt": "P",
            "States": {
                "P": {"Type": "Pass", "Next": "W"},
                "W": {"Type": "Wait", "Seconds": 30, "End": True},
            },
        },
    )

    def refused(arn: str) -> str:
        with pytest.raises(ClientError) as caught:
            sfn.redrive_execution(executionArn=arn)
        assert caught.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
        return caught.value.response["Error"]["Message"]

    succeeded = sfn.start_execution(stateMachineArn=ok, name=_name("x"))["executionArn"]
    assert _wait_status(sfn, succeeded) == "SUCCEEDED"
    assert "SUCCEEDED" in refused(succeeded)
    assert sfn.describe_execution(executionArn=succeeded)["redriveStatus"] == "NOT_REDRIVABLE"
    running = sfn.start_execution(stateMachineArn=slow, name=_name("x"))["executionArn"]
    assert "RUNNING" in refused(running)
    sfn.stop_execution(executionArn=running)
    assert _wait_status(sfn, running) == "ABORTED"
    sfn.redrive_execution(executionArn=running)  # aborted in the Wait state: restarts there
    assert sfn.describe_execution(executionArn=running)["status"] == "RUNNING"
    assert [n for n, _ in _entered(sfn, running)] == ["W"]
    sfn.stop_execution(executionArn=running)
    assert _wait_status(sfn, running) == "ABORTED"
    with pytest.raises(ClientError) as missing:
        sfn.redrive_execution(executionArn=running + "-nope")
    assert missing.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
    # stopped 15 days ago: too late
    backend = stepfunctions_parser_backends["123456789012"][REGION]
    backend.describe_execution(running).stop_date -= datetime.timedelta(days=15)
    assert "14 days" in refused(running)
    assert sfn.describe_execution(executionArn=running)["redriveCount"] == 1


# ---- 15: CopyObject honours If-None-Match / If-Match at the destination ---------------------


def test_copy_object_if_none_match_copies_only_into_an_empty_place(client):
    s3 = client("s3")
    bucket = _name("conditional")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    src = {"Bucket": bucket, "Key": ".cnm-ingest-tmp/x#y?z"}
    s3.put_object(Bucket=bucket, Key=src["Key"], Body=b"verified")
    s3.copy_object(Bucket=bucket, Key="g/a.nc", CopySource=src, IfNoneMatch="*")  # nothing there: copied
    assert s3.get_object(Bucket=bucket, Key="g/a.nc")["Body"].read() == b"verified"
    s3.put_object(Bucket=bucket, Key="g/b.nc", Body=b"someone else's")
    for key in ("g/a.nc", "g/b.nc"):  # something there (ours or not): refused, left as it was
        before = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with pytest.raises(ClientError) as caught:
            s3.copy_object(Bucket=bucket, Key=key, CopySource=src, IfNoneMatch="*")
        assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == before


def test_copy_object_if_match_copies_only_over_that_etag(client):
    s3 = client("s3")
    bucket = _name("ifmatch")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    src = {"Bucket": bucket, "Key": "src"}
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    etag = s3.put_object(Bucket=bucket, Key="dst", Body=b"old")["ETag"]
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, IfMatch='"0123456789abcdef0123456789abcdef"')
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as missing:
        s3.copy_object(Bucket=bucket, Key="nowhere", CopySource=src, IfMatch=etag)
    assert missing.value.response["Error"]["Code"] in ("NoSuchKey", "404")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"new"


# ---- 16: a backend lookup of a known account takes no lock ---------------------------------


def test_a_backend_lookup_of_a_known_account_answers_while_the_global_lock_is_held(client):
    import threading

    from moto.core.base_backend import BackendDict, backend_lock
    from moto.s3.models import s3_backends

    client("s3").list_buckets()
    [account, *_] = list(s3_backends)
    got: list[object] = []
    with backend_lock:  # as another request's registration holds it
        reader = threading.Thread(target=lambda: got.append(s3_backends[account]))
        reader.start()
        reader.join(timeout=10)
    assert got == [dict.__getitem__(s3_backends, account)]  # answered without waiting for the lock
    new = "000000000042"
    assert new not in s3_backends
    made = s3_backends[new]  # an account never seen: moto's own path, which registers the BackendDict
    assert dict.__getitem__(s3_backends, new) is made and any(bd is s3_backends for bd in BackendDict._instances)


# ---- 17 and 18: executions starting and stopping at once -----------------------------------------


def _held(monkeypatch, cls, method: str, when=lambda *a: True, after: bool = False):
    """Hold the first call of ``cls.method`` that ``when`` accepts (before it runs, or ``after``) until
    released: returns the (held, release) events."""
    import threading

    held, release, original = threading.Event(), threading.Event(), getattr(cls, method)

    def wrapper(self, *args, **kwargs):
        result = original(self, *args, **kwargs) if after else None
        if not held.is_set() and when(self, *args):
            held.set()
            assert release.wait(30)
        return result if after else original(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, wrapper)
    return held, release


def test_a_definition_parsed_while_another_is_half_parsed_keeps_its_own_query_language(client, monkeypatch):
    """Patch 17: a JSONata execution's parse is held with its scope open; a JSONPath execution started
    meanwhile parses and runs (moto's shared scope stack made it inherit JSONata: "Cannot downgrade"),
    and the held one then finishes with its own language."""
    from moto.stepfunctions.parser.asl.parse import preprocessor

    def jsonata_scope(self, tree):
        return (
            bool(self._query_language_per_scope)
            and self._query_language_per_scope[-1].query_language_mode.name == "JSONata"
        )

    sfn = client("stepfunctions")
    jsonata = _machine(
        client,
        {
            "QueryLanguage": "JSONata",
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "Output": {"n": 2, "s": "{literal}"}, "End": True}},
        },
    )
    jsonpath = _machine(
        client,
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"k": 1}, "ResultPath": "$.r", "End": True}}},
    )
    held, release = _held(
        monkeypatch, preprocessor.Preprocessor, "_open_query_language_scope", jsonata_scope, after=True
    )
    first = sfn.start_execution(stateMachineArn=jsonata, input="{}")["executionArn"]
    try:
        assert held.wait(30)
        second = sfn.start_execution(stateMachineArn=jsonpath, input='{"a": 1}')["executionArn"]
        assert _wait_status(sfn, second) == "SUCCEEDED"
        assert json.loads(sfn.describe_execution(executionArn=second)["output"]) == {"a": 1, "r": {"k": 1}}
    finally:
        release.set()
    assert _wait_status(sfn, first) == "SUCCEEDED"
    assert json.loads(sfn.describe_execution(executionArn=first)["output"]) == {"n": 2, "s": "{literal}"}


def test_many_executions_started_at_once_all_run(client):
    """Patch 17, the way CI met it: 16 starts side by side (each interpreter thread parses at once)."""
    import threading

    sfn = client("stepfunctions")
    machine = _machine(
        client, {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}}}
    )
    go, arns = threading.Barrier(16), []

    def start(i: int) -> None:
        go.wait()
        arns.append(sfn.start_execution(stateMachineArn=machine, name=f"e{i}", input="{}")["executionArn"])

    threads = [threading.Thread(target=start, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(arns) == 16
    assert [_wait_status(sfn, arn) for arn in arns] == ["SUCCEEDED"] * 16


def test_stop_execution_before_the_interpreter_reaches_its_first_state(client, monkeypatch):
    """Patch 18: StopExecution while the interpreter thread has not parsed yet answers (moto: 500,
    no environment) and the execution ends ABORTED without running a state; a second stop answers too."""
    from moto.stepfunctions.parser.backend import execution_worker

    sfn = client("stepfunctions")
    machine = _machine(client, PASS_MACHINE)
    held, release = _held(monkeypatch, execution_worker.ExecutionWorker, "_get_evaluation_entrypoint")
    arn = sfn.start_execution(stateMachineArn=machine, name="early-stop", input="{}")["executionArn"]
    try:
        assert held.wait(30)
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        sfn.stop_execution(executionArn=arn)  # answers (moto: 500)
        sfn.stop_execution(executionArn=arn)  # an SDK retry of the stop: answers too, and aborts nothing twice
    finally:
        release.set()
    assert _wait_status(sfn, arn) == "ABORTED"
    import time

    deadline, kinds = time.monotonic() + 20, []
    while "ExecutionAborted" not in kinds and time.monotonic() < deadline:  # the interpreter writes it as it ends
        kinds = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
        time.sleep(0.05)
    assert kinds == ["ExecutionStarted", "ExecutionAborted"]  # no state ran, one abort for two stops


def test_an_interpreter_that_fails_before_its_first_state_fails_the_execution(client, monkeypatch):
    """Patch 18: a failure in the interpreter thread before the first state (here the parse raising) ends
    the execution FAILED with States.Runtime; moto left it RUNNING for ever. The next start runs normally."""
    from moto.stepfunctions.parser.backend import execution_worker

    Parser = execution_worker.AmazonStateLanguageParser
    real = Parser.parse

    def broken(definition):
        raise IndexError("list index out of range")

    sfn = client("stepfunctions")
    machine = _machine(client, PASS_MACHINE)
    monkeypatch.setattr(Parser, "parse", staticmethod(broken))
    arn = sfn.start_execution(stateMachineArn=machine, name="broken", input="{}")["executionArn"]
    assert _wait_status(sfn, arn) == "FAILED"
    described = sfn.describe_execution(executionArn=arn)
    assert described["error"] == "States.Runtime" and "IndexError" in described["cause"]
    monkeypatch.setattr(Parser, "parse", staticmethod(real))
    again = sfn.start_execution(stateMachineArn=machine, name="mended", input="{}")["executionArn"]
    assert _wait_status(sfn, again) == "SUCCEEDED"


# ---- 19: one parse per definition -----------------------------------------------------------------

RETRIED = {  # each execution retries its own Parallel state twice (3 attempts), then catches
    "StartAt": "Try",
    "States": {
        "Try": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "E", "Cause": "c"}}}],
            "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 1, "BackoffRate": 1, "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
}


def _counted_parses(monkeypatch) -> list[str]:
    from moto.stepfunctions.parser.backend import execution_worker

    Parser, parsed = execution_worker.AmazonStateLanguageParser, []
    real = Parser.parse

    def counted(definition):
        parsed.append(definition)
        return real(definition)

    monkeypatch.setattr(Parser, "parse", staticmethod(counted))
    return parsed


def test_executions_of_one_definition_parse_it_once_and_keep_their_own_retry_counts(client, monkeypatch):
    """Patch 19: six executions started at once share one parse, and each still retries its own state twice:
    the attempt counter lives in each execution's environment, not in the shared program."""
    import threading

    sfn = client("stepfunctions")
    machine = _machine(client, RETRIED)  # CreateStateMachine parses it too (its check): counted from here on
    parsed = _counted_parses(monkeypatch)
    go, arns = threading.Barrier(6), []

    def start(i: int) -> None:
        go.wait()
        arns.append(sfn.start_execution(stateMachineArn=machine, name=f"r{i}", input=f'{{"i": {i}}}')["executionArn"])

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [_wait_status(sfn, arn) for arn in arns] == ["SUCCEEDED"] * 6
    for arn in arns:
        kinds = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
        assert kinds.count("ParallelStateStarted") == 3 and kinds.count("ParallelStateFailed") == 1, kinds
        out = json.loads(sfn.describe_execution(executionArn=arn)["output"])
        assert out["error"] == {"Error": "E", "Cause": "c"} and "i" in out  # its own input carried through
    assert len(parsed) == 1


def test_a_changed_definition_is_parsed_again_and_runs_as_changed(client, monkeypatch):
    """Patch 19: the cache is keyed by the definition's text: after UpdateStateMachine the new text is parsed and
    run; starting the first text again (a second machine with it) parses nothing."""
    sfn = client("stepfunctions")
    first = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "ResultPath": "$.v", "End": True}}}
    second = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 2, "ResultPath": "$.v", "End": True}}}
    machine, twin = _machine(client, first), _machine(client, first)
    sfn.update_state_machine(stateMachineArn=twin, definition=json.dumps(second))  # before counting: it parses
    sfn.update_state_machine(stateMachineArn=twin, definition=json.dumps(first))
    parsed = _counted_parses(monkeypatch)
    one = sfn.start_execution(stateMachineArn=machine, name="one", input="{}")["executionArn"]
    assert _wait_status(sfn, one) == "SUCCEEDED"
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(second))
    del parsed[1:]  # the update's own check of the new text, if moto parses it there
    two = sfn.start_execution(stateMachineArn=machine, name="two", input="{}")["executionArn"]
    assert _wait_status(sfn, two) == "SUCCEEDED"
    again = sfn.start_execution(stateMachineArn=twin, name="again", input="{}")["executionArn"]
    assert _wait_status(sfn, again) == "SUCCEEDED"
    outputs = [json.loads(sfn.describe_execution(executionArn=a)["output"])["v"] for a in (one, two, again)]
    assert outputs == [1, 2, 1]
    assert parsed == [json.dumps(first), json.dumps(second)]


# ---- 20: one parse per JSONPath text --------------------------------------------------------------


def test_a_jsonpath_text_is_parsed_once_and_its_expression_shared_without_state(local_aws, monkeypatch):
    """Patch 20: the second parse of a text builds no parser and returns the same expression, which finds and
    updates each document on its own; a text that does not parse raises every time (no failure is kept)."""
    import jsonpath_ng
    import jsonpath_ng.ext
    from jsonpath_ng.exceptions import JsonPathParserError
    from jsonpath_ng.ext import parser as ext_parser

    built = []
    real_init = ext_parser.ExtendedJsonPathParser.__init__

    def counted(self, *args, **kwargs):
        built.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ext_parser.ExtendedJsonPathParser, "__init__", counted)
    text = f"$.detail.{_name('k').replace('-', '_')}"  # a text no earlier test parsed
    first = jsonpath_ng.ext.parse(text)
    assert jsonpath_ng.ext.parse(text) is first and len(built) == 1
    key = text.rsplit(".", 1)[-1]
    one, two = {"detail": {key: 1}}, {"detail": {key: 2}}
    assert [m.value for m in first.find(one)] == [1] and [m.value for m in first.find(two)] == [2]
    first.update(one, 10)
    assert one == {"detail": {key: 10}} and two == {"detail": {key: 2}}
    assert jsonpath_ng.parse("$.a[0]") is jsonpath_ng.parse("$.a[0]")  # the plain parser too
    for _ in range(2):
        with pytest.raises(JsonPathParserError):
            jsonpath_ng.ext.parse("$.[")


def test_executions_sharing_parsed_paths_each_get_their_own_data(client):
    """Patch 20 through Step Functions: InputPath, ResultPath and OutputPath of one definition, parsed once,
    give each of two executions its own input's values."""
    sfn = client("stepfunctions")
    machine = _machine(
        client,
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Pass",
                    "InputPath": "$.in",
                    "ResultPath": "$.out.copy",
                    "OutputPath": "$.out",
                    "End": True,
                }
            },
        },
    )
    arns = [
        sfn.start_execution(stateMachineArn=machine, name=f"p{i}", input=json.dumps({"in": {"v": i}}))["executionArn"]
        for i in (1, 2)
    ]
    assert [_wait_status(sfn, a) for a in arns] == ["SUCCEEDED"] * 2
    assert [json.loads(sfn.describe_execution(executionArn=a)["output"]) for a in arns] == [
        {"copy": {"v": 1}},
        {"copy": {"v": 2}},
    ]


# ---- 21: an update expression parsed once, its clauses counted in one pass --------------------


def _table(client):
    ddb = client("dynamodb")
    table = _name("t")
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    return ddb, table


def test_an_update_expression_is_parsed_once_and_each_item_gets_its_own_values(client, monkeypatch):
    """Patch 21: three UpdateItems of one text tokenize it once (moto did twice each) and each item gets its own
    values and history; a changed text is parsed again; a text that does not parse is refused every time."""
    from moto.dynamodb.parsing.tokens import ExpressionTokenizer

    ddb, table = _table(client)
    tokenized = []
    real = ExpressionTokenizer.make_list.__func__

    def counting(cls, text):
        tokenized.append(text)
        return real(cls, text)

    monkeypatch.setattr(ExpressionTokenizer, "make_list", classmethod(counting))
    attr = _name("a").replace("-", "_")  # a text no earlier test parsed
    text = f"SET #{attr} = :v, #ev = if_not_exists(#ev, :when) REMOVE #gone"
    names = {f"#{attr}": attr, "#ev": "ev:RUNNING:0", "#gone": "gone"}
    for i in range(3):
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": f"k{i}"}},
            UpdateExpression=text,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":v": {"S": f"value {i} ünï #?.."}, ":when": {"S": f"t{i}"}},
        )
    assert tokenized == [text]
    items = {i["pk"]["S"]: i for i in ddb.scan(TableName=table)["Items"]}
    assert {k: (v[attr]["S"], v["ev:RUNNING:0"]["S"]) for k, v in items.items()} == {
        f"k{i}": (f"value {i} ünï #?..", f"t{i}") for i in range(3)
    }
    ddb.update_item(  # the same text again: the shared tree still holds no earlier call's values
        TableName=table,
        Key={"pk": {"S": "k0"}},
        UpdateExpression=text,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":v": {"S": "again"}, ":when": {"S": "later"}},
    )
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "k0"}})["Item"]
    assert (item[attr]["S"], item["ev:RUNNING:0"]["S"]) == ("again", "t0")  # if_not_exists kept the first time
    changed = f"SET #{attr} = :v REMOVE #ev"
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "k1"}},
        UpdateExpression=changed,
        ExpressionAttributeNames={f"#{attr}": attr, "#ev": "ev:RUNNING:0"},
        ExpressionAttributeValues={":v": {"S": "x"}},
    )
    assert tokenized == [text, changed]
    assert "ev:RUNNING:0" not in ddb.get_item(TableName=table, Key={"pk": {"S": "k1"}})["Item"]
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            ddb.update_item(
                TableName=table,
                Key={"pk": {"S": "k2"}},
                UpdateExpression=f"SET #{attr} = ",
                ExpressionAttributeNames={f"#{attr}": attr},
            )
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert tokenized[2:] == [f"SET #{attr} ="] * 2  # (moto strips the text) parsed again each time


EXPRESSIONS = [
    "SET a = :a",
    "SET a = :a, b = if_not_exists(b, :b) REMOVE c, d ADD e :e DELETE f :f",
    "SET a = :a SET b = :b",
    "REMOVE a ADD b :b REMOVE c",
    "ADD a :a SET b = :b ADD c :c SET d = :d",
    "SET a = :a REMOVE b SET c = :c REMOVE d",
    "REMOVE a SET b = :b ADD c :c ADD d :d REMOVE e SET f = :f",
    "SET a = list_append(if_not_exists(a, :e), :l), b = b + :one SET c = :c",
    "DELETE s :s ADD n :one DELETE t :t",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_clause_counts_refuse_what_moto_refuses_with_the_same_error(local_aws, text):
    """Patch 21's one pass against moto's own walk (the traverser's method the patch replaces), on the same
    parsed tree: the same error for the same expression, or none."""
    import copy

    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import ActionCountValidator

    tree = UpdateExpressionParser.make(text)

    def outcome(walk):
        try:
            walk(ActionCountValidator(), copy.deepcopy(tree))
        except Exception as error:  # the error itself is compared
            return type(error).__name__, str(error)
        return None

    assert ActionCountValidator.traverse is not DepthFirstTraverser.traverse  # the patch is in place
    assert outcome(ActionCountValidator.traverse) == outcome(DepthFirstTraverser.traverse)


def test_a_second_set_section_is_refused_through_the_api(client):
    ddb, table = _table(client)
    with pytest.raises(ClientError) as refused:
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": "k"}},
            UpdateExpression="SET a = :a SET b = :b",
            ExpressionAttributeValues={":a": {"S": "1"}, ":b": {"S": "2"}},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert 'The "SET" section can only be used once' in refused.value.response["Error"]["Message"]
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "k"}})


# ---- 22: moto's package folder listed once for the server's routing -----------------------------------------


def test_the_server_routes_with_moto_s_own_module_names_listed_once(client, monkeypatch):
    """Patch 22: the names are moto's listing, in its order; requests to several services route without listing
    the folder again."""
    import os
    from pathlib import Path

    import moto
    from moto import backends

    folder = Path(moto.__file__).parent
    expected = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("__")))
    assert backends.list_of_moto_modules() == expected and {"dynamodb", "kinesis"} <= set(expected)
    services = [
        (client("sqs"), "list_queues"),
        (client("kinesis"), "list_streams"),
        (client("dynamodb"), "list_tables"),
    ]
    for service, call in services:  # first calls: moto loads each service's model once (botocore lists folders)
        getattr(service, call)()
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path=".": listed.append(str(path)) or real(path))
    for service, call in services * 2:
        getattr(service, call)()
    assert str(folder) not in listed, listed
