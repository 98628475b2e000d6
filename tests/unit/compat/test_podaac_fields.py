"""Field by field against PO.DAAC's tasks: every field where our answer differs is named in docs/compat-table.md.

Each case is one of PO.DAAC's own test inputs (cumulus-cnm-to-granule's ``input.json``, ``http_input.json``,
``sftp_input.json``, ``inputFilegroups.json``; cumulus-cnm-response-task's ``workflow.success.json``,
``workflow.error.json``), in their shape with our own values, and next to it what PO.DAAC's task answers for
it, read from the task's code and its tests (CnmToGranuleHandler.PerformFunction, CNMResponse.generateOutput
and buildGeneralError). Ours is computed by the functions our steps run. The fields that differ (a list's
items as ``[]``) must be exactly the table's rows in docs/compat-table.md, "Field by field": a new
difference fails this test until it is fixed or documented, and a documented one that went away does too.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from cnm_ingest.cnm.response_message import build_response, ingestion_metadata_from, response_product
from cnm_ingest.errors import RecordError
from cnm_ingest.workflow import task, translate_message
from tests.unit.compat.conftest import load

ROOT = Path(__file__).resolve().parents[3]
TABLE = ROOT / "docs" / "compat-table.md"
ENDPOINT = "https://dist.example:9001/DEV/"
RECEIVED = "2020-04-08T16:00:16.958Z"
# Values that are a time of day: compared by their form (digits as 9), not their value.
TIMES = {"processCompleteTime"}

# --- CnmToGranule ------------------------------------------------------------------------------------------


def _collection(name: str, version: str, extraction: str | None = None) -> dict[str, Any]:
    config = {"name": name, "version": version}
    if extraction:
        config["granuleIdExtraction"] = extraction
    return config


def _podaac_file(f: dict[str, Any], *, s3: bool, sftp: bool = False) -> dict[str, Any]:
    """A granule file as PO.DAAC's CnmToGranule builds it (buildS3GranuleFile / buildHttpsGranuleFile /
    buildSftpGranuleFile): ``path`` is the URI's folder, checksum keys only when the CNM has them."""
    after_scheme = f["uri"].split("://", 1)[1]
    path = after_scheme[after_scheme.index("/") + 1 : after_scheme.rindex("/")]
    out: dict[str, Any] = {"name": f["name"], "path": path}
    if s3 or sftp:
        out["url_path"] = f["uri"]
    if s3:
        out["bucket"] = out["source_bucket"] = after_scheme[: after_scheme.index("/")]
    out["size"] = f["size"]
    for key in ("checksumType", "checksum"):
        if key in f:
            out[key] = f[key]
    out["type"] = f["type"]
    if s3:
        out.update(fileName=f["name"], key=f"{path}/{f['name']}")
    return out


def _with_repeated_file() -> dict[str, Any]:
    cnm = load("podaac_filegroups_sha512_naive.json")
    group = cnm["product"]["filegroups"][0]
    cnm["product"]["filegroups"].append({"id": "g2", "files": [copy.deepcopy(group["files"][1])]})  # in two groups
    return cnm


def _with_submission_time() -> dict[str, Any]:
    cnm = load("podaac_legacy_v1.json")  # deliveryTime, no submissionTime: see "outcome" below
    cnm["submissionTime"] = cnm["deliveryTime"]
    return cnm


LAKE = "^(.*)((\\.cmr\\.json)|(\\.h5)|(\\.h5\\.mp))$"
GRANULE_CASES = {
    # input.json: legacy v1.0, s3, product.name with the collection folder, a file without a checksum
    "input.json": (_with_submission_time(), _collection("L2_TEST_LAKE", "1", LAKE), "product_0007-of-0042"),
    # http_input.json: https, SHA512, extra fields (duplicationid, product.id)
    "http_input.json": (load("podaac_http_sha512.json"), _collection("HLS_TEST_L30", "2.0", LAKE), None),
    # sftp_input.json: sftp, no checksums, date-time without offset
    "sftp_input.json": (load("podaac_sftp_microseconds_naive.json"), _collection("GHRSST_TEST-L2P-v1.0", "1.0"), None),
    # inputFilegroups.json: filegroups, SHA-512, one file listed in two groups
    "inputFilegroups.json": (_with_repeated_file(), _collection("HLS_TEST_S30", "2.0", LAKE), None),
}


