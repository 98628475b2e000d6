"""boto3 clients built from the environment, from one Session per process.

boto3 (>= 1.28) reads ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``
itself, so nothing here overrides endpoints: a client built here talks to AWS,
to moto (in tests) or to a local emulator, depending only on the environment.
Region and endpoint are read when a client is built; credentials when the
Session first needs them.

One boto3 Session serves the whole process: a new Session loads and parses
the service models again, which costs far more than the client itself (see
``bench/cold_start.py``). Clients are cached per (service, config) and reused
across invocations. Building is serialised by a lock, since a Session is not
thread-safe, while the clients it returns are. :func:`reset` drops the cached
clients (tests call it when a moto context changes, and when they change the
environment); ``reset(session=True)`` drops the Session as well (new
credentials).

A Session made after such a reset keeps the process's model loader (botocore's
``data_loader``, one per ``AWS_DATA_PATH``): the service models and endpoints
data it has parsed do not depend on credentials or region, and parsing them
again made a new Session and three clients about three times as costly
(``endpoints.json`` mostly). Credentials, region and endpoints are still read
afresh by the new Session and its clients.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[tuple[str, Config | None], Any] = {}
_resources: dict[str, Any] = {}
_loaders: dict[Any, botocore.loaders.Loader] = {}  # AWS_DATA_PATH -> the model loader every Session shares
# (service, role ARN, session policy) -> (credentials' expiry, epoch seconds; client)
_assumed: dict[tuple[str, str, str], tuple[float, Any]] = {}
ASSUMED_MAX = 256  # cached assumed-role clients (then the oldest are dropped)
ASSUMED_SECONDS = 3600  # the provider-read role's MaxSessionDuration (modules/workflow)
ASSUMED_MARGIN = 300  # a client whose credentials expire sooner is built again


def _base_config() -> Config:
    # Standard retry mode with a few attempts: throttling and 5xx are retried by
    # botocore before our code sees them; what still fails is reported upwards.
    # AWS_MAX_ATTEMPTS means what it means to the AWS SDKs: attempts in all, the first call included.
    # max_pool_connections: the message consumer starts executions from a pool of
    # START_CONCURRENCY (64) threads sharing one client; urllib3 keeps 10 by default.
    return Config(
        retries={"total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", "4")), "mode": "standard"},
        max_pool_connections=int(os.environ.get("AWS_MAX_POOL_CONNECTIONS", "64")),
    )


def session() -> boto3.session.Session:
    """The process's boto3 Session (created on first use)."""
    global _session
    with _lock:
        if _session is None:
            _session = _new_session()
        return _session


def _new_session() -> boto3.session.Session:
    """A Session on the process's model loader for its ``AWS_DATA_PATH`` (call under the lock)."""
    core = botocore.session.Session()
    data_path = core.get_config_variable("data_path")
    loader = _loaders.get(data_path)
    if loader is None:
        loader = _loaders[data_path] = botocore.loaders.create_loader(data_path)
    core.register_component("data_loader", loader)
    made = boto3.session.Session(botocore_session=core)
    # boto3 adds its own data folder to the loader's search path with every Session: once is enough
    loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return made


def _cached(cache: dict[Any, Any], key: Any, make: Callable[[Any], Any]) -> Any:
    """``cache[key]``, made once from the Session by ``make`` (under the lock: a Session is not thread-safe)."""
    found = cache.get(key)
    if found is not None:
        return found
    sess = session()
    with _lock:
        found = cache.get(key)
        if found is None:
            # Services are runtime strings here: the stubs' per-service overloads cannot apply.
            found = cache[key] = make(cast(Any, sess))
        return found


def client(service: str, config: Config | None = None) -> Any:
    """A cached boto3 client for ``service``.

    ``config`` is merged over the default (standard retries); pass a
    module-level constant, since clients are cached per config object, e.g.
    ``Config(retries={"mode": "adaptive"}, max_pool_connections=32)`` for a
    client shared by a thread pool.
    """

    def make(sess: Any) -> Any:
        return sess.client(service, config=_base_config() if config is None else _base_config().merge(config))

    return _cached(_clients, (service, config), make)


def assumed_client(service: str, role_arn: str, policy: str, session_name: str) -> Any:
    """A client for ``service`` under ``role_arn`` narrowed by the session ``policy`` (JSON text).

    The effective permissions are the intersection of the role's policies and
    ``policy`` (sts:AssumeRole ``Policy``). Clients are cached per (service,
    role, policy) until :data:`ASSUMED_MARGIN` seconds before their credentials
    expire, so a provider's reads assume the role about once an hour per process.
    """
    key = (service, role_arn, policy)
    hit = _assumed.get(key)
    if hit is not None and hit[0] - time.time() > ASSUMED_MARGIN:
        return hit[1]
    creds = client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName=session_name, Policy=policy, DurationSeconds=ASSUMED_SECONDS
    )["Credentials"]
    sess = session()
    with _lock:
        made = cast(Any, sess).client(
            service,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            config=_base_config(),
        )
        if len(_assumed) >= ASSUMED_MAX:
            for old in sorted(_assumed, key=lambda k: _assumed[k][0])[: ASSUMED_MAX // 4]:
                del _assumed[old]
        _assumed[key] = (creds["Expiration"].timestamp(), made)
    return made


def resource(service: str) -> Any:
    """A cached boto3 resource for ``service``."""
    return _cached(_resources, service, lambda sess: sess.resource(service, config=_base_config()))


def reset(session: bool = False) -> None:
    """Forget cached clients (and with ``session=True`` the Session too)."""
    global _session
    with _lock:
        _clients.clear()
        _resources.clear()
        _assumed.clear()
        if session:
            _session = None


def env(name: str, default: str | None = None) -> str:
    """Read a required setting from the environment with a clear error."""
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise RuntimeError(f"environment variable {name} is not set")
    return value


# Error codes that mean "try again later", not "this record is bad".
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "KMSThrottlingException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
    }
)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is an AWS error worth retrying (throttling, 5xx, timeouts, a dropped connection).

    The transport errors are those botocore's own standard retry mode retries: its ``ConnectionError`` and
    ``HTTPClientError`` families (a read timeout, a connection closed before the answer, a body cut off while
    read). One that is still raised after the SDK's attempts is worth delivering again, not an answer lost."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        return code in TRANSIENT_ERROR_CODES or status >= 500
    return False


def update_item_if(params: dict[str, Any]) -> bool:
    """DynamoDB UpdateItem with ``params``; False when its ConditionExpression did not hold (nothing written)."""
    from botocore.exceptions import ClientError

    try:
        client("dynamodb").update_item(**params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
