"""Reading a failed batch's records back from the stream (for hydrate).

The ESM on-failure record names a shard, a sequence-number range and the
batch size but carries no data. :func:`read_range` starts a shard iterator AT
the first sequence number and follows ``NextShardIterator`` until it is past
the last one (sequence numbers compared as integers), has ``batch_size``
records, or runs out of calls. When the first sequence number was trimmed
from the stream (GetShardIterator refuses it), reading starts at
TRIM_HORIZON instead, so the records still there are read. The result is
complete only when it holds ``batch_size`` records (when known): a range
trimmed in front is never reported complete. :func:`missing` names what is
missing. Throttling and an expired iterator are retried with backoff
(``sleep`` is injectable for tests); a closed shard ends the read. A stream
or shard that no longer exists gives a result with no records and a reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from cnm_ingest import aws, dlq, idempotency
from cnm_ingest.consumer import consume

DEFAULT_MAX_CALLS = 100
GONE_CODES = frozenset({"ResourceNotFoundException", "InvalidArgumentException"})
RETRY_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ExpiredIteratorException", "LimitExceededException"}
)


@dataclass
class ReadResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False
    reached_end: bool = False  # the read got to the end of the range (whatever is missing is in front)
    reason: str = ""
    calls: int = 0


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _iterator(stream_arn: str, shard_id: str, kind: str, sequence: str | None = None) -> str:
    at = {} if sequence is None else {"StartingSequenceNumber": sequence}
    return aws.client("kinesis").get_shard_iterator(
        StreamARN=stream_arn, ShardId=shard_id, ShardIteratorType=kind, **at
    )["ShardIterator"]


def as_record(raw: dict[str, Any], shard_id: str, stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the envelope's ``record`` shape (data base64)."""
    arrival = raw.get("ApproximateArrivalTimestamp")
    return {
        "data": base64.b64encode(raw["Data"]).decode("ascii"),
        "sequenceNumber": raw["SequenceNumber"],
        "partitionKey": raw.get("PartitionKey", ""),
        "shardId": shard_id,
        "streamArn": stream_arn,
        "approximateArrivalTimestamp": arrival.timestamp() if isinstance(arrival, dt.datetime) else arrival,
    }


def missing(read: ReadResult, start: str, end: str, batch_size: int | None) -> dict[str, Any] | None:
    """What of ``[start, end]`` was not read: ``{"count", "ranges": [{"from", "to"}]}`` (inclusive
    sequence numbers; count None when the batch size is unknown), or None when nothing is missing."""
    got = len(read.records)
    if read.complete and (not batch_size or got >= batch_size):
        return None
    count = max(0, batch_size - got) if batch_size else None
    seqs = [int(r["sequenceNumber"]) for r in read.records]
    if not seqs:
        ranges = [{"from": start, "to": end}]
    else:
        ranges = []
        if seqs[0] > int(start):
            ranges.append({"from": start, "to": str(seqs[0] - 1)})
        if seqs[-1] < int(end) and not read.reached_end:
            ranges.append({"from": str(seqs[-1] + 1), "to": end})
        if not ranges:  # a hole inside what was read (not how Kinesis trims): name the whole range
            ranges = [{"from": start, "to": end}]
    return {"count": count, "ranges": ranges}


