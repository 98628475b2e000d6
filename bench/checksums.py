"""Checksums: ``checksum.s3_digest`` against the coreutils tool per algorithm, peak memory, chunk-size sweep.

The object is a file of random bytes in the page cache; ``s3_digest`` reads it
through a botocore ``StreamingBody`` from a stand-in S3 client (the same
object ``get_object`` returns), so what is timed is our streaming and hashing,
not the network. The coreutils tool (``md5sum`` ...) reads the same file. Runs
alternate ours / tool; the ratio is tool time / our time (1.0 = as fast).
Peak memory is Python's traced peak during ``s3_digest`` (tracemalloc), for
several object sizes, against the tool's peak RSS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from botocore.response import StreamingBody

from .common import Row, row

MiB = 1024 * 1024
TOOLS = {"md5": "md5sum", "sha1": "sha1sum", "sha256": "sha256sum", "sha512": "sha512sum"}
SWEEP = (64 * 1024, 256 * 1024, MiB, 4 * MiB, 8 * MiB, 16 * MiB)


class _FakeS3:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get_object(self, Bucket: str, Key: str) -> dict:
        size = self.path.stat().st_size
        return {"Body": StreamingBody(self.path.open("rb"), size), "ContentLength": size}


@contextlib.contextmanager
def _s3_reading(path: Path) -> Iterator[None]:
    from cnm_ingest import aws

    original = aws.client
    aws.client = lambda service, *a, **k: _FakeS3(path)  # type: ignore[assignment]
    try:
        yield
    finally:
        aws.client = original  # type: ignore[assignment]


def _make(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        for _ in range(size // MiB):
            fh.write(os.urandom(MiB))
    path.read_bytes()  # into the page cache
    return path


def _ours(path: Path, algo: str, chunk: int | None = None) -> tuple[float, str]:
    from cnm_ingest.cnm import checksum

    with _s3_reading(path):
        t = time.perf_counter()
        digest, _ = checksum.s3_digest("bench", path.name, algo, chunk)
        return time.perf_counter() - t, digest


def _tool(path: Path, algo: str) -> tuple[float, str, int]:
    t = time.perf_counter()
    proc = subprocess.Popen([TOOLS[algo], str(path)], stdout=subprocess.PIPE)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{TOOLS[algo]} exited {proc.returncode}")
    return elapsed, out.split()[0].decode(), usage.ru_maxrss * 1024


def _peak(path: Path, algo: str, chunk: int | None = None) -> int:
    from cnm_ingest.cnm import checksum

    with _s3_reading(path):
        tracemalloc.start()
        try:
            checksum.s3_digest("bench", path.name, algo, chunk)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def run(quick: bool = False) -> list[Row]:
    from cnm_ingest.cnm import checksum

    missing = [t for t in TOOLS.values() if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"coreutils tools not found: {missing}")
    size = (32 if quick else 256) * MiB
    runs = 3 if quick else 5
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="checksums-") as tmp:
        big = _make(Path(tmp) / "object.bin", size)
        for algo, tool in TOOLS.items():
            ours, theirs = [], []
            for _ in range(runs):
                t_ours, d_ours = _ours(big, algo)
                t_tool, d_tool, _ = _tool(big, algo)
                if d_ours != d_tool:
                    raise AssertionError(f"{algo}: s3_digest {d_ours} != {tool} {d_tool}")
                ours.append(t_ours)
                theirs.append(t_tool)
            ratio = statistics.median(t / o for o, t in zip(ours, theirs, strict=False))
            rows.append(
                row(
                    f"checksum {algo} ({size // MiB} MiB, chunk {checksum.CHUNK_SIZE // 1024} KiB)",
                    size / MiB / statistics.median(ours),
                    "MiB/s",
                    f"{tool} {size / MiB / statistics.median(theirs):.0f} MiB/s",
                    ratio,
                    ">= 0.95",
                )
            )
        # Peak memory against object size (sha256; the hash state is a few hundred bytes whatever the algorithm).
        peaks = {}
        for mib in (8, 32) if quick else (16, 64, 256):
            obj = big if mib * MiB == size else _make(Path(tmp) / f"o{mib}.bin", mib * MiB)
            peaks[mib] = _peak(obj, "sha256")
            tool_rss = _tool(obj, "sha256")[2]
            rows.append(
                row(
                    f"checksum peak memory, {mib} MiB object",
                    peaks[mib] / MiB,
                    "MiB",
                    f"sha256sum RSS {tool_rss / MiB:.1f} MiB",
                    peaks[mib] / (mib * MiB),
                )
            )
        lo, hi = min(peaks), max(peaks)
        rows.append(
            row(
                f"checksum peak memory growth {lo}->{hi} MiB",
                peaks[hi] / MiB,
                "MiB",
                f"at {lo} MiB: {peaks[lo] / MiB:.1f} MiB",
                peaks[hi] / peaks[lo],
                "<= 1.1",
            )
        )
        # Chunk-size sweep: each chunk size paired with a run of the tool just before it.
        chunks = SWEEP[1:5] if quick else SWEEP
        for algo in ("md5", "sha256"):
            pairs: dict[int, list[tuple[float, float]]] = {c: [] for c in chunks}
            for _ in range(runs):
                for chunk in chunks:
                    pairs[chunk].append((_tool(big, algo)[0], _ours(big, algo, chunk)[0]))
            for chunk in chunks:
                peak = _peak(big, algo, chunk)
                ref = statistics.median(t for t, _ in pairs[chunk])
                mine = statistics.median(o for _, o in pairs[chunk])
                rows.append(
                    row(
                        f"sweep {algo} chunk {chunk // 1024} KiB (peak {peak / MiB:.1f} MiB)",
                        size / MiB / mine,
                        "MiB/s",
                        f"{TOOLS[algo]} {size / MiB / ref:.0f} MiB/s",
                        statistics.median(t / o for t, o in pairs[chunk]),
                    )
                )
    return rows
