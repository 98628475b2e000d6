"""Rules, collections and providers: DynamoDB lookups with a short cache, and rule matching.

The tables are described in ``docs/INTERFACES.md``: scalar attributes for what
is matched on, one JSON string attribute (``meta`` / ``config``) for the rest.
:class:`ConfigStore` reads them through :func:`cnm_ingest.aws.client` and
caches what it read for ``RULES_CACHE_SECONDS`` (default 60), so a consumer
invoked many times a second does not scan the rules table each time, and an
operator's change is picked up within a minute. :func:`match_rules` is the
pure matching function (Cumulus's semantics: version from ``collection.version``
else ``product.dataVersion``, provider optional, ``allowProviderMismatchOnRuleFilter``,
the rule's stream); :class:`RuleIndex` is the same matching as dict lookups,
built once per cache load, so the cost per record does not grow with the
number of rules.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnm_ingest import aws
from cnm_ingest.cnm.notification import Notification
from cnm_ingest.errors import NoMatchingRuleError, NotConfiguredError

ENABLED = "ENABLED"
DEFAULT_CACHE_SECONDS = 60.0
# Cumulus's per-rule meta key: true lets a rule match a CNM from another provider.
ALLOW_MISMATCH_META = "allowProviderMismatchOnRuleFilter"


@dataclass(frozen=True)
class Rule:
    name: str
    collection_name: str
    collection_version: str
    provider: str
    workflow_arn: str
    workflow_name: str
    state: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    stream_arn: str = ""  # "" = the module's notification stream (NOTIFICATION_STREAM_ARN)
    execution_name_prefix: str = ""

    @property
    def enabled(self) -> bool:
        return self.state.upper() == ENABLED

    def allows_provider_mismatch(self, default: bool) -> bool:
        """The rule's ``meta.allowProviderMismatchOnRuleFilter`` when it says true or false, else ``default``."""
        value = self.meta.get(ALLOW_MISMATCH_META)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value if isinstance(value, bool) else default

    def as_message_rule(self) -> dict[str, Any]:
        """The ``rule`` argument of :func:`cnm_ingest.workflow.payload.build_workflow_message`."""
        return {"name": self.name, "meta": self.meta, "workflow_name": self.workflow_name}


def _s(item: dict[str, Any], name: str, default: str = "") -> str:
    value = item.get(name)
    return value["S"] if isinstance(value, dict) and "S" in value else default


def _json_attr(item: dict[str, Any], name: str) -> dict[str, Any]:
    text = _s(item, name, "{}") or "{}"
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"attribute {name!r} of item {item!r} is not JSON") from None
    return value if isinstance(value, dict) else {}


def rule_from_item(item: dict[str, Any]) -> Rule:
    """A :class:`Rule` from a DynamoDB (low-level, typed) rules item."""
    return Rule(
        name=_s(item, "name"),
        collection_name=_s(item, "collection_name"),
        collection_version=_s(item, "collection_version"),
        provider=_s(item, "provider"),
        workflow_arn=_s(item, "workflow_arn"),
        workflow_name=_s(item, "workflow_name"),
        state=_s(item, "state", ENABLED) or ENABLED,
        meta=_json_attr(item, "meta"),
        stream_arn=stream_of(_s(item, "stream_arn")),
        execution_name_prefix=_s(item, "execution_name_prefix"),
    )


def stream_of(arn: Any) -> str:
    """The stream ARN of a Kinesis stream or of one of its enhanced fan-out consumers ("" when not a string)."""
    if not isinstance(arn, str):
        return ""
    return arn.split("/consumer/", 1)[0]


@dataclass(frozen=True)
class Routing:
    """What a record is routed with besides its CNM: the stream it arrived on and the module's settings."""

    stream_arn: str = ""  # the record's eventSourceARN
    default_stream: str = ""  # NOTIFICATION_STREAM_ARN: where rules without a stream listen
    allow_provider_mismatch: bool = False  # ALLOW_PROVIDER_MISMATCH, the default for rules without the meta

    def rule_stream(self, rule: Rule) -> str:
        return rule.stream_arn or self.default_stream

    def record_stream(self) -> str:
        return stream_of(self.stream_arn)


