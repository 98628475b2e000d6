"""The plain functions behind SyncGranule's commit (issue 18): target checks, owners, commit order,
offloaded references, and the session policy a provider read runs under. No AWS: every case here is
decided before any call."""

from __future__ import annotations

import json

import pytest

from cnm_ingest.errors import CnmValidationError, ConfigurationError, OtherOwnerFileError, WorkflowPayloadError
from cnm_ingest.transfer import commit_order, provider_access
from cnm_ingest.workflow import payload, sync_granule


def target(key: str, bucket: str = "stage") -> dict:
    return {"staged_bucket": bucket, "staged_key": key, "name": key.rsplit("/", 1)[-1]}


# --- targets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs/x.nc",
        "a//x.nc",
        "a/../x.nc",
        "./x.nc",
        "a/x\n.nc",
        ".cnm-ingest-tmp/0123",
        ".cnm-ingest-tmp",
        "p/" + "x" * 1023,
        "p/" + "é" * 512,
    ],
)
def test_bad_targets(key, monkeypatch):
    monkeypatch.setenv("PAYLOAD_BUCKET", "payloads")
    with pytest.raises(CnmValidationError):
        sync_granule.check_targets([target(key)], "replace")


def test_the_version_suffix_counts_against_the_key_limit(monkeypatch):
    monkeypatch.setenv("PAYLOAD_BUCKET", "payloads")
    key = "p/" + "x" * (1024 - 2 - sync_granule.VERSION_SUFFIX_BYTES)
    sync_granule.check_targets([target(key)], "version")
    sync_granule.check_targets([target(key + "y" * sync_granule.VERSION_SUFFIX_BYTES)], "replace")  # 1024: fits S3
    with pytest.raises(CnmValidationError, match="version suffix"):
        sync_granule.check_targets([target(key + "y")], "version")
    assert len(f"{key}.v{sync_granule._timestamp()}".encode()) == 1024  # the suffix is what _timestamp writes


def test_payload_bucket_and_shared_targets_are_refused(monkeypatch):
    monkeypatch.setenv("PAYLOAD_BUCKET", "payloads")
    with pytest.raises(CnmValidationError, match="payload bucket"):
        sync_granule.check_targets([target("file-staging/x.nc", "payloads")], "error")
    with pytest.raises(CnmValidationError, match="same target"):
        sync_granule.check_targets([target("p/x.nc"), target("p/x.nc")], "error")
    sync_granule.check_targets([target("p/x.nc"), target("p/x.nc", "other")], "error")
    sync_granule.check_targets([target("p/.cnm-ingest-tmp/x.nc"), target("p/.hidden")], "error")  # only at the root


# --- owners -------------------------------------------------------------------------------------------


def found(provider: str | None, granule: str = "G") -> dict:
    meta = {} if provider is None else sync_granule.Owner(provider, granule).metadata()
    return {"Metadata": meta, "ContentLength": 1}


@pytest.mark.parametrize(
    ("handling", "existing", "refused"),
    [
        ("same_provider", found("A", "G"), False),
        ("same_provider", found("A", "H"), False),
        ("same_provider", found("B", "G"), True),
        ("same_provider", found(None), False),
        ("error", found("A", "G"), False),
        ("error", found("A", "H"), True),
        ("error", found(None), True),
        ("duplicate_handling", found("B", "H"), False),
    ],
)
def test_other_owner_handling(handling, existing, refused):
    me = sync_granule.Owner("A", "G")
    if refused:
        with pytest.raises(OtherOwnerFileError):
            sync_granule.check_owner(existing, me, handling, "stage", "k")
    else:
        sync_granule.check_owner(existing, me, handling, "stage", "k")


