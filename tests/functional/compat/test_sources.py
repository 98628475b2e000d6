"""http(s) sources: streamed into S3 with the checksum computed on the way, confined to the provider's host.

The server is on loopback, so the provider allows it by name (``allowed_networks``: issue 18); the hostile
cases of the confinement rule itself are in tests/functional/workflow/test_provider_reads.py."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import sys
import threading
import time
from typing import ClassVar

import pytest

from cnm_ingest.errors import (
    ChecksumMismatchError,
    CnmValidationError,
    ConfigurationError,
    ConnectionTimeoutError,
    FileNotFoundAtSourceError,
    SizeMismatchError,
    TransferError,
    TransientError,
    error_code_for,
)
from cnm_ingest.transfer import confine, sources
from cnm_ingest.workflow import sync_granule
from tests.conftest import REGION

DATA = os.urandom(11 * 1024 * 1024 + 7)  # three 5 MiB parts at the minimum part size
SMALL = b"small file"
AUTH = "Basic " + base64.b64encode(b"alice:s3cret").decode()


class Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []  # every request path, across the handler instances of one server

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Handler.hits.append(self.path)
        port = self.server.server_address[1]
        routes = {
            "/big.bin": lambda: self.send(200, DATA),
            "/small.txt": lambda: self.send(200, SMALL),
            "/gone": lambda: self.send(404),
            "/busy": lambda: self.send(503),
            "/forbidden": lambda: self.send(403),
            "/hop": lambda: self.send(302, headers={"Location": "/small.txt"}),
            "/loop": lambda: self.send(302, headers={"Location": "/loop"}),
            "/away": lambda: self.send(302, headers={"Location": "http://example.org/small.txt"}),
            "/other-port": lambda: self.send(302, headers={"Location": f"http://127.0.0.1:{port + 1}/small.txt"}),
            "/secret": lambda: self.send(200, SMALL) if self.headers.get("Authorization") == AUTH else self.send(401),
        }
        if self.path == "/slow":
            time.sleep(1.5)
            self.send(200, SMALL)
            return
        routes.get(self.path, lambda: self.send(404))()


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def s3(complete_world, server, monkeypatch):
    """The applied staging bucket of examples/complete (restored), under SyncGranule's deployed env."""
    monkeypatch.setitem(PROVIDER, "port", int(server.rsplit(":", 1)[1]))
    sources._secrets.clear()
    complete_world.use("sync_granule")
    staging = json.loads(complete_world.function("message_consumer").environment["BUCKETS"])["private"]["name"]
    monkeypatch.setattr(sys.modules[__name__], "STAGE", staging)
    return complete_world.client("s3")


PROVIDER = {"id": "P", "protocol": "http", "host": "127.0.0.1", "allowed_networks": ["127.0.0.0/8"]}  # + port
STAGE = ""  # the applied staging bucket, set by the s3 fixture


def hfile(base, path, data, *, algo="SHA512", digest=None):
    return {
        "name": path.strip("/").replace("/", "_") or "x",
        "source": f"{base}{path}",
        "bucket": None,
        "key": None,
        "size": len(data),
        "checksumType": algo,
        "checksum": digest or hashlib.new(algo.lower(), data).hexdigest(),
        "type": "data",
    }


def keys(s3):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=STAGE).get("Contents", [])]


def uploads(s3):
    return s3.list_multipart_uploads(Bucket=STAGE).get("Uploads", [])


def test_streams_in_parts_with_checksum(s3, server, monkeypatch):
    parts = []
    real = s3.upload_part
    client = sources.aws.client("s3")
    monkeypatch.setattr(client, "upload_part", lambda **kw: parts.append(len(kw["Body"])) or real(**kw))
    size = sources.fetch_to_s3(
        hfile(server, "/big.bin", DATA), PROVIDER, STAGE, "k/big.bin", metadata={"m": "1"}, part_size=1
    )  # raised to S3's 5 MiB minimum
    assert size == len(DATA)
    assert parts == [5 * 1024 * 1024, 5 * 1024 * 1024, len(DATA) - 10 * 1024 * 1024]
    obj = s3.get_object(Bucket=STAGE, Key="k/big.bin")
    assert obj["Body"].read() == DATA and obj["Metadata"] == {"m": "1"}