Cnm = Notification | dict[str, Any]  # the consumer passes the Notification it read; a document is read here


def _note(cnm: Cnm) -> Notification:
    return cnm if isinstance(cnm, Notification) else Notification.read(cnm)


def rule_matches(cnm: Cnm, rule: Rule, routing: Routing = Routing()) -> bool:
    """True when ``rule`` is for this CNM, whatever its state, with Cumulus's semantics.

    Collection name equal; version (:func:`cnm_version`) equal when the CNM has
    one (a rule version of ``""`` matches any); provider equal unless the CNM has
    none, the rule has none, or the rule allows a mismatch; and the rule listens
    on the stream the record arrived on (a rule without a stream on the default
    stream; when no default stream is configured, on any).
    """
    note = _note(cnm)
    if rule.collection_name != note.collection:
        return False
    version = note.version
    if version is not None and rule.collection_version not in ("", version):
        return False
    provider = note.provider
    if (
        provider is not None
        and rule.provider
        and not rule.allows_provider_mismatch(routing.allow_provider_mismatch)
        and rule.provider != provider
    ):
        return False
    stream = routing.rule_stream(rule)
    return not stream or stream == routing.record_stream()


def match_rules(cnm: Cnm, rules: list[Rule], routing: Routing = Routing()) -> list[Rule]:
    """The ENABLED rules that match ``cnm`` (:func:`rule_matches`), in name order (one execution each)."""
    note = _note(cnm)
    return sorted((r for r in rules if r.enabled and rule_matches(note, r, routing)), key=lambda r: r.name)


def require_rules(cnm: Cnm, rules: list[Rule], routing: Routing = Routing()) -> list[Rule]:
    """:func:`match_rules`, raising :class:`NoMatchingRuleError` with a useful reason when empty."""
    note = _note(cnm)
    matched = match_rules(note, rules, routing)
    if matched:
        return matched
    version = note.version
    what = (
        f"collection {note.collection!r}"
        + (f" version {version!r}" if version is not None else "")
        + f" and provider {note.provider!r}"
        + (f" on stream {routing.record_stream()!r}" if routing.record_stream() else "")
    )
    disabled = sorted(r.name for r in rules if rule_matches(note, r, routing))
    if disabled:
        raise NoMatchingRuleError(f"no ENABLED rule for {what}: matching rule(s) {', '.join(disabled)} are DISABLED")
    raise NoMatchingRuleError(f"no rule for {what}")


_ANY = ""  # index key of rules that match any version / any provider / any stream
_ANY_ONLY = (_ANY,)
# Keys a RuleIndex remembers what it found for (then it forgets them all and starts again).
MEMO_KEYS = 4096


def _by_name(rule: Rule) -> str:
    return rule.name


