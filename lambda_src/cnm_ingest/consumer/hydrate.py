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
import datetime
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


def _iterator(stream_arn: str, shard_id: str, kind: str, sequence: str) -> str:
    return aws.client("kinesis").get_shard_iterator(
        StreamARN=stream_arn, ShardId=shard_id, ShardIteratorType=kind, StartingSequenceNumber=sequence
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
        "approximateArrivalTimestamp": arrival.timestamp() if isinstance(arrival, datetime.datetime) else arrival,
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
    first, last = int(start), int(end)
    result = ReadResult()
    kinesis = aws.client("kinesis")
    last_seen: str | None = None
    iterator: str | None = None
    failures = 0
    from_horizon = False

    def finish() -> ReadResult:
        result.reached_end = True
        result.complete = not batch_size or len(result.records) >= batch_size
        if not result.complete:
            result.reason = (
                f"{len(result.records)} of {batch_size} records are in the stream (the others were trimmed or are gone)"
            )
        return result

    while result.calls < max_calls:
        result.calls += 1
        try:
            if iterator is None:
                if last_seen:
                    iterator = _iterator(stream_arn, shard_id, "AFTER_SEQUENCE_NUMBER", last_seen)
                elif from_horizon:
                    iterator = aws.client("kinesis").get_shard_iterator(
                        StreamARN=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                    )["ShardIterator"]
                else:
                    iterator = _iterator(stream_arn, shard_id, "AT_SEQUENCE_NUMBER", start)
            params = {"ShardIterator": iterator, "StreamARN": stream_arn}
            if limit:
                params["Limit"] = limit
            page = kinesis.get_records(**params)
        except ClientError as exc:
            code = _code(exc)
            if code == "InvalidArgumentException" and iterator is None and not last_seen and not from_horizon:
                from_horizon = True  # the first sequence number was trimmed: read what is left of the range
                continue
            if code in GONE_CODES:
                result.reason = f"{code}: {exc.response.get('Error', {}).get('Message', '')}".strip()
                return result
            if code not in RETRY_CODES and not aws.is_transient(exc):
                raise
            if code == "ExpiredIteratorException":
                iterator = None
            failures += 1
            sleep(min(0.1 * 2**failures, 5.0))
            continue
        failures = 0
        for raw in page.get("Records", []):
            seq = int(raw["SequenceNumber"])
            if seq > last:
                return finish()
            last_seen = raw["SequenceNumber"]
            if seq >= first:
                result.records.append(as_record(raw, shard_id, stream_arn))
                if seq == last or (batch_size and len(result.records) >= batch_size):
                    return finish()
        iterator = page.get("NextShardIterator")
        if iterator is None:
            result.reason = "the shard is closed and its records end before the batch's last sequence number"
            return result
        if not page.get("Records") and page.get("MillisBehindLatest", 0) == 0:
            result.reason = "reached the tip of the shard before the batch's last sequence number"
            return result
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
