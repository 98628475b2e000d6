"""Where, how and for how long a provider's file may be read: one rule for every protocol.

:func:`check` is the confinement rule of every file URI (``s3``, ``http``,
``https``, ``sftp``), applied before any network call by SyncGranule
(:func:`cnm_ingest.workflow.sync_granule.check_source`) and again to every redirect:

- the scheme (case-insensitive) is the provider's declared ``protocol``
  (``s3`` when not given), so an https or sftp provider is never read over
  plain http, and its credentials never travel another way;
- the host is the provider's ``host``: compared in canonical form (lower
  case, one trailing dot dropped, IP literals in their canonical text,
  ``[::1]`` as ``::1``). A host that is not ASCII (write its IDNA ``xn--``
  form), a numeric host in another form than the canonical one
  (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``), a zone id
  (``%eth0``) and user info (``user:pw@``) are refused;
- the port is the provider's ``port``, or the scheme's default when the
  provider has none (80, 443, 22); a URI without a port means the default;
- the path (http, https, sftp) is absolute, percent-decoded once as UTF-8,
  and refused when it has an empty segment (``//``, a trailing ``/``), a
  ``.`` or ``..`` segment (also as ``%2e%2e`` or ``..;x``), an encoded
  ``/``, ``\\`` or NUL, a ``\\``, a control character, or an escape left
  after decoding (``%252e``). When the provider lists ``allowed_prefixes``
  it must lie in one of those folders (``data`` allows ``/data/x``, not
  ``/database/x``). What is requested is that decoded path, percent-encoded
  again (:attr:`Source.target`): the server is asked for exactly the path
  that was checked;
- a query (``?``) or fragment (``#``) is refused for http, https and sftp:
  confinement is on the path, and a query could name another file to a
  server-side script. (In ``s3://`` URIs they are literal key characters,
  as S3 names objects: see :func:`cnm_ingest.workflow.translate_message.split_s3_uri`.)

Anything else is a :class:`~cnm_ingest.errors.CnmValidationError`
(VALIDATION_ERROR) whose message gives the reason; a provider whose
configuration is unusable (no host, http with credentials, a bad
``allowed_networks``) is a :class:`~cnm_ingest.errors.ConfigurationError`.
Messages never quote user info or a query (:func:`redact`).

:func:`addresses` is the address rule: the host is resolved once and every
address it resolves to must be public, unless one of the provider's
``allowed_networks`` (CIDRs) contains it: loopback, private (RFC 1918, ULA),
CGNAT (100.64/10), link-local (169.254/16, fe80::/10, the instance metadata
service), unspecified, multicast, reserved and documentation ranges, and
those same addresses written as IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4
IPv6 are refused (:class:`~cnm_ingest.errors.AddressNotAllowedError`,
VALIDATION_ERROR, no connection made). ``allowed_networks`` can never
include link-local (the metadata service). The caller then connects to one
of the checked addresses itself (never to the name again), so DNS rebinding
(a second answer that differs from the first) has nothing to act on.

:class:`Deadline` bounds a whole transfer: connect and per-read timeouts are
cut to what remains, and a watchdog shuts the socket down when it passes, so
a server that drips one byte at a time or stalls ends in a
:class:`~cnm_ingest.errors.ConnectionTimeoutError` (TRANSFER_ERROR,
retried by the workflow) before the invocation's own timeout.
:func:`provider_reads` sets it for the reads made inside it (the
SyncGranule handler derives it from the Lambda context), and keeps each
host's checked addresses for the invocation.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from cnm_ingest.errors import (
    AddressNotAllowedError,
    CnmValidationError,
    ConfigurationError,
    ConnectionTimeoutError,
    TransferError,
)
from cnm_ingest.workflow.translate_message import split_s3_uri

PROTOCOLS = ("s3", "http", "https", "sftp")
DEFAULT_PORTS = {"http": 80, "https": 443, "sftp": 22}
URI_PATH = "$.product.files[].uri"
# Never allowed, whatever allowed_networks says: link-local (the instance metadata service is there).
NEVER = tuple(ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::/32"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
_ENCODED_SEPARATORS = re.compile(r"%(2f|5c|00)", re.IGNORECASE)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Source:
    """A checked file location: what to connect to and what to ask for."""

    scheme: str
    host: str  # canonical host name or IP (s3: the bucket)
    port: int | None  # None for s3
    path: str  # http(s)/sftp: the decoded absolute path; s3: the key, literal
    target: str  # http(s): the request target (path percent-encoded again); sftp: the path; s3: the key

    @property
    def authority(self) -> str:
        """``host[:port]`` as the Host header writes it (the default port left out, IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port in (None, DEFAULT_PORTS.get(self.scheme)) else f"{host}:{self.port}"


def redact(uri: Any, limit: int = 300) -> str:
    """``uri`` for an error message: user info, query and fragment replaced by ``***``, cut to ``limit``."""
    text = str(uri)
    try:
        parts = urlsplit(text)
    except ValueError:
        return repr(text[:limit])
    if parts.scheme.lower() == "s3":
        return repr(text[:limit])
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    out = f"{parts.scheme}://{netloc}{parts.path}"
    out += "?***" if parts.query or "?" in text else ""
    out += "#***" if parts.fragment or "#" in text else ""
    return repr(out[:limit])


def _refuse(uri: Any, reason: str) -> CnmValidationError:
    return CnmValidationError(f"{redact(uri)} is refused: {reason}", URI_PATH)


# --- the provider's side ------------------------------------------------------------------------------


def protocol(provider: dict[str, Any]) -> str:
    """The provider's declared ``protocol`` (``s3`` when not given)."""
    value = provider.get("protocol") or "s3"
    if not isinstance(value, str) or value.lower() not in PROTOCOLS:
        raise ConfigurationError(
            f"provider {provider.get('id')!r}'s protocol must be one of {PROTOCOLS}, not {value!r}"
        )
    return value.lower()


def canonical_host(text: Any) -> str:
    """``text`` as a host compares: lower case, without one trailing dot, IP literals canonical.

    Raises ValueError for anything that is not an ASCII DNS name or a canonical IP literal.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("no host")
    host = text.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if "%" in host:
            raise ValueError("an IPv6 zone id is not a host")
        return ipaddress.IPv6Address(host).compressed
    if "%" in host:
        raise ValueError("a zone id is not a host")
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).compressed
    host = host[:-1] if host.endswith(".") else host
    if not host.isascii():
        raise ValueError("a host name must be ASCII (write its IDNA 'xn--' form)")
    if not _DNS_NAME.match(host):
        raise ValueError("not a DNS host name")
    if host.rsplit(".", 1)[-1].isdigit() or _inet_aton(host):
        raise ValueError("a numeric host must be a canonical IP address (no decimal, octal, hex or short forms)")
    return host


def _inet_aton(host: str) -> bool:
    """True when the C resolver would read ``host`` as an IPv4 address (``0x7f000001``, ``127.1``, ...)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def provider_host(provider: dict[str, Any]) -> str:
    host = provider.get("host")
    if protocol(provider) == "s3":
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"provider {provider.get('id')!r} has no host (bucket) to confine sources to")
        return host
    try:
        return canonical_host(host)
    except ValueError as exc:
        raise ConfigurationError(f"provider {provider.get('id')!r}'s host {host!r} is unusable: {exc}") from None


