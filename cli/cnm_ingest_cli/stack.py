"""Finding the stack: ``terraform output -json`` (a file or a directory), or the naming convention of ``--prefix``.

The output names are those of the root module's ``outputs.tf``; the names a
prefix gives are those the modules create (``<prefix>-notifications``,
``<prefix>-kinesisFailure``, ``<prefix>-rules``, ``<prefix>-cnm-workflow``,
``<prefix>-executions`` ...).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError

from cnm_ingest import aws

from .errors import LIKELY_CAUSE, StackNotFound

# The module's naming rule for `prefix` (the root variables.tf validation; tests/unit/cli/test_prefix.py checks
# that the two are the same regex): a malformed --prefix names no stack, so it is a usage error, not a lookup.
PREFIX_RULE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$", re.ASCII)
PREFIX_RULE_TEXT = "3-32 lowercase letters, digits and '-', starting with a letter, not ending with '-'"


def region_name() -> str | None:
    """The region the AWS clients use (``--region``, the environment, or the profile's); None when there is
    none, or no session can be made (an unknown profile: reported by the error that made it)."""
    try:
        return aws.session().region_name
    except BotoCoreError:
        return None


def missing(kind: str, name: str, cause: str = LIKELY_CAUSE) -> StackNotFound:
    """``no <kind> <name> in <region>: <likely cause>``: the error for a resource of the stack not found."""
    return StackNotFound(f"no {kind} {name} in {region_name() or '(no region)'}: {cause}")


# Stack attribute -> root output name (outputs.tf).
OUTPUTS = {
    "prefix": "prefix",
    "notification_stream_arn": "notification_stream_arn",
    "response_stream_arn": "response_stream_arn",
    "dlq_url": "dlq_url",
    "rules_table": "rules_table_name",
    "collections_table": "collections_table_name",
    "providers_table": "providers_table_name",
    "state_machine_arn": "state_machine_arn",
    "executions_table": "executions_table_name",
    "payload_bucket": "payload_bucket_name",
    "consumer_function": "message_consumer_function_name",
}


# Outputs of a configuration that wraps the module under names of its own (examples/complete):
# output -> {key in its map value: root output name}.
NESTED = {
    "config_table_names": {
        "rules": "rules_table_name",
        "collections": "collections_table_name",
        "providers": "providers_table_name",
    },
    "function_names": {"message_consumer": "message_consumer_function_name"},
}


def _values(raw: Any) -> dict[str, Any]:
    """``terraform output -json`` ({name: {value, type}}), a state file's ``outputs``, or plain {name: value}.

    A configuration wrapping the module may output the whole module (``value = module.cnm_ingest``: its
    outputs are taken as the root's) or maps of names (``config_table_names``, ``function_names``)."""
    if isinstance(raw, dict) and isinstance(raw.get("outputs"), dict) and "version" in raw:  # terraform.tfstate
        raw = raw["outputs"]
    if not isinstance(raw, dict):
        raise StackNotFound("the outputs are not a JSON object")
    values = {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in raw.items()}
    for value in list(values.values()):
        if isinstance(value, dict) and ("notification_stream_arn" in value or "state_machine_arn" in value):
            values = {**value, **values}  # a whole module's outputs; the root's own names win
    for name, keys in NESTED.items():
        nested = values.get(name)
        if isinstance(nested, dict):
            for key, out in keys.items():
                if nested.get(key) is not None:
                    values.setdefault(out, nested[key])
    return values


def read_outputs(path: Path) -> dict[str, Any]:
    """Outputs from a JSON file, or from a Terraform directory (``terraform output -json``, else its state file)."""
    if path.is_dir():
        terraform = shutil.which("terraform")
        if terraform:
            proc = subprocess.run(
                [terraform, f"-chdir={path}", "output", "-json"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if proc.returncode == 0 and proc.stdout.strip() not in ("", "{}"):
                return _values(json.loads(proc.stdout))
        state = path / "terraform.tfstate"
        if not state.is_file():
            raise StackNotFound(f"{path} has no Terraform outputs (no terraform on PATH and no terraform.tfstate)")
        path = state
    if not path.is_file():
        raise StackNotFound(
            f"no outputs file at {path}: give `terraform output -json` saved to a file, or its directory"
        )
    try:
        return _values(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise StackNotFound(f"cannot read the outputs file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise StackNotFound(f"{path} is not the JSON of `terraform output -json`: {exc}") from None


@dataclass
class Stack:
    """Names and ARNs of one deployed pipeline; ARNs not given are looked up on first use."""

    prefix: str
    names: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> Stack:
        names = {attr: outputs.get(out) for attr, out in OUTPUTS.items() if outputs.get(out) is not None}
        if "notification_stream_arn" not in names and "state_machine_arn" not in names:
            raise StackNotFound(
                "the outputs name neither a notification stream nor a state machine: "
                "not outputs of the cnm-ingest root module"
            )
        prefix = names.get("prefix") or _prefix_from(names)
        return cls(prefix=prefix, names=names)

    @classmethod
    def from_prefix(cls, prefix: str) -> Stack:
        return cls(prefix=prefix, names={})

    def _name(self, attr: str, conventional: str) -> str:
        return str(self.names.get(attr) or conventional)

    @property
    def rules_table(self) -> str:
        return self._name("rules_table", f"{self.prefix}-rules")

    @property
    def collections_table(self) -> str:
        return self._name("collections_table", f"{self.prefix}-collections")

    @property
    def providers_table(self) -> str:
        return self._name("providers_table", f"{self.prefix}-providers")

    @property
    def executions_table(self) -> str:
        return self._name("executions_table", f"{self.prefix}-executions")

    @property
    def consumer_function(self) -> str:
        return self._name("consumer_function", f"{self.prefix}-message-consumer")

    @cached_property
    def notification_stream_arn(self) -> str:
        return self.names.get("notification_stream_arn") or _stream_arn(f"{self.prefix}-notifications")

    @cached_property
    def response_stream_arn(self) -> str:
        return self.names.get("response_stream_arn") or _stream_arn(f"{self.prefix}-responses")

    @cached_property
    def dlq_url(self) -> str:
        if self.names.get("dlq_url"):
            return str(self.names["dlq_url"])
        try:
            return aws.client("sqs").get_queue_url(QueueName=f"{self.prefix}-kinesisFailure")["QueueUrl"]
        except aws.client("sqs").exceptions.QueueDoesNotExist:
            raise missing("queue", f"{self.prefix}-kinesisFailure") from None

    @cached_property
    def state_machine_arn(self) -> str:
        if self.names.get("state_machine_arn"):
            return str(self.names["state_machine_arn"])
        name = f"{self.prefix}-cnm-workflow"
        for page in aws.client("stepfunctions").get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                if machine["name"] == name:
                    return machine["stateMachineArn"]
        raise missing("state machine", name)

    def execution_arn(self, name: str) -> str:
        """The ARN of an execution of the stack's state machine, by name."""
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def require_executions_table(self) -> str:
        """The status store (executions and granules); when it is missing, the likely cause: a wrong prefix or
        region (no rules table either), or a stack applied before the one status store with
        ``create_recorder = false`` (the rules table exists)."""
        table = self.executions_table
        if not _table_exists(table):
            if _table_exists(self.rules_table):
                raise missing(
                    "executions table",
                    table,
                    f"the stack ({self.rules_table} exists) has no status store yet: apply cnm-ingest 0.3.0 or later",
                )
            raise missing("executions table", table)
        return table

    def require_rules_table(self) -> str:
        table = self.rules_table
        if not _table_exists(table):
            raise missing("rules table", table)
        return table

    def describe(self) -> dict[str, str]:
        return {
            "prefix": self.prefix,
            "notification_stream_arn": self.notification_stream_arn,
            "response_stream_arn": self.response_stream_arn,
            "dlq_url": self.dlq_url,
            "state_machine_arn": self.state_machine_arn,
            "rules_table": self.rules_table,
            "executions_table": self.executions_table,
        }


def _table_exists(table: str) -> bool:
    dynamodb = aws.client("dynamodb")
    try:
        dynamodb.describe_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        return False
    return True


def _stream_arn(name: str) -> str:
    kinesis = aws.client("kinesis")
    try:
        return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    except kinesis.exceptions.ResourceNotFoundException:
        raise missing("stream", name) from None


# Stack attribute -> the suffix the modules give its name (the last part of an ARN or URL).
SUFFIXES = {
    "rules_table": "-rules",
    "notification_stream_arn": "-notifications",
    "dlq_url": "-kinesisFailure",
    "executions_table": "-executions",
    "state_machine_arn": "-cnm-workflow",
}


def _prefix_from(names: dict[str, Any]) -> str:
    """The prefix the names were made from, when outputs leave out ``prefix``."""
    for attr, suffix in SUFFIXES.items():
        name = re.split(r"[/:]", str(names.get(attr) or ""))[-1]
        if name.endswith(suffix) and len(name) > len(suffix):
            return name.removesuffix(suffix)
    return ""


def find(outputs: str | None, prefix: str | None) -> Stack:
    if outputs:
        stack = Stack.from_outputs(read_outputs(Path(outputs)))
        if prefix:
            stack.prefix = prefix
        return stack
    if prefix:
        return Stack.from_prefix(prefix)
    raise StackNotFound(
        "which stack? give --outputs FILE|DIR (terraform output -json) or --prefix "
        "(or set CNM_INGEST_OUTPUTS / CNM_INGEST_PREFIX)"
    )
