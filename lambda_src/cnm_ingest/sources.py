"""http, https and sftp sources: stream a provider's file into S3, checksum computed on the way, verified first.

A file is read in parts of :data:`PART_SIZE` bytes and each part is uploaded
(multipart) as it arrives, while its checksum and size are computed; the upload
is completed only when both match the CNM, so a bad download never becomes an
object (it is aborted). A file smaller than one part is checked in memory and
written with one PutObject.

Confinement: the URI, and every redirect (at most :data:`MAX_REDIRECTS`), must
be on the provider's configured ``host`` (and ``port``, when set) and must not
go from https to http. Credentials come from the Secrets Manager secret the
provider names (``credentials_secret_arn``: JSON ``{"username", "password"}``;
for sftp ``private_key`` may stand for the password), are cached for
:data:`SECRET_CACHE_SECONDS`, and are only ever sent to that host.
``globalConnectionLimit`` (Cumulus's provider setting) bounds this process's
open connections to the provider. sftp specifics (host key, paths) are in
:mod:`cnm_ingest.sftp`.

Errors, as Cumulus names them: 404/410 -> FileNotFound, a connect or read
timeout -> ConnectionTimeout, any other failure -> RemoteResourceError
(TRANSFER_ERROR); a size or checksum mismatch -> UnexpectedFileSize /
InvalidChecksum (VALIDATION_ERROR). A 5xx or 429 answer is transient.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3

from . import aws, checksum, provider_access, sftp
from .errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ConnectionTimeoutError,
    FileNotFoundAtSourceError,
    SizeMismatchError,
    TransferError,
    TransientError,
)

PART_SIZE = 64 * 1024**2
MIN_PART_SIZE = 5 * 1024**2
READ_SIZE = 1024**2
MAX_REDIRECTS = 3
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0
SECRET_CACHE_SECONDS = 300.0
DEFAULT_CONNECTION_LIMIT = 10
DEFAULT_PORTS = {"http": 80, "https": 443, sftp.SCHEME: sftp.DEFAULT_PORT}
SCHEMES = tuple(DEFAULT_PORTS)

_secrets: dict[str, tuple[float, dict[str, str]]] = {}


def is_remote(uri: str) -> bool:
    return isinstance(uri, str) and urlsplit(uri).scheme.lower() in SCHEMES


def _origin(uri: str) -> tuple[str, str, int]:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname or parts.username or parts.password:
        raise TransferError(f"{uri[:300]!r} is not an http(s) or sftp URI without credentials")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise TransferError(f"{uri[:300]!r} has no valid port") from None
    return scheme, parts.hostname.lower().rstrip("."), port


def confine(uri: str, provider: dict[str, Any], previous_scheme: str | None = None) -> None:
    """Raise unless ``uri`` is on the provider's host (and port), and is not an https -> http step down."""
    host = str(provider.get("host") or "").lower().rstrip(".")
    if not host:
        raise ConfigurationError(f"provider {provider.get('id')!r} has no host to confine http(s) sources to")
    scheme, uri_host, port = _origin(uri)
    if uri_host != host or (provider.get("port") and int(provider["port"]) != port):
        raise TransferError(f"{uri[:300]!r} is not on provider {provider.get('id')!r}'s host {host!r}")
    if previous_scheme == "https" and scheme == "http":
        raise TransferError(f"redirect from https to http refused: {uri[:300]!r}")
    if scheme == sftp.SCHEME:
        sftp.remote_path(uri, provider)


def credentials(secret_arn: str | None) -> dict[str, str] | None:
    """``{"username", "password"}`` (and ``private_key`` when the secret has one) from Secrets Manager,
    cached for SECRET_CACHE_SECONDS."""
    if not secret_arn:
        return None
    now = time.monotonic()
    hit = _secrets.get(secret_arn)
    if hit and now - hit[0] < SECRET_CACHE_SECONDS:
        return hit[1]
    text = provider_access.secrets_client(secret_arn).get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        value = json.loads(text)
        if "password" not in value and "private_key" not in value:
            raise KeyError("password")
        creds = {"username": str(value["username"])}
        creds.update({k: str(value[k]) for k in ("password", "private_key") if k in value})
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"secret {secret_arn!r} is not JSON with username and password (or private_key)"
        ) from None
    _secrets[secret_arn] = (now, creds)
    return creds


def connection_limit(provider: dict[str, Any]) -> int:
    """The provider's ``globalConnectionLimit`` (default DEFAULT_CONNECTION_LIMIT), at least 1."""
    limit = provider.get("globalConnectionLimit")
    limit = DEFAULT_CONNECTION_LIMIT if limit is None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError("globalConnectionLimit must be at least 1")
    return limit


@functools.lru_cache(maxsize=64)
def _pool(provider_id: str, limit: int) -> urllib3.PoolManager:
    """One pool per provider; at most ``limit`` connections per host, callers wait for a free one."""
    return urllib3.PoolManager(
        maxsize=limit, block=True, retries=False, timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    )