def provider_port(provider: dict[str, Any]) -> int:
    scheme = protocol(provider)
    port = provider.get("port")
    if port is None:
        return DEFAULT_PORTS[scheme]
    if isinstance(port, float) and port.is_integer():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigurationError(f"provider {provider.get('id')!r}'s port must be 1-65535, not {port!r}")
    return port


def allowed_prefixes(provider: dict[str, Any]) -> list[str]:
    """The provider's ``allowed_prefixes`` as folders (``"a/b/"``); empty = anywhere on the host."""
    prefixes = provider.get("allowed_prefixes")
    if prefixes is None:
        return []
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise ConfigurationError(
            f"provider {provider.get('id')!r}'s allowed_prefixes must be a list of strings, not {prefixes!r}"
        )
    folders = [p.strip("/") + "/" for p in prefixes if p.strip("/")]
    for folder in folders:
        if any(seg in ("", ".", "..") for seg in folder[:-1].split("/")):
            raise ConfigurationError(f"provider {provider.get('id')!r}'s allowed prefix {folder!r} is not a plain path")
    return folders


def allowed_networks(provider: dict[str, Any]) -> list[IPNetwork]:
    """The provider's ``allowed_networks`` (CIDRs its host may resolve into besides public addresses)."""
    entries = provider.get("allowed_networks")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigurationError(f"provider {provider.get('id')!r}'s allowed_networks must be a list of CIDRs")
    networks = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry, strict=True) if isinstance(entry, str) else None
        except ValueError:
            network = None
        if network is None:
            raise ConfigurationError(
                f"provider {provider.get('id')!r}'s allowed_networks entry {entry!r} is not a CIDR like 10.1.0.0/16"
            )
        if any(network.overlaps(never) for never in NEVER if never.version == network.version):
            raise ConfigurationError(
                f"provider {provider.get('id')!r}'s allowed_networks entry {entry!r} overlaps link-local "
                "(the instance metadata service), which is never allowed"
            )
        networks.append(network)
    return networks


