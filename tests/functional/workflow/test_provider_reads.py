"""Provider reads under hostile input (issue 18): one confinement rule for every protocol, credentials only
over the declared protocol, the address connected is the address checked, byte-exact transfers bounded
by a deadline, checksums checked for form at intake, and secrets that never leave.

The provider's side is ours, on loopback: an http and an https server (a test CA, trusted through
SSL_CERT_FILE) that count every connection they accept and record every request
(tests/functional/provider_servers.py), an sftp server (paramiko), and a resolver stub that makes the
provider's name ``files.provider.test`` resolve to loopback (or to what a case needs). Every S3 call
SyncGranule makes is counted (a botocore hook on the client it uses). On the applied examples/complete:
its staging bucket, SyncGranule's deployed environment, and, for the cases that span tasks, its state
machine (TranslateMessage -> SyncGranule -> CnmResponse) with the provider written to its providers table.

Set PROVIDER_READS_TABLE=<path> to get the hostile-case table (calls made, outcome, error code) written there.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import paramiko
import pytest

from cnm_ingest.errors import error_code_for
from cnm_ingest.transfer import sources
from tests.functional.compat.test_sftp_source import HOST_KEY, OTHER_KEY, Stats, known, make_sftp_server
from tests.functional.provider_servers import (
    BASIC,
    DATA,
    NAME,
    PASSWORD,
    RAW_GZ,
    USER,
    Resolver,
    Server,
    certificate_authority,
)

SFTP_PASSWORD = "sftp-pw-91d3-NEVER-logged"
CLIENT_KEY = paramiko.ECDSAKey.generate()
ROWS: list[dict[str, Any]] = []


# --- the provider's side --------------------------------------------------------------------------------


class SftpAuth(paramiko.ServerInterface):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        self.stats.auth_attempts.append(("password", username))
        return paramiko.AUTH_SUCCESSFUL if (username, password) == (USER, SFTP_PASSWORD) else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.stats.auth_attempts.append(("publickey", username))
        return paramiko.AUTH_SUCCESSFUL if key.asbytes() == CLIENT_KEY.asbytes() else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ca, cert, key = certificate_authority(tmp_path_factory.mktemp("tls"))
    plain, tls = Server(), Server((cert, key))
    root = tmp_path_factory.mktemp("sftp-root")
    (root / "data").mkdir()
    (root / "data" / "file.bin").write_bytes(DATA)
    (root / "other").mkdir()
    (root / "other" / "secret.bin").write_bytes(b"not this provider's")
    stats = Stats()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with stats.lock:
                stats.connections += 1
            t = paramiko.Transport(conn)
            t.add_server_key(HOST_KEY)
            t.set_subsystem_handler("sftp", paramiko.SFTPServer, make_sftp_server(str(root), stats))
            transports.append(t)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                t.start_server(server=SftpAuth(stats))

    threading.Thread(target=serve, daemon=True).start()
    yield SimpleNamespace(http=plain, https=tls, ca=ca, sftp=stats, sftp_port=listener.getsockname()[1])
    listener.close()
    for t in transports:
        t.close()
    plain.stop()
    tls.stop()


@dataclass
class Calls:
    """What one case cost: connections each server accepted, requests, name lookups, S3 calls by SyncGranule."""

    s3: Counter = field(default_factory=Counter)
    connects: list[tuple[str, int]] = field(default_factory=list)  # every TCP connect SyncGranule's code tried


@pytest.fixture
def world(wf, servers, monkeypatch):
    """The provider's servers (counters reset), the resolver stub, the test CA trusted, the providers'
    secrets in Secrets Manager, and a count of SyncGranule's S3 calls (only while it runs)."""
    for srv in (servers.http, servers.https):
        srv.reset()
    stats = servers.sftp
    stats.connections, stats.auth_attempts[:] = 0, []
    resolver = Resolver(socket.getaddrinfo, {NAME: [["127.0.0.1"]]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca))
    sources._secrets.clear()
    sm = wf.world.client("secretsmanager")
    secret = sm.create_secret(Name="provider-https", SecretString=json.dumps({"username": USER, "password": PASSWORD}))
    buf = io.StringIO()
    CLIENT_KEY.write_private_key(buf)
    sftp_secret = sm.create_secret(
        Name="provider-sftp", SecretString=json.dumps({"username": USER, "password": SFTP_PASSWORD})
    )
    wrong = sm.create_secret(Name="provider-wrong", SecretString=json.dumps({"username": USER, "password": "guess"}))
    calls = Calls()
    sync_fn = wf.world.function("sync_granule").name

    from botocore.client import BaseClient

    real_call = BaseClient._make_api_call

    def counted(client, operation, params):
        if client.meta.service_model.service_name == "s3" and os.environ.get("AWS_LAMBDA_FUNCTION_NAME") == sync_fn:
            calls.s3.update([operation])
        return real_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    real_connect = socket.socket.connect
    aws_port = urlsplit(wf.world.endpoint).port

    def connect(sock, address, _real=real_connect):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[1] != aws_port:
            calls.connects.append((address[0], address[1]))
            if not ipaddress.ip_address(address[0]).is_loopback:  # nothing leaves this machine
                raise ConnectionRefusedError(f"test network: {address[0]} is not reachable")
        return _real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    base = {"host": NAME, "allowed_networks": ["127.0.0.0/8"]}
    providers = {
        "https": {**base, "id": "HTTPS_P", "protocol": "https", "port": servers.https.port,
                  "allowed_prefixes": ["provider-a"], "credentials_secret_arn": secret["ARN"]},
        "http": {**base, "id": "HTTP_P", "protocol": "http", "port": servers.http.port,
                 "allowed_prefixes": ["provider-a"]},
        "sftp": {**base, "id": "SFTP_P", "protocol": "sftp", "port": servers.sftp_port, "host_key": [known(HOST_KEY)],
                 "allowed_prefixes": ["data"], "credentials_secret_arn": sftp_secret["ARN"]},
        "s3": {"id": "S3_P", "protocol": "s3", "host": wf.provider_bucket, "allowed_prefixes": ["provider-a"]},
    }  # fmt: skip
    return SimpleNamespace(
        wf=wf, servers=servers, resolver=resolver, calls=calls, providers=providers, wrong_secret=wrong["ARN"]
    )