@dataclass
class _RangeReader:
    """The state of one :func:`read_range`: where it is in the shard and what it has read so far."""

    stream_arn: str
    shard_id: str
    start: str
    end: str
    batch_size: int | None
    limit: int | None
    sleep: Callable[[float], None]
    kinesis: Any
    result: ReadResult = field(default_factory=ReadResult)
    last_seen: str | None = None  # the sequence number of the last record read (in the range or before it)
    iterator: str | None = None
    failures: int = 0  # failed calls in a row (the backoff's exponent)
    from_horizon: bool = False  # the first sequence number was trimmed: start at TRIM_HORIZON
    first: int = field(init=False)
    last: int = field(init=False)

    def __post_init__(self) -> None:
        self.first, self.last = int(self.start), int(self.end)  # sequence numbers compare as integers

    def step(self) -> ReadResult | None:
        """One GetRecords call (and the GetShardIterator it needs): the result when the read is over, else None."""
        try:
            page = self._get_records()
        except ClientError as exc:
            return self._failed(exc)
        self.failures = 0
        return self._take(page)

    def _get_records(self) -> dict[str, Any]:
        if self.iterator is None:
            self.iterator = self._new_iterator()
        params: dict[str, Any] = {"ShardIterator": self.iterator, "StreamARN": self.stream_arn}
        if self.limit:
            params["Limit"] = self.limit
        page: dict[str, Any] = self.kinesis.get_records(**params)
        return page

    def _new_iterator(self) -> str:
        if self.last_seen:
            return _iterator(self.stream_arn, self.shard_id, "AFTER_SEQUENCE_NUMBER", self.last_seen)
        if self.from_horizon:
            return _iterator(self.stream_arn, self.shard_id, "TRIM_HORIZON")
        return _iterator(self.stream_arn, self.shard_id, "AT_SEQUENCE_NUMBER", self.start)

    def _failed(self, exc: ClientError) -> ReadResult | None:
        """Start over at TRIM_HORIZON, give up (stream or shard gone), or back off before the next call."""
        code = _code(exc)
        if (
            code == "InvalidArgumentException"
            and self.iterator is None
            and not self.last_seen
            and not self.from_horizon
        ):
            self.from_horizon = True  # the first sequence number was trimmed: read what is left of the range
            return None
        if code in GONE_CODES:
            self.result.reason = f"{code}: {exc.response.get('Error', {}).get('Message', '')}".strip()
            return self.result
        if code not in RETRY_CODES and not aws.is_transient(exc):
            raise exc
        if code == "ExpiredIteratorException":
            self.iterator = None
        self.failures += 1
        self.sleep(min(0.1 * 2**self.failures, 5.0))
        return None

    def _take(self, page: dict[str, Any]) -> ReadResult | None:
        """Keep the page's records in the range; the result when the range, the batch or the shard ends."""
        for raw in page.get("Records", []):
            seq = int(raw["SequenceNumber"])
            if seq > self.last:
                return self._finish()
            self.last_seen = raw["SequenceNumber"]
            if seq >= self.first:
                self.result.records.append(as_record(raw, self.shard_id, self.stream_arn))
                if seq == self.last or self._full():
                    return self._finish()
        self.iterator = page.get("NextShardIterator")
        if self.iterator is None:
            self.result.reason = "the shard is closed and its records end before the batch's last sequence number"
            return self.result
        if not page.get("Records") and page.get("MillisBehindLatest", 0) == 0:
            self.result.reason = "reached the tip of the shard before the batch's last sequence number"
            return self.result
        return None

    def _full(self) -> bool:
        size = self.batch_size
        return size is not None and size != 0 and len(self.result.records) >= size

    def _finish(self) -> ReadResult:
        result = self.result
        result.reached_end = True
        result.complete = not self.batch_size or self._full()
        if not result.complete:
            result.reason = (
                f"{len(result.records)} of {self.batch_size} records are in the stream"
                " (the others were trimmed or are gone)"
            )
        return result


