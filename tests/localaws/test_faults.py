"""localaws.faults, shown through boto3 against the local server: each fault reaches the
client as AWS's error would (code, HTTP status, protocol), botocore retries what it
retries on AWS, the counters count, and a block's faults are gone when it ends."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid

import boto3
import botocore.model
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localaws import faults
from localaws.server import REGION

PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
STANDARD = Config(retries={"total_max_attempts": 4, "mode": "standard"})


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make(local_aws):
    def client(service: str, config: Config = NO_RETRIES):
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=local_aws.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )

    return client


@pytest.fixture(autouse=True)
def nothing_left_armed():
    assert faults.armed() == 0
    yield
    assert faults.armed() == 0


@pytest.fixture
def machine(make):
    sfn = make("stepfunctions")
    return sfn.create_state_machine(name=_name("sm"), definition=PASS, roleArn="arn:aws:iam::123456789012:role/sfn")[
        "stateMachineArn"
    ]


@pytest.fixture
def stream(make):
    kin = make("kinesis")
    name = _name("s")
    kin.create_stream(StreamName=name, ShardCount=1)
    return kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def _input_seq(seq: str):
    return lambda req: json.loads(req["input"])["source"]["sequence_number"] == seq


def _start(sfn, machine: str, seq: str, name: str | None = None):
    return sfn.start_execution(
        stateMachineArn=machine, name=name or _name("x"), input=json.dumps({"source": {"sequence_number": seq}})
    )


# ---- throttling StartExecution -----------------------------------------------------------


def test_throttle_chosen_records_n_times_as_aws_answers_it(make, machine):
    sfn = make("stepfunctions")
    with faults.injected() as inj:
        throttle = inj.throttle("stepfunctions", "StartExecution", when=_input_seq("7"), times=2)
        for _ in range(2):
            with pytest.raises(ClientError) as err:
                _start(sfn, machine, "7")
            error = err.value.response
            assert error["Error"]["Code"] == "ThrottlingException"
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert error["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.0"
            assert isinstance(err.value, sfn.exceptions.ClientError)
        _start(sfn, machine, "8")  # another record is not throttled
        _start(sfn, machine, "7")  # the third try of the chosen record goes through
    assert (throttle.fired, throttle.matched, throttle.predicate_errors) == (2, 3, [])
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 2


def test_botocore_retries_a_throttle_as_on_aws(make, machine):
    sfn = make("stepfunctions", STANDARD)
    with faults.injected() as inj:
        throttle = inj.throttle("stepfunctions", "StartExecution", times=2)
        started = _start(sfn, machine, "1")
    assert started["ResponseMetadata"]["RetryAttempts"] == 2 and throttle.fired == 2
    with faults.injected() as inj:
        always = inj.throttle("stepfunctions", "StartExecution")
        with pytest.raises(ClientError) as err:
            _start(sfn, machine, "2")
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["RetryAttempts"] == 3 and always.fired == 4


def test_throttle_every_record_and_other_operations_untouched(make, machine):
    sfn = make("stepfunctions")
    with faults.injected() as inj:
        throttle = inj.throttle("stepfunctions", "StartExecution")
        for seq in ("1", "2", "ü#?../"):
            with pytest.raises(ClientError):
                _start(sfn, machine, seq)
        assert sfn.list_executions(stateMachineArn=machine)["executions"] == []  # ListExecutions is not throttled
        assert sfn.describe_state_machine(stateMachineArn=machine)["stateMachineArn"] == machine
    assert throttle.fired == 3


def test_a_throttle_reaches_a_function_process_over_http(local_aws, machine):
    """The runtime's functions are processes of their own calling the server: the fault hits them too."""
    script = (
        "import boto3, json, sys\n"
        "sfn = boto3.client('stepfunctions', endpoint_url=sys.argv[1], region_name='us-west-2',"
        " aws_access_key_id='testing', aws_secret_access_key='testing',"
        " config=boto3.session.Config(retries={'total_max_attempts': 1}))\n"
        "try:\n"
        "    doc = {'source': {'sequence_number': '5'}}\n"
        "    sfn.start_execution(stateMachineArn=sys.argv[2], name='p', input=json.dumps(doc))\n"
        "    print('started')\n"
        "except sfn.exceptions.ClientError as e:\n"
        "    print(e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode'])\n"
    )
    with faults.injected() as inj:
        throttle = inj.throttle("stepfunctions", "StartExecution", when=_input_seq("5"))
        out = subprocess.run(
            [sys.executable, "-c", script, local_aws.endpoint, machine], capture_output=True, text=True, timeout=60
        )
    assert out.stdout.split() == ["ThrottlingException", "400"], out.stderr
    assert throttle.fired == 1


