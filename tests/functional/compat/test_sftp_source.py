"""sftp sources against a real SFTP server (paramiko in server mode) on loopback, staged into moto S3.

The server is ours, in-process: it serves a temporary directory, counts connections, sessions and
authentication attempts, and can misbehave on purpose (a file truncated or failing half-way, a slow read).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest

from cnm_ingest.errors import (
    ChecksumMismatchError,
    CnmValidationError,
    ConfigurationError,
    ConnectionTimeoutError,
    FileNotFoundAtSourceError,
    SizeMismatchError,
    TransferError,
    error_code_for,
)
from cnm_ingest.transfer import sftp, sources
from cnm_ingest.workflow import sync_granule

DATA = os.urandom(11 * 1024 * 1024 + 7)  # three parts at S3's 5 MiB minimum
SMALL = b"small sftp file"
STAGE = ""  # the applied staging bucket, set by the world fixture
HOST_KEY = paramiko.ECDSAKey.generate()
CLIENT_KEY = paramiko.ECDSAKey.generate()
OTHER_KEY = paramiko.ECDSAKey.generate()


def known(key):
    return f"{key.get_name()} {key.get_base64()}"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.auth_attempts: list[tuple[str, str]] = []
        self.reading = 0
        self.max_reading = 0  # clients reading at the same moment (a client reads only inside its limit slot)
        self.read_delay = 0.0

    def reads(self, delta):
        with self.lock:
            self.reading += delta
            self.max_reading = max(self.max_reading, self.reading)


class Auth(paramiko.ServerInterface):
    def __init__(self, stats):
        self.stats = stats

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_auth_password(self, username, password):
        self.stats.auth_attempts.append(("password", username))
        ok = (username, password) == ("alice", "s3cret")
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.stats.auth_attempts.append(("publickey", username))
        ok = username == "alice" and key.asbytes() == CLIENT_KEY.asbytes()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class Handle(paramiko.SFTPHandle):
    def __init__(self, path, stats, flags=0):
        super().__init__(flags)
        self.path, self.stats = path, stats
        self.readfile = path.open("rb")  # closed by SFTPHandle.close

    def stat(self):
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

    def read(self, offset, length):
        self.stats.reads(+1)
        try:
            return self._read(offset, length)
        finally:
            self.stats.reads(-1)

    def _read(self, offset, length):
        if self.stats.read_delay:
            time.sleep(self.stats.read_delay)
        name = self.path.name
        if name == "vanishing.bin" and offset >= 2 * 1024 * 1024:
            os.truncate(self.path, 2 * 1024 * 1024)  # replaced by a shorter file half-way
        if name == "failing.bin" and offset >= 2 * 1024 * 1024:
            return paramiko.SFTP_FAILURE
        return super().read(offset, length)


def make_sftp_server(root, stats):
    class Files(paramiko.SFTPServerInterface):
        def _real(self, path):
            return Path(root) / path.lstrip("/")

        def open(self, path, flags, attr):
            real = self._real(path)
            if not real.is_file():
                return paramiko.SFTPServer.convert_errno(errno.ENOENT)
            return Handle(real, stats, flags)

        def stat(self, path):
            try:
                return paramiko.SFTPAttributes.from_stat(self._real(path).stat())
            except OSError as exc:
                return paramiko.SFTPServer.convert_errno(exc.errno)

        lstat = stat

    return Files


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sftp-root")
    stats = Stats()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    transports = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with stats.lock:
                stats.connections += 1
            t = paramiko.Transport(conn)
            t.add_server_key(HOST_KEY)
            t.set_subsystem_handler("sftp", paramiko.SFTPServer, make_sftp_server(root, stats))
            transports.append(t)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                t.start_server(server=Auth(stats))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield root, listener.getsockname()[1], stats
    stop.set()
    listener.close()
    for t in transports:
        t.close()


@pytest.fixture
def world(complete_world, server, monkeypatch):
    """The sftp server (the provider's side), its credentials in Secrets Manager (the DAAC's secrets, made
    here), and the applied staging bucket of examples/complete, under SyncGranule's deployed env."""
    root, port, stats = server
    deadline = time.monotonic() + 10
    while stats.reading and time.monotonic() < deadline:  # a read an earlier test abandoned (a stalled server)
        time.sleep(0.05)
    stats.connections, stats.auth_attempts[:], stats.max_reading, stats.read_delay = 0, [], 0, 0.0
    (root / "data").mkdir(exist_ok=True)
    (root / "other").mkdir(exist_ok=True)
    (root / "data" / "big.bin").write_bytes(DATA)
    (root / "data" / "small.txt").write_bytes(SMALL)
    (root / "data" / "vanishing.bin").write_bytes(DATA)
    (root / "data" / "failing.bin").write_bytes(DATA)
    (root / "other" / "secret.txt").write_bytes(b"another provider's file")
    sources._secrets.clear()
    complete_world.use("sync_granule")
    staging = json.loads(complete_world.function("message_consumer").environment["BUCKETS"])["private"]["name"]
    monkeypatch.setattr(sys.modules[__name__], "STAGE", staging)
    s3 = complete_world.client("s3")
    sm = complete_world.client("secretsmanager")
    password = sm.create_secret(Name="pw", SecretString=json.dumps({"username": "alice", "password": "s3cret"}))
    buf = io.StringIO()
    CLIENT_KEY.write_private_key(buf)
    keyed = sm.create_secret(Name="key", SecretString=json.dumps({"username": "alice", "private_key": buf.getvalue()}))
    wrong = sm.create_secret(Name="wrong", SecretString=json.dumps({"username": "alice", "password": "guess"}))
    provider = {
        "id": "SFTP_P",
        "protocol": "sftp",
        "host": "127.0.0.1",
        "port": port,
        "host_key": [known(HOST_KEY)],
        "allowed_prefixes": ["data"],
        "allowed_networks": ["127.0.0.0/8"],  # the server is on loopback (issue 18)
        "credentials_secret_arn": password["ARN"],
    }
    return {
        "s3": s3,
        "stats": stats,
        "root": root,
        "base": f"sftp://127.0.0.1:{port}",
        "provider": provider,
        "key_secret": keyed["ARN"],
        "wrong_secret": wrong["ARN"],
    }


