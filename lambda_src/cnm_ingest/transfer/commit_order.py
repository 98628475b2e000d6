"""The order in which concurrent executions of one granule commit to staging (SyncGranule).

Several CNMs for one granule (same collection and granule id) may run at
once: a provider resends with new content, or three notifications arrive
together. Without an order, the last commit wins by chance and every
execution answers SUCCESS although only one content is staged. Here:

- **The order.** Every execution has an :func:`order_key`: the CNM's
  ``submissionTime`` (UTC, to the microsecond; a missing or unreadable one
  sorts first), then the execution name (derived from rule, identifier and
  stream sequence number, so the tie is broken the same way on every run).
  The final content of a granule is that of the greatest key among the
  executions that verified their files, never the race.
- **The item.** One item per granule in the status store (``EXECUTIONS_TABLE``):
  ``pk = "STAGING#<collection>___<version>"``, ``sk = "GRANULE#<granule id>"``
  (a digest when the id is long), holding ``state`` (JSON: the committed key
  and execution, the pending executions with their expiry, the commit lease)
  and ``ver``, a counter. Every write is a conditional PutItem on ``ver``
  (optimistic concurrency): two executions never both believe they wrote.
- **The protocol.** :meth:`TableGate.start` (before any copy) and
  :meth:`TableGate.acquire` (after every file verified in the temporary area,
  before the first move) read the item and :func:`decide`:

  * ``superseded``: a greater key already committed: :class:`SupersededError`
    (a FAILURE answer, PROCESSING_ERROR; nothing of this execution is staged);
  * ``wait``: a greater key is pending (it verifies its files now), or another
    execution holds the commit lease: ``TransientError``, so Step Functions
    retries SyncGranule after its backoff; if the greater one fails, its
    pending entry goes (:meth:`TableGate.abandon`, or expiry after
    :data:`LEASE_SECONDS`) and this one proceeds;
  * ``go``: ``start`` records this execution as pending; ``acquire`` takes
    the commit lease (:data:`LEASE_SECONDS`, longer than a Lambda invocation).

  :meth:`TableGate.done` records the commit (key and execution) and drops the
  lease and the pending entry. A retry of an execution that committed goes on
  (its own commit is not a newer one).

So each SUCCESS describes what its execution committed, and no execution
commits over a greater key's content: a later CNM that loses the order
answers FAILURE ``SupersededError``. Executions that do not overlap commit in
turn, each answering what it staged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cnm_ingest import aws
from cnm_ingest.cnm.normalize import date_time
from cnm_ingest.errors import ConfigurationError, SupersededError, TransientError

LEASE_SECONDS = 15 * 60 + 60  # a Lambda invocation lasts at most 15 minutes
WRITE_ATTEMPTS = 8  # conditional writes lost to another execution's write before giving up (transient)
_EPOCH = "0000-00-00T00:00:00.000000Z"

GO, WAIT, SUPERSEDED = "go", "wait", "superseded"


def order_key(cnm: dict[str, Any], execution_name: str) -> str:
    """``<submissionTime as UTC, microseconds>|<execution name>``: compared as text, later is greater."""
    text = date_time(cnm.get("submissionTime")) if isinstance(cnm, dict) else None
    when = _EPOCH
    if text is not None:
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
            when = parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            pass
    return f"{when}|{execution_name}"


def decide(state: dict[str, Any], order: str, execution_name: str, now: float) -> str:
    """:data:`GO`, :data:`WAIT` or :data:`SUPERSEDED` for the execution ``order`` given the item's ``state``."""
    committed = state.get("committed") or ""
    if committed > order and state.get("committed_execution") != execution_name:
        return SUPERSEDED
    pending = {k: v for k, v in (state.get("pending") or {}).items() if v > now}
    if any(k > order for k in pending):
        return WAIT
    lease = state.get("lease") or {}
    if lease.get("owner") not in (None, order) and lease.get("until", 0) > now:
        return WAIT
    return GO


def item_key(collection: str, granule_id: str) -> dict[str, dict[str, str]]:
    sk = granule_id if len(granule_id.encode("utf-8", "surrogatepass")) <= 512 else ""
    if not sk:
        sk = "sha256:" + hashlib.sha256(granule_id.encode("utf-8", "surrogatepass")).hexdigest()
    return {"pk": {"S": f"STAGING#{collection}"}, "sk": {"S": f"GRANULE#{sk}"}}