@pytest.mark.parametrize(
    "mutate, error, code",
    [
        (lambda f: f.update(checksum="0" * 128), ChecksumMismatchError, "VALIDATION_ERROR"),
        (lambda f: f.update(size=f["size"] - 1), SizeMismatchError, "VALIDATION_ERROR"),
        (lambda f: f.update(size=f["size"] + 1), SizeMismatchError, "VALIDATION_ERROR"),
    ],
)
def test_a_bad_download_never_becomes_an_object(s3, server, mutate, error, code):
    for path, data in (("/big.bin", DATA), ("/small.txt", SMALL)):
        f = hfile(server, path, data)
        mutate(f)
        with pytest.raises(error) as err:
            sources.fetch_to_s3(f, PROVIDER, STAGE, "k/x", metadata={})
        assert error_code_for(type(err.value).__name__) == code
        assert keys(s3) == [] and uploads(s3) == []


@pytest.mark.parametrize(
    "path, error",
    [
        ("/gone", FileNotFoundAtSourceError),
        ("/forbidden", TransferError),
        ("/busy", TransientError),
        ("/loop", TransferError),
        ("/away", TransferError),
        ("/other-port", TransferError),
        ("/secret", TransferError),
    ],
)
def test_failures_and_confinement(s3, server, path, error):
    with pytest.raises(error):
        sources.fetch_to_s3(
            hfile(server, path, SMALL), {**PROVIDER, "port": int(server.rsplit(":", 1)[1])}, STAGE, "k", metadata={}
        )
    assert keys(s3) == []


def test_redirects_on_the_host_are_followed(s3, server):
    assert sources.fetch_to_s3(hfile(server, "/hop", SMALL), PROVIDER, STAGE, "k", metadata={}) == len(SMALL)


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.org/small.txt",
        "http://127.0.0.1.evil.example/x",
        "http://user:pw@127.0.0.1/x",
        "ftp://127.0.0.1/x",
        "http:///x",
    ],
)
def test_other_hosts_are_refused_before_any_request(s3, uri):
    Handler.hits.clear()
    with pytest.raises(CnmValidationError):
        sources.fetch_to_s3({**hfile("", "/x", SMALL), "source": uri}, PROVIDER, STAGE, "k", metadata={})
    assert Handler.hits == []


def test_https_to_http_is_refused():
    with pytest.raises(CnmValidationError):
        confine.check("http://h/x", {"protocol": "https", "host": "h"})
    with pytest.raises(ConfigurationError):
        confine.check("http://h/x", {"id": "P", "protocol": "http"})


def test_credentials_never_travel_over_plain_http(s3, server):
    """An http provider with a secret is a configuration error before any request (issue 18: https only)."""
    import boto3

    Handler.hits.clear()
    sm = boto3.client("secretsmanager", region_name=REGION)
    arn = sm.create_secret(Name="p", SecretString=json.dumps({"username": "alice", "password": "s3cret"}))["ARN"]
    provider = {**PROVIDER, "credentials_secret_arn": arn}
    with pytest.raises(ConfigurationError):
        sources.fetch_to_s3(hfile(server, "/secret", SMALL), provider, STAGE, "k", metadata={})
    assert Handler.hits == []
    bad = sm.create_secret(Name="q", SecretString="not json")["ARN"]
    with pytest.raises(ConfigurationError):
        sources.credentials(bad)


def test_timeout_is_connection_timeout(s3, server, monkeypatch):
    monkeypatch.setattr(sources, "READ_TIMEOUT", 0.3)
    with pytest.raises(ConnectionTimeoutError) as err:
        sources.fetch_to_s3(hfile(server, "/slow", SMALL), PROVIDER, STAGE, "k", metadata={})
    assert error_code_for(type(err.value).__name__) == "TRANSFER_ERROR"


