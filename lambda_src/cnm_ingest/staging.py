"""Copy a granule's files into the staging bucket and verify them (SyncGranule).

Copies are server-side (``copy_object``; ``upload_part_copy`` at and above
:data:`MULTIPART_THRESHOLD`, S3's single-copy limit), so no file passes
through the Lambda. Each staged object is then read back in chunks to check
its size and checksum against the CNM; a staged copy that does not match is
deleted. Staged objects carry the execution name in their metadata, so a
retried SyncGranule overwrites its own earlier copies instead of treating
them as duplicates.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from . import aws, checksum, sources, url_template
from .errors import (
    ChecksumMismatchError,
    CnmValidationError,
    ConfigurationError,
    DuplicateFileError,
    FileNotFoundAtSourceError,
    SizeMismatchError,
    TransferError,
)
from .task import Execution, Message, collection_config, json_object

MULTIPART_THRESHOLD = 5 * 1024**3  # copy_object copies at most 5 GiB
PART_SIZE = 512 * 1024**2
MIN_PART_SIZE = 5 * 1024**2  # S3's minimum for every part but the last
MAX_PARTS = 10_000
DEFAULT_URL_PATH = "file-staging/{stack}/{collection}"
DUPLICATE_HANDLING = ("error", "skip", "replace", "version")
EXECUTION_METADATA = "cnm-ingest-execution"
SOURCE_METADATA = "cnm-ingest-source"


def staging_bucket(meta: dict[str, Any], config: dict[str, Any]) -> str:
    """``buckets.private.name`` from the collection config override, else ``meta.buckets``."""
    for buckets in (config.get("buckets"), meta.get("buckets")):
        name = ((buckets or {}).get("private") or {}).get("name") if isinstance(buckets, dict) else None
        if name:
            return name
    raise ConfigurationError("no staging bucket: meta.buckets.private.name is not set")


def url_path(template: str, *, stack: str, name: str, version: str | None, granule_id: str) -> str:
    """Render a ``url_path`` template for a granule (see :mod:`cnm_ingest.url_template`)."""
    return url_template.place({"name": "_", "type": "data"}, {"granuleId": granule_id, "dataType": name, "version": version},
                              buckets={}, default_bucket="", template=template, config={}, stack=stack).prefix


def head(bucket: str, key: str) -> dict[str, Any] | None:
    """``head_object``, or None when the object does not exist."""
    try:
        return aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            return None
        raise


def copy(src: dict[str, str], bucket: str, key: str, size: int, *, metadata: dict[str, str], content_type: str,
         multipart_threshold: int | None = None, part_size: int | None = None) -> None:
    """Server-side copy of ``src`` (``{"Bucket", "Key"}``) to ``s3://bucket/key``."""
    s3 = aws.client("s3")
    threshold = MULTIPART_THRESHOLD if multipart_threshold is None else multipart_threshold
    extra = {"Metadata": metadata, "ContentType": content_type}
    if size < threshold:
        s3.copy_object(CopySource=src, Bucket=bucket, Key=key, MetadataDirective="REPLACE", **extra)
        return
    part = max(part_size or PART_SIZE, MIN_PART_SIZE, math.ceil(size / MAX_PARTS))
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, size, part), start=1):
            end = min(start + part, size) - 1
            result = s3.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                         CopySource=src, CopySourceRange=f"bytes={start}-{end}")
            parts.append({"ETag": result["CopyPartResult"]["ETag"], "PartNumber": number})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]


def _source_head(file: dict[str, Any]) -> dict[str, Any]:
    if not file.get("bucket") or not file.get("key"):
        raise ConfigurationError(f"only s3:// sources are supported, not {file['source']!r}")
    try:
        found = head(file["bucket"], file["key"])
    except ClientError as exc:
        if aws.is_transient(exc):
            raise
        raise TransferError(f"cannot read {file['source']}: {exc}") from None
    if found is None:
        raise FileNotFoundAtSourceError(f"{file['source']} does not exist at the provider")
    if found["ContentLength"] != file["size"]:
        raise SizeMismatchError(f"{file['source']} is {found['ContentLength']} bytes, the CNM says {file['size']}")
    return found


def _verify(file: dict[str, Any], bucket: str, key: str, checksum_required: bool) -> int:
    """Check the staged object's size and checksum; delete it when they do not match."""
    uri = f"s3://{bucket}/{key}"
    if file.get("checksum"):
        digest, size = checksum.s3_digest(bucket, key, checksum.algorithm(file.get("checksumType")))
        ok_checksum = checksum.matches(file["checksum"], digest)
    elif checksum_required:
        raise CnmValidationError(f"file {file['name']!r} has no checksum and the collection requires one",
                                 "$.product.files[].checksum")
    else:
        size, ok_checksum, digest = head(bucket, key)["ContentLength"], True, ""
    if size != file["size"] or not ok_checksum:
        aws.client("s3").delete_object(Bucket=bucket, Key=key)
        if size != file["size"]:
            raise SizeMismatchError(f"{uri} (from {file['source']}) is {size} bytes, the CNM says {file['size']}")
        raise ChecksumMismatchError(
            f"{uri} (from {file['source']}) has {file.get('checksumType') or 'md5'} {digest}, "
            f"the CNM says {file['checksum']}; the staged copy was deleted"
        )
    return size


