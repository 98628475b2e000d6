"""The one place where the project extends moto 5.2.5 (the local AWS).

Each patch restores an AWS behaviour that the Terraform AWS provider or our code
relies on and that moto 5.2.5 lacks; each has a test in tests/localaws showing the
behaviour through boto3. `PATCHES` lists them; `apply()` installs them once per
process. The CBOR translation is WSGI middleware (`RpcV2CborMiddleware`) that the
server (localaws.server) wraps around moto's application.

Patches, and why:

1. sqs_keep_redrive_allow_policy: SetQueueAttributes stores RedriveAllowPolicy and
   GetQueueAttributes returns it. moto drops it, so the provider polls
   `aws_sqs_queue_redrive_allow_policy` until its timeout (14 min seen).
2. sqs_keep_policy: SetQueueAttributes changes only the attributes it is given.
   moto wipes the queue's Policy when Policy is not among them (e.g. a later
   RedrivePolicy update), which removes SNS's right to send to the DLQ.
3. sfn_validate_state_machine_definition: ValidateStateMachineDefinition answers
   OK for a definition whose StartAt and every Next/Default/Choices target exist,
   FAIL with diagnostics otherwise. moto answers 500; the provider retries at plan.
4. sfn_list_state_machine_versions: ListStateMachineVersions lists the published
   versions. moto answers 500; the provider calls it after create and on read.
6. lambda_esm_on_stream_consumer: CreateEventSourceMapping accepts a Kinesis stream
   consumer ARN (enhanced fan-out, ``.../stream/<name>/consumer/<consumer>:<ts>``) of a
   registered consumer, and lists it with that ARN. moto answers "Invalid
   EventSourceArn" (the complete example's `enhanced_fan_out = true`).
7. s3_policy_secure_transport: a bucket policy statement conditioned on
   ``{"Bool": {"aws:SecureTransport": "false"}}`` does not apply: the SDKs reach AWS over
   TLS, so on AWS such a statement (the modules' DenyInsecureTransport) never matches
   the functions' requests. moto ignores the condition and denies every request to the
   bucket (403). Other statements are evaluated as moto does.
8. kinesis_resource_tags: ListTagsForResource / TagResource / UntagResource on a stream or
   stream consumer ARN. moto answers 500; provider 6.x reads a stream consumer's tags
   this way and retries until its timeout (the complete example's enhanced fan-out).
9. sfn_execution_status_events: a Standard state machine's execution publishes a "Step
   Functions Execution Status Change" event (source ``aws.states``) to the account's
   default event bus when it starts (RUNNING) and when it ends (SUCCEEDED, FAILED,
   TIMED_OUT, ABORTED, also after StopExecution), with the detail AWS sends
   (executionArn, stateMachineArn, name, status, startDate, stopDate in epoch
   milliseconds, input, output, error, cause). moto emits nothing, so an EventBridge rule
   on these events (modules/recorder's) never fires. moto's EventBridge then matches
   the rules and delivers to their targets (SQS) as it does for PutEvents.
10. s3_delete_version_in_suspended_bucket: DeleteObject / DeleteObjects with a VersionId
   permanently delete that version, also when the bucket's versioning is Suspended (the
   provider suspends it when it destroys `aws_s3_bucket_versioning`, then force-destroys
   the bucket version by version). moto ignores the VersionId of a suspended bucket, drops
   every version of the key and fails on a delete marker (500, retried until the destroy
   times out: the complete example's versioned staging bucket, with the workflow's
   `.cnm-ingest-tmp/` keys deleted).
11. sfn_execution_running_from_creation: an execution StartExecution created is RUNNING from
   the moment it exists. moto's interpreter lists it with no status until its worker starts,
   so a ListExecutions or DescribeExecution (or a StartExecution of the same name) landing in
   between answered 500 (seen in the fault matrix reading executions while starts were under way).
12. sfn_start_execution_all_or_nothing: a StartExecution that fails inside the emulator creates
   nothing, and one that answers creates an execution that runs. moto registers the execution,
   then starts its interpreter: an error in between (the RUNNING status event's delivery, the
   worker's start) answered 500 and left an execution listed RUNNING that never ran (a zombie
   that kept the runtime busy, or, read one page only, let it say idle). Now the execution is
   removed again when its start fails, the status event's delivery cannot fail the start (on
   AWS, EventBridge delivers apart from the execution: a failed delivery is kept in
   ``EVENT_DELIVERY_ERRORS``), and the name check and the registration are one step, so two
   concurrent starts of one name (an SDK retrying a lost response) create one execution.
13. events_schedule_rules_match_no_event: an EventBridge rule with a schedule expression and no event
   pattern (modules/reconcile's schedule) receives no event from PutEvents: on AWS it fires on its schedule
   only. moto treats the missing pattern as "match everything" and sends every event (the Step Functions
   status changes of patch 9) to the rule's targets; a Lambda target is one it cannot deliver to, so the
   whole PutEvents raised and the recorder's rule got nothing either.
14. sfn_redrive_execution: RedriveExecution restarts a FAILED, TIMED_OUT or ABORTED Standard execution
   that stopped within the last 14 days from the top-level state it did not finish (StartAt when it finished
   none), with that state's input; redriveCount goes up by one (DescribeExecution shows redriveCount,
   redriveDate and redriveStatus REDRIVABLE / NOT_REDRIVABLE), and the status events follow (RUNNING, then the
   end). Anything else is ExecutionNotRedrivable (RUNNING, SUCCEEDED, stopped longer ago, Express). moto
   answers 500 (no such action). The new run's history replaces the first run's (AWS appends to it).
15. s3_copy_object_conditional_write: CopyObject honours the destination's conditions, as PutObject does:
   ``If-None-Match: *`` copies only when no object is at the destination key, ``If-Match: <ETag>`` only when the
   object there has that ETag (412 PreconditionFailed otherwise; 404 NoSuchKey for If-Match and no object).
   moto ignores both and overwrites (SyncGranule moves a verified file into a place it saw empty with
   ``If-None-Match: *``). The check and the copy are not one atomic step here, as they are on S3.
16. backend_dict_lookup_without_lock (speed, no behaviour): ``BackendDict[account]`` of an account it already
   holds returns without taking moto's global ``backend_lock``. moto's lookup, made several times in every
   request, takes the lock, copies the dict's keys into a list and compares itself with ``__eq__`` against every
   BackendDict in use: with SyncGranule's 32 threads on in-process moto, threads queued on that lock for 75% of
   a 10,000-file granule's run (py-spy). The first lookup of an account after a reset or a snapshot restore
   takes moto's own path, which registers the BackendDict for the next reset.
17. sfn_parse_scope_per_definition: two executions starting at once parse their definitions independently.
   moto's ASL preprocessor keeps its query-language scope stack in a class attribute that every parse shares, so
   two interpreter threads parsing at once popped each other's scopes: one died (IndexError) before its first
   state and its execution stayed RUNNING for ever (seen in CI: the fault matrix, ``redelivered 1x``). Each
   parse now has its own stack.
18. sfn_stop_execution_at_any_moment: StopExecution of a RUNNING execution answers and ends it ABORTED at any
   moment, also before its interpreter thread reached its first state; and an interpreter that fails before its
   first state ends the execution FAILED (``States.Runtime``), as AWS never leaves an execution RUNNING without a
   state running. moto builds the execution's environment inside the interpreter thread, so a StopExecution
   landing before it answered 500 (``'NoneType' object has no attribute 'set_stop'``), and a thread that died
   there left the execution RUNNING. The environment is now built when the execution starts.
19. sfn_parse_once_per_definition (speed, no behaviour): a state machine's definition is parsed once and its
   program shared by every execution of it. moto's interpreter parses the definition again (ANTLR, in Python) for
   each execution: a quarter of the CPU of the e2e tier's process went there (py-spy of a fault-matrix case,
   97 executions of one definition). The program is reentrant, as the interpreter already relies on for a Map's
   iterations: everything an execution changes lives in its own Environment, keyed by the component
   (``heap_key``), and that key is now set under a lock, so two executions' first use of a component agree on it.
   The cache is keyed by the parser and the definition's text (a changed definition, or a parser replaced by a
   test, parses again) and holds the 64 last definitions.
20. jsonpath_parse_once (speed, no behaviour): a JSONPath expression's text is parsed once. jsonpath_ng builds a
   new PLY parser (its yacc tables) for every expression it parses, and moto parses again on every use: each
   EventBridge input path of every event delivered (the recorder's rule) and each state's paths in every
   execution (9% of the e2e tier's process, py-spy). Parsed expressions are shared (they hold no state: ``find``
   and ``update`` read them and change only the data); the 1,024 last texts are kept, for both parsers
   (``jsonpath_ng.parse`` and the extended ``jsonpath_ng.ext.parse``), where moto imported them too.
21. dynamodb_update_expression_once (speed, no behaviour): an UpdateItem's update expression is parsed once per
   text, and its clauses are counted in one pass. moto parses the text twice in every UpdateItem (the request's
   attribute names, then the update), and checks "one SET, one REMOVE, one ADD" by walking the whole tree again
   below every node of it: 38% of the chaos soak's test process was moto's UpdateItem (py-spy), a third of that
   these two. The parsed tree is shared: moto reads it, and its validator works on a deep copy. The counts are
   checked node by node in the order moto's walk checks them, so the same error is raised for the same
   expression. A text that does not parse raises every time; the 1,024 last texts are kept.
22. server_module_list_once (speed, no behaviour): moto's server lists its own package folder once. To route a
   request to its service, moto's WSGI application asks ``moto.backends.list_of_moto_modules()``, which lists
   moto's package directory and stats each of its ~150 entries, for every request: 4.4% of the chaos soak's test
   process (py-spy), in system calls besides. The names are read once, in the same order (moto's folder does not
   change while it runs).
5. RpcV2CborMiddleware: CloudWatch over Smithy RPC v2 CBOR (the `smithy-protocol:
   rpc-v2-cbor` header, POST /service/<target>/operation/<Op>), the protocol of the
   AWS SDK for Go v2 the provider uses. moto answers it 404. The middleware decodes
   the CBOR request with botocore's CBOR parser, hands moto the same call in the
   JSON protocol (which moto implements), and encodes moto's answer back to CBOR
   with botocore's CBOR serializer, shape by shape (so timestamps are tag 1 epoch
   seconds, as AWS sends them). No CBOR library beyond botocore is needed.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

PATCHES: list[str] = [
    "sqs_keep_redrive_allow_policy",
    "sqs_keep_policy",
    "sfn_validate_state_machine_definition",
    "sfn_list_state_machine_versions",
    "cloudwatch_rpc_v2_cbor",
    "lambda_esm_on_stream_consumer",
    "s3_policy_secure_transport",
    "kinesis_resource_tags",
    "sfn_execution_status_events",
    "s3_delete_version_in_suspended_bucket",
    "sfn_execution_running_from_creation",
    "sfn_start_execution_all_or_nothing",
    "events_schedule_rules_match_no_event",
    "sfn_redrive_execution",
    "s3_copy_object_conditional_write",
    "backend_dict_lookup_without_lock",
    "sfn_parse_scope_per_definition",
    "sfn_stop_execution_at_any_moment",
    "sfn_parse_once_per_definition",
    "jsonpath_parse_once",
    "dynamodb_update_expression_once",
    "server_module_list_once",
]
EVENT_DELIVERY_ERRORS: list[str] = []  # patch 12: status events that could not be delivered

_applied = False


def apply() -> list[str]:
    """Install every patch into moto's classes (idempotent); returns the names applied."""
    global _applied
    if not _applied:
        _patch_sqs()
        _patch_stepfunctions()
        _patch_lambda()
        _patch_s3()
        _patch_s3_conditional_copy()
        _patch_backend_dict_lookup()
        _patch_kinesis()
        _patch_sfn_events()
        _patch_sfn_execution_status()
        _patch_sfn_start_execution()
        _patch_events_schedule_rules()
        _patch_sfn_redrive()
        _patch_sfn_parse_scope()
        _patch_sfn_parse_once()  # before patch 18, which wraps the entry point this replaces
        _patch_sfn_worker_environment()
        _patch_jsonpath_parse_once()
        _patch_dynamodb_update_expression_once()
        _patch_server_module_list_once()
        _applied = True
    return list(PATCHES)


