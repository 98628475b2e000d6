"""The status store: executions and granules in one table, one key scheme, this one writer module.

Two writers feed it, both through this module:

- the **recorder** (its main writer): EventBridge delivers every "Step Functions Execution Status
  Change" of the module's state machines (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED) to an SQS
  buffer, and the recorder function hands each event to :func:`record_event`. It also sees executions
  that were aborted, timed out, or failed before their first task ran;
- the workflow's **StartStatus** and **StopStatus** steps (:func:`start`, :func:`stop`): RUNNING with
  the granule ids at start, the workflow's outcome (SUCCEEDED, or FAILED with the original error) at
  stop. They keep the store right without the recorder (``create_recorder = false``) and before its
  events arrive.

One table (``EXECUTIONS_TABLE``, ``<prefix>-executions``, created by ``modules/executions``), three
kinds of item:

- execution: ``pk = "EXECUTION#<execution arn>"``, ``sk = "EXECUTION"``;
- granule summary (latest attempt): ``pk = "GRANULE#<granule id>"``, ``sk = "SUMMARY#<collection id>"``;
- granule attempt (one per execution): ``pk = "GRANULE#<granule id>"``,
  ``sk = "ATTEMPT#<collection id>#<execution start>#<execution arn>"``.

Execution and summary items carry ``status_key = "<KIND>#<status>"`` and
``updated_at``, the keys of the ``by_status`` index (counts and lists by status
over a time window with one Query each).

Ordering and idempotency: each write has a rank, ``redrive_count * 10`` + 1 for
RUNNING (either writer), 2 for StopStatus's outcome, 3 for the recorder's terminal
statuses (Step Functions' own word on how the execution ended). A write is
conditional on the stored rank being lower, so a redelivered event or a retried
step changes nothing, a RUNNING arriving after SUCCEEDED does not regress the
status, StopStatus never overwrites the recorder's ABORTED or TIMED_OUT, and the
recorder's terminal status replaces StopStatus's. Every write still fills the
``events`` history (``ev:<status>:<redrive count>`` for the recorder,
``ev:<status>:<redrive count>:<step>`` for a step, each only set when absent).
A granule summary moves only to an attempt that started later (or the same
attempt at a higher rank). The rank, not the clock, orders the two writers: a
Lambda's clock and EventBridge's event times are not comparable to the
millisecond.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from cnm_ingest import aws
from cnm_ingest.cnm import notification
from cnm_ingest.errors import ConfigurationError, NotAnExecutionEvent, WorkflowPayloadError
from cnm_ingest.workflow import payload

DETAIL_TYPE = "Step Functions Execution Status Change"
RUNNING = "RUNNING"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
STATUSES = (RUNNING, *TERMINAL)
STATUS_INDEX = "by_status"
EXECUTION, GRANULE = "EXECUTION", "GRANULE"
# DynamoDB items are limited to 400 KB: bound what comes from outside.
MAX_CAUSE_BYTES = 32 * 1024
MAX_ERROR_BYTES = 1024
MAX_FIELD_BYTES = 2048
MAX_CNM_BYTES = 100 * 1024
MAX_GRANULES = 100
REINGEST_MARK = "reingest"
# What describes one state's outcome: dropped when a later state without them is written.
STATE_ATTRIBUTES = ("stopped_at", "error", "cause", "original_error", "input_error")

Event = dict[str, Any]
InputLoader = Callable[[str], "str | None"]


# --- small helpers -------------------------------------------------------------------------


def clean(value: Any, limit: int = MAX_FIELD_BYTES) -> str:
    """A string DynamoDB accepts: lone surrogates replaced, cut to ``limit`` UTF-8 bytes on a character boundary."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    marker = f"...[{len(data) - limit} bytes cut]"
    return data[: max(0, limit - len(marker))].decode("utf-8", "ignore") + marker