def sfile(world, path, data, *, algo="SHA512", digest=None):
    return {
        "name": path.rpartition("/")[2],  # the basename
        "source": f"{world['base']}{path}",
        "size": len(data),
        "checksumType": algo,
        "checksum": digest or hashlib.new(algo.lower(), data).hexdigest(),
        "type": "data",
    }


def stored(world):
    s3 = world["s3"]
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket=STAGE).get("Contents", [])]
    return objects, s3.list_multipart_uploads(Bucket=STAGE).get("Uploads", [])


def fetch(world, f, provider=None, **kw):
    return sources.fetch_to_s3(f, provider or world["provider"], STAGE, "k/x", metadata={"m": "1"}, **kw)


def test_streams_in_parts_with_the_checksum_computed_while_uploading(world, monkeypatch):
    parts = []
    client = sources.aws.client("s3")
    real = client.upload_part
    monkeypatch.setattr(client, "upload_part", lambda **kw: parts.append(len(kw["Body"])) or real(**kw))
    assert fetch(world, sfile(world, "/data/big.bin", DATA), part_size=1) == len(DATA)
    assert parts == [5 * 1024 * 1024, 5 * 1024 * 1024, len(DATA) - 10 * 1024 * 1024]
    assert world["s3"].get_object(Bucket=STAGE, Key="k/x")["Body"].read() == DATA
    assert world["stats"].auth_attempts == [("password", "alice")]


def test_reads_are_pipelined_in_bounded_windows(world, monkeypatch):
    """At most WINDOW bytes are requested at once, so a huge file never fills the function's memory."""
    monkeypatch.setattr(sftp, "WINDOW", 1024 * 1024)
    windows = []
    real = paramiko.SFTPFile.readv
    monkeypatch.setattr(paramiko.SFTPFile, "readv", lambda self, chunks: windows.append(chunks) or real(self, chunks))
    assert fetch(world, sfile(world, "/data/big.bin", DATA), part_size=1) == len(DATA)
    assert max(sum(n for _, n in w) for w in windows) == 1024 * 1024
    assert [c for w in windows for c in w] == [
        (o, min(32 * 1024, len(DATA) - o)) for o in range(0, len(DATA), 32 * 1024)
    ]


def test_private_key_credentials(world):
    provider = {**world["provider"], "credentials_secret_arn": world["key_secret"]}
    assert fetch(world, sfile(world, "/data/small.txt", SMALL), provider) == len(SMALL)
    assert world["stats"].auth_attempts == [("publickey", "alice")]


@pytest.mark.parametrize(
    "path",
    [
        "/data/../other/secret.txt",
        "/data/%2e%2e/other/secret.txt",
        "/data/./small.txt",
        "/other/secret.txt",  # outside allowed_prefixes
        "/database/x",  # a prefix "data" allows data/..., not database/...
        "/data/small.txt%00.nc",
        "/data\\..\\other\\secret.txt",
    ],
)
def test_paths_that_could_leave_the_providers_folder_are_refused_before_connecting(world, path):
    with pytest.raises(CnmValidationError):
        fetch(world, sfile(world, path, SMALL))
    assert world["stats"].connections == 0 and stored(world) == ([], [])


