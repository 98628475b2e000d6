"""How one S3 object is copied: one CopyObject, or a multipart copy sized to S3's limits and the task's time.

:func:`plan_copy` is a plain function: below :data:`MULTIPART_THRESHOLD`
(5 GiB, the most one CopyObject copies) a single copy; at and above it a
multipart copy (UploadPartCopy) whose part size is the preferred
:data:`PART_SIZE`, raised when the object needs more than :data:`MAX_PARTS`
parts at that size, never below S3's :data:`MIN_PART_SIZE` nor above its
:data:`MAX_PART_SIZE`. The parts are copied :data:`PART_STREAMS` at a time;
:meth:`CopyPlan.seconds` projects the time at a given rate per part stream
(S3 copies inside the region; nothing passes through the function).

A 100 GiB object: 200 parts of 512 MiB, 16 at a time, 13 rounds of about
5.4 s at 100 MB/s per part stream: about 70 s, within SyncGranule's 900 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

MULTIPART_THRESHOLD = 5 * 1024**3  # CopyObject copies at most 5 GiB
PART_SIZE = 512 * 1024**2
MIN_PART_SIZE = 5 * 1024**2  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * 1024**4  # S3's largest object (5 TiB)
PART_STREAMS = 16  # part copies at once for one object
STREAM_RATE = 100e6  # bytes per second per part stream, for the projection


@dataclass(frozen=True)
class CopyPlan:
    size: int
    multipart: bool
    part_size: int
    parts: int
    streams: int

    def ranges(self) -> Iterator[tuple[int, int, int]]:
        """``(part number, first byte, last byte)`` of each part (inclusive, as CopySourceRange)."""
        for number, start in enumerate(range(0, self.size, self.part_size), start=1):
            yield number, start, min(start + self.part_size, self.size) - 1

    def seconds(self, rate: float = STREAM_RATE) -> float:
        """Projected copy time at ``rate`` bytes/s per part stream (rounds of ``streams`` parts)."""
        if not self.multipart:
            return self.size / rate
        return math.ceil(self.parts / self.streams) * self.part_size / rate


def plan_copy(
    size: int,
    *,
    threshold: int | None = None,
    part_size: int | None = None,
    streams: int = PART_STREAMS,
) -> CopyPlan:
    """The copy of an object of ``size`` bytes (see the module docstring); ValueError beyond S3's limits."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > MAX_OBJECT_SIZE:
        raise ValueError(f"an S3 object is 0 to {MAX_OBJECT_SIZE} bytes, not {size!r}")
    if streams < 1:
        raise ValueError(f"streams must be at least 1, not {streams}")
    limit = MULTIPART_THRESHOLD if threshold is None else threshold
    if size < limit:
        return CopyPlan(size, False, size, 1, 1)
    part = min(MAX_PART_SIZE, max(part_size or PART_SIZE, MIN_PART_SIZE, math.ceil(size / MAX_PARTS)))
    parts = max(1, math.ceil(size / part))
    return CopyPlan(size, True, part, parts, min(streams, parts))