def test_faults_are_cleared_when_the_block_fails(make, machine):
    sfn = make("stepfunctions")
    with pytest.raises(RuntimeError, match="test body failed"), faults.injected() as inj:
        inj.throttle("stepfunctions", "StartExecution")
        assert faults.armed() == 1
        raise RuntimeError("test body failed")
    assert faults.armed() == 0
    _start(sfn, machine, "1")


def test_a_predicate_that_raises_does_not_fire_and_is_reported(make, machine):
    sfn = make("stepfunctions")
    with faults.injected() as inj:
        bad = inj.throttle("stepfunctions", "StartExecution", when=lambda req: req["no such key"])
        _start(sfn, machine, "1")
    assert bad.fired == 0 and bad.matched == 0 and len(bad.predicate_errors) == 1
    assert "no such key" in bad.predicate_errors[0]


def test_bad_arguments_are_refused():
    inj = faults.Injected()
    with pytest.raises(ValueError):
        inj.throttle("stepfunctions", "StartExecution", times=-1)
    with pytest.raises(ValueError):
        inj.trim("arn:aws:kinesis:us-west-2:123456789012:stream/x")
    with pytest.raises(ValueError):
        inj.trim("arn:aws:kinesis:us-west-2:123456789012:stream/x", first=1, before="3")
    inj.clear()


# ---- Kinesis put failures ----------------------------------------------------------------


def test_put_record_on_one_stream_fails_once_then_botocore_retry_succeeds(make, stream):
    kin = make("kinesis")
    other = _name("other")
    kin.create_stream(StreamName=other, ShardCount=1)
    with faults.injected() as inj:
        once = inj.fail(
            "kinesis",
            ("PutRecord", "PutRecords"),
            "ProvisionedThroughputExceededException",
            when=faults.on_stream(stream),
            times=1,
        )
        kin.put_record(StreamName=other, Data=b"x", PartitionKey="k")  # another stream: untouched
        with pytest.raises(kin.exceptions.ProvisionedThroughputExceededException) as err:
            kin.put_record(StreamARN=stream, Data=b"x", PartitionKey="k")
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"
        kin.put_record(StreamARN=stream, Data=b"y", PartitionKey="k")  # once only
    assert once.fired == 1
    with faults.injected() as inj:
        once = inj.fail(
            "kinesis", "PutRecord", "ProvisionedThroughputExceededException", when=faults.on_stream(stream), times=1
        )
        put = make("kinesis", STANDARD).put_record(StreamARN=stream, Data=b"z", PartitionKey="k")
    assert put["ResponseMetadata"]["RetryAttempts"] == 1 and once.fired == 1  # retried by botocore, as on AWS


