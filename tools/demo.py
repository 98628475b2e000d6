#!/usr/bin/env python3
"""Run the pipeline's handlers against moto on sample CNM messages and say what
happened to each record.

    python tools/demo.py              (scripts/demo.sh sets up and builds first)

Records put on the notification stream: one good notification whose files
exist with correct checksums; every notification sample from
../shared/cnm/samples (their checksums are placeholders, so the workflow
answers them with VALIDATION_ERROR, as PO.DAAC does); and three bad records: not
JSON, a schema violation, and a notification no rule matches. The batch is
then delivered a second time, as Kinesis may, to show that no second workflow
starts. The last line balances records in against records answered or parked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_pipeline  # noqa: E402

SAMPLES = local_pipeline.shared_cnm_dir() / "samples"


def good_notification() -> tuple[dict, dict[str, bytes]]:
    data = b"granule bytes " * 4096
    uri = "s3://demo-provider/incoming/DEMO_L2_20240102.nc"
    cnm = {
        "version": "1.6.1",
        "provider": "DEMO_PROVIDER",
        "collection": {"name": "DEMO_L2", "version": "1"},
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": "demo-good-0001",
        "product": {
            "name": "DEMO_L2_20240102",
            "dataVersion": "1",
            "files": [
                {
                    "type": "data",
                    "uri": uri,
                    "name": "DEMO_L2_20240102.nc",
                    "size": len(data),
                    "checksumType": "SHA256",
                    "checksum": hashlib.sha256(data).hexdigest(),
                }
            ],
        },
    }
    return cnm, {uri: data}


def sample_notifications() -> list[tuple[str, dict]]:
    if not SAMPLES.is_dir():
        print(f"(no samples at {SAMPLES}; running with the generated records only)")
        return []
    out = []
    for path in sorted(SAMPLES.glob("*.json")):
        message = json.loads(path.read_text())
        if "response" not in message:
            out.append((path.name, message))
    return out


def failure(execution: dict) -> str:
    """The original error of a FAILED execution (CnmResponse's WorkflowError carries it as JSON)."""
    try:
        original = json.loads(json.loads(execution.get("cause") or "{}").get("errorMessage", ""))
        return f"{original['errorCode']}, {original['Error']}: {original['errorMessage'][:70]}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"{execution.get('error')}: {str(execution.get('cause'))[:70]}"


def main() -> int:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = local_pipeline.REGION
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # its interpreter logs every caught task error
    from moto import mock_aws

    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        local_pipeline.LambdaHarness().installed(),
    ):
        p = local_pipeline.LocalPipeline()
        os.environ.update(p.environment())
        p.add_provider("DEMO_PROVIDER", "demo-provider")
        p.add_collection("DEMO_L2", "1")
        p.add_rule("demo_l2", "DEMO_L2", "DEMO_PROVIDER", version="1")
        p.add_provider("PODAAC_SWOT", "sampleIngestBucket")
        p.add_collection("SWOT_Prod_l2:1", "1")
        p.add_rule("swot_prod_l2", "SWOT_Prod_l2:1", "PODAAC_SWOT")

        records: dict[str, str] = {}  # sequence number -> label
        good, files = good_notification()
        for uri, data in files.items():
            p.put_object(uri, data)
        records[p.notify(json.dumps(good).encode())] = "generated good notification"
        for name, message in sample_notifications():
            for f in [
                *message["product"].get("files", []),
                *(x for g in message["product"].get("filegroups", []) for x in g["files"]),
            ]:
                p.put_object(f["uri"], b"\0" * int(f["size"]))
            records[p.notify(json.dumps(message).encode())] = f"sample {name}"
        records[p.notify(b"{this is not json")] = "bad: not JSON"
        bad = json.loads(json.dumps(good))
        bad["identifier"] = "demo-bad-size"
        bad["product"]["files"][0]["size"] = "big"
        records[p.notify(json.dumps(bad).encode())] = "bad: schema violation (size is a string)"
        orphan = json.loads(json.dumps(good))
        orphan["identifier"] = "demo-no-rule"
        orphan["collection"] = {"name": "NOBODY_CARES", "version": "9"}
        records[p.notify(json.dumps(orphan).encode())] = "bad: no rule for the collection"

        first = p.deliver_notifications()
        again = p.deliver_notifications()  # Kinesis redelivers: no second execution may start
        fallback = p.deliver_fallback()
        executions = p.wait_for_executions()
        dead = p.dead_letters()
        responses = p.responses()

    by_seq: dict[str, list[dict]] = {}
    for e in executions:
        seq = json.loads(e["input"])["cumulus_meta"]["source"]["sequence_number"]
        by_seq.setdefault(seq, []).append(e)
    parked = {d["record"]["sequenceNumber"]: d for d in dead if d.get("record")}
    dlq_copies = Counter(d["record"]["sequenceNumber"] for d in dead if d.get("record"))

    print(f"\n{'seq':>6}  {'record':44}  outcome")
    for seq, label in records.items():
        outcome = []
        for e in by_seq.get(seq, []):
            line = f"workflow {e['name'][:24]}… {e['status']}"
            if e["status"] == "FAILED":
                line += f" ({failure(e)})"
            outcome.append(line)
        if seq in parked:
            copies = f", {dlq_copies[seq]} entries: one per delivery" if dlq_copies[seq] > 1 else ""
            outcome.append(f"DLQ{copies}: {parked[seq]['reason'][:90]}")
        print(f"{seq[-6:]:>6}  {label[:44]:44}  {' | '.join(outcome) or 'NOTHING (lost!)'}")

    codes = Counter(
        r["response"]["status"] + ("/" + r["response"]["errorCode"] if "errorCode" in r["response"] else "")
        for r in responses
    )
    print(
        f"\nconsumer invocations: first delivery {first['invocations']}, redelivery {again['invocations']}; "
        f"fallback deliveries: {fallback}"
    )
    print(f"executions started: {len(executions)} (redelivery started none: {len(executions) == len(by_seq)})")
    print("responses on the response stream:", dict(codes))
    accounted = {s for s in records if s in by_seq or s in parked}
    print(
        f"records in: {len(records)}; with a workflow: {len(set(by_seq) & set(records))}; "
        f"parked in the DLQ with payload: {len(set(parked) & set(records))}; "
        f"unaccounted: {len(records) - len(accounted)}"
    )
    return 0 if len(accounted) == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
