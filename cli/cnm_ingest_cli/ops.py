"""What the CLI commands do, as plain functions returning plain data (the commands only render it)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cnm_ingest import aws, dlq, executions, idempotency
from cnm_ingest.cnm import decode, notification, validate
from cnm_ingest.consumer import consume, hydrate, rulebook
from cnm_ingest.errors import RecordError
from cnm_ingest.workflow import payload

from .errors import NotFound, RefusedInput, StackNotFound
from .stack import Stack

Progress = Callable[[int], None]


def _noop(_: int) -> None:
    return None


# --- time ------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d{1,9})\s*([smhdw])$", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (UTC when no offset), ``now``, or relative to now: ``30m``, ``2h``, ``7d``.

    Anything else is a ValueError (the command line turns it into a usage error)."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if text == "now":
        return now
    m = _RELATIVE.match(text)
    try:
        if m:
            return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise ValueError(f"not a time: {text[:100]!r} (use ISO 8601, 'now', or 30m / 2h / 7d ago)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return executions.iso(moment) or ""


# --- status ----------------------------------------------------------------------------------


def counts(stack: Stack, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    table = stack.require_executions_table()
    out: dict[str, dict[str, int]] = {}
    for kind, label in ((executions.EXECUTION, "executions"), (executions.GRANULE, "granules")):
        out[label] = {
            s: executions.query_status(table, kind, s, iso(since), iso(until), count_only=True)[0]
            for s in executions.STATUSES
        }
    return out


def listing(
    stack: Stack,
    kind: str,
    statuses: Iterable[str],
    since: datetime,
    until: datetime,
    *,
    collection: str | None,
    provider: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    table = stack.require_executions_table()
    found: list[dict[str, Any]] = []
    for status in statuses:
        found.extend(
            executions.query_status(
                table, kind, status, iso(since), iso(until), collection=collection, provider=provider, limit=limit
            )[1]
        )
    found.sort(key=lambda i: str(i.get("updated_at")), reverse=True)
    return found[:limit]


def _history(arn: str, limit: int = 100) -> list[dict[str, Any]]:
    """The last events of the execution's Step Functions history (empty when it has expired or is unreadable)."""
    try:
        events = aws.client("stepfunctions").get_execution_history(
            executionArn=arn, reverseOrder=True, maxResults=limit
        )["events"]
    except ClientError:
        return []
    out = []
    for e in reversed(events):
        details = next((v for k, v in e.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
        out.append(
            {
                "id": e.get("id"),
                "time": executions.iso(e.get("timestamp")),
                "type": e.get("type"),
                "state": details.get("name"),
                "error": details.get("error"),
                "cause": executions.clean(details["cause"], 500) if details.get("cause") else None,
            }
        )
    return out


def _original_input(arn: str) -> dict[str, Any] | None:
    try:
        text = aws.client("stepfunctions").describe_execution(executionArn=arn).get("input")
    except ClientError:
        return None
    value = executions.json_value(text)
    return value if isinstance(value, dict) else None


def execution_detail(stack: Stack, ref: str) -> dict[str, Any]:
    table = stack.require_executions_table()
    arn = ref if ref.startswith("arn:") else stack.execution_arn(ref)
    item = executions.get_execution(table, arn)
    if item is None:
        raise NotFound(f"no execution record for {ref}")
    cnm = executions.json_value(item.get("cnm"))
    if cnm is None:
        message = _original_input(arn)
        cnm = executions.workflow_cnm(message) if message else None
    return {"execution": _shown(item), "events": executions.events_of(item), "cnm": cnm, "history": _history(arn)}


def granule_detail(stack: Stack, granule_id: str, collection: str | None = None) -> dict[str, Any]:
    found = executions.get_granule(stack.require_executions_table(), granule_id, collection)
    if found is None:
        raise NotFound(f"no granule {granule_id!r}" + (f" in collection {collection!r}" if collection else ""))
    return {
        "granule": [_shown(s) for s in found["summaries"]],
        "attempts": [_shown(a) | {"events": executions.events_of(a)} for a in found["attempts"]],
        "cnm": executions.json_value((found["summaries"] or [{}])[0].get("cnm")),
    }


def detail(stack: Stack, ref: str, collection: str | None = None) -> dict[str, Any]:
    """An execution (ARN or name) or a granule (id), whichever ``ref`` names."""
    if ref.startswith("arn:"):
        return execution_detail(stack, ref)
    try:
        return granule_detail(stack, ref, collection)
    except NotFound:
        try:
            return execution_detail(stack, ref)
        except NotFound:
            raise NotFound(f"no granule or execution {ref!r} in {stack.executions_table}") from None


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("ev:") and k not in ("cnm", "pk", "sk", "status_key")}


# --- send ------------------------------------------------------------------------------------


def cnm_files(paths: Iterable[str]) -> list[Path]:
    """The files named, and the ``*.json`` files under each directory named (sorted); a missing one is NotFound."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.json") if f.is_file()))
        elif p.exists():
            files.append(p)  # a file, or something that is not one (refused with the reason by send)
        else:
            raise NotFound(f"no file or directory {p}")
    return files


# A Kinesis record's data is at most 1 MiB: a larger file cannot be sent, so it is refused before it is read.
MAX_RECORD_BYTES = 1024 * 1024


def read_cnm_file(path: Path) -> bytes:
    """The file's bytes, or a RecordError saying why it cannot be sent (not a file, unreadable, empty, too big)."""
    try:
        if not path.is_file():
            raise RecordError(f"not a regular file: {path}")
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            raise RecordError(f"{size} bytes: larger than a Kinesis record ({MAX_RECORD_BYTES} bytes)")
        with path.open("rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_RECORD_BYTES:  # grew while being read
        raise RecordError(f"larger than a Kinesis record ({MAX_RECORD_BYTES} bytes)")
    if not data.strip():
        raise RecordError("empty file")
    return data


def send(stack: Stack, files: list[Path], progress: Progress = _noop) -> list[dict[str, Any]]:
    """Validate each file as a CNM notification and put the valid ones (partition key = identifier).

    The stack's stream is looked up at the first valid file: refusing files needs no AWS."""
    results = []
    for path in files:
        try:
            data = read_cnm_file(path)
            cnm = validate.validate_notification(decode.decode_json(data))
        except RecordError as exc:
            results.append({"file": str(path), "refused": str(exc)})
        else:
            stream = stack.notification_stream_arn
            put = aws.client("kinesis").put_record(StreamARN=stream, Data=data, PartitionKey=cnm["identifier"][:256])
            results.append(
                {
                    "file": str(path),
                    "identifier": cnm["identifier"],
                    "stream": stream,
                    "shard_id": put["ShardId"],
                    "sequence_number": put["SequenceNumber"],
                }
            )
        progress(1)
    return results


# --- stream reading --------------------------------------------------------------------------


def shards(stream_arn: str, only: Iterable[str] = ()) -> list[str]:
    kinesis = aws.client("kinesis")
    ids = [
        s["ShardId"]
        for page in kinesis.get_paginator("list_shards").paginate(StreamARN=stream_arn)
        for s in page["Shards"]
    ]
    wanted = list(only)
    unknown = set(wanted) - set(ids)
    if unknown:
        raise NotFound(f"no shard(s) {sorted(unknown)} in {stream_arn}")
    return [i for i in ids if not wanted or i in wanted]


def read_shard(
    stream_arn: str,
    shard_id: str,
    since: datetime | None,
    until: datetime | None = None,
    follow: bool = False,
    poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """Records of one shard from ``since`` (TRIM_HORIZON when None) to ``until`` or the tip (or on, with ``follow``:
    then an empty dict each time the shard has nothing new, so that one idle shard never blocks the others)."""
    kinesis = aws.client("kinesis")
    params: dict[str, Any] = {"StreamARN": stream_arn, "ShardId": shard_id}
    if since is None:
        params["ShardIteratorType"] = "TRIM_HORIZON"
    else:
        params.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=since)
    iterator = kinesis.get_shard_iterator(**params)["ShardIterator"]
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, StreamARN=stream_arn)
        for record in page["Records"]:
            arrival = record.get("ApproximateArrivalTimestamp")
            if until is not None and isinstance(arrival, datetime) and arrival > until:
                return
            yield record
        iterator = page.get("NextShardIterator")
        if not page["Records"] and not page.get("MillisBehindLatest"):
            if not follow:
                return
            yield {}  # idle: a reader following several shards moves on to the next one
            sleep(poll)


def responses(
    stack: Stack,
    *,
    since: datetime | None,
    identifier: str | None,
    collection: str | None,
    status: str | None,
    follow: bool = False,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """CNM responses on the response stream, filtered; ``follow`` keeps reading (round robin over shards)."""
    stream = stack.response_stream_arn
    readers = [read_shard(stream, s, since, follow=follow, sleep=sleep) for s in shards(stream)]
    shown = 0
    for reader in readers if not follow else [_interleave(readers)]:
        for record in reader:
            if not record:  # a followed shard with nothing new
                continue
            try:
                message = json.loads(record["Data"])
            except ValueError:
                message = {"undecodable": base64.b64encode(record["Data"]).decode("ascii")}
            if not isinstance(message, dict):
                continue
            if identifier and message.get("identifier") != identifier:
                continue
            if collection and notification.collection_name(message) != collection:
                continue
            if status and (message.get("response") or {}).get("status") != status:
                continue
            yield {
                "sequence_number": record["SequenceNumber"],
                "arrival": executions.iso(record.get("ApproximateArrivalTimestamp")),
                "message": message,
            }
            shown += 1
            if limit is not None and shown >= limit:
                return


def _interleave(readers: list[Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    while readers:
        for reader in list(readers):
            try:
                yield next(reader)
            except StopIteration:
                readers.remove(reader)


# --- DLQ -------------------------------------------------------------------------------------


def envelope_kind(body: str) -> str:
    value = executions.json_value(body)
    if dlq.is_envelope(value):
        return "envelope"
    if isinstance(value, dict):
        if "requestPayload" in value:
            return "lambda-async-failure"
        if value.get("Type") == "Notification":
            return "sns-notification"
        if "Records" in value:
            return "event"
    return "unknown"


@dataclass
class DlqMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent: str | None
    parked: list[dlq.ParkedRecord] = field(default_factory=list)
    error: str | None = None

    def as_dict(self, payloads: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "kind": envelope_kind(self.body),
            "receive_count": self.receive_count,
            "sent": self.sent,
            "records": [],
        }
        if self.error:
            out["error"] = self.error
        for p in self.parked:
            env, rec = p.envelope, p.envelope.get("record") or {}
            entry = {
                "source": env.get("source"),
                "reason": env.get("reason"),
                "error_type": env.get("error_type"),
                "sequence_number": rec.get("sequenceNumber"),
                "shard_id": rec.get("shardId"),
                "stream_arn": rec.get("streamArn"),
                "partition_key": rec.get("partitionKey"),
                "payload_s3": env.get("payload_s3"),
                "batch": env.get("batch"),
                "payload_bytes": None if p.payload is None else len(p.payload),
                "identifier": _identifier(p.payload),
            }
            if payloads:
                entry["payload"] = _payload_text(p.payload)
            out["records"].append(entry)
        return out


def _identifier(payload: bytes | None) -> str | None:
    value = executions.json_value(payload.decode("utf-8", "replace")) if payload else None
    return value.get("identifier") if isinstance(value, dict) and isinstance(value.get("identifier"), str) else None


def _payload_text(payload: bytes | None) -> Any:
    if payload is None:
        return None
    try:
        return {"text": payload.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(payload).decode("ascii")}


def receive_all(queue_url: str, visibility: int, limit: int | None = None) -> list[DlqMessage]:
    """Every message of the queue (held invisible for ``visibility`` seconds), decoded."""
    sqs = aws.client("sqs")
    seen: dict[str, DlqMessage] = {}
    empty_rounds = 0
    while empty_rounds < 2 and (limit is None or len(seen) < limit):
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in got if m["MessageId"] not in seen]
        empty_rounds = 0 if new else empty_rounds + 1
        for m in new:
            attrs = m.get("Attributes") or {}
            sent = attrs.get("SentTimestamp")
            msg = DlqMessage(
                m["MessageId"],
                m["ReceiptHandle"],
                m["Body"],
                int(attrs.get("ApproximateReceiveCount", 0)),
                executions.iso(int(sent)) if sent and sent.isdigit() else None,
            )
            try:
                msg.parked = dlq.records_from_dlq_message(m["Body"])
            except ClientError as exc:  # an offloaded payload that cannot be read
                msg.error = f"payload unreadable: {exc}"
            seen[m["MessageId"]] = msg
    return list(seen.values())


def release(queue_url: str, messages: Iterable[DlqMessage]) -> None:
    """Make held messages visible again."""
    sqs = aws.client("sqs")
    batch = list(messages)
    for i in range(0, len(batch), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(j), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for j, m in enumerate(batch[i : i + 10])
            ],
        )


def dlq_list(stack: Stack, limit: int | None = None, payloads: bool = False) -> list[dict[str, Any]]:
    messages = receive_all(stack.dlq_url, visibility=60, limit=limit)
    release(stack.dlq_url, messages)
    return [m.as_dict(payloads) for m in messages]


def dlq_show(stack: Stack, message_id: str) -> dict[str, Any]:
    messages = receive_all(stack.dlq_url, visibility=60)
    release(stack.dlq_url, messages)
    for m in messages:
        if m.message_id == message_id:
            return m.as_dict(payloads=True) | {"body": executions.json_value(m.body) or m.body}
    raise NotFound(f"no message {message_id} in {stack.dlq_url}")


def position_key(stream_arn: str, shard_id: str, sequence_number: str) -> str:
    return hashlib.sha256(f"{stream_arn}|{shard_id}|{sequence_number}".encode()).hexdigest()


def redrive_key(parked: dlq.ParkedRecord) -> str:
    """What identifies a parked record across DLQ messages: its stream position, else its payload."""
    rec = parked.envelope.get("record") or {}
    if rec.get("streamArn") and rec.get("shardId") and rec.get("sequenceNumber"):
        return position_key(rec["streamArn"], rec["shardId"], rec["sequenceNumber"])
    return hashlib.sha256(("payload|" + hashlib.sha256(parked.payload or b"").hexdigest()).encode()).hexdigest()


def redriven(table: str | None, key: str) -> bool:
    """True when a redrive has put this record back on the stream already."""
    if table is None:
        return False
    item = (
        aws.client("dynamodb")
        .get_item(TableName=table, Key={"pk": {"S": f"REDRIVE#{key}"}, "sk": {"S": "REDRIVE"}}, ConsistentRead=True)
        .get("Item")
        or {}
    )
    return item.get("state", {}).get("S") == "DONE"


CLAIM_SECONDS = 900


def _claim(table: str, key: str, message_id: str) -> str:
    """``"claimed"``, ``"done"`` (redriven before) or ``"busy"`` (another redrive holds it)."""
    ddb = aws.client("dynamodb")
    now = time.time()
    try:
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"REDRIVE#{key}"},
                "sk": {"S": "REDRIVE"},
                "entity": {"S": "REDRIVE"},
                "state": {"S": "CLAIMED"},
                "claimed_at": {"N": str(now)},
                "dlq_message_id": {"S": message_id},
            },
            ConditionExpression="attribute_not_exists(pk) OR (#s = :claimed AND claimed_at < :stale)",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":claimed": {"S": "CLAIMED"}, ":stale": {"N": str(now - CLAIM_SECONDS)}},
        )
        return "claimed"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
    return "done" if redriven(table, key) else "busy"


