"""Granule identity as PO.DAAC's CNM-to-granule task computes it."""

from __future__ import annotations

import pytest

from cnm_ingest.cnm.normalize import normalize_notification
from cnm_ingest.errors import ConfigurationError
from cnm_ingest.workflow import translate_message


def cnm_named(name: str, **product) -> dict:
    return {"product": {"name": name, **product}}


def test_podaac_collection_regex_on_product_name_after_its_first_slash(fixture):
    cnm, _ = normalize_notification(fixture("podaac_legacy_v1.json"))
    config = fixture("podaac_collection.json")
    assert translate_message.granule_id(cnm, config) == "product_0007-of-0042"
    assert translate_message.producer_granule_id(cnm) == "L2_TEST_LAKE/product_0007-of-0042.h5"  # as sent


def test_filegroups_fixture_id_is_the_product_name_not_a_file_name(fixture):
    cnm = fixture("podaac_filegroups_sha512_naive.json")
    [g] = translate_message.translate(
        cnm,
        {"name": "HLS_TEST_S30", "version": "2.0"},
        {"granuleIdExtraction": r"^(.*)((\.cmr\.json)|(\.h5)|(\.h5\.mp))$"},
    )
    assert g["granuleId"] == g["producerGranuleId"] == "HLS.S30.T33XYZ.2021092T101112.v2.0"  # no match: the name
    assert g["files"][0]["checksumType"] == "SHA512"  # normalised on the way


@pytest.mark.parametrize(
    "name, pattern, expected",
    [
        ("G1.nc", r"^(.*)\.nc$", "G1"),
        ("G1.nc", r"(G\d)", "G1"),  # a search, not a full match
        ("G1.nc", r"^(.*)\.h5$", "G1.nc"),  # no match: the name
        ("G1.nc", r"^(X)?G1\.nc$", "G1.nc"),  # matched, but group 1 did not take part: the name
        ("a/b/G1.nc", r"^(.*)\.nc$", "b/G1"),  # only up to the first '/' is dropped
        ("/G1.nc", r"^(.*)$", "G1.nc"),
        ("G1.nc", None, "G1.nc"),
        ("../../etc/passwd", r"^(.*)$", "../etc/passwd"),  # an id is a value, never a path (see url_path tests)
        ("ＧＩＤ.nc", r"^(\w+)\.nc$", "ＧＩＤ"),
    ],
)
def test_extraction_cases(name, pattern, expected):
    assert (
        translate_message.granule_id(cnm_named(name), {"granuleIdExtraction": pattern} if pattern else {}) == expected
    )


def test_camel_case_key_wins_over_ours():
    assert (
        translate_message.granule_id(
            cnm_named("A.B"), {"granuleIdExtraction": r"^(A)", "granule_id_extraction": r"(B)"}
        )
        == "A"
    )
    assert translate_message.granule_id(cnm_named("A.B"), {"granule_id_extraction": r"(B)"}) == "B"


@pytest.mark.parametrize("pattern", [r"(unclosed", r"^.*$", 5, ["(x)"]])
def test_unusable_regex_is_a_configuration_error(pattern):
    with pytest.raises(ConfigurationError):
        translate_message.granule_id(cnm_named("x"), {"granuleIdExtraction": pattern})


def test_producer_granule_id_from_the_notification_when_given():
    assert translate_message.producer_granule_id(cnm_named("n", producerGranuleId="P-1")) == "P-1"
    assert translate_message.producer_granule_id(cnm_named("n", producerGranuleId="")) == "n"
    assert translate_message.producer_granule_id(cnm_named("n", producerGranuleId=7)) == "n"


def test_http_and_sftp_sources_translate_and_other_schemes_are_refused_by_name(fixture):
    from cnm_ingest.errors import CnmValidationError

    [g] = translate_message.translate(fixture("podaac_http_sha512.json"), {}, {})
    assert g["files"][0]["bucket"] is None and g["files"][0]["source"].startswith("https://")
    [g] = translate_message.translate(fixture("podaac_sftp_microseconds_naive.json"), {}, {})
    assert g["files"][0]["bucket"] is None and g["files"][0]["source"].startswith("sftp://sftp.provider.example/")
    doc = fixture("podaac_sftp_microseconds_naive.json")
    doc["product"]["files"][0]["uri"] = "ftp://ftp.provider.example/outbox/x.nc"
    with pytest.raises(CnmValidationError) as err:
        translate_message.translate(doc, {}, {})
    assert "ftp://ftp.provider.example/" in str(err.value)