def test_owner_metadata_is_ascii_and_round_trips_odd_ids():
    for pid, gid in [("A", "G/1 é#?%"), ("prov", "x" * 5000), ("é" * 200, "\u65e5\u672c")]:
        meta = sync_granule.Owner(pid, gid).metadata()
        assert all(v.isascii() for v in meta.values())
        assert len(meta[sync_granule.PROVIDER_METADATA]) <= 128 and len(meta[sync_granule.GRANULE_METADATA]) <= 200
        sync_granule.check_owner(
            {"Metadata": meta}, sync_granule.Owner(pid, gid), "error", "b", "k"
        )  # itself, long ids too
        if len(gid) < 50 and len(pid) < 20:
            assert sync_granule.Owner.of({"Metadata": meta}) == sync_granule.Owner(pid, gid)
    assert sync_granule.Owner("A", "x" * 5000).metadata() != sync_granule.Owner("A", "x" * 4999 + "y").metadata()


def test_an_unknown_other_owner_handling_is_refused():
    with pytest.raises(ConfigurationError):
        sync_granule.other_owner_handling({"other_owner_handling": "sometimes"})
    assert sync_granule.other_owner_handling({}) == "same_provider"


# --- commit order -------------------------------------------------------------------------------------

K1, K2, K3 = (commit_order.order_key({"submissionTime": f"2024-05-01T12:00:0{n}Z"}, f"e{n}") for n in (1, 2, 3))


@pytest.mark.parametrize(
    ("state", "me", "verdict"),
    [
        ({}, K1, commit_order.GO),
        ({"committed": K2, "committed_execution": "e2"}, K1, commit_order.SUPERSEDED),
        ({"committed": K2, "committed_execution": "e2"}, K2, commit_order.GO),  # its own retry
        ({"committed": K1, "committed_execution": "e1"}, K2, commit_order.GO),
        ({"pending": {K3: 200.0}}, K2, commit_order.WAIT),
        ({"pending": {K3: 50.0}}, K2, commit_order.GO),  # expired
        ({"pending": {K1: 200.0}}, K2, commit_order.GO),  # an older one never holds a newer one back
        ({"lease": {"owner": K1, "until": 200.0}}, K2, commit_order.WAIT),
        ({"lease": {"owner": K1, "until": 50.0}}, K2, commit_order.GO),
        ({"lease": {"owner": K2, "until": 200.0}}, K2, commit_order.GO),
    ],
)
def test_decide(state, me, verdict):
    assert commit_order.decide(state, me, me.rsplit("|", 1)[1], now=100.0) == verdict


def test_order_keys():
    k = commit_order.order_key
    assert K1 < K2 < K3
    assert k({"submissionTime": "2024-05-01T13:00:00+01:00"}, "z") < k({"submissionTime": "2024-05-01T12:00:01Z"}, "a")
    assert k({}, "z") < k({"submissionTime": "1970-01-01T00:00:00Z"}, "a")
    assert k({"submissionTime": "not a time"}, "a") == k({}, "a") == k([], "a")


def test_long_granule_ids_get_a_digest_key():
    key = commit_order.item_key("C___1", "g" * 2000)
    assert key["sk"]["S"].startswith("GRANULE#sha256:") and len(key["sk"]["S"]) < 100
    assert commit_order.item_key("C___1", "G1") == {"pk": {"S": "STAGING#C___1"}, "sk": {"S": "GRANULE#G1"}}


# --- offloaded references -----------------------------------------------------------------------------

DIGEST = "ab" * 32


@pytest.mark.parametrize(
    "ref",
    [
        {"bucket": "stage", "key": f"workflow/{DIGEST}", "size": 2, "sha256": DIGEST},
        {"bucket": "payloads", "key": "failed-records/x", "size": 2, "sha256": DIGEST},
        {"bucket": "payloads", "key": f"workflow/../{DIGEST}", "size": 2, "sha256": DIGEST},
        {"bucket": "payloads", "key": f"workflow/{'cd' * 32}", "size": 2, "sha256": DIGEST},
        {"bucket": "payloads", "key": f"workflow/{DIGEST.upper()}", "size": 2, "sha256": DIGEST.upper()},
        {"bucket": "payloads", "key": f"workflow/{DIGEST}", "size": -1, "sha256": DIGEST},
        {"bucket": "payloads", "key": f"workflow/{DIGEST}", "size": True, "sha256": DIGEST},
        {"bucket": "payloads", "key": f"workflow/{DIGEST}", "sha256": DIGEST},
        "s3://payloads/workflow/x",
    ],
)
def test_offloaded_references_outside_the_payload_area(ref, monkeypatch):
    monkeypatch.setenv("PAYLOAD_BUCKET", "payloads")
    with pytest.raises(WorkflowPayloadError):
        payload.check_ref(ref)


