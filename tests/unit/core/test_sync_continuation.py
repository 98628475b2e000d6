"""SyncGranule's deadline-aware continuation, its plain parts (issue 22): the stop callable, the settings, the
continuation marker, what an existing temporary copy is worth (:func:`sync_granule.trust`), and
``pool.run_all(stop=)`` finishing the items in flight."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest

from cnm_ingest.errors import CnmValidationError, ConfigurationError, PartialTransferError
from cnm_ingest.transfer import pool
from cnm_ingest.workflow import sync_granule
from cnm_ingest.workflow.sync_granule import DISTRUSTED, READ_BACK, REUSED, Continuation, Owner, trust

DATA = b"granule file bytes"


# --- stop and settings --------------------------------------------------------------------------------------


def test_stop_says_true_once_less_than_the_margin_is_left():
    left = iter([900_000, 300_000, 120_001, 120_000, 119_999, 5])  # the first: the invocation's start
    stop = sync_granule.stop_when(lambda: next(left), 120)
    assert [stop() for _ in range(5)] == [False, False, False, True, True]


def test_the_margin_is_at_most_half_the_invocation_so_a_short_one_still_makes_progress():
    left = iter([100_000, 50_001, 50_000, 49_999])  # started with 100 s: the 120 s margin is cut to 50 s
    stop = sync_granule.stop_when(lambda: next(left), 120)
    assert [stop() for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize(
    ("setting", "env", "good", "bad"),
    [
        (sync_granule.deadline_margin, "SYNC_DEADLINE_MARGIN_SECONDS", {None: 120, "10": 10, "600": 600}, ["9", "601"]),
        (sync_granule.max_invocations, "SYNC_MAX_INVOCATIONS", {None: 50, "1": 1, "1000": 1000}, ["0", "1001"]),
    ],
)
def test_the_settings_are_whole_numbers_in_range(monkeypatch, setting, env, good, bad):
    for raw, value in good.items():
        if raw is None:
            monkeypatch.delenv(env, raising=False)
        else:
            monkeypatch.setenv(env, raw)
        assert setting() == value
    for raw in [*bad, "2.5", "1e2", "x", " ", "-3"]:
        monkeypatch.setenv(env, raw)
        with pytest.raises(ConfigurationError, match=env):
            setting()
    with pytest.raises(ConfigurationError):
        setting(True)


# --- the marker ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verified", [set(), {0}, {7, 8}, set(range(0, 10_000, 7)), set(range(10_000))])
def test_the_marker_round_trips(verified):
    marker = Continuation(2, 1, frozenset(verified), "d" * 32, ("a", "b"), len(verified), 10_001).marker()
    again = Continuation.read({sync_granule.CONTINUATION: marker}, 2)
    assert again == Continuation(2, 1, frozenset(verified), "d" * 32, ("a", "b"), len(verified), 10_001)
    assert len(marker["verified"]) < 2_000


def test_no_marker_is_a_first_invocation():
    assert Continuation.read({}, 1) == Continuation()


def test_a_marker_that_decompresses_to_a_bomb_is_cut():
    bomb = base64.b64encode(zlib.compress(b"\xff" * 50_000_000)).decode()
    marker = {**Continuation(1).marker(), "verified": bomb}
    assert len(Continuation.read({sync_granule.CONTINUATION: marker}, 1).verified) == 1_000_000


@pytest.mark.parametrize(
    "change",
    [
        {"invocations": "1"},
        {"invocations": True},
        {"granules_committed": 1},  # as many as there are granules: nothing left to continue
        {"done": -1},
        {"verified": "***"},
        {"verified": base64.b64encode(b"not zlib").decode()},
        {"buckets": [""]},
        {"buckets": [3]},
    ],
)
def test_a_malformed_marker_is_a_validation_error(change):
    marker = {**Continuation(1).marker(), **change}
    with pytest.raises(CnmValidationError, match="sync_continuation"):
        Continuation.read({sync_granule.CONTINUATION: marker}, 1)


def test_targets_digest_changes_with_any_target_source_or_checksum():
    files = [
        {
            "source": "s3://a/x",
            "size": 1,
            "checksumType": "md5",
            "checksum": "c",
            "staged_bucket": "s",
            "staged_key": "k",
        }
    ]
    base = sync_granule.targets_digest(files)
    for key, value in [("staged_key", "k2"), ("staged_bucket", "s2"), ("source", "s3://a/y"), ("checksum", "d")]:
        assert sync_granule.targets_digest([{**files[0], key: value}]) != base
    assert sync_granule.targets_digest(files * 2) != base


# --- trust ----------------------------------------------------------------------------------------------------


OWNER = Owner("A", "G1")


def file_of(kind: str | None = "md5", source: str = "s3://provider-a/G1/x.nc", size: int = len(DATA)) -> dict:
    algo = {"md5": "md5", "SHA256": "sha256", "SHA1": "sha1", "SHA512": "sha512"}.get(kind or "")
    return {
        "source": source,
        "bucket": None if source.startswith("http") else "provider-a",
        "size": size,
        "checksumType": kind,
        "checksum": hashlib.new(algo, DATA).hexdigest() if algo else None,
    }


def head_of(file: dict, execution: str = "exec-1", **change) -> dict:
    """The head_object of the temporary copy SyncGranule's copy writes for ``file``."""
    metadata = {
        sync_granule.EXECUTION_METADATA: execution,
        sync_granule.SOURCE_METADATA: sync_granule.source_metadata(file),
        **OWNER.metadata(),
        **sync_granule._checksum_metadata(file),
    }
    found = {"ContentLength": file["size"], "Metadata": metadata}
    algo = {"SHA256": "sha256", "SHA1": "sha1"}.get(file["checksumType"] or "")
    if algo:
        found[f"Checksum{file['checksumType']}"] = base64.b64encode(hashlib.new(algo, DATA).digest()).decode()
    for key, value in change.items():
        if key in ("ContentLength",) or key.startswith("Checksum"):
            found[key] = value
        else:
            metadata[key] = value
    return found


