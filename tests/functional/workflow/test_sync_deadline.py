"""SyncGranule deadline-aware (issue 22), on in-process moto: once ``stop()`` says the invocation's time is nearly
out, SyncGranule returns ``meta.sync_continuation`` and the next invocation goes on from there. Whatever the
interruptions (a stop after k files, several times; a crash in a continued run and its retry), the granule ends
with the bytes, checksums and metadata an undisturbed run stages, each file is copied into the temporary area
exactly once (counted per temporary key, duplicates kept), and no temporary object is left (the fixture's
teardown lists every bucket and open multipart upload).

Hostile: temporary copies whose metadata lies or that another execution wrote are not trusted; a config changed
between invocations does not reuse copies made for another target (and deletes them); another execution's
temporary area is left alone; two executions of one granule still commit in order while one is continued; an
invocation without progress, or past SYNC_MAX_INVOCATIONS, ends in SyncUnfinishedError with nothing left."""

from __future__ import annotations

import base64
import json
import math
from collections import Counter

import pytest

from cnm_ingest import aws as aws_mod
from cnm_ingest.errors import ContractError, SupersededError, SyncUnfinishedError, TransientError, error_code_for
from cnm_ingest.transfer import commit_order
from cnm_ingest.workflow import contract_check, contract_validators, payload, sync_granule
from tests.functional.workflow.test_staging_commit import STAGE, TABLE, A, World, msg, world  # noqa: F401
from tests.functional.workflow.test_sync_scale import data_of, files_of, on_call, snapshot, staged_answer

N = 40


@pytest.fixture
def w(world: World) -> World:  # noqa: F811 - test_staging_commit's world: moto, buckets, table, counted calls
    return world


class Budget:
    """``stop()`` of an invocation whose time runs out after ``k`` files have started (it is asked before each).

    The files an earlier invocation verified come first and take almost no time (a HEAD): ``Budget(done + k)``
    is an invocation with time for k new files after the ``done`` ones."""

    def __init__(self, k: int) -> None:
        self.k, self.asked = k, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked > self.k


def into_temporary(w: World) -> list[str]:
    """The temporary keys CopyObject wrote (every call, duplicates kept)."""
    return [p["Key"] for op, p in w.sent if op == "CopyObject" and p["Key"].startswith(sync_granule.TEMP_PREFIX)]


def run_until_done(message: dict, execution: dict, k: int, **kw) -> tuple[dict, list[dict]]:
    """SyncGranule invoked as the state machine's Choice does, each invocation stopping after k files."""
    markers: list[dict] = []
    for _ in range(100):
        done = markers[-1]["done"] if markers else 0
        message = sync_granule.sync_message(message, execution, stop=Budget(done + k), **kw)
        marker = message["meta"].get(sync_granule.CONTINUATION)
        if marker is None:
            return message, markers
        markers.append(marker)
    raise AssertionError("no end")


def reference(w: World, files: list[dict]) -> dict:
    """The undisturbed run's staged objects (url_path ref/, an execution ordered before exec-1)."""
    m, e = msg(files, url_path="ref/{collection}", execution="a-ref")
    sync_granule.sync_message(m, e)
    return {k: (d, {**md, "cnm-ingest-execution": "exec-1"}) for k, (d, md) in snapshot(w, "ref").items()}


@pytest.mark.parametrize("kind", ["md5", "SHA256", "SHA512"])
def test_stopping_after_k_files_continues_and_stages_what_an_undisturbed_run_stages(w, kind):
    files = files_of(w, N, kind)
    expected = reference(w, files)
    read = []
    aws_mod.session().events.register(
        "after-call.s3.GetObject", lambda parsed, **_: read.append(parsed["ContentLength"])
    )
    aws_mod.reset()
    w.calls.clear()
    w.sent.clear()
    m, e = msg(files, url_path="run/{collection}")
    out, markers = run_until_done(m, e, k=12, concurrency=4)
    assert [(x["invocations"], x["done"], x["files"], x["granules_committed"]) for x in markers] == [
        (1, 12, N, 0),
        (2, 24, N, 0),
        (3, 36, N, 0),
    ]  # then the 4th invocation stages the last 4 and commits: ceil(40 / 12) invocations
    assert len(markers) + 1 == math.ceil(N / 12)
    copies = into_temporary(w)
    assert len(copies) == N and len(set(copies)) == N  # each file copied into the temporary area exactly once
    assert w.calls["s3:CopyObject"] == 2 * N  # and once into place
    # md5 / SHA-512 are read back once when first verified, never again (the marker records them); S3 computes SHA-256
    assert sum(read) == (0 if kind == "SHA256" else sum(f["size"] for f in files))
    assert snapshot(w, "run") == expected
    assert sync_granule.CONTINUATION not in out["meta"]
    assert [f["checksum"] for f in staged_answer(out)] == [f["checksum"] for f in files]
    assert all(w.read(STAGE, f["key"]) == data_of(i) for i, f in enumerate(staged_answer(out)))


