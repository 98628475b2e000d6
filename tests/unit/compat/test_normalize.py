"""normalize_notification: lenient where the meaning is certain, strict elsewhere; the input is never modified."""

from __future__ import annotations

import copy
import json

import pytest

from cnm_ingest.cnm import normalize
from cnm_ingest.cnm.normalize import normalize_notification
from cnm_ingest.cnm.validate import validate_notification
from cnm_ingest.errors import CnmValidationError


@pytest.mark.parametrize(
    "name, expected_notes",
    [
        ("podaac_filegroups_sha512_naive.json", 3),  # submissionTime + two SHA-512
        ("podaac_sftp_microseconds_naive.json", 1),  # submissionTime
        ("podaac_http_sha512.json", 0),  # already valid
    ],
)
def test_podaac_shapes_become_valid(fixture, name, expected_notes):
    sent = fixture(name)
    before = copy.deepcopy(sent)
    out, notes = normalize_notification(sent)
    assert sent == before  # the input is untouched
    assert len(notes) == expected_notes, notes
    assert validate_notification(out) is out
    if expected_notes == 0:
        assert out is sent
        return
    with pytest.raises(CnmValidationError):
        validate_notification(sent)  # the schema alone rejects what providers send
    assert out["submissionTime"] == sent["submissionTime"] + "Z"
    assert any("no UTC offset: read as UTC" in n for n in notes)


def test_sha512_spellings_in_filegroups(fixture):
    out, notes = normalize_notification(fixture("podaac_filegroups_sha512_naive.json"))
    assert {f["checksumType"] for g in out["product"]["filegroups"] for f in g["files"]} == {"SHA512"}
    assert "$.product.filegroups[0].files[1].checksumType: 'SHA-512' -> 'SHA512' (algorithm spelling)" in notes


def test_cumulus_record_hyphenated_checksum_key_is_read_but_missing_fields_stay_missing(fixture):
    sent = fixture("cumulus_kinesis_record.json")
    out, notes = normalize_notification(sent)
    assert out["product"]["files"][0]["checksumType"] == "md5"
    assert notes == ["$.product.files[0]: 'checksum-type' read as 'checksumType'"]
    with pytest.raises(CnmValidationError):  # no version, no submissionTime: not guessed
        validate_notification(out)


def test_legacy_version_spelling_but_deliveryTime_is_not_guessed(fixture):
    out, _notes = normalize_notification(fixture("podaac_legacy_v1.json"))
    assert out["version"] == "1.0"
    assert "submissionTime" not in out and out["deliveryTime"] == "2019-05-06T07:08:09.101112"
    with pytest.raises(CnmValidationError) as err:
        validate_notification(out)
    assert "submissionTime" in str(err.value)


@pytest.mark.parametrize(
    "sent, expected",
    [
        ("2020-08-15T00:56:55", "2020-08-15T00:56:55Z"),
        ("2020-08-15 00:56:55", "2020-08-15T00:56:55Z"),
        ("2020-08-15t00:56:55.5", "2020-08-15T00:56:55.5Z"),
        ("2020-08-15 00:56:55+02:00", "2020-08-15T00:56:55+02:00"),
        (" 2020-08-15T00:56:55Z ", "2020-08-15T00:56:55Z"),
        ("2016-12-31T23:59:60", "2016-12-31T23:59:60Z"),  # leap second
        ("2020-08-15T00:56:55Z", "2020-08-15T00:56:55Z"),
    ],
)
def test_date_times_read_as_utc(sent, expected):
    assert normalize.date_time(sent) == expected


@pytest.mark.parametrize(
    "sent",
    [
        "2020-08-15",
        "2020-02-30T00:00:00",
        "2020-13-01T00:00:00",
        "2020-01-01T24:00:00",
        "2020-01-01T00:61:00",
        "2020-01-01T00:00:61",
        "20200101T000000",
        "2020-01-01T00:00",
        "yesterday",
        "",
        "２０２０-０１-０１T００:００:００",  # full-width digits
        "٢٠٢٠-٠١-٠١T٠٠:٠٠:٠٠",  # Arabic-Indic digits
        "2020-01-01T00:00:00Z#frag",
        "2020-01-01T00:00:00?x=1",
        None,
        1597452000,
        ["2020-01-01T00:00:00"],
    ],
)
def test_ambiguous_or_unreal_date_times_are_left_for_the_schema(sent):
    assert normalize.date_time(sent) is None
    doc = {"submissionTime": sent}
    out, notes = normalize_notification(doc)
    assert out is doc and notes == []


