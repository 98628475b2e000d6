"""Snapshot and restore of the local AWS's whole state (moto's backends in this process).

The server (localaws.server) runs in a thread of the calling process, so every resource
Terraform applied is a Python object in moto's backends here. ``take()`` pickles them all at
once; ``restore(snapshot)`` unpickles a fresh copy and puts it back, mutating each BackendDict
in place (module-level references to it stay valid):

    snap = snapshot.take()          # right after `terraform apply`
    ...                             # a test puts records, starts executions, creates queues
    snapshot.restore(snap)          # the world as applied again; what the test created is gone

One pickle covers every service, so references between services' objects keep their identity;
the BackendDicts themselves are written as references, never copied. Locks, conditions and
events are not picklable; the pickler's reducers make new, unlocked ones. A snapshot is bytes:
``save``/``load`` hand it to another process (the same moto), which then restores it as its own
world. Restoring while a request is being served is not supported: restore between tests.
"""

from __future__ import annotations

import _thread
import copyreg
import gc
import importlib
import io
import marshal
import pickle
import threading
import time
import types
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RLOCK = type(threading.RLock())


# a BackendDict's own attributes that say what it is; any other (S3's bucket_accounts) is state
_STRUCTURE = frozenset({"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"})


def _instances() -> list[Any]:
    """moto's registry of every BackendDict in use (a class attribute, read as such)."""
    from moto.core.base_backend import BackendDict

    registry: list[Any] = vars(BackendDict)["_instances"]
    return registry


def _backend_dicts() -> list[Any]:
    return list(_instances())


# --- the pickled form ------------------------------------------------------------------------------
# A snapshot is one pickle of every backend's state (C code: several times faster than a deepcopy,
# and a file another process can load). What deepcopy's memo did, the pickle's reducers do: a
# BackendDict is written as a reference to the live one (its class and service), never copied; a
# lock comes back as a new unlocked lock, a Condition as a new Condition over its (new) lock, an
# Event as a new Event in the same state.

_KNOWN: dict[tuple[str, str, str], Any] = {}  # a BackendDict's reference -> the BackendDict (this process)


def _reference(bd: Any) -> tuple[str, str, str]:
    return (bd.backend.__module__, bd.backend.__qualname__, bd.service_name)


def _backend_dict(module: str, qualname: str, service: str) -> Any:
    """The live BackendDict a reference names: one this process has seen, else the module-level
    BackendDict of the backend's module (another process loading a snapshot file)."""
    key = (module, qualname, service)
    if key not in _KNOWN:
        from moto.core.base_backend import BackendDict

        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, BackendDict) and _reference(value) == key:
                _KNOWN[key] = value
                break
        else:
            raise LookupError(f"no BackendDict for {service} ({module}.{qualname})")
    return _KNOWN[key]


def _event(is_set: bool) -> threading.Event:
    event = threading.Event()
    if is_set:
        event.set()
    return event


def _reducers() -> dict[type, Any]:
    from moto.core.base_backend import BackendDict

    table: dict[type, Any] = dict(copyreg.dispatch_table)
    table[_thread.LockType] = lambda lock: (threading.Lock, ())
    table[_RLOCK] = lambda lock: (threading.RLock, ())
    table[threading.Condition] = lambda cond: (threading.Condition, (cond._lock,))
    table[threading.Event] = lambda event: (_event, (event.is_set(),))
    # weak containers: the same entries, held as weakly as before (pickle's memo keeps each value's identity)
    table[weakref.WeakValueDictionary] = lambda wd: (weakref.WeakValueDictionary, (dict(wd.items()),))
    table[weakref.WeakKeyDictionary] = lambda wd: (weakref.WeakKeyDictionary, (dict(wd.items()),))
    table[weakref.WeakSet] = lambda ws: (weakref.WeakSet, (list(ws),))

    def reference(bd: Any) -> tuple[Any, tuple[str, str, str]]:
        key = _reference(bd)
        _KNOWN.setdefault(key, bd)
        return (_backend_dict, key)

    table.update(_key_reducers())
    kinds: list[type] = [BackendDict]
    seen: set[type] = set()
    while kinds:  # the table is by exact type: S3's S3BackendDict and any other subclass too
        kind = kinds.pop()
        if kind not in seen:
            seen.add(kind)
            table[kind] = reference
            kinds.extend(kind.__subclasses__())
    return table


def _private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    # the key was valid when moto made it: loading it again need not check it again (RSA's check is slow)
    return serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)


def _public_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der)


