"""Workflow message size (issue 8): the CNM is carried once, and no state's input or output
can exceed the Step Functions limit of 256 KiB, whatever the size of the CNM. On the applied
examples/complete (tests/functional/workflow/conftest.py): executions start as its consumer starts them."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import pytest

from cnm_ingest.errors import WorkflowPayloadError
from cnm_ingest.workflow import payload

STATE_LIMIT = 256 * 1024  # bytes, per state input/output and execution input (Step Functions quota)


def big_cnm(wf, files: int, *, pad: int = 0, identifier: str = "big-1") -> dict:
    """A CNM with ``files`` small files; ``pad`` bytes of ``subtype`` per file make the CNM itself large."""
    entries = []
    for i in range(files):
        data = f"file {i}".encode()
        uri = wf.put_file(f"incoming/SWOT_L2_LR_SSH_Expert/2024/05/01/GRAN_BIG_{i:05d}.nc", data)
        entry = {
            "type": "data" if i == 0 else "ancillary",
            "uri": uri,
            "name": f"GRAN_BIG_{i:05d}.nc",
            "size": len(data),
            "checksumType": "md5",
            "checksum": hashlib.md5(data).hexdigest(),
        }
        if pad:
            entry["subtype"] = "x" * pad
        entries.append(entry)
    return {
        "version": "1.6.1",
        "provider": wf.rule.provider,
        "collection": dict(wf.collection),
        "submissionTime": "2024-05-01T12:00:00.000000Z",
        "identifier": identifier,
        "product": {"name": "GRAN_BIG", "dataVersion": "1", "files": entries},
    }


def state_payload_sizes(wf, execution_arn: str) -> dict[str, int]:
    """The largest input/output of every history event (bytes), by event type and state."""
    sizes: dict[str, int] = {}
    for event in wf.history(execution_arn):
        for field, details in event.items():
            if not field.endswith("EventDetails") or not isinstance(details, dict):
                continue
            for part in ("input", "output", "payload", "result"):
                if isinstance(details.get(part), str):
                    label = f"{event['type']}:{details.get('name', '')}:{part}"
                    sizes[label] = max(sizes.get(label, 0), len(details[part].encode("utf-8")))
    return sizes


def run_and_check(wf, cnm, reference_schema) -> dict:
    desc = wf.run(cnm, timeout=600)
    assert desc["status"] == "SUCCEEDED", wf.explain(desc)
    sizes = state_payload_sizes(wf, desc["executionArn"])
    assert any(k.startswith("TaskStateEntered:SyncGranule") for k in sizes), sizes  # the history carries the payloads
    assert any(k.startswith("TaskStateExited:CnmResponse") for k in sizes), sizes
    too_big = {k: v for k, v in sizes.items() if v > STATE_LIMIT}
    assert not too_big, too_big
    assert len(desc["input"].encode("utf-8")) <= STATE_LIMIT
    [response] = wf.responses()
    jsonschema.Draft7Validator(reference_schema).validate(response)
    assert response["response"]["status"] == "SUCCESS"
    assert response["identifier"] == cnm["identifier"]
    return response


def test_a_1000_file_cnm_ends_with_a_valid_response_and_no_state_over_256_kib(wf, reference_schema):
    cnm = big_cnm(wf, 1000)
    assert len(json.dumps(cnm)) > 200 * 1024  # the CNM alone is above the offload threshold
    response = run_and_check(wf, cnm, reference_schema)
    assert len(response["product"]["files"]) == 1000
    assert response["product"]["files"][999]["uri"].startswith(wf.staged_uri(""))
    stored = wf.s3.list_objects_v2(Bucket=wf.payload_bucket, Prefix=payload.KEY_PREFIX).get("KeyCount", 0)
    assert stored >= 2  # the CNM and the granule list (and the response) live in the payload bucket


def test_a_1_mb_cnm_ends_with_a_valid_response_and_no_state_over_256_kib(wf, reference_schema):
    cnm = big_cnm(wf, 10, pad=105_000, identifier="mega-1")
    assert len(json.dumps(cnm)) > 1024 * 1024
    response = run_and_check(wf, cnm, reference_schema)
    assert len(response["product"]["files"]) == 10


# --- the message builder and reader --------------------------------------------------------------


def build(wf, cnm) -> dict:
    """The workflow message the deployed consumer builds for ``cnm``."""
    return wf.message(cnm)


def build_plain(cnm, **kw) -> dict:
    """build_workflow_message with the environment's settings (PAYLOAD_BUCKET, WORKFLOW_OFFLOAD_BYTES)."""
    return payload.build_workflow_message(
        cnm,
        rule={"name": "r"},
        collection={},
        provider={},
        stack="s",
        buckets={},
        state_machine_arn="arn",
        execution="e-1",
        source={},
        **kw,
    )