def test_put_denied_always_and_not_retried(make, stream):
    kin = make("kinesis", STANDARD)
    with faults.injected() as inj:
        denied = inj.fail(
            "kinesis", ("PutRecord", "PutRecords"), "AccessDeniedException", when=faults.on_stream(stream)
        )
        with pytest.raises(kin.exceptions.AccessDeniedException) as err:
            kin.put_record(StreamARN=stream, Data=b"x", PartitionKey="k")
        assert err.value.response["ResponseMetadata"]["RetryAttempts"] == 0
        with pytest.raises(ClientError) as err2:
            kin.put_records(StreamARN=stream, Records=[{"Data": b"x", "PartitionKey": "k"}])
        assert err2.value.response["Error"]["Code"] == "AccessDeniedException"
        by_name = stream.rsplit("/", 1)[-1]
        with pytest.raises(ClientError):
            kin.put_record(StreamName=by_name, Data=b"x", PartitionKey="k")  # by name: the same stream
    assert denied.fired == 3
    shard = kin.list_shards(StreamARN=stream)["Shards"][0]["ShardId"]
    it = kin.get_shard_iterator(StreamARN=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert kin.get_records(ShardIterator=it, StreamARN=stream)["Records"] == []  # nothing was written


# ---- CBOR clients --------------------------------------------------------------------------


def test_a_fault_on_a_cbor_client_arrives_in_cbor(make, monkeypatch):
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor", "json", "query"))
    cw = make("cloudwatch")
    assert cw.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    with faults.injected() as inj:
        throttle = inj.throttle("cloudwatch", "PutMetricData", when=lambda req: req.get("Namespace") == "Hot")
        with pytest.raises(ClientError) as err:
            cw.put_metric_data(Namespace="Hot", MetricData=[{"MetricName": "m", "Value": 1.0}])
        cw.put_metric_data(Namespace="Cold", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["smithy-protocol"] == "rpc-v2-cbor"
    assert throttle.fired == 1


# ---- trimming ------------------------------------------------------------------------------


def _read(kin, stream, shard, **iterator):
    it = kin.get_shard_iterator(StreamARN=stream, ShardId=shard, **iterator)["ShardIterator"]
    out = []
    while it:
        page = kin.get_records(ShardIterator=it, StreamARN=stream, Limit=3)
        out += page["Records"]
        if not page["Records"]:
            break
        it = page.get("NextShardIterator")
    return out


def test_trim_hides_the_first_records_and_refuses_their_sequence_numbers(make, stream):
    kin = make("kinesis")
    seqs = [
        kin.put_record(StreamARN=stream, Data=f"r{i}".encode(), PartitionKey="k")["SequenceNumber"] for i in range(10)
    ]
    shard = kin.list_shards(StreamARN=stream)["Shards"][0]["ShardId"]
    early = kin.get_shard_iterator(StreamARN=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    with faults.injected() as inj:
        trim = inj.trim(stream, first=4, shard_id=shard)
        # TRIM_HORIZON starts at the first kept record; pages of 3 (the limit counts kept records)
        page = kin.get_records(
            ShardIterator=kin.get_shard_iterator(StreamARN=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
                "ShardIterator"
            ],
            StreamARN=stream,
            Limit=3,
        )
        assert [r["SequenceNumber"] for r in page["Records"]] == seqs[4:7]
        assert [r["Data"] for r in _read(kin, stream, shard, ShardIteratorType="TRIM_HORIZON")] == [
            f"r{i}".encode() for i in range(4, 10)
        ]
        # an iterator taken before the trim no longer sees the trimmed records either
        page = kin.get_records(ShardIterator=early, StreamARN=stream)
        assert [r["SequenceNumber"] for r in page["Records"]] == seqs[4:]
        for kind, seq in [
            ("AT_SEQUENCE_NUMBER", seqs[0]),
            ("AT_SEQUENCE_NUMBER", seqs[3]),
            ("AFTER_SEQUENCE_NUMBER", seqs[2]),
        ]:
            with pytest.raises(ClientError) as err:
                kin.get_shard_iterator(
                    StreamARN=stream, ShardId=shard, ShardIteratorType=kind, StartingSequenceNumber=seq
                )
            assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        # the first kept record can be addressed
        kept = _read(kin, stream, shard, ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[4])
        assert [r["SequenceNumber"] for r in kept] == seqs[4:]
        assert trim.refused == 3 and trim.hidden >= 3 * 4
        # another stream's shard is not trimmed
        other = _name("o")
        kin.create_stream(StreamName=other, ShardCount=1)
        kin.put_record(StreamName=other, Data=b"o", PartitionKey="k")
        other = kin.describe_stream_summary(StreamName=other)["StreamDescriptionSummary"]["StreamARN"]
        assert [r["Data"] for r in _read(kin, other, shard, ShardIteratorType="TRIM_HORIZON")] == [b"o"]
    # cleared: every record is back
    assert [r["SequenceNumber"] for r in _read(kin, stream, shard, ShardIteratorType="TRIM_HORIZON")] == seqs


def test_trim_by_sequence_number_and_beyond_the_end(make, stream):
    kin = make("kinesis")
    seqs = [kin.put_record(StreamARN=stream, Data=b"x", PartitionKey="k")["SequenceNumber"] for _ in range(5)]
    shard = kin.list_shards(StreamARN=stream)["Shards"][0]["ShardId"]
    with faults.injected() as inj:
        inj.trim(stream, before=seqs[2], shard_id=shard)
        assert [r["SequenceNumber"] for r in _read(kin, stream, shard, ShardIteratorType="TRIM_HORIZON")] == seqs[2:]
    with faults.injected() as inj:
        inj.trim(stream, first=50, shard_id=shard)  # more than there are: everything is trimmed
        assert _read(kin, stream, shard, ShardIteratorType="TRIM_HORIZON") == []
        kin.put_record(StreamARN=stream, Data=b"new", PartitionKey="k")  # a record put after the trim is kept
        assert [r["Data"] for r in _read(kin, stream, shard, ShardIteratorType="TRIM_HORIZON")] == [b"new"]


# ---- every protocol: the fault asked for is the fault returned ------------------------------


def _bucket(make) -> str:
    s3 = make("s3")
    name = _name("bkt")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=name, Key="in/src.nc", Body=b"source bytes")
    return name


def _table(make) -> str:
    name = _name("tbl")
    make("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _multipart(s3, bucket: str) -> tuple[str, str]:
    key = "out/parts.nc"
    return key, s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]


# (protocol, service, operation, error code, HTTP status, the call given a client factory)
S3_CALLS = {
    "CopyObject": lambda s3, b: s3.copy_object(
        Bucket=b, Key="out/copy.nc", CopySource={"Bucket": b, "Key": "in/src.nc"}
    ),
    "UploadPartCopy": lambda s3, b: s3.upload_part_copy(
        Bucket=b,
        CopySource={"Bucket": b, "Key": "in/src.nc"},
        PartNumber=1,
        **dict(zip(("Key", "UploadId"), _multipart(s3, b), strict=True)),
    ),
    "GetObject": lambda s3, b: s3.get_object(Bucket=b, Key="in/src.nc"),
    "HeadObject": lambda s3, b: s3.head_object(Bucket=b, Key="in/src.nc"),
    "PutObject": lambda s3, b: s3.put_object(Bucket=b, Key="out/new.nc", Body=b"new"),
    "ListObjectsV2": lambda s3, b: s3.list_objects_v2(Bucket=b, Prefix="in/"),
    "DeleteObject": lambda s3, b: s3.delete_object(Bucket=b, Key="in/src.nc"),
}


def _cbor(monkeypatch):
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor", "json", "query"))


FAULTS = [
    ("json", "dynamodb", "PutItem", "ProvisionedThroughputExceededException", 400),
    ("json", "dynamodb", "UpdateItem", "InternalServerError", 500),
    ("json", "dynamodb", "GetItem", "ThrottlingException", 400),
    ("json", "dynamodb", "DeleteItem", "RequestLimitExceeded", 400),
    ("json", "kinesis", "PutRecords", "KMSThrottlingException", 400),
    ("json", "sqs", "SendMessage", "RequestThrottled", 403),
    ("json", "stepfunctions", "StartExecution", "ServiceUnavailable", 503),
    ("query", "sns", "Publish", "Throttled", 429),
    *[("rest-xml", "s3", op, "SlowDown", 503) for op in S3_CALLS],
    ("cbor", "cloudwatch", "PutMetricData", "InternalFailure", 500),
]


def _dynamodb_call(make, operation: str, monkeypatch):
    ddb, table = make("dynamodb"), _table(make)
    key = {"pk": {"S": "rec-1"}}
    return {
        "PutItem": lambda: ddb.put_item(TableName=table, Item={**key, "v": {"S": "1"}}),
        "UpdateItem": lambda: ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "2"}},
        ),
        "GetItem": lambda: ddb.get_item(TableName=table, Key=key),
        "DeleteItem": lambda: ddb.delete_item(TableName=table, Key=key),
    }[operation]