def connections(world) -> dict[str, int]:
    s = world.servers
    return {"http": s.http.accepted, "https": s.https.accepted, "sftp": s.sftp.connections}


def cnm_file(uri: str, data: bytes = DATA, name: str = "file.bin", **kw: Any) -> dict[str, Any]:
    return {
        "type": "data",
        "uri": uri,
        "name": name,
        "size": len(data),
        "checksumType": "SHA256",
        "checksum": hashlib.sha256(data).hexdigest(),
        **kw,
    }


def sync_message(world, provider: dict[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
    """The workflow message SyncGranule gets: granule files as TranslateMessage makes them (built here, so a
    case can also give SyncGranule what TranslateMessage would refuse, as a crafted payload would)."""
    collection = {"name": "C", "version": "1", "url_path": "reads/{granuleId}", "duplicate_handling": "replace"}
    meta = {
        "stack": "st",
        "buckets": {"private": {"name": world.wf.staging_bucket, "type": "private"}},
        "collection": collection,
        "provider": {"id": provider["id"], "config": {k: v for k, v in provider.items() if k != "id"}},
    }
    gfiles = [
        {
            "name": f["name"],
            "bucket": None,
            "key": None,
            "source": f["uri"],
            "size": f["size"],
            "checksumType": f["checksumType"],
            "checksum": f["checksum"],
            "type": f["type"],
        }
        for f in files
    ]
    granule_ = {"granuleId": "G1", "producerGranuleId": "G1", "dataType": "C", "version": "1", "files": gfiles}
    return {"meta": meta, "payload": {"granules": [granule_]}}


def staged(world) -> dict[str, bytes]:
    s3 = world.wf.s3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=world.wf.staging_bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=world.wf.staging_bucket, Key=k)["Body"].read() for k in keys}