class RuleIndex:
    """Rules indexed for matching; :meth:`match` equals :func:`match_rules` with the same settings.

    Built once per cache load: ``(stream, collection name)`` -> ``(version,
    provider)`` -> rules, where a rule that matches any version, provider or
    stream is filed under ``""`` for that part. A record then needs at most
    two outer and eight inner dict lookups (its value or ``""`` for each of
    stream, version, provider), so the cost per record does not grow with the
    number of rules; a CNM without a version or a provider takes the
    per-name list instead. What those lookups found is remembered per
    ``(stream, name, version, provider)`` (:data:`MEMO_KEYS` at most, for
    this index: a reload builds a new one), so a record of a key seen before
    costs one lookup.
    """

    def __init__(self, rules: list[Rule], default_stream: str = "", allow_provider_mismatch: bool = False):
        self.rules = list(rules)
        self.default_stream = stream_of(default_stream)
        self.allow_provider_mismatch = allow_provider_mismatch
        # (stream, collection name) -> (version, provider) -> rules
        self._by_key: dict[tuple[str, str], dict[tuple[str, str], list[Rule]]] = {}
        self._by_name: dict[str, list[Rule]] = {}
        for rule in sorted(self.rules, key=_by_name):
            any_provider = not rule.provider or rule.allows_provider_mismatch(allow_provider_mismatch)
            stream = rule.stream_arn or self.default_stream
            inner = self._by_key.setdefault((stream, rule.collection_name), {})
            inner.setdefault((rule.collection_version, _ANY if any_provider else rule.provider), []).append(rule)
            self._by_name.setdefault(rule.collection_name, []).append(rule)
        # (stream ARN, name, version, provider) -> (candidates, the ENABLED ones), both in name order
        self._memo: dict[tuple[str, str, str, str], tuple[list[Rule], list[Rule]]] = {}

    def routing(self, stream_arn: str = "") -> Routing:
        return Routing(stream_of(stream_arn), self.default_stream, self.allow_provider_mismatch)

    def candidates(self, cnm: Cnm, stream_arn: str = "") -> list[Rule]:
        """Rules for this CNM on this stream, any state, in name order."""
        return list(self._found(_note(cnm), stream_arn)[0])

    def _found(self, note: Notification, stream_arn: str) -> tuple[list[Rule], list[Rule]]:
        """(:meth:`candidates`, the ENABLED ones); callers copy before handing them out."""
        name = note.collection
        if not isinstance(name, str):
            return [], []
        version, provider = note.version, note.provider
        if version is None or not isinstance(provider, str):
            routing = self.routing(stream_arn)
            found = [r for r in self._by_name.get(name, ()) if rule_matches(note, r, routing)]
            return found, [r for r in found if r.enabled]
        key = (stream_arn, name, version, provider)
        hit = self._memo.get(key)
        if hit is None:
            found = self._lookup(stream_of(stream_arn), name, version, provider)
            hit = (found, [r for r in found if r.enabled])
            if len(self._memo) >= MEMO_KEYS:
                self._memo.clear()
            self._memo[key] = hit
        return hit

    def _lookup(self, stream: str, name: str, version: str, provider: str) -> list[Rule]:
        found: list[Rule] = []
        for s in (stream, _ANY) if stream else _ANY_ONLY:
            inner = self._by_key.get((s, name))
            if inner is None:
                continue
            for v in (version, _ANY):  # version is never "" here
                for p in (provider, _ANY) if provider else _ANY_ONLY:
                    hit = inner.get((v, p))
                    if hit:
                        found.extend(hit)
        return sorted(found, key=_by_name) if len(found) > 1 else found

    def match(self, cnm: Cnm, stream_arn: str = "") -> list[Rule]:
        return list(self._found(_note(cnm), stream_arn)[1])

    def require(self, cnm: Cnm, stream_arn: str = "") -> list[Rule]:
        """:meth:`match`, raising :class:`NoMatchingRuleError` with a useful reason when empty."""
        note = _note(cnm)
        found, enabled = self._found(note, stream_arn)
        if enabled:
            return list(enabled)
        return require_rules(note, found, self.routing(stream_arn))


def flag(value: str | None, default: bool = False) -> bool:
    """A boolean setting as Terraform writes it (``tostring(bool)``): "true"/"1"/"yes" is true, empty is ``default``."""
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes")


def env_flag(name: str, default: bool = False) -> bool:
    return flag(os.environ.get(name), default)


