"""The whole pipeline on moto: stream -> consumer -> workflow -> response stream / DLQ.

Records in must balance: every record either has a workflow execution (which
answers it on the response stream) or is parked in the DLQ with its payload.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tools.local_pipeline import LambdaHarness, LocalPipeline


@pytest.fixture
def local(aws_sfn, monkeypatch):
    from cnm_ingest import config

    config.reset()
    with LambdaHarness().installed() as harness:
        p = LocalPipeline()
        for key, value in p.environment().items():
            monkeypatch.setenv(key, value)
        p.harness = harness
        p.add_provider("PROV", "provider-bucket")
        p.add_collection("COLL", "1")
        p.add_rule("coll", "COLL", "PROV", version="1")
        yield p
    config.reset()


def notification(identifier: str, data: bytes, **overrides) -> dict:
    cnm = {
        "version": "1.6.1",
        "provider": "PROV",
        "collection": {"name": "COLL", "version": "1"},
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": identifier,
        "product": {
            "name": identifier,
            "files": [
                {
                    "type": "data",
                    "uri": f"s3://provider-bucket/{identifier}.nc",
                    "name": f"{identifier}.nc",
                    "size": len(data),
                    "checksumType": "md5",
                    "checksum": hashlib.md5(data).hexdigest(),
                }
            ],
        },
    }
    cnm.update(overrides)
    return cnm


def test_mixed_batch_balances_and_redelivery_starts_nothing_new(local):
    good = {f"g{i}": f"granule {i}".encode() * 100 for i in range(4)}
    sent: dict[str, bytes] = {}
    for ident, data in good.items():
        local.put_object(f"s3://provider-bucket/{ident}.nc", data)
        payload = json.dumps(notification(ident, data)).encode()
        sent[local.notify(payload)] = payload
    wrong_checksum = notification("bad-sum", b"x")
    local.put_object("s3://provider-bucket/bad-sum.nc", b"y")
    sent[local.notify(json.dumps(wrong_checksum).encode())] = json.dumps(wrong_checksum).encode()
    wrong_type = notification("wrong-type", b"z")
    wrong_type["product"]["files"][0]["size"] = "big"
    poison = [b"\xff\xfe not utf-8", json.dumps(wrong_type).encode()]
    for payload in poison:
        sent[local.notify(payload)] = payload

    first = local.deliver_notifications()
    second = local.deliver_notifications()
    assert first["undelivered"] == second["undelivered"] == 0
    local.deliver_fallback()
    executions = local.wait_for_executions()
    dead = local.dead_letters()
    responses = local.responses()

    # Lists, not dicts keyed by sequence number: a duplicate execution or DLQ entry must fail the test.
    started = [json.loads(e["input"])["cumulus_meta"]["source"]["sequence_number"] for e in executions]
    parked = [d["record"]["sequenceNumber"] for d in dead]
    assert len(started) == len(set(started)), f"duplicate executions: {sorted(started)}"
    assert len(parked) == len(set(parked)), f"duplicate DLQ entries: {sorted(parked)}"
    # balance: every record has a workflow or a DLQ entry, none has both, none is missing
    assert len(sent) == len(executions) + len(dead)
    assert set(started) | set(parked) == set(sent)
    assert not set(started) & set(parked)
    assert len(executions) == len(good) + 1  # the redelivery started nothing new
    for entry in dead:
        assert base64.b64decode(entry["record"]["data"]) == sent[entry["record"]["sequenceNumber"]]
        assert entry["reason"]
    statuses = {json.loads(e["input"])["meta"]["cnm"]["identifier"]: e["status"] for e in executions}
    assert statuses == {**{g: "SUCCEEDED" for g in good}, "bad-sum": "FAILED"}
    by_status = {}
    for r in responses:
        by_status.setdefault((r["identifier"], r["response"]["status"], r["response"].get("errorCode")), 0)
        by_status[(r["identifier"], r["response"]["status"], r["response"].get("errorCode"))] += 1
    for g in good:
        assert by_status[(g, "SUCCESS", None)] == 1
    assert by_status[("bad-sum", "FAILURE", "VALIDATION_ERROR")] == 1  # a checksum mismatch, as PO.DAAC answers
    # the wrong-type record is addressable: answered VALIDATION_ERROR exactly once over both deliveries
    assert by_status[("wrong-type", "FAILURE", "VALIDATION_ERROR")] == 1
    assert sum(by_status.values()) == len(good) + 2  # at most one answer per record
