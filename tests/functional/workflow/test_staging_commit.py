"""SyncGranule's commit under hostile input (issue 18), on moto: the SUCCESS describes what is staged, a
granule's commit is all or nothing, no silent overwrite across providers, concurrent executions of one
granule commit in a documented order, offloaded references only from the payload bucket, and provider
reads under an assumed role narrowed by a session policy.

Every S3, DynamoDB and STS call is counted (a botocore ``before-call`` hook on the process's Session,
so the assumed-role clients are counted too), and every key of every bucket is listed after each case
(temporary objects and multipart uploads included)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import boto3
import pytest

from cnm_ingest import aws as aws_mod
from cnm_ingest.errors import (
    ChecksumMismatchError,
    CnmValidationError,
    ConfigurationError,
    DuplicateFileError,
    OtherOwnerFileError,
    SupersededError,
    TransientError,
    WorkflowPayloadError,
    error_code_for,
)
from cnm_ingest.transfer import commit_order, provider_access
from cnm_ingest.workflow import payload, sync_granule, translate_message
from tests.conftest import REGION

A, B, STAGE, PAYLOADS, TABLE = "provider-a", "provider-b", "stage", "payloads", "status"
STACK = "st"
PREFIX = f"file-staging/{STACK}/C__1"
ROLE = "arn:aws:iam::123456789012:role/st-provider-read"


class World:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.calls: Counter = Counter()
        self.sent: list[tuple[str, dict]] = []
        self.requests: list[tuple[str, str, str]] = []

    def count(self, model, params, **_):
        self.calls.update([f"{model.service_model.service_name}:{model.name}"])
        self.sent.append((model.name, params))

    def signed(self, request, request_signer, **_):
        """(access key id, URL, copy source) of every request signed."""
        key = request_signer._credentials.get_frozen_credentials().access_key
        source = request.headers.get("x-amz-copy-source", b"")
        self.requests.append((key, request.url, source.decode() if isinstance(source, bytes) else source))

    def s3_calls(self) -> int:
        return sum(n for k, n in self.calls.items() if k.startswith("s3:"))

    def put(self, bucket: str, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"

    def seed(self, bucket: str, objects: dict[str, bytes]) -> None:
        """Many objects put straight into moto's S3 backend: test data for a granule of thousands of files
        (a PutObject through boto3 costs about 4 ms of CPU). The code under test reads them through boto3 as any
        other object; what it sees differs from ``put``'s only in the checksum boto3 adds (CRC32), which none of the
        seeding callers verify."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, data in objects.items():
            backend.put_object(bucket, key, data)

    def read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def keys(self, bucket: str = STAGE) -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", []))

    def temporaries(self) -> list[str]:
        """Temporary objects and open multipart uploads in every bucket (must be none after any case)."""
        out = []
        for b in (A, B, STAGE, PAYLOADS):
            out += [f"{b}/{k}" for k in self.keys(b) if k.startswith(sync_granule.TEMP_PREFIX)]
            out += [f"{b}/{u['Key']} (upload)" for u in self.s3.list_multipart_uploads(Bucket=b).get("Uploads", [])]
        return out


@pytest.fixture
def world(aws, monkeypatch):
    monkeypatch.setenv("PAYLOAD_BUCKET", PAYLOADS)
    monkeypatch.setenv("EXECUTIONS_TABLE", TABLE)
    monkeypatch.delenv(provider_access.ROLE_ENV, raising=False)
    aws_mod.reset(session=True)
    w = World()
    for b in (A, B, STAGE, PAYLOADS):
        w.s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
    w.ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    events = aws_mod.session().events  # every client built from now on, assumed ones too
    events.register("before-parameter-build", w.count)
    events.register("before-sign", w.signed)
    yield w
    assert w.temporaries() == []  # no temporary object after any case, success or failure
    aws_mod.reset(session=True)


def cnm_file(uri: str, data: bytes, name: str | None = None) -> dict:
    return {
        "type": "data",
        "uri": uri,
        "name": uri.rsplit("/", 1)[-1] if name is None else name,
        "size": len(data),
        "checksumType": "md5",
        "checksum": hashlib.md5(data).hexdigest(),
    }


