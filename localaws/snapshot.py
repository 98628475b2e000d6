"""Snapshot and restore of the local AWS's whole state (moto's backends in this process).

The server (localaws.server) runs in a thread of the calling process, so every resource
Terraform applied is a Python object in moto's backends here. ``take()`` deep-copies them
all at once; ``restore(snapshot)`` puts a fresh deep copy back, mutating each BackendDict in
place (module-level references to it stay valid):

    snap = snapshot.take()          # right after `terraform apply`
    ...                             # a test puts records, starts executions, creates queues
    snapshot.restore(snap)          # the world as applied again; what the test created is gone

One deepcopy covers every service, so references between services' objects keep their
identity; the BackendDicts themselves are never copied. Locks, conditions and events are
not copyable; ``register_copiers()`` (called by take/restore) teaches ``copy`` to make new,
unlocked ones. Restoring while a request is being served is not supported: restore between
tests.
"""

from __future__ import annotations

import _thread
import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def _new_condition(cond: threading.Condition, memo: dict[int, Any]) -> threading.Condition:
    return threading.Condition(copy.deepcopy(cond._lock, memo))  # type: ignore[attr-defined]


def _new_event(event: threading.Event, memo: dict[int, Any]) -> threading.Event:
    fresh = threading.Event()
    if event.is_set():
        fresh.set()
    return fresh


def register_copiers() -> None:
    """Teach ``copy.deepcopy`` to copy a lock as a new unlocked lock (Lock, RLock), a Condition as
    a new Condition over a copy of its lock, an Event as a new Event in the same state.
    Idempotent; process-wide (it changes ``copy``'s dispatch table)."""
    dispatch: dict[type, Any] = copy._deepcopy_dispatch  # type: ignore[attr-defined]
    dispatch[_thread.LockType] = lambda lock, memo: threading.Lock()
    dispatch[type(threading.RLock())] = lambda lock, memo: threading.RLock()
    dispatch[threading.Condition] = _new_condition
    dispatch[threading.Event] = _new_event


# a BackendDict's own attributes that say what it is; any other (S3's bucket_accounts) is state
_STRUCTURE = frozenset({"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"})


def _instances() -> list[Any]:
    """moto's registry of every BackendDict in use (a class attribute, read as such)."""
    from moto.core.base_backend import BackendDict

    registry: list[Any] = vars(BackendDict)["_instances"]
    return registry


def _backend_dicts() -> list[Any]:
    return list(_instances())


@dataclass(frozen=True)
class Snapshot:
    """moto's state at one moment: each BackendDict's accounts (BackendDict -> {account: backend}),
    and the state some BackendDicts keep as attributes (BackendDict -> {attribute: value})."""

    state: dict[Any, dict[str, Any]]
    attributes: dict[Any, dict[str, Any]]
    seconds: float  # how long taking it took

    @property
    def services(self) -> list[str]:
        return sorted(bd.service_name for bd in self.state)


def _copy(state: Any, backend_dicts: list[Any]) -> Any:
    memo: dict[int, Any] = {id(bd): bd for bd in backend_dicts}  # never copy a BackendDict itself
    return copy.deepcopy(state, memo)


def _attributes(bd: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(bd).items() if k not in _STRUCTURE}


def take() -> Snapshot:
    """Deep-copy every backend in use (every service that has been called)."""
    from moto.core.base_backend import backend_lock

    register_copiers()
    start = time.monotonic()
    with backend_lock:
        dicts = _backend_dicts()
        state, attributes = _copy(({bd: dict(bd) for bd in dicts}, {bd: _attributes(bd) for bd in dicts}), dicts)
    return Snapshot(state, attributes, time.monotonic() - start)


def restore(snapshot: Snapshot) -> float:
    """Put the world of ``snapshot`` back (a fresh copy: the snapshot can be restored again).
    Services first used after the snapshot are emptied. Returns the seconds it took."""
    from moto.core.base_backend import backend_lock

    register_copiers()
    start = time.monotonic()
    with backend_lock:
        dicts = _backend_dicts()
        fresh, attributes = _copy((snapshot.state, snapshot.attributes), dicts + list(snapshot.state))
        for bd in dicts:
            if bd not in fresh:
                bd.clear()
                for value in _attributes(bd).values():  # emptied, as moto's reset leaves them
                    if isinstance(value, dict):
                        value.clear()
        for bd, accounts in fresh.items():
            bd.clear()
            bd.update(accounts)
            vars(bd).update(attributes[bd])
            if bd not in _instances():  # a mock_aws reset since: in use again
                _instances().append(bd)
    return time.monotonic() - start


@contextmanager
def isolated() -> Iterator[None]:
    """An empty local AWS for the duration, then the world as it was put back: for a test that
    applies a stack of its own under names the session's applied stacks also use (an upgrade
    test applying the old examples/minimal, say)."""
    kept = take()
    restore(Snapshot({}, {}, 0.0))  # every service emptied, as a fresh moto
    try:
        yield
    finally:
        restore(kept)
