"""A provider's side for the provider-read tests: hostile http and https servers on loopback that count
every connection they accept and record every request, a self-signed certificate authority, and a
resolver stub (``socket.getaddrinfo``) for names that must resolve to loopback.

A server's routes are the hostile behaviours of tests/functional/workflow/test_provider_reads.py:
content encoding, drip, stall, redirects of every kind, chunked bodies of the wrong length, a body
shorter than its Content-Length, HTTP/0.9, and a file that needs HTTP Basic.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAME = "files.provider.test"  # the provider's host name (the resolver stub maps it to loopback)
USER, PASSWORD = "alice", "pw-7c1e-S3CRET-never-logged"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
DATA = bytes(range(256)) * 4 + b"tail"  # a provider's file
SECRET = b"provider B's secret file"
RAW_GZ = gzip.compress(b"\0" * 65536)  # a .gz file as stored: 65,536 bytes once decoded


def certificate_authority(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for NAME and 127.0.0.1; returns (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cnm-ingest test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))  # names in lower case
        path = self.path
        route = self._routes().get(path)
        redirects = self._redirects()
        if route is not None:
            route()
        elif path in redirects:
            self.send(301 if "port" in path else 302, headers={"Location": redirects[path]})
        else:
            self.send(404)

    def _routes(self) -> dict[str, Callable[[], None]]:
        """The files and the hostile answers, by request path."""
        return {
            "/provider-a/file.bin": lambda: self.send(200, DATA),
            "/provider-b/secret.bin": lambda: self.send(200, SECRET),
            "/provider-a/gz.nc.gz": lambda: self.send(
                200, RAW_GZ, {"Content-Encoding": "gzip", "Content-Type": "application/gzip"}
            ),
            "/provider-a/auth.bin": self._basic_auth,
            "/provider-a/drip.bin": self._drip,
            "/provider-a/stall.bin": self._stall,
            "/provider-a/chunked-wrong": self._chunked_too_long,
            "/provider-a/chunked-truncated": lambda: self.raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + f"{len(DATA):x}\r\n".encode()
                + DATA[:100]
            ),
            "/provider-a/short": lambda: self.raw(
                f"HTTP/1.1 200 OK\r\nContent-Length: {len(DATA)}\r\nConnection: close\r\n\r\n".encode() + DATA[:100]
            ),
            "/provider-a/http09": lambda: self.raw(DATA),
        }

    def _redirects(self) -> dict[str, str]:
        """Where each redirecting path sends the client (301 for the one to another port, else 302)."""
        srv = self.server
        here = f"{srv.scheme}://{NAME}:{srv.port}"
        return {
            "/provider-a/redirect-ok": "/provider-a/file.bin",
            "/provider-a/redirect-port": f"{srv.scheme}://{NAME}:{srv.port + 1}/provider-a/file.bin",
            "/provider-a/redirect-http": f"http://{NAME}:{srv.port}/provider-a/file.bin",
            "/provider-a/redirect-file": "file:///etc/passwd",
            "/provider-a/redirect-loop": "/provider-a/redirect-loop",
            "/provider-a/redirect-prefix": "/provider-b/secret.bin",
            "/provider-a/redirect-host": f"{srv.scheme}://evil.test:{srv.port}/provider-a/file.bin",
            "/provider-a/redirect-userinfo": f"{srv.scheme}://{USER}:{PASSWORD}@{NAME}:{srv.port}/provider-a/file.bin",
            "/provider-a/redirect-metadata": "http://169.254.169.254/latest/meta-data/",
            "/provider-a/redirect-dotdot": f"{here}/provider-a/%2e%2e/provider-b/secret.bin",
        }

    def _basic_auth(self) -> None:
        if self.headers.get("Authorization") == BASIC:
            self.send(200, DATA)
        else:
            self.send(401, headers={"WWW-Authenticate": "Basic"})

    def _drip(self) -> None:
        """The file one byte every 50 ms (until the client hangs up)."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        for b in DATA:
            try:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)

    def _stall(self) -> None:
        """The headers, then 8 s without a byte."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        self.wfile.flush()
        time.sleep(8)

    def _chunked_too_long(self) -> None:
        """A chunked body longer than the file."""
        body = DATA + b"and more"
        self.raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n\r\n"
        )


class Server(http.server.ThreadingHTTPServer):
    """A counting http (or, with a certificate, https) server on 127.0.0.1."""

    daemon_threads = True

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.accepted = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.scheme = "https" if tls else "http"
        self.port = self.server_address[1]
        self.context: ssl.SSLContext | None = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(str(tls[0]), str(tls[1]))
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        with self.lock:
            self.accepted += 1
        if self.context is not None:  # the handshake happens in the handler's thread
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (refused redirect, deadline) is expected here

    def reset(self) -> None:
        with self.lock:
            self.accepted = 0
            self.requests.clear()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Resolver:
    """``socket.getaddrinfo`` for ``names``: each lookup of a name takes its next answer (the last one
    repeats), and is recorded; other names are looked up for real."""

    def __init__(self, real: Any, names: dict[str, list[list[str]]]) -> None:
        self.real, self.names = real, {k: list(v) for k, v in names.items()}
        self.lookups: list[str] = []

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        key = str(host).lower().rstrip(".")
        if key not in self.names:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(key)
        answers = self.names[key]
        ips = answers.pop(0) if len(answers) > 1 else answers[0]
        out = []
        for ip in ips:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            out.append((family, socket.SOCK_STREAM, 6, "", (ip, int(port or 0))))
        return out