def _key_reducers() -> dict[type, Any]:
    """cryptography's keys (moto's KMS keys hold them) are written as DER and loaded again."""
    from cryptography.hazmat.bindings._rust import openssl
    from cryptography.hazmat.primitives import serialization as ser

    private = (ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    public = (ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    table: dict[type, Any] = {}
    for kind in ("rsa", "ec", "ed25519", "ed448", "dsa", "x25519", "x448"):
        module, name = getattr(openssl, kind), {"ec": "EC", "rsa": "RSA", "dsa": "DSA"}.get(kind, kind.capitalize())
        table[getattr(module, f"{name}PrivateKey")] = lambda key: (_private_key, (key.private_bytes(*private),))
        table[getattr(module, f"{name}PublicKey")] = lambda key: (_public_key, (key.public_bytes(*public),))
    return table


def _function(module: str, code: bytes, defaults: tuple[Any, ...] | None, cells: tuple[Any, ...] | None) -> Any:
    closure = None if cells is None else tuple(types.CellType(value) for value in cells)
    return types.FunctionType(marshal.loads(code), vars(importlib.import_module(module)), None, defaults, closure)


BIG = 64 * 1024  # bytes and strings at least this long are kept beside the pickle, shared by every restore


class _Pickler(pickle.Pickler):
    """A function pickle can't name (a lambda, a nested function: moto's ``defaultdict(lambda: {})``)
    is written as its module, code, defaults and closure, and made again from them. A big bytes or str
    (a Lambda function's zip) is written as its index in ``big``: immutable, so every restore shares it
    (as deepcopy did) instead of copying megabytes. The other reducers are its dispatch table (set
    before the C pickler's init, which reads it)."""

    def __init__(self, file: io.BytesIO, big: list[bytes | str]) -> None:
        self.dispatch_table = _reducers()
        self.big, self._big_ids = big, {id(value): n for n, value in enumerate(big)}
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) not in (bytes, str) or len(obj) < BIG:
            return None
        if id(obj) not in self._big_ids:
            self._big_ids[id(obj)] = len(self.big)
            self.big.append(obj)
        return self._big_ids[id(obj)]

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not types.FunctionType or "<" not in obj.__qualname__:
            return NotImplemented
        cells = None if obj.__closure__ is None else tuple(cell.cell_contents for cell in obj.__closure__)
        return (_function, (obj.__module__, marshal.dumps(obj.__code__), obj.__defaults__, cells))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, big: list[bytes | str]) -> None:
        super().__init__(file)
        self.big = big

    def persistent_load(self, pid: Any) -> Any:
        return self.big[pid]


def _dumps(value: Any, big: list[bytes | str] | None = None) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, [] if big is None else big).dump(value)
    return buf.getvalue()


def _loads(blob: bytes, big: list[bytes | str]) -> Any:
    """Unpickled with the cyclic GC paused: a world is tens of thousands of new objects, and each GC
    pass on the way would walk all of them again."""
    was = gc.isenabled()
    gc.disable()
    try:
        return _Unpickler(io.BytesIO(blob), big).load()
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True)
class Snapshot:
    """moto's state at one moment, pickled: each BackendDict's accounts (BackendDict -> {account:
    backend}) and the state some BackendDicts keep as attributes (BackendDict -> {attribute: value});
    ``big``: the big immutable values the pickle refers to."""

    blob: bytes
    big: list[bytes | str]
    services: list[str]
    seconds: float  # how long taking it took

    def state(self) -> tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]]]:
        """A fresh copy of the state and the attributes (each call: new objects)."""
        loaded: tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]]] = _loads(self.blob, self.big)
        return loaded

    def save(self, path: Path) -> None:
        """Written for another process to ``load`` (its moto of the same version)."""
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            pickle.dump((self.blob, self.big, self.services), fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, replace: tuple[str, str] | None = None) -> Snapshot:
        """A snapshot another process saved; ``replace``: (old, new), a string of the same length replaced
        in every value (the other process's endpoint by this one's: moto's objects and the Terraform
        state hold queue URLs)."""
        with path.open("rb") as fh:
            blob, big, services = pickle.load(fh)
        if replace is not None:
            old, new = replace
            if len(old) != len(new):  # the pickle's strings are length-prefixed
                raise ValueError(f"{old!r} and {new!r} differ in length")
            blob = blob.replace(old.encode(), new.encode())
            big = [b.replace(old.encode(), new.encode()) if isinstance(b, bytes) else b.replace(old, new) for b in big]
        return cls(blob, big, services, 0.0)


def take() -> Snapshot:
    """Pickle every backend in use (every service that has been called)."""
    from moto.core.base_backend import backend_lock

    start = time.monotonic()
    with backend_lock:
        dicts = _backend_dicts()
        big: list[bytes | str] = []
        blob = _dumps(({bd: dict(bd) for bd in dicts}, {bd: _attributes(bd) for bd in dicts}), big)
    return Snapshot(blob, big, sorted(bd.service_name for bd in dicts), time.monotonic() - start)


def _attributes(bd: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(bd).items() if k not in _STRUCTURE}


EMPTY = Snapshot(pickle.dumps(({}, {})), [], [], 0.0)  # a fresh moto: every service empty


def restore(snapshot: Snapshot) -> float:
    """Put the world of ``snapshot`` back (a fresh copy: the snapshot can be restored again).
    Services first used after the snapshot are emptied. Returns the seconds it took."""
    from moto.core.base_backend import backend_lock
    from moto.core.model_instances import reset_model_data

    start = time.monotonic()
    # moto lists every model object it makes, for its dashboard: the world being replaced would stay
    # alive in those lists (a Lambda function's code included) for every restore of the session
    reset_model_data()
    fresh, attributes = snapshot.state()
    with backend_lock:
        for bd in _backend_dicts():
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
    restore(EMPTY)  # every service emptied, as a fresh moto
    try:
        yield
    finally:
        restore(kept)