def read_range(
    stream_arn: str,
    shard_id: str,
    start: str,
    end: str,
    batch_size: int | None = None,
    *,
    max_calls: int = DEFAULT_MAX_CALLS,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReadResult:
    """The records of ``shard_id`` with ``start <= sequence number <= end`` (at most ``batch_size``)."""
    reader = _RangeReader(stream_arn, shard_id, start, end, batch_size, limit, sleep, aws.client("kinesis"))
    result = reader.result
    while result.calls < max_calls:
        result.calls += 1
        done = reader.step()
        if done is not None:
            return done
    result.reason = f"gave up after {result.calls} GetRecords calls (MAX_GET_RECORDS_CALLS)"
    return result


log = Logger(child=True)
SOURCE = "hydrate"
GAP_KEY = "[streamArn, shardId, startSequenceNumber, endSequenceNumber]"
# Tests replace this to avoid real waiting on throttling backoff.
sleep: Callable[[float], None] = time.sleep


def _context(failure: dict[str, Any]) -> dict[str, Any]:
    return {k: failure.get(k) for k in ("requestContext", "responseContext", "version", "timestamp")}


def record_envelope(failure: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The DLQ envelope of one record read back from a failed batch."""
    info = failure["KinesisBatchInfo"]
    request = failure.get("requestContext") or {}
    condition = request.get("condition") or "BatchFailed"
    reason = (
        f"the batch failed in {request.get('functionArn', 'the consumer')} ({condition}, "
        f"{request.get('approximateInvokeCount', '?')} invocations); record read back from the stream"
    )
    return dlq.envelope(SOURCE, reason, condition, record, batch=info, failure_context=_context(failure))


def gap_envelope(failure: dict[str, Any], read: ReadResult) -> dict[str, Any] | None:
    """The one gap entry for what could not be read back, or None when nothing is missing."""
    info = failure["KinesisBatchInfo"]
    gap = missing(read, info["startSequenceNumber"], info["endSequenceNumber"], info.get("batchSize"))
    if gap is None:
        return None
    request = failure.get("requestContext") or {}
    condition = request.get("condition") or "BatchFailed"
    ranges = "; ".join(f"{r['from']}..{r['to']}" for r in gap["ranges"])
    reason = (
        f"the batch failed in {request.get('functionArn', 'the consumer')} ({condition}); "
        f"only {len(read.records)} of {info.get('batchSize', '?')} records could be read back from "
        f"shard {info.get('shardId')}: {gap['count']} missing in sequence range(s) {ranges} "
        f"(expired from the stream?): {read.reason}"
    )
    env = dlq.envelope(SOURCE, reason, "RecordsNotReadBack", None, batch=info, failure_context=_context(failure))
    env["missing"] = gap
    return env


def park_batch(failure: dict[str, Any], run: consume.Run, *, max_calls: int, limit: int | None) -> dict[str, int]:
    """Read back the failed batch and park what was not done; returns counts (parked, skipped: already done, gap)."""
    info = failure["KinesisBatchInfo"]
    read = read_range(
        info["streamArn"],
        info["shardId"],
        info["startSequenceNumber"],
        info["endSequenceNumber"],
        info.get("batchSize"),
        max_calls=max_calls,
        limit=limit,
        sleep=sleep,
    )
    counts = {"parked": 0, "skipped": 0, "gap": 0}
    for rec in read.records:
        key = idempotency.record_key(rec)
        record = consume.SourceRecord(**rec)
        if (
            run.once.done(idempotency.PARK, key)
            or run.once.done(idempotency.FALLBACK, key)
            or consume.already_started(record, run.store, run.settings)
        ):
            counts["skipped"] += 1
            continue
        run.once.run(
            idempotency.PARK,
            key,
            functools.partial(dlq.send, [record_envelope(failure, rec)], run.queue_url, sleep=sleep),
        )
        counts["parked"] += 1
    gap = gap_envelope(failure, read)
    if gap is not None:
        gap_key = {
            "streamArn": info["streamArn"],
            "shardId": info["shardId"],
            "startSequenceNumber": info["startSequenceNumber"],
            "endSequenceNumber": info["endSequenceNumber"],
        }
        run.once.run(idempotency.GAP, gap_key, lambda: dlq.send([gap], run.queue_url, sleep=sleep), key_path=GAP_KEY)
        counts["gap"] = 1
        log.warning("failed batch not fully read back", extra={"batch": info, "missing": gap["missing"]})
    return counts