def open_source(uri: str, provider: dict[str, Any]) -> urllib3.BaseHTTPResponse:
    """GET ``uri`` following at most MAX_REDIRECTS redirects, each confined to the provider's host."""
    pool = _pool(str(provider.get("id") or provider.get("host")), connection_limit(provider))
    creds = credentials(provider.get("credentials_secret_arn"))
    if creds and "password" not in creds:
        raise ConfigurationError(f"provider {provider.get('id')!r}'s secret has no password for http(s)")
    headers = urllib3.make_headers(basic_auth=f"{creds['username']}:{creds['password']}") if creds else {}
    scheme = None
    for _ in range(MAX_REDIRECTS + 1):
        confine(uri, provider, scheme)
        scheme = urlsplit(uri).scheme.lower()
        try:
            resp = pool.request("GET", uri, headers=headers, preload_content=False, redirect=False)
        except urllib3.exceptions.NewConnectionError as exc:  # a subclass of ConnectTimeoutError, but not a timeout
            raise TransferError(f"cannot connect to {uri[:300]}: {exc}") from None
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError) as exc:
            raise ConnectionTimeoutError(f"{uri[:300]} timed out: {exc}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise TransferError(f"cannot fetch {uri[:300]}: {exc}") from None
        if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
            resp.drain_conn()
            resp.release_conn()
            uri = urljoin(uri, resp.headers["Location"])
            continue
        if resp.status == 200:
            return resp
        resp.drain_conn()
        resp.release_conn()
        if resp.status in (404, 410):
            raise FileNotFoundAtSourceError(f"{uri[:300]} does not exist at the provider (HTTP {resp.status})")
        if resp.status == 429 or resp.status >= 500:
            raise TransientError(f"{uri[:300]} answered HTTP {resp.status}")
        raise TransferError(f"{uri[:300]} answered HTTP {resp.status}")
    raise TransferError(f"{uri[:300]}: more than {MAX_REDIRECTS} redirects")


def _chunks(resp: urllib3.BaseHTTPResponse, uri: str) -> Iterator[bytes]:
    try:
        while True:
            chunk = resp.read(READ_SIZE)
            if not chunk:
                return
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise ConnectionTimeoutError(f"{uri[:300]} timed out while reading: {exc}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransferError(f"reading {uri[:300]} failed: {exc}") from None
    finally:
        resp.release_conn()


def chunks(uri: str, provider: dict[str, Any]) -> Iterator[bytes]:
    """The bytes of ``uri`` as they arrive, from the provider's host only (http, https or sftp)."""
    confine(uri, provider)
    if urlsplit(uri).scheme.lower() == sftp.SCHEME:
        limit = connection_limit(provider)
        return sftp.read_chunks(uri, provider, credentials(provider.get("credentials_secret_arn")), limit)
    return _chunks(open_source(uri, provider), uri)


def _check(file: dict[str, Any], digest: Any, size: int) -> None:
    if size != file["size"]:
        raise SizeMismatchError(f"{file['source']} sent {size} bytes, the CNM says {file['size']}; nothing was stored")
    if file.get("checksum") and not checksum.matches(file["checksum"], digest.hexdigest()):
        raise ChecksumMismatchError(
            f"{file['source']} has {file.get('checksumType') or 'md5'} {digest.hexdigest()}, "
            f"the CNM says {file['checksum']}; nothing was stored"
        )


def fetch_to_s3(
    file: dict[str, Any],
    provider: dict[str, Any],
    bucket: str,
    key: str,
    *,
    metadata: dict[str, str],
    part_size: int | None = None,
) -> int:
    """Stream ``file["source"]`` into ``s3://bucket/key``; the object exists only if size and checksum match.

    Returns the size. Parts are ``part_size`` bytes (at least S3's 5 MiB minimum).
    """
    part = max(part_size or PART_SIZE, MIN_PART_SIZE)
    digest = hashlib.new(checksum.algorithm(file.get("checksumType")))
    stream = chunks(file["source"], provider)
    s3 = aws.client("s3")
    buffer, size, upload_id = bytearray(), 0, None
    parts: list[dict[str, Any]] = []
    try:
        for chunk in stream:
            digest.update(chunk)
            size += len(chunk)
            if size > file["size"]:
                raise SizeMismatchError(
                    f"{file['source']} sent more than the {file['size']} bytes the CNM says; nothing was stored"
                )
            buffer += chunk
            while len(buffer) >= part:
                if upload_id is None:
                    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)["UploadId"]
                body, buffer = bytes(buffer[:part]), buffer[part:]
                etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(parts) + 1, Body=body)
                parts.append({"ETag": etag["ETag"], "PartNumber": len(parts) + 1})
        _check(file, digest, size)
        if upload_id is None:
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), Metadata=metadata)
        else:
            if buffer:
                etag = s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(parts) + 1, Body=bytes(buffer)
                )
                parts.append({"ETag": etag["ETag"], "PartNumber": len(parts) + 1})
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
            upload_id = None
        return size
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a source abandoned half-way releases its connection now
        if upload_id is not None:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