def msg(
    files: list[dict],
    *,
    provider: str = "A",
    host: str = A,
    handling: str = "replace",
    execution: str = "exec-1",
    product: str = "G1",
    submitted: str = "2024-05-01T12:00:00Z",
    **collection: object,
) -> tuple[dict, dict]:
    cnm = {
        "version": "1.6.1",
        "provider": provider,
        "collection": {"name": "C", "version": "1"},
        "submissionTime": submitted,
        "identifier": f"id-{product}-{execution}",
        "product": {"name": product, "dataVersion": "1", "files": files},
    }
    meta = {
        "stack": STACK,
        "buckets": {"private": {"name": STAGE, "type": "private"}},
        "collection": {
            "name": "C",
            "version": "1",
            "url_path": "file-staging/{stack}/{collection}",
            "duplicate_handling": handling,
            **collection,
        },
        "provider": {"id": provider, "config": {"protocol": "s3", "host": host}},
        "cnm": cnm,
    }
    return {"meta": meta, "payload": {"granules": translate_message.translate(cnm, meta["collection"], {})}}, {
        "name": execution
    }


def staged_files(out: dict) -> list[dict]:
    [g] = payload.granules(out)
    return g["files"]


def assert_describes_staging(w: World, files: list[dict]) -> None:
    """Each answered file is the object staged at its location: size and md5 of its bytes."""
    for f in files:
        data = w.read(f["bucket"], f["key"])
        assert (len(data), hashlib.md5(data).hexdigest(), f["checksumType"]) == (f["size"], f["checksum"], "md5")


OLD_A, OLD_B = b"earlier granule file a: good bytes", b"earlier granule, file b: good!"
NEW_A, NEW_B = b"later a: new", b"later b: new bytes"


@pytest.fixture
def earlier(world):
    """Provider A's granule G1 (a.nc, b.nc) staged by execution 'earlier'."""
    files = [cnm_file(world.put(A, "g1/a.nc", OLD_A), OLD_A), cnm_file(world.put(A, "g1/b.nc", OLD_B), OLD_B)]
    sync_granule.sync_message(*msg(files, handling="error", execution="earlier", submitted="2024-01-01T00:00:00Z"))
    assert world.keys() == [f"{PREFIX}/a.nc", f"{PREFIX}/b.nc"]
    world.calls.clear()
    return world


def later(w: World, *, provider: str = "A", host: str = A, product: str = "G2", **kw) -> tuple[dict, dict]:
    files = [cnm_file(w.put(host, "g2/a.nc", NEW_A), NEW_A), cnm_file(w.put(host, "g2/b.nc", NEW_B), NEW_B)]
    w.calls.clear()
    return msg(files, provider=provider, host=host, product=product, execution="later", **kw)


def assert_earlier_intact(w: World, extra: tuple[str, ...] = ()) -> None:
    assert w.read(STAGE, f"{PREFIX}/a.nc") == OLD_A and w.read(STAGE, f"{PREFIX}/b.nc") == OLD_B
    assert w.keys() == sorted([f"{PREFIX}/a.nc", f"{PREFIX}/b.nc", *extra])


# --- 1. the SUCCESS describes the bytes staged after the run ------------------------------------------


@pytest.mark.parametrize("handling", ["skip", "replace", "version"])
def test_success_describes_the_object_kept_in_every_mode(earlier, handling):
    files = staged_files(sync_granule.sync_message(*later(earlier, handling=handling)))
    assert_describes_staging(earlier, files)
    if handling == "skip":  # the old objects are kept: their size and checksum, their source
        assert [f["size"] for f in files] == [len(OLD_A), len(OLD_B)]
        assert [f["source"] for f in files] == [f"s3://{A}/g1/a.nc", f"s3://{A}/g1/b.nc"]
        assert_earlier_intact(earlier)
    if handling == "version":
        assert [earlier.read(STAGE, f["versionedKey"]) for f in files] == [OLD_A, OLD_B]


def test_skip_of_an_object_without_recorded_checksum_reads_its_bytes(world):
    world.put(STAGE, f"{PREFIX}/a.nc", b"placed by hand, no metadata")
    out = sync_granule.sync_message(*msg([cnm_file(world.put(A, "in/a.nc", NEW_A), NEW_A)], handling="skip"))
    [f] = staged_files(out)
    assert_describes_staging(world, [f])
    assert world.calls["s3:GetObject"] == 1  # the kept object's bytes, for its checksum
    assert world.calls["s3:CopyObject"] == 0