def worth(file: dict, found: dict, recorded: bool = False, **kw) -> str:
    return trust(file, found, execution_name="exec-1", owner=OWNER, recorded=recorded, **kw)


@pytest.mark.parametrize("kind", ["SHA256", "SHA1"])
def test_s3s_own_checksum_proves_a_copy_without_reading_it(kind):
    f = file_of(kind)
    assert worth(f, head_of(f)) == REUSED
    wrong = base64.b64encode(bytes(32 if kind == "SHA256" else 20)).decode()
    assert worth(f, head_of(f, **{f"Checksum{kind}": wrong})) == DISTRUSTED
    assert worth(f, head_of(f, **{f"Checksum{kind}": wrong}), recorded=True) == DISTRUSTED  # S3's word wins
    no_checksum = head_of(f)
    del no_checksum[f"Checksum{kind}"]
    assert worth(f, no_checksum, recorded=True) == READ_BACK  # our copy asks S3 for it: this one was not ours


def test_above_the_multipart_threshold_s3s_checksum_is_composite_and_not_used():
    f = file_of("SHA256")
    assert worth(f, head_of(f), multipart_threshold=4) == READ_BACK
    assert worth(f, head_of(f), recorded=True, multipart_threshold=4) == REUSED


@pytest.mark.parametrize("kind", ["md5", "SHA512"])
def test_md5_and_sha512_copies_are_reused_when_recorded_else_read_back(kind):
    f = file_of(kind)
    assert worth(f, head_of(f)) == READ_BACK
    assert worth(f, head_of(f), recorded=True) == REUSED


def test_no_checksum_and_http_copies_are_proven_by_their_size_and_metadata():
    plain = file_of(None)
    assert worth(plain, head_of(plain)) == REUSED
    http = file_of("md5", source="https://host/G1/x.nc")
    assert worth(http, head_of(http)) == REUSED  # fetch_to_s3 stores the object only once it verified


@pytest.mark.parametrize(
    "lie",
    [
        {"ContentLength": len(DATA) + 1},
        {sync_granule.EXECUTION_METADATA: "exec-other"},
        {sync_granule.SOURCE_METADATA: "s3%3A%2F%2Fprovider-b%2Fx.nc"},
        {sync_granule.CHECKSUM_METADATA: "md5%3A" + "0" * 32},
        {sync_granule.PROVIDER_METADATA: "B"},
        {sync_granule.GRANULE_METADATA: "G2"},
    ],
)
@pytest.mark.parametrize("kind", ["md5", "SHA256", None])
def test_a_copy_whose_metadata_lies_is_distrusted_even_when_recorded(kind, lie):
    f = file_of(kind)
    assert worth(f, head_of(f, **lie), recorded=True) == DISTRUSTED


def test_a_copy_without_metadata_is_distrusted():
    f = file_of("md5")
    assert worth(f, {"ContentLength": f["size"], "Metadata": {}}, recorded=True) == DISTRUSTED


# --- the temporary area ---------------------------------------------------------------------------------------


def test_temporary_keys_live_in_their_executions_area():
    key = sync_granule.temporary_key("exec-1", "a/b.nc")
    assert key.startswith(sync_granule.temporary_area("exec-1")) and key.startswith(sync_granule.TEMP_PREFIX + "/")
    assert key == sync_granule.temporary_key("exec-1", "a/b.nc")  # the same on every invocation
    assert sync_granule.temporary_area("exec-1") != sync_granule.temporary_area("exec-2")
    assert not sync_granule.temporary_key("exec-2", "a/b.nc").startswith(sync_granule.temporary_area("exec-1"))
    assert sync_granule.backup_key(key).endswith(sync_granule.BACKUP_SUFFIX)


# --- pool.run_all(stop=) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 4])
def test_run_all_stops_starting_items_and_finishes_those_in_flight(limit):
    started: list[int] = []
    asked = [0]

    def stop() -> bool:
        asked[0] += 1
        return asked[0] > 6

    def work(i: int) -> int:
        started.append(i)
        return i * 10

    with pytest.raises(PartialTransferError) as caught:
        pool.run_all(work, range(20), limit=limit, stop=stop)
    assert sorted(started) == list(range(6)) and caught.value.done == set(range(6))
    assert caught.value.results[:6] == [0, 10, 20, 30, 40, 50] and caught.value.results[6:] == [None] * 14


def test_run_all_without_stop_or_with_a_stop_that_never_fires_does_everything():
    assert pool.run_all(lambda i: i, range(50), limit=8, stop=lambda: False) == list(range(50))
