"""Copy a granule's files into the staging bucket and verify them (SyncGranule).

Before anything is read, every file is checked: its ``name`` must be a plain
file name (not empty, ``.``, ``..``, nor containing ``/``, ``\\`` or NUL) and
its ``s3://bucket/key`` (taken literally, see
:func:`cnm_ingest.granule.split_s3_uri`) must lie in the provider's own
location: the provider config's ``host`` bucket, narrowed to
``allowed_prefixes`` when the provider lists any, and never one of the
stack's own buckets (staging, payload). An ``http(s)://`` source must be on
the provider's configured ``host`` (and ``port`` when set; see
:func:`cnm_ingest.confine.check`). Anything else is a
:class:`~cnm_ingest.errors.CnmValidationError` (VALIDATION_ERROR) raised
before the first S3 call, so one provider cannot have another's data staged.

Each file's bucket, type and url_path come from the collection's ``files``
entry whose ``regex`` matches its name (Cumulus semantics, see
:func:`cnm_ingest.url_template.place`); other files go to the staging bucket
under the collection's ``url_path``.

Copies are server-side (``copy_object``; ``upload_part_copy`` at and above
:data:`MULTIPART_THRESHOLD`, S3's single-copy limit), so no file passes
through the Lambda; an http(s) file is streamed by :mod:`cnm_ingest.sources`
(checksum computed on the way). A good staged file is never destroyed: every file of the
granule is first copied to a temporary key (:func:`temporary_key`, under
:data:`TEMP_PREFIX`) and read back in chunks to check its size and checksum;
a mismatch deletes only that temporary copy. Only when every file verified
are they moved to ``<url_path>/<name>`` according to the collection's
``duplicate_handling``:

- ``error``: an existing file fails the granule (DuplicateFileError) and is left alone;
- ``skip``: an existing file is kept and the new one dropped;
- ``replace``: the verified file overwrites the existing one;
- ``version``: the existing file is first copied to ``<key>.v<timestamp>``,
  then the verified file takes its place.

Staged objects carry the execution name in their metadata, so a retried
SyncGranule overwrites its own earlier copies instead of treating them as
duplicates.
"""

from __future__ import annotations

import hashlib
import math
import os
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from . import aws, checksum, confine, sources, url_template
from . import message as workflow_message
from .errors import (
    ChecksumMismatchError,
    CnmValidationError,
    ConfigurationError,
    DuplicateFileError,
    FileNotFoundAtSourceError,
    SizeMismatchError,
    TransferError,
    TransientError,
)
from .task import Execution, Message, collection_config, provider_config

MULTIPART_THRESHOLD = 5 * 1024**3  # copy_object copies at most 5 GiB
PART_SIZE = 512 * 1024**2
MIN_PART_SIZE = 5 * 1024**2  # S3's minimum for every part but the last
MAX_PARTS = 10_000
DEFAULT_URL_PATH = "file-staging/{stack}/{collection}"
DUPLICATE_HANDLING = ("error", "skip", "replace", "version")
EXECUTION_METADATA = "cnm-ingest-execution"
SOURCE_METADATA = "cnm-ingest-source"
TEMP_PREFIX = ".cnm-ingest-tmp"
_NAME_FORBIDDEN = ("/", "\\", "\x00")


def staging_bucket(meta: dict[str, Any], config: dict[str, Any]) -> str:
    """``buckets.private.name`` from the collection config override, else ``meta.buckets``."""
    for buckets in (config.get("buckets"), meta.get("buckets")):
        name = ((buckets or {}).get("private") or {}).get("name") if isinstance(buckets, dict) else None
        if name:
            return name
    raise ConfigurationError("no staging bucket: meta.buckets.private.name is not set")


