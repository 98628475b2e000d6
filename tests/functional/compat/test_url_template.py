"""url_path templates with Cumulus's syntax and functions; no value can move a file out of its url_path."""

from __future__ import annotations

import hashlib

import pytest

from cnm_ingest.errors import CnmValidationError, ConfigurationError
from cnm_ingest.workflow import url_template
from cnm_ingest.workflow.url_template import render

CMR_BEGIN = "cmrMetadata.Granule.Temporal.RangeDateTime.BeginningDateTime"
CONTEXT = {
    "file": {"name": "GRAN_001.nc", "path": "outbox/2017/266", "size": 0},
    "granule": {
        "granuleId": "GRAN_001",
        "producerGranuleId": "GRAN_001.nc",
        "files": [{"name": "first.nc"}],
        "naive": "2017-09-23T23:30:59",
        "offset": "2017-12-31T23:30:00-02:00",
        "millis": 1506123456789,
        "dateonly": "2017-02-28",
        "empty": "",
    },
    "cmrMetadata": {"Granule": {"Temporal": {"RangeDateTime": {"BeginningDateTime": "2017-09-23T04:05:06.789Z"}}}},
}


@pytest.fixture
def status_table(aws, monkeypatch) -> None:
    """SyncGranule's EXECUTIONS_TABLE (its commit order, cnm_ingest.transfer.commit_order), made in moto."""
    import boto3

    from tests.conftest import REGION

    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="status",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
    )
    monkeypatch.setenv("EXECUTIONS_TABLE", "status")


def r(template: str, **legacy: str) -> str:
    return render(template, CONTEXT, legacy)


# --- one test per function -------------------------------------------------------------------------


def test_extractYear():
    assert r(f"{{extractYear({CMR_BEGIN})}}") == "2017"
    assert r("{extractYear(granule.offset)}") == "2018"  # UTC: 2017-12-31T23:30-02:00 is 2018-01-01T01:30Z


def test_extractMonth_is_not_zero_padded():
    assert r(f"{{extractMonth({CMR_BEGIN})}}") == "9"
    assert r("{extractMonth(granule.offset)}") == "1"


def test_extractDate_reads_offset_less_as_utc_and_millis():
    assert r("{extractDate(granule.naive)}") == "23"
    assert r("{extractDate(granule.millis)}") == "22"  # 1506123456789 ms = 2017-09-22T23:37:36Z
    assert r("{extractDate(granule.dateonly)}") == "28"


def test_extractHour():
    assert r(f"{{extractHour({CMR_BEGIN})}}") == "4"
    assert r("{extractHour(granule.offset)}") == "1"


def test_dateFormat_moment_tokens():
    assert r(f"{{dateFormat({CMR_BEGIN}, YYYY/DDDD)}}") == "2017/266"
    assert r(f"{{dateFormat({CMR_BEGIN}, YY-M-D[T]H.m.s.SSS)}}") == "17-9-23T4.5.6.789"
    assert r(f"{{dateFormat({CMR_BEGIN}, YYYYMMDD)}}/{{dateFormat({CMR_BEGIN}, X)}}") == "20170923/1506139506"
    with pytest.raises(ConfigurationError):
        r(f"{{dateFormat({CMR_BEGIN}, Qo)}}")  # a moment token we do not render is refused, not passed through


def test_substring_javascript_semantics():
    assert r("{substring(file.name, 0, 4)}") == "GRAN"
    assert r("{substring(file.name, 5)}") == "001.nc"
    assert r("{substring(file.name, 4, 0)}") == "GRAN"  # swapped
    assert r("{substring(file.name, -3, 99)}") == "GRAN_001.nc"  # clamped
    assert r("{substring(file.name, x, 2)}") == "GR"  # NaN is 0


def test_extractPath():
    assert r("{extractPath(file.path)}") == "outbox/2017"
    with pytest.raises(CnmValidationError):  # dirname of a bare name is '.': Cumulus would write a './' key
        r("{extractPath(granule.granuleId)}/x")


def test_defaultTo():
    assert r("{defaultTo(cmrMetadata.Granule.Missing, misc)}") == "misc"
    assert r("{defaultTo(granule.empty, granule.granuleId)}") == "GRAN_001"
    assert r("{defaultTo(granule.granuleId, misc)}") == "GRAN_001"
    with pytest.raises(ConfigurationError):
        r("{defaultTo(granule.empty, granule.alsoMissing)}")