def check_provider(provider: dict[str, Any]) -> None:
    """Raise ConfigurationError when the provider's read settings are unusable (no network call)."""
    scheme = protocol(provider)
    allowed_prefixes(provider)
    if scheme != "s3":
        provider_host(provider)
        provider_port(provider)
        allowed_networks(provider)
    if scheme == "http" and provider.get("credentials_secret_arn"):
        raise ConfigurationError(
            f"provider {provider.get('id')!r} declares protocol http with credentials: credentials never "
            "travel over plain http (declare https)"
        )


# --- the URI's side -----------------------------------------------------------------------------------


def check(uri: Any, provider: dict[str, Any]) -> Source:
    """The file location ``uri`` names, when the provider may be read there (see the module docstring).

    Raises CnmValidationError (the URI) or ConfigurationError (the provider). No network call.
    """
    check_provider(provider)
    scheme = protocol(provider)
    if not isinstance(uri, str) or not uri:
        raise _refuse(uri, "not a URI")
    given = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if given != scheme:
        raise _refuse(uri, f"provider {provider.get('id')!r} declares protocol {scheme!r}, this is {given!r}")
    if scheme == "s3":
        return _check_s3(uri, provider)
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise _refuse(uri, "it has a space or control character")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise _refuse(uri, f"it does not parse ({exc})") from None
    if parts.scheme.lower() != scheme or not uri[len(scheme) :].startswith("://"):
        raise _refuse(uri, f"it is not a {scheme}:// URI")
    if "\\" in uri:
        raise _refuse(uri, "it has a '\\'")
    if "?" in uri or "#" in uri:
        raise _refuse(uri, "a query ('?') or fragment ('#') is not allowed")
    if "@" in parts.netloc:
        raise _refuse(uri, "credentials (user info) in a URI are not allowed")
    try:
        host = canonical_host(parts.hostname)
    except ValueError as exc:
        raise _refuse(uri, f"its host is unusable: {exc}") from None
    if host != provider_host(provider):
        raise _refuse(uri, f"it is not on provider {provider.get('id')!r}'s host {provider_host(provider)!r}")
    try:
        port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    except ValueError:
        raise _refuse(uri, "its port is not a number from 1 to 65535") from None
    if port != provider_port(provider):
        raise _refuse(uri, f"port {port} is not provider {provider.get('id')!r}'s port {provider_port(provider)}")
    path = _check_path(uri, parts.path, provider)
    target = path if scheme == "sftp" else quote(path, safe="/")
    return Source(scheme, host, port, path, target)