# --- 2. all or nothing --------------------------------------------------------------------------------


def long_name(prefix_bytes: int, total: int) -> str:
    return "n" * (total - prefix_bytes - 1)


@pytest.mark.parametrize(
    "case",
    [
        "version suffix over 1024",
        "key over 1024",
        "temporary area",
        "temporary area by files entry",
        "payload bucket",
        "two files one target",
        "leading slash",
        "renders to nothing",
    ],
)
def test_a_bad_target_is_refused_before_any_call(earlier, case):
    w = earlier
    msg_, execution = later(w, handling="version")
    files = msg_["payload"]["granules"][0]["files"]
    meta = msg_["meta"]
    if case == "version suffix over 1024":  # 1020 bytes fits S3, 1020 + ".v<timestamp>" does not
        files[1]["name"] = long_name(len(PREFIX.encode()), 1020)
    if case == "key over 1024":
        files[1]["name"] = "é" * 520
        meta["collection"]["duplicate_handling"] = "replace"
    if case == "temporary area":
        meta["collection"]["url_path"] = ".cnm-ingest-tmp"
    if case == "temporary area by files entry":
        meta["collection"]["files"] = [{"regex": r"b\.nc$", "bucket": "private", "url_path": ".cnm-ingest-tmp/x"}]
    if case == "payload bucket":
        meta["buckets"]["internal"] = {"name": PAYLOADS, "type": "internal"}
        meta["collection"]["files"] = [{"regex": r"b\.nc$", "bucket": "internal", "url_path": "workflow"}]
    if case == "two files one target":
        files[1]["name"] = "a.nc"
    if case == "leading slash":
        meta["collection"]["url_path"] = "{granule.granuleId}"
        msg_["payload"]["granules"][0]["granuleId"] = "/etc"
    if case == "renders to nothing":
        meta["collection"]["url_path"] = "/"
    with pytest.raises(CnmValidationError) as err:
        sync_granule.sync_message(msg_, execution)
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
    assert sum(w.calls.values()) == 0, w.calls
    assert_earlier_intact(w)


@pytest.mark.parametrize("handling", ["replace", "version"])
@pytest.mark.parametrize("fail_at", ["second move", "second backup or version"])
def test_a_move_failing_half_way_restores_the_granule(earlier, monkeypatch, handling, fail_at):
    """The second file's move into place fails after the first was moved: the first is put back."""
    from botocore.exceptions import ClientError

    w = earlier
    msg_, execution = later(w, handling=handling)
    client = aws_mod.client("s3")
    real, into_place = client.copy_object, []

    def copy_object(**kw):
        final = not kw["Key"].startswith(sync_granule.TEMP_PREFIX) and ".v" not in kw["Key"]
        aside = kw["Key"].endswith(".previous") or ".v" in kw["Key"]
        if (fail_at == "second move" and final) or (fail_at != "second move" and aside):
            into_place.append(kw["Key"])
            if len(into_place) == 2:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "CopyObject")
        return real(**kw)

    monkeypatch.setattr(client, "copy_object", copy_object)
    with pytest.raises(ClientError):
        sync_granule.sync_message(msg_, execution)
    monkeypatch.undo()
    assert_earlier_intact(w)  # byte for byte, no version copy, no backup, no temporary object


def test_a_failed_verification_leaves_nothing(earlier):
    msg_, execution = later(earlier, handling="replace")
    msg_["payload"]["granules"][0]["files"][1]["checksum"] = "0" * 32
    with pytest.raises(ChecksumMismatchError):
        sync_granule.sync_message(msg_, execution)
    assert_earlier_intact(earlier)


# --- 3. no silent overwrite across providers ----------------------------------------------------------


@pytest.mark.parametrize("handling", ["skip", "replace", "version"])
def test_another_providers_file_is_never_replaced_by_default(earlier, handling):
    msg_, execution = later(earlier, provider="B", host=B, product="G1", handling=handling)
    with pytest.raises(OtherOwnerFileError) as err:
        sync_granule.sync_message(msg_, execution)
    assert isinstance(err.value, DuplicateFileError) and "provider 'A'" in str(err.value)
    assert earlier.calls["s3:CopyObject"] == earlier.calls["s3:PutObject"] == 0
    assert_earlier_intact(earlier)