def test_paths_and_our_placeholders():
    assert (
        r("{granule.files[0].name}/{cmrMetadata.Granule.Temporal.RangeDateTime.BeginningDateTime}")
        == "first.nc/2017-09-23T04:05:06.789Z"
    )
    assert (
        r("file-staging/{stack}/{collection}/{granuleId}", stack="s", collection="C__1", granuleId="G")
        == "file-staging/s/C__1/G"
    )


# --- hostile templates and values ------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{eval(file.name)}",
        "{constructor(file.name)}",
        "{__import__(os)}",
        "{toString(file.name)}",
        "{granule.nope}",
        "{granule.empty}",
        "{file.size}",
        "{granule}",
        "{granule.files}",
        "{file.name.length}",
        "{extractYear(file.name)}",
        "{extractYear(granule.nope)}",
        "{defaultTo(a)}",
        "x" * 2000,
        "{extractYear(granule.offset)" * 1,
    ],
)
def test_bad_templates_are_configuration_errors(template):
    with pytest.raises((ConfigurationError, CnmValidationError)):
        r(template)


@pytest.mark.parametrize(
    "value",
    ["..", "../../other-tenant", "a/../../b", ".", "./x", "a/./b", "x\x00y", "x\ny", "{granule.granuleId}", "{stack}"],
)
def test_values_cannot_escape_or_inject(value):
    context = {**CONTEXT, "granule": {**CONTEXT["granule"], "granuleId": value}}
    with pytest.raises(CnmValidationError):
        render("protected/{granule.granuleId}/{substring(granule.granuleId, 0, 40)}", context, {})
    with pytest.raises(CnmValidationError):
        render("protected/{granuleId}", context, {"granuleId": value})


def test_slashes_and_odd_characters_in_values_stay_inside():
    context = {**CONTEXT, "granule": {**CONTEXT["granule"], "granuleId": "/a//b#c?d%2E%2E/é/"}}
    assert render("root/{granule.granuleId}", context) == "root/a/b#c?d%2E%2E/é"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "x\x00", None, "é" * 600])
def test_file_names_must_be_one_segment(name):
    with pytest.raises(CnmValidationError):
        url_template.object_key("p", name)


def test_a_rendered_value_is_not_rendered_again():
    context = {**CONTEXT, "file": {**CONTEXT["file"], "path": "{cmrMetadata.Granule}"}}
    with pytest.raises(CnmValidationError):
        render("{file.path}", context)


# --- collection files: bucket, type, url_path per file ---------------------------------------------

BUCKETS = {"private": {"name": "stage-bkt"}, "protected": {"name": "prot-bkt"}, "public": {"name": "pub-bkt"}}
PROVIDER = {"id": "P", "config": {"host": "provider"}}  # SyncGranule reads only from the provider's own bucket


def place(name: str, config: dict, template: str = "{collection}", ftype: str = "data"):
    granule = {"granuleId": "G", "dataType": "C", "version": "1", "files": []}
    return url_template.place(
        {"name": name, "type": ftype},
        granule,
        buckets=BUCKETS,
        default_bucket="stage-bkt",
        template=template,
        config=config,
        stack="s",
    )


def test_podaac_collection_files_map_bucket_and_type(fixture):
    config = fixture("podaac_collection.json")
    config["files"][1]["url_path"] = "{collection_name}/meta/{extractYear(granule.t)}"
    assert place("product_0007-of-0042.h5", {**config, "url_path": None}) == url_template.Placement(
        "prot-bkt", "C__1", "data"
    )
    with pytest.raises(ConfigurationError):  # the file's own url_path needs granule.t, which is not there
        place("product_0007-of-0042.h5.iso.xml", config)
    config["files"][1]["url_path"] = "{collection_name}/meta"
    assert place("x.h5.iso.xml", config, ftype="data") == url_template.Placement("prot-bkt", "C/meta", "metadata")
    assert place("x.cmr.json", config).bucket == "pub-bkt"
    assert place("unmatched.tif", config) == url_template.Placement("stage-bkt", "C__1", "data")  # the staging default