def test_connection_limit_per_provider():
    slot = confine.slot({"id": "P"}, 2)
    assert slot.acquire(blocking=False) and slot.acquire(blocking=False) and not slot.acquire(blocking=False)
    slot.release()
    slot.release()
    for bad in (0, -1, "5", True, 1.5):
        with pytest.raises(ConfigurationError):
            b"".join(sources.chunks("http://h/x", {"protocol": "http", "host": "h", "globalConnectionLimit": bad}))


def test_unreachable_host_is_a_transfer_error_not_a_timeout():
    with pytest.raises(TransferError) as err:
        b"".join(sources.chunks("http://unresolvable.invalid/x", {"protocol": "http", "host": "unresolvable.invalid"}))
    assert type(err.value) is TransferError


def test_sync_granule_stages_an_http_file(s3, server):
    f = hfile(server, "/small.txt", SMALL)
    staged = sync_granule.sync_file(
        f,
        bucket=STAGE,
        prefix="C",
        duplicate_handling="error",
        checksum_required=True,
        execution_name="e",
        provider=PROVIDER,
    )
    assert (staged["bucket"], staged["key"], staged["size"]) == (STAGE, "C/small.txt", len(SMALL))
    assert s3.get_object(Bucket=STAGE, Key="C/small.txt")["Body"].read() == SMALL


@pytest.mark.parametrize(
    "uri",
    ["http://example.org/small.txt", "http://user:pw@127.0.0.1/small.txt", "https://127.0.0.1.evil.example/small.txt"],
)
def test_sync_granule_confines_http_sources_before_any_request(s3, server, uri):
    """Provider confinement (issue 8) covers http(s): another host is a VALIDATION_ERROR before any request."""
    Handler.hits.clear()
    with pytest.raises(CnmValidationError) as err:
        sync_granule.sync_file(
            {**hfile(server, "/small.txt", SMALL), "source": uri},
            bucket=STAGE,
            prefix="C",
            duplicate_handling="error",
            checksum_required=True,
            execution_name="e",
            provider=PROVIDER,
        )
    assert error_code_for(type(err.value).__name__) == "VALIDATION_ERROR"
    assert Handler.hits == [] and keys(s3) == []


@pytest.mark.parametrize("handling", ["replace", "version"])
def test_a_bad_http_download_never_touches_the_staged_file(s3, server, handling):
    """The download is verified at a temporary key; a mismatch leaves the earlier good file byte-identical."""
    s3.put_object(
        Bucket=STAGE,
        Key="C/small.txt",
        Body=b"earlier good bytes",
        Metadata={sync_granule.EXECUTION_METADATA: "earlier"},
    )
    bad = hfile(server, "/small.txt", SMALL, digest="0" * 128)
    with pytest.raises(ChecksumMismatchError):
        sync_granule.sync_file(
            bad,
            bucket=STAGE,
            prefix="C",
            duplicate_handling=handling,
            checksum_required=True,
            execution_name="later",
            provider=PROVIDER,
        )
    assert keys(s3) == ["C/small.txt"] and uploads(s3) == []
    assert s3.get_object(Bucket=STAGE, Key="C/small.txt")["Body"].read() == b"earlier good bytes"
    staged = sync_granule.sync_file(
        hfile(server, "/small.txt", SMALL),
        bucket=STAGE,
        prefix="C",
        duplicate_handling=handling,
        checksum_required=True,
        execution_name="later",
        provider=PROVIDER,
    )
    assert s3.get_object(Bucket=STAGE, Key="C/small.txt")["Body"].read() == SMALL
    assert not [k for k in keys(s3) if k.startswith(sync_granule.TEMP_PREFIX)]
    assert staged["duplicate"] == ("replaced" if handling == "replace" else "versioned")
