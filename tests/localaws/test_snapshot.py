"""localaws.snapshot: the local AWS's state taken once and restored before each test.

Every service the pipeline uses comes back as it was (items, objects, records, messages,
executions, functions), what was created after the snapshot is gone, the restored world keeps
working (puts, sends, starts; SQS long polling still wakes on a send), and a snapshot can be
restored any number of times into equal, independent worlds.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from localaws import snapshot
from localaws.pipeline import read_stream

PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def _wait_done(sfn, arn: str) -> str:
    deadline = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)
    return status


@pytest.fixture
def world(client):
    """One of each resource kind, with data in it, under the prefix ``snap-`` (gone again after the test:
    the world before it is restored)."""
    base = snapshot.take()
    ddb, s3, kin, sqs, sfn, iam, lam = (
        client(s) for s in ("dynamodb", "s3", "kinesis", "sqs", "stepfunctions", "iam", "lambda")
    )
    ddb.create_table(
        TableName="snap-t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    ddb.put_item(TableName="snap-t", Item={"id": {"S": "kept"}})
    s3.create_bucket(Bucket="snap-b", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="snap-b", Key="kept #1?.txt", Body=b"kept")
    kin.create_stream(StreamName="snap-s", ShardCount=1)
    stream = kin.describe_stream_summary(StreamName="snap-s")["StreamDescriptionSummary"]["StreamARN"]
    kin.put_record(StreamARN=stream, Data=b"kept", PartitionKey="k")
    queue = sqs.create_queue(QueueName="snap-q")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="kept")
    role = iam.create_role(RoleName="snap-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = sfn.create_state_machine(name="snap-m", definition=PASS, roleArn=role)["stateMachineArn"]
    kept = sfn.start_execution(stateMachineArn=machine, name="kept", input='{"kept": 1}')["executionArn"]
    assert _wait_done(sfn, kept) == "SUCCEEDED"
    lam.create_function(
        FunctionName="snap-f", Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": _zip()}
    )
    yield {"stream": stream, "queue": queue, "machine": machine, "role": role}
    snapshot.restore(base)


def listing(client, w) -> dict:
    """What each service holds of the world (read, never received or deleted)."""
    ddb, s3, kin, sqs, sfn, lam = (client(s) for s in ("dynamodb", "s3", "kinesis", "sqs", "stepfunctions", "lambda"))
    attrs = sqs.get_queue_attributes(QueueUrl=w["queue"], AttributeNames=["ApproximateNumberOfMessages"])
    return {
        "items": sorted(i["id"]["S"] for i in ddb.scan(TableName="snap-t")["Items"]),
        "objects": sorted(o["Key"] for o in s3.list_objects_v2(Bucket="snap-b").get("Contents", [])),
        "records": [r["Data"] for r in read_stream(kin, w["stream"])],
        "messages": int(attrs["Attributes"]["ApproximateNumberOfMessages"]),
        "executions": sorted(e["name"] for e in sfn.list_executions(stateMachineArn=w["machine"])["executions"]),
        "functions": sorted(
            f["FunctionName"] for f in lam.list_functions()["Functions"] if "snap-" in f["FunctionName"]
        ),
        "queues": sorted(sqs.list_queues(QueueNamePrefix="snap-").get("QueueUrls", [])),
    }


def change(client, w, tag: str) -> None:
    """Write to every service, and create a queue the snapshot never had."""
    client("dynamodb").put_item(TableName="snap-t", Item={"id": {"S": tag}})
    client("s3").put_object(Bucket="snap-b", Key=tag, Body=b"x")
    client("kinesis").put_record(StreamARN=w["stream"], Data=tag.encode(), PartitionKey="k")
    client("sqs").send_message(QueueUrl=w["queue"], MessageBody=tag)
    sfn = client("stepfunctions")
    _wait_done(sfn, sfn.start_execution(stateMachineArn=w["machine"], name=tag)["executionArn"])
    client("sqs").create_queue(QueueName=f"snap-extra-{tag}")


def test_restore_brings_back_every_service_and_drops_what_came_after(client, world):
    before = listing(client, world)
    snap = snapshot.take()
    change(client, world, "later")
    assert listing(client, world) != before
    snapshot.restore(snap)
    assert listing(client, world) == before
    assert before["items"] == ["kept"] and before["records"] == [b"kept"] and before["executions"] == ["kept"]
    assert before["functions"] == ["snap-f"] and before["messages"] == 1


def test_the_restored_world_works_and_two_restores_give_equal_independent_worlds(client, world):
    snap = snapshot.take()
    change(client, world, "one")
    snapshot.restore(snap)
    first = listing(client, world)
    change(client, world, "two")  # puts, sends, starts and creates all work after a restore
    after_change = listing(client, world)
    assert after_change["items"] == ["kept", "two"] and after_change["executions"] == ["kept", "two"]
    assert after_change["records"] == [b"kept", b"two"] and after_change["messages"] == 2
    snapshot.restore(snap)
    assert listing(client, world) == first  # the changes to the first restored world did not reach the snapshot
    # the function's code survives byte for byte
    code = client("lambda").get_function(FunctionName="snap-f")["Code"]["Location"]
    assert code  # moto serves the stored zip


def test_sqs_long_polling_wakes_on_a_send_after_restore(client, world):
    sqs = client("sqs")
    sqs.receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10)  # the kept message is now in flight
    snap = snapshot.take()
    snapshot.restore(snap)

    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-west-2"].queues["snap-q"]
    in_snapshot = next(accounts for bd, accounts in snap.state()[0].items() if bd.service_name == "sqs")
    # a copy: neither the snapshot's own object nor one an earlier restore gave
    assert queue is not in_snapshot["123456789012"]["us-west-2"].queues["snap-q"]
    snapshot.restore(snap)
    again = sqs_backends["123456789012"]["us-west-2"].queues["snap-q"]
    assert again is not queue and again.name == queue.name
    queue = again
    # moto's receive waits on the queue's Condition (in 1 s slices) until a send notifies it
    waiter = threading.Thread(target=queue.wait_for_messages, args=(20,))
    waiter.start()
    time.sleep(0.3)
    sqs.send_message(QueueUrl=world["queue"], MessageBody="after")
    waiter.join(timeout=10)
    assert not waiter.is_alive(), "the restored queue's Condition was not notified by the send"

    # and a long poll through the server receives what is sent while it waits
    got: list[dict] = []
    sqs.receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10)  # "after" in flight too

    def poll() -> None:
        got.extend(sqs.receive_message(QueueUrl=world["queue"], WaitTimeSeconds=20).get("Messages", []))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    sqs.send_message(QueueUrl=world["queue"], MessageBody="later")
    poller.join(timeout=25)
    assert [m["Body"] for m in got] == ["later"]


def test_a_mock_aws_reset_in_between_is_undone(client, world):
    from moto.core.base_backend import BackendDict

    before = listing(client, world)
    snap = snapshot.take()
    BackendDict.reset()  # what mock_aws does when an in-process test starts it
    with pytest.raises(client("dynamodb").exceptions.ResourceNotFoundException):
        client("dynamodb").scan(TableName="snap-t")
    snapshot.restore(snap)
    assert listing(client, world) == before


def test_the_pickled_form_makes_new_unlocked_locks_and_keeps_backend_dicts_by_reference():
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    lock, rlock = threading.Lock(), threading.RLock()
    cond, event = threading.Condition(rlock), threading.Event()
    event.set()
    with lock, rlock:
        kept = {"lock": lock, "rlock": rlock, "cond": cond, "event": event, "bd": sqs_backends, "s3": s3_backends}
        blob = snapshot._dumps(kept)
    copied = pickle.loads(blob)
    assert copied["lock"] is not lock and copied["lock"].acquire(blocking=False)
    assert copied["rlock"] is not rlock and copied["rlock"].acquire(blocking=False)
    assert copied["cond"]._lock is copied["rlock"]  # a Condition keeps sharing its (new) lock
    assert copied["event"] is not event and copied["event"].is_set()
    assert copied["bd"] is sqs_backends  # a reference to the live BackendDict, never a copy
    assert copied["s3"] is s3_backends and type(s3_backends).__name__ == "S3BackendDict"  # a subclass too
    assert len(blob) < 1000


def test_a_snapshot_file_restores_in_another_process(client, world, tmp_path):
    """The form another pytest process loads: saved, then restored by a fresh interpreter whose moto has
    never seen this process's BackendDicts (each found again by its backend's class and service)."""
    path = tmp_path / "applied.pickle"
    snapshot.take().save(path)
    script = (
        "import sys; from localaws import snapshot\n"
        "from moto.dynamodb.models import dynamodb_backends\n"
        "snapshot.restore(snapshot.Snapshot.load(__import__('pathlib').Path(sys.argv[1])))\n"
        "table = dynamodb_backends['123456789012']['us-west-2'].tables['snap-t']\n"
        "print(sorted(item.attrs['id'].value for item in table.all_items()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['kept']"
    assert "sqs" in snapshot.Snapshot.load(path).services and not path.with_name(path.name + ".tmp").exists()


def test_isolated_gives_an_empty_world_and_puts_the_old_one_back(client):
    ddb = client("dynamodb")
    table = "isolated-kept"
    keys = {"KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}
    attrs = {"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]}
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **keys, **attrs)
    ddb.put_item(TableName=table, Item={"id": {"S": "outside"}})
    with snapshot.isolated():
        assert table not in ddb.list_tables()["TableNames"]
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **keys, **attrs)  # the same name again
        ddb.put_item(TableName=table, Item={"id": {"S": "inside"}})
    items = ddb.scan(TableName=table)["Items"]
    assert items == [{"id": {"S": "outside"}}]
    ddb.delete_table(TableName=table)


def test_isolated_puts_the_old_world_back_after_an_error(client):
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="isolated-error")["QueueUrl"]
    with pytest.raises(RuntimeError), snapshot.isolated():
        assert sqs.list_queues(QueueNamePrefix="isolated-error").get("QueueUrls", []) == []
        raise RuntimeError("half-way")
    assert sqs.list_queues(QueueNamePrefix="isolated-error")["QueueUrls"] == [url]
    sqs.delete_queue(QueueUrl=url)


def test_throwing_the_local_aws_away_drops_everything_and_a_restore_undoes_it(client, world, local_aws):
    """LocalAWS.reset (the session's end without `terraform destroy`) leaves no resource of any kind."""
    before = listing(client, world)
    snap = snapshot.take()
    local_aws.reset()
    with pytest.raises(client("dynamodb").exceptions.ResourceNotFoundException):
        client("dynamodb").scan(TableName="snap-t")
    assert [b["Name"] for b in client("s3").list_buckets()["Buckets"]] == []
    assert client("kinesis").list_streams()["StreamNames"] == []
    assert client("sqs").list_queues().get("QueueUrls", []) == []
    assert client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert client("lambda").list_functions()["Functions"] == []
    snapshot.restore(snap)
    assert listing(client, world) == before


def test_a_kms_key_signs_the_same_after_a_restore(client):
    """moto's KMS keys hold cryptography key objects (not picklable as they are): written as DER, they
    come back as the same key, so a signature made before the snapshot verifies after the restore."""
    base = snapshot.take()
    kms = client("kms")
    key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signed = {"KeyId": key, "Message": b"granule #1?", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}
    signature = kms.sign(**signed)["Signature"]
    public = kms.get_public_key(KeyId=key)["PublicKey"]
    snap = snapshot.take()
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    snapshot.restore(snap)
    try:
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
        assert kms.get_public_key(KeyId=key)["PublicKey"] == public
        assert kms.verify(**signed, Signature=signature)["SignatureValid"]
        snapshot.restore(snap)  # a second restore: a key object of its own, still the same key
        assert kms.verify(**signed, Signature=kms.sign(**signed)["Signature"])["SignatureValid"]
    finally:
        snapshot.restore(base)


def test_a_saved_snapshot_loads_with_another_endpoint_in_every_value(client, local_aws, tmp_path):
    """What tests/worlds.py does with an apply another pytest process shared: every mention of that
    process's endpoint (a function's variables, a big value kept beside the pickle) becomes this one's,
    and an endpoint of another length is refused (the pickle's strings are replaced in place)."""
    base = snapshot.take()
    theirs = local_aws.endpoint.split("://")[1]
    ours = "127.0.0.1:" + ("9" * len(theirs.split(":")[1]))
    role = client("iam").create_role(RoleName="snap-endpoint", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    filler = "".join(f"{n:08x}" for n in range(snapshot.BIG // 8 + 1))  # a zip over the size kept aside
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("index.py", f"ENDPOINT = 'http://{theirs}'\n# {filler}\n")
    variables = {"QUEUE_URL": f"http://{theirs}/123456789012/snap-q"}
    lam = client("lambda")
    lam.create_function(
        FunctionName="snap-endpoint",
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": buf.getvalue()},
        Environment={"Variables": variables},
    )
    path = tmp_path / "shared.pickle"
    snap = snapshot.take()
    assert any(isinstance(b, bytes) and theirs.encode() in b for b in snap.big)  # the zip, kept aside
    snap.save(path)
    with pytest.raises(ValueError, match="differ in length"):
        snapshot.Snapshot.load(path, replace=(theirs, ours + "0"))
    loaded = snapshot.Snapshot.load(path, replace=(theirs, ours))
    assert not any(theirs.encode() in b for b in loaded.big if isinstance(b, bytes))
    snapshot.restore(loaded)
    try:
        got = lam.get_function_configuration(FunctionName="snap-endpoint")["Environment"]["Variables"]
        assert got == {"QUEUE_URL": f"http://{ours}/123456789012/snap-q"}
    finally:
        snapshot.restore(base)
    assert "snap-endpoint" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]


def test_a_restore_does_not_keep_the_world_it_replaced(client, world):
    """moto lists every model object it makes (for its dashboard); a restore empties those lists before it
    unpickles, so restoring again and again keeps one world alive, not one per restore."""
    from moto.core.model_instances import model_data

    def tracked() -> int:
        return sum(len(model.instances_tracked) for models in model_data.values() for model in models.values())

    snap = snapshot.take()
    snapshot.restore(snap)
    once = tracked()
    for _ in range(3):
        snapshot.restore(snap)
    assert tracked() == once > 0
