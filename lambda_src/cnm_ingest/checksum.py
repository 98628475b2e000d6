"""Streaming checksums of S3 objects.

An object is read in chunks of :data:`CHUNK_SIZE` bytes from ``get_object``'s
body and fed to the hash, so a file of any size is verified in constant
memory (about two chunks).

The chunk size comes from the sweep in ``bench/checksums.py``
(``python -m bench.run --only checksums``): 256 KiB hashed as fast as or
faster than every larger chunk for md5 and sha256 (a chunk that stays in the
CPU cache while it is hashed), at 0.5 MiB peak against 16 MiB for 8 MiB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable

from . import aws
from .errors import CnmValidationError

CHUNK_SIZE = 256 * 1024

# CNM checksumType -> hashlib name. "SHA2" is read as SHA-256.
ALGORITHMS = {"md5": "md5", "sha1": "sha1", "sha2": "sha256", "sha256": "sha256", "sha512": "sha512"}


def algorithm(checksum_type: str | None) -> str:
    """The hashlib algorithm for a CNM ``checksumType`` (md5 when not given)."""
    name = ALGORITHMS.get((checksum_type or "md5").lower())
    if name is None:
        raise CnmValidationError(f"unsupported checksumType {checksum_type!r}", "$.product.files[].checksumType")
    return name


def digest_chunks(chunks: Iterable[bytes], algo: str) -> tuple[str, int]:
    """``(hex digest, bytes read)`` over an iterable of byte chunks."""
    h = hashlib.new(algo)
    total = 0
    for chunk in chunks:
        h.update(chunk)
        total += len(chunk)
    return h.hexdigest(), total


def s3_digest(bucket: str, key: str, algo: str, chunk_size: int | None = None) -> tuple[str, int]:
    """Stream ``s3://bucket/key`` through ``algo``; returns ``(hex digest, size)``."""
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return digest_chunks(body.iter_chunks(chunk_size or CHUNK_SIZE), algo)
    finally:
        body.close()


def matches(expected: str, hexdigest: str) -> bool:
    """True when ``expected`` (hex, any case, or base64 of the digest) equals ``hexdigest``."""
    expected = expected.strip()
    if expected.lower() == hexdigest.lower():
        return True
    try:
        raw = base64.b64decode(expected, validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw.hex() == hexdigest.lower()