def _check_path(uri: str, raw: str, provider: dict[str, Any]) -> str:
    if not raw.startswith("/"):
        raise _refuse(uri, "it has no absolute path")
    if _ENCODED_SEPARATORS.search(raw):
        raise _refuse(uri, "an encoded '/', '\\' or NUL is not allowed in a path")
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _refuse(uri, "its path is not UTF-8 once percent-decoded") from None
    if unquote(path) != path:
        raise _refuse(uri, "its path is percent-encoded twice")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path) or "\\" in path:
        raise _refuse(uri, "its path has a control character or '\\'")
    segments = path[1:].split("/")
    if any(seg == "" for seg in segments):
        raise _refuse(uri, "its path has an empty segment ('//' or a trailing '/')")
    if any(seg.split(";", 1)[0] in (".", "..") for seg in segments):
        raise _refuse(uri, "its path has a '.' or '..' segment")
    folders = allowed_prefixes(provider)
    if folders and not any(path.startswith("/" + folder) for folder in folders):
        raise _refuse(uri, f"it is outside provider {provider.get('id')!r}'s allowed prefixes")
    return path


def _check_s3(uri: str, provider: dict[str, Any]) -> Source:
    bucket, key = split_s3_uri(uri)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(uri, "it is not valid Unicode text") from None
    host = provider.get("host")
    if not isinstance(host, str) or not host:
        raise _refuse(uri, f"provider {provider.get('id')!r} has no bucket (host) to read from")
    if bucket != host:
        raise _refuse(uri, f"it is not in provider {provider.get('id')!r}'s bucket {host!r}")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise _refuse(uri, "it has a '.' or '..' path segment")
    folders = allowed_prefixes(provider)
    if folders and not any(key.startswith(folder) for folder in folders):
        raise _refuse(uri, f"it is outside provider {provider.get('id')!r}'s allowed prefixes")
    return Source("s3", bucket, None, key, key)


# --- addresses ----------------------------------------------------------------------------------------