def test_a_reference_to_the_payload_area(monkeypatch):
    monkeypatch.setenv("PAYLOAD_BUCKET", "payloads")
    ref = {"bucket": "payloads", "key": f"workflow/{DIGEST}", "size": 2, "sha256": DIGEST}
    assert payload.check_ref(ref) is ref
    monkeypatch.delenv("PAYLOAD_BUCKET")
    with pytest.raises(ConfigurationError):
        payload.check_ref(ref)


# --- the session policy a provider read runs under ------------------------------------------------------


def test_session_policy_for_an_s3_provider_with_prefixes():
    provider = {"id": "A", "protocol": "s3", "host": "prov-a", "allowed_prefixes": ["/in/", "out", ""]}
    policy = provider_access.session_policy(provider, temporary_buckets=["stage", "protected"])
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadProviderObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": ["arn:aws:s3:::prov-a/in/*", "arn:aws:s3:::prov-a/out/*"],
            },
            {
                "Sid": "ListProviderPrefixes",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::prov-a",
                "Condition": {"StringLike": {"s3:prefix": ["in/*", "out/*"]}},
            },
            {
                "Sid": "WriteStagingTemporaryArea",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": ["arn:aws:s3:::protected/.cnm-ingest-tmp/*", "arn:aws:s3:::stage/.cnm-ingest-tmp/*"],
            },
            {
                "Sid": "KeysThroughS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            },
        ],
    }
    assert provider_access.TEMP_AREA == sync_granule.TEMP_PREFIX + "/"


def test_session_policy_wildcards_in_a_prefix_stay_literal():
    policy = provider_access.session_policy({"host": "b", "allowed_prefixes": ["a*", "q?", "${aws:username}"]})
    [read, listing, _] = policy["Statement"]
    assert read["Resource"] == [
        "arn:aws:s3:::b/${$}{aws:username}/*",
        "arn:aws:s3:::b/a${*}/*",
        "arn:aws:s3:::b/q${?}/*",
    ]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["${$}{aws:username}/*", "a${*}/*", "q${?}/*"]


def test_session_policy_without_prefixes_covers_the_bucket_and_partition_follows_the_role():
    policy = provider_access.session_policy({"host": "b"}, partition="aws-us-gov")
    [read, listing, _] = policy["Statement"]
    assert read["Resource"] == ["arn:aws-us-gov:s3:::b/*"] and "Condition" not in listing


def test_session_policy_of_a_remote_provider_is_its_secret_only():
    arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:prov-a-AbCdEf"
    for protocol in ("https", "http", "sftp"):
        policy = provider_access.session_policy({"protocol": protocol, "host": "h", "credentials_secret_arn": arn})
        assert policy["Statement"] == [
            {"Sid": "ReadProviderSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}
        ]
    nothing = provider_access.session_policy({"protocol": "https", "host": "h"})
    assert nothing["Statement"] == [{"Sid": "Nothing", "Effect": "Deny", "Action": "*", "Resource": "*"}]


def test_session_policy_size_limit_and_session_name():
    many = {"host": "b", "allowed_prefixes": [f"folder-{n:04d}" for n in range(60)]}
    with pytest.raises(ConfigurationError, match="session policy"):
        provider_access.policy_text(provider_access.session_policy(many))
    text = provider_access.policy_text(provider_access.session_policy({"host": "b"}))
    assert json.loads(text) == provider_access.session_policy({"host": "b"}) and " " not in text
    assert provider_access.session_name({"id": "A b/é" + "x" * 80}) == ("cnm-ingest-A-b--" + "x" * 80)[:64]
    with pytest.raises(ConfigurationError):
        provider_access.session_policy({"host": "b", "allowed_prefixes": "in"})