# --------------------------------------------------------------------------- SQS


def _patch_sqs() -> None:
    from moto.sqs import models as sqs_models

    Queue: Any = sqs_models.Queue  # patched in place

    original_set = Queue._set_attributes
    original_attributes = Queue.attributes.fget

    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        # Patch 2: an update without Policy keeps the queue's Policy ("" removes it, as on AWS).
        keep_policy = getattr(self, "policy", None)
        original_set(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = keep_policy
        elif not attributes["Policy"]:
            self.policy = None
        # Patch 1: RedriveAllowPolicy is stored ("" removes it).
        if "RedriveAllowPolicy" in attributes:
            self.redrive_allow_policy = attributes["RedriveAllowPolicy"] or None

    def attributes(self: Any) -> dict[str, Any]:
        result = original_attributes(self)
        if not result.get("RedriveAllowPolicy"):
            result.pop("RedriveAllowPolicy", None)
        return result

    Queue.redrive_allow_policy = None  # the default of a queue that never had one
    Queue._set_attributes = _set_attributes
    Queue.attributes = property(attributes)
    if "RedriveAllowPolicy" not in Queue.BASE_ATTRIBUTES:
        # GetQueueAttributes validates names against BASE_ATTRIBUTES.
        Queue.BASE_ATTRIBUTES = [*Queue.BASE_ATTRIBUTES, "RedriveAllowPolicy"]


# ---------------------------------------------------------------- Step Functions


def definition_diagnostics(definition: str) -> list[dict[str, str]]:
    """ERROR diagnostics of an Amazon States Language definition: unparsable JSON,
    a missing StartAt, or a transition to a state that does not exist (recursing into
    Parallel branches and Map iterators)."""
    try:
        doc = json.loads(definition)
    except ValueError as exc:
        return [{"severity": "ERROR", "code": "INVALID_JSON_DESCRIPTION", "message": str(exc), "location": "/"}]
    if not isinstance(doc, dict):
        return [{"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": "not an object", "location": "/"}]
    return list(_machine_diagnostics(doc, ""))


def _machine_diagnostics(doc: dict[str, Any], where: str) -> Iterable[dict[str, str]]:
    states = doc.get("States")
    if not isinstance(states, dict) or not states:
        yield _error(f"{where}/States", "States must be a non-empty object")
        return
    if doc.get("StartAt") not in states:
        yield _error(f"{where}/StartAt", f"StartAt {doc.get('StartAt')!r} is not a state")
    for name, state in states.items():
        here = f"{where}/States/{name}"
        if not isinstance(state, dict):
            yield _error(here, "a state must be an object")
            continue
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Choices", []) if isinstance(c, dict)]
        targets += [c.get("Next") for c in state.get("Catch", []) if isinstance(c, dict)]
        for target in targets:
            if target is not None and target not in states:
                yield _error(here, f"transition to missing state {target!r}")
        for i, branch in enumerate(state.get("Branches", [])):
            yield from _machine_diagnostics(branch, f"{here}/Branches/{i}")
        for key in ("Iterator", "ItemProcessor"):
            if isinstance(state.get(key), dict):
                yield from _machine_diagnostics(state[key], f"{here}/{key}")


def _error(location: str, message: str) -> dict[str, str]:
    return {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": message, "location": location}


def _patch_stepfunctions() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions import responses as sfn_responses

    StepFunctionResponse: Any = sfn_responses.StepFunctionResponse

    def validate_state_machine_definition(self: Any) -> ActionResult:
        # Patch 3
        diagnostics = definition_diagnostics(self._get_param("definition") or "")
        return ActionResult({"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False})

    def list_state_machine_versions(self: Any) -> ActionResult:
        # Patch 4
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        versions = sorted(getattr(machine, "versions", {}).values(), key=lambda v: v.version, reverse=True)
        return ActionResult(
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions
                ]
            }
        )

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition
    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions


# ----------------------------------------------------------------------- Lambda


def _patch_lambda() -> None:
    from moto.awslambda import models as lambda_models

    EventSourceMapping: Any = lambda_models.EventSourceMapping
    LambdaBackend: Any = lambda_models.LambdaBackend
    from moto.core.exceptions import JsonRESTError as RESTError
    from moto.kinesis.models import kinesis_backends

    original = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        # Patch 6
        arn = spec.get("EventSourceArn") or ""
        if ":kinesis:" not in arn or "/consumer/" not in arn:
            return original(self, spec)
        streams = kinesis_backends[self.account_id][self.region_name].streams.values()
        stream = next((s for s in streams if s.arn == arn.split("/consumer/")[0]), None)
        if stream is None or stream.get_consumer_by_arn(arn) is None:
            raise RESTError("ResourceNotFoundException", "Invalid EventSourceArn")
        func = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec.get("FunctionName", ""))
        spec.update(RegionName=self.region_name, AccountId=self.account_id, FunctionArn=func.function_arn)
        esm = EventSourceMapping(spec)
        self._event_source_mappings[esm.uuid] = esm
        return esm

    LambdaBackend.create_event_source_mapping = create_event_source_mapping


# --------------------------------------------------------------------------- S3


def _insecure_transport_only(statement: Any) -> bool:
    """True for a statement that applies only to requests without TLS."""
    condition = statement.get("Condition") if isinstance(statement, dict) else None
    if not isinstance(condition, dict) or list(condition) != ["Bool"]:
        return False
    values = condition["Bool"]
    if not isinstance(values, dict) or list(values) != ["aws:SecureTransport"]:
        return False
    value = values["aws:SecureTransport"]
    return [str(v).lower() for v in (value if isinstance(value, list) else [value])] == ["false"]


def _patch_s3() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models as s3_models

    FakeBucket: Any = s3_models.FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        # Patch 7
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy)
        statements = policy.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        policy["Statement"] = [st for st in statements if not _insecure_transport_only(st)]
        return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission

    # Patch 10
    S3Backend: Any = s3_models.S3Backend
    FakeDeleteMarker: Any = s3_models.FakeDeleteMarker
    FakeKey: Any = s3_models.FakeKey
    from moto.s3.exceptions import AccessDeniedByLock

    FakeDeleteMarker.dispose = lambda self, garbage=False: None  # nothing to release (moto calls it on every version)
    original_delete = S3Backend.delete_object

    def delete_object(
        self: Any, bucket_name: str, key_name: str, version_id: str | None = None, bypass: bool = False
    ) -> tuple[bool, dict[str, Any]]:
        bucket = self.get_bucket(bucket_name)
        if version_id is None or bucket.versioning_status != "Suspended":
            return original_delete(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        versions = bucket.keys.getlist(key_name, [])
        match = [v for v in versions if str(v.version_id) == str(version_id)]
        if not match:
            return False, {}
        (version,) = match
        if isinstance(version, FakeKey) and version.is_locked(governance_bypass=bypass):
            raise AccessDeniedByLock
        meta = {"version-id": version_id}
        if isinstance(version, FakeDeleteMarker):
            meta["delete-marker"] = "true"
        rest = [v for v in versions if v is not version]
        if rest:
            bucket.keys.setlist(key_name, rest)
        else:
            dict.pop(bucket.keys, key_name)
        if isinstance(version, FakeKey):
            version.dispose()
        return True, meta

    S3Backend.delete_object = delete_object


def _patch_backend_dict_lookup() -> None:
    """Patch 16: a lookup of an account a BackendDict already holds takes no lock."""
    from moto.core import base_backend

    BackendDict: Any = base_backend.BackendDict
    original = BackendDict._create_account_specific_backend
    registry: list[Any] = vars(BackendDict)["_instances"]  # cleared in place by moto's reset, never replaced

    def create_account_specific_backend(self: Any, account_id: str) -> None:
        # the account is there and this BackendDict is registered (by identity: no __eq__, no lock): nothing to do
        if dict.__contains__(self, account_id) and any(bd is self for bd in registry):
            return
        original(self, account_id)

    BackendDict._create_account_specific_backend = create_account_specific_backend


def _patch_s3_conditional_copy() -> None:
    """Patch 15: CopyObject's If-None-Match / If-Match at the destination."""
    from moto.s3 import responses as s3_responses
    from moto.s3.exceptions import MissingKey, PreconditionFailed

    S3Response: Any = s3_responses.S3Response
    original_copy = S3Response.copy_object

    def copy_object(self: Any) -> Any:
        if_none_match, if_match = self.headers.get("If-None-Match"), self.headers.get("If-Match")
        if if_none_match or if_match:
            key_name = self.parse_key_name()
            existing = self.backend.get_object(self.bucket_name, key_name)
            if if_none_match == "*" and existing is not None:
                raise PreconditionFailed("If-None-Match")
            if if_match:
                if existing is None:
                    raise MissingKey(key=key_name)
                if if_match.replace('"', "") != existing.etag.replace('"', ""):
                    raise PreconditionFailed("If-Match")
        return original_copy(self)

    S3Response.copy_object = copy_object


# ------------------------------------------------------------ Step Functions events

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"


def _millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if hasattr(value, "timestamp") else None


def execution_status_event(description: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    """The detail of the EventBridge event Step Functions publishes for ``description`` (a
    DescribeExecution result, dates as datetimes) at ``status`` (default: its own)."""
    status = status or str(description["status"])
    ended = status != "RUNNING"
    return {
        "executionArn": description["executionArn"],
        "stateMachineArn": description["stateMachineArn"],
        "name": description.get("name") or description["executionArn"].rsplit(":", 1)[-1],
        "status": status,
        "startDate": _millis(description.get("startDate")),
        "stopDate": _millis(description.get("stopDate")) if ended else None,
        "input": description.get("input"),
        "inputDetails": {"included": True},
        "output": description.get("output") if status == "SUCCEEDED" else None,
        "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
        "error": description.get("error") if ended else None,
        "cause": description.get("cause") if ended else None,
        "redriveCount": description.get("redriveCount", 0),
    }


def _publish_status(execution: Any, status: str) -> None:
    """Patch 9: the status change of ``execution`` (a parser Execution) on its default event bus."""
    from moto.events.models import events_backends

    # moto keeps the type CreateStateMachine was given in ``state_machine.type`` (its ``sm_type`` is always STANDARD)
    if getattr(execution.state_machine, "type", "STANDARD") != "STANDARD":
        return  # Express workflows publish no status change events
    description = dict(execution.to_describe_output())
    description["status"] = status
    detail = execution_status_event(description, status)
    moment = (detail["stopDate"] or detail["startDate"] or 0) / 1000
    events_backends[execution.account_id][execution.region_name].put_events(
        [
            {
                "Source": "aws.states",
                "DetailType": EXECUTION_STATUS_CHANGE,
                "Detail": json.dumps(detail),
                "Resources": [detail["executionArn"]],
                "Time": moment,
            }
        ]
    )


def _patch_sfn_execution_status() -> None:
    """Patch 11: a parser Execution is RUNNING from its creation, not only once its worker starts."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend import execution as sfn_execution

    Execution: Any = sfn_execution.Execution
    original_init = Execution.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.exec_status is None:
            self.exec_status = ExecutionStatus.RUNNING

    Execution.__init__ = __init__


def _patch_sfn_start_execution() -> None:
    """Patch 12: StartExecution creates an execution that runs, or nothing."""
    import threading

    from moto.stepfunctions.parser import models as parser_models

    Backend: Any = parser_models.StepFunctionsParserBackend
    original = Backend.start_execution
    lock = threading.RLock()

    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        machine = self.describe_state_machine(state_machine_arn)
        with lock:  # the name check, the registration and the start: one step
            before = list(machine.executions)
            try:
                return original(self, state_machine_arn, *args, **kwargs)
            except BaseException:
                for execution in [e for e in machine.executions if not any(e is b for b in before)]:
                    machine.executions.remove(execution)  # registered, but its start failed: never created
                raise

    Backend.start_execution = start_execution


def _patch_sfn_parse_scope() -> None:
    """Patch 17: each ASL parse has its own query-language scope stack (moto's is one class attribute)."""
    from moto.stepfunctions.parser.asl.parse import preprocessor

    Preprocessor: Any = preprocessor.Preprocessor
    original_init = Preprocessor.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._query_language_per_scope = []

    Preprocessor.__init__ = __init__


def _patch_sfn_parse_once() -> None:
    """Patch 19: one parse per definition (and parser), its program shared by the executions; heap keys set once."""
    import functools
    import threading

    from moto.stepfunctions.parser.asl.component import eval_component
    from moto.stepfunctions.parser.backend import execution_worker
    from moto.stepfunctions.parser.utils import long_uid

    Component: Any = eval_component.EvalComponent
    Worker: Any = execution_worker.ExecutionWorker
    lock, slot = threading.Lock(), "_EvalComponent__heap_key"  # moto's private (name-mangled) attribute

    def heap_key(self: Any) -> str:
        key = self.__dict__.get(slot)
        if key is None:
            with lock:
                key = self.__dict__.get(slot)
                if key is None:
                    key = self.__dict__[slot] = long_uid()
        return str(key)

    @functools.lru_cache(maxsize=64)
    def parsed(parse: Callable[[str], Any], definition: str) -> Any:
        return parse(definition)[0]

    parsing: dict[tuple[Any, str], threading.Lock] = {}  # one lock per definition being parsed: parsed once

    def program(parse: Callable[[str], Any], definition: str) -> Any:
        with lock:
            being = parsing.setdefault((parse, definition), threading.Lock())
        try:
            with being:  # executions starting at once wait for the first one's parse (another definition does not)
                return parsed(parse, definition)  # a parse that raises is not kept: the next execution tries again
        finally:
            with lock:
                parsing.pop((parse, definition), None)

    def _get_evaluation_entrypoint(self: Any) -> Any:
        parse = execution_worker.AmazonStateLanguageParser.parse  # looked up each time: a test may replace it
        return program(parse, self._evaluation_details.state_machine_details.definition)

    Component.heap_key = property(heap_key)
    Worker._get_evaluation_entrypoint = _get_evaluation_entrypoint


def _patch_jsonpath_parse_once() -> None:
    """Patch 20: one parse per JSONPath text, for both of jsonpath_ng's parsers and where moto imported them."""
    import functools

    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    plain = functools.lru_cache(maxsize=1024)(jsonpath_ng.parse)
    extended = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
    for module, name, cached in (
        (jsonpath_ng, "parse", plain),
        (jsonpath_ng.ext, "parse", extended),  # moto.events imports it at each call: it gets this one
        (result_path, "parse", plain),
        (json_path, "parse", extended),
    ):
        setattr(module, name, cached)


def _patch_dynamodb_update_expression_once() -> None:
    """Patch 21: one parse per update expression text; the clause counts checked in one pass of the tree."""
    import functools

    from moto.dynamodb.exceptions import TooManyClauses
    from moto.dynamodb.parsing import ast_nodes as nodes_module
    from moto.dynamodb.parsing import expressions as expressions_module
    from moto.dynamodb.parsing import validators

    # moto's parsing modules are untyped (`# type: ignore` at their top): read through Any
    ast_nodes: Any = nodes_module
    expressions: Any = expressions_module
    Parser = expressions.UpdateExpressionParser
    Parser.make = staticmethod(functools.lru_cache(maxsize=1024)(Parser.make))

    counted = (  # in the order moto checks them
        (ast_nodes.UpdateExpressionAddClause, "ADD"),
        (ast_nodes.UpdateExpressionRemoveClause, "REMOVE"),
        (ast_nodes.UpdateExpressionSetClause, "SET"),
    )
    descended = (ast_nodes.Expression, ast_nodes.UpdateExpressionFunction)  # what moto's find_clauses descends into

    def tally(node: Any) -> list[int]:
        """How many of each counted clause moto's ``find_clauses`` finds below ``node``; checked as moto's walk
        checks them: children first, each UpdateExpression node with its own counts."""
        totals = [0] * len(counted)
        for child in node.children or []:
            below = tally(child) if isinstance(child, ast_nodes.Node) else [0] * len(counted)
            for i, (kind, _) in enumerate(counted):
                if type(child) is kind:
                    totals[i] += 1
                elif isinstance(child, descended):
                    totals[i] += below[i]
        if isinstance(node, ast_nodes.UpdateExpression):
            for (_, name), total in zip(counted, totals, strict=True):
                if total > 1:
                    raise TooManyClauses(name)
        return totals

    def traverse(self: Any, node: Any) -> Any:
        if isinstance(node, ast_nodes.Node):
            tally(node)
        return node

    ActionCount: Any = validators.ActionCountValidator
    ActionCount.traverse = traverse


def _patch_server_module_list_once() -> None:
    """Patch 22: moto's package folder listed once for the server's routing, not on every request."""
    import functools

    from moto import backends

    listed: Any = backends
    original = listed.list_of_moto_modules
    listed.list_of_moto_modules = functools.cache(lambda: tuple(original()))


def _patch_sfn_worker_environment() -> None:
    """Patch 18: an execution's environment exists from its start; a failure before the first state is FAILED."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend import execution_worker

    Worker: Any = execution_worker.ExecutionWorker
    original_start, original_env, original_logic, original_entrypoint = (
        Worker.start,
        Worker._get_evaluation_environment,
        Worker._execution_logic,
        Worker._get_evaluation_entrypoint,
    )

    def start(self: Any) -> None:
        if self.env is None:  # built here, so a StopExecution arriving before the thread runs has it to stop
            self.env = original_env(self)
        original_start(self)

    def _get_evaluation_environment(self: Any) -> Any:
        return self.env if self.env is not None else original_env(self)

    def _get_evaluation_entrypoint(self: Any) -> Any:
        program = original_entrypoint(self)
        self.parsed = True
        return program

    def _execution_logic(self: Any) -> None:
        try:
            original_logic(self)
        except Exception as exc:
            if getattr(self, "parsed", False):
                raise  # after the parse: moto's own handling (the program ends itself)
            if self.env is None:
                self.env = original_env(self)
            if not isinstance(self.env._program_state, ProgramStopped):  # a stop that came first stays ABORTED
                self.env.set_error(
                    ExecutionFailedEventDetails(error="States.Runtime", cause=f"{type(exc).__name__}({exc})")
                )
            self._execution_communication.terminated()

    Worker.start = start
    Worker._get_evaluation_environment = _get_evaluation_environment
    Worker._get_evaluation_entrypoint = _get_evaluation_entrypoint
    Worker._execution_logic = _execution_logic
    _patch_sfn_stop_before_first_state()


def _patch_sfn_stop_before_first_state() -> None:
    """Patch 18: a stop before the program's first state is kept (moto dropped it) and ends the run ABORTED."""
    from moto.stepfunctions.parser.api import ExecutionAbortedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval import environment
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramRunning, ProgramStopped

    Environment: Any = environment.Environment
    Details: Any = EventDetails  # a TypedDict moto fills partly, as here
    original_set_stop = Environment.set_stop

    def aborted(env: Any) -> None:
        stopped = env._program_state
        env.event_history_context.source_event_id = 0
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionAborted,
            event_details=Details(
                executionAbortedEventDetails=ExecutionAbortedEventDetails(error=stopped.error, cause=stopped.cause)
            ),
        )

    def set_stop(self: Any, stop_date: Any, cause: str | None, error: str | None) -> None:
        with self._state_mutex:  # an RLock: a stop before the program's start is kept, not dropped
            if self._program_state is None:
                self._program_state = ProgramRunning()
            original_set_stop(self, stop_date=stop_date, cause=cause, error=error)

    def set_next_state_name(self: Any, next_state_name: str) -> None:
        with self._state_mutex:
            if isinstance(self._program_state, ProgramStopped):
                if not self.is_frame():  # stopped before its first state: no state runs; the history says so
                    aborted(self)
                return
            if self._program_state is None:
                self._program_state = ProgramRunning()
            if not isinstance(self._program_state, ProgramRunning):
                raise RuntimeError(f"Could not set NextState value when in state '{type(self._program_state)}'.")
            self._program_state.next_state_name = next_state_name

    Environment.set_stop = set_stop
    Environment.next_state_name = Environment.next_state_name.setter(set_next_state_name)


def _patch_events_schedule_rules() -> None:
    """Patch 13: a schedule rule without an event pattern matches no event."""
    from moto.events import models as events_models

    Rule: Any = events_models.Rule
    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        original(self, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def _patch_sfn_events() -> None:
    from moto.stepfunctions.parser.backend import execution as sfn_execution

    Execution: Any = sfn_execution.Execution
    Communication: Any = sfn_execution.BaseExecutionWorkerCommunication
    original_start, original_terminated = Execution.start, Communication.terminated

    def start(self: Any) -> None:
        if self.exec_worker is None:  # published before the first state runs, as on AWS
            try:
                _publish_status(self, "RUNNING")
            except Exception as exc:  # patch 12: a delivery failure does not stop the execution
                EVENT_DELIVERY_ERRORS.append(f"{self.exec_arn} RUNNING: {exc!r}")
        original_start(self)

    def terminated(self: Any) -> None:
        original_terminated(self)
        _publish_status(self.execution, str(self.execution.exec_status.value))

    Execution.start = start
    Communication.terminated = terminated


REDRIVE_DAYS = 14  # patch 14: how long after it stopped an execution can be redriven
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")


def unfinished_state(events: list[dict[str, Any]], top_level: Iterable[str]) -> tuple[str, Any] | None:
    """Patch 13: the top-level state a history entered last and never left, with the input it entered with."""
    names = set(top_level)
    open_states: list[tuple[str, Any]] = []
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails") or {}
            if details.get("name") in names:
                open_states.append((details["name"], details.get("input")))
        elif kind.endswith("StateExited"):
            name = (event.get("stateExitedEventDetails") or {}).get("name")
            open_states = [s for s in open_states if s[0] != name]
    return open_states[-1] if open_states else None


def _patch_sfn_redrive() -> None:
    """Patch 13: RedriveExecution (and redriveCount / redriveDate / redriveStatus in DescribeExecution)."""
    import datetime
    import threading

    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult
    from moto.stepfunctions import responses as sfn_responses
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend import execution as sfn_execution

    class ExecutionNotRedrivable(AWSError):
        TYPE = "ExecutionNotRedrivable"
        STATUS = 400

    Execution: Any = sfn_execution.Execution
    StepFunctionResponse: Any = sfn_responses.StepFunctionResponse
    original_describe = StepFunctionResponse.describe_execution
    lock = threading.Lock()

    def redrivable(execution: Any, now: datetime.datetime) -> str | None:
        """Why ``execution`` cannot be redriven now, or None."""
        status = execution.exec_status.value if execution.exec_status is not None else "RUNNING"
        if getattr(execution.state_machine, "type", "STANDARD") != "STANDARD":
            return "Express executions cannot be redriven"
        if status not in REDRIVABLE:
            return f"the execution is {status}: only FAILED, TIMED_OUT or ABORTED executions can be redriven"
        if execution.stop_date is None or now - execution.stop_date > datetime.timedelta(days=REDRIVE_DAYS):
            return f"the execution stopped more than {REDRIVE_DAYS} days ago"
        return None

    def redrive(self: Any) -> datetime.datetime:
        with lock:  # the check and the restart: one step (two concurrent redrives: one restarts, one is refused)
            return restart(self)

    def restart(self: Any) -> datetime.datetime:
        now = datetime.datetime.now(tz=datetime.UTC)
        why = redrivable(self, now)
        if why:
            raise ExecutionNotRedrivable(f"Execution {self.exec_arn} cannot be redriven: {why}")
        definition = json.loads(self.state_machine.definition)
        events = self.to_history_output()["events"] if self.exec_worker is not None else []
        found = unfinished_state(events, definition.get("States", {}))
        start_at, state_input = found if found else (definition["StartAt"], json.dumps(self.input_data))
        definition["StartAt"] = start_at
        worker = self._get_start_execution_worker()
        worker._evaluation_details.state_machine_details.definition = json.dumps(definition)
        worker._evaluation_details.execution_details.inpt = json.loads(state_input) if state_input else {}
        self.exec_worker = worker
        self.exec_status = ExecutionStatus.RUNNING
        self.stop_date = self.error = self.cause = self.output = None
        self.redrive_count = getattr(self, "redrive_count", 0) + 1
        self.redrive_date = now
        try:
            _publish_status(self, "RUNNING")
        except Exception as exc:  # as patch 12: a delivery failure does not stop the execution
            EVENT_DELIVERY_ERRORS.append(f"{self.exec_arn} RUNNING (redrive): {exc!r}")
        worker.start()
        return now

    def redrive_execution(self: Any) -> ActionResult:
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        return ActionResult({"redriveDate": execution.redrive()})

    def describe_execution(self: Any) -> ActionResult:
        result = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        out = dict(result.result)
        out["redriveCount"] = getattr(execution, "redrive_count", 0)
        if getattr(execution, "redrive_date", None) is not None:
            out["redriveDate"] = execution.redrive_date
        now = datetime.datetime.now(tz=datetime.UTC)
        if isinstance(execution, Execution):
            out["redriveStatus"] = "NOT_REDRIVABLE" if redrivable(execution, now) else "REDRIVABLE"
        return ActionResult(out)

    Execution.redrive = redrive
    StepFunctionResponse.redrive_execution = redrive_execution
    StepFunctionResponse.describe_execution = describe_execution


# ---------------------------------------------------------------------- Kinesis


def _patch_kinesis() -> None:
    from moto.core.responses import ActionResult
    from moto.kinesis import responses as kinesis_responses

    KinesisResponse: Any = kinesis_responses.KinesisResponse
    tags: dict[str, dict[str, str]] = {}  # consumer ARN -> tags (a stream's are the stream's own)

    def _store(self: Any, arn: str) -> dict[str, str]:
        if "/consumer/" in arn:
            stream = self.kinesis_backend.describe_stream(
                stream_arn=arn.split("/consumer/", maxsplit=1)[0], stream_name=None
            )
            if stream.get_consumer_by_arn(arn) is None:
                from moto.kinesis.exceptions import ResourceNotFoundError

                raise ResourceNotFoundError(arn)
            return tags.setdefault(arn, {})
        return self.kinesis_backend.describe_stream(stream_arn=arn, stream_name=None).tags

    def list_tags_for_resource(self: Any) -> ActionResult:
        store = _store(self, self._get_param("ResourceARN"))
        return ActionResult({"Tags": [{"Key": k, "Value": v} for k, v in sorted(store.items())]})

    def tag_resource(self: Any) -> ActionResult:
        _store(self, self._get_param("ResourceARN")).update(self._get_param("Tags") or {})
        return ActionResult({})

    def untag_resource(self: Any) -> ActionResult:
        store = _store(self, self._get_param("ResourceARN"))
        for key in self._get_param("TagKeys") or []:
            store.pop(key, None)
        return ActionResult({})

    KinesisResponse.list_tags_for_resource = list_tags_for_resource
    KinesisResponse.tag_resource = tag_resource
    KinesisResponse.untag_resource = untag_resource


# ----------------------------------------------------- Smithy RPC v2 CBOR (patch 5)

_RPC_PATH = re.compile(r"^/service/(?P<target>[^/]+)/operation/(?P<operation>[^/]+)/?$")
# targetPrefix of each service the provider reaches over rpc-v2-cbor -> botocore service name
CBOR_SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}


class RpcV2CborMiddleware:
    """WSGI middleware answering Smithy RPC v2 CBOR requests through moto's JSON protocol."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self._models: dict[str, Any] = {}

    def _service_model(self, service: str) -> Any:
        if service not in self._models:
            import botocore.session

            self._models[service] = botocore.session.get_session().get_service_model(service)
        return self._models[service]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = _RPC_PATH.match(environ.get("PATH_INFO", ""))
        if environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor" or not match:
            return self.app(environ, start_response)
        service = CBOR_SERVICES.get(match["target"])
        if service is None:
            return _cbor_error(start_response, 404, "UnknownOperationException", f"unknown service {match['target']}")
        model = self._service_model(service)
        try:
            operation = model.operation_model(match["operation"])
        except Exception:  # botocore raises OperationNotFoundError
            return _cbor_error(start_response, 404, "UnknownOperationException", match["operation"])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        params = _cbor_decode(body, operation.input_shape)
        status, headers, payload = self._call_json(environ, operation, params)
        if status >= 300:
            error = json.loads(payload or b"{}")
            code = str(error.get("__type", "InternalFailure")).rsplit("#", 1)[-1]
            return _cbor_error(
                start_response,
                status,
                code,
                error.get("message") or error.get("Message") or "",
                query_error=headers.get("x-amzn-query-error"),
            )
        parsed = _json_parse(payload, headers, status, operation.output_shape)
        out = _cbor_encode(parsed, operation.output_shape)
        start_response(
            f"{status} OK",
            [
                ("Content-Type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
                ("Content-Length", str(len(out))),
            ],
        )
        return [out]

    def _call_json(self, environ: dict[str, Any], operation: Any, params: dict[str, Any]) -> Any:
        from botocore.serialize import JSONSerializer

        request = JSONSerializer().serialize_to_request(params, operation)
        inner = {k: v for k, v in environ.items() if k not in ("HTTP_SMITHY_PROTOCOL", "HTTP_ACCEPT")}
        inner.update(
            {
                "PATH_INFO": "/",
                "REQUEST_URI": "/",
                "RAW_URI": "/",
                "QUERY_STRING": "",
                "CONTENT_TYPE": request["headers"]["Content-Type"],
                "HTTP_X_AMZ_TARGET": request["headers"]["X-Amz-Target"],
                "CONTENT_LENGTH": str(len(request["body"])),
                "wsgi.input": io.BytesIO(request["body"]),
            }
        )
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"] = int(status.split(maxsplit=1)[0])
            captured["headers"] = {k.lower(): v for k, v in headers}
            return lambda _chunk: None

        chunks = self.app(inner, capture)
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return captured["status"], captured["headers"], payload


def _cbor_decode(body: bytes, shape: Any) -> dict[str, Any]:
    from botocore.parsers import RpcV2CBORParser

    if not body or shape is None:
        return {}
    parsed = RpcV2CBORParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def _json_parse(payload: bytes, headers: dict[str, str], status: int, shape: Any) -> dict[str, Any]:
    from botocore.parsers import JSONParser

    if shape is None:
        return {}
    parsed = JSONParser().parse({"body": payload, "headers": headers, "status_code": status}, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def _cbor_encode(value: dict[str, Any], shape: Any) -> bytes:
    from botocore.serialize import RpcV2CBORSerializer

    serializer: Any = RpcV2CBORSerializer()
    out = bytearray()
    if shape is not None:
        serializer._serialize_data_item(out, value, shape)
    else:
        serializer._serialize_data_item(out, {}, _error_shape())
    return bytes(out)


def _error_shape() -> Any:
    from botocore.model import DenormalizedStructureBuilder

    return (
        DenormalizedStructureBuilder()
        .with_members({"__type": {"type": "string"}, "message": {"type": "string"}})
        .build_model()
    )


def _cbor_error(
    start_response: Callable[..., Any], status: int, code: str, message: str, query_error: str | None = None
) -> list[bytes]:
    out = _cbor_encode({"__type": code, "message": message}, _error_shape())
    headers = [
        ("Content-Type", "application/cbor"),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("Content-Length", str(len(out))),
    ]
    if query_error:
        headers.append(("x-amzn-query-error", query_error))
    start_response(f"{status} Error", headers)
    return [out]
