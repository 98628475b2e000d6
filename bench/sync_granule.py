"""SyncGranule at archive scale (issue 22): wall time, S3 calls per file and bytes read per byte staged.

    python -m bench.sync_granule                  # the table (100 and 1,000 files, both paths; 10,000 parallel)
    python -m bench.sync_granule --files 100 --concurrency 1
    python -m bench.sync_granule --deadline 100 --deadline 1000   # deadline-aware: forced small invocations

The whole step (:func:`cnm_ingest.workflow.sync_granule.sync_message`: checks, copies to the
temporary area, verification, the commit and its order item) runs on in-process
moto, with :data:`LATENCY` (30 ms) added to every S3 call by a botocore
``before-call`` hook on the process's Session (the provider-read clients
included): moto answers in well under a millisecond, so the wall time is
latency-bound as it is in a region. Every S3 call is counted; the bytes read
through the function are the ``ContentLength`` of every ``GetObject`` answer
(the body is read whole to verify it).

The sequential 10,000-file run (about 35 min at 30 ms a call) is not run: its
time is extrapolated as calls x 30 ms from the 1,000-file run's calls per file,
and the row says so. Peak memory is Python's traced peak (tracemalloc) over one
``sync_message`` in a fresh subprocess, with the local AWS (moto) in a process of
its own so that its stored objects are not counted; the row beside it is the size
of the granule's message itself (JSON), which the function holds whatever it does.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

from .common import ROOT, Row, row

LATENCY = 0.030  # seconds added to every S3 call
LIMIT = 900.0  # SyncGranule's Lambda timeout, seconds
GOAL = LIMIT / 8  # issue 22: a 10,000-file granule in at most 1/8 of the limit
SOURCE, STAGE, PAYLOADS, TABLE, REGION = "bench-provider", "bench-stage", "bench-payloads", "bench-status", "us-west-2"
ALGORITHMS = {"md5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


class Meter:
    """S3 calls by operation, bytes read through GetObject, and the latency added to each call."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self.read = 0
        self.into_temporary = 0  # CopyObject / UploadPartCopy calls writing the temporary area

    def before(self, model: Any, params: dict[str, Any] | None = None, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name in ("CopyObject", "CreateMultipartUpload") and ".cnm-ingest-tmp" in str(
            (params or {}).get("url_path", "")
        ):
            self.into_temporary += 1
        if self.latency:
            time.sleep(self.latency)

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.read += int(parsed.get("ContentLength") or 0)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@contextlib.contextmanager
def _service(in_process: bool) -> Iterator[None]:
    """S3 and DynamoDB for the bench: in this process (``mock_aws``, patched as the local AWS is), or the local AWS
    (``localaws.server``, the same patched moto) in a process of its own, so that what this process allocates is
    the function's alone (the peak memory rows: moto holds every object it stores)."""
    from moto import mock_aws

    from localaws import patches

    if in_process:
        patches.apply()  # moto as the local AWS extends it: CopyObject's If-None-Match (patch 15)
        with mock_aws():
            yield
        return
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'lambda_src'}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "localaws.server", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "local AWS (moto, patches: ...) at http://127.0.0.1:PORT"
        endpoint = line.rsplit(" at ", 1)[-1].strip()
        if not endpoint.startswith("http://"):
            raise RuntimeError(f"the local AWS did not start: {line!r}")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def world(latency: float = LATENCY, *, in_process: bool = True) -> Iterator[tuple[Any, Meter]]:
    """moto with the buckets and status table SyncGranule uses; yields (an unmetered S3 client, the meter)."""
    import boto3

    from cnm_ingest import aws

    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "EXECUTIONS_TABLE": TABLE,  # the commit order item (was STATUS_TABLE before the one status store)
        "PAYLOAD_BUCKET": PAYLOADS,
    }
    saved = {k: os.environ.get(k) for k in [*env, "AWS_ENDPOINT_URL", "PROVIDER_READ_ROLE_ARN"]}
    os.environ.update(env)
    for k in ("AWS_ENDPOINT_URL", "PROVIDER_READ_ROLE_ARN"):
        os.environ.pop(k, None)
    meter = Meter(latency)
    try:
        with _service(in_process):
            aws.reset(session=True)
            plain = boto3.session.Session().client("s3", region_name=REGION)  # not metered: the bench's own calls
            for b in (SOURCE, STAGE, PAYLOADS):
                plain.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
            boto3.session.Session().client("dynamodb", region_name=REGION).create_table(
                TableName=TABLE,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
            )
            events = aws.session().events
            events.register("before-call.s3", meter.before)
            events.register("after-call.s3.GetObject", meter.after)
            yield plain, meter
            aws.reset(session=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def granule_message(plain: Any, n: int, *, size: int = 16, checksum_type: str = "md5", product: str = "G1") -> Any:
    """A workflow message (after TranslateMessage) for a granule of ``n`` files of ``size`` bytes in SOURCE."""
    from cnm_ingest.workflow import translate_message

    algo = ALGORITHMS[checksum_type]
    files = []
    for i in range(n):
        data = (f"{product}/{i:06d}:".encode() * (size // 8 + 1))[:size]
        key = f"in/{product}/f{i:06d}.nc"
        plain.put_object(Bucket=SOURCE, Key=key, Body=data)
        files.append(
            {
                "type": "data",
                "uri": f"s3://{SOURCE}/{key}",
                "name": f"f{i:06d}.nc",
                "size": size,
                "checksumType": checksum_type,
                "checksum": hashlib.new(algo, data).hexdigest(),
            }
        )
    cnm = {
        "version": "1.6.1",
        "provider": "P",
        "collection": {"name": "C", "version": "1"},
        "submissionTime": "2026-12-01T00:00:00Z",
        "identifier": f"id-{product}",
        "product": {"name": product, "dataVersion": "1", "files": files},
    }
    meta: dict[str, Any] = {
        "stack": "bench",
        "buckets": {"private": {"name": STAGE, "type": "private"}},
        "collection": {
            "name": "C",
            "version": "1",
            "url_path": "staging/{collection}",
            "duplicate_handling": "replace",
        },
        "provider": {"id": "P", "config": {"protocol": "s3", "host": SOURCE, "allowed_prefixes": ["in"]}},
        "cnm": cnm,
    }
    return {"meta": meta, "payload": {"granules": translate_message.translate(cnm, meta["collection"], {})}}


def _sync(message: dict[str, Any], concurrency: int | None) -> dict[str, Any]:
    from cnm_ingest.workflow import sync_granule

    options = {} if concurrency is None else {"concurrency": concurrency}
    return sync_granule.sync_message(message, {"name": "bench-exec"}, **options)


def _staged_count(plain: Any) -> int:
    pages = plain.get_paginator("list_objects_v2").paginate(Bucket=STAGE)
    return sum(len(p.get("Contents", [])) for p in pages)


def measure(n: int, *, concurrency: int | None, size: int = 16, checksum_type: str = "md5") -> dict[str, Any]:
    """One SyncGranule of ``n`` files: wall seconds, S3 calls (by operation), bytes read, bytes staged."""
    from cnm_ingest.workflow import payload

    with world() as (plain, meter):
        message = granule_message(plain, n, size=size, checksum_type=checksum_type)
        meter.calls.clear()
        gc.collect()
        gc.freeze()  # the emulator's stored objects are not the function's: its collector does not scan them
        started = time.perf_counter()
        out = _sync(message, concurrency)
        seconds = time.perf_counter() - started
        gc.unfreeze()
        [g] = payload.granules(out)  # offloaded to the payload bucket above a size
        assert len(g["files"]) == n and _staged_count(plain) == n, "not every file staged"
        return {
            "files": n,
            "seconds": seconds,
            "calls": meter.total,
            "by_operation": dict(meter.calls),
            "read": meter.read,
            "staged": n * size,
        }


# Forced small invocations (seconds of the invocation, deadline margin): a few continuations at each size
# The margin covers the files in flight and the commit (about 2 S3 calls per file, here ~5 ms a file: GIL-bound moto)
DEADLINE_BUDGETS = {100: (2.0, 0.8), 1_000: (14.0, 6.0), 10_000: (120.0, 55.0)}


def measure_continued(n: int, *, budget: float, margin: float, concurrency: int | None = None) -> dict[str, Any]:
    """SyncGranule of ``n`` files run as the workflow's Choice runs it, each invocation ``budget`` seconds long
    with SyncGranule's ``stop`` at ``margin`` seconds before its end: invocations, total wall seconds, copies into
    the temporary area per file, S3 calls per file."""
    from cnm_ingest.workflow import sync_granule

    options = {} if concurrency is None else {"concurrency": concurrency}
    with world() as (plain, meter):
        message = granule_message(plain, n)
        meter.calls.clear()
        started, invocations, longest = time.perf_counter(), 0, 0.0
        while True:
            invocations += 1
            began = time.perf_counter()
            remaining = lambda began=began: int((budget - (time.perf_counter() - began)) * 1000)  # noqa: E731
            stop = sync_granule.stop_when(remaining, margin)
            message = sync_granule.sync_message(message, {"name": "bench-exec"}, stop=stop, **options)
            longest = max(longest, time.perf_counter() - began)
            if sync_granule.CONTINUATION not in message["meta"]:
                break
        seconds = time.perf_counter() - started
        assert _staged_count(plain) == n, "not every file staged"
        return {
            "files": n,
            "invocations": invocations,
            "seconds": seconds,
            "longest": longest,
            "copies_per_file": meter.into_temporary / n,
            "calls_per_file": meter.total / n,
        }


def deadline_rows(sizes: tuple[int, ...], concurrency: int | None = None) -> list[Row]:
    """The deadline-aware rows: one granule per size under forced small invocations (:data:`DEADLINE_BUDGETS`)."""
    rows: list[Row] = []
    for n in sizes:
        budget, margin = DEADLINE_BUDGETS.get(n, (max(1.0, n / 250), max(0.3, n / 1000)))
        got = measure_continued(n, budget=budget, margin=margin, concurrency=concurrency)
        what = f"{n:,} files, {budget:g} s invocations (stop at {margin:g} s left)"
        rows.append(row(f"sync_granule deadline-aware, {what}: invocations", got["invocations"], "", "-", None))
        rows.append(row(f"  total wall, {what}", got["seconds"], "s", f"{LIMIT:.0f} s", got["seconds"] / LIMIT))
        rows.append(
            row(f"  longest invocation, {what}", got["longest"], "s", f"{budget:g} s", got["longest"] / budget, "<= 1")
        )
        rows.append(
            row(
                f"  copies into the temporary area per file, {what}",
                got["copies_per_file"],
                "",
                "1.0",
                got["copies_per_file"],
                "<= 1.0",
            )
        )
        rows.append(row(f"  S3 calls per file, {what}", got["calls_per_file"], "calls", "-", None))
        print(
            f"# deadline {n:,} files: {got['invocations']} invocations, {got['seconds']:.1f} s "
            f"(longest {got['longest']:.1f} s of {budget:g}), "
            f"{got['copies_per_file']:.2f} copies/file, {got['calls_per_file']:.2f} S3 calls/file",
            file=sys.stderr,
        )
    return rows


def _peak(n: int, size: int, concurrency: int | None) -> tuple[int, int, int]:
    """Traced peak bytes of one sync_message in a fresh subprocess (no latency)."""
    code = (
        "import json,sys; from bench import sync_granule as s; "
        f"print(json.dumps(s.peak_here({n}, {size}, {concurrency!r})))"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'lambda_src'}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    peak, message, kept = json.loads(out.stdout.strip().splitlines()[-1])
    return int(peak), int(message), int(kept)


def peak_here(n: int, size: int, concurrency: int | None) -> tuple[int, int, int]:
    """``(traced peak bytes, the message's JSON bytes, the bytes still held after it: the answer)`` of one
    ``sync_message`` of ``n`` files, the local AWS in another process (no latency), after a first granule has
    built the clients (loaded once a process)."""
    with world(latency=0, in_process=False) as (plain, _):
        _sync(granule_message(plain, 1, size=size, product="WARM"), concurrency)  # clients and models: once a process
        message = granule_message(plain, n, size=size)
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        answer = _sync(message, concurrency)
        kept, peak = (v - base for v in tracemalloc.get_traced_memory())  # kept: the answer, still referenced
        tracemalloc.stop()
        del answer
        return peak, len(json.dumps(message)), kept


def peak_large_file(gib: int = 16, checksum_type: str = "md5") -> tuple[int, float]:
    """``(traced peak bytes, seconds)`` of verifying a ``gib`` GiB file through the function, generated (no
    emulator can hold it): the copy itself is server-side (``transfer.plan.plan_copy``: UploadPartCopy, no byte
    through the function), and the read-back is :func:`cnm_ingest.cnm.checksum.digest_chunks` over chunks of
    :data:`~cnm_ingest.cnm.checksum.CHUNK_SIZE`, each a new bytes object as botocore's body gives them."""
    from cnm_ingest.cnm import checksum

    size, chunk = gib * 2**30, checksum.CHUNK_SIZE
    block = os.urandom(chunk)

    def body() -> Iterator[bytes]:
        for _ in range(size // chunk):
            yield bytes(bytearray(block))  # a fresh object per chunk

    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    _, read = checksum.digest_chunks(body(), checksum.algorithm(checksum_type))
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert read == size, (read, size)
    return peak, seconds


def run(
    quick: bool = False,
    concurrency: int | None = None,
    sizes: tuple[int, ...] | None = None,
    checksum_type: str = "md5",
) -> list[Row]:
    """The rows: wall time against the limit at each size, calls per file, bytes read per byte staged."""
    rows: list[Row] = []
    sizes = sizes or ((100,) if quick else (100, 1_000))
    per_file = 0.0
    for n in sizes:
        got = measure(n, concurrency=concurrency, checksum_type=checksum_type)
        per_file = got["calls"] / n
        label = "sequential" if concurrency == 1 else f"concurrency {concurrency or 'default'}"
        label += f", {checksum_type}"
        rows.append(
            row(
                f"sync_granule {n:,} files, 30 ms/S3 call ({label})",
                got["seconds"],
                "s",
                f"{LIMIT:.0f} s",
                got["seconds"] / LIMIT,
                "<= 0.125",
            )
        )
        ops = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(got["by_operation"].items()))
        rows.append(row(f"S3 calls per file, {n:,} files ({ops})", per_file, "calls", "-", None))
        print(f"# {n:,} files: {got['seconds']:.1f} s, {per_file:.2f} S3 calls/file ({ops})", file=sys.stderr)
    rows.append(
        row(
            "sync_granule 10,000 files sequential: EXTRAPOLATED (calls/file x 10,000 x 30 ms, not run)",
            per_file * 10_000 * LATENCY,
            "s",
            f"{LIMIT:.0f} s",
            per_file * 10_000 * LATENCY / LIMIT,
            "<= 0.125",
        )
    )
    for kind in ALGORITHMS:
        got = measure(4 if quick else 20, concurrency=concurrency, size=256 * 1024, checksum_type=kind)
        rows.append(row(f"bytes read per byte staged, {kind}", got["read"] / got["staged"], "B/B", "-", None))
    return rows


def main(argv: list[str] | None = None) -> int:
    from .run import table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, action="append", help="granule sizes to run (repeatable)")
    parser.add_argument("--concurrency", type=int, default=None, help="transfers at once (1 = sequential)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--checksum", default="md5", choices=sorted(ALGORITHMS), help="the files' checksumType")
    parser.add_argument(
        "--peak", action="store_true", help="also the traced peak memory at 1 and 10,000 files, and a 16 GiB file"
    )
    parser.add_argument(
        "--deadline", type=int, action="append", help="deadline-aware rows only, at these sizes (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.deadline:
        print(table(deadline_rows(tuple(args.deadline), args.concurrency)))
        return 0
    rows = run(args.quick, args.concurrency, tuple(args.files) if args.files else None, args.checksum)
    if args.peak:
        for n in (1, 10_000):
            peak, message, kept = _peak(n, 16, args.concurrency)
            rows.append(row(f"peak traced memory, {n:,} files of 16 B", peak / 2**20, "MiB", "-", None))
            rows.append(row(f"  the answer (the message it returns), {n:,} files", kept / 2**20, "MiB", "-", None))
            rows.append(row(f"  peak beyond the answer, {n:,} files", (peak - kept) / 2**20, "MiB", "-", None))
            rows.append(row(f"  the message's JSON, {n:,} files", message / 2**20, "MiB", "-", None))
        peak, seconds = peak_large_file(16)
        rows.append(
            row(
                f"peak traced memory, one 16 GiB file read back (MD5, generated; {seconds:.0f} s)",
                peak / 2**20,
                "MiB",
                "-",
                None,
            )
        )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
