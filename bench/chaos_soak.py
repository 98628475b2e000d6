"""The seeded chaos soak: the applied examples/complete, run by the local runtime, under random faults.

    python -m bench.chaos_soak --records 10000 --seeds 1,2,3       # large: applies the stack itself
    python -m bench.chaos_soak --records 200 --seed 7 --fault-seconds 60   # replay one seed

What one seed does (``soak``): N records (valid and bad, about ``bad_fraction`` bad, partition keys
spread over every shard) are put on the applied notification stream in ``bursts`` bursts during the
fault window, while seeded faults (localaws.faults) hit every call the deployed functions make to the
services the product uses: StartExecution, Kinesis puts, SQS sends, SNS publishes, DynamoDB
Put/Update/Get/DeleteItem, S3 copy/get/put/head. Each fault hits one call identity (the same request,
also when an SDK or a handler retries it: StartExecution by name, a put by its payload, DynamoDB by
table and key, S3 by bucket, key and copy source) 1..k times in a row, before the call (throttling or
a 500: nothing applied) or after it (the call applied, the response lost: a 500). Which identities are
hit, how often, how and when is decided by the seed alone (a hash of the seed and the identity), so a
seed replays the same faults on the same records (up to request contents that carry times). After the
window no fault fires; the soak waits until the runtime is idle (every poller caught up, no
asynchronous invocation pending, no execution RUNNING over every page of ListExecutions).

Then it counts, never collapsing duplicates, and checks (``check``):
- records in = executions + DLQ record entries + gap records;
- no record both started and parked; at most one execution per record and rule;
- one answer per answerable record (none for a record without an identifier), and no delivered
  response parked;
- every valid record's one execution SUCCEEDED with a SUCCESS answer; every bad one parked or FAILED;
- no temporary object (``.cnm-ingest-tmp/``) left in any bucket;
- one final status per execution in the executions store (the recorder's item at DescribeExecution's
  status, one terminal event);
- no zombie (an execution still RUNNING after the drain).
A repeat that is an identical copy of a put whose response a fault lost (the SDK re-sent it: Kinesis
and SQS have no idempotent put) is counted and shown as an echo; only echoes the fired faults explain
are allowed, any other duplicate fails.

A failing check lists its records with the faults that hit each, and the command that replays the seed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localaws import faults, pipeline
from localaws.pipeline import Record
from localaws.runtime import Runtime
from localaws.server import REGION
from tests.ingest.test_fault_matrix import source_sequence

TMP_MARK = ".cnm-ingest-tmp/"
FUNCTIONS_ONLY = "exec-env/AWS_Lambda_"  # botocore's User-Agent in a Lambda function (AWS_EXECUTION_ENV)
# service -> the operations of it the deployed functions call, and the faults a call may meet before it
TARGETS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, int], ...]]] = {
    "stepfunctions": (("StartExecution",), (("ThrottlingException", 400), ("InternalFailure", 500))),
    "kinesis": (
        ("PutRecord", "PutRecords"),
        (("ProvisionedThroughputExceededException", 400), ("InternalFailure", 500)),
    ),
    "sqs": (("SendMessage", "SendMessageBatch"), (("ThrottlingException", 400), ("InternalFailure", 500))),
    "sns": (("Publish",), (("Throttled", 429), ("InternalError", 500))),
    "dynamodb": (
        ("PutItem", "UpdateItem", "GetItem", "DeleteItem"),
        (("ProvisionedThroughputExceededException", 400), ("ThrottlingException", 400), ("InternalServerError", 500)),
    ),
    "s3": (
        ("CopyObject", "UploadPartCopy", "GetObject", "PutObject", "HeadObject"),
        (("SlowDown", 503), ("InternalError", 500)),
    ),
}
KEY_ATTRIBUTES = ("id", "pk", "sk", "name", "version", "collection_name", "provider")
TOKEN = re.compile(rb"generated-\d{4,}|poison-[a-z-]+?-\d{5}|chaos-bad-\d{5}")


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def identity(service: str, operation: str, request: dict[str, Any]) -> str:  # noqa: PLR0911 - one per service
    """What makes two calls "the same call" (a retry of it), stable across runs where the request is."""
    if service == "stepfunctions":
        return f"{operation}:{request.get('name')}"
    if service == "kinesis":
        datas = (
            [request.get("Data")] if operation == "PutRecord" else [r.get("Data") for r in request.get("Records", [])]
        )
        return f"{operation}:{request.get('StreamARN') or request.get('StreamName')}:{_digest(json.dumps(datas))}"
    if service == "sqs":
        bodies = (
            [request.get("MessageBody")]
            if operation == "SendMessage"
            else [e.get("MessageBody") for e in request.get("Entries", [])]
        )
        return f"{operation}:{request.get('QueueUrl')}:{_digest(json.dumps(bodies))}"
    if service == "sns":
        return f"{operation}:{request.get('TopicArn')}:{_digest(str(request.get('Message')))}"
    if service == "dynamodb":
        key = request.get("Key") or {k: v for k, v in (request.get("Item") or {}).items() if k in KEY_ATTRIBUTES}
        return f"{operation}:{request.get('TableName')}:{json.dumps(key, sort_keys=True)}"
    if service == "s3":
        source, part = request.get("CopySource", ""), request.get("partNumber", "")
        return f"{operation}:{request.get('Bucket')}/{request.get('Key')}<{source}#{part}"
    return f"{operation}:{json.dumps(request, sort_keys=True, default=str)}"


def payloads(service: str, operation: str, request: dict[str, Any]) -> list[bytes]:
    """The bytes a put carries (Kinesis records, SQS bodies, an SNS message): what a lost response repeats."""
    if service == "kinesis":
        datas = (
            [request.get("Data")] if operation == "PutRecord" else [r.get("Data") for r in request.get("Records", [])]
        )
        return [base64.b64decode(d) for d in datas if isinstance(d, str)]
    if service == "sqs":
        bodies = (
            [request.get("MessageBody")]
            if operation == "SendMessage"
            else [e.get("MessageBody") for e in request.get("Entries", [])]
        )
        return [b.encode() for b in bodies if isinstance(b, str)]
    if service == "sns":
        return [str(request.get("Message", "")).encode()]
    return []


@dataclass
class Decision:
    code: str
    status: int
    times: int
    after: bool


@dataclass
class Hit:
    """One fault that fired."""

    at: float
    service: str
    operation: str
    code: str
    status: int
    after: bool
    identity: str
    records: list[int]


class FaultPlan:
    """Seeded faults: ``decide(identity)`` is a pure function of the seed and the call's identity."""

    def __init__(self, seed: int, probability: float, max_times: int, after_share: float, tokens: dict[Any, int]):
        self.seed, self.probability, self.max_times, self.after_share = seed, probability, max_times, after_share
        self.tokens = tokens
        self.deadline = 0.0
        self.started = 0.0
        self.hits: list[Hit] = []
        self.after_payloads: Counter[str] = Counter()  # digest of a put whose response was lost -> times
        self._left: dict[str, int] = {}
        self._lock = threading.Lock()

    def decide(self, service: str, ident: str) -> Decision | None:
        rng = random.Random(f"{self.seed}\x1f{service}\x1f{ident}")
        if rng.random() >= self.probability:
            return None
        times = rng.randint(1, self.max_times)
        if rng.random() < self.after_share:
            return Decision(faults.INTERNAL_ERRORS.get(service, "InternalFailure"), 500, times, True)
        code, status = rng.choice(TARGETS[service][1])
        return Decision(code, status, times, False)

    def _predicate(self, service: str, operation: str, code: str, after: bool) -> faults.Predicate:
        def when(request: dict[str, Any]) -> bool:
            if time.monotonic() > self.deadline:
                return False
            ident = identity(service, operation, request)
            decision = self.decide(service, ident)
            if decision is None or (decision.code, decision.after) != (code, after):
                return False
            with self._lock:
                left = self._left.setdefault(ident, decision.times)
                if left <= 0:
                    return False
                self._left[ident] = left - 1
            return True

        return when

    def _on_fire(self, service: str, operation: str) -> Callable[[faults.Fault, dict[str, Any]], None]:
        def fired(fault: faults.Fault, request: dict[str, Any]) -> None:
            hit = Hit(
                round(time.monotonic() - self.started, 2),
                service,
                operation,
                fault.code,
                fault.status or 400,
                fault.after,
                identity(service, operation, request),
                self.attribute(service, operation, request),
            )
            with self._lock:
                self.hits.append(hit)
                if fault.after:
                    self.after_payloads.update(_digest(p) for p in payloads(service, operation, request))

        return fired

    def attribute(self, service: str, operation: str, request: dict[str, Any]) -> list[int]:
        """The records a request is about (their tokens in it, or a StartExecution's source record)."""
        text = json.dumps(request, default=str).encode()
        found = {self.tokens[t] for t in TOKEN.findall(text) if t in self.tokens}
        for data in payloads(service, operation, request):
            found |= {self.tokens[t] for t in TOKEN.findall(data) if t in self.tokens}
        if service == "stepfunctions":
            seq = source_sequence(request)
            if seq is not None and ("seq", seq) in self.tokens:
                found.add(self.tokens[("seq", seq)])
        return sorted(found)

    def arm(self, inj: faults.Injected, window: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + window
        for service, (operations, codes) in TARGETS.items():
            variants = [(code, status, False) for code, status in codes]
            variants.append((faults.INTERNAL_ERRORS.get(service, "InternalFailure"), 500, True))
            for operation in operations:
                for code, status, after in variants:
                    inj.fail(
                        service,
                        operation,
                        code,
                        status=status,
                        when=self._predicate(service, operation, code, after),
                        after=after,
                        user_agent=FUNCTIONS_ONLY,
                        on_fire=self._on_fire(service, operation),
                    )


# --------------------------------------------------------------------------- traffic


def traffic(count: int, bucket: str, bad_fraction: float, seed: int) -> list[Record]:
    """``count`` records, about ``bad_fraction`` of them bad (each kind of localaws.pipeline's poison pills,
    made unique per record), the rest valid generated notifications with their files; shuffled by the seed."""
    bad = round(count * bad_fraction)
    out = pipeline.generated_traffic(count - bad, bucket)
    templates = pipeline.poison_traffic(bucket)
    for i in range(bad):
        template = templates[i % len(templates)]
        tag = f"{i:05d}"
        if template.identifier is None:  # not JSON / not UTF-8: the token is in the bytes
            out.append(
                Record(f"{template.label} #{tag}", template.payload + f" chaos-bad-{tag}".encode(), template.expect)
            )
            continue
        unique = f"{template.identifier}-{tag}"
        payload = template.payload.decode().replace(template.identifier, unique).encode()
        files = {uri.replace(template.identifier, unique): data for uri, data in template.files.items()}
        out.append(Record(f"{template.label} #{tag}", payload, template.expect, files, unique))
    random.Random(seed).shuffle(out)
    return out


def tokens_of(records: list[Record]) -> dict[Any, int]:
    found: dict[Any, int] = {}
    for i, r in enumerate(records):
        for t in TOKEN.findall(r.payload):
            found[t] = i
        if r.identifier:
            found[r.identifier.encode()] = i
    return found


# --------------------------------------------------------------------------- reading back


@dataclass
class Outcome:
    """What happened, per record index, counted without collapsing."""

    executions: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    parked: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))  # DLQ bodies
    answers: dict[int, list[bytes]] = field(default_factory=lambda: defaultdict(list))  # response bytes
    parked_answers: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    gap_entries: list[dict[str, Any]] = field(default_factory=list)
    gap_records: int = 0
    unknown: list[str] = field(default_factory=list)  # what could not be tied to a record
    temporary: list[str] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)
    zombies: list[str] = field(default_factory=list)