def test_the_marker_is_small_for_10000_files():
    verified = frozenset(range(0, 10_000, 3))  # a scattered set: the worst case for compression
    marker = sync_granule.Continuation(3, 0, verified, "t" * 32, ("stage",), len(verified), 10_000).marker()
    assert len(json.dumps(marker)) < 2_000
    assert sync_granule.Continuation.read({sync_granule.CONTINUATION: marker}, 1).verified == verified


def test_a_crash_in_a_continued_run_then_the_retry_copies_each_file_once(w, monkeypatch):
    """Invocation 1 stops after 12 files; invocation 2 is killed at its 9th copy into the temporary area (the
    copies in flight finish, nothing is cleaned up); the workflow's retry runs invocation 2's input again. The
    killed call never reached S3 and the copies in flight did: the retry copies only the files without a temporary
    copy (the killed one among them), and reuses the rest (md5: read back), so each key is written exactly once."""
    files = files_of(w, N)
    expected = reference(w, files)
    w.calls.clear()
    w.sent.clear()
    m, e = msg(files, url_path="run/{collection}")
    first = sync_granule.sync_message(m, e, stop=Budget(12), concurrency=4)
    assert first["meta"][sync_granule.CONTINUATION]["done"] == 12

    class Killed(BaseException):
        """The Lambda runtime killing the invocation: no cleanup of ours runs."""

    killed = []

    def kill(params, n):
        if n == 9:
            killed.append(params["url_path"])
            raise Killed()

    with monkeypatch.context() as patched:
        patched.setattr(sync_granule, "_discard", lambda files: None)
        patched.setattr(commit_order.TableGate, "abandon", lambda self: None)
        on_call(w, "CopyObject", kill)
        with pytest.raises(Killed):
            sync_granule.sync_message(first, e, stop=Budget(12 + 20), concurrency=4)
    aws_mod.reset(session=True)  # the retry is a new invocation: new clients, without the killing hook
    aws_mod.session().events.register("before-parameter-build", w.count)
    out = sync_granule.sync_message(first, e, concurrency=4)  # the Retry: the same input
    copies = Counter(into_temporary(w))  # requests built, the killed one included (it never reached S3)
    [twice] = [key for key, n in copies.items() if n == 2]
    assert len(copies) == N and set(copies.values()) == {1, 2} and killed[0].endswith(twice.rsplit("/", 1)[1])
    assert snapshot(w, "run") == expected and sync_granule.CONTINUATION not in out["meta"]


# --- hostile --------------------------------------------------------------------------------------------------


def _tamper(w: World, key: str, **change) -> None:
    found = w.s3.head_object(Bucket=STAGE, Key=key)
    body = change.pop("body", None) or w.read(STAGE, key)
    w.s3.put_object(Bucket=STAGE, Key=key, Body=body, Metadata={**found["Metadata"], **change})


@pytest.mark.parametrize(
    "lie",
    [
        {"cnm-ingest-checksum": "md5%3A" + "0" * 32},  # says another checksum
        {"body": b"x"},  # another size
        {"cnm-ingest-execution": "exec-other"},  # another execution's copy at this key
        {"cnm-ingest-source": "s3%3A%2F%2Fprovider-b%2Fother.nc"},  # another source
    ],
    ids=["checksum", "size", "execution", "source"],
)
def test_a_temporary_copy_whose_metadata_lies_is_copied_again(w, lie):
    files = files_of(w, 10)
    m, e = msg(files)
    first = sync_granule.sync_message(m, e, stop=Budget(4), concurrency=1)
    done = sorted(k for k in w.keys() if k.startswith(sync_granule.TEMP_PREFIX))  # noqa: SIM118 - World.keys()
    assert len(done) == 4
    target = sync_granule.temporary_key("exec-1", f"file-staging/st/C__1/{files[2]['name']}")
    assert target in done
    _tamper(w, target, **lie)
    w.sent.clear()
    out = sync_granule.sync_message(first, e, concurrency=1)
    assert sorted(into_temporary(w)) == sorted({target} | {c for c in into_temporary(w) if c not in done})
    assert into_temporary(w).count(target) == 1 and len(into_temporary(w)) == 10 - 4 + 1
    assert [w.read(STAGE, f["key"]) for f in staged_answer(out)] == [data_of(i) for i in range(10)]