def test_first_matching_entry_wins_and_unknown_types_keep_the_cnm_type():
    config = {"files": [{"regex": r"\.nc$", "bucket": "public", "type": "qa"}, {"regex": ".*", "bucket": "protected"}]}
    assert place("a.nc", config) == url_template.Placement("pub-bkt", "C__1", "data")
    assert place("a.txt", config).bucket == "prot-bkt"


@pytest.mark.parametrize(
    "files",
    [
        {"regex": "x"},
        ["x"],
        [{"bucket": "public"}],
        [{"regex": "(", "bucket": "public"}],
        [{"regex": ".*", "bucket": "nope"}],
    ],
)
def test_bad_files_config_is_a_configuration_error(files):
    with pytest.raises(ConfigurationError):
        place("a.nc", {"files": files})


def test_sync_places_each_file_in_its_bucket(status_table):
    import boto3

    from cnm_ingest.workflow import sync_granule
    from tests.conftest import REGION

    s3 = boto3.client("s3", region_name=REGION)
    for b in ("provider", "stage-bkt", "prot-bkt", "pub-bkt"):
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
    files = []
    for name, body in (("G.nc", b"data"), ("G.cmr.json", b"{}"), ("G.log", b"log")):
        s3.put_object(Bucket="provider", Key=f"in/{name}", Body=body)
        files.append(
            {
                "name": name,
                "bucket": "provider",
                "key": f"in/{name}",
                "source": f"s3://provider/in/{name}",
                "size": len(body),
                "checksumType": "md5",
                "checksum": hashlib.md5(body).hexdigest(),
                "type": "data",
            }
        )
    config = {
        "url_path": "{collection}",
        "files": [
            {
                "regex": r"\.nc$",
                "bucket": "protected",
                "type": "data",
                "url_path": "{collection_name}/{substring(file.name, 0, 1)}",
            },
            {"regex": r"\.cmr\.json$", "bucket": "public", "type": "metadata"},
        ],
    }
    message = {
        "meta": {
            "stack": "s",
            "buckets": BUCKETS,
            "provider": PROVIDER,
            "collection": {"name": "C", "version": "1", **config},
        },
        "payload": {"granules": [{"granuleId": "G", "dataType": "C", "version": "1", "files": files}]},
    }
    out = sync_granule.sync_message(message, {"name": "e"})
    placed = {(f["bucket"], f["key"], f["type"]) for f in out["payload"]["granules"][0]["files"]}
    assert placed == {
        ("prot-bkt", "C/G/G.nc", "data"),
        ("pub-bkt", "C__1/G.cmr.json", "metadata"),
        ("stage-bkt", "C__1/G.log", "data"),
    }
    for bucket, key, _ in placed:
        s3.head_object(Bucket=bucket, Key=key)


def test_cumulus_duplicateHandling_key_is_read(status_table):
    import boto3

    from cnm_ingest.workflow import sync_granule
    from tests.conftest import REGION

    s3 = boto3.client("s3", region_name=REGION)
    for b in ("provider", "stage-bkt"):
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="provider", Key="in/G.nc", Body=b"new")
    s3.put_object(
        Bucket="stage-bkt", Key="C__1/G.nc", Body=b"old", Metadata={sync_granule.EXECUTION_METADATA: "earlier"}
    )
    f = {
        "name": "G.nc",
        "bucket": "provider",
        "key": "in/G.nc",
        "source": "s3://provider/in/G.nc",
        "size": 3,
        "checksumType": "md5",
        "checksum": hashlib.md5(b"new").hexdigest(),
        "type": "data",
    }
    message = {
        "meta": {
            "stack": "s",
            "buckets": BUCKETS,
            "provider": PROVIDER,
            "collection": {"name": "C", "version": "1", "url_path": "{collection}", "duplicateHandling": "replace"},
        },
        "payload": {"granules": [{"granuleId": "G", "dataType": "C", "version": "1", "files": [f]}]},
    }
    out = sync_granule.sync_message(message, {"name": "e"})
    assert out["payload"]["granules"][0]["files"][0]["duplicate"] == "replaced"
    assert s3.get_object(Bucket="stage-bkt", Key="C__1/G.nc")["Body"].read() == b"new"