def _kinesis_call(make, operation: str, monkeypatch):
    kin, name = make("kinesis"), _name("s")
    kin.create_stream(StreamName=name, ShardCount=1)
    return lambda: kin.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])


def _sqs_call(make, operation: str, monkeypatch):
    sqs = make("sqs")
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    return lambda: sqs.send_message(QueueUrl=url, MessageBody="m")


def _stepfunctions_call(make, operation: str, monkeypatch):
    sfn = make("stepfunctions")
    arn = sfn.create_state_machine(name=_name("sm"), definition=PASS, roleArn="arn:aws:iam::123456789012:role/r")
    return lambda: _start(sfn, arn["stateMachineArn"], "1")


def _sns_call(make, operation: str, monkeypatch):
    sns = make("sns")
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    return lambda: sns.publish(TopicArn=topic, Message="m")


def _s3_call(make, operation: str, monkeypatch):
    s3, bucket = make("s3"), _bucket(make)
    return lambda: S3_CALLS[operation](s3, bucket)


def _cloudwatch_call(make, operation: str, monkeypatch):
    _cbor(monkeypatch)
    cw = make("cloudwatch")
    assert cw.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return lambda: cw.put_metric_data(Namespace="N", MetricData=[{"MetricName": "m", "Value": 1.0}])