def test_a_sha256_copy_whose_bytes_changed_is_not_trusted_even_when_recorded(w):
    files = files_of(w, 6, "SHA256")
    m, e = msg(files)
    first = sync_granule.sync_message(m, e, stop=Budget(3), concurrency=1)
    target = sync_granule.temporary_key("exec-1", f"file-staging/st/C__1/{files[1]['name']}")
    same_size = bytes(len(data_of(1)))
    _tamper(w, target, body=same_size)  # metadata intact, S3 keeps no SHA-256 of it: read back, refused, copied
    w.sent.clear()
    out = sync_granule.sync_message(first, e, concurrency=1)
    assert into_temporary(w).count(target) == 1 and len(into_temporary(w)) == 3 + 1
    assert w.read(STAGE, staged_answer(out)[1]["key"]) == data_of(1)


def test_a_config_changed_between_invocations_does_not_reuse_copies_for_another_target(w):
    files = files_of(w, 10)
    m, e = msg(files, url_path="old/{collection}")
    first = sync_granule.sync_message(m, e, stop=Budget(5), concurrency=1)
    old = sorted(k for k in w.keys() if k.startswith(sync_granule.TEMP_PREFIX))  # noqa: SIM118 - World.keys()
    assert len(old) == 5
    first["meta"]["collection"]["url_path"] = "new/{collection}"  # e.g. the message edited between invocations
    w.sent.clear()
    out = sync_granule.sync_message(first, e, concurrency=1)
    assert not set(into_temporary(w)) & set(old) and len(into_temporary(w)) == 10  # all copied for the new target
    assert not [k for k in w.keys() if k.startswith("old/")]  # noqa: SIM118 - World.keys()
    assert [f["key"] for f in staged_answer(out)] == [f"new/C__1/{f['name']}" for f in files]
    # the copies made for the old target are gone (the fixture: no temporary object left)


def test_another_executions_temporary_area_is_left_alone(w):
    files = files_of(w, 4)
    theirs = sync_granule.temporary_key("exec-2", "file-staging/st/C__1/f00000.nc")
    w.s3.put_object(Bucket=STAGE, Key=theirs, Body=b"theirs")
    sync_granule.sync_message(*msg(files), stop=Budget(100))
    assert w.read(STAGE, theirs) == b"theirs"
    w.s3.delete_object(Bucket=STAGE, Key=theirs)


def test_two_executions_still_commit_in_order_while_one_is_continued(w):
    files = files_of(w, 8)
    later_msg, later_exec = msg(files, execution="exec-late", submitted="2024-05-02T00:00:00Z")
    paused = sync_granule.sync_message(later_msg, later_exec, stop=Budget(3))
    assert paused["meta"][sync_granule.CONTINUATION]["done"] == 3
    earlier = msg(files, execution="exec-early", submitted="2024-05-01T00:00:00Z")
    with pytest.raises(TransientError):  # the later CNM is pending (continued): the earlier one waits
        sync_granule.sync_message(*earlier)
    out = sync_granule.sync_message(paused, later_exec)
    assert sync_granule.CONTINUATION not in out["meta"]
    with pytest.raises(SupersededError):
        sync_granule.sync_message(*earlier)
    [item] = w.ddb.scan(TableName=TABLE)["Items"]
    state = json.loads(item["state"]["S"])
    assert state["committed_execution"] == "exec-late" and not state.get("pending")


def test_an_invocation_without_progress_fails_the_granule_and_leaves_nothing(w):
    files = files_of(w, 6)
    m, e = msg(files)
    first = sync_granule.sync_message(m, e, stop=Budget(2))
    with pytest.raises(SyncUnfinishedError) as caught:
        sync_granule.sync_message(first, e, stop=Budget(0))  # the deadline passed before any new file
    assert "no new file" in str(caught.value) and error_code_for("SyncUnfinishedError") == "TRANSFER_ERROR"
    assert w.keys() == []
    [item] = w.ddb.scan(TableName=TABLE)["Items"]
    assert not json.loads(item["state"]["S"]).get("pending")  # withdrawn: another execution need not wait


