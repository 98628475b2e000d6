"""SyncGranule under hostile input (issue 8): provider confinement, literal keys and
safe names, and never destroying a good staged file. Every S3 call SyncGranule
makes is counted with a botocore ``before-call`` hook on the client it uses.

On the applied examples/complete: its staging and payload buckets, under SyncGranule's deployed
environment; the providers' buckets (provider-a, provider-b) are the providers' side, made here."""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from cnm_ingest import aws
from cnm_ingest.errors import (
    ChecksumMismatchError,
    CnmValidationError,
    DuplicateFileError,
    SizeMismatchError,
    error_code_for,
)
from cnm_ingest.workflow import sync_granule, translate_message
from tests.conftest import REGION

HOST, OTHER = "provider-a", "provider-b"
STAGE = PAYLOADS = ""  # the applied staging and payload buckets, set by the s3 fixture
STACK = "st"
PREFIX = f"file-staging/{STACK}/C__1"


@pytest.fixture
def s3(wf, monkeypatch):
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "STAGE", wf.staging_bucket)
    monkeypatch.setattr(module, "PAYLOADS", wf.payload_bucket)
    for b in (HOST, OTHER):
        wf.s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
    with wf.env("sync_granule") as env:
        assert env["PAYLOAD_BUCKET"] == PAYLOADS
        yield wf.s3


@pytest.fixture
def s3_calls(s3) -> Iterator[Counter]:
    """Every S3 operation SyncGranule's clients make, its own and the provider-read role's (a Counter of names)."""
    calls: Counter = Counter()

    def count(model, **_):
        calls.update([model.name])

    aws.reset()  # every client is built again, with the hook
    aws.session().events.register("before-call.s3", count)
    yield calls
    aws.session().events.unregister("before-call.s3", count)
    aws.reset()


def put(s3, bucket: str, key: str, data: bytes) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def cnm_file(uri: str, data: bytes, name: str | None = None, digest: str | None = None) -> dict:
    return {
        "type": "data",
        "uri": uri,
        "name": uri.rsplit("/", 1)[-1] if name is None else name,
        "size": len(data),
        "checksumType": "md5",
        "checksum": digest or hashlib.md5(data).hexdigest(),
    }


def message(
    files: list[dict],
    *,
    provider: dict | None = None,
    handling: str = "replace",
    execution: str = "exec-1",
    product: str = "G1",
) -> tuple[dict, dict]:
    """A workflow message after TranslateMessage (real translate_message.translate), and its execution."""
    cnm = {
        "version": "1.6.1",
        "provider": "A",
        "collection": {"name": "C", "version": "1"},
        "submissionTime": "2024-05-01T12:00:00Z",
        "identifier": f"id-{product}",
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
        },
        "provider": {"id": "A", "config": provider if provider is not None else {"protocol": "s3", "host": HOST}},
    }
    return {"meta": meta, "payload": {"granules": translate_message.translate(cnm, meta["collection"], {})}}, {
        "name": execution
    }


def staged_keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=STAGE).get("Contents", []))


def read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


# --- provider confinement ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "other provider",
        "staging",
        "payload bucket",
        "outside prefixes",
        "prefix look-alike",
        "dot-dot climb",
        "no host",
    ],
)
def test_source_outside_the_provider_is_refused_before_any_read(s3, s3_calls, where):
    data = b"B's secret data" * 10
    provider = {"protocol": "s3", "host": HOST}
    bucket, key = {
        "other provider": (OTHER, "in/x.nc"),
        "staging": (STAGE, f"file-staging/{STACK}/OTHER__1/x.nc"),
        "payload bucket": (PAYLOADS, "workflow/x.nc"),
        "outside prefixes": (HOST, "private/x.nc"),
        "prefix look-alike": (HOST, "incoming-private/x.nc"),
        "dot-dot climb": (HOST, "incoming/../private/x.nc"),
        "no host": (HOST, "incoming/x.nc"),
    }[where]
    uri = put(s3, bucket, key, data)
    if where in ("outside prefixes", "prefix look-alike", "dot-dot climb"):
        provider["allowed_prefixes"] = ["incoming"]
    if where == "no host":
        del provider["host"]
    good = put(s3, HOST, "incoming/good.nc", b"fine")
    # the bad file is second: the good first file must not be read either
    msg, execution = message([cnm_file(good, b"fine"), cnm_file(uri, data)], provider=provider)
    s3_calls.clear()
    with pytest.raises(CnmValidationError) as err:
        sync_granule.sync_message(msg, execution)
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
    assert sum(s3_calls.values()) == 0, s3_calls
    assert staged_keys(s3) == ([key] if bucket == STAGE else [])


def test_allowed_prefixes_admit_their_folders(s3, s3_calls):
    uri = put(s3, HOST, "incoming/2024/x.nc", b"abc")
    msg, execution = message(
        [cnm_file(uri, b"abc")], provider={"host": HOST, "allowed_prefixes": ["other/", "/incoming/"]}
    )
    [g] = sync_granule.sync_message(msg, execution)["payload"]["granules"]
    assert read(s3, STAGE, g["files"][0]["key"]) == b"abc"
    assert s3_calls["CopyObject"] == 2  # into the temporary key, then into place