CALLS = {
    "dynamodb": _dynamodb_call,
    "kinesis": _kinesis_call,
    "sqs": _sqs_call,
    "stepfunctions": _stepfunctions_call,
    "sns": _sns_call,
    "s3": _s3_call,
    "cloudwatch": _cloudwatch_call,
}


@pytest.fixture
def call_of(make, monkeypatch):
    """``call_of(service, operation)``: a function making that call on fresh resources."""

    def build(service: str, operation: str):
        if service not in CALLS:
            raise AssertionError(service)
        return CALLS[service](make, operation, monkeypatch)

    return build


@pytest.mark.parametrize(("protocol", "service", "operation", "code", "status"), FAULTS, ids=str)
def test_the_fault_asked_for_is_the_fault_returned(make, call_of, protocol, service, operation, code, status):
    call = call_of(service, operation)
    with faults.injected() as inj:
        fault = inj.fail(service, operation, code, status=status, message=f"injected {code} ü#?")
        with pytest.raises(ClientError) as err:
            call()
    response = err.value.response
    if operation == "HeadObject":  # a HEAD answer has no body: botocore names the error by its status, as on AWS
        assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (str(status), status)
    else:
        assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)
        assert response["Error"]["Message"] == f"injected {code} ü#?"
    assert (fault.fired, fault.matched, fault.predicate_errors) == (1, 1, [])
    call()  # cleared: the same call goes through


def test_a_dynamodb_predicate_sees_the_request_as_sent(make, call_of):
    """The predicate gets DynamoDB's parameters as the client sent them (typed attribute values)."""
    ddb, table = make("dynamodb"), _table(make)
    seen: list[dict] = []
    with faults.injected() as inj:
        fault = inj.throttle(
            "dynamodb", "PutItem", when=lambda req: seen.append(req) or req["Item"]["pk"] == {"S": "hot"}, times=1
        )
        ddb.put_item(TableName=table, Item={"pk": {"S": "cold"}})
        with pytest.raises(ddb.exceptions.ClientError):
            ddb.put_item(TableName=table, Item={"pk": {"S": "hot"}})
    assert fault.fired == 1 and [r["Item"]["pk"]["S"] for r in seen] == ["cold", "hot"]
    assert seen[1]["TableName"] == table
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "hot"}}).get("Item") is None  # not written