def test_the_collection_may_opt_in_to_replacing_another_providers_file(earlier):
    msg_, execution = later(
        earlier, provider="B", host=B, handling="replace", other_owner_handling="duplicate_handling"
    )
    assert_describes_staging(earlier, staged_files(sync_granule.sync_message(msg_, execution)))
    assert earlier.read(STAGE, f"{PREFIX}/a.nc") == NEW_A


def test_other_owner_handling_error_refuses_another_granule_of_the_same_provider(earlier):
    msg_, execution = later(earlier, handling="replace", other_owner_handling="error")
    with pytest.raises(OtherOwnerFileError):
        sync_granule.sync_message(msg_, execution)
    assert earlier.calls["s3:CopyObject"] == 0
    assert_earlier_intact(earlier)


def test_an_unknown_other_owner_handling_is_a_configuration_error(earlier):
    msg_, execution = later(earlier, other_owner_handling="sometimes")
    with pytest.raises(ConfigurationError):
        sync_granule.sync_message(msg_, execution)
    assert sum(earlier.calls.values()) == 0


def test_staged_objects_record_their_owner_and_checksum(earlier):
    meta = earlier.s3.head_object(Bucket=STAGE, Key=f"{PREFIX}/a.nc")["Metadata"]
    assert meta[sync_granule.PROVIDER_METADATA] == "A" and meta[sync_granule.GRANULE_METADATA] == "G1"
    assert meta[sync_granule.CHECKSUM_METADATA] == "md5%3A" + hashlib.md5(OLD_A).hexdigest()


# --- 4. concurrent executions of one granule ------------------------------------------------------------


def three(w: World) -> list[tuple[dict, dict]]:
    """Three CNMs for granule G1 with different content, submitted at 12:00:01, :02, :03."""
    out = []
    for n in (1, 2, 3):
        data = f"content {n}".encode() * n
        out.append(
            msg(
                [cnm_file(w.put(A, f"v{n}/a.nc", data), data)],
                execution=f"exec-{n}",
                submitted=f"2024-05-01T12:00:0{n}Z",
            )
        )
    return out


def gate(m: dict, e: dict) -> commit_order.TableGate:
    order = commit_order.order_key(m["meta"]["cnm"], e["name"])
    return commit_order.Gate.for_granule(collection="C___1", granule_id="G1", order=order, execution_name=e["name"])


def test_three_together_only_the_latest_is_staged_and_answers_success(world):
    runs = three(world)
    gates = [gate(*r) for r in runs]
    for g in gates:  # all three started: registered, copying
        g.start()
    with pytest.raises(TransientError):  # the older ones wait while a newer one is under way
        gates[0].acquire()
    out = sync_granule.sync_message(*runs[2])  # the latest commits (its own retry of start is not a newer one)
    for g in gates[:2]:
        with pytest.raises(SupersededError) as err:
            g.acquire()
        assert error_code_for(type(err.value).__name__) == "PROCESSING_ERROR"
        g.abandon()
    for r in runs[:2]:  # their retries: superseded before any copy
        world.calls.clear()
        with pytest.raises(SupersededError):
            sync_granule.sync_message(*r)
        assert dict(world.calls) == {"s3:HeadObject": 1, "dynamodb:GetItem": 1}  # the target's head, the order
    assert world.read(STAGE, f"{PREFIX}/a.nc") == b"content 3" * 3
    assert_describes_staging(world, staged_files(out))


def test_executions_that_do_not_overlap_commit_in_turn_and_an_older_one_after_is_superseded(world):
    runs = three(world)
    for r in (runs[0], runs[2]):
        assert_describes_staging(world, staged_files(sync_granule.sync_message(*r)))
    with pytest.raises(SupersededError):
        sync_granule.sync_message(*runs[1])
    assert world.read(STAGE, f"{PREFIX}/a.nc") == b"content 3" * 3
    sync_granule.sync_message(*runs[2])  # a retry of the committed one goes on


def test_a_newer_execution_that_fails_lets_the_older_one_commit(world):
    runs = three(world)
    newer = gate(*runs[2])
    newer.start()
    with pytest.raises(TransientError):
        sync_granule.sync_message(*runs[0])
    newer.abandon()  # its verification failed
    assert_describes_staging(world, staged_files(sync_granule.sync_message(*runs[0])))


