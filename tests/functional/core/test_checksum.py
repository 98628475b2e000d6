"""cnm_ingest.cnm.checksum: streaming digests of S3 objects in bounded memory, and digest comparison."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest

from cnm_ingest.cnm import checksum
from cnm_ingest.errors import CnmValidationError

CHUNK = checksum.CHUNK_SIZE


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256", "sha512"])
def test_s3_digest_equals_hashlib_over_the_whole_object(aws, algo, size):
    from cnm_ingest import aws as aws_mod

    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    s3 = aws_mod.client("s3")
    s3.create_bucket(Bucket="cnm-objects", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    key = "dir/a file #1?x=..%2F.nc"
    s3.put_object(Bucket="cnm-objects", Key=key, Body=data)
    assert checksum.s3_digest("cnm-objects", key, algo) == (hashlib.new(algo, data).hexdigest(), size)


class _Body:
    """A get_object Body that records how much is asked of it at once."""

    def __init__(self, data: bytes) -> None:
        self.raw = io.BytesIO(data)
        self.asked: list[int] = []
        self.closed = False

    def iter_chunks(self, chunk_size: int):
        while True:
            self.asked.append(chunk_size)
            chunk = self.raw.read(chunk_size)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        self.closed = True


def test_memory_is_bounded_by_the_chunk_whatever_the_object_size(monkeypatch):
    data = b"\x00\xff" * (5 * CHUNK)
    body = _Body(data)

    class S3:
        def get_object(self, Bucket, Key):
            return {"Body": body}

    monkeypatch.setattr(checksum.aws, "client", lambda service, *a, **k: S3())
    assert checksum.s3_digest("b", "k", "sha256") == (hashlib.sha256(data).hexdigest(), len(data))
    assert set(body.asked) == {CHUNK} and len(body.asked) == 11  # 10 chunks and the empty read
    assert body.closed
    body = _Body(data)
    checksum.s3_digest("b", "k", "md5", chunk_size=4096)
    assert set(body.asked) == {4096}


def test_the_body_is_closed_when_hashing_fails_half_way(monkeypatch):
    class Broken(_Body):
        def iter_chunks(self, chunk_size):
            yield b"some"
            raise ConnectionResetError("connection lost half-way")

    body = Broken(b"")

    class S3:
        def get_object(self, Bucket, Key):
            return {"Body": body}

    monkeypatch.setattr(checksum.aws, "client", lambda service, *a, **k: S3())
    with pytest.raises(ConnectionResetError):
        checksum.s3_digest("b", "k", "md5")
    assert body.closed


@pytest.mark.parametrize(
    "given,expected",
    [(None, "md5"), ("MD5", "md5"), ("sha1", "sha1"), ("SHA2", "sha256"), ("sha256", "sha256"), ("SHA512", "sha512")],
)
def test_checksum_types(given, expected):
    assert checksum.algorithm(given) == expected


@pytest.mark.parametrize("bad", ["crc32", "sha3", "md5 ", "ｍｄ５", "../md5", ""])
def test_unsupported_checksum_types_are_a_validation_error(bad):
    if bad == "":
        assert checksum.algorithm(bad) == "md5"  # empty means not given
        return
    with pytest.raises(CnmValidationError):
        checksum.algorithm(bad)


def test_matches_hex_in_any_case_or_base64_and_nothing_else():
    digest = hashlib.md5(b"granule").hexdigest()
    assert checksum.matches(digest, digest)
    assert checksum.matches(f"  {digest.upper()}\n", digest)
    assert checksum.matches(base64.b64encode(bytes.fromhex(digest)).decode(), digest)
    assert not checksum.matches(digest[:-1] + ("0" if digest[-1] != "0" else "1"), digest)
    assert not checksum.matches("", digest)
    assert not checksum.matches("not base64 !!", digest)
    assert not checksum.matches(base64.b64encode(b"other").decode(), digest)
    assert not checksum.matches(digest + "\u200b", digest)