def test_the_cnm_is_carried_once(wf, samples):
    cnm = samples["cumulus_sns_v1.0_notification.json"]
    cnm = dict(cnm, provider=wf.rule.provider, collection=dict(wf.collection))  # what the applied rule matches
    message = build(wf, cnm)
    assert message["meta"]["cnm"] == cnm
    # once in meta.cnm, once in the readable part of the execution name the consumer derives from it
    assert message["cumulus_meta"]["execution_name"].startswith(cnm["identifier"])
    assert json.dumps(message).count(cnm["identifier"]) == 2
    assert message["payload"] == {}
    assert payload.cnm(message) == cnm


def test_a_large_cnm_moves_to_the_payload_bucket_and_reads_back(wf):
    cnm = big_cnm(wf, 3, pad=100_000)
    message = build(wf, cnm)
    ref = message["meta"]["cnm_ref"]
    assert "cnm" not in message["meta"] and payload.size(message) < 200 * 1024
    assert ref["bucket"] == wf.payload_bucket and ref["key"] == f"{payload.KEY_PREFIX}{ref['sha256']}"
    assert ref["size"] == len(json.dumps(cnm, separators=(",", ":"), ensure_ascii=False).encode())
    with wf.env("sync_granule"):  # a stored part is read only from the function's own PAYLOAD_BUCKET
        assert payload.cnm(message) == cnm
    assert build(wf, cnm)["meta"]["cnm_ref"] == ref  # content-addressed: a redelivery writes the same object


def test_the_threshold_is_a_setting(wf, samples):
    """About WORKFLOW_OFFLOAD_BYTES and PAYLOAD_BUCKET (overridden here on the deployed consumer)."""
    cnm = dict(samples["cumulus_sns_v1.0_notification.json"], provider=wf.rule.provider, collection=wf.collection)
    inline = build(wf, cnm)
    assert "cnm" in inline["meta"]  # the deployed threshold keeps a small CNM inline
    # one byte below the inline message: the CNM (its only part) must move
    wf.world.override("message_consumer", WORKFLOW_OFFLOAD_BYTES=str(payload.size(inline) - 1))
    message = build(wf, cnm)
    assert "cnm_ref" in message["meta"] and message["meta"]["cnm_ref"]["bucket"] == wf.payload_bucket
    with wf.env("message_consumer"):
        assert "cnm" in build_plain(cnm, offload_bytes=1_000_000)["meta"]  # the keyword wins
    wf.world.override("message_consumer", PAYLOAD_BUCKET=None)
    with pytest.raises(Exception, match="PAYLOAD_BUCKET"):
        build(wf, cnm)


@pytest.mark.parametrize("tamper", ["changed", "deleted", "not a reference"])
def test_a_stored_part_that_does_not_match_its_reference_is_an_error(wf, tamper):
    message = build(wf, big_cnm(wf, 2, pad=150_000))
    ref = message["meta"]["cnm_ref"]
    if tamper == "changed":
        wf.s3.put_object(Bucket=ref["bucket"], Key=ref["key"], Body=b'{"identifier": "forged"}')
    elif tamper == "deleted":
        wf.s3.delete_object(Bucket=ref["bucket"], Key=ref["key"])
    else:
        message["meta"]["cnm_ref"] = {"bucket": wf.payload_bucket}
    with wf.env("sync_granule"):  # a stored part is read only from the function's own PAYLOAD_BUCKET
        with pytest.raises(WorkflowPayloadError):
            payload.cnm(message)
        assert payload.cnm_if_readable(message) == {}


def test_fit_moves_the_largest_part_first(wf):
    message = {
        "meta": {"cnm": {"a": "x" * 1000}, "cnm_response": {"b": "y" * 400}},
        "payload": {"granules": ["z" * 500]},
    }
    with wf.env("sync_granule"):  # PAYLOAD_BUCKET: the applied payload bucket
        fitted = payload.fit(message, threshold=1500)
        assert fitted["meta"]["cnm_ref"]["bucket"] == wf.payload_bucket
        assert set(fitted["meta"]) == {"cnm_ref", "cnm_response"} and "granules" in fitted["payload"]
        everything = payload.fit(message, threshold=800)
        assert set(everything["meta"]) == {"cnm_ref", "cnm_response_ref"}
        assert set(everything["payload"]) == {"granules_ref"}
        assert payload.granules(everything) == ["z" * 500]
        # replacing a stored part drops its old reference
        again = payload.set_part(everything, "payload", "granules", ["small"], threshold=10_000)
        with pytest.raises(Exception, match="without its CNM"):  # nothing left to move: a clear error, not an overflow
            payload.fit(message, threshold=10)
    assert again["payload"] == {"granules": ["small"]}


def test_a_huge_error_message_is_bounded_and_keeps_its_type():
    from cnm_ingest.errors import CnmValidationError
    from cnm_ingest.workflow import task

    def step(message, execution):
        raise CnmValidationError("bad value " + "x" * 500_000, "$.product")

    with pytest.raises(CnmValidationError) as err:
        task.run({"message": {}, "execution": {}}, step)
    assert len(str(err.value)) < task.MAX_ERROR_CHARS + 100
    assert str(err.value).startswith("CNM schema violation at $.product: bad value xxx")
