"""Processing of one notification record, shared by the message and fallback consumers.

decode (base64, UTF-8, JSON) -> validate (CNM schema) -> match ENABLED rules
-> build the workflow message -> StartExecution under a name derived from the
record, one per matching rule. ``ExecutionAlreadyExists`` means a previous
delivery already started it: that counts as done.

Errors: a :class:`~cnm_ingest.errors.RecordError` is about the record and is
never retried; an AWS error for which :func:`cnm_ingest.aws.is_transient` is
true is retried by the caller's event source; anything else is unexpected.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import aws
from . import cnm as cnm_mod
from . import config as config_mod
from . import dlq
from .errors import RecordError
from .message import build_workflow_message, execution_name
from .response import build_response, put_response


@dataclass(frozen=True)
class SourceRecord:
    """One Kinesis record as the envelope's ``record`` describes it (``data`` is base64)."""

    data: str
    sequenceNumber: str
    partitionKey: str
    shardId: str
    streamArn: str
    approximateArrivalTimestamp: float | None = None

    @classmethod
    def from_kinesis_event_record(cls, record: Any) -> "SourceRecord":
        """From a Powertools ``KinesisStreamRecord`` (a record of a Lambda Kinesis event)."""
        k = record.kinesis
        return cls(data=k.data, sequenceNumber=k.sequence_number, partitionKey=k.partition_key,
                   shardId=record.event_id.split(":", 1)[0], streamArn=record.event_source_arn,
                   approximateArrivalTimestamp=k.approximate_arrival_timestamp)

    @classmethod
    def from_envelope(cls, env: dict[str, Any], payload: bytes | None) -> "SourceRecord":
        record = dict(env.get("record") or {})
        record["data"] = base64.b64encode(payload or b"").decode("ascii")
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in fields})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def source(self) -> dict[str, Any]:
        """``cumulus_meta.source`` of the workflow message."""
        return {"stream_arn": self.streamArn, "shard_id": self.shardId,
                "sequence_number": self.sequenceNumber, "partition_key": self.partitionKey}


@dataclass(frozen=True)
class Settings:
    stack: str
    buckets: dict[str, Any]

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(stack=os.environ.get("STACK", ""), buckets=json.loads(os.environ.get("BUCKETS") or "{}"))


@dataclass(frozen=True)
class Started:
    rule: str
    execution_name: str
    already_existed: bool


def decode(record: SourceRecord) -> Any:
    """The record's JSON value (DecodeError when it is not base64 / UTF-8 / JSON)."""
    return cnm_mod.decode_json(cnm_mod.b64decode(record.data))


def peek(record: SourceRecord) -> Any:
    """The record's JSON value, or None when it cannot be decoded (never raises)."""
    try:
        return decode(record)
    except RecordError:
        return None


def start_execution(state_machine_arn: str, name: str, message: dict[str, Any]) -> bool:
    """StartExecution; False when an execution of that name exists already (a redelivery)."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(message, separators=(",", ":")))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise
    return True


def process(record: SourceRecord, store: config_mod.ConfigStore, settings: Settings) -> list[Started]:
    """Start one workflow execution per ENABLED rule matching the record."""
    cnm = cnm_mod.validate_notification(decode(record))
    started = []
    for rule in config_mod.require_rules(cnm, store.rules()):
        version = (rule.collection_version or cnm_mod.collection_version(cnm)
                   or str(cnm["product"].get("dataVersion") or ""))
        collection = store.collection(rule.collection_name, version)
        provider = store.provider(rule.provider)
        name = execution_name(cnm["identifier"], record.sequenceNumber, rule.name)
        message = build_workflow_message(
            cnm, rule=rule.as_message_rule(), collection=collection, provider=provider,
            stack=settings.stack, buckets=settings.buckets, state_machine_arn=rule.workflow_arn,
            execution=name, source=record.source())
        started.append(Started(rule.name, name, not start_execution(rule.workflow_arn, name, message)))
    return started


def reason_for(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def failed_envelope(record: SourceRecord, exc: BaseException, source: str) -> dict[str, Any]:
    return dlq.envelope(source, reason_for(exc), type(exc).__name__, record.as_dict())


def answer_failure(record: SourceRecord, exc: RecordError, stream_arn: str) -> bool:
    """Put a FAILURE response for a record that cannot be ingested, when it is addressable.

    Returns True when a response was put. Errors of put_record propagate.
    """
    message = peek(record)
    if not cnm_mod.can_address_response(message):
        return False
    response = build_response(message, status="FAILURE", error_code=exc.error_code, error_message=str(exc))
    put_response(response, stream_arn)
    return True