class Gate:
    """No ordering (a granule staged outside a workflow, e.g. :func:`cnm_ingest.workflow.sync_granule.sync_files`)."""

    def start(self) -> None:
        """Before any copy: raise when this execution is superseded or must wait."""

    def acquire(self) -> None:
        """After every file verified, before the first move: take the commit lease."""

    def done(self) -> None:
        """After the commit: record it, release the lease."""

    def abandon(self) -> None:
        """After a failure: withdraw, best effort."""

    @staticmethod
    def for_granule(*, collection: str, granule_id: str, order: str, execution_name: str) -> TableGate:
        table = os.environ.get("EXECUTIONS_TABLE")
        if not table:
            raise ConfigurationError("EXECUTIONS_TABLE is not set: SyncGranule orders concurrent commits there")
        return TableGate(table, item_key(collection, granule_id), order, execution_name)


@dataclass
class TableGate(Gate):
    """The protocol of the module docstring on one item of ``table``."""

    table: str
    key: dict[str, dict[str, str]]
    order: str
    execution_name: str
    clock: Callable[[], float] = time.time
    _started: bool = field(default=False, init=False)
    _finished: bool = field(default=False, init=False)

    def _read(self) -> tuple[dict[str, Any], int | None]:
        item = aws.client("dynamodb").get_item(TableName=self.table, Key=self.key, ConsistentRead=True).get("Item")
        if not item:
            return {}, None
        return json.loads(item["state"]["S"]), int(item["ver"]["N"])

    def _write(self, state: dict[str, Any], ver: int | None) -> bool:
        item = {
            **self.key,
            "state": {"S": json.dumps(state, sort_keys=True)},
            "ver": {"N": str((ver or 0) + 1)},
            "committed_execution": {"S": str(state.get("committed_execution") or "-")},
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if ver is None
            else {"ConditionExpression": "ver = :v", "ExpressionAttributeValues": {":v": {"N": str(ver)}}}
        )
        try:
            aws.client("dynamodb").put_item(TableName=self.table, Item=item, **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _update(self, change: Callable[[dict[str, Any], float], dict[str, Any] | None], check: bool) -> None:
        for _ in range(WRITE_ATTEMPTS):
            state, ver = self._read()
            now = self.clock()
            if check:
                verdict = decide(state, self.order, self.execution_name, now)
                if verdict == SUPERSEDED:
                    raise SupersededError(
                        f"a CNM for this granule submitted later (execution {state.get('committed_execution')}) "
                        f"is staged; this one ({self.order}) is not, and nothing of it was staged"
                    )
                if verdict == WAIT:
                    raise TransientError(
                        f"another execution of this granule is staging it now; {self.execution_name} waits its turn"
                    )
            new = change(state, now)
            if new is None or self._write(new, ver):
                return
        raise TransientError(f"the staging order item of {self.execution_name} kept changing; retried")

    def start(self) -> None:
        def register(state: dict[str, Any], now: float) -> dict[str, Any]:
            pending = {k: v for k, v in (state.get("pending") or {}).items() if v > now}
            return {**state, "pending": {**pending, self.order: now + LEASE_SECONDS}}

        self._update(register, check=True)
        self._started = True

    def acquire(self) -> None:
        def lease(state: dict[str, Any], now: float) -> dict[str, Any]:
            return {**state, "lease": {"owner": self.order, "until": now + LEASE_SECONDS}}

        self._update(lease, check=True)

    def done(self) -> None:
        def record(state: dict[str, Any], now: float) -> dict[str, Any]:
            pending = {k: v for k, v in (state.get("pending") or {}).items() if v > now and k != self.order}
            out = {**state, "pending": pending, "committed": self.order, "committed_execution": self.execution_name}
            out.pop("lease", None)
            return out

        self._update(record, check=False)
        self._finished = True

    def abandon(self) -> None:
        if not self._started or self._finished:
            return

        def withdraw(state: dict[str, Any], now: float) -> dict[str, Any] | None:
            pending = {k: v for k, v in (state.get("pending") or {}).items() if v > now and k != self.order}
            out = {**state, "pending": pending}
            if (state.get("lease") or {}).get("owner") == self.order:
                out.pop("lease")
            return None if out == state else out

        with contextlib.suppress(ClientError, TransientError):  # the entries expire after LEASE_SECONDS
            self._update(withdraw, check=False)