def _embedded(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64, 6to4), else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def why_not_public(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (None when it is).

    An IPv6 form of an IPv4 address (mapped, NAT64, 6to4) is judged as that IPv4 address.
    """
    candidate = _embedded(ip)
    for what, test in (
        ("unspecified", candidate.is_unspecified),
        ("loopback", candidate.is_loopback),
        ("link-local", candidate.is_link_local),
        ("multicast", candidate.is_multicast),
        ("CGNAT", isinstance(candidate, ipaddress.IPv4Address) and candidate in _CGNAT),
        ("private", candidate.is_private),
        ("reserved", candidate.is_reserved),
        ("not globally routable", not candidate.is_global),
    ):
        if test:
            return what
    return None


def address_allowed(ip: IPAddress, networks: list[IPNetwork]) -> str | None:
    """None when ``ip`` may be connected to; else why not."""
    for candidate in {ip, _embedded(ip)}:
        if any(candidate in never for never in NEVER if never.version == candidate.version):
            return "link-local (never allowed)"
    why = why_not_public(ip)
    if why is None:
        return None
    if any(ip in n or _embedded(ip) in n for n in networks if n.version in (ip.version, _embedded(ip).version)):
        return None
    return why


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to (one lookup); an IP literal is itself."""
    with contextlib.suppress(ValueError):
        return [ipaddress.ip_address(host)]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransferError(f"cannot resolve {host!r}: {exc}") from None
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


def addresses(source: Source, provider: dict[str, Any]) -> list[str]:
    """The checked addresses to connect to for ``source`` (IPv4 first): resolved once, every one allowed.

    Raises AddressNotAllowedError when any address the host resolves to is not
    allowed (a name with one bad answer is refused, not filtered). Inside
    :func:`provider_reads` the answer is kept for the rest of the invocation:
    SyncGranule checks every file's addresses before its first S3 call, and
    the transfer later connects to exactly those (no second lookup).
    """
    memo = _checked.get()
    key = (str(provider.get("id")), source.host, source.port or 0, tuple(allowed_networks(provider)))
    if memo is not None and key in memo:
        return list(memo[key])
    found = _check_addresses(source, provider)
    if memo is not None:
        memo[key] = tuple(found)
    return found


def _check_addresses(source: Source, provider: dict[str, Any]) -> list[str]:
    networks = allowed_networks(provider)
    found = resolve(source.host, source.port or 0)
    if not found:
        raise AddressNotAllowedError(f"{source.host!r} resolves to no address")
    for ip in found:
        why = address_allowed(ip, networks)
        if why is not None:
            raise AddressNotAllowedError(
                f"{source.host!r} resolves to {ip} ({why}), which provider {provider.get('id')!r}'s "
                "allowed_networks do not include; no connection was made"
            )
    return [str(ip) for ip in sorted(found, key=lambda ip: ip.version)]


def connect(ips: list[str], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first of the checked ``ips`` that answers (never to a name)."""
    error: OSError | None = None
    for ip in ips:
        try:
            return socket.create_connection((ip, port), timeout=timeout)
        except OSError as exc:
            error = exc
    assert error is not None
    raise error


# --- deadline -----------------------------------------------------------------------------------------

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("cnm_ingest_transfer_deadline", default=None)
_checked: contextvars.ContextVar[dict[tuple[Any, ...], tuple[str, ...]] | None] = contextvars.ContextVar(
    "cnm_ingest_checked_addresses", default=None
)
CLEANUP_SHARE, MIN_CLEANUP_SECONDS = 0.15, 5.0


def deadline_for(remaining_ms: int) -> float:
    """Seconds a transfer may take when the invocation has ``remaining_ms`` left: the rest is kept for
    cleanup (aborting an upload, deleting temporary objects) and answering, at least MIN_CLEANUP_SECONDS
    or CLEANUP_SHARE of the remaining time."""
    remaining = max(0.0, remaining_ms / 1000)
    return max(0.0, remaining - max(MIN_CLEANUP_SECONDS, CLEANUP_SHARE * remaining))


@contextlib.contextmanager
def provider_reads(seconds: float) -> Iterator[None]:
    """The provider reads of one invocation: those started inside this block end at the latest ``seconds``
    from now, and a host's checked addresses (:func:`addresses`) are kept until the block ends."""
    token = _deadline.set(time.monotonic() + seconds)
    checked = _checked.set({})
    try:
        yield
    finally:
        _checked.reset(checked)
        _deadline.reset(token)


class Deadline:
    """The end of one transfer (monotonic time; None = no overall bound)."""

    def __init__(self, at: float | None = None) -> None:
        self.at = _deadline.get() if at is None else at
        self.expired = False
        self._timers: list[threading.Timer] = []

    def remaining(self) -> float:
        return float("inf") if self.at is None else self.at - time.monotonic()

    def timeout(self, limit: float, what: str) -> float:
        """``limit`` cut to what remains; ConnectionTimeoutError when nothing does."""
        left = self.remaining()
        if left <= 0:
            self.expired = True
            raise self.error(what)
        return min(limit, left)

    def error(self, what: str) -> ConnectionTimeoutError:
        return ConnectionTimeoutError(f"{what}: the transfer's deadline passed (the invocation's time, less a margin)")

    def check(self, what: str) -> None:
        if self.expired or self.remaining() <= 0:
            self.expired = True
            raise self.error(what)

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the deadline passes (a read blocked on it then ends)."""
        if self.at is None:
            return

        def fire() -> None:
            self.expired = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(max(0.0, self.remaining()), fire)
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


# --- connections per provider -------------------------------------------------------------------------

_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def slot(provider: dict[str, Any], limit: int) -> threading.BoundedSemaphore:
    """The semaphore bounding this process's connections to the provider to ``limit`` (others wait)."""
    key = (str(provider.get("id") or provider.get("host")), limit)
    with _slots_lock:
        return _slots.setdefault(key, threading.BoundedSemaphore(limit))
