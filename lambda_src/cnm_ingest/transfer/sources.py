"""http, https and sftp sources: stream a provider's file into S3, checksum computed on the way, verified first.

A file is read in parts of :data:`PART_SIZE` bytes and each part is uploaded
(multipart) as it arrives, while its checksum and size are computed; the upload
is completed only when both match the CNM, so a bad download never becomes an
object (it is aborted). A file smaller than one part is checked in memory and
written with one PutObject.

Where a file may be read is :mod:`cnm_ingest.transfer.confine`'s one rule, applied
before anything else (and to every redirect): scheme = the provider's declared
``protocol``, host and port = the provider's, path under ``allowed_prefixes``.
The host is resolved once, every address must be public unless the provider's
``allowed_networks`` include it, and the connection goes to that checked
address (the Host header, TLS SNI and certificate check use the name), so DNS
rebinding has nothing to act on. A redirect (at most :data:`MAX_REDIRECTS`)
must pass the same rule (so it keeps scheme, host and port): any other is
refused without a request, so credentials never follow it.

Credentials come from the Secrets Manager secret the provider names
(``credentials_secret_arn``: JSON ``{"username", "password"}``; for sftp
``private_key`` may stand for the password), are cached for
:data:`SECRET_CACHE_SECONDS`, and are sent only over the declared protocol:
HTTP Basic only for an ``https`` provider (an ``http`` provider with a secret
is a configuration error), SSH authentication only for ``sftp``.

Bytes are staged exactly as served: ``Accept-Encoding: identity`` is asked
for and a ``Content-Encoding`` is never decoded. A transfer ends by its
:class:`cnm_ingest.transfer.confine.Deadline` (see :func:`cnm_ingest.transfer.confine.provider_reads`)
besides the per-read timeout. ``globalConnectionLimit`` (Cumulus's provider
setting) bounds this process's open connections to the provider (others wait).
sftp specifics (host key, SSH) are in :mod:`cnm_ingest.transfer.sftp`.

Errors, as Cumulus names them: 404/410 -> FileNotFound, a connect or read
timeout or the deadline -> ConnectionTimeout (retried by the workflow), any
other failure -> RemoteResourceError (TRANSFER_ERROR); a size or checksum
mismatch -> UnexpectedFileSize / InvalidChecksum (VALIDATION_ERROR). A 5xx or
429 answer is transient. Messages never carry credentials (:func:`cnm_ingest.transfer.confine.redact`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from cnm_ingest import aws
from cnm_ingest.cnm import checksum
from cnm_ingest.errors import (
    ChecksumMismatchError,
    CnmValidationError,
    ConfigurationError,
    ConnectionTimeoutError,
    FileNotFoundAtSourceError,
    SizeMismatchError,
    TransferError,
    TransientError,
)
from cnm_ingest.transfer import confine, provider_access, sftp

PART_SIZE = 64 * 1024**2
MIN_PART_SIZE = 5 * 1024**2
READ_SIZE = 1024**2
MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0
SECRET_CACHE_SECONDS = 300.0
DEFAULT_CONNECTION_LIMIT = 10
SCHEMES = ("http", "https", sftp.SCHEME)

_secrets: dict[str, tuple[float, dict[str, str]]] = {}


def is_remote(uri: str) -> bool:
    return isinstance(uri, str) and urlsplit(uri).scheme.lower() in SCHEMES


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


def _http_credentials(provider: dict[str, Any]) -> dict[str, str] | None:
    """The provider's username and password for HTTP Basic: only for an ``https`` provider."""
    creds = credentials(provider.get("credentials_secret_arn"))
    if not creds:
        return None
    if confine.protocol(provider) != "https":  # confine.check_provider refuses http with credentials already
        raise ConfigurationError(f"provider {provider.get('id')!r}'s credentials are only ever sent over https")
    if "password" not in creds:
        raise ConfigurationError(f"provider {provider.get('id')!r}'s secret has no password for https")
    return creds


def _connect(source: confine.Source, ips: list[str], deadline: confine.Deadline) -> HTTPConnection:
    """A connection to one of the checked ``ips`` (never the name), watched by ``deadline``."""
    where = f"{source.scheme}://{source.authority}"
    failure: Exception | None = None
    for ip in ips:
        timeout = deadline.timeout(CONNECT_TIMEOUT, f"connecting to {where}")
        conn: HTTPConnection
        if source.scheme == "https":
            conn = HTTPSConnection(
                ip, source.port, timeout=timeout, server_hostname=source.host, assert_hostname=source.host
            )
        else:
            conn = HTTPConnection(ip, source.port, timeout=timeout)
        try:
            conn.connect()
        except urllib3.exceptions.NewConnectionError as exc:  # refused, unreachable: try the next checked address
            failure = exc
            continue
        except Exception as exc:
            conn.close()
            raise _transfer_error(exc, f"connecting to {where}", deadline) from None
        assert conn.sock is not None
        deadline.watch(conn.sock)
        conn.timeout = deadline.timeout(READ_TIMEOUT, f"reading from {where}")  # getresponse() applies it
        conn.sock.settimeout(conn.timeout)
        return conn
    raise TransferError(f"cannot connect to {where}: {failure}")