def url_path(template: str, *, stack: str, name: str, version: str | None, granule_id: str) -> str:
    """Render a ``url_path`` template for a granule (see :mod:`cnm_ingest.url_template`)."""
    return place(
        {"name": "_", "type": "data"},
        {"granuleId": granule_id, "dataType": name, "version": version},
        buckets={},
        default_bucket="",
        template=template,
        config={},
        stack=stack,
    ).prefix


def place(
    file: dict[str, Any], granule: dict[str, Any], *, template: str, config: dict[str, Any], **where: Any
) -> url_template.Placement:
    """:func:`cnm_ingest.url_template.place`; a granuleId the url_path uses must be a plain name."""
    check_name(file.get("name"))
    spec = url_template.file_spec(file["name"], config) or {}
    if "granuleId" in str(spec.get("url_path") or template):
        check_name(granule.get("granuleId"), "granuleId")
    return url_template.place(file, granule, template=template, config=config, **where)


def head(bucket: str, key: str) -> dict[str, Any] | None:
    """``head_object``, or None when the object does not exist."""
    try:
        return aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            return None
        raise


def copy(
    src: dict[str, str],
    bucket: str,
    key: str,
    size: int,
    *,
    metadata: dict[str, str],
    content_type: str,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> None:
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
            result = s3.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=src,
                CopySourceRange=f"bytes={start}-{end}",
            )
            parts.append({"ETag": result["CopyPartResult"]["ETag"], "PartNumber": number})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]


