"""CNM notification -> granule (the TranslateMessage step)."""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlparse

from cnm_ingest.cnm import checksum, notification, validate
from cnm_ingest.errors import CnmValidationError, ConfigurationError


def collection_id(name: str, version: str | None) -> str:
    """``name__version`` (Cumulus style), or ``name`` when there is no version."""
    return f"{name}__{version}" if version else name


def split_s3_uri(uri: object) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``, taken literally.

    The key is everything after the first ``/`` following the bucket: no URL
    decoding, no query or fragment (``#``, ``?`` and ``%41`` stay in the key),
    as S3 itself names objects.
    """
    if not isinstance(uri, str) or uri[:5].lower() != "s3://":
        raise CnmValidationError(f"file uri {uri!r} is not an s3:// URI", "$.product.files[].uri")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key:
        raise CnmValidationError(f"file uri {uri!r} has no bucket or key", "$.product.files[].uri")
    return bucket, key


def parse_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(scheme, bucket, key)``; bucket/key only for ``s3://`` URIs."""
    if uri[:5].lower() == "s3://":
        bucket, key = split_s3_uri(uri)
        return "s3", bucket, key
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("https", "http", "sftp") and parsed.netloc:
        return scheme, None, None
    raise CnmValidationError(f"file uri {uri!r} is not an s3://, http(s):// or sftp:// URI", "$.product.files[].uri")


def granule_files(cnm: dict[str, Any]) -> list[dict[str, Any]]:
    """The product's files (from ``files`` or ``filegroups``) as granule files.

    A file's checksum must have the form of its ``checksumType``
    (:func:`cnm_ingest.cnm.checksum.digest_bytes`). A file listed twice (same
    name and uri, e.g. in two filegroups) is kept once; two different files
    with the same name would overwrite each other in staging, so that is a
    validation error.
    """
    files: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for f in notification.product_files(cnm):
        name, uri = f["name"], f["uri"]
        if name in seen:
            if seen[name] == uri:
                continue
            raise CnmValidationError(f"two different files are named {name!r}", "$.product")
        seen[name] = uri
        _scheme, bucket, key = parse_uri(uri)
        checksum.check_form(f)  # an impossible checksum is refused here, before any copy
        files.append(
            {
                "name": name,
                "bucket": bucket,
                "key": key,
                "source": uri,
                "size": f["size"],
                "checksumType": f.get("checksumType"),
                "checksum": f.get("checksum"),
                "type": f["type"],
            }
        )
    if not files:
        raise CnmValidationError("the product has no files", "$.product")
    return files


def extraction_pattern(config: dict[str, Any]) -> str | None:
    """The collection's granule id regex: Cumulus's ``granuleIdExtraction``, else our ``granule_id_extraction``."""
    pattern = config.get("granuleIdExtraction") or config.get("granule_id_extraction")
    if pattern is not None and not isinstance(pattern, str):
        raise ConfigurationError(f"granuleIdExtraction must be a string, not {type(pattern).__name__}")
    return pattern or None


def granule_id(cnm: dict[str, Any], config: dict[str, Any]) -> str:
    """The granule id as PO.DAAC's CNM-to-granule task computes it.

    ``product.name`` without anything up to its first ``/``; when the
    collection has an extraction regex and it matches (a search, not a full
    match), its first group; otherwise that name itself.
    """
    name = cnm["product"]["name"]
    name = name[name.find("/") + 1 :]
    pattern = extraction_pattern(config)
    if not pattern:
        return name
    try:
        regex = _compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"granuleIdExtraction {pattern!r} is not a valid regex: {exc}") from None
    if regex.groups < 1:
        raise ConfigurationError(f"granuleIdExtraction {pattern!r} has no group to take the granule id from")
    match = regex.search(name)
    return match.group(1) if match and match.group(1) else name


@functools.lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def producer_granule_id(cnm: dict[str, Any]) -> str:
    """``product.producerGranuleId`` when the notification has one, else ``product.name`` (as sent)."""
    product = cnm["product"]
    value = product.get("producerGranuleId")
    return value if isinstance(value, str) and value else product["name"]


def translate(cnm: dict[str, Any], collection: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate the CNM and return ``[granule]`` for it.

    ``collection`` is ``meta.collection`` (name, version) and wins over the
    CNM's own collection fields; the CNM's values are the fallback.
    """
    cnm = validate.normalize_and_validate(cnm)  # the consumer's normalised CNM is settled: checked, not redone
    files = granule_files(cnm)
    name = collection.get("name") or notification.collection_name(cnm)
    version = collection.get("version") or notification.collection_version(cnm) or cnm["product"].get("dataVersion")
    granule: dict[str, Any] = {
        "granuleId": granule_id(cnm, config),
        "producerGranuleId": producer_granule_id(cnm),
        "dataType": name,
        "version": version,
        "files": files,
    }
    if cnm["product"].get("dataVersion"):
        granule["dataVersion"] = cnm["product"]["dataVersion"]
    return [granule]