def _transfer_error(exc: BaseException, what: str, deadline: confine.Deadline) -> TransferError:
    """The error a failed connect, request or read is reported as (credentials never in it)."""
    if deadline.expired:
        return deadline.error(what)
    if isinstance(exc, (TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError)):
        return ConnectionTimeoutError(f"{what} timed out: {type(exc).__name__}")
    return TransferError(f"{what} failed: {type(exc).__name__}: {str(exc)[:300]!r}")  # quoted: may be server bytes


def _http_chunks(uri: str, source: confine.Source, provider: dict[str, Any]) -> Iterator[bytes]:
    """The bytes of the checked ``source``, following redirects that pass the same rule."""
    creds = _http_credentials(provider)
    headers = {"Host": source.authority, "Accept-Encoding": "identity", "User-Agent": "cnm-ingest"}
    if creds:
        headers.update(urllib3.make_headers(basic_auth=f"{creds['username']}:{creds['password']}"))
    deadline = confine.Deadline()
    try:
        with confine.slot(provider, connection_limit(provider)):
            ips = confine.addresses(source, provider)
            for _ in range(MAX_REDIRECTS + 1):
                shown = confine.redact(uri)
                conn = _connect(source, ips, deadline)
                try:
                    try:
                        conn.request("GET", source.target, headers=headers, preload_content=False, decode_content=False)
                        resp = conn.getresponse()
                    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                        raise _transfer_error(exc, f"fetching {shown}", deadline) from None
                    if resp.status in REDIRECTS:
                        uri, source = _redirect(uri, resp.headers.get("Location"), provider)
                        continue
                    if resp.status == 200:
                        yield from _body(resp, shown, deadline)
                        return
                    if resp.status in (404, 410):
                        raise FileNotFoundAtSourceError(f"{shown} does not exist at the provider (HTTP {resp.status})")
                    if resp.status == 429 or resp.status >= 500:
                        raise TransientError(f"{shown} answered HTTP {resp.status}")
                    raise TransferError(f"{shown} answered HTTP {resp.status}")
                finally:
                    conn.close()
            raise TransferError(f"{confine.redact(uri)}: more than {MAX_REDIRECTS} redirects")
    finally:
        deadline.close()


def _redirect(uri: str, location: str | None, provider: dict[str, Any]) -> tuple[str, confine.Source]:
    """The next hop of a redirect, when it passes the confinement rule; else TransferError (no request made)."""
    if not location:
        raise TransferError(f"{confine.redact(uri)} redirected without a Location")
    target = urljoin(uri, location)
    try:
        return target, confine.check(target, provider)
    except CnmValidationError as exc:
        raise TransferError(
            f"redirect from {confine.redact(uri)} refused, nothing sent there: {exc.args[0].split(': ', 1)[-1]}"
        ) from None


def _body(resp: urllib3.BaseHTTPResponse, shown: str, deadline: confine.Deadline) -> Iterator[bytes]:
    """The body exactly as served (no content decoding), until EOF, the per-read timeout or the deadline."""
    try:
        while True:
            deadline.check(f"reading {shown}")
            chunk = resp.read(READ_SIZE, decode_content=False)
            if not chunk:
                break
            yield chunk
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise _transfer_error(exc, f"reading {shown}", deadline) from None
    deadline.check(f"reading {shown}")  # an end forced by the deadline is not the end of the file


def chunks(uri: str, provider: dict[str, Any]) -> Iterator[bytes]:
    """The bytes of ``uri`` as they arrive, from the provider's own location only (http, https or sftp).

    The confinement rule is checked here, before anything else (CnmValidationError).
    """
    source = confine.check(uri, provider)
    if source.scheme == sftp.SCHEME:
        return sftp.read_chunks(
            source, provider, credentials(provider.get("credentials_secret_arn")), connection_limit(provider)
        )
    if source.scheme not in ("http", "https"):
        raise ConfigurationError(f"provider {provider.get('id')!r}'s {source.scheme} files are not streamed")
    return _http_chunks(uri, source, provider)


def _check(file: dict[str, Any], digest: Any, size: int) -> None:
    if size != file["size"]:
        raise SizeMismatchError(
            f"{confine.redact(file['source'])} sent {size} bytes, the CNM says {file['size']}; nothing was stored"
        )
    if file.get("checksum") and not checksum.matches(file["checksum"], digest.hexdigest(), file.get("checksumType")):
        raise ChecksumMismatchError(
            f"{confine.redact(file['source'])} has {file.get('checksumType') or 'md5'} {digest.hexdigest()}, "
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
    checksum.check_form(file)
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
                    f"{confine.redact(file['source'])} sent more than the {file['size']} bytes the CNM says; "
                    "nothing was stored"
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