def podaac_granule(cnm: dict[str, Any], collection: dict[str, Any], granule_id: str | None) -> dict[str, Any]:
    product = cnm["product"]
    files = product.get("files") or [f for group in product["filegroups"] for f in group["files"]]  # all kept
    return {
        "granuleId": granule_id or product["name"].split("/", 1)[-1],
        "producerGranuleId": product.get("producerGranuleId") or product["name"],
        "version": collection["version"],
        "dataType": collection["name"],
        "files": [_podaac_file(f, s3=f["uri"].startswith("s3://"), sftp=f["uri"].startswith("sftp://")) for f in files],
    }


def _outcome(cnm: dict[str, Any], collection: dict[str, Any]) -> str:
    try:
        our_granule(cnm, collection)
    except RecordError as exc:
        return f"FAILURE {exc.error_code}"
    return "granule"


def our_granule(cnm: dict[str, Any], collection: dict[str, Any]) -> dict[str, Any]:
    meta_collection = {"name": collection["name"], "version": collection["version"]}
    (granule,) = translate_message.translate(copy.deepcopy(cnm), meta_collection, collection)
    return granule


# --- CnmResponse -------------------------------------------------------------------------------------------

SUCCESS_CNM = {  # workflow.success.json's OriginalCNM (after CnmToGranule added receivedTime)
    "product": {
        "files": [
            {
                "checksumType": "md5",
                "checksum": "",
                "uri": "s3://provider-staging/abc/store/TEST_CYCLES/Test_Cycle_0945.V4_2.nc",
                "name": "Test_Cycle_0945.V4_2.nc",
                "type": "data",
                "size": 1880,
            }
        ],
        "name": "Test_Cycle_0945.V4_2.nc",
        "dataVersion": "1.0",
        "id": "test-0945",
    },
    "receivedTime": RECEIVED,
    "collection": "TEST_CYCLES_V42",
    "version": "1.1",
    "provider": "NASA/TEST/DAAC",
    "submissionTime": "2020-04-08 15:59:15.186779",
    "identifier": "c1f1be11-0000-4620-ad07-9a7f2afb8349",
    "duplicationid": "Test_Cycle_0945.V4_2",
}
SUCCESS_GRANULE = {  # workflow.success.json's input granule: Cumulus's file shape, no producerGranuleId
    "files": [
        {
            "checksumType": "md5",
            "fileName": "Test_Cycle_0945.V4_2.nc",
            "checksum": "3b6de83e361a01867a9e541a4bf771dc",
            "bucket": "test-protected",
            "key": "Test_Cycle_0945.V4_2.nc",
            "type": "data",
            "size": 1880,
        },
        {
            "fileName": "Test_Cycle_0945.V4_2.cmr.json",
            "key": "Test_Cycle_0945.V4_2.cmr.json",
            "checksumType": "md5",
            "checksum": "11236de83e361ee5553332f771dc",
            "bucket": "test-public",
            "type": "metadata",
            "size": 1236.0,
        },
    ],
    "cmrLink": "https://cmr.example/search/granules.json?concept_id=G1-TEST",
    "cmrConceptId": "G1-TEST",
    "dataType": "TEST_CYCLES_V42",
    "granuleId": "Test_Cycle_0945.V4_2",
    "version": "1",
}
ERROR_CNM = {  # workflow.error.json's OriginalCNM
    "product": {
        "files": [
            {
                "checksumType": "md5",
                "checksum": "123454321abc",
                "uri": "s3://provider-outbox/L1B_TEST/L1B_TEST_0001-of-0042.h5",
                "name": "L1B_TEST_0001-of-0042.h5",
                "type": "data",
                "size": 3769,
            }
        ],
        "name": "L1B_TEST/L1B_TEST_0001-of-0042.h5",
        "dataVersion": "1.0",
    },
    "trace": "aNewTrace",
    "collection": "L1B_TEST",
    "version": "1",
    "provider": "PODAAC_TEST",
    "submissionTime": "2018-11-19T15:27:56.585649",
    "identifier": "b092836b-0000-11e8-9430-dca9046f1268",
    "receivedTime": RECEIVED,
}
ERROR = {
    "Error": "[Errno 30] Read-only file system",
    "Cause": "Traceback ...\nOSError: [Errno 30] Read-only file system\n",
}


def _podaac_success(cnm: dict[str, Any], granules: list[dict[str, Any]]) -> dict[str, Any]:
    """CNMResponse.generateOutput: the whole notification, ``product.files`` from the first granule only,
    ``product.name`` its producerGranuleId else granuleId, ingestionMetadata from its CMR fields."""
    out = copy.deepcopy(cnm)
    first = granules[0]
    out["product"]["files"] = [
        {
            "type": f["type"],
            "name": f["fileName"],
            "uri": f"{ENDPOINT}{f['bucket']}/{f['key']}",
            **{k: f[k] for k in ("checksumType", "checksum") if k in f},
            "size": int(f["size"]),
        }
        for f in first["files"]
    ]
    out["product"]["name"] = first.get("producerGranuleId") or first["granuleId"]
    out["response"] = {
        "status": "SUCCESS",
        "ingestionMetadata": {"catalogId": first["cmrConceptId"], "catalogUrl": first["cmrLink"]},
    }
    out["processCompleteTime"] = "2020-04-08T16:01:02.345Z"  # SimpleDateFormat ...ss.SSS'Z': milliseconds
    return out


