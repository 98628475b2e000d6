"""Scheduled reconciliation (EventBridge schedule -> this function): fates of a trailing window as metrics.

Each run reconciles [now - RECONCILE_WINDOW_SECONDS, now - RECONCILE_SETTLE_SECONDS] (the most recent
records are still being started) with :mod:`cnm_ingest.reconcile`, reading the parked records from the
idempotency markers (the DLQ is never touched), and publishes per collection (dimension ``collection``)
the metrics Unanswered, Stuck and Lost in the product's namespace; zeros too, so an alarm sees the
collection recover. It changes nothing: ``cnm-ingest reconcile --fix`` acts.
"""

from __future__ import annotations

import cnm_ingest.coldstart

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from cnm_ingest import aws, observability, reconcile

logger, metrics = observability.tools("reconcile")


def _seconds(value: str | None, default: int) -> timedelta:
    return timedelta(seconds=int(value or default))


def run(now: datetime) -> reconcile.Report:
    end = now - _seconds(os.environ.get("RECONCILE_SETTLE_SECONDS"), 300)
    start = end - _seconds(os.environ.get("RECONCILE_WINDOW_SECONDS"), 3600)
    facts = reconcile.collect(
        notification_stream=aws.env("NOTIFICATION_STREAM_ARN"),
        response_stream=aws.env("RESPONSE_STREAM_ARN"),
        executions_table=aws.env("EXECUTIONS_TABLE"),
        start=start,
        end=end,
        now=now,
    )
    facts.parked = reconcile.parked_by_markers(facts, aws.env("IDEMPOTENCY_TABLE"))
    return reconcile.decide(facts, stuck_after=_seconds(os.environ.get("RECONCILE_STUCK_AFTER_SECONDS"), 7200))


def publish(report: reconcile.Report) -> None:
    """One EMF document per collection: Unanswered, Stuck and Lost with the one dimension ``collection`` (no
    ``service`` dimension: the alarms of modules/reconcile name exactly that dimension set)."""
    for collection, values in sorted(report.metrics().items()):
        emf = AmazonCloudWatchEMFProvider(namespace=metrics.namespace, service="")
        emf.add_dimension(name="collection", value=collection[:250] or reconcile.UNKNOWN_COLLECTION)
        for name, value in values.items():
            emf.add_metric(name=name, unit=MetricUnit.Count, value=value)
        emf.flush_metrics()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = run(datetime.now(UTC))
    publish(report)
    summary = {
        "from": reconcile.iso(report.start),
        "to": reconcile.iso(report.end),
        "counts": report.counts(),
        "gaps": [g.as_dict() for g in report.gaps],
        "metrics": report.metrics(),
    }
    unaccounted = report.unaccounted()
    if unaccounted:
        logger.warning(
            "records not accounted for",
            extra={**summary, "rows": [r.as_dict() for r in unaccounted[:100]]},
        )
    else:
        logger.info("every record accounted for", extra=summary)
    return summary


cnm_ingest.coldstart.done()  # last: see cnm_ingest.coldstart
