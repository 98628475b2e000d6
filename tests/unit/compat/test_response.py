"""build_response: a FAILURE can always be built and is always schema-valid, keeping what was sent where allowed."""

from __future__ import annotations

import copy
import itertools
import json

import pytest

from cnm_ingest.cnm import response_message
from cnm_ingest.cnm.response_message import (
    build_response,
    clean_ingestion_metadata,
    ingestion_metadata_from,
    staged_uri,
)
from tests.unit.compat.conftest import valid_response_everywhere

RECEIVED = "2024-01-01T00:00:00.000Z"


def failure(cnm, **kw):
    kw.setdefault("received_time", RECEIVED)
    return build_response(
        cnm,
        status="FAILURE",
        error_code=kw.pop("error_code", "VALIDATION_ERROR"),
        error_message=kw.pop("error_message", "bad"),
        **kw,
    )


@pytest.mark.parametrize(
    "name",
    [
        "podaac_filegroups_sha512_naive.json",
        "podaac_sftp_microseconds_naive.json",
        "podaac_http_sha512.json",
        "podaac_legacy_v1.json",
        "cumulus_kinesis_record.json",
    ],
)
def test_failure_for_every_fixture_shape(fixture, name, reference_schema):
    sent = fixture(name)
    before = copy.deepcopy(sent)
    r = valid_response_everywhere(failure(sent), reference_schema)
    assert sent == before
    assert r["identifier"] == sent["identifier"]
    assert r["collection"] == sent["collection"]
    assert r.get("provider") == sent.get("provider")
    assert "product" not in r  # as PO.DAAC: no product in a FAILURE
    assert set(r) <= {
        "version",
        "identifier",
        "collection",
        "provider",
        "trace",
        "submissionTime",
        "receivedTime",
        "processCompleteTime",
        "response",
    }  # extra fields (duplicationid, deliveryTime, ...) not echoed


def test_valid_version_is_kept_not_overwritten(samples, reference_schema):
    cnm = dict(samples["cumulus_sns_v1.1_dataVersions.json"], submissionTime="2017-09-30T03:42:29.791198")
    r = valid_response_everywhere(failure(cnm), reference_schema)
    assert r["version"] == "1.1"
    assert r["submissionTime"] == "2017-09-30T03:42:29.791198Z"  # a T without offset: read as UTC


def test_fields_kept_as_sent_when_the_schema_allows(samples, reference_schema):
    cnm = dict(samples["cumulus_sns_v1.6_notification.json"], trace="t-1", submissionTime="2020-07-28T04:48:22+02:00")
    r = valid_response_everywhere(failure(cnm), reference_schema)
    assert (r["version"], r["submissionTime"], r["trace"], r["collection"]) == (
        "1.6.0",
        "2020-07-28T04:48:22+02:00",
        "t-1",
        cnm["collection"],
    )


@pytest.mark.parametrize(
    "version, expected", [("v1.0", "1.0"), ("1.6", "1.6.0"), ("9.9", "1.6.1"), (None, "1.6.1"), ({"a": 1}, "1.6.1")]
)
def test_version_repaired_only_when_unreadable(version, expected, reference_schema):
    r = valid_response_everywhere(failure({"identifier": "i", "collection": "c", "version": version}), reference_schema)
    assert r["version"] == expected


JUNK = [
    None,
    "",
    "x",
    "2020-01-01",
    "2020-01-01T00:00:00",
    0,
    -1.5,
    True,
    [],
    {},
    {"name": 1},
    ["a"],
    "\ud800",
    "é" * 3,
    "x" * 70_000,
    {"name": "n"},
    {"name": "n", "version": 2},
]


@pytest.mark.parametrize(
    "field", ["version", "identifier", "collection", "submissionTime", "provider", "trace", "product"]
)
def test_any_value_of_any_field_still_gives_a_valid_failure(field, reference_schema):
    for value in JUNK:
        cnm = {"identifier": "i", "collection": "c", "version": "1.1", field: value}
        r = valid_response_everywhere(failure(cnm), reference_schema)
        json.dumps(r).encode("utf-8")  # sendable (no lone surrogate survives ensure_ascii=False either)
        json.dumps(r, ensure_ascii=False).encode("utf-8")


def test_combinations_of_broken_fields(reference_schema):
    values = [None, 5, "2020-01-01T00:00:00", {"name": "n", "version": "1"}]
    for ident, coll, ver, sub in itertools.product(values, repeat=4):
        valid_response_everywhere(
            failure({"identifier": ident, "collection": coll, "version": ver, "submissionTime": sub}), reference_schema
        )