@pytest.mark.parametrize(
    "source",
    [
        "sftp://example.org/data/small.txt",
        "sftp://127.0.0.1.evil.example/data/small.txt",
        "sftp://alice:s3cret@127.0.0.1/data/small.txt",
        "sftp://127.0.0.1:1/data/small.txt",  # another port than the provider's
        "sftp:///data/small.txt",
    ],
)
def test_other_hosts_are_refused_before_connecting(world, source):
    f = {**sfile(world, "/data/small.txt", SMALL), "source": source}
    with pytest.raises(CnmValidationError):
        fetch(world, f)
    assert world["stats"].connections == 0


def test_sync_granule_refuses_another_host_as_a_validation_error(world):
    f = {**sfile(world, "/data/small.txt", SMALL), "source": "sftp://example.org/data/small.txt"}
    with pytest.raises(CnmValidationError) as err:
        sync_granule.check_source(f, world["provider"], set())
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"


def test_authentication_failure_is_a_transfer_error_and_stores_nothing(world):
    provider = {**world["provider"], "credentials_secret_arn": world["wrong_secret"]}
    with pytest.raises(TransferError) as err:
        fetch(world, sfile(world, "/data/small.txt", SMALL), provider)
    assert error_code_for(type(err.value).__name__) == "TRANSFER_ERROR"
    assert stored(world) == ([], [])


def test_an_unknown_server_key_gets_no_password(world):
    provider = {**world["provider"], "host_key": [known(OTHER_KEY)]}
    with pytest.raises(TransferError, match="host key SHA256:"):
        fetch(world, sfile(world, "/data/small.txt", SMALL), provider)
    assert world["stats"].connections == 1 and world["stats"].auth_attempts == []


@pytest.mark.parametrize(
    "change",
    [
        {"host_key": None},
        {"host_key": []},
        {"host_key": ["not a key"]},
        {"host_key": ["ecdsa-sha2-nistp256 !!!notbase64"]},
        {"credentials_secret_arn": None},
        {"globalConnectionLimit": 0},
    ],
)
def test_incomplete_provider_configuration_is_a_configuration_error(world, change):
    with pytest.raises(ConfigurationError):
        fetch(world, sfile(world, "/data/small.txt", SMALL), {**world["provider"], **change})
    assert world["stats"].auth_attempts == [] and stored(world) == ([], [])


def test_a_missing_file_is_file_not_found(world):
    with pytest.raises(FileNotFoundAtSourceError) as err:
        fetch(world, sfile(world, "/data/nothing-here.nc", SMALL))
    assert error_code_for(type(err.value).__name__) == "TRANSFER_ERROR"
    assert stored(world) == ([], [])


@pytest.mark.parametrize("name", ["vanishing.bin", "failing.bin"])
def test_a_file_that_goes_away_half_way_leaves_no_object_and_no_upload(world, name):
    with pytest.raises(TransferError):
        fetch(world, sfile(world, f"/data/{name}", DATA), part_size=1)  # a part was uploaded before it failed
    assert stored(world) == ([], [])


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda f: f.update(checksum="0" * 128), ChecksumMismatchError),
        (lambda f: f.update(size=f["size"] - 1), SizeMismatchError),
        (lambda f: f.update(size=f["size"] + 1), SizeMismatchError),
    ],
)
def test_checksum_or_size_mismatch_never_becomes_an_object(world, mutate, error):
    for path, data in (("/data/big.bin", DATA), ("/data/small.txt", SMALL)):
        f = sfile(world, path, data)
        mutate(f)
        with pytest.raises(error) as err:
            fetch(world, f, part_size=1)
        assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
        assert stored(world) == ([], [])


def test_a_stalled_read_is_a_connection_timeout(world, monkeypatch):
    monkeypatch.setattr(sftp, "READ_TIMEOUT", 0.3)
    world["stats"].read_delay = 1.0
    with pytest.raises(ConnectionTimeoutError) as err:
        fetch(world, sfile(world, "/data/small.txt", SMALL))
    assert error_code_for(type(err.value).__name__) == "TRANSFER_ERROR"
    assert stored(world) == ([], [])


def test_connection_limit_per_provider(world):
    world["stats"].read_delay = 0.05
    provider = {**world["provider"], "globalConnectionLimit": 2}
    results, errors = [], []

    def one(i):
        try:
            results.append(
                sources.fetch_to_s3(sfile(world, "/data/small.txt", SMALL), provider, STAGE, f"k/{i}", metadata={})
            )
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [len(SMALL)] * 6
    assert world["stats"].connections == 6 and world["stats"].max_reading == 2


def test_sync_granule_stages_an_sftp_file(world):
    staged = sync_granule.sync_file(
        sfile(world, "/data/small.txt", SMALL),
        bucket=STAGE,
        prefix="C",
        duplicate_handling="error",
        checksum_required=True,
        execution_name="e",
        provider=world["provider"],
    )
    assert (staged["bucket"], staged["key"], staged["size"]) == (STAGE, "C/small.txt", len(SMALL))
    assert world["s3"].get_object(Bucket=STAGE, Key="C/small.txt")["Body"].read() == SMALL
