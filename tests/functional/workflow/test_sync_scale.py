"""SyncGranule at archive scale (issue 22), on in-process moto: the bounded parallel path stages what the
sequential path stages; S3 computes SHA-1 / SHA-256 (0 bytes read through the function), md5 is read once;
and the hostile cases: throttling mid-granule, a file gone between listing and copy, a crash after half
the files and the workflow's retry after it, a 10,000-file CNM with one bad file.

Every S3 call is counted (the ``w`` fixture's botocore hook on the process's Session, provider-read
clients included), and after every case no temporary object or open multipart upload is left in any bucket
(the fixture's teardown)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from cnm_ingest import aws as aws_mod
from cnm_ingest.errors import (
    ChecksumMismatchError,
    DuplicateFileError,
    FileNotFoundAtSourceError,
    OtherOwnerFileError,
    error_code_for,
)
from cnm_ingest.transfer import commit_order
from cnm_ingest.workflow import payload, sync_granule
from tests.functional.workflow.test_staging_commit import STAGE, TABLE, A, World, msg, world  # noqa: F401


@pytest.fixture
def w(world: World) -> World:  # noqa: F811 - test_staging_commit's w: moto, buckets, table, counted calls
    return world


def data_of(i: int) -> bytes:
    return f"file {i}: ".encode() * (i % 7 + 1)


def files_of(w: World, n: int, kind: str = "md5", product: str = "G1") -> list[dict]:
    algo = {"md5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}[kind]
    out = []
    for i in range(n):
        data = data_of(i)
        uri = w.put(A, f"{product}/f{i:05d}.nc", data)
        out.append(
            {
                "type": "data",
                "uri": uri,
                "name": f"f{i:05d}.nc",
                "size": len(data),
                "checksumType": kind,
                "checksum": hashlib.new(algo, data).hexdigest(),
            }
        )
    return out


def staged_answer(out: dict) -> list[dict]:
    [g] = payload.granules(out)
    return g["files"]


def on_call(w: World, operation: str, action) -> None:
    """Run ``action(request, n)`` before the n-th (1-based) ``operation`` S3 call SyncGranule makes."""
    seen = [0]

    def hook(params, **_):
        seen[0] += 1
        action(params, seen[0])

    aws_mod.session().events.register(f"before-call.s3.{operation}", hook)
    aws_mod.reset()  # clients copy the Session's handlers when built: build them again, with this one


def snapshot(w: World, prefix: str) -> dict[str, tuple[bytes, dict]]:
    out = {}
    for key in w.keys():  # noqa: SIM118 - World.keys() lists the staged objects (not a dict)
        if key.startswith(prefix + "/"):
            found = w.s3.head_object(Bucket=STAGE, Key=key)
            out[key.removeprefix(prefix)] = (w.read(STAGE, key), found["Metadata"])
    return out


# --- the same result, fewer calls -------------------------------------------------------------------------


def test_the_parallel_path_stages_what_the_sequential_path_stages(w):
    files = files_of(w, 60)
    answers = {}
    for name, concurrency in (("seq", 1), ("par", 16)):
        m, e = msg(files, url_path=f"{name}/{{collection}}")
        w.calls.clear()
        answers[name] = staged_answer(sync_granule.sync_message(m, e, concurrency=concurrency))
        assert w.calls["s3:CopyObject"] == 2 * 60  # to the temporary area, then into place: once each
    strip = [{k: v for k, v in f.items() if k != "key"} for f in answers["seq"]]
    assert strip == [{k: v for k, v in f.items() if k != "key"} for f in answers["par"]]
    assert [f["key"].split("/", 1)[1] for f in answers["seq"]] == [f["key"].split("/", 1)[1] for f in answers["par"]]
    seq, par = snapshot(w, "seq"), snapshot(w, "par")
    assert len(seq) == 60 and seq == par
    assert all(data == data_of(int(key[-8:-3])) for key, (data, _) in seq.items())


@pytest.mark.parametrize("kind", ["SHA256", "SHA1"])
def test_s3_computes_the_checksum_and_no_byte_is_read(w, kind):
    files = files_of(w, 12, kind)
    w.calls.clear()
    out = staged_answer(sync_granule.sync_message(*msg(files)))
    assert w.calls["s3:GetObject"] == 0
    copies = [p for op, p in w.sent if op == "CopyObject" and p.get("ChecksumAlgorithm")]
    assert len(copies) == 12 and {p["ChecksumAlgorithm"] for p in copies} == {kind}
    for f, i in zip(out, range(12), strict=True):
        assert w.read(STAGE, f["key"]) == data_of(i) and f["checksum"] == files[i]["checksum"]


@pytest.mark.parametrize("kind", ["SHA256", "SHA1"])
def test_a_wrong_s3_computed_checksum_is_refused_without_reading_and_nothing_is_staged(w, kind):
    files = files_of(w, 6, kind)
    files[4]["checksum"] = base64.b64encode(bytes(len(bytes.fromhex(files[4]["checksum"])))).decode()  # all zeros
    w.calls.clear()
    with pytest.raises(ChecksumMismatchError) as caught:
        sync_granule.sync_message(*msg(files), concurrency=1)
    assert error_code_for(type(caught.value).__name__) == "VALIDATION_ERROR"
    assert w.calls["s3:GetObject"] == 0 and w.keys() == []


@pytest.mark.parametrize("kind", ["md5", "SHA512"])
def test_md5_and_sha512_read_each_byte_once(w, kind):
    files = files_of(w, 10, kind)
    read = []
    aws_mod.session().events.register(
        "after-call.s3.GetObject", lambda parsed, **_: read.append(parsed["ContentLength"])
    )
    sync_granule.sync_message(*msg(files))
    assert sum(read) == sum(f["size"] for f in files) and len(read) == 10


def test_calls_per_file(w):
    """The calls per file of an s3 source (docs: the calls-per-protocol table in the report)."""
    files = files_of(w, 50, "SHA256")
    w.calls.clear()
    sync_granule.sync_message(*msg(files))
    s3 = {k.removeprefix("s3:"): v for k, v in w.calls.items() if k.startswith("s3:")}
    # a listing of the targets (none there: no read of any target, and each move a copy with If-None-Match),
    # a listing of the execution's temporary area (the copies an earlier invocation left to reuse),
    # the source's HEAD, the copy into the temporary area (S3 computes SHA-256), the copy into place
    assert s3 == {"HeadObject": 50, "CopyObject": 2 * 50, "DeleteObjects": 1, "ListObjectsV2": 2}
    into_place = [p for op, p in w.sent if op == "CopyObject" and not p["Key"].startswith(sync_granule.TEMP_PREFIX)]
    assert len(into_place) == 50 and {p.get("IfNoneMatch") for p in into_place} == {"*"}


# --- hostile cases ------------------------------------------------------------------------------------------


def test_throttling_mid_granule_is_waited_out_together_and_the_granule_staged_once(w):
    files = files_of(w, 40)

    def slow_down(params, n):
        if n in (10, 11, 12):
            raise ClientError(
                {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "CopyObject"
            )

    on_call(w, "CopyObject", slow_down)
    w.calls.clear()
    out = staged_answer(sync_granule.sync_message(*msg(files), concurrency=8))
    assert w.calls["s3:CopyObject"] == 2 * 40 + 3  # each throttled copy tried again, nothing else twice
    assert len(out) == 40 and len(w.keys()) == 40
    assert all(w.read(STAGE, f["key"]) == data_of(i) for i, f in enumerate(out))


def test_a_file_gone_between_listing_and_copy_fails_the_granule_and_stages_nothing(w):
    files = files_of(w, 30)

    def vanish(params, n):
        if str(params["headers"].get("x-amz-copy-source", "")).endswith("/G1/f00017.nc"):  # the request by now
            w.s3.delete_object(Bucket=A, Key="G1/f00017.nc")

    on_call(w, "CopyObject", vanish)
    with pytest.raises(FileNotFoundAtSourceError) as caught:
        sync_granule.sync_message(*msg(files), concurrency=8)
    assert error_code_for(type(caught.value).__name__) == "TRANSFER_ERROR"
    assert w.keys() == []  # nothing staged; the fixture checks no temporary object is left


def test_a_crash_after_half_the_files_then_the_retry_stages_what_an_undisturbed_run_does(w, monkeypatch):
    files = files_of(w, 40)
    reference, e = msg(files, url_path="ref/{collection}", execution="a-ref")  # ordered before exec-1
    sync_granule.sync_message(reference, e)
    expected = snapshot(w, "ref")
    m, e = msg(files, url_path="run/{collection}", execution="exec-1")

    class Killed(BaseException):
        """The Lambda runtime killing the invocation: no cleanup of ours runs."""

    def kill(params, n):
        if n == 20:
            raise Killed()

    with monkeypatch.context() as patched:  # a killed process cleans nothing up
        patched.setattr(sync_granule, "_discard", lambda files: None)
        patched.setattr(commit_order.TableGate, "abandon", lambda self: None)
        on_call(w, "CopyObject", kill)
        with pytest.raises(Killed):
            sync_granule.sync_message(m, e, concurrency=4)
    left = [k for k in w.keys() if k.startswith(sync_granule.TEMP_PREFIX)]  # noqa: SIM118 - World.keys()
    assert 0 < len(left) < 40 and not [k for k in w.keys() if k.startswith("run/")]  # noqa: SIM118
    aws_mod.reset(session=True)  # the retry is a new invocation: new clients, without the killing hook
    world_events = aws_mod.session().events
    world_events.register("before-parameter-build", w.count)
    w.calls.clear()
    w.sent.clear()
    sync_granule.sync_message(m, e, concurrency=4)
    assert snapshot(w, "run") == {k: (d, {**md, "cnm-ingest-execution": "exec-1"}) for k, (d, md) in expected.items()}
    # the verified temporary copies the crash left are reused (md5: read back once, not copied again): the retry
    # copies only the other files into the temporary area, then every file once into place
    assert w.calls["s3:CopyObject"] == (40 - len(left)) + 40
    into_temp = [p["Key"] for op, p in w.sent if op == "CopyObject" and p["Key"].startswith(sync_granule.TEMP_PREFIX)]
    assert len(into_temp) == 40 - len(left) and not set(into_temp) & set(left)
    item = w.ddb.scan(TableName=TABLE)["Items"]
    assert [json.loads(i["state"]["S"]).get("committed_execution") for i in item] == ["exec-1"]


def test_a_10000_file_cnm_with_one_bad_file_stages_nothing_and_stops_early(w):
    n, bad = 10_000, 100
    w.seed(A, {f"G1/f{i:05d}.nc": b"x" for i in range(n)})
    files = [
        {
            "type": "data",
            "uri": f"s3://{A}/G1/f{i:05d}.nc",
            "name": f"f{i:05d}.nc",
            "size": 1,
            "checksumType": "md5",
            "checksum": hashlib.md5(b"x").hexdigest(),
        }
        for i in range(n)
    ]
    files[bad]["checksum"] = hashlib.md5(b"y").hexdigest()
    w.calls.clear()
    with pytest.raises(ChecksumMismatchError):
        sync_granule.sync_message(*msg(files), concurrency=32)
    assert w.calls["s3:CopyObject"] < n  # stopped: no file after the failure started
    assert w.keys() == []


def test_a_multipart_copy_copies_its_parts_at_once_and_reads_a_sha256_file_back_once(w):
    """Above the threshold (5 GiB on AWS; 5 MiB here) UploadPartCopy parts of plan_copy; SHA-256 of a multipart
    copy would be composite, so the file is read back once instead."""
    data = bytes(range(256)) * (12 * 1024 * 4)  # 12 MiB
    uri = w.put(A, "G1/big.nc", data)
    big = {
        "type": "data",
        "uri": uri,
        "name": "big.nc",
        "size": len(data),
        "checksumType": "SHA256",
        "checksum": hashlib.sha256(data).hexdigest(),
    }
    read = []
    aws_mod.session().events.register(
        "after-call.s3.GetObject", lambda parsed, **_: read.append(parsed["ContentLength"])
    )
    aws_mod.reset()
    w.calls.clear()
    [out] = staged_answer(
        sync_granule.sync_message(*msg([big]), multipart_threshold=5 * 1024**2, part_size=5 * 1024**2)
    )
    assert w.read(STAGE, out["key"]) == data
    assert w.calls["s3:UploadPartCopy"] == 3 * 2  # into the temporary area, then into place: 5 + 5 + 2 MiB each
    assert w.calls["s3:CompleteMultipartUpload"] == 2 and sum(read) == len(data)


# --- the targets' check by one listing, the move by one conditional copy (If-None-Match) --------------------


def before_copy(w: World, action) -> None:
    """Run ``action(params)`` (Bucket, Key, CopySource, ...) before every CopyObject SyncGranule makes."""
    aws_mod.session().events.register("before-parameter-build.s3.CopyObject", lambda params, **_: action(params))
    aws_mod.reset()


def into_place(params: dict) -> bool:
    return params.get("IfNoneMatch") == "*"


def test_another_providers_file_that_appears_after_the_check_is_left_alone_and_nothing_is_staged(w):
    files = files_of(w, 12)
    m, e = msg(files, url_path="late/{collection}")
    intruder = "late/C__1/f00007.nc"

    def appear(params):
        if into_place(params) and params["Key"] == intruder:  # after the listing said nothing was there
            w.s3.put_object(Bucket=STAGE, Key=intruder, Body=b"B's", Metadata={sync_granule.PROVIDER_METADATA: "B"})

    before_copy(w, appear)
    w.calls.clear()
    with pytest.raises(OtherOwnerFileError):
        sync_granule.sync_message(m, e, concurrency=1)
    assert w.keys() == [intruder] and w.read(STAGE, intruder) == b"B's"  # the moves before it undone
    assert w.calls["s3:HeadObject"] == 12 + 1  # the sources, then the intruder once S3 refused the copy


def test_a_move_whose_answer_was_lost_is_undone_when_a_later_move_fails(w):
    files = files_of(w, 10)
    m, e = msg(files, url_path="lost/{collection}")
    lost, failing = "lost/C__1/f00002.nc", "lost/C__1/f00005.nc"

    def action(params):
        if into_place(params) and params["Key"] == lost:  # S3 did it, the answer was lost: this is the SDK's retry
            temp = sync_granule.temporary_key(e["name"], lost)
            w.s3.copy_object(Bucket=STAGE, Key=lost, CopySource={"Bucket": STAGE, "Key": temp})
        if params["Key"] == failing and not params["Key"].startswith(sync_granule.TEMP_PREFIX):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "CopyObject")

    before_copy(w, action)
    with pytest.raises(ClientError):
        sync_granule.sync_message(m, e, concurrency=1)
    assert w.keys() == []  # the lost one deleted with the others: it is this execution's, created by this move
    aws_mod.reset(session=True)  # the retried step: new clients, without the hooks
    aws_mod.session().events.register("before-parameter-build", w.count)
    out = staged_answer(sync_granule.sync_message(m, e, concurrency=1))
    assert [w.read(STAGE, f["key"]) for f in out] == [data_of(i) for i in range(10)]


def test_a_crowded_folder_stops_the_listing_and_the_files_it_did_not_reach_are_read_one_by_one(w):
    files = files_of(w, 9)
    m, e = msg(files, url_path="crowd", handling="error")
    crowd = [f"crowd/f00000.nc.v{i:05d}" for i in range(2_100)]  # between the first target and the others
    for key in crowd:
        w.s3.put_object(Bucket=STAGE, Key=key, Body=b"")
    w.s3.put_object(Bucket=STAGE, Key="crowd/f00008.nc", Body=b"old", Metadata={sync_granule.PROVIDER_METADATA: "A"})
    w.calls.clear()
    with pytest.raises(DuplicateFileError) as caught:
        sync_granule.sync_message(m, e)
    assert "crowd/f00008.nc" in str(caught.value)
    # 9 targets: a budget of 2 pages (2,000 keys) stops inside the crowd; the 8 targets after it are read
    assert w.calls["s3:ListObjectsV2"] == 2 and w.calls["s3:HeadObject"] == 8
    assert w.calls["s3:CopyObject"] == 0 and w.read(STAGE, "crowd/f00008.nc") == b"old"


ODD_NAMES = ["#a?.nc", "a..b.nc", "b.nc", "Z.nc", "é.nc", "日本.nc", "Ω.nc", "\U0001f600.nc", "z z.nc"]


def test_odd_names_are_settled_by_the_listing_in_s3s_order_and_restaged_over_their_own_objects(w):
    files = []
    for i, name in enumerate(ODD_NAMES):
        data = data_of(i)
        files.append(
            {
                "type": "data",
                "uri": w.put(A, f"G1/{name}", data),
                "name": name,
                "size": len(data),
                "checksumType": "md5",
                "checksum": hashlib.md5(data).hexdigest(),
            }
        )
    first, e1 = msg(files, url_path="odd", execution="exec-1")
    w.calls.clear()
    out = staged_answer(sync_granule.sync_message(first, e1))
    assert w.calls["s3:ListObjectsV2"] == 2 and w.calls["s3:HeadObject"] == len(ODD_NAMES)  # the sources only
    assert sorted(f["key"] for f in out) == sorted(f"odd/{n}" for n in ODD_NAMES)
    again, e2 = msg(files, url_path="odd", execution="exec-2", submitted="2024-05-02T00:00:00Z")
    w.calls.clear()
    out = staged_answer(sync_granule.sync_message(again, e2))  # replace: every target is there, listed, then read
    # the sources; each target found by the listing, read for its owner; read again at its move (kept aside first)
    assert w.calls["s3:HeadObject"] == 3 * len(ODD_NAMES)
    assert {f.get("duplicate") for f in out} == {"replaced"}
    assert [w.read(STAGE, f"odd/{n}") for n in ODD_NAMES] == [data_of(i) for i in range(len(ODD_NAMES))]