def test_the_bound_on_invocations_ends_the_loop(w, monkeypatch):
    monkeypatch.setenv("SYNC_MAX_INVOCATIONS", "3")
    files = files_of(w, 10)
    m, e = msg(files)
    for invocation in (1, 2):
        m = sync_granule.sync_message(m, e, stop=Budget(2 * invocation))
        assert m["meta"][sync_granule.CONTINUATION]["invocations"] == invocation
    with pytest.raises(SyncUnfinishedError) as caught:
        sync_granule.sync_message(m, e, stop=Budget(4 + 2))
    assert "SYNC_MAX_INVOCATIONS is 3" in str(caught.value) and w.keys() == []


@pytest.mark.parametrize(
    "marker",
    [
        {"invocations": -1, "granules_committed": 0, "done": 0, "files": 1, "verified": "", "targets": ""},
        {"invocations": 1, "granules_committed": 5, "done": 0, "files": 1, "verified": "", "targets": ""},
        {"invocations": 1, "granules_committed": 0, "done": 0, "files": 1, "verified": "not base64!", "targets": ""},
        {"invocations": 1},
        "text",
    ],
)
def test_a_malformed_marker_is_refused_before_any_s3_call(w, marker):
    m, e = msg(files_of(w, 2))
    m["meta"][sync_granule.CONTINUATION] = marker
    w.calls.clear()
    with pytest.raises(Exception) as caught:
        sync_granule.sync_message(m, e)
    assert type(caught.value).__name__ == "CnmValidationError" and w.s3_calls() == 0


def test_two_granules_the_first_committed_is_not_copied_again(w):
    files = files_of(w, 6)
    m, e = msg(files)
    [granule] = payload.granules(m)
    second = {**granule, "granuleId": "G2", "files": [dict(f, name=f"b{f['name']}") for f in granule["files"]]}
    m = payload.set_part(m, "payload", "granules", [granule, second])
    w.sent.clear()
    paused = sync_granule.sync_message(m, e, stop=Budget(8), concurrency=1)
    marker = paused["meta"][sync_granule.CONTINUATION]
    # 6 asks for the first granule's files, 1 before its commit, then 1 file of the second
    assert (marker["granules_committed"], marker["done"], marker["files"]) == (1, 6 + 1, 12)
    out = sync_granule.sync_message(paused, e, concurrency=1)
    copies = into_temporary(w)
    assert len(copies) == 12 and len(set(copies)) == 12
    staged = [f for g in payload.granules(out) for f in g["files"]]
    assert [w.read(STAGE, f["key"]) for f in staged] == [data_of(i) for i in range(6)] * 2


def test_the_handler_stops_at_its_margin_and_the_next_invocation_finishes(w, monkeypatch):
    from handlers import sync_granule as handler_module

    from tests.conftest import FakeLambdaContext

    monkeypatch.setenv("SYNC_DEADLINE_MARGIN_SECONDS", "120")
    files = files_of(w, 10)
    m, e = msg(files)
    m["cumulus_meta"] = {
        "state_machine": "arn:aws:states:us-west-2:123456789012:stateMachine:st",
        "execution_name": "exec-1",
    }
    m["meta"]["rule"] = {"name": "r"}  # what the consumer's message has besides test_staging_commit's msg()

    class Context(FakeLambdaContext):
        """Lambda's clock: 300 s left for the first 6 asks (the invocation's start for stop_when, the provider-read
        deadline's and 4 files'), then 115 s (under the 120 s margin)."""

        asked = 0

        def get_remaining_time_in_millis(self) -> int:
            Context.asked += 1
            return 300_000 if Context.asked <= 6 else 115_000

    monkeypatch.setenv("SYNC_CONCURRENCY", "1")
    first = handler_module.handler({"message": m, "execution": e}, Context())
    assert first["meta"][sync_granule.CONTINUATION]["done"] == 4
    contract_check.validate("sync_granule", "output", first)  # checked as the next invocation's input
    contract_validators.FACTORIES[("sync_granule", "input")]()(first)
    Context.asked = -100
    out = handler_module.handler({"message": first, "execution": e}, Context())
    assert sync_granule.CONTINUATION not in out["meta"]
    contract_validators.FACTORIES[("sync_granule", "output")]()(out)
    unstaged = {**first, "meta": {k: v for k, v in first["meta"].items() if k != sync_granule.CONTINUATION}}
    with pytest.raises(ContractError):  # without the marker, unstaged granules are not SyncGranule's output
        contract_check.validate("sync_granule", "output", unstaged)
    assert [w.read(STAGE, f["key"]) for f in staged_answer(out)] == [data_of(i) for i in range(10)]
    assert base64.b64decode(first["meta"][sync_granule.CONTINUATION]["verified"])
