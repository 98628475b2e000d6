"""Lenient input: turn what real providers send into a CNM notification the schema accepts.

Called by :func:`cnm_ingest.ingest.plan` on every decoded record, before schema
validation. This is the call point only (an identity); the PO.DAAC/Cumulus
compatibility work (issue 13) owns the body.
"""

from __future__ import annotations

from typing import Any


def normalize_notification(doc: Any) -> tuple[Any, list[str]]:
    """``(notification, notes)``: the (possibly rewritten) document and what was changed, for the logs."""
    return doc, []
