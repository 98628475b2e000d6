"""Server-side fault injection in the local AWS (localaws.server), for the fault matrix.

A fault is armed in the moto server that runs in a thread of the test process
(``LocalAWS``), so it hits every caller: the test's own clients and the
function processes the runtime (localaws.runtime) runs, which reach the server
over HTTP. Faults are armed and cleared from the test process::

    with faults.injected() as inj:
        throttle = inj.throttle("stepfunctions", "StartExecution", when=lambda req: ..., times=3)
        inj.fail("kinesis", ("PutRecord", "PutRecords"), "AccessDeniedException", when=on_stream(arn))
        trim = inj.trim(stream_arn, first=40)
        ...
    throttle.fired, trim.hidden        # how often each fired (still readable after the block)

Leaving the block clears its faults, also on an error. What each does:

- ``fail(service, operations, code, status=None, when=None, times=None)``: a request to
  one of ``operations`` for which ``when(request)`` is true (``request``: the API call's
  parameters as the client sent them, e.g. ``{"stateMachineArn": ..., "input": ...}``)
  is answered with the error ``code`` instead of reaching moto, at most ``times`` times
  (None: always). The HTTP status is the service model's for that error (e.g. Kinesis
  ProvisionedThroughputExceededException: 400), else ``status`` (default 400). The error is serialized by moto's own
  serializer for the protocol the request came in (awsJson, and rpc-v2-cbor through
  localaws.patches' CBOR middleware, which turns the JSON error into CBOR), so boto3
  and botocore's retry handler see it as they see AWS's: a ``ThrottlingException`` or
  ``ProvisionedThroughputExceededException`` is retried by botocore (standard and
  legacy modes) before the caller sees it, an ``AccessDeniedException`` is not.
  Every protocol the product's services speak is reached: the JSON protocols (DynamoDB, Kinesis, SQS,
  Step Functions), the query protocol (SNS), rest-xml (S3: moto's S3 does not go through
  ``call_action``, so its bucket and key handlers are hooked, the operation being the one botocore's
  S3 model routes the request to: CopyObject, UploadPartCopy, GetObject, HeadObject, PutObject,
  ListObjectsV2, DeleteObject, ...; a HEAD answer has no body, so botocore names a HeadObject error by
  its status, as on AWS) and CBOR (CloudWatch). ``after=True``: the call is applied first and then
  answered with the error (a lost response: the item is written, the message sent, the client sees a
  500 and its SDK retries); a call that fails by itself gets its own answer and the fault does not fire.
  ``user_agent``: only requests whose User-Agent contains it (a Lambda function's SDK says
  ``exec-env/AWS_Lambda_python3.12``). ``on_fire(fault, request)``: called each time it fires.
- ``lose(service, operations, ...)``: ``fail(..., after=True)`` with the service's 500 (``INTERNAL_ERRORS``).
- ``throttle(service, operations, ...)``: ``fail`` with ``ThrottlingException`` (400, as
  AWS answers it; the code botocore's retry handlers treat as throttling).
- ``trim(stream_arn, first=N | before=sequence_number, shard_id=...)``: Kinesis has
  trimmed the shard's records before ``before`` (or its first ``N``): GetRecords no
  longer returns them, whatever the iterator (TRIM_HORIZON starts at the first kept
  record), and GetShardIterator AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER for a trimmed
  sequence number answers InvalidArgumentException (400). The records stay in moto
  (clearing the fault brings them back), so the snapshot of the world is unchanged.

Counters: ``Fault.fired`` (errors answered), ``Fault.matched`` (requests the predicate
accepted, fired or not), ``Fault.predicate_errors`` (a predicate that raised: it did
not fire, and the test should assert there are none); ``Trim.hidden`` (records GetRecords
skipped) and ``Trim.refused`` (iterators refused).

Only a server in this process can be reached (``python -m localaws.server`` runs in
another one). The hooks are installed into moto's classes on first use and do nothing
while no fault is armed.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

Predicate = Callable[[dict[str, Any]], bool]

_lock = threading.Lock()
_faults: list[Fault] = []
_trims: list[Trim] = []
_installed = False
# The 500 error code each service answers for an internal failure (``Injected.lose``).
INTERNAL_ERRORS = {"s3": "InternalError", "dynamodb": "InternalServerError", "sns": "InternalError"}


@dataclass(eq=False)
class Fault:
    """An error answered for matching requests of ``operations`` of ``service`` (boto3 name)."""

    service: str
    operations: tuple[str, ...]
    code: str
    status: int | None = None
    message: str = ""
    when: Predicate | None = None
    times: int | None = None
    after: bool = False
    user_agent: str | None = None
    on_fire: Callable[[Fault, dict[str, Any]], None] | None = None
    fired: int = 0
    matched: int = 0
    predicate_errors: list[str] = field(default_factory=list)

    def _take(self, request: dict[str, Any], user_agent: str) -> bool:
        """True when this request is to be failed (and counts it)."""
        if self.user_agent is not None and self.user_agent not in user_agent:
            return False
        try:
            hit = self.when is None or bool(self.when(request))
        except Exception as exc:  # a predicate's bug must not look like a fault
            with _lock:
                self.predicate_errors.append(repr(exc))
            return False
        if not hit:
            return False
        with _lock:
            self.matched += 1
            if self.times is not None and self.fired >= self.times:
                return False
            self.fired += 1
            return True

    def _undo(self) -> None:
        """An after-fault whose call failed by itself: the real answer goes out, nothing fired."""
        with _lock:
            self.fired -= 1

    def _report(self, request: dict[str, Any]) -> None:
        if self.on_fire is not None:
            try:
                self.on_fire(self, request)
            except Exception as exc:  # a reporter's bug must not change the answer
                with _lock:
                    self.predicate_errors.append(f"on_fire: {exc!r}")


@dataclass(eq=False)
class Trim:
    """The records of ``shard_id`` of ``stream_arn`` before sequence number ``before`` are trimmed."""

    stream_arn: str
    shard_id: str
    before: int
    hidden: int = 0
    refused: int = 0

    def covers(self, stream_arn: str, shard_id: str) -> bool:
        return stream_arn == self.stream_arn and shard_id == self.shard_id


class Injected:
    """The faults armed by one ``injected()`` block."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.trims: list[Trim] = []

    def fail(
        self,
        service: str,
        operations: str | tuple[str, ...],
        code: str,
        *,
        status: int | None = None,
        message: str = "",
        when: Predicate | None = None,
        times: int | None = None,
        after: bool = False,
        user_agent: str | None = None,
        on_fire: Callable[[Fault, dict[str, Any]], None] | None = None,
    ) -> Fault:
        if times is not None and times < 0:
            raise ValueError("times must be None (always) or >= 0")
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400..599)")
        ops = (operations,) if isinstance(operations, str) else tuple(operations)
        fault = Fault(
            service, ops, code, status, message or _default_message(code), when, times, after, user_agent, on_fire
        )
        _install()
        with _lock:
            _faults.append(fault)
        self.faults.append(fault)
        return fault

    def throttle(
        self,
        service: str,
        operations: str | tuple[str, ...],
        *,
        when: Predicate | None = None,
        times: int | None = None,
        code: str = "ThrottlingException",
    ) -> Fault:
        return self.fail(service, operations, code, when=when, times=times)

    def lose(
        self,
        service: str,
        operations: str | tuple[str, ...],
        *,
        when: Predicate | None = None,
        times: int | None = None,
        code: str | None = None,
    ) -> Fault:
        """A lost response: the call is applied, then answered 500 (``fail(..., after=True)``) with the
        service's internal error (S3: InternalError; DynamoDB: InternalServerError; else InternalFailure)."""
        code = code or INTERNAL_ERRORS.get(service, "InternalFailure")
        return self.fail(service, operations, code, status=500, when=when, times=times, after=True)

    def trim(
        self,
        stream_arn: str,
        *,
        first: int | None = None,
        before: str | int | None = None,
        shard_id: str = "shardId-000000000000",
    ) -> Trim:
        """Trim the shard's first ``first`` records, or those before sequence number ``before``."""
        if (first is None) == (before is None):
            raise ValueError("give exactly one of first= or before=")
        if first is not None:
            if first < 0:
                raise ValueError("first must be >= 0")
            numbers = sorted(_shard(stream_arn, shard_id).records)
            cut = numbers[first] if first < len(numbers) else (numbers[-1] + 1 if numbers else 1)
        else:
            cut = int(str(before))
        trim = Trim(stream_arn, shard_id, cut)
        _install()
        with _lock:
            _trims.append(trim)
        self.trims.append(trim)
        return trim

    def clear(self) -> None:
        with _lock:
            for fault in self.faults:
                if fault in _faults:
                    _faults.remove(fault)
            for trim in self.trims:
                if trim in _trims:
                    _trims.remove(trim)