def _podaac_failure(cnm: dict[str, Any], error: dict[str, str]) -> dict[str, Any]:
    """generateOutput for a WorkflowException: the notification without ``product``; the Cause as the message
    when it is not JSON; an Error that is not a Cumulus one is PROCESSING_ERROR."""
    out = {k: v for k, v in copy.deepcopy(cnm).items() if k != "product"}
    out["response"] = {"status": "FAILURE", "errorCode": "PROCESSING_ERROR", "errorMessage": error["Cause"]}
    out["processCompleteTime"] = "2020-04-08T16:01:02.345Z"
    return out


def _our_success(cnm: dict[str, Any], granules: list[dict[str, Any]], endpoint: str | None = ENDPOINT):
    product = response_product(copy.deepcopy(granules), cnm, endpoint)
    extra = ingestion_metadata_from({"meta": {}, "payload": {"granules": granules}})
    return build_response(cnm, status="SUCCESS", received_time=RECEIVED, product=product, ingestion_metadata=extra)


def _our_failure(cnm: dict[str, Any], exception: dict[str, str]) -> dict[str, Any]:
    error = task.original_error(exception)
    return build_response(
        cnm,
        status="FAILURE",
        received_time=RECEIVED,
        error_code=error["errorCode"],
        error_message=error["errorMessage"],
    )


def _second_granule() -> dict[str, Any]:
    second = copy.deepcopy(SUCCESS_GRANULE)
    second["granuleId"] = "Test_Cycle_0946.V4_2"
    for f in second["files"]:
        f["fileName"] = f["key"] = f["fileName"].replace("0945", "0946")
    return second


def _checksum_halves() -> dict[str, Any]:
    """One file with a checksum and no checksumType, one with a checksumType and no checksum."""
    granule = copy.deepcopy(SUCCESS_GRANULE)
    del granule["files"][0]["checksumType"]
    del granule["files"][1]["checksum"]
    return granule


def _filegroups_cnm() -> dict[str, Any]:
    cnm = copy.deepcopy(SUCCESS_CNM)
    cnm["product"]["filegroups"] = [{"id": "g", "files": cnm["product"].pop("files")}]
    return cnm


def _no_endpoint_podaac() -> dict[str, Any]:
    """No distribution_endpoint: generateOutput fails (a null primitive), so buildGeneralError answers."""
    return {"response": {"status": "FAILURE", "errorCode": "PROCESSING_ERROR"}}


RESPONSE_CASES = {
    "workflow.success.json": (
        lambda: _our_success(SUCCESS_CNM, [SUCCESS_GRANULE]),
        lambda: _podaac_success(SUCCESS_CNM, [SUCCESS_GRANULE]),
    ),
    "workflow.success.json, two granules": (
        lambda: _our_success(SUCCESS_CNM, [SUCCESS_GRANULE, _second_granule()]),
        lambda: _podaac_success(SUCCESS_CNM, [SUCCESS_GRANULE, _second_granule()]),
    ),
    "workflow.success.json, filegroups": (
        lambda: _our_success(_filegroups_cnm(), [SUCCESS_GRANULE]),
        lambda: _podaac_success(_filegroups_cnm(), [SUCCESS_GRANULE]),
    ),
    "workflow.success.json, checksum without checksumType and the reverse": (
        lambda: _our_success(SUCCESS_CNM, [_checksum_halves()]),
        lambda: _podaac_success(SUCCESS_CNM, [_checksum_halves()]),
    ),
    "workflow.error.json": (lambda: _our_failure(ERROR_CNM, ERROR), lambda: _podaac_failure(ERROR_CNM, ERROR)),
    # only the outcome is compared: PO.DAAC's general error has none of the SUCCESS fields
    "workflow.success.json, no distribution_endpoint": (
        lambda: {"response": {"status": _our_success(SUCCESS_CNM, [SUCCESS_GRANULE], None)["response"]["status"]}},
        _no_endpoint_podaac,
    ),
}

# --- the comparison --------------------------------------------------------------------------------------------


def _form(path: str, value: Any) -> Any:
    return re.sub(r"\d", "9", value) if path in TIMES and isinstance(value, str) else value


