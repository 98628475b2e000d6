"""The deployed reconcile function (examples/complete, in-process under its own deployed environment), run by
its schedule's event (tests/events/eventbridge_scheduled.json) over records put on the applied streams.

Nothing runs the pipeline here: what is put on the notification stream is never started (lost) unless the
test answers it on the response stream or parks it through the consumer's own marker. The metrics are read
from the Embedded Metric Format lines Powertools prints (one per collection and metric, zeros included).
"""

from __future__ import annotations

import json
from typing import Any

from cnm_ingest import idempotency, reconcile
from tests.events import load_event

SWOT = ("SWOT_L2_LR_SSH", "2.0")


def cnm(identifier: str, collection: tuple[str, str] = SWOT) -> bytes:
    return json.dumps(
        {
            "version": "1.6.1",
            "provider": "PODAAC_SWOT",
            "collection": {"name": collection[0], "version": collection[1]},
            "submissionTime": "2026-12-07T00:00:00Z",
            "identifier": identifier,
            "product": {
                "name": identifier,
                "files": [{"type": "data", "uri": "s3://b/k.nc", "name": "k.nc", "size": 1}],
            },
        }
    ).encode()


def emf(text: str) -> dict[tuple[str, str], float]:
    """{(collection, metric): value} from the EMF lines in ``text``."""
    out = {}
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or "_aws" not in doc or "collection" not in doc:
            continue
        for block in doc["_aws"]["CloudWatchMetrics"]:
            assert block["Dimensions"] == [["collection"]]  # exactly the alarms' dimension set
            for metric in block["Metrics"]:
                value = doc[metric["Name"]]
                out[(doc["collection"], metric["Name"])] = value[0] if isinstance(value, list) else value
    return out


def test_scheduled_run_publishes_per_collection_metrics(complete_world, capsys):
    w = complete_world
    kinesis = w.client("kinesis")
    notifications, responses = w.stream("notifications"), w.stream("responses")
    put = {}
    for ident in ("rh-answered", "rh-lost-1", "rh-lost-2", "rh-parked"):
        put[ident] = kinesis.put_record(StreamARN=notifications, Data=cnm(ident), PartitionKey=ident)
    put["undecodable"] = kinesis.put_record(StreamARN=notifications, Data=b"\xff\xfe not JSON", PartitionKey="x")
    kinesis.put_record(StreamARN=notifications, Data=cnm("rh-other", ("OTHER", "1")), PartitionKey="o")
    answer = {"identifier": "rh-answered", "response": {"status": "SUCCESS"}, "version": "1.6.1"}
    kinesis.put_record(StreamARN=responses, Data=json.dumps(answer).encode(), PartitionKey="rh-answered")
    # parked by the consumer: its park marker (what the function reads; it never touches the DLQ)
    with w.env("message_consumer"):
        key = idempotency.record_key(
            {
                "streamArn": notifications,
                "shardId": put["rh-parked"]["ShardId"],
                "sequenceNumber": put["rh-parked"]["SequenceNumber"],
            }
        )
        idempotency.reset()
        idempotency.Once.from_env().run(idempotency.PARK, key, lambda: 1)
        idempotency.reset()
    capsys.readouterr()

    summary: dict[str, Any] = w.invoke("reconcile", load_event("eventbridge_scheduled"), RECONCILE_SETTLE_SECONDS="0")

    printed = capsys.readouterr().out
    assert summary["counts"] == {
        reconcile.SUCCESS: 1,
        reconcile.FAILURE: 0,
        reconcile.PARKED: 1,
        reconcile.RUNNING: 0,
        reconcile.STUCK: 0,
        reconcile.UNANSWERED: 0,
        reconcile.LOST: 4,
    }
    assert summary["gaps"] == []
    swot = f"{SWOT[0]}__{SWOT[1]}"
    assert summary["metrics"] == {
        swot: {"Unanswered": 1, "Stuck": 0, "Lost": 2},
        "OTHER__1": {"Unanswered": 0, "Stuck": 0, "Lost": 1},
        reconcile.UNKNOWN_COLLECTION: {"Unanswered": 0, "Stuck": 0, "Lost": 1},
    }
    # published per collection, each metric (zeros too), in the deployed namespace
    assert emf(printed) == {
        (c, m): float(v) if isinstance(v, float) else v for c, ms in summary["metrics"].items() for m, v in ms.items()
    }
    namespace = w.function("reconcile").environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == w.prefix and f'"Namespace":"{namespace}"' in printed.replace(" ", "")
    # reading changed nothing: no execution started, nothing parked, no answer added
    assert w.executions() == [] and w.dlq_bodies() == []
    assert [r["identifier"] for r in w.responses()] == ["rh-answered"]