def iso(value: Any) -> str | None:
    """Epoch milliseconds (Step Functions' startDate/stopDate) or an ISO string -> ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        elif isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# Steps that write through this module (the state names of the workflow).
START_STATUS, STOP_STATUS = "StartStatus", "StopStatus"
# What StopStatus may record: the workflow's outcome as it reaches its last task.
STEP_OUTCOMES = ("SUCCEEDED", "FAILED")


def rank(status: str, redrive_count: int = 0, step: str | None = None) -> int:
    """The order of a write: RUNNING 1, StopStatus's outcome 2, the recorder's terminal status 3 (+10 per redrive)."""
    if status == RUNNING:
        return redrive_count * 10 + 1
    return redrive_count * 10 + (2 if step else 3)


def execution_key(arn: str) -> dict[str, str]:
    return {"pk": f"EXECUTION#{arn}", "sk": EXECUTION}


def granule_pk(granule_id: str) -> str:
    return f"GRANULE#{granule_id}"


def summary_sk(collection: str) -> str:
    return f"SUMMARY#{collection}"


def attempt_sk(collection: str, started_at: str, arn: str) -> str:
    return f"ATTEMPT#{collection}#{started_at}#{arn}"


def is_reingest(execution_name: str) -> bool:
    return f"-{REINGEST_MARK}-" in f"-{execution_name}"


# --- reading the workflow message ------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def json_value(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def workflow_cnm(message: dict[str, Any]) -> dict[str, Any] | None:
    """The CNM of a workflow message: ``meta.cnm``, inline or offloaded to the payload bucket
    (``meta.cnm_ref``, read with :func:`cnm_ingest.workflow.payload.cnm`), else a legacy ``payload.cnm``.

    A reference that cannot be read (not the payload bucket's ``workflow/<sha256>``, the object gone
    or changed, ``PAYLOAD_BUCKET`` unset) gives None: the record keeps what else is known. A transient
    S3 error propagates, so the event is retried rather than recorded without its granules.
    """
    try:
        found = payload.cnm(message)
    except (WorkflowPayloadError, ConfigurationError):
        found = None
    if isinstance(found, dict):
        return found
    holder = message.get("payload")
    if isinstance(holder, dict) and isinstance(holder.get("cnm"), dict):
        return holder["cnm"]
    return None


def _granules(message: dict[str, Any]) -> Any:
    """``payload.granules``, inline or offloaded; None when absent or unreadable."""
    try:
        return payload.granules(message)
    except (WorkflowPayloadError, ConfigurationError):
        return None


def _granule_ids(message: dict[str, Any], cnm: dict[str, Any] | None) -> list[str]:
    granules = _granules(message)
    ids = (
        [g["granuleId"] for g in granules if isinstance(g, dict) and isinstance(g.get("granuleId"), str)]
        if isinstance(granules, list)
        else []
    )
    if not ids and cnm is not None:
        meta = _obj(message.get("meta"))
        try:
            from cnm_ingest.workflow.task import collection_config
            from cnm_ingest.workflow.translate_message import granule_id

            ids = [granule_id(cnm, collection_config(meta))]
        except Exception:  # a CNM too broken to name its granule: only the execution is recorded
            ids = []
    return [clean(i, 1024) for i in dict.fromkeys(ids) if i][:MAX_GRANULES]


def _collection_id(message: dict[str, Any], cnm: dict[str, Any] | None) -> str | None:
    meta = _obj(message.get("meta"))
    coll = _obj(meta.get("collection"))
    name = coll.get("name") or (notification.collection_name(cnm) if cnm else None)
    version = coll.get("version") or (notification.collection_version(cnm) if cnm else None)
    if not isinstance(name, str) or not name:
        return None
    from cnm_ingest.workflow.translate_message import collection_id

    return collection_id(name, version if isinstance(version, str) else None)


def facts_from_input(text: Any) -> dict[str, Any]:
    """What a record keeps from the execution input (JSON text; never raises but for a transient S3 error)."""
    message = json_value(text)
    if not isinstance(message, dict):
        return {"input_error": "no input" if text in (None, "") else "input is not a JSON object"}
    return facts_from_message(message)


def facts_from_message(message: dict[str, Any]) -> dict[str, Any]:
    """What a record keeps from a workflow message (the execution input, or a step's message)."""
    meta = _obj(message.get("meta"))
    cumulus = _obj(message.get("cumulus_meta"))
    cnm = workflow_cnm(message)
    facts: dict[str, Any] = {"granule_ids": _granule_ids(message, cnm)}
    collection = _collection_id(message, cnm)
    if collection:
        facts["collection"] = clean(collection, 1024)
    provider = _obj(meta.get("provider")).get("id")
    provider = provider or (cnm or {}).get("provider")
    if isinstance(provider, str):
        facts["provider"] = clean(provider, 1024)
    rule = _obj(meta.get("rule")).get("name")
    if isinstance(rule, str):
        facts["rule"] = clean(rule, 1024)
    if cnm and isinstance(cnm.get("identifier"), str):
        facts["cnm_identifier"] = clean(cnm["identifier"], 1024)
    source = cumulus.get("source")
    if isinstance(source, dict):
        facts["source"] = {
            k: clean(source[k], 1024)
            for k in ("stream_arn", "shard_id", "sequence_number", "partition_key", "arrival")
            if isinstance(source.get(k), str)
        }
    if cnm is not None:
        text_cnm = json.dumps(cnm, separators=(",", ":"), ensure_ascii=False, default=str)
        if len(text_cnm.encode("utf-8", "replace")) <= MAX_CNM_BYTES:
            facts["cnm"] = clean(text_cnm, MAX_CNM_BYTES)
    return facts


# --- the event -------------------------------------------------------------------------------


def parse_event(event: Any, load_input: InputLoader | None = None) -> dict[str, Any]:
    """The record fields of one EventBridge event (``NotAnExecutionEvent`` when it is not one).

    When Step Functions left the input out of the event (over 256 KiB:
    ``inputDetails.included`` false), ``load_input(execution_arn)`` reads it
    (DescribeExecution).
    """
    if isinstance(event, (str, bytes)):
        event = json_value(event if isinstance(event, str) else event.decode("utf-8", "replace"))
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        raise NotAnExecutionEvent("not an EventBridge event with a detail object")
    arn, status = detail.get("executionArn"), detail.get("status")
    if not isinstance(arn, str) or not arn.startswith("arn:") or status not in STATUSES:
        raise NotAnExecutionEvent(f"not an execution status change (status {clean(status, 64)!r})")
    redrives = detail.get("redriveCount")
    redrives = redrives if isinstance(redrives, int) and not isinstance(redrives, bool) and redrives >= 0 else 0
    text = detail.get("input")
    if text is None and load_input is not None and (detail.get("inputDetails") or {}).get("included") is False:
        text = load_input(arn)
    name: str = detail["name"] if isinstance(detail.get("name"), str) else arn.rsplit(":", 1)[-1]
    started = iso(detail.get("startDate")) or iso(event.get("time")) or "unknown"
    fields: dict[str, Any] = {
        "execution_arn": clean(arn, 1024),
        "execution_name": clean(name, 256),
        "state_machine_arn": clean(detail.get("stateMachineArn") or "", 1024),
        "status": status,
        "redrive_count": redrives,
        "started_at": started,
        "event_time": iso(event.get("time")) or iso(detail.get("stopDate")) or started,
        "reingest": is_reingest(name),
        **facts_from_input(text),
    }
    stopped = iso(detail.get("stopDate"))
    if status != RUNNING and stopped:
        fields["stopped_at"] = stopped
    if detail.get("error") is not None:
        fields["error"] = clean(detail["error"], MAX_ERROR_BYTES)
    if detail.get("cause") is not None:
        fields["cause"] = clean(detail["cause"], MAX_CAUSE_BYTES)
    if status != RUNNING and (detail.get("error") is not None or detail.get("cause") is not None):
        # the error behind CnmResponse's WorkflowError, and its CNM error code (what StopStatus recorded)
        from cnm_ingest.workflow.task import original_error

        original = original_error({"Error": detail.get("error"), "Cause": detail.get("cause")})
        fields["original_error"] = {
            "Error": clean(original["Error"], MAX_ERROR_BYTES),
            "errorCode": clean(original["errorCode"], 64),
            "errorMessage": clean(original["errorMessage"], MAX_ERROR_BYTES * 4),
        }
    return fields


# --- writing ---------------------------------------------------------------------------------

_SERIALIZER = TypeSerializer()


def _attr(value: Any) -> Any:
    return _SERIALIZER.serialize(value)


def _update(
    table: str,
    key: dict[str, str],
    values: dict[str, Any],
    *,
    condition: str | None = None,
    extra_set: tuple[str, ...] = (),
    extra_values: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
    replace: bool = False,
) -> bool:
    """One UpdateItem; False when the condition did not hold (nothing written).

    ``replace``: the item now describes ``values``' state, so the outcome attributes of an earlier state
    that ``values`` lacks (an earlier attempt's error, a stop time) are removed.
    """
    stale = [a for a in STATE_ATTRIBUTES if a not in values] if replace else []
    attr_names = {f"#{k}": k for k in [*values, *stale]} | (names or {})
    sets = [f"#{k} = :{k}" for k in values] + list(extra_set)
    params: dict[str, Any] = {
        "TableName": table,
        "Key": {k: {"S": v} for k, v in key.items()},
        "UpdateExpression": "SET "
        + ", ".join(sets)
        + (" REMOVE " + ", ".join(f"#{a}" for a in stale) if stale else ""),
        "ExpressionAttributeNames": attr_names,
        "ExpressionAttributeValues": {f":{k}": _attr(v) for k, v in {**values, **(extra_values or {})}.items()},
    }
    if condition:
        params["ConditionExpression"] = condition
    return aws.update_item_if(params)


def event_attr(status: str, redrive_count: int) -> str:
    """The attribute holding the time of one status event (``ev:<status>:<redrive count>``)."""
    return f"ev:{status}:{redrive_count}"


def events_of(item: dict[str, Any]) -> dict[str, str]:
    """``{"<status>:<redrive count>": time}`` from an item's ``ev:`` attributes, oldest first."""
    found = {k[3:]: v for k, v in item.items() if k.startswith("ev:")}
    return dict(sorted(found.items(), key=lambda kv: str(kv[1])))


def _write(table: str, key: dict[str, str], values: dict[str, Any], event: str, when: str, condition: str) -> bool:
    """Write the item when ``condition`` holds (or it is new); always add the event to its history once.

    Returns True when the item itself was written.
    """
    names = {"#ev": event, "#status_rank": "status_rank"}
    history = ("#ev = if_not_exists(#ev, :when)",)
    if _update(
        table,
        key,
        values,
        extra_set=history,
        extra_values={"when": when},
        names=names,
        replace=True,
        condition=f"attribute_not_exists(#status_rank) OR ({condition})",
    ):
        return True
    # the item holds a newer (or the same) state: keep it, only note this event's time
    _update(table, key, {}, extra_set=history, extra_values={"when": when}, names={"#ev": event})
    return False


def record_event(table: str, event: Any, load_input: InputLoader | None = None) -> dict[str, Any]:
    """Record one status-change event.

    Returns ``{"execution_arn", "status", "written": bool, "granules": {id: summary written}}``;
    ``written`` is False for a redelivered or out-of-order event (its time is still kept in the history).
    """
    fields = parse_event(event, load_input)
    status, redrives = fields["status"], fields["redrive_count"]
    when = fields.get("stopped_at") or fields["event_time"] if status != RUNNING else fields["started_at"]
    return _record(table, fields, rank(status, redrives), event_attr(status, redrives), when)


def _record(table: str, fields: dict[str, Any], r: int, event: str, when: str) -> dict[str, Any]:
    """Write the execution, and each of its granules' attempt and summary, at rank ``r`` (see the module)."""
    status, arn = fields["status"], fields["execution_arn"]
    base = {k: v for k, v in fields.items() if k != "event_time"}
    newer_rank = "#status_rank < :status_rank"
    execution = {
        **base,
        "entity": EXECUTION,
        "status_rank": r,
        "status_key": f"{EXECUTION}#{status}",
        "updated_at": when,
    }
    written = _write(table, execution_key(arn), execution, event, when, newer_rank)
    collection = fields.get("collection") or "unknown"
    granules: dict[str, bool] = {}
    granule_ids: list[str] = fields.get("granule_ids") or []
    for gid in granule_ids:
        pk = granule_pk(gid)
        attempt: dict[str, Any] = {
            "entity": "ATTEMPT",
            "granule_id": gid,
            "collection": collection,
            "execution_arn": arn,
            "execution_name": fields["execution_name"],
            "status": status,
            "status_rank": r,
            "started_at": fields["started_at"],
            "updated_at": when,
            "reingest": fields["reingest"],
            **{k: fields[k] for k in ("stopped_at", "error", "cause", "original_error") if k in fields},
        }
        _write(
            table, {"pk": pk, "sk": attempt_sk(collection, fields["started_at"], arn)}, attempt, event, when, newer_rank
        )
        summary = {
            **{k: v for k, v in base.items() if k != "granule_ids"},
            "entity": GRANULE,
            "granule_id": gid,
            "collection": collection,
            "status_rank": r,
            "status_key": f"{GRANULE}#{status}",
            "updated_at": when,
        }
        # the summary follows the attempt that started last (ties: execution ARN), and its status never regresses
        newer_attempt = (
            "#started_at < :started_at OR (#started_at = :started_at AND "
            "(#execution_arn < :execution_arn OR (#execution_arn = :execution_arn AND "
            "#status_rank < :status_rank)))"
        )
        granules[gid] = _update(
            table,
            {"pk": pk, "sk": summary_sk(collection)},
            summary,
            replace=True,
            condition=f"attribute_not_exists(#status_rank) OR {newer_attempt}",
        )
    return {"execution_arn": arn, "status": status, "written": written, "granules": granules}


# --- the workflow's own steps (StartStatus, StopStatus) -----------------------------------------


def step_fields(message: dict[str, Any], execution: dict[str, Any], status: str, now: str) -> dict[str, Any] | None:
    """The record fields of a StartStatus/StopStatus write (None without an execution to key them by)."""
    arn, name = execution.get("id"), execution.get("name")
    arn = arn if isinstance(arn, str) else ""
    name = name if isinstance(name, str) else ""
    if not arn.startswith("arn:"):
        return None  # invoked outside Step Functions: the recorder's items are keyed by the ARN only
    name = name or arn.rsplit(":", 1)[-1]
    return {
        "execution_arn": clean(arn, 1024),
        "execution_name": clean(name, 256),
        "state_machine_arn": clean(execution.get("state_machine") or "", 1024),
        "status": status,
        "redrive_count": 0,
        "started_at": iso(execution.get("start_time")) or now,
        "reingest": is_reingest(name),
        **facts_from_message(message),
    }


def record_step(
    table: str, message: dict[str, Any], execution: dict[str, Any], step: str, *, now: str | None = None
) -> dict[str, Any]:
    """Record what StartStatus (RUNNING) or StopStatus (SUCCEEDED, or FAILED with ``exception``) knows.

    Returns what :func:`record_event` returns. A step's write ranks below the recorder's terminal status
    (module docstring): it fills the store when the recorder is absent or late, never overrides it.
    """
    now = now or iso(datetime.now(UTC)) or ""
    exception = message.get("exception") if step == STOP_STATUS else None
    status = RUNNING if step == START_STATUS else ("FAILED" if exception else "SUCCEEDED")
    fields = step_fields(message, execution, status, now)
    if fields is None:
        return {"execution_arn": None, "status": status, "written": False, "granules": {}}
    if status != RUNNING:
        fields["stopped_at"] = now
    if exception:
        from cnm_ingest.workflow.task import original_error

        raw = exception if isinstance(exception, dict) else {"Error": "UnknownError", "Cause": exception}
        original = original_error(exception)
        fields["error"] = clean(raw.get("Error") or "UnknownError", MAX_ERROR_BYTES)
        if raw.get("Cause") is not None:
            fields["cause"] = clean(raw["Cause"], MAX_CAUSE_BYTES)
        fields["original_error"] = {
            "Error": clean(original["Error"], MAX_ERROR_BYTES),
            "errorCode": clean(original["errorCode"], 64),
            "errorMessage": clean(original["errorMessage"], MAX_ERROR_BYTES * 4),
        }
    event = f"{event_attr(status, 0)}:{step}"
    when = now if status != RUNNING else fields["started_at"]
    return _record(table, fields, rank(status, 0, step if status != RUNNING else None), event, when)


def start(message: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
    """The StartStatus step (table from ``EXECUTIONS_TABLE``): the execution and its granules are RUNNING."""
    record_step(aws.env("EXECUTIONS_TABLE"), message, execution, START_STATUS)
    return message


def stop(message: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
    """The StopStatus step (table from ``EXECUTIONS_TABLE``): SUCCEEDED, or FAILED with the original error."""
    record_step(aws.env("EXECUTIONS_TABLE"), message, execution, STOP_STATUS)
    return message


# --- reading (the CLI) ------------------------------------------------------------------------


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values."""
    des = TypeDeserializer()
    out = {k: des.deserialize(v) for k, v in item.items()}
    return json.loads(json.dumps(out, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    try:
        return int(value) if int(value) == value else float(value)
    except (TypeError, ValueError):
        return str(value)


def get_execution(table: str, arn: str) -> dict[str, Any] | None:
    item = (
        aws.client("dynamodb")
        .get_item(TableName=table, Key={k: {"S": v} for k, v in execution_key(arn).items()}, ConsistentRead=True)
        .get("Item")
    )
    return plain(item) if item else None


def get_granule(table: str, granule_id: str, collection: str | None = None) -> dict[str, Any] | None:
    """``{"summaries": [...], "attempts": [...]}`` for a granule id (all collections unless given), or None."""
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": granule_pk(granule_id)}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    ddb = aws.client("dynamodb")
    while True:
        page = ddb.query(**params)
        items.extend(plain(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if collection:
        items = [i for i in items if i.get("collection") == collection]
    if not items:
        return None
    attempts = sorted((i for i in items if i["sk"].startswith("ATTEMPT#")), key=lambda i: i["sk"])
    summaries = [i for i in items if i["sk"].startswith("SUMMARY#")]
    return {"summaries": summaries, "attempts": attempts}


def query_status(
    table: str,
    kind: str,
    status: str,
    since: str,
    until: str,
    *,
    collection: str | None = None,
    provider: str | None = None,
    limit: int | None = None,
    count_only: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    """Items of ``kind`` (EXECUTION | GRANULE) in ``status`` updated in [since, until], newest first."""
    params: dict[str, Any] = {
        "TableName": table,
        "IndexName": STATUS_INDEX,
        "ScanIndexForward": False,
        "KeyConditionExpression": "status_key = :k AND updated_at BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":k": {"S": f"{kind}#{status}"}, ":a": {"S": since}, ":b": {"S": until}},
    }
    filters = []
    for attr, value in (("collection", collection), ("provider", provider)):
        if value:
            filters.append(f"#{attr} = :{attr}")
            params.setdefault("ExpressionAttributeNames", {})[f"#{attr}"] = attr
            params["ExpressionAttributeValues"][f":{attr}"] = {"S": value}
    if filters:
        params["FilterExpression"] = " AND ".join(filters)
    if count_only:
        params["Select"] = "COUNT"
    ddb = aws.client("dynamodb")
    count, items = 0, []  # type: int, list[dict[str, Any]]
    while True:
        page = ddb.query(**params)
        count += page.get("Count", 0)
        items.extend(plain(i) for i in page.get("Items", []))
        if limit is not None and len(items) >= limit:
            return count, items[:limit]
        if "LastEvaluatedKey" not in page:
            return count, items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