def test_an_s3_predicate_sees_bucket_key_and_copy_source(make):
    s3, bucket = make("s3"), _bucket(make)
    with faults.injected() as inj:
        fault = inj.fail(
            "s3", "CopyObject", "SlowDown", status=503, when=lambda req: req["CopySource"].endswith("/in/src.nc")
        )
        with pytest.raises(ClientError):
            S3_CALLS["CopyObject"](s3, bucket)
        s3.put_object(Bucket=bucket, Key="in/other.nc", Body=b"o")  # PutObject without a copy source: not a CopyObject
        s3.copy_object(Bucket=bucket, Key="out/o.nc", CopySource={"Bucket": bucket, "Key": "in/other.nc"})
    assert fault.fired == 1 and fault.predicate_errors == []


def test_a_fault_can_be_limited_to_one_caller(make, machine):
    """``user_agent``: only requests whose User-Agent contains it. botocore puts exec-env/$AWS_EXECUTION_ENV
    in it, so in a Lambda function (the runtime's processes) it says exec-env/AWS_Lambda_python3.12."""
    sfn = make("stepfunctions")
    function = make(
        "stepfunctions", Config(retries={"total_max_attempts": 1}, user_agent_extra="exec-env/AWS_Lambda_python3.12")
    )
    with faults.injected() as inj:
        fault = inj.fail("stepfunctions", "StartExecution", "ThrottlingException", user_agent="exec-env/AWS_Lambda_")
        _start(sfn, machine, "1")  # this test's own client is not a function
        with pytest.raises(ClientError):
            _start(function, machine, "2")
    assert (fault.fired, fault.matched) == (1, 1)


# ---- every protocol: a lost response (the call applied, then 500) ---------------------------

LOST = [
    ("json", "dynamodb", "PutItem"),
    ("json", "kinesis", "PutRecords"),
    ("json", "sqs", "SendMessage"),
    ("json", "stepfunctions", "StartExecution"),
    ("query", "sns", "Publish"),
    ("rest-xml", "s3", "CopyObject"),
    ("rest-xml", "s3", "PutObject"),
    ("rest-xml", "s3", "DeleteObject"),
    ("cbor", "cloudwatch", "PutMetricData"),
]


def _dynamodb_effect(make, operation: str) -> tuple:
    ddb, table = make("dynamodb"), _table(make)
    return (
        lambda: ddb.put_item(TableName=table, Item={"pk": {"S": "rec-1"}, "v": {"S": "written"}}),
        lambda: ddb.scan(TableName=table)["Count"],
    )


def _kinesis_effect(make, operation: str) -> tuple:
    kin, name = make("kinesis"), _name("s")
    kin.create_stream(StreamName=name, ShardCount=1)

    def records() -> int:
        shard = kin.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        it = kin.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        return len(kin.get_records(ShardIterator=it["ShardIterator"])["Records"])

    return lambda: kin.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}]), records


def _sqs_effect(make, operation: str) -> tuple:
    sqs = make("sqs")
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    return (
        lambda: sqs.send_message(QueueUrl=url, MessageBody="parked"),
        lambda: len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])),
    )


def _stepfunctions_effect(make, operation: str) -> tuple:
    sfn = make("stepfunctions")
    arn = sfn.create_state_machine(name=_name("sm"), definition=PASS, roleArn="arn:aws:iam::123456789012:role/r")
    arn = arn["stateMachineArn"]
    return lambda: _start(sfn, arn, "1", name="the-one"), lambda: len(
        sfn.list_executions(stateMachineArn=arn)["executions"]
    )


def _sns_effect(make, operation: str) -> tuple:
    sns, sqs = make("sns"), make("sqs")
    topic = sns.create_topic(Name=_name("t"))["TopicArn"]
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return (
        lambda: sns.publish(TopicArn=topic, Message="m"),
        lambda: len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])),
    )


