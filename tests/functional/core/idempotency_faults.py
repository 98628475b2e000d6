"""Faults at chosen points of the handlers' AWS calls, for the exactly-once tests (issue 20).

A :class:`Faults` hooks the handlers' cached boto3 client of a service (``cnm_ingest.aws.client``) with
botocore's own events:

- ``before``: ``before-call`` answers an error instead of sending the request: nothing is applied;
- ``after``: ``after-call`` turns the service's answer into an error: the call WAS applied, its answer
  lost, as a timeout or a 500 after the write does on AWS.

Both come after botocore's retries would have run (the error is what the caller finally sees). A third,

- ``lost``: ``before-send`` (first, ahead of moto) applies the attempt through a client of its own and answers it
  with a 500: the write happened, the answer to that one attempt was lost INSIDE botocore's retries, so the SDK
  sends the same request again, as after a timeout or a 5xx that followed the write on AWS (JSON protocols).

Each rule fires ``times`` times on calls it matches, then lets them through; every firing is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from cnm_ingest import aws

# How each failure looks to botocore: (code, HTTP status).
FAULTS = {
    "InternalFailure": ("InternalFailure", 500),
    "Throttling": ("ProvisionedThroughputExceededException", 400),
    "ServiceUnavailable": ("ServiceUnavailable", 503),
    "AccessDenied": ("AccessDeniedException", 400),
}


def idempotency_key(params: dict[str, Any]) -> str:
    """The key of an idempotency record a DynamoDB call writes or reads (``sk`` of delivery's, ``id`` of once's)."""
    item = params.get("Item") or params.get("Key") or {}
    for attr in ("sk", "id"):
        if attr in item:
            return str(item[attr].get("S", ""))
    return ""


@dataclass
class Rule:
    service: str
    operation: str
    position: str  # "before" or "after"
    match: Callable[[dict[str, Any]], bool]
    fault: str = "InternalFailure"
    times: int = 1
    fired: int = 0


@dataclass
class Faults:
    rules: list[Rule] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    _hooked: set[str] = field(default_factory=set)

    def add(
        self,
        service: str,
        operation: str,
        position: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        *,
        fault: str = "InternalFailure",
        times: int = 1,
    ) -> Rule:
        assert position in ("before", "after", "lost"), position
        rule = Rule(service, operation, position, match, fault, times)
        self.rules.append(rule)
        self._hook(service)
        return rule

    def _hook(self, service: str) -> None:
        if service in self._hooked:
            return
        self._hooked.add(service)
        events = aws.client(service).meta.events
        events.register(f"provide-client-params.{service}", _keep_params)
        events.register(f"before-call.{service}", self._before)
        events.register(f"after-call.{service}", self._after)
        events.register_first(f"before-send.{service}", self._lost)

    def _firing(self, position: str, model: Any, params: dict[str, Any]) -> Rule | None:
        return self._firing_rule(model.service_model.service_name, model.name, position, params)

    def _firing_rule(self, service: str, operation: str, position: str, params: dict[str, Any]) -> Rule | None:
        for rule in self.rules:
            if (rule.service, rule.operation, rule.position) != (service, operation, position):
                continue
            if rule.fired < rule.times and rule.match(params):
                rule.fired += 1
                self.log.append(f"{position} {service}.{operation} {rule.fault}")
                return rule
        return None

    @staticmethod
    def _error(rule: Rule) -> tuple[int, dict[str, Any]]:
        code, status = FAULTS[rule.fault]
        return status, {
            "Error": {"Code": code, "Message": f"injected {rule.fault}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        rule = self._firing("before", model, context.get("fault_params") or {})
        if rule is None:
            return None
        status, parsed = self._error(rule)
        return AWSResponse("https://fault.invalid/", status, {}, None), parsed

    def _after(self, model: Any, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        rule = self._firing("after", model, context.get("fault_params") or {})
        if rule is None:
            return
        status, error = self._error(rule)
        http_response.status_code = status
        parsed.clear()
        parsed.update(error)

    def _lost(self, request: Any, **_: Any) -> AWSResponse | None:
        """One attempt applied (by a client without these hooks), its answer a 500: botocore retries it."""
        target = (request.headers.get("X-Amz-Target") or b"").decode()
        if not target:
            return None
        operation = target.rsplit(".", 1)[-1]
        service = next((r.service for r in self.rules if r.position == "lost" and r.operation == operation), None)
        if service is None:
            return None
        params = json.loads(request.body or b"{}")
        rule = self._firing_rule(service, operation, "lost", params)
        if rule is None:
            return None
        applied = boto3.client(service, region_name=aws.client(service).meta.region_name)
        method = {api: name for name, api in applied.meta.method_to_api_mapping.items()}[operation]
        getattr(applied, method)(**params)
        status, parsed = self._error(rule)
        body = json.dumps({"__type": parsed["Error"]["Code"], "message": parsed["Error"]["Message"]}).encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))


class _Raw:
    """The raw body botocore reads an answer from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Each call's API parameters in its request context, where the before- and after-call hooks read them."""
    context["fault_params"] = dict(params)
