"""sftp sources: read a provider's file over SSH (paramiko), in chunks, for :func:`cnm_ingest.sources.fetch_to_s3`.

:func:`cnm_ingest.sources.confine` has already checked the host and port; this
module adds what is particular to SFTP:

- the path is the URI's path, percent-decoded; a ``.`` or ``..`` segment, a NUL,
  or a path outside the provider's ``allowed_prefixes`` is refused before any
  connection (:func:`remote_path`);
- the server must present one of the provider's ``host_key`` entries
  (``"<type> <base64>"`` lines, as in ``known_hosts`` without the host name);
  a provider without one is a configuration error, because an unverified
  server could be anyone;
- credentials are the provider's Secrets Manager secret (``username`` with
  ``password`` and/or ``private_key``, PEM), never taken from the URI;
- at most ``globalConnectionLimit`` connections per provider in this process
  (others wait);
- a missing file is FileNotFound, a timeout ConnectionTimeout, anything else
  (authentication, a read failing half-way) a TransferError; the checksum and
  size are checked by the caller on the bytes as they stream.

paramiko is imported when the first sftp file is read, so the functions that
never read one do not pay for it at cold start.
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .errors import (
    ConfigurationError,
    ConnectionTimeoutError,
    FileNotFoundAtSourceError,
    TransferError,
)

if TYPE_CHECKING:
    import paramiko

SCHEME = "sftp"
DEFAULT_PORT = 22
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0
WINDOW = 8 * 1024**2  # bytes requested at once (pipelined): bounds memory, keeps a long link busy
REQUEST_SIZE = 32 * 1024  # SFTP read request size every server accepts

_limits: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_limits_lock = threading.Lock()


def remote_path(uri: str, provider: dict[str, Any]) -> str:
    """The absolute path of ``uri`` on the server, refused when it could leave where the provider may be read."""
    raw = urlsplit(uri).path
    path = unquote(raw, errors="strict")
    if not path.startswith("/") or "\x00" in path or "\\" in path:
        raise TransferError(f"{uri[:300]!r} has no usable absolute path")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise TransferError(f"{uri[:300]!r} has a '.' or '..' path segment")
    prefixes = provider.get("allowed_prefixes")
    if prefixes:
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            raise ConfigurationError(f"provider {provider.get('id')!r}'s allowed_prefixes must be a list of strings")
        folders = ["/" + p.strip("/") + "/" for p in prefixes if p.strip("/")]
        if not any(path.startswith(folder) for folder in folders):
            raise TransferError(f"{uri[:300]!r} is outside provider {provider.get('id')!r}'s allowed prefixes")
    return path


def _host_keys(provider: dict[str, Any]) -> set[tuple[str, bytes]]:
    entries = provider.get("host_key")
    lines = [entries] if isinstance(entries, str) else entries
    if not isinstance(lines, list) or not lines:
        raise ConfigurationError(
            f"provider {provider.get('id')!r} has no host_key: an sftp server is only trusted with its key configured"
        )
    keys = set()
    for line in lines:
        parts = line.split() if isinstance(line, str) else []
        try:
            keys.add((parts[0], base64.b64decode(parts[1], validate=True)))
        except (IndexError, ValueError):
            who = provider.get("id")
            raise ConfigurationError(f"provider {who!r} host_key {line!r} is not '<type> <base64>'") from None
    return keys


def _limit(provider: dict[str, Any], limit: int) -> threading.BoundedSemaphore:
    key = (str(provider.get("id") or provider.get("host")), limit)
    with _limits_lock:
        return _limits.setdefault(key, threading.BoundedSemaphore(limit))


def _private_key(text: str) -> paramiko.PKey:
    import paramiko

    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise ConfigurationError("the provider's private_key is not an Ed25519, ECDSA or RSA private key (PEM)")


def _connect(host: str, port: int, provider: dict[str, Any], creds: dict[str, str] | None) -> paramiko.Transport:
    import paramiko

    trusted = _host_keys(provider)
    if not creds or not creds.get("username"):
        raise ConfigurationError(f"provider {provider.get('id')!r} has no credentials_secret_arn for sftp")
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except TimeoutError as exc:
        raise ConnectionTimeoutError(f"connecting to {host}:{port} timed out: {exc}") from None
    except OSError as exc:
        raise TransferError(f"cannot connect to {host}:{port}: {exc}") from None
    sock.settimeout(READ_TIMEOUT)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.auth_timeout = transport.handshake_timeout = CONNECT_TIMEOUT
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
        key = transport.get_remote_server_key()
        if (key.get_name(), key.asbytes()) not in trusted:
            fingerprint = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
            raise TransferError(f"{host}:{port} presented host key SHA256:{fingerprint}, not the provider's")
        if creds.get("private_key"):
            transport.auth_publickey(creds["username"], _private_key(creds["private_key"]))
        else:
            transport.auth_password(creds["username"], creds.get("password", ""))
        if not transport.is_authenticated():
            raise TransferError(f"authentication to {host}:{port} failed")
    except paramiko.AuthenticationException as exc:
        transport.close()
        raise TransferError(f"authentication to {host}:{port} failed: {exc}") from None
    except TimeoutError as exc:
        transport.close()
        raise ConnectionTimeoutError(f"{host}:{port} timed out: {exc}") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        raise TransferError(f"SSH with {host}:{port} failed: {exc}") from None
    except BaseException:
        transport.close()
        raise
    return transport


def _windows(handle: paramiko.SFTPFile, read_size: int) -> Iterator[bytes]:
    """The file in windows of ``read_size`` bytes, each fetched as pipelined requests (memory stays bounded).

    The size is the server's at open; a file that shrinks meanwhile ends in an
    error, one that grows gives its first ``size`` bytes (and the caller's size
    check then fails).
    """
    size = handle.stat().st_size or 0
    offset = 0
    while offset < size:
        end = min(offset + read_size, size)
        requests = [(o, min(REQUEST_SIZE, end - o)) for o in range(offset, end, REQUEST_SIZE)]
        got = 0
        for data in handle.readv(requests):
            got += len(data)
            yield data
        if got != end - offset:
            raise TransferError(f"the file ended at {offset + got} bytes while the server said {size}")
        offset = end


def read_chunks(
    uri: str, provider: dict[str, Any], creds: dict[str, str] | None, limit: int, window: int | None = None
) -> Iterator[bytes]:
    """The bytes of ``uri`` in chunks, over one SSH connection held for the duration (a generator)."""
    import paramiko

    path = remote_path(uri, provider)
    parts = urlsplit(uri)
    host, port = (parts.hostname or "").lower().rstrip("."), parts.port or DEFAULT_PORT
    with _limit(provider, limit):
        transport = _connect(host, port, provider, creds)
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
            if sftp is None:
                raise TransferError(f"{host}:{port} refused the sftp subsystem")
            sftp.get_channel().settimeout(READ_TIMEOUT)  # type: ignore[union-attr]
            try:
                handle = sftp.open(path, "rb")
            except FileNotFoundError:
                raise FileNotFoundAtSourceError(f"{uri[:300]} does not exist at the provider") from None
            with handle:
                yield from _windows(handle, window or WINDOW)
        except TimeoutError as exc:
            raise ConnectionTimeoutError(f"{uri[:300]} timed out while reading: {exc}") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransferError(f"reading {uri[:300]} failed: {exc}") from None
        finally:
            transport.close()
