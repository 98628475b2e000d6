"""Traffic for the deployed pipeline, and each record's fate read back from the local AWS.

Used by the demo (demo/demo.py) and the end-to-end tests (tests/e2e). Nothing here
creates pipeline resources: the provider's side only (its buckets and files, the
notifications it puts on the stream).

- ``sample_traffic``: the published CNM notification samples (shared/cnm/samples),
  their files staged with bytes whose checksums and sizes the notification then
  states (the samples carry placeholder checksums such as "4241jafkjaj14jasjf");
- ``generated_traffic``: notifications for the example's SWOT_L2_LR_SSH collection;
- ``poison_traffic``: records that must end in the DLQ (or as a FAILED workflow), never lost.

``fates`` joins what happened: workflow executions (by the sequence number in their
input), DLQ entries (by the parked record's sequence number) and responses.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def shared_cnm_dir() -> Path:
    """The published CNM schema and samples (``shared/cnm``).

    ``$CNM_SHARED_DIR/cnm`` when set; else ``../shared/cnm`` beside this
    repository; else beside the repository this one was cloned from, when that
    is a local path (``git clone /work/main /tmp/check`` keeps finding
    ``/work/shared``). The first candidate is returned when none exists, so the
    caller's error names the expected place.
    """
    candidates = [ROOT.parent / "shared"]
    if os.environ.get("CNM_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["CNM_SHARED_DIR"]))
    origin = subprocess.run(
        ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if origin and Path(origin).is_absolute():
        candidates.append(Path(origin).parent / "shared")
    return next((c / "cnm" for c in candidates if (c / "cnm").is_dir()), candidates[0] / "cnm")


SUCCESS, FAILED, PARKED = "workflow SUCCEEDED", "workflow FAILED", "parked in the DLQ"


@dataclass
class Record:
    label: str
    payload: bytes
    expect: str  # SUCCESS, FAILED or PARKED
    files: dict[str, bytes] = field(default_factory=dict)  # s3 uri -> bytes the provider stages
    identifier: str | None = None
    sequence_number: str | None = None
    shard_id: str | None = None


def _files_of(product: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from product.get("files", [])
    for group in product.get("filegroups", []):
        yield from group.get("files", [])


def _bytes_for(uri: str, size: int) -> bytes:
    rng = random.Random(uri)
    return rng.randbytes(size)


def _digest(kind: str, data: bytes) -> str:
    return hashlib.new(kind.lower().replace("-", ""), data).hexdigest()


def sample_traffic(samples_dir: Path, bucket: str) -> list[Record]:
    """Every notification sample (responses are not notifications), files staged to match.

    The samples name their provider (PODAAC_SWOT) and put its files in buckets of their own
    (``sampleIngestBucket``, ``bucket_1``...); the workflow accepts only files in the provider's
    configured bucket (provider confinement). So each file moves to ``bucket`` (the provider's),
    under ``samples/<sample>/<its bucket>/<its key>`` (samples share URIs with other sizes)."""
    out = []
    for path in sorted(samples_dir.glob("*.json")):
        message = json.loads(path.read_text())
        if "response" in message or "product" not in message:
            continue
        message = copy.deepcopy(message)
        # the samples share identifiers; one per sample, so that each answer names its record
        message["identifier"] = f"{message.get('identifier', 'sample')}-{path.stem}"
        # and one granule per sample: the samples share a granule name with other file sizes, and CNMs of one
        # granule with other content stage in submissionTime order (an older one is superseded, issue 18)
        message["product"]["name"] = f"{message['product'].get('name', 'sample')}-{path.stem}"
        files: dict[str, bytes] = {}
        for f in _files_of(message["product"]):
            f["uri"] = f"s3://{bucket}/samples/{path.stem}/{f['uri'].removeprefix('s3://')}"
            data = _bytes_for(f["uri"], int(f.get("size") or 1024))
            files[f["uri"]] = data
            f["size"] = len(data)
            if f.get("checksumType"):
                f["checksum"] = _digest(f["checksumType"], data)
        expect = SUCCESS if files else PARKED  # a sample without files cannot be ingested
        out.append(
            Record(f"sample {path.name}", json.dumps(message).encode(), expect, files, str(message["identifier"]))
        )
    return out


def generated_traffic(
    count: int, bucket: str, *, provider: str = "PODAAC_SWOT", collection: tuple[str, str] = ("SWOT_L2_LR_SSH", "2.0")
) -> list[Record]:
    out = []
    for i in range(count):
        name = f"SWOT_L2_LR_SSH_{i:04d}"
        uri = f"s3://{bucket}/incoming/{name}.nc"
        data = _bytes_for(uri, 4096 + i)
        cnm: dict[str, Any] = {
            "version": "1.6.1",
            "provider": provider,
            "collection": {"name": collection[0], "version": collection[1]},
            "submissionTime": "2026-11-26T07:00:00.000Z",
            "identifier": f"generated-{i:04d}",
            "product": {
                "name": name,
                "dataVersion": collection[1],
                "files": [
                    {
                        "type": "data",
                        "uri": uri,
                        "name": f"{name}.nc",
                        "size": len(data),
                        "checksumType": "SHA256",
                        "checksum": _digest("SHA256", data),
                    }
                ],
            },
        }
        out.append(Record(f"generated {name}", json.dumps(cnm).encode(), SUCCESS, {uri: data}, f"generated-{i:04d}"))
    return out


def poison_traffic(bucket: str) -> list[Record]:
    """Records a provider should not send; each must be parked or answered, never lost."""
    good = generated_traffic(1, bucket)[0]
    base = json.loads(good.payload)

    def variant(identifier: str, **changes: Any) -> dict[str, Any]:
        cnm = copy.deepcopy(base)
        cnm["identifier"] = identifier
        cnm["product"]["name"] = identifier
        for path, value in changes.items():
            node = cnm
            *parents, last = path.split("__")
            for p in parents:
                node = node[p] if not p.isdigit() else node[int(p)]
            node[last] = value
        return cnm

    wrong_sum = variant("poison-wrong-checksum")
    wrong_sum["product"]["files"][0]["uri"] = f"s3://{bucket}/incoming/poison-wrong-checksum.nc"
    missing = variant("poison-missing-file")
    missing["product"]["files"][0]["uri"] = f"s3://{bucket}/incoming/never-staged.nc"
    return [
        Record("poison: not JSON", b"{this is not json", PARKED),
        Record("poison: not UTF-8", b"\xff\xfe\x00 not utf-8", PARKED),
        Record(
            "poison: schema violation (size is a string)",
            json.dumps(variant("poison-schema", product__files__0__size="big")).encode(),
            PARKED,
            identifier="poison-schema",
        ),
        Record(
            "poison: no rule for the collection",
            json.dumps(variant("poison-no-rule", collection={"name": "NOBODY", "version": "9"})).encode(),
            PARKED,
            identifier="poison-no-rule",
        ),
        Record(
            "poison: rule is DISABLED (Sentinel-6)",
            json.dumps(
                variant(
                    "poison-disabled",
                    provider="PODAAC_SENTINEL6",
                    collection={"name": "JASON_CS_S6A_L2_ALT_LR_STD_OST_NRT_F", "version": "F"},
                )
            ).encode(),
            PARKED,
            identifier="poison-disabled",
        ),
        Record(
            "poison: checksum does not match the file",
            json.dumps(wrong_sum).encode(),
            FAILED,
            {wrong_sum["product"]["files"][0]["uri"]: b"not the bytes the checksum is of"},
            "poison-wrong-checksum",
        ),
        Record("poison: the file is not there", json.dumps(missing).encode(), FAILED, identifier="poison-missing-file"),
    ]


# ------------------------------------------------------------------ the provider's side


def stage_files(s3: Any, records: list[Record], region: str) -> int:
    """Put each record's files where its notification says they are (buckets created as needed)."""
    buckets: set[str] = set()
    count = 0
    for record in records:
        for uri, data in record.files.items():
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            if bucket not in buckets:
                try:
                    s3.head_bucket(Bucket=bucket)
                except Exception:
                    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
                buckets.add(bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            count += 1
    return count


def put(kinesis: Any, stream_arn: str, records: list[Record]) -> None:
    """PutRecords in chunks of 500; each record learns its sequence number and shard."""
    for i in range(0, len(records), 500):
        chunk = records[i : i + 500]
        got = kinesis.put_records(
            StreamARN=stream_arn, Records=[{"Data": r.payload, "PartitionKey": r.identifier or r.label} for r in chunk]
        )["Records"]
        for record, result in zip(chunk, got, strict=True):
            if "ErrorCode" in result:
                raise RuntimeError(f"PutRecords refused {record.label}: {result['ErrorCode']}")
            record.sequence_number, record.shard_id = result["SequenceNumber"], result["ShardId"]


# ------------------------------------------------------------------ reading fates back


def read_stream(kinesis: Any, stream_arn: str) -> list[dict[str, Any]]:
    out = []
    for shard in kinesis.list_shards(StreamARN=stream_arn)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamARN=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, StreamARN=stream_arn)
            out.extend(page["Records"])
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return out


def dlq_entries(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every DLQ message, read without deleting (made visible again at once), as parsed JSON."""
    seen: dict[str, dict[str, Any]] = {}
    handles = []
    for _ in range(100):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        if not got:
            break
        for m in got:
            seen.setdefault(m["MessageId"], json.loads(m["Body"]))
            handles.append(m["ReceiptHandle"])
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return list(seen.values())


@dataclass
class Fate:
    record: Record
    executions: list[dict[str, Any]]
    dlq: list[dict[str, Any]]
    responses: list[dict[str, Any]]

    @property
    def outcome(self) -> str:
        if self.executions and all(e["status"] == "SUCCEEDED" for e in self.executions):
            return SUCCESS
        if self.executions:
            return FAILED
        return PARKED if self.dlq else "LOST"


FAILED_RECORD_KIND = "cnm-ingest.failed-record"  # docs/INTERFACES.md, the failed-record envelope


def _parked_envelopes(value: Any) -> list[dict[str, Any]]:
    """The failed-record envelopes in a DLQ message, read as the plain JSON docs/INTERFACES.md
    describes: the envelope itself, or Lambda's async invocation record whose request payload
    is the SNS event carrying it (a reader for tests and the demo, not the product's)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, dict):
        return []
    if value.get("kind") == FAILED_RECORD_KIND:
        return [value]
    if "requestPayload" in value:
        return _parked_envelopes(value["requestPayload"])
    messages = [(r.get("Sns") or {}).get("Message") for r in value.get("Records") or [] if isinstance(r, dict)]
    return [env for m in messages for env in _parked_envelopes(m)]


def parked_records(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """(shard id, sequence number) of the records a DLQ message carries (our envelope, or
    Lambda's async invocation record around an SNS event carrying our envelope)."""
    records = [env.get("record") or {} for env in _parked_envelopes(entry)]
    return [(r.get("shardId", ""), r["sequenceNumber"]) for r in records if r.get("sequenceNumber")]


def fates(
    records: list[Record],
    *,
    sfn: Any,
    sqs: Any,
    kinesis: Any,
    state_machine_arns: list[str],
    dlq_url: str,
    response_stream_arn: str,
) -> list[Fate]:
    # sequence numbers are unique within a shard: records are known by (shard, sequence number)
    executions: dict[Any, list[dict[str, Any]]] = {}
    for arn in state_machine_arns:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for e in page["executions"]:
                described = sfn.describe_execution(executionArn=e["executionArn"])
                source = json.loads(described["input"]).get("cumulus_meta", {}).get("source", {})
                executions.setdefault((source.get("shard_id"), source.get("sequence_number")), []).append(described)
    parked: dict[Any, list[dict[str, Any]]] = {}
    for entry in dlq_entries(sqs, dlq_url):
        for key in parked_records(entry):
            parked.setdefault(key, []).append(entry)
    responses: dict[str, list[dict[str, Any]]] = {}
    for r in read_stream(kinesis, response_stream_arn):
        message = json.loads(r["Data"])
        responses.setdefault(message.get("identifier"), []).append(message)
    return [
        Fate(
            r,
            executions.get((r.shard_id, r.sequence_number), []),
            parked.get((r.shard_id, r.sequence_number), []),
            responses.get(r.identifier, []) if r.identifier else [],
        )
        for r in records
    ]


def decode(entry: dict[str, Any]) -> bytes | None:
    record = entry.get("record") or {}
    return base64.b64decode(record["data"]) if record.get("data") else None