def _named(items: list[Any]) -> dict[Any, Any] | None:
    """A list of files by name (the first of each), or None when its items are not named objects."""
    if not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    out: dict[Any, Any] = {}
    for i in items:
        out.setdefault(i["name"], i)
    return out


def differences(ours: Any, podaac: Any, path: str = "") -> set[tuple[str, str]]:
    """{(field, how)}; how is ``ours only`` / ``PO.DAAC only`` (the key, or the whole object under it),
    ``count`` (a list's length: its items are then compared by name) or ``value``."""
    found: set[tuple[str, str]] = set()
    if isinstance(ours, dict) and isinstance(podaac, dict):
        for key in ours.keys() | podaac.keys():
            field = f"{path}.{key}" if path and not path.endswith(" ") else f"{path}{key}"
            if key not in podaac:
                found.add((field, "ours only"))
            elif key not in ours:
                found.add((field, "PO.DAAC only"))
            else:
                found |= differences(ours[key], podaac[key], field)
    elif isinstance(ours, list) and isinstance(podaac, list):
        pairs = list(zip(ours, podaac, strict=False))
        if len(ours) != len(podaac):
            found.add((f"{path}[]", "count"))
            a, b = _named(ours), _named(podaac)
            pairs = [(a[n], b[n]) for n in a.keys() & b.keys()] if a is not None and b is not None else []
        for x, y in pairs:
            found |= differences(x, y, f"{path}[]")
    elif _form(path, ours) != _form(path, podaac):
        found.add((path, "value"))
    return found


def computed() -> dict[tuple[str, str], list[str]]:
    """Every difference, with the cases it shows in."""
    found: dict[tuple[str, str], list[str]] = {}
    for case, (cnm, collection, granule_id) in GRANULE_CASES.items():
        for diff in differences(our_granule(cnm, collection), podaac_granule(cnm, collection, granule_id), "granule "):
            found.setdefault(diff, []).append(case)
    # as sent, input.json has no submissionTime and inputFilegroups.json a filegroup without id (both required by
    # the CNM schema): PO.DAAC makes a granule of each, we answer a FAILURE
    cnm, collection, _ = GRANULE_CASES["input.json"]
    no_submission_time = {k: v for k, v in cnm.items() if k != "submissionTime"}
    groups, group_collection, _ = GRANULE_CASES["inputFilegroups.json"]
    no_group_id = copy.deepcopy(groups)
    del no_group_id["product"]["filegroups"][1]["id"]
    for case, sent, config in (
        ("input.json, as sent", no_submission_time, collection),
        ("inputFilegroups.json, as sent", no_group_id, group_collection),
    ):
        for diff in differences({"outcome": _outcome(sent, config)}, {"outcome": "granule"}, "granule "):
            found.setdefault(diff, []).append(case)
    for case, (ours, podaac) in RESPONSE_CASES.items():
        for diff in differences(ours(), podaac(), "response "):
            found.setdefault(diff, []).append(case)
    return found


def documented() -> dict[tuple[str, str], str]:
    """The rows of docs/compat-table.md's "Field by field" table: {(field, how): its status}."""
    text = TABLE.read_text()
    section = text.split("## Field by field", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0].startswith("`"):
            key = (cells[0].strip("`"), cells[1])
            assert key not in rows, f"documented twice: {key}"
            rows[key] = cells[4]
    return rows


def test_every_difference_from_podaac_is_documented_and_every_documented_one_exists():
    found, rows = computed(), documented()
    undocumented = {f"{field} ({how}) in {', '.join(found[(field, how)])}" for field, how in found.keys() - rows.keys()}
    assert undocumented == set(), "a difference from PO.DAAC's answer is not in docs/compat-table.md"
    gone = rows.keys() - found.keys()
    assert gone == set(), "docs/compat-table.md names a difference the comparison no longer finds"
    for key, status in rows.items():
        assert status.startswith("choice: ") and len(status) > 30, f"{key}: say why it differs ({status!r})"


def test_the_comparison_can_fail():
    """A changed field is found: the comparison is not vacuous."""
    cnm, collection, granule_id = GRANULE_CASES["input.json"]
    ours = our_granule(cnm, collection)
    ours["granuleId"] += "x"
    ours["files"][0]["size"] = 7
    assert {("granule granuleId", "value"), ("granule files[].size", "value")} <= differences(
        ours, podaac_granule(cnm, collection, granule_id), "granule "
    )


