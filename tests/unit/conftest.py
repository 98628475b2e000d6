"""The unit tier is pure: no emulator (tests/conftest.py refuses those fixtures here) and no network."""

from __future__ import annotations

import socket

import pytest

INTERNET = (socket.AF_INET, socket.AF_INET6)
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any name lookup or internet connection from a unit test fails (a boto3 client without moto would reach AWS)."""
    real_getaddrinfo = socket.getaddrinfo

    def lookup(host, *args, **kwargs):
        if host is not None and str(host) not in LOOPBACK_NAMES:
            raise OSError(f"unit tests do not reach the network (lookup of {host!r}): move it to tests/functional/")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    for name in ("connect", "connect_ex"):
        real = getattr(socket.socket, name)

        def refuse(sock: socket.socket, address, _real=real):
            if sock.family in INTERNET:
                raise OSError(f"unit tests do not reach the network ({address!r}): move this test to tests/functional/")
            return _real(sock, address)

        monkeypatch.setattr(socket.socket, name, refuse)