@pytest.mark.parametrize(
    "sent, expected",
    [
        ("v1.0", "1.0"),
        ("V1.1", "1.1"),
        ("1.6", "1.6.0"),
        ("1.5.0", "1.5"),
        ("1.4.1", "1.4.1"),
        (" 1.2 ", "1.2"),
        (1.1, "1.1"),
        (1, "1.0"),
        ("1.6.1", "1.6.1"),
        ("1.7", None),
        ("2", None),
        ("v", None),
        ("1.x", None),
        (True, None),
        (None, None),
        ("1..1", None),
        ("1" * 100, None),
        ("1.0.0.0.0.1", None),
    ],
)
def test_version_spellings(sent, expected):
    assert normalize.version(sent) == expected


@pytest.mark.parametrize(
    "sent, expected",
    [
        ("SHA-512", "SHA512"),
        ("sha512", "SHA512"),
        ("Sha_256", "SHA256"),
        ("SHA-1", "SHA1"),
        ("MD5", "md5"),
        ("sha 2", "SHA2"),
        ("md5", "md5"),
        ("SHA-3", None),
        ("crc32", None),
        ("", None),
        ("SHA512\u200b", None),
        (512, None),
    ],
)
def test_checksum_type_spellings(sent, expected):
    assert normalize.checksum_type(sent) == expected


def test_other_unambiguous_rewrites_and_their_notes():
    sent = {
        "product": {
            "name": "p",
            "dataProcessingType": "FORWARD",
            "files": [{"type": "Data", "size": "96772640", "uri": " s3://b/k", "name": "k"}],
        }
    }
    out, notes = normalize_notification(sent)
    f = out["product"]["files"][0]
    assert (f["type"], f["size"], f["uri"], out["product"]["dataProcessingType"]) == (
        "data",
        96772640,
        "s3://b/k",
        "forward",
    )
    assert len(notes) == 4


@pytest.mark.parametrize(
    "sent, expected",
    [
        (" s3://b/k", "s3://b/k"),
        ("\ts3://b/k", "s3://b/k"),
        ("s3://b/k ", "s3://b/k "),
        (" s3://b/in/ sp ace ", "s3://b/in/ sp ace "),  # an S3 key may end in a space
        (" https://h/x ", "https://h/x"),
        ("https://h/x\n", "https://h/x"),
    ],
)
def test_uri_white_space_is_trimmed_only_where_it_cannot_be_part_of_the_key(sent, expected):
    out, _ = normalize_notification({"product": {"files": [{"uri": sent}]}})
    assert out["product"]["files"][0]["uri"] == expected


@pytest.mark.parametrize("size", ["-1", "1.5", "1e3", "١٢", "²", "0x10", "9" * 21, " 12"])
def test_sizes_that_are_not_plain_digits_are_not_guessed(size):
    doc = {"product": {"files": [{"size": size}]}}
    out, notes = normalize_notification(doc)
    assert out is doc and notes == []


def test_the_schema_field_wins_over_the_hyphenated_key():
    doc = {"product": {"files": [{"checksumType": "SHA256", "checksum-type": "md5"}]}}
    out, notes = normalize_notification(doc)
    assert out is doc and notes == []


@pytest.mark.parametrize(
    "doc",
    [
        None,
        "text",
        42,
        [],
        [{"version": "v1.0"}],
        {"product": "x"},
        {"product": {"files": "x", "filegroups": [1, None, {"files": None}]}},
        {"product": {"files": [None, 1, "s", []]}},
    ],
)
def test_hostile_shapes_pass_through_unchanged(doc):
    out, notes = normalize_notification(doc)
    assert out is doc and notes == []


def test_deep_and_huge_input_is_handled_and_notes_stay_short():
    deep: dict = {}
    cur = deep
    for _ in range(5000):
        cur["x"] = {}
        cur = cur["x"]
    huge = "v1.0" + " " * 1_000_000
    out, notes = normalize_notification(
        {
            "version": huge,
            "product": {"name": "n", "files": [deep]},
            "submissionTime": "2020-01-01T00:00:00" + "0" * 10_000,
        }
    )
    assert out["version"] == "1.0"
    assert all(len(n) < 300 for n in notes)


def test_normalising_twice_changes_nothing_more(fixture):
    for name in (
        "podaac_filegroups_sha512_naive.json",
        "podaac_sftp_microseconds_naive.json",
        "cumulus_kinesis_record.json",
    ):
        once, _ = normalize_notification(fixture(name))
        twice, notes = normalize_notification(once)
        assert twice is once and notes == []
        json.dumps(once)  # still plain JSON