def test_product_name_is_the_granule_id_when_there_is_no_producer_granule_id():
    """PO.DAAC's answer for workflow.success.json: the granule id, not the notification's file name (was a bug)."""
    product = _our_success(SUCCESS_CNM, [SUCCESS_GRANULE])["product"]
    assert product["name"] == "Test_Cycle_0945.V4_2" != SUCCESS_CNM["product"]["name"]
    with_producer = dict(SUCCESS_GRANULE, producerGranuleId="L1/Test_Cycle_0945.V4_2.nc")
    assert _our_success(SUCCESS_CNM, [with_producer])["product"]["name"] == "L1/Test_Cycle_0945.V4_2.nc"


def test_files_of_a_cumulus_shaped_granule_are_answered_by_their_file_name():
    """A granule in Cumulus's file shape (``fileName``, no ``name``: PO.DAAC's own fixture, or a DAAC's extra
    state) is answered with each file's name and an integer size (was a KeyError, then no answer at all)."""
    files = _our_success(SUCCESS_CNM, [SUCCESS_GRANULE])["product"]["files"]
    assert [(f["name"], f["size"]) for f in files] == [
        ("Test_Cycle_0945.V4_2.nc", 1880),
        ("Test_Cycle_0945.V4_2.cmr.json", 1236),
    ]
    assert isinstance(files[1]["size"], int)
    keyless = {"bucket": "b", "key": "a/b/c.nc", "type": "data", "size": 1}
    assert response_product([{"granuleId": "g", "files": [keyless]}], {})["files"][0]["name"] == "c.nc"


@pytest.mark.parametrize("case", sorted(GRANULE_CASES))
def test_the_granule_identity_is_podaac_s(case):
    """What must not differ: granuleId, producerGranuleId, dataType, version, each file's name, type and size."""
    cnm, collection, granule_id = GRANULE_CASES[case]
    ours, theirs = our_granule(cnm, collection), podaac_granule(cnm, collection, granule_id)
    assert [ours[k] for k in ("granuleId", "producerGranuleId", "dataType", "version")] == [
        theirs[k] for k in ("granuleId", "producerGranuleId", "dataType", "version")
    ]
    assert {(f["name"], f["type"], f["size"]) for f in ours["files"]} == {
        (f["name"], f["type"], f["size"]) for f in theirs["files"]
    }


def test_a_repeated_file_entry_is_one_granule_file():
    cnm, collection, _ = GRANULE_CASES["inputFilegroups.json"]
    names = [f["name"] for f in our_granule(cnm, collection)["files"]]
    assert len(names) == len(set(names)) == 2
    assert len(podaac_granule(cnm, collection, None)["files"]) == 3
    clash = copy.deepcopy(cnm)
    clash["product"]["filegroups"][1]["files"][0]["uri"] += ".other"  # same name, another file
    assert _outcome(clash, collection) == "FAILURE VALIDATION_ERROR"


def test_a_file_without_a_checksum_has_null_checksum_keys():
    cnm, collection, _ = GRANULE_CASES["input.json"]
    bare = our_granule(cnm, collection)["files"][1]
    assert (bare["checksumType"], bare["checksum"]) == (None, None)
    assert not {"checksumType", "checksum"} & podaac_granule(cnm, collection, None)["files"][1].keys()


def test_a_two_granule_input_is_answered_with_every_file():
    granules = [SUCCESS_GRANULE, _second_granule()]
    ours = _our_success(SUCCESS_CNM, granules)["product"]["files"]
    assert [f["name"] for f in ours] == [f["fileName"] for g in granules for f in g["files"]]
    assert len(_podaac_success(SUCCESS_CNM, granules)["product"]["files"]) == 2


def test_checksum_keys_in_the_answer():
    files = _our_success(SUCCESS_CNM, [_checksum_halves()])["product"]["files"]
    assert (files[0]["checksumType"], files[0]["checksum"]) == ("md5", SUCCESS_GRANULE["files"][0]["checksum"])
    assert not {"checksumType", "checksum"} & files[1].keys()


def test_without_a_distribution_endpoint_files_are_s3_uris():
    answer = _our_success(SUCCESS_CNM, [SUCCESS_GRANULE], None)
    assert answer["response"]["status"] == "SUCCESS"
    assert [f["uri"] for f in answer["product"]["files"]] == [
        "s3://test-protected/Test_Cycle_0945.V4_2.nc",
        "s3://test-public/Test_Cycle_0945.V4_2.cmr.json",
    ]
    with_endpoint = _our_success(SUCCESS_CNM, [SUCCESS_GRANULE])["product"]["files"][0]["uri"]
    assert with_endpoint == "https://dist.example:9001/DEV/test-protected/Test_Cycle_0945.V4_2.nc"  # PO.DAAC's form