def check_name(name: Any, what: str = "file name") -> str:
    """``name`` when it is a plain file name; CnmValidationError otherwise.

    Empty, ``.``, ``..``, anything containing ``/``, ``\\`` or NUL, and text
    that is not valid UTF-8 (lone surrogates) are refused: the staged key is
    exactly ``<url_path>/<name>``, so a name must not climb or add folders.
    """
    path = "$.product.files[].name" if what == "file name" else "$.product.name"
    if not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in _NAME_FORBIDDEN):
        raise CnmValidationError(
            f"{what} {name!r} is not a plain file name (empty, '.', '..', or has '/', '\\' or NUL)", path
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise CnmValidationError(f"{what} {name!r} is not valid Unicode text", path) from None
    return name


def stack_buckets(meta: dict[str, Any]) -> set[str]:
    """The stack's own buckets (``meta.buckets`` and ``PAYLOAD_BUCKET``): never a source."""
    names = {os.environ.get("PAYLOAD_BUCKET") or ""}
    for bucket in (meta.get("buckets") or {}).values() if isinstance(meta.get("buckets"), dict) else ():
        if isinstance(bucket, dict) and isinstance(bucket.get("name"), str):
            names.add(bucket["name"])
    return names - {""}


def check_source(file: dict[str, Any], provider: dict[str, Any], forbidden: set[str]) -> tuple[str | None, str | None]:
    """``(bucket, key)`` of the file's ``source`` (``(None, None)`` for http, https and sftp), when the
    provider may be read there.

    The one confinement rule of every protocol, :func:`cnm_ingest.confine.check`:
    the URI's scheme is the provider's declared ``protocol``, its host (for s3 the
    bucket) and port the provider's, its path or key inside ``allowed_prefixes``
    when the provider lists any (a prefix ``in`` allows ``in/x``, not
    ``incoming/x``), with no ``.`` / ``..`` segments, user info, query or
    fragment. An s3 source is never in a bucket of ``forbidden`` (the stack's
    own). The file's checksum must have its type's form
    (:func:`cnm_ingest.checksum.check_form`). A remote host is resolved and
    its addresses checked (:func:`cnm_ingest.confine.addresses`:
    AddressNotAllowedError). Raises CnmValidationError (VALIDATION_ERROR) or
    ConfigurationError (the provider's settings); no connection to the
    provider and no S3 call.
    """
    checksum.check_form(file)
    source = confine.check(file.get("source"), provider)
    if source.scheme != "s3":
        confine.addresses(source, provider)  # resolved and checked now, connected to as checked later
        return None, None
    if source.host in forbidden:
        who = provider.get("id") or "the provider"
        raise CnmValidationError(
            f"{file['source']} is in the stack's own bucket {source.host!r}, not {who}'s", "$.product.files[].uri"
        )
    return source.host, source.path


def temporary_key(execution_name: str, key: str) -> str:
    """Where a file is verified before it is moved to ``key`` (the same for every retry of the execution)."""
    digest = hashlib.sha256(f"{execution_name}\x1f{key}".encode()).hexdigest()[:40]
    return f"{TEMP_PREFIX}/{digest}"


def _source_head(file: dict[str, Any]) -> dict[str, Any]:
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


def _verify(file: dict[str, Any], bucket: str, key: str) -> int:
    """Check the (temporary) object's size and checksum; delete it when they do not match."""
    if file.get("checksum"):
        digest, size = checksum.s3_digest(bucket, key, checksum.algorithm(file.get("checksumType")))
        ok_checksum = checksum.matches(file["checksum"], digest)
    else:
        found = head(bucket, key)
        if found is None:  # deleted since the copy; the retried step copies it again
            raise TransientError(f"the temporary copy of {file['source']} (s3://{bucket}/{key}) is gone")
        size, ok_checksum, digest = found["ContentLength"], True, ""
    if size != file["size"] or not ok_checksum:
        aws.client("s3").delete_object(Bucket=bucket, Key=key)
        if size != file["size"]:
            raise SizeMismatchError(
                f"the copy of {file['source']} is {size} bytes, the CNM says {file['size']}; "
                "the temporary copy was deleted, nothing staged was touched"
            )
        raise ChecksumMismatchError(
            f"the copy of {file['source']} has {file.get('checksumType') or 'md5'} {digest}, "
            f"the CNM says {file['checksum']}; the temporary copy was deleted, nothing staged was touched"
        )
    return size


def _existing(bucket: str, key: str, execution_name: str) -> dict[str, Any] | None:
    """The object at ``key`` unless absent or written by an earlier attempt of this execution."""
    found = head(bucket, key)
    if found is not None and execution_name and found.get("Metadata", {}).get(EXECUTION_METADATA) == execution_name:
        return None
    return found


def _duplicate_error(bucket: str, key: str) -> DuplicateFileError:
    return DuplicateFileError(f"s3://{bucket}/{key} already exists and the collection's duplicate_handling is 'error'")


def prepare_file(
    file: dict[str, Any],
    *,
    bucket: str,
    prefix: str,
    duplicate_handling: str,
    checksum_required: bool,
    execution_name: str,
    provider: dict[str, Any],
    forbidden: set[str],
) -> dict[str, Any]:
    """Check one file without any AWS call; returns it with its literal source and staged location."""
    if duplicate_handling not in DUPLICATE_HANDLING:
        raise ConfigurationError(f"duplicate_handling must be one of {DUPLICATE_HANDLING}, not {duplicate_handling!r}")
    name = check_name(file.get("name"))
    if checksum_required and not file.get("checksum"):
        raise CnmValidationError(
            f"file {name!r} has no checksum and the collection requires one", "$.product.files[].checksum"
        )
    src_bucket, src_key = check_source(file, provider, forbidden | {bucket})
    key = url_template.object_key(prefix, name)
    return {
        **file,
        "bucket": src_bucket,
        "key": src_key,
        "staged_bucket": bucket,
        "staged_key": key,
        "temp_key": temporary_key(execution_name, key),
    }


def _to_temporary(file: dict[str, Any], execution_name: str, provider: dict[str, Any], **copy_options: Any) -> int:
    bucket = file["staged_bucket"]
    metadata = {EXECUTION_METADATA: execution_name, SOURCE_METADATA: file["source"][:1024]}
    if file["bucket"] is None:  # http(s): streamed, size and checksum verified before the temporary object exists
        return sources.fetch_to_s3(
            file, provider, bucket, file["temp_key"], metadata=metadata, part_size=copy_options.get("part_size")
        )
    source = _source_head(file)
    copy(
        {"Bucket": file["bucket"], "Key": file["key"]},
        bucket,
        file["temp_key"],
        source["ContentLength"],
        metadata=metadata,
        content_type=source.get("ContentType", "binary/octet-stream"),
        **copy_options,
    )
    return _verify(file, bucket, file["temp_key"])


def _commit(
    file: dict[str, Any], size: int, *, duplicate_handling: str, execution_name: str, **copy_options: Any
) -> dict[str, Any]:
    """Move a verified temporary copy to its staged key according to the duplicate mode."""
    bucket, key, temp = file["staged_bucket"], file["staged_key"], file["temp_key"]
    staged = _staged(file, size=size)
    existing = _existing(bucket, key, execution_name)
    s3 = aws.client("s3")
    if existing is not None:
        if duplicate_handling == "error":
            s3.delete_object(Bucket=bucket, Key=temp)
            raise _duplicate_error(bucket, key)
        if duplicate_handling == "skip":
            s3.delete_object(Bucket=bucket, Key=temp)
            return _staged(file, size=existing["ContentLength"], duplicate="skipped")
        if duplicate_handling == "version":
            versioned = f"{key}.v{_timestamp()}"
            copy(
                {"Bucket": bucket, "Key": key},
                bucket,
                versioned,
                existing["ContentLength"],
                metadata=existing.get("Metadata", {}),
                content_type=existing.get("ContentType", "binary/octet-stream"),
                **copy_options,
            )
            staged.update(duplicate="versioned", versionedKey=versioned)
        else:
            staged["duplicate"] = "replaced"
    temp_head = head(bucket, temp) or {}
    copy(
        {"Bucket": bucket, "Key": temp},
        bucket,
        key,
        size,
        metadata=temp_head.get("Metadata", {}),
        content_type=temp_head.get("ContentType", "binary/octet-stream"),
        **copy_options,
    )
    s3.delete_object(Bucket=bucket, Key=temp)
    return staged


def _discard(files: list[dict[str, Any]]) -> None:
    """Best effort: delete temporary copies after a failure (the error being raised matters more)."""
    for f in files:
        try:
            aws.client("s3").delete_object(Bucket=f["staged_bucket"], Key=f["temp_key"])
        except ClientError:
            pass


def _staged(file: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The granule file pointing at its staged copy."""
    out = {k: v for k, v in file.items() if k not in ("staged_bucket", "staged_key", "temp_key")}
    return {**out, "bucket": file["staged_bucket"], "key": file["staged_key"], **fields}


def sync_files(
    files: list[dict[str, Any]],
    *,
    bucket: str,
    prefix: str,
    duplicate_handling: str,
    checksum_required: bool,
    execution_name: str,
    provider: dict[str, Any],
    forbidden: set[str] | None = None,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> list[dict[str, Any]]:
    """Stage one granule's files under ``s3://bucket/prefix/`` (:func:`stage_prepared` after :func:`prepare_file`)."""
    prepared = [
        prepare_file(
            f,
            bucket=bucket,
            prefix=prefix,
            duplicate_handling=duplicate_handling,
            checksum_required=checksum_required,
            execution_name=execution_name,
            provider=provider,
            forbidden=forbidden or set(),
        )
        for f in files
    ]
    return stage_prepared(
        prepared,
        duplicate_handling=duplicate_handling,
        execution_name=execution_name,
        provider=provider,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
    )


def stage_prepared(
    prepared: list[dict[str, Any]],
    *,
    duplicate_handling: str,
    execution_name: str,
    provider: dict[str, Any],
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> list[dict[str, Any]]:
    """Stage one granule's checked files: copy and verify all into temporary keys, then commit all.

    Returns the granule files pointing at their staged copies. Every file
    passed :func:`prepare_file` before this is called; nothing staged is
    touched before every file verified.
    """
    copy_options = {"multipart_threshold": multipart_threshold, "part_size": part_size}

    def where(f: dict[str, Any]) -> tuple[str, str]:
        return f["staged_bucket"], f["staged_key"]

    existing: dict[tuple[str, str], dict[str, Any] | None] = {}
    if duplicate_handling in ("error", "skip"):  # decided before copying anything
        existing = {where(f): _existing(*where(f), execution_name) for f in prepared}
        if duplicate_handling == "error":
            for (bucket, key), found in existing.items():
                if found is not None:
                    raise _duplicate_error(bucket, key)
    to_copy = [f for f in prepared if existing.get(where(f)) is None]
    sizes: list[int] = []
    try:
        for f in to_copy:
            sizes.append(_to_temporary(f, execution_name, provider, **copy_options))
    except BaseException:
        _discard(to_copy)
        raise
    staged = {
        where(f): _commit(f, size, duplicate_handling=duplicate_handling, execution_name=execution_name, **copy_options)
        for f, size in zip(to_copy, sizes, strict=True)
    }
    for f in prepared:
        found = existing.get(where(f))
        if found is not None:
            staged[where(f)] = _staged(f, size=found["ContentLength"], duplicate="skipped")
    return [staged[where(f)] for f in prepared]


def sync_file(
    file: dict[str, Any],
    *,
    bucket: str,
    prefix: str,
    duplicate_handling: str,
    checksum_required: bool,
    execution_name: str,
    provider: dict[str, Any],
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> dict[str, Any]:
    """Stage one file (:func:`sync_files` for a single file)."""
    [staged] = sync_files(
        [file],
        bucket=bucket,
        prefix=prefix,
        duplicate_handling=duplicate_handling,
        checksum_required=checksum_required,
        execution_name=execution_name,
        provider=provider,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
    )
    return staged


def sync_message(message: Message, execution: Execution, **copy_options: Any) -> Message:
    """The SyncGranule step: stage every file of every granule in ``payload.granules``.

    Every file of every granule is checked (names, provider confinement)
    before the first S3 call.
    """
    meta = message.get("meta") or {}
    config = collection_config(meta)
    granules = workflow_message.granules(message)
    if not isinstance(granules, list) or not granules:
        raise CnmValidationError("payload.granules is empty: TranslateMessage did not run", "$.payload.granules")
    bucket = staging_bucket(meta, config)
    template = config.get("url_path") or DEFAULT_URL_PATH
    handling = config.get("duplicate_handling") or config.get("duplicateHandling") or "error"  # ours, else Cumulus's
    provider = provider_config(meta)
    buckets = config.get("buckets") or meta.get("buckets") or {}
    options = {
        "duplicate_handling": handling,
        "checksum_required": bool(config.get("checksum_required")),
        "execution_name": execution.get("name", ""),
        "provider": provider,
    }
    placements = [
        [
            (
                f,
                place(
                    f,
                    granule,
                    buckets=buckets,
                    default_bucket=bucket,
                    template=template,
                    config=config,
                    stack=meta.get("stack", ""),
                ),
            )
            for f in granule["files"]
        ]
        for granule in granules
    ]  # collection files entries: bucket, type and url_path per file (Cumulus)
    forbidden = stack_buckets(meta) | {at.bucket for placed in placements for _, at in placed}
    prepared = [
        [
            prepare_file({**f, "type": at.type}, bucket=at.bucket, prefix=at.prefix, forbidden=forbidden, **options)
            for f, at in placed
        ]
        for placed in placements
    ]  # every check before any read
    synced = []
    for granule, files in zip(granules, prepared, strict=True):
        files = stage_prepared(
            files,
            duplicate_handling=handling,
            execution_name=options["execution_name"],
            provider=provider,
            **copy_options,
        )
        synced.append({**granule, "files": files, "sync_completed": datetime.now(UTC).isoformat()})
    return workflow_message.set_part(message, "payload", "granules", synced)