@pytest.mark.parametrize("cnm", [None, "not a dict", 7, [], {}])
def test_not_even_an_object(cnm, reference_schema):
    r = valid_response_everywhere(failure(cnm), reference_schema)
    assert (r["identifier"], r["collection"], r["version"], r["submissionTime"]) == (
        "unknown",
        "unknown",
        "1.6.1",
        RECEIVED,
    )


@pytest.mark.parametrize(
    "code, message, expected_code",
    [
        ("TRANSFER_ERROR", "m", "TRANSFER_ERROR"),
        ("NOPE", "m", "PROCESSING_ERROR"),
        (None, None, "PROCESSING_ERROR"),
        ("VALIDATION_ERROR", "x" * 100_000, "VALIDATION_ERROR"),
        ("VALIDATION_ERROR", "bad \ud800 byte", "VALIDATION_ERROR"),
    ],
)
def test_error_code_and_message(code, message, expected_code, reference_schema):
    r = valid_response_everywhere(
        failure({"identifier": "i", "collection": "c"}, error_code=code, error_message=message), reference_schema
    )
    assert r["response"]["errorCode"] == expected_code
    assert 0 < len(r["response"]["errorMessage"]) <= response_message.MAX_ERROR_MESSAGE


@pytest.mark.parametrize("received", [None, "garbage", "2024-01-01T00:00:00", 12])
def test_received_time_repaired(received, reference_schema):
    r = valid_response_everywhere(
        failure({"identifier": "i", "collection": "c"}, received_time=received), reference_schema
    )
    if received == "2024-01-01T00:00:00":
        assert r["receivedTime"] == "2024-01-01T00:00:00Z"


def test_success_with_ingestion_metadata(samples, reference_schema):
    meta = {"catalogId": "G123-PODAAC", "catalogUrl": "https://cmr.example/concepts/G123-PODAAC", "extra": {"a": 1}}
    r = build_response(samples["cumulus_sns_v1.0_notification.json"], status="SUCCESS", ingestion_metadata=meta)
    valid_response_everywhere(r, reference_schema)
    assert r["response"]["ingestionMetadata"] == meta


def test_bad_ingestion_metadata_keys_are_dropped_not_fatal():
    assert clean_ingestion_metadata({"catalogId": 5, "catalogUrl": "u"}) == {"catalogUrl": "u"}
    assert clean_ingestion_metadata({"catalogId": None}) is None
    assert clean_ingestion_metadata("G1") is None


def test_ingestion_metadata_from_extra_state_output():
    assert ingestion_metadata_from({"meta": {"ingestionMetadata": {"catalogId": "G1"}}}) == {"catalogId": "G1"}
    cumulus = {
        "meta": {},
        "payload": {"granules": [{"granuleId": "g", "cmrConceptId": "G2", "cmrLink": "https://c/G2"}]},
    }
    assert ingestion_metadata_from(cumulus) == {"catalogId": "G2", "catalogUrl": "https://c/G2"}
    for junk in (
        {},
        {"meta": None, "payload": None},
        {"payload": {"granules": [None]}},
        {"payload": {"granules": "x"}},
        {"payload": {"granules": [{"cmrConceptId": "G3"}]}},
        {"meta": {"ingestionMetadata": [1]}},
    ):
        assert ingestion_metadata_from(junk) is None


@pytest.mark.parametrize(
    "key, expected",
    [
        ("a/b.nc", "https://dist.example/s3/bkt/a/b.nc"),
        ("a/b#c?.nc", "https://dist.example/s3/bkt/a/b%23c%3F.nc"),
        ("a/../../x", "https://dist.example/s3/bkt/a/%2E%2E/%2E%2E/x"),
        ("./x y%20é", "https://dist.example/s3/bkt/%2E/x%20y%2520%C3%A9"),
    ],
)
def test_distribution_endpoint_uris_stay_under_the_endpoint(key, expected):
    from urllib.parse import urljoin, urlparse

    uri = staged_uri("bkt", key, "https://dist.example/s3/")
    assert uri == expected
    resolved = urlparse(urljoin(uri, "."))
    assert resolved.path.startswith("/s3/bkt/") and not resolved.query and not resolved.fragment
    assert staged_uri("bkt", key) == f"s3://bkt/{key}"
