"""boto3 clients built from the environment.

boto3 (>= 1.28) reads ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``
itself, so nothing here overrides endpoints: a client built here talks to AWS,
to moto (in tests) or to a local emulator, depending only on the environment.
Clients are cached per process (Lambda reuses them across invocations);
:func:`reset` drops the cache, which tests call between moto contexts.
"""

from __future__ import annotations

import functools
import os

import boto3
from botocore.config import Config

# Standard retry mode with a few attempts: throttling and 5xx are retried by
# botocore before our code sees them; what still fails is reported upwards.
# max_pool_connections: the message consumer starts executions from a pool of
# START_CONCURRENCY (64) threads sharing one client; urllib3 keeps 10 by default.
_CONFIG = Config(retries={"max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", "4")), "mode": "standard"},
                 max_pool_connections=int(os.environ.get("AWS_MAX_POOL_CONNECTIONS", "64")))


@functools.lru_cache(maxsize=None)
def client(service: str):
    """Return a cached boto3 client for ``service``."""
    return boto3.session.Session().client(service, config=_CONFIG)


@functools.lru_cache(maxsize=None)
def resource(service: str):
    """Return a cached boto3 resource for ``service``."""
    return boto3.session.Session().resource(service, config=_CONFIG)


def reset() -> None:
    """Forget cached clients (tests call this when a moto context changes)."""
    client.cache_clear()
    resource.cache_clear()


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
    """True when ``exc`` is an AWS error worth retrying (throttling, 5xx, timeouts)."""
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, ReadTimeoutError

    if isinstance(exc, (BotoConnectionError, ReadTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        return code in TRANSIENT_ERROR_CODES or status >= 500
    return False