class ConfigStore:
    """The three configuration tables, cached for ``ttl`` seconds (``clock`` is injectable)."""

    def __init__(
        self,
        rules_table: str,
        collections_table: str,
        providers_table: str,
        ttl: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        default_stream: str = "",
        allow_provider_mismatch: bool = False,
    ):
        self.rules_table = rules_table
        self.default_stream = default_stream
        self.allow_provider_mismatch = allow_provider_mismatch
        self.collections_table = collections_table
        self.providers_table = providers_table
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple, tuple[float, Any]] = {}

    @classmethod
    def from_env(cls) -> ConfigStore:
        return cls(
            aws.env("RULES_TABLE"),
            aws.env("COLLECTIONS_TABLE"),
            aws.env("PROVIDERS_TABLE"),
            ttl=float(os.environ.get("RULES_CACHE_SECONDS") or DEFAULT_CACHE_SECONDS),
            default_stream=os.environ.get("NOTIFICATION_STREAM_ARN", ""),
            allow_provider_mismatch=env_flag("ALLOW_PROVIDER_MISMATCH"),
        )

    def _cached(self, key: tuple, load: Callable[[], Any]) -> Any:
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        self._cache[key] = (now, value)
        return value

    def clear(self) -> None:
        self._cache.clear()

    def rules(self) -> list[Rule]:
        return self.rule_index().rules

    def rule_index(self) -> RuleIndex:
        """The rules table, indexed for matching (rebuilt when the cache reloads)."""
        return self._cached(
            ("rules",),
            lambda: RuleIndex(self._load_rules(), self.default_stream, self.allow_provider_mismatch),
        )

    def _load_rules(self) -> list[Rule]:
        rules: list[Rule] = []
        for page in (
            aws.client("dynamodb").get_paginator("scan").paginate(TableName=self.rules_table, ConsistentRead=True)
        ):
            rules.extend(rule_from_item(item) for item in page.get("Items", []))
        return rules

    def collection(self, name: str, version: str) -> dict[str, Any]:
        """``{**config, "name", "version"}`` for the collection; exact version first,
        else the only version configured for ``name``."""
        return self._cached(("collection", name, version), lambda: self._load_collection(name, version))

    def _load_collection(self, name: str, version: str) -> dict[str, Any]:
        ddb = aws.client("dynamodb")
        item = None
        if version:  # DynamoDB keys cannot be empty strings
            item = ddb.get_item(
                TableName=self.collections_table,
                ConsistentRead=True,
                Key={"name": {"S": name}, "version": {"S": version}},
            ).get("Item")
        if item is None:
            items = ddb.query(
                TableName=self.collections_table,
                ConsistentRead=True,
                Limit=2,
                KeyConditionExpression="#n = :n",
                ExpressionAttributeNames={"#n": "name"},
                ExpressionAttributeValues={":n": {"S": name}},
            ).get("Items", [])
            if len(items) != 1:
                raise NotConfiguredError(f"collection {name!r} version {version!r} is not in {self.collections_table}")
            item = items[0]
        return {**_json_attr(item, "config"), "name": name, "version": _s(item, "version")}

    def provider(self, provider_id: str) -> dict[str, Any]:
        """``{**config, "id"}`` for the provider."""
        return self._cached(("provider", provider_id), lambda: self._load_provider(provider_id))

    def _load_provider(self, provider_id: str) -> dict[str, Any]:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self.providers_table, ConsistentRead=True, Key={"id": {"S": provider_id}})
            .get("Item")
        )
        if item is None:
            raise NotConfiguredError(f"provider {provider_id!r} is not in {self.providers_table}")
        return {**_json_attr(item, "config"), "id": provider_id}


_STORES: dict[tuple, ConfigStore] = {}


def store() -> ConfigStore:
    """The process-wide store for the tables named in the environment (kept across invocations)."""
    fresh = ConfigStore.from_env()
    key = (
        fresh.rules_table,
        fresh.collections_table,
        fresh.providers_table,
        fresh.ttl,
        fresh.default_stream,
        fresh.allow_provider_mismatch,
    )
    return _STORES.setdefault(key, fresh)


def reset() -> None:
    """Forget every cached store (tests call this between moto contexts)."""
    _STORES.clear()