def _s3_effect(make, operation: str) -> tuple:
    s3, bucket = make("s3"), _bucket(make)
    return (
        lambda: S3_CALLS[operation](s3, bucket),
        lambda: sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])),
    )


def _cloudwatch_effect(make, operation: str) -> tuple:
    cw, namespace = make("cloudwatch"), _name("ns")
    return (
        lambda: cw.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "m", "Value": 1.0}]),
        lambda: len(cw.list_metrics(Namespace=namespace)["Metrics"]),
    )


EFFECTS = {
    "dynamodb": _dynamodb_effect,
    "kinesis": _kinesis_effect,
    "sqs": _sqs_effect,
    "stepfunctions": _stepfunctions_effect,
    "sns": _sns_effect,
    "s3": _s3_effect,
    "cloudwatch": _cloudwatch_effect,
}


def _effect(make, service: str, operation: str) -> tuple:
    """(make the call, count its effect): the call and what it changed, read back through boto3."""
    if service not in EFFECTS:
        raise AssertionError(service)
    return EFFECTS[service](make, operation)


@pytest.mark.parametrize(("protocol", "service", "operation"), LOST, ids=str)
def test_a_lost_response_applies_the_call_then_answers_500(make, monkeypatch, protocol, service, operation):
    if protocol == "cbor":
        _cbor(monkeypatch)
    call, effect = _effect(make, service, operation)
    before = effect()
    with faults.injected() as inj:
        lost = inj.lose(service, operation, times=1)
        with pytest.raises(ClientError) as err:
            call()
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"]["Code"] == faults.INTERNAL_ERRORS.get(service, "InternalFailure")
    assert lost.fired == 1 and lost.after
    after = effect()
    expected = {
        "CopyObject": ["in/src.nc", "out/copy.nc"],
        "PutObject": ["in/src.nc", "out/new.nc"],
        "DeleteObject": [],
    }.get(operation, 1)
    assert (before, after) == (
        {"CopyObject": ["in/src.nc"], "PutObject": ["in/src.nc"], "DeleteObject": ["in/src.nc"]}.get(operation, 0),
        expected,
    )


def test_a_lost_response_is_retried_by_botocore_and_applied_twice(make):
    """What a lost response does on AWS: the SDK retries the 500, so the message is sent twice."""
    sqs = make("sqs", STANDARD)
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    with faults.injected() as inj:
        lost = inj.lose("sqs", "SendMessage", times=1)
        sent = sqs.send_message(QueueUrl=url, MessageBody="once?")
    assert sent["ResponseMetadata"]["RetryAttempts"] == 1 and lost.fired == 1
    bodies = [m["Body"] for m in make("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert bodies == ["once?", "once?"]


def test_an_after_fault_on_a_call_that_fails_by_itself_lets_its_own_error_through(make):
    s3, bucket = make("s3"), _bucket(make)
    with faults.injected() as inj:
        lost = inj.lose("s3", "GetObject")
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=bucket, Key="missing")
        with pytest.raises(ClientError) as err:
            s3.get_object(Bucket=bucket, Key="in/src.nc")
    assert err.value.response["Error"]["Code"] == "InternalError" and lost.fired == 1 and lost.matched == 2


def test_on_fire_reports_each_fault_with_its_request(make, machine):
    sfn = make("stepfunctions")
    fired: list[tuple[str, str]] = []
    with faults.injected() as inj:
        inj.fail(
            "stepfunctions",
            "StartExecution",
            "ThrottlingException",
            times=2,
            on_fire=lambda fault, req: fired.append(
                (fault.code, json.loads(req["input"])["source"]["sequence_number"])
            ),
        )
        for seq in ("1", "2", "3"):
            with contextlib.suppress(ClientError):
                _start(sfn, machine, seq)
    assert fired == [("ThrottlingException", "1"), ("ThrottlingException", "2")]
    with pytest.raises(ValueError):
        faults.Injected().fail("sqs", "SendMessage", "X", status=200)