def sync_file(file: dict[str, Any], *, bucket: str, prefix: str, duplicate_handling: str, checksum_required: bool,
              execution_name: str, multipart_threshold: int | None = None, part_size: int | None = None,
              provider: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stage one granule file; returns the granule file pointing at the staged copy."""
    if duplicate_handling not in DUPLICATE_HANDLING:
        raise ConfigurationError(f"duplicate_handling must be one of {DUPLICATE_HANDLING}, not {duplicate_handling!r}")
    if checksum_required and not file.get("checksum"):
        raise CnmValidationError(f"file {file['name']!r} has no checksum and the collection requires one",
                                 "$.product.files[].checksum")
    remote = not file.get("bucket") and sources.is_remote(file.get("source", ""))  # http(s): sources.py
    source = None if remote else _source_head(file)
    key = url_template.object_key(prefix, file["name"])
    staged = {**file, "bucket": bucket, "key": key}
    existing = head(bucket, key)
    if existing is not None and execution_name and existing.get("Metadata", {}).get(EXECUTION_METADATA) == execution_name:
        existing = None  # our own copy from an earlier attempt of this execution
    if existing is not None:
        if duplicate_handling == "error":
            raise DuplicateFileError(f"s3://{bucket}/{key} already exists and the collection's duplicate_handling is 'error'")
        if duplicate_handling == "skip":
            return {**staged, "size": existing["ContentLength"], "duplicate": "skipped"}
        if duplicate_handling == "version":
            versioned = f"{key}.v{_timestamp()}"
            copy({"Bucket": bucket, "Key": key}, bucket, versioned, existing["ContentLength"],
                 metadata=existing.get("Metadata", {}), content_type=existing.get("ContentType", "binary/octet-stream"),
                 multipart_threshold=multipart_threshold, part_size=part_size)
            staged.update(duplicate="versioned", versionedKey=versioned)
        else:
            staged["duplicate"] = "replaced"
    metadata = {EXECUTION_METADATA: execution_name, SOURCE_METADATA: file["source"][:1024]}
    if source is None:  # streamed and verified before the object exists
        staged["size"] = sources.fetch_to_s3(file, provider or {}, bucket, key, metadata=metadata, part_size=part_size)
        return staged
    copy({"Bucket": file["bucket"], "Key": file["key"]}, bucket, key, source["ContentLength"], metadata=metadata,
         content_type=source.get("ContentType", "binary/octet-stream"),
         multipart_threshold=multipart_threshold, part_size=part_size)
    staged["size"] = _verify(file, bucket, key, checksum_required)
    return staged


def _provider(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta.provider`` flattened: ``{"id", **config}`` (config may be a JSON string)."""
    provider = meta.get("provider") if isinstance(meta.get("provider"), dict) else {}
    config = provider.get("config")
    config = json_object(config) if isinstance(config, str) else config
    return {**(config if isinstance(config, dict) else {}), **{k: v for k, v in provider.items() if k != "config"}}


def sync_message(message: Message, execution: Execution, **copy_options: Any) -> Message:
    """The SyncGranule step: stage every file of every granule in ``payload.granules``."""
    meta = message.get("meta") or {}
    config = collection_config(meta)
    granules = (message.get("payload") or {}).get("granules")
    if not isinstance(granules, list) or not granules:
        raise CnmValidationError("payload.granules is empty: TranslateMessage did not run", "$.payload.granules")
    bucket = staging_bucket(meta, config)
    template = config.get("url_path") or DEFAULT_URL_PATH
    handling = config.get("duplicate_handling") or config.get("duplicateHandling") or "error"  # ours, else Cumulus's key
    synced = []
    buckets = config.get("buckets") or meta.get("buckets") or {}
    for granule in granules:
        files = []
        for f in granule["files"]:  # collection files entries: bucket, type and url_path per file (Cumulus)
            where = url_template.place(f, granule, buckets=buckets, default_bucket=bucket, template=template,
                                       config=config, stack=meta.get("stack", ""))
            files.append(sync_file({**f, "type": where.type}, bucket=where.bucket, prefix=where.prefix,
                                   duplicate_handling=handling, checksum_required=bool(config.get("checksum_required")),
                                   execution_name=execution.get("name", ""), provider=_provider(meta), **copy_options))
        synced.append({**granule, "files": files, "sync_completed": datetime.now(timezone.utc).isoformat()})
    return {**message, "payload": {**message.get("payload", {}), "granules": synced}}