def _drain(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    empty = 0
    while empty < 2:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        empty = 0 if got else empty + 1
        for m in got:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


class Matcher:
    """Ties what the run left back to the records put: an execution or a parked record by its source
    (shard and sequence number, unique per record), an answer or a parked response by the CNM identifier
    (unique per record; a bad record without one has no answer). Never by content two records share."""

    def __init__(self, records: list[Record]):
        self.by_key = {(r.shard_id, r.sequence_number): i for i, r in enumerate(records)}
        self.by_ident = {r.identifier: i for i, r in enumerate(records) if r.identifier}

    def execution(self, described: dict[str, Any]) -> int | None:
        source = json.loads(described["input"]).get("cumulus_meta", {}).get("source", {})
        return self.by_key.get((source.get("shard_id"), source.get("sequence_number")))

    def dlq_message(self, out: Outcome, body: str, found: list[Any]) -> None:
        """File one DLQ message's parked entries (``found``: dlq.records_from_dlq_message) in ``out``."""
        if not found:  # e.g. hydrate's own on-failure record: a failed batch's info, no record with its payload
            out.unknown.append(f"DLQ message without a record envelope {body[:300]}")
        for parked in found:
            env = parked.envelope
            if env.get("envelope") == "response":
                response = env.get("response") or {}
                index = self.by_ident.get(str(response.get("identifier")))
                self._file(out.parked_answers, index, env, out, f"parked response {str(response)[:120]}")
            elif env.get("record"):
                record = env["record"]
                index = self.by_key.get((record.get("shardId"), record.get("sequenceNumber")))
                where = f"parked record {record.get('shardId')}/{record.get('sequenceNumber')}"
                self._file(out.parked, index, body, out, where)
            elif env.get("missing"):
                out.gap_entries.append(env)
                out.gap_records += int(env["missing"].get("count", 0))
            else:
                out.unknown.append(f"DLQ entry {body[:120]}")

    def answer(self, out: Outcome, data: bytes) -> None:
        identifier = json.loads(data).get("identifier")
        self._file(out.answers, self.by_ident.get(identifier), data, out, f"answer {identifier}")

    @staticmethod
    def _file(group: dict[int, list[Any]], index: int | None, item: Any, out: Outcome, unknown: str) -> None:
        if index is None:
            out.unknown.append(unknown)
        else:
            group[index].append(item)


def _read_executions(stack: Any, client: Callable[[str], Any], match: Matcher, out: Outcome) -> None:
    sfn = client("stepfunctions")
    for machine in stack.state_machines.values():
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
            for e in page["executions"]:
                described = sfn.describe_execution(executionArn=e["executionArn"])
                described["rule"] = json.loads(described["input"]).get("meta", {}).get("rule", {}).get("name")
                index = match.execution(described)
                if index is None:
                    out.unknown.append(f"execution {e['executionArn']}")
                    continue
                out.executions[index].append(described)
                if described["status"] == "RUNNING":
                    out.zombies.append(e["executionArn"])


def _temporary_objects(stack: Any, client: Callable[[str], Any]) -> list[str]:
    s3 = client("s3")
    found: list[str] = []
    for bucket in s3.list_buckets()["Buckets"]:
        if not bucket["Name"].startswith(stack.prefix):
            continue
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            found += [f"s3://{bucket['Name']}/{o['Key']}" for o in page.get("Contents", []) if TMP_MARK in o["Key"]]
    return found


def _store_problems(stack: Any, client: Callable[[str], Any], out: Outcome) -> list[str]:
    """Executions whose store item is not at DescribeExecution's status with exactly one terminal event of the
    recorder."""
    table = stack.function("recorder").environment["EXECUTIONS_TABLE"]
    ddb = client("dynamodb")
    problems = []
    for executions in out.executions.values():
        for e in executions:
            item = ddb.get_item(
                TableName=table,
                Key={"pk": {"S": f"EXECUTION#{e['executionArn']}"}, "sk": {"S": "EXECUTION"}},
                ConsistentRead=True,
            ).get("Item")
            # the recorder's terminal event, ev:<status>:<redrive count> (a workflow step's own write,
            # ev:<status>:<redrive count>:<StartStatus|StopStatus>, is one more writer of the one store: issue 21)
            final = [
                k for k in (item or {}) if k.startswith("ev:") and not k.startswith("ev:RUNNING:") and k.count(":") == 2
            ]
            if item is None or item["status"]["S"] != e["status"] or len(final) != 1:
                status = None if item is None else item["status"]["S"]
                problems.append(f"{e['executionArn']}: store {status} {sorted(final)} vs {e['status']}")
    return problems


def read_outcome(rt: Runtime, client: Callable[[str], Any], records: list[Record]) -> Outcome:
    from cnm_ingest import dlq

    assert rt.stack is not None
    stack = rt.stack
    match = Matcher(records)
    out = Outcome()
    _read_executions(stack, client, match, out)
    (dlq_url,) = [u for u in stack.queues if u.endswith("-kinesisFailure")]
    for body in _drain(client("sqs"), dlq_url):
        match.dlq_message(out, body, dlq.records_from_dlq_message(body))
    for r in pipeline.read_stream(client("kinesis"), stack.streams[f"{stack.prefix}-responses"]):
        match.answer(out, r["Data"])
    out.temporary = _temporary_objects(stack, client)
    out.store_problems = _store_problems(stack, client, out)
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    seed: int
    records: list[Record]
    plan: FaultPlan
    outcome: Outcome
    drained: bool
    drain_seconds: float
    runtime_errors: list[str]
    invocations: dict[str, int]
    command: str
    failures: dict[str, list[int | str]] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        o, valid = self.outcome, [r for r in self.records if r.expect == pipeline.SUCCESS]
        answers = [len(v) for v in o.answers.values()]
        return {
            "seed": self.seed,
            "records": len(self.records),
            "valid": len(valid),
            "bad": len(self.records) - len(valid),
            "faults": dict(sorted(Counter(h.service for h in self.plan.hits).items())),
            "after": sum(h.after for h in self.plan.hits),
            "inprogress_lost": sum(lost_in_progress_write(h) for h in self.plan.hits),
            "executions": sum(len(v) for v in o.executions.values()),
            "dlq": sum(len(v) for v in o.parked.values()),
            "gap": o.gap_records,
            "answers": sum(answers),
            "max_answers": max(answers, default=0),
            "duplicates": duplicates(o),
            "echoes": echoes(o, self.plan),
            "zombies": len(o.zombies),
            "temporary": len(o.temporary),
            "drain_s": round(self.drain_seconds),
            "verdict": "ok" if not self.failures else "FAILED: " + ", ".join(self.failures),
        }


def lost_in_progress_write(hit: Hit) -> bool:
    """An idempotency in-progress write (consumer, hydrate, CnmResponse) applied and its answer lost: botocore's
    retry meets the item it wrote (idempotency.is_own_write; before that fix, a park or answer never done)."""
    return (
        (hit.service, hit.operation) == ("dynamodb", "PutItem")
        and hit.after
        and ("cnm-ingest." in hit.identity or "IDEMPOTENCY#" in hit.identity)
    )


def duplicates(o: Outcome) -> int:
    """Extra copies: executions, DLQ entries and answers beyond the first of each record."""
    return sum(max(0, len(v) - 1) for group in (o.executions, o.parked, o.answers) for v in group.values())


def _explained(copies: list[bytes], plan: FaultPlan) -> int:
    """How many of the extra identical copies the lost responses of their put explain."""
    if len(copies) < 2 or len(set(copies)) != 1:
        return 0
    return min(len(copies) - 1, plan.after_payloads[_digest(copies[0])])


def echoes(o: Outcome, plan: FaultPlan) -> int:
    return sum(_explained(v, plan) for v in o.answers.values()) + sum(
        _explained([b.encode() for b in v], plan) for v in o.parked.values()
    )


def _unmet_expectation(record: Record, executions: list[str], answers: list[str], parked: int) -> str | None:
    """The check a record's fate fails for what it was (valid, bad for the workflow, bad for the consumer)."""
    if record.expect == pipeline.SUCCESS:
        if executions != ["SUCCEEDED"] or set(answers) != {"SUCCESS"}:
            return "valid record not SUCCEEDED once with a SUCCESS answer"
    elif record.expect == pipeline.FAILED:
        if executions != ["FAILED"] or "SUCCESS" in answers:
            return "bad record (workflow) not FAILED once"
    elif executions or not parked:
        return "bad record not parked"
    return None


def check(result: Result) -> dict[str, list[int | str]]:
    """Each check's offending records (indices) or items; empty when everything held."""
    o, plan, records = result.outcome, result.plan, result.records
    failures: dict[str, list[int | str]] = defaultdict(list)
    parked_n = {i: len(v) - _explained([b.encode() for b in v], plan) for i, v in o.parked.items()}
    answer_n = {i: len(v) - _explained(v, plan) for i, v in o.answers.items()}
    total = sum(len(v) for v in o.executions.values()) + sum(parked_n.values()) + o.gap_records
    if total != len(records):
        failures[f"records in {len(records)} != executions + DLQ entries + gap records {total}"] = []
    for i, r in enumerate(records):
        executions, parked = o.executions.get(i, []), parked_n.get(i, 0)
        if executions and parked:
            failures["started and parked"].append(i)
        if not executions and not parked and o.gap_records == 0:
            failures["lost (neither started nor parked)"].append(i)
        per_rule = Counter(e["rule"] for e in executions)
        if any(n > 1 for n in per_rule.values()):
            failures["more than one execution per record and rule"].append(i)
        if parked > 1:
            failures["parked more than once"].append(i)
        answers = answer_n.get(i, 0)
        if answers != (1 if r.identifier else 0):
            failures["not one answer per answerable record"].append(i)
        if o.parked_answers.get(i) and o.answers.get(i):
            failures["a delivered response parked"].append(i)
        statuses = [json.loads(a)["response"]["status"] for a in o.answers.get(i, [])]
        unmet = _unmet_expectation(r, [e["status"] for e in executions], statuses, parked)
        if unmet:
            failures[unmet].append(i)
    problems: dict[str, list[str]] = {
        "temporary objects left": o.temporary,
        "store: not one final status per execution": o.store_problems,
        "zombies (RUNNING after the drain)": o.zombies,
        "not tied to a record": o.unknown,
        "runtime errors": result.runtime_errors,
    }
    failures.update({k: list(v) for k, v in problems.items() if v})
    if not result.drained:
        failures["did not drain"].append("timeout")
    return dict(failures)


def explain(result: Result, limit: int = 15) -> str:
    """The failing checks, each with its records and the faults that hit them, and the replay command."""
    hits: dict[int, list[Hit]] = defaultdict(list)
    for h in result.plan.hits:
        for i in h.records:
            hits[i].append(h)
    lines = [f"seed {result.seed}: {len(result.failures)} check(s) failed; replay: {result.command}"]
    for name, items in result.failures.items():
        lines.append(f"- {name}: {len(items)}")
        for item in items[:limit]:
            if not isinstance(item, int):
                lines.append(f"    {str(item)[:300]}")
                continue
            r = result.records[item]
            o = result.outcome
            lines.append(
                f"    #{item} {r.label} ({r.identifier}, {r.shard_id}/{r.sequence_number}): executions "
                f"{[(e['status'], e['rule']) for e in o.executions.get(item, [])]}, DLQ {len(o.parked.get(item, []))}, "
                f"answers {[json.loads(a)['response']['status'] for a in o.answers.get(item, [])]}, "
                f"parked answers {len(o.parked_answers.get(item, []))}"
            )
            for h in hits.get(item, []):
                when = "after" if h.after else "before"
                lines.append(f"        t+{h.at}s {h.service}.{h.operation} {h.code} {h.status} {when} the call")
    return "\n".join(lines)


def soak(
    session: Any,
    endpoint: str,
    prefix: str,
    workdir: Path,
    *,
    records: int,
    seed: int,
    fault_seconds: float = 60.0,
    bursts: int = 4,
    bad_fraction: float = 0.1,
    probability: float = 0.04,
    max_times: int = 4,
    after_share: float = 0.3,
    drain_timeout: float = 1800.0,
    replay: str = "",
    log: Callable[[str], None] = lambda _m: None,
) -> Result:
    """One seed on the applied stack as it is now (the caller restores it between seeds)."""

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint)

    bucket = f"{prefix}-provider-outbox"
    batch = traffic(records, bucket, bad_fraction, seed)
    pipeline.stage_files(client("s3"), batch, REGION)
    tokens = tokens_of(batch)
    plan = FaultPlan(seed, probability, max_times, after_share, tokens)
    rt = Runtime(session, endpoint, prefix, workdir, log=log)
    drained, drain_seconds = False, 0.0
    with faults.injected() as inj, rt:
        assert rt.stack is not None
        stream = rt.stack.streams[f"{prefix}-notifications"]
        plan.arm(inj, fault_seconds)
        size = -(-len(batch) // bursts)
        for b in range(bursts):
            due = plan.started + b * fault_seconds / bursts
            time.sleep(max(0.0, due - time.monotonic()))
            chunk = batch[b * size : (b + 1) * size]
            pipeline.put(client("kinesis"), stream, chunk)
            log(f"burst {b + 1}/{bursts}: {len(chunk)} records put at t+{time.monotonic() - plan.started:.0f}s")
        for i, r in enumerate(batch):  # a StartExecution names its record by sequence number
            tokens[("seq", r.sequence_number)] = i
        time.sleep(max(0.0, plan.deadline - time.monotonic()))
        inj.clear()
        log(f"faults off after {fault_seconds:.0f}s: {len(plan.hits)} fired; draining")
        began = time.monotonic()
        drained = rt.wait_idle(timeout=drain_timeout)
        drain_seconds = time.monotonic() - began
        outcome = read_outcome(rt, client, batch)
        errors = list(rt.errors)
        invocations = dict(rt.invocations)
    result = Result(seed, batch, plan, outcome, drained, drain_seconds, errors, invocations, replay)
    result.failures = check(result)
    return result


# --------------------------------------------------------------------------- the table


COLUMNS = (
    "seed",
    "records",
    "valid",
    "bad",
    "faults",
    "after",
    "inprogress_lost",
    "executions",
    "dlq",
    "gap",
    "answers",
    "max_answers",
    "duplicates",
    "echoes",
    "zombies",
    "temporary",
    "drain_s",
    "verdict",
)


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, dict):
            return " ".join(f"{k} {v}" for k, v in value.items()) + f" (= {sum(value.values())})"
        return str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def _progress(seed: int) -> Callable[[str], None]:
    return lambda message: print(f"[seed {seed}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    import boto3

    from demo.demo import terraform
    from localaws import snapshot
    from localaws import terraform as localtf
    from localaws.server import LocalAWS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    parser.add_argument("--seed", type=int, help="one seed (replay)")
    parser.add_argument("--fault-seconds", type=float, default=120.0)
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--probability", type=float, default=0.04, help="share of call identities that fail")
    parser.add_argument("--max-times", type=int, default=4, help="k: each fault fails its call 1..k times")
    parser.add_argument("--drain-timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else [int(s) for s in args.seeds.split(",") if s.strip()]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")}
    rows, status = [], 0
    with LocalAWS() as aws, tempfile.TemporaryDirectory(prefix="cnm-soak-") as tmp:
        os.environ["AWS_ENDPOINT_URL"] = aws.endpoint  # cnm_ingest's own reads of the DLQ (offloaded payloads)
        work = localtf.stage(
            Path(__file__).resolve().parents[1] / "examples" / "complete", Path(tmp) / "complete", aws.endpoint
        )
        terraform(work, env, "init", "-input=false", "-no-color", label="init")
        terraform(work, env, "apply", "-auto-approve", "-input=false", "-no-color", label="apply")
        applied = snapshot.take()
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        for seed in seeds:
            snapshot.restore(applied)
            replay = (
                f"python -m bench.chaos_soak --records {args.records} --seed {seed} "
                f"--fault-seconds {args.fault_seconds:g}"
            )
            result = soak(
                session,
                aws.endpoint,
                "cnm-complete",
                Path(tmp) / f"seed-{seed}",
                records=args.records,
                seed=seed,
                fault_seconds=args.fault_seconds,
                bursts=args.bursts,
                probability=args.probability,
                max_times=args.max_times,
                drain_timeout=args.drain_timeout,
                replay=replay,
                log=_progress(seed),
            )
            rows.append(result.row())
            print(table(rows[-1:]), file=sys.stderr, flush=True)
            if result.failures:
                status = 1
                print(explain(result), flush=True)
    print(table(rows))
    return status


if __name__ == "__main__":
    sys.exit(main())