def _done(table: str, key: str, put: dict[str, Any]) -> None:
    aws.client("dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": f"REDRIVE#{key}"}, "sk": {"S": "REDRIVE"}},
        UpdateExpression="SET #s = :done, sequence_number = :seq, shard_id = :shard, redriven_at = :at",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={
            ":done": {"S": "DONE"},
            ":seq": {"S": put["SequenceNumber"]},
            ":shard": {"S": put["ShardId"]},
            ":at": {"S": iso(datetime.now(UTC))},
        },
    )


def _release_claim(table: str, key: str) -> None:
    aws.client("dynamodb").delete_item(
        TableName=table,
        Key={"pk": {"S": f"REDRIVE#{key}"}, "sk": {"S": "REDRIVE"}},
        ConditionExpression="#s = :claimed",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":claimed": {"S": "CLAIMED"}},
    )


# A DLQ message is deleted when every record in it ended so; anything else keeps it (and exits 7).
REDRIVEN = ("put", "already-redriven", "already-done", "answered", "already-answered")


def dlq_redrive(
    stack: Stack, message_ids: Iterable[str] = (), *, dry_run: bool = False, progress: Progress = _noop
) -> list[dict[str, Any]]:
    """Redrive DLQ messages, each side effect once; delete a message only when everything in it is redriven.

    - a parked record: its payload put back on the notification stream (``put``, or ``already-redriven`` by an
      earlier redrive; ``no-payload`` when its payload is gone);
    - a response envelope (CnmResponse could not deliver it): the response sent again to every response
      destination not yet reached, under CnmResponse's own once-markers (``answered``, or ``already-answered``);
    - a hydrate gap entry (records of a failed batch not read back): the range read again from the stream
      while it is in retention; each record found is put back (``put`` / ``already-redriven``) unless it was
      started, parked or answered already (``already-done``); what the stream no longer has is ``lost``, with
      its sequence range and count, and the entry stays;
    - ``undecodable``: not our envelope; ``busy``: another redrive holds the record; ``failed``: an AWS error.
    Dry run: ``would-put`` / ``would-answer`` / ``would-rehydrate``.
    """
    table = None if dry_run else stack.require_executions_table()
    wanted = set(message_ids)
    held = receive_all(stack.dlq_url, visibility=60 if dry_run else 300)
    chosen = [m for m in held if not wanted or m.message_id in wanted]
    missing = wanted - {m.message_id for m in chosen}
    outcomes: list[dict[str, Any]] = []
    finished: list[DlqMessage] = []
    redriver = Redriver(stack, table, dry_run)
    try:
        for m in chosen:
            results = []
            for parked in m.parked:
                env = parked.envelope
                if env.get("envelope") == "response":
                    results.append({"message_id": m.message_id, "kind": "response"} | redriver.response(env))
                elif env.get("missing"):
                    results.extend({"message_id": m.message_id, "kind": "gap"} | r for r in redriver.gap(env, m))
                else:
                    rec = env.get("record") or {}
                    entry = {
                        "message_id": m.message_id,
                        "kind": "record",
                        "sequence_number": rec.get("sequenceNumber"),
                        "identifier": _identifier(parked.payload),
                    }
                    if parked.payload is None:
                        entry.update(outcome="no-payload", reason="the parked payload is gone: nothing to put")
                    else:
                        entry |= redriver.put(redrive_key(parked), parked.payload, rec, entry["identifier"], m)
                    results.append(entry)
            if not m.parked:
                results.append(
                    {
                        "message_id": m.message_id,
                        "outcome": "undecodable",
                        "reason": m.error or f"not a cnm-ingest envelope ({envelope_kind(m.body)})",
                    }
                )
            if not dry_run and results and all(r["outcome"] in REDRIVEN for r in results):
                aws.client("sqs").delete_message(QueueUrl=stack.dlq_url, ReceiptHandle=m.receipt_handle)
                finished.append(m)
            outcomes.extend(results)
            progress(1)
    finally:
        release(stack.dlq_url, [m for m in held if m not in finished])
    if missing:
        raise NotFound(f"no message(s) {sorted(missing)} in {stack.dlq_url}")
    return outcomes


