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
import math
import re
from collections.abc import Iterable
from typing import Any

from cnm_ingest import aws
from cnm_ingest.errors import CnmValidationError

CHUNK_SIZE = 256 * 1024

# CNM checksumType -> hashlib name. "SHA2" is read as SHA-256.
ALGORITHMS = {"md5": "md5", "sha1": "sha1", "sha2": "sha256", "sha256": "sha256", "sha512": "sha512"}
# CNM checksumType -> the ChecksumAlgorithm S3 computes on a copy (issue 22): these need no byte read by us.
# CRC32, CRC32C and CRC64NVME are S3's too, but not a CNM 1.6.1 checksumType (the schema's enum).
S3_ALGORITHMS = {"sha1": "SHA1", "sha2": "SHA256", "sha256": "SHA256"}
_BY_SIZE = {16: "md5", 20: "sha1", 32: "sha256", 64: "sha512"}
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def algorithm(checksum_type: str | None) -> str:
    """The hashlib algorithm for a CNM ``checksumType`` (md5 when not given)."""
    name = ALGORITHMS.get((checksum_type or "md5").lower())
    if name is None:
        raise CnmValidationError(f"unsupported checksumType {checksum_type!r}", "$.product.files[].checksumType")
    return name


def s3_algorithm(checksum_type: str | None) -> str | None:
    """S3's ``ChecksumAlgorithm`` for a CNM ``checksumType`` when S3 computes it, else None (md5, sha512)."""
    return S3_ALGORITHMS.get((checksum_type or "md5").lower())


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


def digest_bytes(checksum_type: str | None, value: Any) -> bytes:
    """The digest a CNM ``checksum`` stands for; CnmValidationError when it cannot be one for its type.

    The one form rule (TranslateMessage at intake, SyncGranule before any read,
    and every comparison): the algorithm is supported (:func:`algorithm`), and
    the value is the digest's length in hex (any case) or in standard base64
    (``+/``, padded), surrounding spaces ignored. Anything else (a wrong
    length, another alphabet, URL-safe base64) is refused, so a checksum that
    cannot match never costs a copy.
    """
    algo = algorithm(checksum_type)
    size = hashlib.new(algo).digest_size
    where = "$.product.files[].checksum"
    if not isinstance(value, str) or not value.strip():
        raise CnmValidationError(f"checksum {value!r} is not a non-empty string", where)
    text = value.strip()
    if len(text) == 2 * size and _HEX.fullmatch(text):
        return bytes.fromhex(text)
    if _BASE64.fullmatch(text):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw
    shown = text if len(text) <= 200 else text[:200] + "..."
    raise CnmValidationError(
        f"checksum {shown!r} is not a {checksum_type or 'md5'} digest ({2 * size} hex digits or "
        f"{4 * math.ceil(size / 3)} base64 characters)",
        where,
    )


def check_form(file: dict[str, Any]) -> None:
    """:func:`digest_bytes` for a CNM or granule file that has a checksum (its algorithm checked even without)."""
    algorithm(file.get("checksumType"))
    if file.get("checksum") is not None:
        digest_bytes(file.get("checksumType"), file["checksum"])


def matches(expected: str, hexdigest: str, checksum_type: str | None = None) -> bool:
    """True when ``expected`` (a well-formed ``checksum_type`` digest: :func:`digest_bytes`) is ``hexdigest``.

    ``checksum_type`` None takes the algorithm from the digest's length.
    """
    if checksum_type is None:
        checksum_type = _BY_SIZE.get(len(hexdigest) // 2, "md5")
    try:
        return digest_bytes(checksum_type, expected) == bytes.fromhex(hexdigest)
    except CnmValidationError:
        return False
