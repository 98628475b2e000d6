"""Powertools Logger and Metrics for a handler, with defaults when the environment names none.

``POWERTOOLS_SERVICE_NAME`` / ``POWERTOOLS_METRICS_NAMESPACE`` win when set
(Terraform sets them); otherwise the service is the handler's name and the
namespace ``cnm-ingest``, so metrics are never dropped for lack of a namespace.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

DEFAULT_NAMESPACE = "cnm-ingest"


def tools(service: str) -> tuple[Logger, Metrics]:
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or service
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    return Logger(service=service), Metrics(namespace=namespace, service=service)
