"""The Cumulus-style workflow message and deterministic execution names."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from . import cnm as cnm_mod

# Step Functions execution names: 1-80 chars of [0-9A-Za-z_-].
_NAME_MAX = 80
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]+")


def execution_name(identifier: str, sequence_number: str, rule_name: str = "") -> str:
    """A Step Functions execution name derived from the record.

    The same record (same CNM identifier, same stream sequence number, same
    rule) always gives the same name, so a redelivered record hits
    ``ExecutionAlreadyExists`` instead of starting a second execution. A
    readable prefix is kept for operators; a SHA-256 digest of the full key
    keeps names unique within the 80-character limit.
    """
    key = f"{rule_name}\x1f{identifier}\x1f{sequence_number}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    prefix = _UNSAFE.sub("-", identifier).strip("-")[: _NAME_MAX - len(digest) - 1]
    return f"{prefix}-{digest}" if prefix else digest


def build_workflow_message(
    cnm: dict[str, Any],
    *,
    rule: dict[str, Any],
    collection: dict[str, Any],
    provider: dict[str, Any],
    stack: str,
    buckets: dict[str, Any],
    state_machine_arn: str,
    execution: str,
    source: dict[str, Any],
) -> dict[str, Any]:
    """Build the input of a workflow execution for one CNM notification.

    ``source`` describes where the record came from (stream ARN, shard,
    sequence number) so every later step, and every FAILURE response, can be
    traced back to it.
    """
    return {
        "cumulus_meta": {
            "state_machine": state_machine_arn,
            "execution_name": execution,
            "message_source": "kinesis",
            "source": source,
        },
        "meta": {
            "stack": stack,
            "buckets": buckets,
            "collection": collection,
            "provider": provider,
            "rule": {"name": rule["name"], "meta": rule.get("meta", {})},
            "workflow_name": rule.get("workflow_name", ""),
            "cnm": cnm,
        },
        "payload": {"cnm": cnm, "files": cnm_mod.product_files(cnm)},
    }