def test_a_malformed_allowed_prefixes_is_a_configuration_error(s3, s3_calls):
    from cnm_ingest.errors import ConfigurationError

    uri = put(s3, HOST, "incoming/x.nc", b"abc")
    msg, execution = message([cnm_file(uri, b"abc")], provider={"host": HOST, "allowed_prefixes": "incoming"})
    s3_calls.clear()
    with pytest.raises(ConfigurationError):
        sync_granule.sync_message(msg, execution)
    assert sum(s3_calls.values()) == 0


def test_a_key_that_is_not_unicode_text_is_refused_before_any_read(s3, s3_calls):
    msg, execution = message([cnm_file(f"s3://{HOST}/in/x.nc", b"abc")])
    msg["payload"]["granules"][0]["files"][0]["source"] = f"s3://{HOST}/in/bad\ud800.nc"
    s3_calls.clear()
    with pytest.raises(CnmValidationError):
        sync_granule.sync_message(msg, execution)
    assert sum(s3_calls.values()) == 0


def test_flattened_provider_config_is_read_too(s3):
    uri = put(s3, OTHER, "x.nc", b"abc")
    msg, execution = message([cnm_file(uri, b"abc")])
    msg["meta"]["provider"] = {"id": "A", "protocol": "s3", "host": HOST}  # as cnm_ingest.consumer.rulebook builds it
    with pytest.raises(CnmValidationError):
        sync_granule.sync_message(msg, execution)


# --- literal keys and safe names -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["in/a#b", "in/a?x", "in/a%41", "in/a?x#y%2F", "in//double", "in/ sp ace "])
def test_keys_are_taken_literally(s3, key):
    real, decoy = b"the real object!", b"a decoy object!!"
    uri = put(s3, HOST, key, real)
    for other in ("in/a", "in/aA", "in/", "in/a/x"):
        put(s3, HOST, other, decoy)
    assert translate_message.split_s3_uri(uri) == (HOST, key)
    msg, execution = message([cnm_file(uri, real, name="f.nc")])
    [g] = sync_granule.sync_message(msg, execution)["payload"]["granules"]
    assert (g["files"][0]["bucket"], g["files"][0]["key"]) == (STAGE, f"{PREFIX}/f.nc")
    assert read(s3, STAGE, f"{PREFIX}/f.nc") == real


def test_split_s3_uri():
    assert translate_message.split_s3_uri("s3://b/k/%41?#") == ("b", "k/%41?#")
    assert translate_message.split_s3_uri("S3://b//k") == ("b", "/k")
    for bad in ("s3://b", "s3://b/", "s3:///k", "https://b/k", "b/k"):
        with pytest.raises(CnmValidationError):
            translate_message.split_s3_uri(bad)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../../x.nc",
        "/abs/x.nc",
        "a/b.nc",
        "a\\b.nc",
        "..\\x.nc",
        "a\x00b.nc",
        "bad\ud800.nc",
        "x" * 1100,
    ],
)
def test_unsafe_names_are_refused_before_any_read(s3, s3_calls, name):
    uri = put(s3, HOST, "in/x.nc", b"abc")
    msg, execution = message([cnm_file(uri, b"abc", name=name)])
    s3_calls.clear()
    with pytest.raises(CnmValidationError) as err:
        sync_granule.sync_message(msg, execution)
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
    assert sum(s3_calls.values()) == 0, s3_calls
    assert staged_keys(s3) == []


@pytest.mark.parametrize("name", ["a#b?c%41.nc", "ünï cödé 日本.nc", "...nc", ".hidden", "a..b"])
def test_odd_but_plain_names_are_staged_exactly_under_url_path(s3, name):
    uri = put(s3, HOST, "in/x.nc", b"abc")
    msg, execution = message([cnm_file(uri, b"abc", name=name)])
    [g] = sync_granule.sync_message(msg, execution)["payload"]["granules"]
    assert g["files"][0]["key"] == f"{PREFIX}/{name}"
    assert staged_keys(s3) == [f"{PREFIX}/{name}"]


def test_granule_id_in_url_path_must_be_a_plain_name(s3, s3_calls):
    uri = put(s3, HOST, "in/x.nc", b"abc")
    # the granule id is product.name after its first '/' (PO.DAAC, issue 13): here "../OTHER__1"
    msg, execution = message([cnm_file(uri, b"abc")], product="G/../OTHER__1")
    assert msg["payload"]["granules"][0]["granuleId"] == "../OTHER__1"
    msg["meta"]["collection"]["url_path"] = "{collection}/{granuleId}"
    s3_calls.clear()
    with pytest.raises(CnmValidationError):
        sync_granule.sync_message(msg, execution)
    assert sum(s3_calls.values()) == 0


# --- never destroy a good file -------------------------------------------------------------------

GOOD_A, GOOD_B = b"granule one, file a: good bytes", b"granule one, file b: good bytes"