def run_sync(world, message: dict[str, Any], remaining_ms: int = 300_000) -> tuple[str, str, str, float]:
    """SyncGranule's deployed handler on ``message``, with a Lambda context that has ``remaining_ms`` left:
    (outcome, error name, error code, seconds)."""
    from tests.conftest import FakeLambdaContext

    class Context(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return remaining_ms

    started = time.monotonic()
    with world.wf.env("sync_granule"):
        handler = world.wf.world.handler("sync_granule")
        try:
            handler({"message": message, "execution": {"name": "exec-reads"}}, Context())
        except Exception as exc:
            return "FAILURE", type(exc).__name__, error_code_for(type(exc).__name__), time.monotonic() - started
    return "SUCCESS", "", "", time.monotonic() - started


# --- the hostile cases, SyncGranule's handler ----------------------------------------------------------------


@dataclass
class Case:
    provider: str  # https | http | sftp | s3
    uri: str  # {https} {http} {sftp} {name} are filled in
    error: str = ""  # the error name; "" = SUCCESS
    connects: dict[str, int] = field(default_factory=dict)  # server -> connections accepted (others: 0)
    data: bytes = DATA
    change: dict[str, Any] = field(default_factory=dict)  # provider config changes
    answers: list[list[str]] | None = None  # the resolver's answers for NAME, in turn
    file: dict[str, Any] = field(default_factory=dict)  # CNM file changes
    remaining_ms: int = 300_000
    staged: bytes | None = None  # the bytes staged on SUCCESS (default: data)


HTTPS, HTTP, SFTP = "https://{name}:{https}", "http://{name}:{http}", "sftp://{name}:{sftp}"
A = "/provider-a"
CASES: dict[str, Case] = {
    # the rule: scheme = declared protocol, host, port, path under allowed_prefixes; 0 connections when refused
    "https: a file under its prefix": Case("https", HTTPS + A + "/file.bin", connects={"https": 1}),
    "https: upper-case scheme and host, trailing dot": Case(
        "https", "HTTPS://FILES.PROVIDER.TEST.:{https}" + A + "/file.bin", connects={"https": 1}
    ),
    "https: another provider's prefix": Case("https", HTTPS + "/provider-b/secret.bin", "CnmValidationError"),
    "https: prefix look-alike": Case("https", HTTPS + "/provider-a-b/secret.bin", "CnmValidationError"),
    "https: ../ climb": Case("https", HTTPS + A + "/../provider-b/secret.bin", "CnmValidationError"),
    "https: %2e%2e climb": Case("https", HTTPS + A + "/%2e%2e/provider-b/secret.bin", "CnmValidationError"),
    "https: %252e%252e (double encoded)": Case("https", HTTPS + A + "/%252e%252e/x", "CnmValidationError"),
    "https: ..;/ (path parameter)": Case("https", HTTPS + A + "/..;/provider-b/secret.bin", "CnmValidationError"),
    "https: %2F encoded slash": Case("https", HTTPS + A + "%2F..%2Fprovider-b/secret.bin", "CnmValidationError"),
    "https: // empty segment": Case("https", HTTPS + "/" + A + "/file.bin", "CnmValidationError"),
    "https: backslash": Case("https", HTTPS + A + "\\..\\provider-b\\secret.bin", "CnmValidationError"),
    "https: query": Case("https", HTTPS + A + "/file.bin?f=../provider-b/secret.bin", "CnmValidationError"),
    "https: fragment": Case("https", HTTPS + A + "/file.bin#x", "CnmValidationError"),
    "https: user info with a password": Case(
        "https", "https://" + USER + ":" + PASSWORD + "@{name}:{https}" + A + "/file.bin", "CnmValidationError"
    ),
    "https: another port of the host": Case("https", "https://{name}:{http}" + A + "/file.bin", "CnmValidationError"),
    "https: default port (not the provider's)": Case("https", "https://{name}" + A + "/file.bin", "CnmValidationError"),
    "https: plain http downgrade (credentials)": Case("https", HTTP + A + "/file.bin", "CnmValidationError"),
    "https: sftp scheme": Case("https", SFTP + A + "/file.bin", "CnmValidationError"),
    "https: decimal IP host 2130706433": Case("https", "https://2130706433:{https}" + A + "/x", "CnmValidationError"),
    "https: octal IP host 0177.0.0.1": Case("https", "https://0177.0.0.1:{https}" + A + "/x", "CnmValidationError"),
    "https: IPv6 literal [::1]": Case("https", "https://[::1]:{https}" + A + "/file.bin", "CnmValidationError"),
    "https: IPv4-mapped [::ffff:127.0.0.1]": Case(
        "https", "https://[::ffff:127.0.0.1]:{https}" + A + "/file.bin", "CnmValidationError"
    ),
    "https: unicode host (IDNA look-alike)": Case(
        "https", "https://fіles.provider.test:{https}" + A + "/x", "CnmValidationError"
    ),
    "https: host suffix": Case("https", "https://{name}.evil.test:{https}" + A + "/x", "CnmValidationError"),
    "http: file:// scheme": Case("http", "file:///etc/passwd", "CnmValidationError"),
    "http provider with credentials": Case(
        "http", HTTP + A + "/file.bin", "ConfigurationError", change={"credentials_secret_arn": "arn:secret"}
    ),
    "sftp provider: http URI on its host (password as Basic)": Case(
        "sftp", "http://{name}:{sftp}/data/file.bin", "CnmValidationError"
    ),
    "sftp provider: https URI on its https port": Case("sftp", HTTPS + "/data/file.bin", "CnmValidationError"),
    "sftp: a file under its prefix": Case("sftp", SFTP + "/data/file.bin", connects={"sftp": 1}),
    "sftp: %2e%2e climb": Case("sftp", SFTP + "/data/%2e%2e/other/secret.bin", "CnmValidationError"),
    "sftp: outside its prefix": Case("sftp", SFTP + "/other/secret.bin", "CnmValidationError"),
    "sftp: default port": Case("sftp", "sftp://{name}/data/file.bin", "CnmValidationError"),
    "s3 provider: https URI naming its bucket": Case(
        "s3", "https://{bucket}/provider-a/file.bin", "CnmValidationError"
    ),
    # addresses: resolved once, checked, connected to as checked
    "https: loopback not in allowed_networks": Case(
        "https", HTTPS + A + "/file.bin", "AddressNotAllowedError", change={"allowed_networks": None}
    ),
    "https: name resolves to the metadata service": Case(
        "https", HTTPS + A + "/file.bin", "AddressNotAllowedError", answers=[["169.254.169.254"]]
    ),
    "https: name resolves to 10/8, not allowed": Case(
        "https", HTTPS + A + "/file.bin", "AddressNotAllowedError", answers=[["10.0.0.1"]]
    ),
    "https: one good and one private answer": Case(
        "https", HTTPS + A + "/file.bin", "AddressNotAllowedError", answers=[["127.0.0.1", "192.168.0.1"]]
    ),
    "https: IPv4-mapped metadata answer": Case(
        "https", HTTPS + A + "/file.bin", "AddressNotAllowedError", answers=[["::ffff:169.254.169.254"]]
    ),
    "https: DNS rebinding, checked answer then private": Case(
        "https", HTTPS + A + "/redirect-ok", connects={"https": 2}, answers=[["127.0.0.1"], ["10.0.0.1"]]
    ),
    "https: DNS rebinding, public answer then loopback": Case(
        "https",
        HTTPS + A + "/file.bin",
        "TransferError",
        change={"allowed_networks": None},
        answers=[["93.184.215.14"], ["127.0.0.1"]],
    ),
    "sftp: loopback not in allowed_networks": Case(
        "sftp", SFTP + "/data/file.bin", "AddressNotAllowedError", change={"allowed_networks": None}
    ),
    # credentials and redirects
    "https: Basic credentials over TLS": Case("https", HTTPS + A + "/auth.bin", connects={"https": 1}),
    "https: self-signed certificate not trusted": Case(
        "https", HTTPS + A + "/auth.bin", "TransferError", connects={"https": 1}
    ),
    "https: redirect on the host and prefix": Case("https", HTTPS + A + "/redirect-ok", connects={"https": 2}),
    "https: 301 to another port of the host": Case(
        "https", HTTPS + A + "/redirect-port", "TransferError", connects={"https": 1}
    ),
    "https: redirect to plain http": Case(
        "https", HTTPS + A + "/redirect-http", "TransferError", connects={"https": 1}
    ),
    "https: redirect to file://": Case("https", HTTPS + A + "/redirect-file", "TransferError", connects={"https": 1}),
    "https: redirect to another prefix": Case(
        "https", HTTPS + A + "/redirect-prefix", "TransferError", connects={"https": 1}
    ),
    "https: redirect to another host": Case(
        "https", HTTPS + A + "/redirect-host", "TransferError", connects={"https": 1}
    ),
    "https: redirect with user info": Case(
        "https", HTTPS + A + "/redirect-userinfo", "TransferError", connects={"https": 1}
    ),
    "https: redirect to the metadata service": Case(
        "https", HTTPS + A + "/redirect-metadata", "TransferError", connects={"https": 1}
    ),
    "https: redirect with %2e%2e": Case(
        "https", HTTPS + A + "/redirect-dotdot", "TransferError", connects={"https": 1}
    ),
    "https: redirect loop": Case("https", HTTPS + A + "/redirect-loop", "TransferError", connects={"https": 4}),
    # byte-exact, bounded
    "http: Content-Encoding gzip staged raw": Case(
        "http", HTTP + A + "/gz.nc.gz", connects={"http": 1}, data=RAW_GZ, file={"name": "gz.nc.gz"}
    ),
    "http: chunked, longer than the CNM says": Case(
        "http", HTTP + A + "/chunked-wrong", "SizeMismatchError", connects={"http": 1}
    ),
    "http: chunked, cut before its end": Case(
        "http", HTTP + A + "/chunked-truncated", "TransferError", connects={"http": 1}
    ),
    "http: shorter than its Content-Length": Case("http", HTTP + A + "/short", "TransferError", connects={"http": 1}),
    "http: HTTP/0.9 (no status line)": Case("http", HTTP + A + "/http09", "TransferError", connects={"http": 1}),
    "http: one byte at a time past the deadline": Case(
        "http", HTTP + A + "/drip.bin", "ConnectionTimeoutError", connects={"http": 1}, remaining_ms=7_000
    ),
    "http: stalled after the headers": Case(
        "http", HTTP + A + "/stall.bin", "ConnectionTimeoutError", connects={"http": 1}, remaining_ms=7_000
    ),
    # checksum form, before any read (SyncGranule's own check, for a payload TranslateMessage did not make)
    "https: checksum of the wrong length": Case(
        "https", HTTPS + A + "/file.bin", "CnmValidationError", file={"checksum": "0" * 63}
    ),
    "https: checksum not hex nor base64": Case(
        "https", HTTPS + A + "/file.bin", "CnmValidationError", file={"checksum": "z" * 64}
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_case(world, name):
    case = CASES[name]
    servers = world.servers
    provider = {**world.providers[case.provider], **case.change}
    provider = {k: v for k, v in provider.items() if v is not None}
    if name == "https: self-signed certificate not trusted":
        os.environ.pop("SSL_CERT_FILE")
    if case.answers is not None:
        world.resolver.names[NAME] = [list(a) for a in case.answers]
    uri = case.uri.format(
        name=NAME,
        https=servers.https.port,
        http=servers.http.port,
        sftp=servers.sftp_port,
        bucket=world.wf.provider_bucket,
    )
    f = cnm_file(uri, case.data, **case.file)
    message = sync_message(world, provider, [f])
    outcome, error, code, seconds = run_sync(world, message, case.remaining_ms)
    got = connections(world)
    ROWS.append(
        {
            "case": name,
            "connections": sum(got.values()),
            "s3_calls": sum(world.calls.s3.values()),
            "outcome": outcome,
            "error": error,
            "code": code,
        }
    )
    assert (outcome, error) == ("FAILURE" if case.error else "SUCCESS", case.error)
    assert got == {"http": 0, "https": 0, "sftp": 0, **case.connects}
    if case.error in ("CnmValidationError", "AddressNotAllowedError", "ConfigurationError"):
        assert sum(world.calls.s3.values()) == 0, world.calls.s3  # refused before any S3 call
        assert code in ("VALIDATION_ERROR", "PROCESSING_ERROR")
    objects = staged(world)
    if case.error:
        assert objects == {}, sorted(objects)  # nothing staged, no temporary object left
    else:
        assert objects == {f"reads/G1/{f['name']}": case.staged or case.data}
    # nothing outside provider-a's prefix was ever asked for, and credentials only ever went over TLS
    for srv in (servers.http, servers.https):
        for path, headers in srv.requests:
            assert path.startswith("/provider-a/"), path
            assert srv.scheme == "https" or "authorization" not in headers, (path, headers)
            assert headers.get("accept-encoding") == "identity"
    if name == "https: Basic credentials over TLS":
        assert [h.get("authorization") for _, h in servers.https.requests] == [BASIC]
        assert [h.get("host") for _, h in servers.https.requests] == [f"{NAME}:{servers.https.port}"]
    if name == "https: self-signed certificate not trusted":
        assert servers.https.requests == []  # the TLS handshake failed: nothing (no credentials) was sent
    if case.answers is not None or (case.provider in ("https", "http", "sftp") and outcome == "SUCCESS"):
        assert world.resolver.lookups == ([NAME] if case.error != "CnmValidationError" else [])  # resolved once
    if name == "https: DNS rebinding, public answer then loopback":
        assert world.calls.connects == [("93.184.215.14", servers.https.port)]  # the checked address, not loopback
    if case.error == "ConnectionTimeoutError":
        assert seconds < case.remaining_ms / 1000 - 2, seconds  # ended by the deadline, well before Lambda's
        assert code == "TRANSFER_ERROR"
    if name == "sftp: a file under its prefix":
        assert servers.sftp.auth_attempts == [("password", USER)]


def test_the_deadline_error_is_retried_by_sync_granule(wf):
    """A drip or stall ends as ConnectionTimeoutError: the applied SyncGranule Retry lists it (retryable), and
    once retries are exhausted CnmResponse answers TRANSFER_ERROR (errors.error_code_for)."""
    assert "ConnectionTimeoutError" in wf.retry("SyncGranule")["ErrorEquals"]
    assert error_code_for("ConnectionTimeoutError") == "TRANSFER_ERROR"


# --- through the applied state machine ------------------------------------------------------------------


def workflow_cnm(
    wf, uri: str, data: bytes = DATA, name: str = "GRAN_001.nc", identifier: str | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "version": "1.6.1",
        "provider": wf.rule.provider,
        "collection": dict(wf.collection),
        "submissionTime": "2024-05-01T12:00:00.000000Z",
        "identifier": identifier or f"id-{hashlib.sha256(uri.encode()).hexdigest()[:12]}",
        "product": {"name": name, "dataVersion": "1", "files": [cnm_file(uri, data, name=name, **kw)]},
    }


def use_provider(world, kind: str, **change: Any) -> None:
    """The applied rule's provider (PODAAC_SWOT) becomes ``kind`` in the providers table, as Terraform writes it."""
    config = {k: v for k, v in {**world.providers[kind], **change}.items() if k != "id" and v is not None}
    world.wf.world.put_provider(world.wf.rule.provider, **config)


def answer(wf, desc) -> dict[str, Any]:
    responses = wf.responses()
    assert len(responses) == 1, (responses, wf.explain(desc))
    return responses[0]


def test_workflow_stages_an_https_file_with_credentials_over_tls(world):
    wf, srv = world.wf, world.servers
    use_provider(world, "https")
    desc = wf.run(workflow_cnm(wf, f"https://{NAME}:{srv.https.port}/provider-a/auth.bin"))
    response = answer(wf, desc)
    assert desc["status"] == "SUCCEEDED" and response["response"]["status"] == "SUCCESS", wf.explain(desc)
    assert [h.get("authorization") for _, h in srv.https.requests] == [BASIC] and srv.http.accepted == 0
    [(key, body)] = staged(world).items()
    assert body == DATA and key.endswith("/GRAN_001.nc")


@pytest.mark.parametrize(
    "uri, error",
    [
        ("http://{name}:{http}/provider-a/auth.bin", "CnmValidationError"),  # downgrade: credentials in clear
        ("https://{name}:{https}/provider-b/secret.bin", "CnmValidationError"),  # another provider's prefix
        ("https://{name}:{https}/provider-a/%2e%2e/provider-b/secret.bin", "CnmValidationError"),
        ("https://{name}:{http}/provider-a/auth.bin", "CnmValidationError"),  # another port
        ("https://{name}:{https}/provider-a/redirect-port", "TransferError"),  # redirect to another port
    ],
)
def test_workflow_refuses_what_the_provider_did_not_declare(world, uri, error):
    wf, srv = world.wf, world.servers
    use_provider(world, "https")
    desc = wf.run(workflow_cnm(wf, uri.format(name=NAME, http=srv.http.port, https=srv.https.port)))
    response = answer(wf, desc)
    assert response["response"]["status"] == "FAILURE", wf.explain(desc)
    assert response["response"]["errorCode"] == error_code_for(error)
    assert error in json.dumps(wf.history(desc["executionArn"]), default=str)
    assert srv.http.accepted == 0 and all("authorization" not in h for _, h in srv.http.requests)
    assert srv.https.accepted == (1 if error == "TransferError" else 0)
    assert staged(world) == {}
    if error == "CnmValidationError":
        assert sum(world.calls.s3.values()) == 0, world.calls.s3


def test_workflow_refuses_an_impossible_checksum_at_intake(world):
    """TranslateMessage refuses it: SyncGranule never runs, no connection, nothing copied."""
    wf, srv = world.wf, world.servers
    use_provider(world, "https")
    cnm = workflow_cnm(wf, f"https://{NAME}:{srv.https.port}/provider-a/file.bin", checksum="0" * 63)
    desc = wf.run(cnm)
    response = answer(wf, desc)
    assert (response["response"]["status"], response["response"]["errorCode"]) == ("FAILURE", "VALIDATION_ERROR")
    assert wf.calls["sync_granule"] == [] and connections(world) == {"http": 0, "https": 0, "sftp": 0}
    assert sum(world.calls.s3.values()) == 0 and staged(world) == {}


def test_workflow_stages_a_gzip_file_byte_exact(world):
    wf, srv = world.wf, world.servers
    use_provider(world, "http")
    desc = wf.run(workflow_cnm(wf, f"http://{NAME}:{srv.http.port}/provider-a/gz.nc.gz", RAW_GZ, name="G.nc.gz"))
    response = answer(wf, desc)
    assert response["response"]["status"] == "SUCCESS", wf.explain(desc)
    assert list(staged(world).values()) == [RAW_GZ] and [f["size"] for f in response["product"]["files"]] == [
        len(RAW_GZ)
    ]


def test_workflow_refuses_loopback_unless_the_provider_allows_it(world):
    wf, srv = world.wf, world.servers
    use_provider(world, "https", allowed_networks=None)
    desc = wf.run(workflow_cnm(wf, f"https://{NAME}:{srv.https.port}/provider-a/file.bin"))
    response = answer(wf, desc)
    assert (response["response"]["status"], response["response"]["errorCode"]) == ("FAILURE", "VALIDATION_ERROR")
    assert "AddressNotAllowedError" in json.dumps(wf.history(desc["executionArn"]), default=str)
    assert connections(world) == {"http": 0, "https": 0, "sftp": 0} and sum(world.calls.s3.values()) == 0


def test_workflow_sftp_provider_password_never_goes_as_http_basic(world):
    wf, srv = world.wf, world.servers
    use_provider(world, "sftp")
    desc = wf.run(workflow_cnm(wf, f"http://{NAME}:{srv.sftp_port}/data/file.bin"))
    response = answer(wf, desc)
    assert (response["response"]["status"], response["response"]["errorCode"]) == ("FAILURE", "VALIDATION_ERROR")
    assert connections(world) == {"http": 0, "https": 0, "sftp": 0}
    desc = wf.run(workflow_cnm(wf, f"sftp://{NAME}:{srv.sftp_port}/data/file.bin"))
    responses = wf.responses()  # the first run's FAILURE (asserted above) and this one's, in any order across shards
    assert sorted(r["response"]["status"] for r in responses) == ["FAILURE", "SUCCESS"], wf.explain(desc)
    assert srv.sftp.connections == 1 and list(staged(world).values()) == [DATA]


# --- secrets never leave ---------------------------------------------------------------------------------


def test_secrets_never_leave(world, capfd, caplog):
    """Hostile cases through the applied state machine, then every place an answer or a record goes is
    searched for the providers' secrets: logs (stdout and stderr at the file descriptors, logging),
    responses, DLQ envelopes, execution histories (inputs, outputs, errors), the status table, and the
    CLI's output."""
    from tests.cli_runner import Cli

    for name in ("paramiko", "urllib3"):  # the transports' debug logs too (botocore's would print any API response)
        caplog.set_level(logging.DEBUG, logger=name)
    wf, srv = world.wf, world.servers
    private_key = io.StringIO()
    CLIENT_KEY.write_private_key(private_key)
    key_body = private_key.getvalue().splitlines()[1]
    sm = wf.world.client("secretsmanager")
    keyed = sm.create_secret(
        Name="provider-key", SecretString=json.dumps({"username": USER, "private_key": private_key.getvalue()})
    )
    secrets = [PASSWORD, SFTP_PASSWORD, BASIC.split()[1], base64.b64encode(f"{USER}:{SFTP_PASSWORD}".encode()).decode(),
               key_body]  # fmt: skip
    runs = [
        ("https", {}, f"https://{NAME}:{srv.https.port}/provider-a/auth.bin"),  # success, credentials sent
        ("https", {}, f"http://{NAME}:{srv.http.port}/provider-a/auth.bin"),  # downgrade refused
        ("https", {}, f"https://{NAME}:{srv.https.port}/provider-a/redirect-userinfo"),  # a Location with a password
        ("https", {}, f"https://{NAME}:{srv.https.port}/provider-a/redirect-port"),
        ("https", {"credentials_secret_arn": world.wrong_secret}, f"https://{NAME}:{srv.https.port}/provider-a/auth.bin"),
        ("sftp", {}, f"http://{NAME}:{srv.sftp_port}/data/file.bin"),
        ("sftp", {"credentials_secret_arn": world.wrong_secret}, f"sftp://{NAME}:{srv.sftp_port}/data/file.bin"),
        ("sftp", {"credentials_secret_arn": keyed["ARN"]}, f"sftp://{NAME}:{srv.sftp_port}/data/file.bin"),
        ("sftp", {"credentials_secret_arn": keyed["ARN"], "host_key": [known(OTHER_KEY)]},
         f"sftp://{NAME}:{srv.sftp_port}/data/file.bin"),  # an unknown server key: no key offered
    ]  # fmt: skip
    outcomes, arns = [], []
    for i, (kind, change, uri) in enumerate(runs):
        use_provider(world, kind, **change)
        sources._secrets.clear()
        desc = wf.run(workflow_cnm(wf, uri, name=f"G{i}.nc", identifier=f"id-secrets-{i}"))
        arns.append(desc["executionArn"])
        outcomes.append(desc["status"])
    assert outcomes.count("SUCCEEDED") == 2, outcomes  # the https file and the key-authenticated sftp file
    out = capfd.readouterr()
    places = {
        "stdout": out.out,
        "stderr": out.err,
        "logging": caplog.text,
        "responses": json.dumps(wf.responses()),
        "dlq": json.dumps(wf.dead_letters()),
        "executions": json.dumps(
            [[wf.sfn.describe_execution(executionArn=a), wf.history(a)] for a in arns], default=str
        ),
    }
    status = wf.dynamodb.scan(TableName=wf.status_table)["Items"]
    places["status table"] = json.dumps(status, default=str)
    assert status, "the status table recorded the executions"
    env = {
        "AWS_ENDPOINT_URL": wf.world.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": wf.s3.meta.region_name,
    }
    cli = Cli("--prefix", wf.world.prefix, env=env)
    places["cli"] = "\n".join(
        cli(*args).output
        for args in (["status"], ["status", "--executions", "--json"], ["responses", "--json"], ["dlq", "list"])
    )
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret is in {where}"
    assert all(places[where] for where in ("responses", "executions", "status table", "cli")), places.keys()


# --- the table --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    path = os.environ.get("PROVIDER_READS_TABLE")
    if path and ROWS:
        lines = [
            "| hostile case | connections | S3 calls | outcome | error | CNM errorCode |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['case']} | {r['connections']} | {r['s3_calls']} | {r['outcome']} | {r['error']} | {r['code']} |"
            for r in ROWS
        ]
        Path(path).write_text("\n".join(lines) + "\n")
