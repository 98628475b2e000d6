"""CNM notification -> granule (the TranslateMessage step)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from . import cnm as cnm_mod
from .errors import CnmValidationError


def collection_id(name: str, version: str | None) -> str:
    """``name__version`` (Cumulus style), or ``name`` when there is no version."""
    return f"{name}__{version}" if version else name


def split_s3_uri(uri: str) -> tuple[str, str]:
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
    if scheme in ("https", "http") and parsed.netloc:
        return scheme, None, None
    raise CnmValidationError(f"file uri {uri!r} is not an s3:// or https:// URI", "$.product.files[].uri")


def granule_files(cnm: dict[str, Any]) -> list[dict[str, Any]]:
    """The product's files (from ``files`` or ``filegroups``) as granule files.

    A file listed twice (same name and uri, e.g. in two filegroups) is kept
    once; two different files with the same name would overwrite each other
    in staging, so that is a validation error.
    """
    files: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for f in cnm_mod.product_files(cnm):
        name, uri = f["name"], f["uri"]
        if name in seen:
            if seen[name] == uri:
                continue
            raise CnmValidationError(f"two different files are named {name!r}", "$.product")
        seen[name] = uri
        _scheme, bucket, key = parse_uri(uri)
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


def granule_id(cnm: dict[str, Any], files: list[dict[str, Any]], config: dict[str, Any]) -> str:
    """The granule id: the collection's ``granule_id_extraction`` regex (one group)
    applied to the first data file's name, else ``product.name``."""
    pattern = config.get("granule_id_extraction")
    if pattern:
        data = [f for f in files if f["type"] == "data"] or files
        try:
            match = re.search(pattern, data[0]["name"])
        except re.error as exc:
            raise CnmValidationError(f"granule_id_extraction {pattern!r} is not a valid regex: {exc}") from None
        if not match or not match.groups() or not match.group(1):
            raise CnmValidationError(
                f"file name {data[0]['name']!r} does not match the collection's granule_id_extraction {pattern!r}",
                "$.product.files[].name",
            )
        return match.group(1)
    return cnm["product"]["name"]


def translate(cnm: dict[str, Any], collection: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate the CNM and return ``[granule]`` for it.

    ``collection`` is ``meta.collection`` (name, version) and wins over the
    CNM's own collection fields; the CNM's values are the fallback.
    """
    cnm_mod.validate_notification(cnm)
    files = granule_files(cnm)
    name = collection.get("name") or cnm_mod.collection_name(cnm)
    version = collection.get("version") or cnm_mod.collection_version(cnm) or cnm["product"].get("dataVersion")
    granule: dict[str, Any] = {
        "granuleId": granule_id(cnm, files, config),
        "dataType": name,
        "version": version,
        "files": files,
    }
    if cnm["product"].get("dataVersion"):
        granule["dataVersion"] = cnm["product"]["dataVersion"]
    return [granule]
