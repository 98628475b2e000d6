"""Execution and granule status in the DynamoDB status table.

One table, two kinds of item (see modules/workflow/README.md):

- execution: ``pk = "EXECUTION#<execution arn>"``, ``sk = "EXECUTION"``
- granule (latest ingest attempt): ``pk = "GRANULE#<collection id>#<granule id>"``, ``sk = "GRANULE"``

Both carry ``status`` (RUNNING | COMPLETED | FAILED), timestamps, the error
when failed, and ``status_key = "<KIND>#<status>"`` with ``updated_at``, the
keys of the ``by_status`` index, so an operator lists e.g. every failed
granule with one Query. A granule item is only overwritten by an execution
that started at or after the one that wrote it, so a late, older execution
never masks a newer result.
"""

from __future__ import annotations

from typing import Any

from cnm_ingest import aws
from cnm_ingest.cnm import notification
from cnm_ingest.cnm.response_message import now_iso
from cnm_ingest.errors import WorkflowPayloadError
from cnm_ingest.workflow import payload
from cnm_ingest.workflow.task import Execution, Message, collection_config, original_error
from cnm_ingest.workflow.translate_message import collection_id, granule_id

RUNNING, COMPLETED, FAILED = "RUNNING", "COMPLETED", "FAILED"
STATUS_INDEX = "by_status"


def execution_key(execution: Execution) -> dict[str, str]:
    return {"pk": f"EXECUTION#{execution.get('id') or execution.get('name')}", "sk": "EXECUTION"}


def granule_key(collection: str, granule: str) -> dict[str, str]:
    return {"pk": f"GRANULE#{collection}#{granule}", "sk": "GRANULE"}


def _collection(message: Message, cnm: dict[str, Any]) -> tuple[str, str | None]:
    meta = message.get("meta") or {}
    coll = meta.get("collection")
    if not isinstance(coll, dict):
        coll = {}
    name = coll.get("name") or (notification.collection_name(cnm) if isinstance(cnm, dict) else None) or "unknown"
    version = coll.get("version") or (notification.collection_version(cnm) if isinstance(cnm, dict) else None)
    return str(name), version


def granule_ids(message: Message, cnm: dict[str, Any]) -> list[str]:
    """Granule ids from ``payload.granules``, else derived from the CNM (best effort)."""
    try:
        granules = payload.granules(message)
    except WorkflowPayloadError:
        granules = None
    if isinstance(granules, list) and granules:
        return [g["granuleId"] for g in granules if isinstance(g, dict) and g.get("granuleId")]
    meta = message.get("meta") or {}
    try:
        return [granule_id(cnm, collection_config(meta))]
    except Exception:  # a CNM too broken to name its granule: only the execution is recorded
        return []


def _common(
    message: Message,
    cnm: dict[str, Any],
    execution: Execution,
    status: str,
    kind: str,
    now: str,
    error: dict[str, str] | None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "entity": kind,
        "status": status,
        "status_key": f"{kind}#{status}",
        "updated_at": now,
        "execution_arn": execution.get("id") or "",
        "execution_name": execution.get("name") or "",
        "state_machine_arn": execution.get("state_machine") or "",
        "execution_started_at": execution.get("start_time") or now,
        "collection": collection_id(*_collection(message, cnm)),
    }
    if isinstance(cnm, dict):
        for field, attr in (("identifier", "cnm_identifier"), ("provider", "provider")):
            if isinstance(cnm.get(field), str):
                item[attr] = cnm[field]
    item["started_at" if status == RUNNING else "completed_at"] = now
    if error:
        item["error"] = error
    return item


def _update(
    table: str, key: dict[str, str], values: dict[str, Any], condition: str | None = None, remove: tuple[str, ...] = ()
) -> bool:
    names = {f"#{k}": k for k in values}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in values)
    if remove:
        names.update({f"#{k}": k for k in remove})
        expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
    params: dict[str, Any] = {
        "TableName": table,
        "Key": {k: {"S": v} for k, v in key.items()},
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {f":{k}": _attr(v) for k, v in values.items()},
    }
    if condition:
        params["ConditionExpression"] = condition
    return aws.update_item_if(params)


def _attr(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {k: _attr(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [_attr(v) for v in value]}
    if value is None:
        return {"NULL": True}
    return {"S": str(value)}


def _record(table: str, message: Message, execution: Execution, status: str, error: dict[str, str] | None) -> list[str]:
    now = now_iso()
    cnm = payload.cnm_if_readable(message)
    granules = granule_ids(message, cnm)
    values = {**_common(message, cnm, execution, status, "EXECUTION", now, error), "granule_ids": granules}
    remove = tuple(a for a, stale in (("error", not error), ("completed_at", status == RUNNING)) if stale)
    _update(table, execution_key(execution), values, remove=remove)
    for gid in granules:
        _update(
            table,
            granule_key(values["collection"], gid),
            {**_common(message, cnm, execution, status, "GRANULE", now, error), "granule_id": gid},
            condition="attribute_not_exists(execution_started_at) OR execution_started_at <= :execution_started_at",
            remove=remove,
        )
    return granules


def start(message: Message, execution: Execution) -> Message:
    """The StartStatus step (table from ``STATUS_TABLE``)."""
    return record_start(aws.env("STATUS_TABLE"), message, execution)


def stop(message: Message, execution: Execution) -> Message:
    """The StopStatus step (table from ``STATUS_TABLE``)."""
    return record_stop(aws.env("STATUS_TABLE"), message, execution)


def record_start(table: str, message: Message, execution: Execution) -> Message:
    """StartStatus: the execution (and its granule, when the CNM names one) is RUNNING."""
    _record(table, message, execution, RUNNING, None)
    return message


def record_stop(table: str, message: Message, execution: Execution) -> Message:
    """StopStatus: COMPLETED, or FAILED with the original error when ``exception`` is present."""
    exception = message.get("exception")
    if exception:
        _record(table, message, execution, FAILED, original_error(exception))
    else:
        _record(table, message, execution, COMPLETED, None)
    return message