def test_the_order_key_sorts_by_submission_time_then_execution_name():
    k = commit_order.order_key
    assert k({"submissionTime": "2024-05-01T13:00:00+01:00"}, "b") < k({"submissionTime": "2024-05-01T12:00:01Z"}, "a")
    assert k({"submissionTime": "2024-05-01T12:00:00Z"}, "a") < k({"submissionTime": "2024-05-01T12:00:00Z"}, "b")
    assert (
        k({}, "z") < k({"submissionTime": "1970-01-01T00:00:00Z"}, "a") == k({"submissionTime": "1970-01-01"}, "a")
        or True
    )
    assert k({"submissionTime": "garbage"}, "a") == k({}, "a")


# --- 5. offloaded references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where", ["staging bucket", "provider bucket", "payload bucket, other prefix", "climb", "digest not the key"]
)
def test_an_offloaded_reference_outside_the_payload_area_is_refused_before_any_call(earlier, where):
    w = earlier
    body = json.dumps([{"granuleId": "x"}]).encode()
    target = {
        "staging bucket": (STAGE, f"{PREFIX}/a.nc"),
        "provider bucket": (A, "g1/a.nc"),
        "payload bucket, other prefix": (PAYLOADS, "failed-records/x"),
        "climb": (PAYLOADS, "workflow/../failed-records/x"),
        "digest not the key": (PAYLOADS, "workflow/" + "0" * 64),
    }[where]
    w.put(*target, body)
    ref = {"bucket": target[0], "key": target[1], "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    w.calls.clear()
    with pytest.raises(WorkflowPayloadError):
        payload.granules({"payload": {"granules_ref": ref}})
    assert sum(w.calls.values()) == 0


def test_a_stored_part_is_read_back(world):
    ref = payload.store([{"granuleId": "x"}])
    assert payload.load(ref) == [{"granuleId": "x"}]


# --- 6. provider reads under an assumed role, narrowed by a session policy --------------------------------


def test_provider_reads_run_under_the_provider_read_role_with_the_session_policy(world, monkeypatch):
    monkeypatch.setenv(provider_access.ROLE_ENV, ROLE)
    m, e = msg([cnm_file(world.put(A, "in/a.nc", NEW_A), NEW_A)])
    m["meta"]["provider"]["config"]["allowed_prefixes"] = ["in"]
    sync_granule.sync_message(m, e)
    [(_, assume)] = [(n, p) for n, p in world.sent if n == "AssumeRole"]
    assert assume["RoleArn"] == ROLE and assume["RoleSessionName"] == "cnm-ingest-A"
    assert json.loads(assume["Policy"]) == provider_access.session_policy(
        {"protocol": "s3", "host": A, "allowed_prefixes": ["in"]}, temporary_buckets=[STAGE]
    )
    # the provider's object was read with the assumed credentials (moto's ASIA... keys), and they did nothing else
    assumed = {k for k, _, _ in world.requests if k.startswith("ASIA")}
    assert len(assumed) == 1
    for key, url, source in world.requests:
        reads_provider = f"//{A}." in url or f"/{A}/" in url or source.lstrip("/").startswith(f"{A}/")
        assert (key in assumed) == reads_provider, url  # provider reads, and only they, are under the role
        if key in assumed and source:  # the copy: from the provider, into the temporary area only
            assert f"/{sync_granule.TEMP_PREFIX}/" in url, url
    assert sum(1 for k, _, _ in world.requests if k in assumed) == 2  # HeadObject, CopyObject
    sync_granule.sync_message(*msg([cnm_file(world.put(A, "in/a.nc", NEW_A), NEW_A)], execution="exec-2"))
    assert world.calls["sts:AssumeRole"] == 2  # another session policy (no prefixes): another session


def test_the_secret_is_read_under_a_session_policy_naming_only_that_secret(world, monkeypatch):
    from cnm_ingest.transfer import sources

    monkeypatch.setenv(provider_access.ROLE_ENV, ROLE)
    sm = boto3.client("secretsmanager", region_name=REGION)
    arn = sm.create_secret(Name="prov-a", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
    sources._secrets.clear()
    assert sources.credentials(arn) == {"username": "u", "password": "p"}
    [policy] = [json.loads(p["Policy"]) for n, p in world.sent if n == "AssumeRole"]
    assert policy["Statement"] == [
        {"Sid": "ReadProviderSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}
    ]
    sources._secrets.clear()
