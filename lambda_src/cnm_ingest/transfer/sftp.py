"""sftp sources: read a provider's file over SSH (paramiko), in chunks,
for :func:`cnm_ingest.transfer.sources.fetch_to_s3`.

:func:`cnm_ingest.transfer.confine.check` has already checked the URI (scheme, host,
port, the decoded path under ``allowed_prefixes``) and
:func:`cnm_ingest.transfer.confine.addresses` the addresses the host resolves to; the
socket is connected to one of those checked addresses, never to the name.
This module adds what is particular to SFTP:

- the server must present one of the provider's ``host_key`` entries
  (``"<type> <base64>"`` lines, as in ``known_hosts`` without the host name);
  a provider without one is a configuration error, because an unverified
  server could be anyone;
- credentials are the provider's Secrets Manager secret (``username`` with
  ``password`` and/or ``private_key``, PEM), never taken from the URI;
- at most ``globalConnectionLimit`` connections per provider in this process
  (others wait);
- the transfer ends by its deadline (:class:`cnm_ingest.transfer.confine.Deadline`):
  the socket is shut down when it passes, and timeouts are cut to what remains;
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
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cnm_ingest.errors import ConfigurationError, ConnectionTimeoutError, FileNotFoundAtSourceError, TransferError
from cnm_ingest.transfer import confine

if TYPE_CHECKING:
    import paramiko

SCHEME = "sftp"
DEFAULT_PORT = 22
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0
WINDOW = 8 * 1024**2  # bytes requested at once (pipelined): bounds memory, keeps a long link busy
REQUEST_SIZE = 32 * 1024  # SFTP read request size every server accepts


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


def _private_key(text: str) -> paramiko.PKey:
    import paramiko

    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise ConfigurationError("the provider's private_key is not an Ed25519, ECDSA or RSA private key (PEM)")


def _connect(
    source: confine.Source,
    ips: list[str],
    provider: dict[str, Any],
    creds: dict[str, str] | None,
    deadline: confine.Deadline,
) -> paramiko.Transport:
    import paramiko

    trusted = _host_keys(provider)
    if not creds or not creds.get("username"):
        raise ConfigurationError(f"provider {provider.get('id')!r} has no credentials_secret_arn for sftp")
    where = source.authority if source.port != DEFAULT_PORT else f"{source.authority}:{DEFAULT_PORT}"
    assert source.port is not None
    try:
        sock = confine.connect(ips, source.port, deadline.timeout(CONNECT_TIMEOUT, f"connecting to {where}"))
    except TimeoutError as exc:
        raise ConnectionTimeoutError(f"connecting to {where} timed out: {exc}") from None
    except OSError as exc:
        raise TransferError(f"cannot connect to {where}: {exc}") from None
    deadline.watch(sock)
    sock.settimeout(deadline.timeout(READ_TIMEOUT, f"reading from {where}"))
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.auth_timeout = transport.handshake_timeout = CONNECT_TIMEOUT
    try:
        transport.start_client(timeout=deadline.timeout(CONNECT_TIMEOUT, f"SSH with {where}"))
        key = transport.get_remote_server_key()
        if (key.get_name(), key.asbytes()) not in trusted:
            fingerprint = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
            raise TransferError(f"{where} presented host key SHA256:{fingerprint}, not the provider's")
        if creds.get("private_key"):
            transport.auth_publickey(creds["username"], _private_key(creds["private_key"]))
        else:
            transport.auth_password(creds["username"], creds.get("password", ""))
        if not transport.is_authenticated():
            raise TransferError(f"authentication to {where} failed")
    except paramiko.AuthenticationException:
        transport.close()
        raise TransferError(f"authentication to {where} failed") from None
    except TimeoutError as exc:
        transport.close()
        raise ConnectionTimeoutError(f"{where} timed out: {exc}") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        if deadline.expired:
            raise deadline.error(f"SSH with {where}") from None
        raise TransferError(f"SSH with {where} failed: {type(exc).__name__}: {str(exc)[:300]}") from None
    except BaseException:
        transport.close()
        raise
    return transport


def _windows(handle: paramiko.SFTPFile, read_size: int, deadline: confine.Deadline) -> Iterator[bytes]:
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
            deadline.check("reading over sftp")
            got += len(data)
            yield data
        if got != end - offset:
            raise TransferError(f"the file ended at {offset + got} bytes while the server said {size}")
        offset = end


def read_chunks(
    source: confine.Source,
    provider: dict[str, Any],
    creds: dict[str, str] | None,
    limit: int,
    window: int | None = None,
) -> Iterator[bytes]:
    """The bytes of the checked ``source`` in chunks, over one SSH connection held for the duration (a generator)."""
    import paramiko

    shown = f"sftp://{source.authority}{source.path}"[:300]
    deadline = confine.Deadline()
    try:
        with confine.slot(provider, limit):
            ips = confine.addresses(source, provider)
            transport = _connect(source, ips, provider, creds, deadline)
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
                if sftp is None:
                    raise TransferError(f"{source.authority} refused the sftp subsystem")
                sftp.get_channel().settimeout(deadline.timeout(READ_TIMEOUT, f"reading {shown}"))  # type: ignore[union-attr]
                try:
                    handle = sftp.open(source.path, "rb")
                except FileNotFoundError:
                    raise FileNotFoundAtSourceError(f"{shown!r} does not exist at the provider") from None
                with handle:
                    yield from _windows(handle, window or WINDOW, deadline)
                deadline.check(f"reading {shown}")
            except TimeoutError as exc:
                if deadline.expired:
                    raise deadline.error(f"reading {shown}") from None
                raise ConnectionTimeoutError(f"{shown!r} timed out while reading: {exc}") from None
            except (paramiko.SSHException, EOFError, OSError) as exc:
                if deadline.expired:
                    raise deadline.error(f"reading {shown}") from None
                raise TransferError(f"reading {shown!r} failed: {type(exc).__name__}: {str(exc)[:300]}") from None
            finally:
                transport.close()
    finally:
        deadline.close()