@contextmanager
def injected() -> Iterator[Injected]:
    """Arm faults for the block; they are cleared when it ends, also on an error."""
    inj = Injected()
    try:
        yield inj
    finally:
        inj.clear()


def armed() -> int:
    """How many faults and trims are armed now (0 after every block has ended)."""
    with _lock:
        return len(_faults) + len(_trims)


def on_stream(stream_arn: str) -> Predicate:
    """A predicate for a Kinesis request about ``stream_arn`` (given by ARN or by name)."""
    name = stream_arn.rsplit("/", 1)[-1]
    return lambda req: req.get("StreamARN") == stream_arn or req.get("StreamName") == name


def _default_message(code: str) -> str:
    return {
        "ThrottlingException": "Rate exceeded",
        "ProvisionedThroughputExceededException": "Rate exceeded for shard.",
        "AccessDeniedException": "User is not authorized to perform this action (injected by localaws.faults).",
    }.get(code, f"{code} (injected by localaws.faults)")


# ------------------------------------------------------------------------- the hooks


def _request(response: Any) -> dict[str, Any]:
    """The API call's parameters as sent: JSON protocols (and CBOR, which reaches moto as JSON): the body
    as the client sent it (moto's DynamoDB handler has replaced ``body`` with its parsed parameters by
    then: the raw body is read); query protocol: moto's parsed parameters."""
    raw = getattr(response, "raw_body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if isinstance(raw, str) and raw.lstrip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    params = getattr(response, "params", None)
    if isinstance(params, dict) and params:
        return dict(params)
    try:
        return dict(response._get_params())
    except Exception:
        return {}


def _user_agent(response: Any) -> str:
    headers = getattr(response, "headers", None)
    return str(headers.get("User-Agent", "")) if headers is not None else ""


def _matching(
    response: Any, operation: str | None = None, request: Callable[[], dict[str, Any]] | None = None
) -> tuple[Fault, dict[str, Any]] | None:
    """The armed fault (if any) that takes this request, with the request's parameters."""
    with _lock:
        candidates = list(_faults)
    if not candidates:
        return None
    service = response.boto3_service_name
    operation = operation if operation is not None else response._get_action()
    candidates = [f for f in candidates if f.service == service and operation in f.operations]
    if not candidates:
        return None
    params = (request or (lambda: _request(response)))()
    agent = _user_agent(response)
    fault = next((f for f in candidates if f._take(params, agent)), None)
    return None if fault is None else (fault, params)


def _s3_request(response: Any, request: Any) -> dict[str, Any]:
    """An S3 call's parameters: bucket, key, the copy source, and the query string's."""
    params: dict[str, Any] = {
        k: v[0] if isinstance(v, list) and len(v) == 1 else v
        for k, v in parse_qs(urlparse(getattr(request, "url", "") or "").query, keep_blank_values=True).items()
    }
    with contextlib.suppress(Exception):
        params["Bucket"] = response.parse_bucket_name_from_url(request, request.url)
    try:
        key = response.parse_key_name()
    except Exception:
        key = None
    if key:
        params["Key"] = key
    copy_source = request.headers.get("x-amz-copy-source")
    if copy_source:
        params["CopySource"] = unquote(copy_source)
    return params


def _shard(stream_arn: str, shard_id: str) -> Any:
    from moto.kinesis.models import kinesis_backends

    _, _, _, region, account, _ = stream_arn.split(":", 5)
    backend = kinesis_backends[account][region]
    return backend.describe_stream(stream_arn=stream_arn, stream_name=None).get_shard(shard_id)


def _trim_for(stream_arn: str, shard_id: str) -> Trim | None:
    with _lock:
        found = [t for t in _trims if t.covers(stream_arn, shard_id)]
    return max(found, key=lambda t: t.before) if found else None


_InjectedError: Any = None


def _error(fault: Fault) -> Exception:
    """moto's ServiceException for ``fault``, of a class moto's serializer recognises (below)."""
    global _InjectedError
    if _InjectedError is None:
        from moto.core.exceptions import ServiceException

        _InjectedError = type("InjectedError", (ServiceException,), {"__module__": __name__, "status": None})
    error = _InjectedError(fault.code, fault.message)
    error.status = fault.status
    return error


def _error_shape(exception: Exception, service_model: Any) -> Any:
    """The error shape moto serializes an injected error with: the service model's own (its HTTP
    status) when it has one, else a shape of the code with the fault's status (moto would look in
    the model of the service the exception's module belongs to, and warn)."""
    from moto.core.errors import ErrorLookupFactory, ErrorShape

    code = getattr(exception, "code", "")
    status = getattr(exception, "status", None)
    shape = ErrorLookupFactory().for_service(service_model).from_code(code)
    if shape is not None and status in (None, shape.metadata.get("error", {}).get("httpStatusCode", 400)):
        return shape
    error = {"code": code, "httpStatusCode": status or 400, "senderFault": (status or 400) < 500}
    return ErrorShape(
        shape_name=code, shape_model={"exception": True, "type": "structure", "members": {}, "error": error}
    )


def _install() -> None:
    """Hook moto once per process: its responses (call_action, S3's handlers, the error model) for faults,
    and Kinesis' iterators for trims."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    _hook_call_action()
    _hook_s3()
    _hook_error_model()
    _hook_kinesis_trims()


def _answer(response: Any, fault: Fault) -> Any:
    """The fault's error answer, serialized as moto answers its own errors."""
    from moto.core.responses import ActionResult

    status, headers, body = response.serialized(ActionResult(_error(fault)))
    headers["status"] = str(status)
    headers, body = response._enrich_response(headers, body)
    return status, headers, body


def _applied_then_failed(response: Any, hit: tuple[Fault, dict[str, Any]], call: Callable[[], Any]) -> Any:
    """``call()`` (moto's own handling), then the fault's answer instead of moto's: before the call
    (nothing applied), or after it (``after``: applied, the response lost) when the call succeeded."""
    fault, request = hit
    if fault.after:
        try:
            real = call()
        except BaseException:  # moto raised (its own error answer follows): nothing fired
            fault._undo()
            raise
        status = real[0] if isinstance(real, tuple) else 200
        if int(status) >= 300:  # the call failed by itself: its own answer goes out
            fault._undo()
            return real
    fault._report(request)
    return _answer(response, fault)


def _hook_call_action() -> None:
    from moto.core.responses import BaseResponse

    Response: Any = BaseResponse
    original_call_action = Response.call_action

    def call_action(self: Any) -> Any:
        hit = _matching(self)
        if hit is None:
            return original_call_action(self)
        return _applied_then_failed(self, hit, lambda: original_call_action(self))

    Response.call_action = call_action


def _hook_s3() -> None:
    """moto's S3 does not go through call_action: its bucket and key handlers are hooked instead; the
    operation is the one botocore's S3 model routes the request to (method, path, query, headers)."""
    from moto.s3.responses import S3Response

    S3: Any = S3Response

    def s3_hook(original: Callable[..., Any]) -> Callable[..., Any]:
        def handler(self: Any, request: Any, full_url: str) -> Any:
            with _lock:
                armed_now = any(f.service == "s3" for f in _faults)
            if not armed_now:
                return original(self, request, full_url)
            operation = self._get_action_from_method_and_request_uri(self.normalized_request)
            hit = _matching(self, operation or "", lambda: _s3_request(self, request))
            if hit is None:
                return original(self, request, full_url)
            return _applied_then_failed(self, hit, lambda: original(self, request, full_url))

        return handler

    S3._bucket_response = s3_hook(S3._bucket_response)
    S3._key_response = s3_hook(S3._key_response)


def _hook_error_model() -> None:
    from moto.core import serialize

    original_error_model = serialize.get_error_model

    def get_error_model(exception: Exception, service_model: Any) -> Any:
        if _InjectedError is not None and isinstance(exception, _InjectedError):
            return _error_shape(exception, service_model)
        return original_error_model(exception, service_model)

    Serialize: Any = serialize
    Serialize.get_error_model = get_error_model


def _hook_kinesis_trims() -> None:
    """GetShardIterator refuses, and GetRecords skips, the records a trim put past the retention period."""
    from moto.kinesis.exceptions import InvalidArgumentError
    from moto.kinesis.models import KinesisBackend
    from moto.kinesis.utils import compose_shard_iterator, decompose_shard_iterator

    Kinesis: Any = KinesisBackend

    original_iterator = Kinesis.get_shard_iterator

    def get_shard_iterator(
        self: Any,
        stream_arn: str | None,
        stream_name: str | None,
        shard_id: str,
        shard_iterator_type: str,
        starting_sequence_number: Any,
        at_timestamp: Any,
    ) -> str:
        if shard_iterator_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER") and starting_sequence_number:
            stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
            trim = _trim_for(stream.arn, shard_id)
            if trim is not None and int(starting_sequence_number) < trim.before:
                with _lock:
                    trim.refused += 1
                raise InvalidArgumentError(
                    f"StartingSequenceNumber {starting_sequence_number} used in GetShardIterator on shard {shard_id} "
                    f"in stream {stream.stream_name} under account {self.account_id} is invalid: "
                    "the record is past the stream's retention period (trimmed)."
                )
        return original_iterator(
            self, stream_arn, stream_name, shard_id, shard_iterator_type, starting_sequence_number, at_timestamp
        )

    original_records = Kinesis.get_records

    def get_records(self: Any, stream_arn: str | None, shard_iterator: str, limit: int | None) -> Any:
        with _lock:
            any_trim = bool(_trims)
        if any_trim:
            stream_name, shard_id, last = decompose_shard_iterator(shard_iterator)
            stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
            trim = _trim_for(stream.arn, shard_id)
            if trim is not None and int(last) < trim.before - 1:
                shard = stream.get_shard(shard_id)
                skipped = sum(1 for n in shard.records if int(last) < n < trim.before)
                with _lock:
                    trim.hidden += skipped
                shard_iterator = compose_shard_iterator(stream_name, shard, trim.before - 1)
        return original_records(self, stream_arn, shard_iterator, limit)

    Kinesis.get_shard_iterator = get_shard_iterator
    Kinesis.get_records = get_records
