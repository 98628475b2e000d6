"""Workflow input size against the number of files in the CNM.

Calls :func:`cnm_ingest.workflow.payload.build_workflow_message` through its public
interface with a CNM of N files, inside moto (with every bucket it names
created, and ``PAYLOAD_BUCKET`` set), so that an implementation which offloads
big messages to the payload bucket can do so. The size is that of the
StartExecution ``input`` (compact JSON, as :mod:`cnm_ingest.consumer.consume` sends it),
against Step Functions' 256 KiB input limit. Above the offload threshold the
size must stay flat.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .common import Row, row

LIMIT = 256 * 1024  # Step Functions: maximum execution input, bytes
BUCKETS = {
    "internal": {"name": "cnm-bench-internal", "type": "internal"},
    "private": {"name": "cnm-bench-private", "type": "private"},
    "protected": {"name": "cnm-bench-protected", "type": "protected"},
    "payload": {"name": "cnm-bench-payload", "type": "internal"},
}


def cnm_with_files(n: int) -> dict[str, Any]:
    files = [
        {
            "type": "data",
            "uri": f"s3://provider-outbox/SWOT/L2/2026/11/26/SWOT_L2_LR_SSH_Expert_{i:05d}_PIC0_01.nc",
            "name": f"SWOT_L2_LR_SSH_Expert_{i:05d}_PIC0_01.nc",
            "checksumType": "md5",
            "checksum": f"{i:032x}",
            "size": 123456789 + i,
        }
        for i in range(n)
    ]
    return {
        "version": "1.6.1",
        "provider": "PODAAC_SWOT",
        "collection": "SWOT_L2_LR_SSH_Expert",
        "submissionTime": "2026-11-26T00:00:00.000Z",
        "identifier": f"bench-{n}-files",
        "product": {"name": f"SWOT_L2_LR_SSH_Expert_{n}", "dataVersion": "1", "files": files},
    }


def message_size(n: int) -> int:
    from cnm_ingest.workflow.payload import build_workflow_message

    message = build_workflow_message(
        cnm_with_files(n),
        rule={"name": "swot_l2", "meta": {}},
        collection={"name": "SWOT_L2_LR_SSH_Expert", "version": "1", "duplicateHandling": "replace"},
        provider={"id": "PODAAC_SWOT", "protocol": "s3", "host": "provider-outbox"},
        stack="cnm-bench",
        buckets=BUCKETS,
        state_machine_arn="arn:aws:states:us-west-2:123456789012:stateMachine:cnm-bench-CnmWorkflow",
        execution=f"bench-{n}",
        source={
            "stream_arn": "arn:aws:kinesis:us-west-2:123456789012:stream/cnm-bench-notifications",
            "shard_id": "shardId-000000000000",
            "sequence_number": "1",
            "partition_key": "pk",
        },
    )
    return len(json.dumps(message, separators=(",", ":")).encode("utf-8"))


def run(quick: bool = False) -> list[Row]:
    import boto3
    from moto import mock_aws

    from cnm_ingest import aws

    counts = (1, 100, 1000, 5000) if quick else (1, 10, 100, 300, 1000, 2000, 5000)
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-west-2",
        AWS_REGION="us-west-2",
        PAYLOAD_BUCKET=BUCKETS["payload"]["name"],
        STACK="cnm-bench",
        BUCKETS=json.dumps(BUCKETS),
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    sizes: dict[int, int] = {}
    try:
        aws.reset()
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-west-2")
            for b in BUCKETS.values():
                s3.create_bucket(Bucket=b["name"], CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
            for n in counts:
                sizes[n] = message_size(n)
        aws.reset()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    rows = [
        row(
            f"workflow input, CNM of {n} files",
            sizes[n] / 1024,
            "KiB",
            "Step Functions input 256 KiB",
            sizes[n] / LIMIT,
            "<= 1.0",
        )
        for n in counts
    ]
    lo, hi = 100, max(counts)
    rows.append(
        row(
            f"workflow input growth {lo}->{hi} files",
            sizes[hi] / 1024,
            "KiB",
            f"at {lo} files {sizes[lo] / 1024:.1f} KiB",
            sizes[hi] / sizes[lo],
            "<= 1.1",
        )
    )
    return rows
