"""The ingest-side handlers (message_consumer, fallback_consumer, hydrate) on the applied stack.

Each test gets ``world``: examples/complete as `terraform apply` left it (the session snapshot,
restored; tests/worlds.py), and runs one deployed function's handler in-process under exactly
that function's deployed environment. Notifications go on the applied notification stream and
come back as the Kinesis event the event source mapping would deliver (``notifications``).
Rules, collections and providers are the example's own; a test needing another writes it in the
applied items' shape (``World.put_rule`` / ``put_collection``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from localaws.pipeline import read_stream as _read_stream
from tests.events import kinesis_event_from_stream

# examples/complete's first rule: its collection, version and provider (tests/e2e/test_apply.py reads them back)
SWOT = {"collection": "SWOT_L2_LR_SSH", "version": "2.0", "provider": "PODAAC_SWOT", "rule": "swot_l2_lr_ssh"}


@pytest.fixture
def world(complete_world):
    """examples/complete, restored as applied (see tests/worlds.py World)."""
    return complete_world


@pytest.fixture
def no_start_backoff(monkeypatch):
    """StartExecution retries without real sleeps (the consumer's pacer sleeps through ``pacing.SLEEP``)."""
    from cnm_ingest.consumer import pacing

    slept: list[float] = []
    monkeypatch.setattr(pacing, "SLEEP", slept.append)
    return slept


def swot_cnm(identifier: str = "granule-1", bucket: str = "cnm-complete-provider-outbox", **overrides: Any) -> dict:
    """A valid notification for examples/complete's SWOT_L2_LR_SSH rule (string-form collection,
    product.dataVersion "2.0"), its file in the provider's bucket."""
    cnm = sample_cnm(identifier, collection=SWOT["collection"], provider=SWOT["provider"])
    cnm["product"]["dataVersion"] = SWOT["version"]
    cnm["product"]["files"][0]["uri"] = f"s3://{bucket}/{identifier}.nc"
    cnm.update(overrides)
    return cnm


class Notifications:
    """Payloads put on the applied notification stream (all on one shard, as one event source
    mapping batch holds one shard's records) and read back as the Kinesis event Lambda gets."""

    def __init__(self, world: Any):
        self.world = world
        self.stream = world.stream("notifications")
        self.shard: str | None = None

    def put(self, payloads: list[bytes | str | dict], partition_keys: list[str] | None = None) -> dict[str, Any]:
        """Put ``payloads`` (in order) and return the event holding exactly them, in order."""
        kinesis = self.world.client("kinesis")
        seqs = []
        for i, payload in enumerate(payloads):
            data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
            data = data.encode() if isinstance(data, str) else data
            put = kinesis.put_record(
                StreamARN=self.stream,
                Data=data,
                PartitionKey=partition_keys[i] if partition_keys else f"pk{i}",
                ExplicitHashKey="0",  # the first shard
            )
            self.shard = put["ShardId"]
            seqs.append(put["SequenceNumber"])
        by_seq = {r["SequenceNumber"]: r for r in _read_stream(kinesis, self.stream)}
        return kinesis_event_from_stream([by_seq[s] for s in seqs], self.stream, self.shard or "")


@pytest.fixture
def notifications(world) -> Notifications:
    return Notifications(world)


def sample_cnm(
    identifier: str = "granule-1", collection: Any = "MODIS_A", provider: str = "PODAAC", **overrides: Any
) -> dict[str, Any]:
    cnm = {
        "version": "1.6.1",
        "provider": provider,
        "collection": collection,
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": identifier,
        "product": {
            "name": identifier,
            "dataVersion": "1",
            "files": [
                {
                    "type": "data",
                    "uri": f"s3://provider-bucket/{identifier}.nc",
                    "name": f"{identifier}.nc",
                    "size": 100,
                    "checksumType": "md5",
                    "checksum": "d41d8cd98f00b204e9800998ecf8427e",
                }
            ],
        },
    }
    cnm.update(overrides)
    return cnm