@pytest.fixture
def earlier(s3):
    """Granule G1 staged by an earlier execution (two files)."""
    files = [cnm_file(put(s3, HOST, "g1/a.nc", GOOD_A), GOOD_A), cnm_file(put(s3, HOST, "g1/b.nc", GOOD_B), GOOD_B)]
    msg, execution = message(files, handling="error", execution="earlier")
    sync_granule.sync_message(msg, execution)
    assert staged_keys(s3) == [f"{PREFIX}/a.nc", f"{PREFIX}/b.nc"]
    return s3


def later(s3, *, good_b: bool, handling: str, bad: str = "checksum") -> tuple[dict, dict]:
    """Granule G2 with files of the same names: a.nc fine, b.nc fine or failing verification."""
    a2, b2 = b"granule two, file a: new bytes!", b"granule two, file b: new bytes!"
    b_file = cnm_file(put(s3, HOST, "g2/b.nc", b2), b2)
    if not good_b and bad == "checksum":
        b_file["checksum"] = "0" * 32
    if not good_b and bad == "size":
        b_file["size"] += 1
    files = [cnm_file(put(s3, HOST, "g2/a.nc", a2), a2), b_file]
    return message(files, handling=handling, execution="later", product="G2")


def assert_earlier_intact(s3, extra: tuple[str, ...] = ()) -> None:
    assert read(s3, STAGE, f"{PREFIX}/a.nc") == GOOD_A
    assert read(s3, STAGE, f"{PREFIX}/b.nc") == GOOD_B
    assert staged_keys(s3) == sorted([f"{PREFIX}/a.nc", f"{PREFIX}/b.nc", *extra])  # no temporary copy left


@pytest.mark.parametrize("handling", sync_granule.DUPLICATE_HANDLING)
@pytest.mark.parametrize("bad", ["checksum", "size"])
def test_a_bad_later_file_never_touches_the_earlier_granule(earlier, handling, bad):
    msg, execution = later(earlier, good_b=False, handling=handling, bad=bad)
    expected = {
        "error": DuplicateFileError,
        "skip": None,
        "replace": ChecksumMismatchError,
        "version": ChecksumMismatchError,
    }[handling]
    if bad == "size" and expected is ChecksumMismatchError:
        expected = SizeMismatchError
    if expected is None:
        [g] = sync_granule.sync_message(msg, execution)["payload"]["granules"]
        assert [f["duplicate"] for f in g["files"]] == ["skipped", "skipped"]
    else:
        with pytest.raises(expected):
            sync_granule.sync_message(msg, execution)
    assert_earlier_intact(earlier)


@pytest.mark.parametrize("handling", sync_granule.DUPLICATE_HANDLING)
def test_a_good_later_granule_follows_the_duplicate_mode(earlier, handling):
    msg, execution = later(earlier, good_b=True, handling=handling)
    if handling == "error":
        with pytest.raises(DuplicateFileError):
            sync_granule.sync_message(msg, execution)
        assert_earlier_intact(earlier)
        return
    [g] = sync_granule.sync_message(msg, execution)["payload"]["granules"]
    if handling == "skip":
        assert_earlier_intact(earlier)
        return
    assert read(earlier, STAGE, f"{PREFIX}/a.nc") == b"granule two, file a: new bytes!"
    if handling == "version":  # the earlier files, byte-identical, under their version keys
        versions = {f["name"]: f["versionedKey"] for f in g["files"]}
        assert read(earlier, STAGE, versions["a.nc"]) == GOOD_A
        assert read(earlier, STAGE, versions["b.nc"]) == GOOD_B
        assert len(staged_keys(earlier)) == 4
    else:
        assert len(staged_keys(earlier)) == 2


def test_a_dependency_failing_half_way_leaves_the_earlier_granule(earlier, monkeypatch):
    """The second file's copy fails (AccessDenied): the first file's verified copy is discarded, nothing moved."""
    from botocore.exceptions import ClientError

    msg, execution = later(earlier, good_b=True, handling="replace")
    seen: list[str] = []

    def copy_object(params, **_):  # on every client, the provider-read role's included
        seen.append(params["Key"])
        if len(seen) == 2:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "CopyObject")

    aws.reset()
    aws.session().events.register("before-parameter-build.s3.CopyObject", copy_object)
    try:
        with pytest.raises(ClientError):
            sync_granule.sync_message(msg, execution)
    finally:
        aws.session().events.unregister("before-parameter-build.s3.CopyObject", copy_object)
        aws.reset()
    assert len(seen) == 2 and all(k.startswith(sync_granule.TEMP_PREFIX + "/") for k in seen)  # nothing moved
    assert_earlier_intact(earlier)


def test_retry_of_the_same_execution_overwrites_its_own_copy(s3):
    uri = put(s3, HOST, "in/a.nc", b"abc")
    msg, execution = message([cnm_file(uri, b"abc")], handling="error", execution="exec-7")
    sync_granule.sync_message(msg, execution)
    sync_granule.sync_message(msg, execution)  # a Step Functions retry: not a duplicate
    assert staged_keys(s3) == [f"{PREFIX}/a.nc"]
    with pytest.raises(DuplicateFileError):
        sync_granule.sync_message(*message([cnm_file(uri, b"abc")], handling="error", execution="exec-8"))