def not_redriven(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outcomes that leave something in the DLQ (a dry run's ``would-...`` are not)."""
    return [o for o in outcomes if o["outcome"] not in REDRIVEN and not o["outcome"].startswith("would-")]


class Redriver:
    """The side effects of one ``dlq redrive`` run, each once: puts on the notification stream (claimed in the
    executions table by stream position), responses (CnmResponse's markers in the workflow status table)."""

    def __init__(self, stack: Stack, table: str | None, dry_run: bool):
        self.stack, self.table, self.dry_run = stack, table, dry_run
        self._responder: dict[str, str] | None = None
        self._run: consume.Run | None = None

    def put(
        self, key: str, payload: bytes, rec: dict[str, Any], identifier: str | None, m: DlqMessage
    ) -> dict[str, Any]:
        if self.dry_run:
            return {"outcome": "would-put"}
        assert self.table is not None
        state = _claim(self.table, key, m.message_id)
        if state != "claimed":
            return {"outcome": "already-redriven" if state == "done" else "busy"}
        partition = rec.get("partitionKey") or identifier or key
        try:
            put = aws.client("kinesis").put_record(
                StreamARN=self.stack.notification_stream_arn, Data=payload, PartitionKey=str(partition)[:256]
            )
        except Exception as exc:
            _release_claim(self.table, key)
            return {"outcome": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        _done(self.table, key, put)
        return {"outcome": "put", "new_sequence_number": put["SequenceNumber"]}

    def response(self, env: dict[str, Any]) -> dict[str, Any]:
        """A parked CNM response sent again, once per execution, status and destination (CnmResponse's markers)."""
        from cnm_ingest.cnm import response_message
        from cnm_ingest.workflow import cnm_response

        context = env.get("failure_context") or {}
        execution = {"id": context.get("execution_arn") or "", "name": context.get("execution_name") or ""}
        try:
            response = env.get("response") or _s3_json(env.get("response_s3") or {})
            identifier = response.get("identifier")
            status = response["response"]["status"]
        except Exception as exc:
            return {"outcome": "failed", "reason": f"the parked response cannot be read: {type(exc).__name__}: {exc}"}
        out = {"identifier": identifier, "execution": execution["name"], "status": status}
        if not (execution["id"] or execution["name"]):
            return out | {"outcome": "failed", "reason": "the envelope names no execution to answer for"}
        if self.dry_run:
            return out | {"outcome": "would-answer"}
        variables = function_environment(self.stack, "cnm-response")
        table = variables.get("IDEMPOTENCY_TABLE") or f"{self.stack.prefix}-idempotency"  # CnmResponse's markers
        try:
            destinations = response_message.destinations_from_env(variables) or [self.stack.response_stream_arn]
            before = cnm_response.delivered_to(execution, status, table=table, destinations=destinations)
            if len(before) == len(destinations):
                return out | {"outcome": "already-answered", "destinations": destinations}
            cnm_response.deliver(response, execution, table=table, destinations=destinations)
        except Exception as exc:
            return out | {"outcome": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        return out | {"outcome": "answered", "destinations": [d for d in destinations if d not in before]}

    def gap(self, env: dict[str, Any], m: DlqMessage) -> list[dict[str, Any]]:
        """A hydrate gap entry: its range read again from the stream; what is there redriven, the rest lost."""
        info = env.get("batch") or {}
        stream, shard = info.get("streamArn"), info.get("shardId")
        start, end = info.get("startSequenceNumber"), info.get("endSequenceNumber")
        ranges = "; ".join(f"{r['from']}..{r['to']}" for r in env["missing"].get("ranges") or [])
        if not (stream and shard and start and end):
            return [{"outcome": "failed", "reason": f"the gap entry names no stream range ({ranges})"}]
        if self.dry_run:
            return [{"outcome": "would-rehydrate", "reason": f"{shard} {ranges}"}]
        try:
            read = hydrate.read_range(stream, shard, start, end, info.get("batchSize"))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            read = hydrate.ReadResult(reached_end=True, reason=f"the stream or shard is gone: {exc}")
        rows = []
        run = self.run()
        for rec in read.records:
            record = consume.SourceRecord(**rec)
            payload = base64.b64decode(rec["data"])
            row: dict[str, Any] = {"sequence_number": rec["sequenceNumber"], "identifier": _identifier(payload)}
            why = settled(run, record) or (
                "started already" if consume.already_started(record, run.store, run.settings) else None
            )
            if why:
                rows.append(row | {"outcome": "already-done", "reason": why})
            else:
                rows.append(row | self.put(position_key(stream, shard, rec["sequenceNumber"]), payload, rec, None, m))
        lost = hydrate.missing(read, start, end, info.get("batchSize"))
        if lost is not None:
            count = "?" if lost["count"] is None else lost["count"]
            where = "; ".join(f"{r['from']}..{r['to']}" for r in lost["ranges"])
            rows.append(
                {
                    "outcome": "lost",
                    "sequence_number": where,
                    "lost": lost,
                    "reason": f"{count} record(s) of {shard} {where} are no longer in the stream: {read.reason}",
                }
            )
        return rows

    def run(self) -> consume.Run:
        if self._run is None:
            self._run = replay_run(self.stack, routing_store(self.stack, ttl=60), consumer_settings(self.stack))
        return self._run


def _s3_json(pointer: dict[str, Any]) -> Any:
    body = aws.client("s3").get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read()
    return json.loads(body)


# --- reingest ----------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^0-9A-Za-z_-]+")


def reingest_name(identifier: str, now: datetime | None = None, key: str | None = None) -> str:
    """``<identifier>-reingest-<UTC time>-<digest>``, or ``<identifier>-reingest-<digest of key>`` for an
    idempotency ``key`` (the same key, the same name: a retried command starts nothing new); within 80
    characters, marked as a reingest."""
    prefix = _UNSAFE.sub("-", identifier).strip("-")[:40]
    if key is not None:
        digest = hashlib.sha256(f"{identifier}\x1f{key}".encode()).hexdigest()[:32]
        return f"{prefix}-{executions.REINGEST_MARK}-{digest}".lstrip("-")
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    digest = hashlib.sha256(f"{identifier}\x1f{stamp}".encode()).hexdigest()[:8]
    return f"{prefix}-{executions.REINGEST_MARK}-{stamp}-{digest}".lstrip("-")


def _force_replace(message: dict[str, Any]) -> None:
    meta = message.setdefault("meta", {})
    collection = meta.get("collection") if isinstance(meta.get("collection"), dict) else {}
    meta["collection"] = collection
    if isinstance(collection.get("config"), dict):
        collection["config"]["duplicate_handling"] = "replace"
    else:
        collection["duplicate_handling"] = "replace"


# What a reingest compares between the first run's workflow message and the new one (dotted paths of meta).
COMPARED = ("collection", "provider", "rule", "workflow_name")
_SECRET = re.compile(r"password|secret|token|private_key|credential|passphrase", re.IGNORECASE)


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    """``{"provider.allowed_prefixes": [...], ...}``: the leaves of a JSON value by dotted path (lists are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flat(v, f"{path}.{k}" if path else str(k))
        return out
    return {path: value}


def config_changes(first: dict[str, Any] | None, now: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two workflow messages' configuration (collection, provider, rule, workflow,
    state machine), one entry a setting; secrets (passwords, keys, tokens) are named, never shown."""

    def config(message: dict[str, Any]) -> dict[str, Any]:
        meta = message.get("meta") or {}
        found = {k: meta.get(k) for k in COMPARED}
        found["state_machine"] = (message.get("cumulus_meta") or {}).get("state_machine")
        return _flat(found)

    before, after = config(first or {}), config(now)
    changes = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        hidden = bool(_SECRET.search(path))
        changes.append(
            {
                "setting": path,
                "first_run": "(hidden)" if hidden and old is not None else old,
                "now": "(hidden)" if hidden and new is not None else new,
            }
        )
    return changes


def _replan(stack: Stack, item: dict[str, Any], first: dict[str, Any] | None) -> consume.Planned:
    """The execution the consumer would start for this execution's CNM now: the rules, collection and provider
    as the configuration tables have them now (as Cumulus's reingest reloads both)."""
    arn = item["execution_arn"]
    cnm = payload.cnm_if_readable(first) if first else {}
    cnm = cnm or executions.json_value(item.get("cnm"))
    if not isinstance(cnm, dict) or not cnm:
        raise RefusedInput(f"no stored CNM for {arn} and its input is gone: nothing to reingest from")
    source = (first or {}).get("cumulus_meta", {}).get("source") or item.get("source") or {}
    record = consume.SourceRecord(
        data=base64.b64encode(json.dumps(cnm).encode()).decode("ascii"),
        sequenceNumber=str(source.get("sequence_number") or ""),
        partitionKey=str(source.get("partition_key") or cnm.get("identifier") or ""),
        shardId=str(source.get("shard_id") or ""),
        streamArn=str(source.get("stream_arn") or stack.notification_stream_arn),
    )
    rule_name = item.get("rule") or ((first or {}).get("meta") or {}).get("rule", {}).get("name")
    try:
        planned = consume.plan(record, routing_store(stack, ttl=0), consumer_settings(stack))
    except RecordError as exc:  # the collection or provider deleted, the rule disabled, the CNM no longer valid
        raise RefusedInput(
            f"cannot reingest {arn.rsplit(':', 1)[-1]} with the configuration as it is now: {exc}"
        ) from None
    chosen = [p for p in planned if p.rule == rule_name] or ([] if rule_name else planned[:1])
    if not chosen:
        raise RefusedInput(
            f"rule {rule_name!r} of {arn.rsplit(':', 1)[-1]} no longer matches its CNM "
            f"(it matches {sorted(p.rule for p in planned)} now): send the CNM again to run those"
        )
    return chosen[0]


def function_environment(stack: Stack, role: str) -> dict[str, str]:
    """The environment variables of the stack's function ``<prefix>-<role>`` (its configuration), {} when
    unreadable."""
    name = stack.consumer_function if role == "message-consumer" else f"{stack.prefix}-{role}"
    try:
        env = aws.client("lambda").get_function_configuration(FunctionName=name)
    except ClientError:
        return {}
    return (env.get("Environment") or {}).get("Variables") or {}


def consumer_environment(stack: Stack) -> dict[str, str]:
    """The message consumer's environment variables (its function configuration), {} when unreadable."""
    return function_environment(stack, "message-consumer")


def routing_store(stack: Stack, ttl: float) -> rulebook.ConfigStore:
    """The configuration tables with the consumer's routing settings (default stream, provider mismatch)."""
    variables = consumer_environment(stack)
    return rulebook.ConfigStore(
        stack.rules_table,
        stack.collections_table,
        stack.providers_table,
        ttl=ttl,
        default_stream=variables.get("NOTIFICATION_STREAM_ARN") or stack.notification_stream_arn,
        allow_provider_mismatch=rulebook.flag(variables.get("ALLOW_PROVIDER_MISMATCH")),
    )


def consumer_settings(stack: Stack) -> consume.Settings:
    """STACK and BUCKETS as the message consumer has them (its function configuration), else the prefix alone."""
    variables = consumer_environment(stack)
    return consume.Settings(
        stack=variables.get("STACK") or stack.prefix, buckets=json.loads(variables.get("BUCKETS") or "{}")
    )


def reingest(
    stack: Stack, ref: str, collection: str | None = None, now: datetime | None = None, key: str | None = None
) -> dict[str, Any]:
    """Start the workflow again for a granule (its latest execution) or an execution, duplicates replaced, with
    the rule, collection and provider configuration as it is now; ``changes`` says what differs from the first
    run's (its workflow input; ``first_run_known`` is False when that input is gone)."""
    table = stack.require_executions_table()
    if ref.startswith("arn:"):
        arn = ref
    else:
        granule = executions.get_granule(table, ref, collection)
        if granule is None:
            try:
                return reingest(stack, stack.execution_arn(ref), collection, now, key)
            except NotFound:
                raise NotFound(f"no granule or execution {ref!r}") from None
        if len(granule["summaries"]) > 1:
            raise RefusedInput(
                f"granule {ref!r} is in several collections "
                f"({', '.join(s['collection'] for s in granule['summaries'])}): pass --collection"
            )
        arn = granule["summaries"][0]["execution_arn"]
    item = executions.get_execution(table, arn)
    if item is None:
        raise NotFound(f"no execution record for {arn}")
    first = _original_input(arn)
    planned = _replan(stack, item, first)
    message = json.loads(planned.input)
    changes = config_changes(first, message)
    cnm = payload.cnm_if_readable(message)
    name = reingest_name(str(cnm.get("identifier") or item.get("cnm_identifier") or "granule"), now, key)
    _force_replace(message)
    state_machine = planned.state_machine_arn
    cumulus = message.setdefault("cumulus_meta", {})
    cumulus["execution_name"] = name
    cumulus["state_machine"] = state_machine
    message["meta"]["reingest"] = {"of": arn}
    new_arn = consume.execution_arn(state_machine, name)
    # StartExecution succeeds for an existing execution with the same name and input (Step Functions'
    # own idempotency), so look first to report a retried reingest as not started
    started = not _exists(new_arn) and consume.start_execution(state_machine, name, message)
    return {
        "reingest_of": arn,
        "execution_name": name,
        "execution_arn": new_arn,
        "started": started,
        "rule": planned.rule,
        "first_run_known": first is not None,
        "changes": changes,
    }


def _exists(execution_arn: str) -> bool:
    sfn = aws.client("stepfunctions")
    try:
        sfn.describe_execution(executionArn=execution_arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        return False
    return True


# --- redrive-execution -------------------------------------------------------------------------

REDRIVE_DAYS = 14  # Step Functions redrives an execution up to 14 days after it stopped
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")


def redrive_execution(stack: Stack, ref: str, now: datetime | None = None) -> dict[str, Any]:
    """Step Functions' RedriveExecution of a FAILED, TIMED_OUT or ABORTED execution (ARN or name) that stopped
    within 14 days: it restarts from the state that did not finish, under the same name and ARN.

    Anything else is refused (RefusedInput) with what to do instead; Step Functions' own refusal (an Express
    workflow, a redrive already under way) too. A missing execution is NotFound.
    """
    now = now or datetime.now(UTC)
    arn = ref if ref.startswith("arn:") else stack.execution_arn(ref)
    sfn = aws.client("stepfunctions")
    try:
        before = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        raise NotFound(f"no execution {ref!r}") from None
    name, status = before["name"], before["status"]
    if status not in REDRIVABLE:
        what = "it is still running: wait for it, or stop it first" if status == "RUNNING" else "nothing failed"
        raise RefusedInput(f"execution {name} is {status}: {what} (only {', '.join(REDRIVABLE)} are redriven)")
    stopped = before.get("stopDate")
    if isinstance(stopped, datetime) and now - stopped > timedelta(days=REDRIVE_DAYS):
        raise RefusedInput(
            f"execution {name} stopped {iso(stopped)}, more than {REDRIVE_DAYS} days ago: Step Functions cannot "
            f"redrive it; `cnm-ingest reingest {name}` runs its workflow again"
        )
    try:
        redriven = sfn.redrive_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionNotRedrivable":
            raise RefusedInput(
                f"Step Functions refused to redrive {name}: {exc.response['Error'].get('Message')}"
            ) from None
        raise
    return {
        "execution_arn": arn,
        "execution_name": name,
        "status_before": status,
        "error_before": before.get("error"),
        "redrive_count": int(before.get("redriveCount") or 0) + 1,
        "redrive_date": iso(redriven["redriveDate"]),
    }


# --- replay ------------------------------------------------------------------------------------


def replay_run(stack: Stack, store: rulebook.ConfigStore, settings: consume.Settings) -> consume.Run:
    """The consumer's :class:`~cnm_ingest.consumer.consume.Run` for the CLI: the same idempotency table (so a record the
    consumer parked or answered is parked or answered once in all), DLQ and response stream; no fallback
    topic (an unexpected error is reported, and the record replayed again later)."""
    variables = consumer_environment(stack)
    return consume.Run(
        store=store,
        settings=settings,
        once=idempotency.Once(variables.get("IDEMPOTENCY_TABLE") or f"{stack.prefix}-idempotency"),
        source="cli_replay",
        queue_url=stack.dlq_url,
        response_stream_arn=variables.get("RESPONSE_STREAM_ARN") or stack.response_stream_arn,
    )


def settled(run: consume.Run, record: consume.SourceRecord) -> str | None:
    """Why a record needs nothing more: parked, answered or handed to the fallback consumer already (the
    consumer's, hydrate's or an earlier replay's idempotency markers); None when none of those happened."""
    key = idempotency.record_key(record.as_dict())
    for kind, why in (
        (idempotency.PARK, "parked already"),
        (idempotency.ANSWER, "answered already"),
        (idempotency.FALLBACK, "handed to the fallback consumer already"),
    ):
        if run.once.done(kind, key):
            return why
    return None


def replay(
    stack: Stack, since: datetime, until: datetime, shard_ids: Iterable[str] = (), progress: Progress = _noop
) -> dict[str, Any]:
    """Run the consumer's processing on the notification records that arrived in [since, until].

    ``already_done``: a record whose executions exist already (deterministic names), that was parked, answered
    or handed to the fallback consumer already (the idempotency markers the consumer, hydrate and replay share),
    or that a DLQ redrive put back on the stream already (its copy is what gets ingested): nothing is added. A
    record that cannot be ingested is answered (once) and parked (once) as the consumer does, source
    ``cli_replay``; a record that hits an AWS error is ``failed``; one another replay or consumer holds right
    now is ``already_done`` (its holder finishes it: the markers let one of them act).
    """
    try:
        table: str | None = stack.require_executions_table()
    except StackNotFound:
        table = None  # no recorder: no redrive records to consult
    store = routing_store(stack, ttl=60)  # records are routed as the message consumer routes them
    run = replay_run(stack, store, consumer_settings(stack))
    stream = stack.notification_stream_arn
    summary: dict[str, Any] = {
        "records": 0,
        "started": 0,
        "already_done": 0,
        "parked": 0,
        "failed": 0,
        "executions_started": 0,
        "details": [],
    }
    for shard in shards(stream, shard_ids):
        for raw in read_shard(stream, shard, since, until):
            record = consume.SourceRecord(
                data=base64.b64encode(raw["Data"]).decode("ascii"),
                sequenceNumber=raw["SequenceNumber"],
                partitionKey=raw["PartitionKey"],
                shardId=shard,
                streamArn=stream,
                approximateArrivalTimestamp=raw["ApproximateArrivalTimestamp"].timestamp(),
            )
            summary["records"] += 1
            detail = {"sequence_number": record.sequenceNumber, "shard_id": shard} | replay_one(
                run, record, table, stream
            )
            summary[detail["outcome"]] += 1
            summary["executions_started"] += len(detail.pop("new", []))
            summary["details"].append(detail)
            progress(1)
    return summary


def replay_one(run: consume.Run, record: consume.SourceRecord, table: str | None, stream: str) -> dict[str, Any]:
    """One record of a replay: ``{"outcome": started | already_done | parked | failed, ...}``."""
    if redriven(table, position_key(stream, record.shardId, record.sequenceNumber)):
        return {"outcome": "already_done", "reason": "redriven from the DLQ"}
    try:
        why = settled(run, record)
        if why:
            return {"outcome": "already_done", "reason": why}
        outcome = consume.consume(record, run)
    except Exception as exc:
        if isinstance(exc, idempotency.IdempotencyAlreadyInProgressError):
            return {"outcome": "already_done", "reason": "being parked or answered by another run right now"}
        return {"outcome": "failed", "reason": consume.reason_for(exc)}
    if outcome.status == "started":
        new = [s.execution_name for s in outcome.started if not s.already_existed]
        return {
            "outcome": "started" if new else "already_done",
            "executions": [s.execution_name for s in outcome.started],
            "new": new,
        }
    return {"outcome": "parked", "reason": outcome.reason, "answer": outcome.answer}


# --- rules ---------------------------------------------------------------------------------------


def rules_list(stack: Stack) -> list[dict[str, Any]]:
    store = rulebook.ConfigStore(stack.require_rules_table(), stack.collections_table, stack.providers_table, ttl=0)
    return [
        {
            "name": r.name,
            "state": r.state,
            "collection": r.collection_name,
            "version": r.collection_version,
            "provider": r.provider,
            "workflow": r.workflow_name or r.workflow_arn,
        }
        for r in sorted(store.rules(), key=lambda r: r.name)
    ]


def rule_state(stack: Stack, name: str, state: str) -> dict[str, Any]:
    try:
        aws.client("dynamodb").update_item(
            TableName=stack.rules_table,
            Key={"name": {"S": name}},
            UpdateExpression="SET #s = :s",
            ConditionExpression="attribute_exists(#n)",
            ExpressionAttributeNames={"#s": "state", "#n": "name"},
            ExpressionAttributeValues={":s": {"S": state}},
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":
            raise NotFound(f"no rule {name!r} in {stack.rules_table}") from None
        if code == "ResourceNotFoundException":
            stack.require_rules_table()  # raises: no rules table <name> in <region>: the likely cause
        raise
    return {"name": name, "state": state}
