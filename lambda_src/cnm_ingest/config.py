"""Rules, collections and providers: DynamoDB lookups with a short cache, and rule matching.

The tables are described in ``docs/INTERFACES.md``: scalar attributes for what
is matched on, one JSON string attribute (``meta`` / ``config``) for the rest.
:class:`ConfigStore` reads them through :func:`cnm_ingest.aws.client` and
caches what it read for ``RULES_CACHE_SECONDS`` (default 60), so a consumer
invoked many times a second does not scan the rules table each time, and an
operator's change is picked up within a minute. :func:`match_rules` is the
pure matching function; :class:`RuleIndex` is the same matching as a dict
lookup on (collection name, provider), built once per cache load, so the cost
per record does not grow with the number of rules.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import aws
from . import cnm as cnm_mod
from .errors import NoMatchingRuleError, NotConfiguredError

ENABLED = "ENABLED"
DEFAULT_CACHE_SECONDS = 60.0


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

    @property
    def enabled(self) -> bool:
        return self.state.upper() == ENABLED

    def as_message_rule(self) -> dict[str, Any]:
        """The ``rule`` argument of :func:`cnm_ingest.message.build_workflow_message`."""
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
    )


def rule_matches(cnm: dict[str, Any], rule: Rule) -> bool:
    """True when ``rule`` is for this CNM's collection (and version) and provider, whatever its state."""
    if rule.collection_name != cnm_mod.collection_name(cnm):
        return False
    version = cnm_mod.collection_version(cnm)
    if version is not None and rule.collection_version not in ("", version):
        return False
    return rule.provider == cnm.get("provider")


def match_rules(cnm: dict[str, Any], rules: list[Rule]) -> list[Rule]:
    """The ENABLED rules that match ``cnm``, in name order (one execution each).

    A string ``collection`` matches rules of that collection name, any version;
    the object form matches name and version (a rule version of ``""`` matches
    any). ``provider`` must be equal (a CNM without a provider matches nothing).
    """
    return sorted((r for r in rules if r.enabled and rule_matches(cnm, r)), key=lambda r: r.name)


def require_rules(cnm: dict[str, Any], rules: list[Rule]) -> list[Rule]:
    """:func:`match_rules`, raising :class:`NoMatchingRuleError` with a useful reason when empty."""
    matched = match_rules(cnm, rules)
    if matched:
        return matched
    version = cnm_mod.collection_version(cnm)
    what = (
        f"collection {cnm_mod.collection_name(cnm)!r}"
        + (f" version {version!r}" if version is not None else "")
        + f" and provider {cnm.get('provider')!r}"
    )
    disabled = sorted(r.name for r in rules if rule_matches(cnm, r))
    if disabled:
        raise NoMatchingRuleError(f"no ENABLED rule for {what}: matching rule(s) {', '.join(disabled)} are DISABLED")
    raise NoMatchingRuleError(f"no rule for {what}")


class RuleIndex:
    """Rules indexed by (collection name, provider); :meth:`match` equals :func:`match_rules`."""

    def __init__(self, rules: list[Rule]):
        self.rules = list(rules)
        self._by_key: dict[tuple[str, str], list[Rule]] = {}
        for rule in sorted(self.rules, key=lambda r: r.name):
            self._by_key.setdefault((rule.collection_name, rule.provider), []).append(rule)

    def candidates(self, cnm: dict[str, Any]) -> list[Rule]:
        """Rules of this CNM's collection name and provider, any state, in name order."""
        provider = cnm.get("provider")
        name = cnm_mod.collection_name(cnm)
        if not isinstance(provider, str) or not isinstance(name, str):
            return []
        return [r for r in self._by_key.get((name, provider), ()) if rule_matches(cnm, r)]

    def match(self, cnm: dict[str, Any]) -> list[Rule]:
        return [r for r in self.candidates(cnm) if r.enabled]

    def require(self, cnm: dict[str, Any]) -> list[Rule]:
        """:meth:`match`, raising :class:`NoMatchingRuleError` with a useful reason when empty."""
        candidates = self.candidates(cnm)
        return require_rules(cnm, candidates)


class ConfigStore:
    """The three configuration tables, cached for ``ttl`` seconds (``clock`` is injectable)."""

    def __init__(
        self,
        rules_table: str,
        collections_table: str,
        providers_table: str,
        ttl: float = DEFAULT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rules_table = rules_table
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
        return self._cached(("rules",), lambda: RuleIndex(self._load_rules()))

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
    key = (fresh.rules_table, fresh.collections_table, fresh.providers_table, fresh.ttl)
    return _STORES.setdefault(key, fresh)


def reset() -> None:
    """Forget every cached store (tests call this between moto contexts)."""
    _STORES.clear()
