"""Copy a granule's files into the staging bucket and verify them (SyncGranule).

Before anything is read, every file is checked: its ``name`` must be a plain
file name (not empty, ``.``, ``..``, nor containing ``/``, ``\\`` or NUL) and
its ``s3://bucket/key`` (taken literally, see
:func:`cnm_ingest.workflow.translate_message.split_s3_uri`) must lie in the provider's own
location: the provider config's ``host`` bucket, narrowed to
``allowed_prefixes`` when the provider lists any, and never one of the
stack's own buckets (staging, payload). An ``http(s)://`` source must be on
the provider's configured ``host`` (and ``port`` when set; see
:func:`cnm_ingest.transfer.confine.check`). Anything else is a
:class:`~cnm_ingest.errors.CnmValidationError` (VALIDATION_ERROR) raised
before the first S3 call, so one provider cannot have another's data staged.

Each file's bucket, type and url_path come from the collection's ``files``
entry whose ``regex`` matches its name (Cumulus semantics, see
:func:`cnm_ingest.workflow.url_template.place`); other files go to the staging bucket
under the collection's ``url_path``.

Copies are server-side (``copy_object``; ``upload_part_copy`` at and above
:data:`MULTIPART_THRESHOLD`, S3's single-copy limit), so no file passes
through the Lambda; an http(s) file is streamed by :mod:`cnm_ingest.transfer.sources`
(checksum computed on the way). A good staged file is never destroyed: every file of the
granule is first copied to a temporary key (:func:`temporary_key`, under
:data:`TEMP_PREFIX`) and verified there: for SHA-1 and SHA-256 S3 computes the
checksum of the copy (``ChecksumAlgorithm``; 0 bytes read by the function), for
md5 and SHA-512, and for copies above 5 GiB (whose S3 SHA checksum would be
composite), it is read back once in chunks; the copy is conditional on the
source ETag whose size was checked. A mismatch deletes only that temporary copy.
Files move ``SYNC_CONCURRENCY`` at a time (:mod:`cnm_ingest.transfer.pool`),
with one shared backoff on S3 throttling. Only when every file verified
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

Deadline-aware (:func:`stop_when`, :class:`Continuation`): the temporary copies
of an execution live in its own :func:`temporary_area`, at keys derived from
the execution and the target. Once the invocation's time is nearly out
(``SYNC_DEADLINE_MARGIN_SECONDS``) no new file starts; the step returns
``meta.sync_continuation`` and the state machine runs it again. Every
invocation, and the workflow's retry after a crash or a timeout, lists the
area once and keeps each copy :func:`trust` accepts (its metadata is this
file's, and S3's checksum, the marker or one read proves its bytes), so no
verified file is copied again and the staged result is the undisturbed run's.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError

from cnm_ingest import aws
from cnm_ingest.cnm import checksum
from cnm_ingest.errors import (
    ChecksumMismatchError,
    CnmValidationError,
    ConfigurationError,
    DuplicateFileError,
    FileNotFoundAtSourceError,
    OtherOwnerFileError,
    PartialTransferError,
    SizeMismatchError,
    SyncUnfinishedError,
    TransferError,
    TransientError,
)
from cnm_ingest.transfer import commit_order, confine, pool, provider_access, sources
from cnm_ingest.transfer import plan as copy_plan
from cnm_ingest.workflow import contract_check, payload, url_template
from cnm_ingest.workflow.task import Execution, Message, collection_config, provider_config

MULTIPART_THRESHOLD = copy_plan.MULTIPART_THRESHOLD  # copy_object copies at most 5 GiB
PART_SIZE = copy_plan.PART_SIZE
MIN_PART_SIZE = copy_plan.MIN_PART_SIZE  # S3's minimum for every part but the last
MAX_PARTS = copy_plan.MAX_PARTS
DELETE_BATCH = 1000  # keys per DeleteObjects call (S3's limit)
_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")
DEFAULT_URL_PATH = "file-staging/{stack}/{collection}"
DUPLICATE_HANDLING = ("error", "skip", "replace", "version")
EXECUTION_METADATA = "cnm-ingest-execution"
SOURCE_METADATA = "cnm-ingest-source"
PROVIDER_METADATA = "cnm-ingest-provider"  # the owner of a staged object: its provider id ...
GRANULE_METADATA = "cnm-ingest-granule"  # ... and granule id (percent-encoded)
CHECKSUM_METADATA = "cnm-ingest-checksum"  # "<checksumType>:<checksum>" the staged bytes were verified against
TEMP_PREFIX = provider_access.TEMP_AREA.rstrip("/")  # ".cnm-ingest-tmp"
# What may happen to a target that another granule or provider staged (the collection's other_owner_handling).
OTHER_OWNER_HANDLING = ("same_provider", "error", "duplicate_handling")
DEFAULT_OTHER_OWNER_HANDLING = "same_provider"
VERSION_SUFFIX_BYTES = len(".v") + 18  # ".v" + _timestamp(): YYYYmmddTHHMMSS and milliseconds
_NAME_FORBIDDEN = ("/", "\\", "\x00")


def staging_bucket(meta: dict[str, Any], config: dict[str, Any]) -> str:
    """``buckets.private.name`` from the collection config override, else ``meta.buckets``."""
    for buckets in (config.get("buckets"), meta.get("buckets")):
        name = ((buckets or {}).get("private") or {}).get("name") if isinstance(buckets, dict) else None
        if name:
            return name
    raise ConfigurationError("no staging bucket: meta.buckets.private.name is not set")


def url_path(template: str, *, stack: str, name: str, version: str | None, granule_id: str) -> str:
    """Render a ``url_path`` template for a granule (see :mod:`cnm_ingest.workflow.url_template`)."""
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
    """:func:`cnm_ingest.workflow.url_template.place`; a granuleId the url_path uses must be a plain name."""
    check_name(file.get("name"))
    spec = url_template.file_spec(file["name"], config) or {}
    if "granuleId" in str(spec.get("url_path") or template):
        check_name(granule.get("granuleId"), "granuleId")
    return url_template.place(file, granule, template=template, config=config, **where)


def head(bucket: str, key: str, s3: Any = None) -> dict[str, Any] | None:
    """``head_object`` (with client ``s3``, default ours), or None when the object does not exist."""
    try:
        return (s3 or aws.client("s3")).head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _MISSING:
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
    s3: Any = None,
    checksum_algorithm: str | None = None,
    source_etag: str | None = None,
) -> str | None:
    """Server-side copy of ``src`` (``{"Bucket", "Key"}``) to ``s3://bucket/key`` (with client ``s3``, default ours).

    The copy follows :func:`cnm_ingest.transfer.plan.plan_copy`: one CopyObject
    below 5 GiB, else UploadPartCopy parts, :data:`cnm_ingest.transfer.plan.PART_STREAMS`
    at a time. ``source_etag`` makes every request conditional on the source
    being that version (CopySourceIfMatch). With ``checksum_algorithm`` (single
    copies only: S3's SHA-1 / SHA-256 of a multipart object is composite, a
    digest of the parts' digests) S3 computes that checksum of the copy and its
    base64 value is returned; otherwise None.
    """
    s3 = s3 or aws.client("s3")
    plan = copy_plan.plan_copy(size, threshold=multipart_threshold, part_size=part_size)
    extra: dict[str, Any] = {"Metadata": metadata, "ContentType": content_type}
    condition = {"CopySourceIfMatch": source_etag} if source_etag else {}
    if not plan.multipart:
        if checksum_algorithm:
            extra["ChecksumAlgorithm"] = checksum_algorithm
        result = s3.copy_object(
            CopySource=src, Bucket=bucket, Key=key, MetadataDirective="REPLACE", **extra, **condition
        )
        found = (
            (result.get("CopyObjectResult") or {}).get(f"Checksum{checksum_algorithm}") if checksum_algorithm else None
        )
        return str(found) if found else None
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]

    def part(at: tuple[int, int, int]) -> dict[str, Any]:
        number, start, end = at
        result = s3.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource=src,
            CopySourceRange=f"bytes={start}-{end}",
            **condition,
        )
        return {"ETag": result["CopyPartResult"]["ETag"], "PartNumber": number}

    try:
        parts = pool.run_all(part, list(plan.ranges()), limit=plan.streams)
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return None


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

    The one confinement rule of every protocol, :func:`cnm_ingest.transfer.confine.check`:
    the URI's scheme is the provider's declared ``protocol``, its host (for s3 the
    bucket) and port the provider's, its path or key inside ``allowed_prefixes``
    when the provider lists any (a prefix ``in`` allows ``in/x``, not
    ``incoming/x``), with no ``.`` / ``..`` segments, user info, query or
    fragment. An s3 source is never in a bucket of ``forbidden`` (the stack's
    own). The file's checksum must have its type's form
    (:func:`cnm_ingest.cnm.checksum.check_form`). A remote host is resolved and
    its addresses checked (:func:`cnm_ingest.transfer.confine.addresses`:
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


def temporary_area(execution_name: str) -> str:
    """The folder of an execution's temporary copies (``<TEMP_PREFIX>/<digest of the execution name>/``)."""
    return f"{TEMP_PREFIX}/{hashlib.sha256(execution_name.encode('utf-8', 'surrogatepass')).hexdigest()[:24]}/"


def temporary_key(execution_name: str, key: str) -> str:
    """Where a file is verified before it is moved to ``key`` (the same for every retry and continuation of the
    execution), in the execution's :func:`temporary_area`."""
    digest = hashlib.sha256(f"{execution_name}\x1f{key}".encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{temporary_area(execution_name)}{digest}"


def _source_head(file: dict[str, Any], s3: Any) -> dict[str, Any]:
    try:
        found = head(file["bucket"], file["key"], s3)
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


def _existing(found: dict[str, Any] | None, execution_name: str) -> dict[str, Any] | None:
    """``found`` (a target's ``head_object``) unless absent or written by an earlier attempt of this execution."""
    if found is not None and execution_name and found.get("Metadata", {}).get(EXECUTION_METADATA) == execution_name:
        return None
    return found


LIST_AT_LEAST = 8  # targets in one bucket from which one listing replaces a HEAD per target (absent ones)
LIST_KEYS_PER_PAGE = 1000  # ListObjectsV2's page


def _utf8(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")  # S3 lists keys in UTF-8 binary order


def listed_targets(bucket: str, keys: list[str]) -> tuple[set[str], Callable[[str], bool]]:
    """``(present, known)``: the ``keys`` of ``bucket`` a bounded listing found, and whether it settled a key.

    One ListObjectsV2 over the keys' longest common prefix, in UTF-8 order,
    for at most ``len(keys) / 1000 + 2`` pages:
    a key the listing passed is present exactly when listed. A prefix that
    other objects crowd (a collection's whole folder) only stops the listing
    early; the keys it did not reach are not settled (``known`` is False) and
    are read one by one, as below :data:`LIST_AT_LEAST`.
    """
    ordered = sorted(set(keys), key=_utf8)
    wanted = set(ordered)
    prefix = os.path.commonprefix(ordered)  # noqa: RUF071 - S3's Prefix: characters, not path components
    present: set[str] = set()
    reached: bytes | None = None  # the last key listed; None: the listing ended (every key settled)
    pages = aws.client("s3").get_paginator("list_objects_v2")
    budget = len(ordered) // LIST_KEYS_PER_PAGE + 2
    for number, page in enumerate(pages.paginate(Bucket=bucket, Prefix=prefix), start=1):
        contents = page.get("Contents") or ()
        present |= {o["Key"] for o in contents if o["Key"] in wanted}
        if not page.get("IsTruncated"):
            reached = None
            break
        reached = _utf8(contents[-1]["Key"]) if contents else reached
        if reached is not None and reached >= _utf8(ordered[-1]):
            reached = None
            break
        if number >= budget:
            break
    last = reached

    def known(key: str) -> bool:
        return last is None or _utf8(key) <= last

    return present, known


def target_heads(prepared: list[dict[str, Any]], run: Callable[..., list[Any]]) -> dict[tuple[str, str], Any]:
    """``{(bucket, key): head_object}`` of every target an object is at (a target not in it has none): listed
    per bucket from :data:`LIST_AT_LEAST` targets (:func:`listed_targets`; the present ones are then read for
    their metadata), else read one by one. No entry per absent target: a granule of new files keeps nothing."""
    by_bucket: dict[str, list[str]] = {}
    for f in prepared:
        by_bucket.setdefault(f["staged_bucket"], []).append(f["staged_key"])
    to_read: list[tuple[str, str]] = []
    for bucket, keys in by_bucket.items():
        if len(keys) < LIST_AT_LEAST:
            to_read += [(bucket, k) for k in keys]
            continue
        present, known = listed_targets(bucket, keys)
        to_read += [(bucket, k) for k in keys if k in present or not known(k)]
    found = run(lambda where: head(*where), to_read)
    return {where: head_ for where, head_ in zip(to_read, found, strict=True) if head_ is not None}


def _duplicate_error(bucket: str, key: str) -> DuplicateFileError:
    return DuplicateFileError(f"s3://{bucket}/{key} already exists and the collection's duplicate_handling is 'error'")


def _metadata_value(text: str, limit: int = 200) -> str:
    """``text`` as an ASCII S3 metadata value (percent-encoded; a long one cut and suffixed with its digest)."""
    quoted = quote(text, safe="")
    if len(quoted) <= limit:
        return quoted
    return f"{quoted[: limit - 66]}~{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"


@dataclass(frozen=True)
class Owner:
    """Who a staged object belongs to: the provider and the granule whose CNM staged it (object metadata)."""

    provider: str = ""
    granule: str = ""

    def metadata(self) -> dict[str, str]:
        # S3 allows 2 KB of user metadata: source (1,024) + these + checksum (200) + execution (80) stay under it
        return {PROVIDER_METADATA: _metadata_value(self.provider, 128), GRANULE_METADATA: _metadata_value(self.granule)}

    @staticmethod
    def of(found: dict[str, Any]) -> Owner | None:
        """The owner recorded on an object (``head_object`` result), None when it records none."""
        meta = found.get("Metadata") or {}
        if PROVIDER_METADATA not in meta:
            return None
        return Owner(unquote(meta[PROVIDER_METADATA]), unquote(meta.get(GRANULE_METADATA, "")))


def check_owner(found: dict[str, Any], owner: Owner, handling: str, bucket: str, key: str) -> None:
    """Raise :class:`OtherOwnerFileError` when the existing object may not be touched by ``owner``.

    ``handling`` is the collection's ``other_owner_handling`` (:data:`OTHER_OWNER_HANDLING`):
    ``same_provider`` (default) lets another granule of the same provider follow
    ``duplicate_handling`` and refuses another provider's object; ``error``
    refuses any other granule's or provider's object; ``duplicate_handling``
    lets every existing object follow ``duplicate_handling``. An object that
    records no owner (staged before owners were recorded, or put there by
    hand) follows ``duplicate_handling`` unless ``handling`` is ``error``.
    """
    if handling not in OTHER_OWNER_HANDLING:
        raise ConfigurationError(f"other_owner_handling must be one of {OTHER_OWNER_HANDLING}, not {handling!r}")
    if handling == "duplicate_handling":
        return
    recorded = Owner.of(found)
    if recorded is None:
        if handling == "error":
            raise OtherOwnerFileError(
                f"s3://{bucket}/{key} already exists, records no owner, and the collection's "
                "other_owner_handling is 'error'"
            )
        return
    meta, mine = found.get("Metadata") or {}, owner.metadata()  # compared as recorded (long ids: cut + digest)
    other_provider = meta.get(PROVIDER_METADATA) != mine[PROVIDER_METADATA]
    other_granule = meta.get(GRANULE_METADATA, "") != mine[GRANULE_METADATA]
    if other_provider or (handling == "error" and other_granule):
        whose = f"provider {recorded.provider!r}" + (f", granule {recorded.granule!r}" if recorded.granule else "")
        raise OtherOwnerFileError(
            f"s3://{bucket}/{key} belongs to {whose}, not to provider {owner.provider!r} granule "
            f"{owner.granule!r}; the collection's other_owner_handling is {handling!r}, so it is left alone"
        )


def _reserved_buckets() -> set[str]:
    return {os.environ.get("PAYLOAD_BUCKET") or ""} - {""}


def check_targets(prepared: list[dict[str, Any]], duplicate_handling: str) -> None:
    """Every target of a granule (or message) checked before the first S3 call; CnmValidationError otherwise.

    Refused: a key in the temporary area (:data:`TEMP_PREFIX`) or in the
    stack's payload bucket (workflow payloads, parked records and responses);
    a key that is empty, starts with ``/``, has an empty, ``.`` or ``..``
    segment, or a control character; a key over S3's 1,024 UTF-8 bytes, with
    the ``.v<timestamp>`` suffix counted in ``version`` mode; two files of the
    message on one target.
    """
    path = "$.product.files[]"
    seen: set[tuple[str, str]] = set()
    reserved = _reserved_buckets()
    suffix = VERSION_SUFFIX_BYTES if duplicate_handling == "version" else 0
    for f in prepared:
        bucket, key = f["staged_bucket"], f["staged_key"]
        shown = f"s3://{bucket}/{key[:200]}"
        if not key or key.startswith("/") or any(s in ("", ".", "..") for s in key.split("/")):
            raise CnmValidationError(f"the target {shown} is not a clean relative key", path)
        if url_template.has_control(key):
            raise CnmValidationError(f"the target {shown!r} has a control character", path)
        if key == TEMP_PREFIX or key.startswith(TEMP_PREFIX + "/"):
            raise CnmValidationError(f"the target {shown} is in the temporary area {TEMP_PREFIX}/", path)
        if bucket in reserved:
            raise CnmValidationError(f"the target {shown} is in the stack's payload bucket", path)
        size = len(key.encode("utf-8", "surrogatepass")) + suffix
        if size > url_template.MAX_KEY_BYTES:
            raise CnmValidationError(
                f"the target {shown}... is {size} bytes"
                + (" with its .v<timestamp> version suffix" if suffix else "")
                + f", over S3's {url_template.MAX_KEY_BYTES}",
                path,
            )
        if (bucket, key) in seen:
            raise CnmValidationError(f"two files of the message go to the same target {shown}", path)
        seen.add((bucket, key))


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
    file_type: str | None = None,
) -> dict[str, Any]:
    """Check one file without any AWS call; returns a copy of it with its literal source and staged location
    (and ``type`` set to ``file_type`` when given)."""
    if duplicate_handling not in DUPLICATE_HANDLING:
        raise ConfigurationError(f"duplicate_handling must be one of {DUPLICATE_HANDLING}, not {duplicate_handling!r}")
    name = check_name(file.get("name"))
    if checksum_required and not file.get("checksum"):
        raise CnmValidationError(
            f"file {name!r} has no checksum and the collection requires one", "$.product.files[].checksum"
        )
    src_bucket, src_key = check_source(file, provider, forbidden | {bucket})
    if not prefix:
        raise CnmValidationError(
            f"the url_path of file {name!r} renders to nothing: the file would land at the bucket's root", "$.url_path"
        )
    key = url_template.object_key(prefix, name)
    kind = {"type": file_type} if file_type is not None else {}
    return {
        **file,
        **kind,
        "bucket": src_bucket,
        "key": src_key,
        "staged_bucket": bucket,
        "staged_key": key,
        "temp_key": temporary_key(execution_name, key),
    }


def source_metadata(file: dict[str, Any]) -> str:
    """The file's source URI as S3 metadata (ASCII only: percent-encoded, a long one cut with its digest)."""
    return _metadata_value(file["source"], 1024)


def _checksum_metadata(file: dict[str, Any]) -> dict[str, str]:
    if not file.get("checksum"):
        return {}
    return {CHECKSUM_METADATA: _metadata_value(f"{file.get('checksumType') or 'md5'}:{file['checksum']}", 200)}


def _to_temporary(
    file: dict[str, Any], execution_name: str, provider: dict[str, Any], owner: Owner, **copy_options: Any
) -> int:
    bucket = file["staged_bucket"]
    metadata = {
        EXECUTION_METADATA: execution_name,
        SOURCE_METADATA: source_metadata(file),
        **owner.metadata(),
        **_checksum_metadata(file),
    }
    if file["bucket"] is None:  # http(s): streamed, size and checksum verified before the temporary object exists
        return sources.fetch_to_s3(
            file, provider, bucket, file["temp_key"], metadata=metadata, part_size=copy_options.get("part_size")
        )
    reader = provider_access.client("s3", provider, temporary_buckets=[bucket])
    source = _source_head(file, reader)
    size = source["ContentLength"]
    plan = copy_plan.plan_copy(
        size, threshold=copy_options.get("multipart_threshold"), part_size=copy_options.get("part_size")
    )
    # S3 computes SHA-1 / SHA-256 of a single copy: verified with 0 bytes read here. A multipart copy's would be
    # composite (a digest of the parts' digests), so above 5 GiB those are read back once, as md5 and sha512 are.
    algo = checksum.s3_algorithm(file.get("checksumType")) if file.get("checksum") and not plan.multipart else None
    try:
        computed = copy(
            {"Bucket": file["bucket"], "Key": file["key"]},
            bucket,
            file["temp_key"],
            size,
            metadata=metadata,
            content_type=source.get("ContentType", "binary/octet-stream"),
            s3=reader,
            checksum_algorithm=algo,
            source_etag=source.get("ETag"),
            **copy_options,
        )
    except ClientError as exc:  # gone or changed since its size was checked (CopySourceIfMatch)
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _MISSING:
            raise FileNotFoundAtSourceError(f"{file['source']} disappeared from the provider during the copy") from None
        if code in ("PreconditionFailed", "412"):
            raise TransientError(
                f"{file['source']} changed during the copy; the retried step copies it again"
            ) from None
        raise
    if computed is not None:
        return _verify_computed(file, bucket, file["temp_key"], computed, size)
    if not file.get("checksum"):
        return size  # CopySourceIfMatch: what was copied is the object whose size was checked
    return _verify(file, bucket, file["temp_key"])


def _verify_computed(file: dict[str, Any], bucket: str, key: str, computed: str, size: int) -> int:
    """Compare S3's checksum of the (temporary) copy with the CNM's; delete the copy when they differ."""
    got = base64.b64decode(computed)
    if got == checksum.digest_bytes(file.get("checksumType"), file["checksum"]):
        return size
    aws.client("s3").delete_object(Bucket=bucket, Key=key)
    raise ChecksumMismatchError(
        f"the copy of {file['source']} has {file.get('checksumType')} {got.hex()} (computed by S3), "
        f"the CNM says {file['checksum']}; the temporary copy was deleted, nothing staged was touched"
    )


# --- deadline-aware continuation (issue 22) ------------------------------------------------------------------

CONTINUATION = contract_check.CONTINUATION  # meta.<this>: the marker SyncGranule returns when it stops early
MARGIN_ENV, DEFAULT_MARGIN_SECONDS = "SYNC_DEADLINE_MARGIN_SECONDS", 120
MIN_MARGIN_SECONDS, MAX_MARGIN_SECONDS = 10, 600  # modules/workflow validates the same range
MAX_INVOCATIONS_ENV, DEFAULT_MAX_INVOCATIONS, MAX_MAX_INVOCATIONS = "SYNC_MAX_INVOCATIONS", 50, 1000
REUSED, READ_BACK, DISTRUSTED = "reused", "read back", "distrusted"  # what :func:`trust` makes of a temporary copy


def deadline_margin(value: Any = None) -> int:
    """Seconds of an invocation kept for the files in flight, the commit and the answer: ``value``, else
    ``SYNC_DEADLINE_MARGIN_SECONDS``, else 120; 10..600 (modules/workflow validates the same range)."""
    from_env = os.environ.get("SYNC_DEADLINE_MARGIN_SECONDS")
    return pool.whole_setting(
        MARGIN_ENV, from_env, DEFAULT_MARGIN_SECONDS, MIN_MARGIN_SECONDS, MAX_MARGIN_SECONDS, value
    )


def max_invocations(value: Any = None) -> int:
    """SyncGranule invocations one granule may take: ``value``, else ``SYNC_MAX_INVOCATIONS``, else 50; 1..1000."""
    from_env = os.environ.get("SYNC_MAX_INVOCATIONS")
    return pool.whole_setting(MAX_INVOCATIONS_ENV, from_env, DEFAULT_MAX_INVOCATIONS, 1, MAX_MAX_INVOCATIONS, value)


def stop_when(remaining_ms: Callable[[], int], margin_seconds: float) -> Callable[[], bool]:
    """``stop()``: True once the invocation has less than its margin left (``remaining_ms``: Lambda's
    ``context.get_remaining_time_in_millis``, read once now for the invocation's length). No new file starts
    after that; the files in flight finish, then the step returns its continuation marker.

    The margin is ``margin_seconds``, but at most half of the time the invocation has now: every invocation
    spends at least half its time on files, so a function with a short timeout (or a late start) still makes
    progress instead of stopping at once (which :func:`sync_message` would fail as no progress)."""
    margin_ms = min(margin_seconds * 1000, remaining_ms() / 2)
    return lambda: remaining_ms() < margin_ms


def _bitmap(indexes: Iterable[int]) -> str:
    """A set of file indexes as base64 of a zlib-compressed bitmap (10,000 files: at most about 1.7 KB)."""
    bits = bytearray()
    for i in indexes:
        if i >= 8 * len(bits):
            bits.extend(bytes(i // 8 + 1 - len(bits)))
        bits[i // 8] |= 1 << (i % 8)
    return base64.b64encode(zlib.compress(bytes(bits), 9)).decode()


def _indexes(text: str, limit: int) -> frozenset[int]:
    bits = zlib.decompressobj().decompress(base64.b64decode(text, validate=True), limit // 8 + 1)
    return frozenset(i for i in range(min(limit, 8 * len(bits))) if bits[i // 8] >> (i % 8) & 1)


def targets_digest(files: list[dict[str, Any]]) -> str:
    """What a granule's temporary copies stand for: each file's source, size, checksum and target, in order."""
    h = hashlib.sha256()
    for f in files:
        fields = (f.get("source"), f.get("size"), f.get("checksumType"), f.get("checksum"), f["staged_bucket"])
        h.update(repr((*fields, f["staged_key"])).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Continuation:
    """Where an execution's SyncGranule stopped (``meta.sync_continuation``), so the next invocation goes on.

    ``committed`` granules of ``payload.granules`` are staged (their files point at the staged copies); of the
    next one, the files at ``verified`` (indexes) have verified temporary copies, valid while the granule's
    ``targets`` (:func:`targets_digest`) are the same. The copies themselves are found by listing the
    execution's :func:`temporary_area` in ``buckets``. ``done`` and ``files`` count files, for people."""

    invocations: int = 0
    committed: int = 0
    verified: frozenset[int] = field(default_factory=frozenset)
    targets: str = ""
    buckets: tuple[str, ...] = ()
    done: int = 0
    files: int = 0

    def marker(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "granules_committed": self.committed,
            "done": self.done,
            "files": self.files,
            "verified": _bitmap(sorted(self.verified)),
            "targets": self.targets,
            "buckets": list(self.buckets),
        }

    @staticmethod
    def read(meta: dict[str, Any], granule_count: int) -> Continuation:
        """The marker in ``meta`` (an empty Continuation when there is none); CnmValidationError when malformed."""
        found = meta.get(CONTINUATION)
        if found is None:
            return Continuation()
        path = f"$.meta.{CONTINUATION}"
        try:
            invocations, committed = found["invocations"], found["granules_committed"]
            buckets = tuple(found.get("buckets") or ())
            ok = all(type(n) is int and n >= 0 for n in (invocations, committed, found["done"], found["files"]))
            if not ok or committed >= granule_count or not all(isinstance(b, str) and b for b in buckets):
                raise ValueError("counts or buckets out of range")
            verified = _indexes(str(found["verified"]), 1_000_000)
            return Continuation(
                invocations, committed, verified, str(found["targets"]), buckets, found["done"], found["files"]
            )
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise CnmValidationError(f"{path} is not a SyncGranule continuation marker: {exc}", path) from None


def trust(
    file: dict[str, Any],
    found: dict[str, Any],
    *,
    execution_name: str,
    owner: Owner,
    recorded: bool,
    multipart_threshold: int | None = None,
) -> str:
    """What an existing temporary copy of ``file`` is worth (``found``: its ``head_object`` with ChecksumMode):

    - :data:`DISTRUSTED` (delete it, copy again) unless everything it records is this file's: the execution,
      source, owner and checksum in its metadata, and its size the CNM's;
    - :data:`REUSED` (no read, no copy) when its bytes are proven: the file has no checksum (its size is the
      check), an http(s) or sftp file (stored only once verified), S3's own full-object checksum of the copy is
      the CNM's (SHA-1 / SHA-256 below the multipart threshold: always compared, free with the HEAD; one that
      differs is DISTRUSTED), or, for the rest (md5, SHA-512, composite), ``recorded``: the invocation that
      verified it recorded so in the continuation marker;
    - else :data:`READ_BACK`: verify it by reading it once, not by copying it again.
    """
    meta = found.get("Metadata") or {}
    mine = {
        EXECUTION_METADATA: execution_name,
        SOURCE_METADATA: source_metadata(file),
        **owner.metadata(),
        CHECKSUM_METADATA: _checksum_metadata(file).get(CHECKSUM_METADATA),
    }
    if found.get("ContentLength") != file["size"] or any(meta.get(k) != v for k, v in mine.items()):
        return DISTRUSTED
    if not file.get("checksum") or file.get("bucket") is None:
        return REUSED
    algo = checksum.s3_algorithm(file.get("checksumType"))
    single = file["size"] < (multipart_threshold or MULTIPART_THRESHOLD)
    computed = found.get(f"Checksum{algo}") if algo and single else None
    if computed is not None:
        proven = base64.b64decode(computed) == checksum.digest_bytes(file.get("checksumType"), file["checksum"])
        return REUSED if proven else DISTRUSTED
    if algo and single:  # our copy asked S3 for that checksum: a copy without it was not made by us
        return READ_BACK
    return REUSED if recorded else READ_BACK


def listed_temporaries(execution_name: str, buckets: Iterable[str]) -> set[tuple[str, str]]:
    """``(bucket, key)`` of every object in the execution's :func:`temporary_area` of each bucket."""
    out: set[tuple[str, str]] = set()
    pages = aws.client("s3").get_paginator("list_objects_v2")
    for bucket in sorted(set(buckets)):
        for page in pages.paginate(Bucket=bucket, Prefix=temporary_area(execution_name)):
            out |= {(bucket, o["Key"]) for o in page.get("Contents") or ()}
    return out


def _reuse_or_copy(
    file: dict[str, Any],
    *,
    listed: set[tuple[str, str]],
    recorded: bool,
    execution_name: str,
    provider: dict[str, Any],
    owner: Owner,
    **copy_options: Any,
) -> int:
    """The size of ``file``'s verified temporary copy: the one there when :func:`trust` accepts it, else a new one."""
    bucket, temp = file["staged_bucket"], file["temp_key"]
    if (bucket, temp) in listed:
        try:
            found: dict[str, Any] | None = aws.client("s3").head_object(Bucket=bucket, Key=temp, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") not in _MISSING:
                raise
            found = None
        worth = DISTRUSTED
        if found is not None:
            threshold = copy_options.get("multipart_threshold")
            worth = trust(
                file,
                found,
                execution_name=execution_name,
                owner=owner,
                recorded=recorded,
                multipart_threshold=threshold,
            )
        if worth == REUSED:
            return int(file["size"])
        if worth == READ_BACK:
            digest, size = checksum.s3_digest(bucket, temp, checksum.algorithm(file.get("checksumType")))
            if size == file["size"] and checksum.matches(file["checksum"], digest):
                return size
        if found is not None:
            aws.client("s3").delete_object(Bucket=bucket, Key=temp)
    return _to_temporary(file, execution_name, provider, owner, **copy_options)


BACKUP_SUFFIX = ".previous"


def backup_key(temp_key: str) -> str:
    """Where an object a commit replaces is kept until the granule's commit is done (temporary area)."""
    return f"{temp_key}{BACKUP_SUFFIX}"


@dataclass(slots=True)
class _Undo:
    """How to put one target back as it was before the commit touched it."""

    bucket: str
    key: str
    restore_from: str | None = None  # copy this key back (replace: the backup; version: the versioned copy)
    delete_restore_source: bool = False  # version: the versioned copy goes once restored
    existed: bool = True

    def run(self) -> None:
        s3 = aws.client("s3")
        if not self.existed:
            s3.delete_object(Bucket=self.bucket, Key=self.key)
            return
        if self.restore_from is None:  # our own earlier attempt: left as it was
            return
        found = head(self.bucket, self.restore_from)
        if found is None:
            raise TransientError(f"s3://{self.bucket}/{self.restore_from} is gone: cannot restore {self.key}")
        copy(
            {"Bucket": self.bucket, "Key": self.restore_from},
            self.bucket,
            self.key,
            found["ContentLength"],
            metadata=found.get("Metadata", {}),
            content_type=found.get("ContentType", "binary/octet-stream"),
        )
        if self.delete_restore_source:
            s3.delete_object(Bucket=self.bucket, Key=self.restore_from)


def _copy_within(bucket: str, src_key: str, key: str, found: dict[str, Any], **copy_options: Any) -> None:
    copy(
        {"Bucket": bucket, "Key": src_key},
        bucket,
        key,
        found["ContentLength"],
        metadata=found.get("Metadata", {}),
        content_type=found.get("ContentType", "binary/octet-stream"),
        **copy_options,
    )


def _move_one(
    file: dict[str, Any],
    size: int,
    *,
    duplicate_handling: str,
    execution_name: str,
    owner: Owner,
    other_owner_handling: str,
    undo: list[_Undo],
    scratch: list[tuple[str, str]],
    absent: bool = False,
    **copy_options: Any,
) -> dict[str, Any]:
    """Move one verified temporary copy into place, recording how to undo it first.

    ``absent``: the target's check found nothing there, so the move is one
    conditional copy (``IfNoneMatch: *``) with no read of the target; if an
    object appeared there since, S3 refuses it (412, or 409 for a write under
    way) and the move reads the target and applies the rules as for any other.
    """
    bucket, key, temp = file["staged_bucket"], file["staged_key"], file["temp_key"]
    staged = _staged(file, size=size)
    small = size < (copy_options.get("multipart_threshold") or MULTIPART_THRESHOLD)
    if absent and small:
        created = _Undo(bucket, key, existed=False)
        undo.append(created)  # first: a copy whose answer was lost is still undone
        if _copy_into_place(file, bucket, temp, key, IfNoneMatch="*"):
            return staged
        undo.remove(created)
    current = head(bucket, key)
    own = current is not None and current.get("Metadata", {}).get(EXECUTION_METADATA) == execution_name
    if current is None or (own and absent):  # own and absent at the check: this move's copy, its answer lost
        undo.append(_Undo(bucket, key, existed=False))
    elif own:
        undo.append(_Undo(bucket, key))
    else:  # appeared or changed since the checks: the same rules again
        check_owner(current, owner, other_owner_handling, bucket, key)
        if duplicate_handling == "error":
            raise _duplicate_error(bucket, key)
        if duplicate_handling == "skip":
            return _kept(file, bucket, key)
        if duplicate_handling == "version":
            versioned = f"{key}.v{_timestamp()}"
            _copy_within(bucket, key, versioned, current, **copy_options)
            undo.append(_Undo(bucket, key, restore_from=versioned, delete_restore_source=True))
            staged.update(duplicate="versioned", versionedKey=versioned)
        else:
            backup = backup_key(temp)
            scratch.append((bucket, backup))
            _copy_within(bucket, key, backup, current, **copy_options)
            undo.append(_Undo(bucket, key, restore_from=backup))
            staged["duplicate"] = "replaced"
    if small:
        _copy_into_place(file, bucket, temp, key)
        return staged
    temp_head = head(bucket, temp)
    if temp_head is None:
        raise _gone(file, bucket, temp)
    _copy_within(bucket, temp, key, temp_head, **copy_options)
    return staged


def _gone(file: dict[str, Any], bucket: str, temp: str) -> TransientError:
    return TransientError(f"the verified temporary copy of {file['source']} (s3://{bucket}/{temp}) is gone")


_CONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _copy_into_place(file: dict[str, Any], bucket: str, temp: str, key: str, **condition: str) -> bool:
    """One CopyObject of the temporary copy to ``key`` (its metadata and content type go with it), under
    ``condition`` (``IfNoneMatch``); False when S3 refuses the condition."""
    try:
        aws.client("s3").copy_object(
            CopySource={"Bucket": bucket, "Key": temp}, Bucket=bucket, Key=key, MetadataDirective="COPY", **condition
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _MISSING:
            raise _gone(file, bucket, temp) from None
        if condition and code in _CONDITION_FAILED:
            return False
        raise
    return True


def _kept(file: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """The granule file describing the object already at the target, which ``skip`` keeps.

    Its size is the object's; its checksum the one recorded when it was
    staged (:data:`CHECKSUM_METADATA`), else computed from its bytes with the
    CNM's algorithm (md5 when the CNM gives none).
    """
    found = head(bucket, key)
    if found is None:
        raise TransientError(f"s3://{bucket}/{key} was there to be kept and is gone; the retried step stages it")
    meta = found.get("Metadata") or {}
    recorded = unquote(meta.get(CHECKSUM_METADATA, ""))
    kind, _, value = recorded.partition(":")
    if not value:
        kind = file.get("checksumType") or "md5"
        value, _ = checksum.s3_digest(bucket, key, checksum.algorithm(kind))
    out = _staged(
        {**file, "staged_bucket": bucket, "staged_key": key},
        size=found["ContentLength"],
        checksumType=kind,
        checksum=value,
        duplicate="skipped",
    )
    if SOURCE_METADATA in meta:
        out["source"] = unquote(meta[SOURCE_METADATA])
    return out


def _delete_quietly(targets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Delete each ``(bucket, key)`` (DeleteObjects, :data:`DELETE_BATCH` keys a call); returns those left."""
    by_bucket: dict[str, list[str]] = {}
    for bucket, key in targets:
        by_bucket.setdefault(bucket, []).append(key)
    left = []
    for bucket, keys in by_bucket.items():
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i : i + DELETE_BATCH]
            try:
                answer = aws.client("s3").delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except ClientError:
                left += [(bucket, k) for k in batch]
                continue
            left += [(bucket, e["Key"]) for e in answer.get("Errors") or []]
    return left


def _discard(files: list[dict[str, Any]]) -> None:
    """Best effort: delete temporary copies after a failure (the error being raised matters more)."""
    _delete_quietly([(f["staged_bucket"], f["temp_key"]) for f in files])


def _staged(file: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The granule file pointing at its staged copy."""
    out = {k: v for k, v in file.items() if k not in ("staged_bucket", "staged_key", "temp_key")}
    out.update(bucket=file["staged_bucket"], key=file["staged_key"], **fields)
    return out


_Runner = Callable[..., list[Any]]  # run(fn, items, stop=None)


def _sequential(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    return [fn(item) for item in items]


def runner(concurrency: int | None = None) -> _Runner:
    """``run(fn, items)``: :func:`cnm_ingest.transfer.pool.run_all` with ``concurrency`` (default
    ``SYNC_CONCURRENCY``, 32) and one :class:`~cnm_ingest.transfer.pool.Backoff` for the whole granule."""
    limit, backoff = pool.concurrency(concurrency), pool.Backoff()

    def run(fn: Callable[[Any], Any], items: list[Any], stop: Callable[[], bool] | None = None) -> list[Any]:
        return pool.run_all(fn, items, limit=limit, backoff=backoff, stop=stop)

    return run


class Absent:
    """The targets a check found no object at, held as the (few) it found: ``where in Absent(present)`` is
    ``where not in present``, so a granule of new files keeps no entry per file."""

    __slots__ = ("present",)

    def __init__(self, present: Container[tuple[str, str]]) -> None:
        self.present = present

    def __contains__(self, where: object) -> bool:
        return where not in self.present


def commit(
    files: list[dict[str, Any]],
    sizes: list[int],
    *,
    duplicate_handling: str,
    execution_name: str,
    run: _Runner | None = None,
    absent: Container[tuple[str, str]] = frozenset(),
    **options: Any,
) -> list[dict[str, Any]]:
    """Move a granule's verified temporary copies into place, all or nothing.

    Before a target is overwritten its object is kept (``replace``: a backup
    in the temporary area; ``version``: the versioned copy). If any move
    fails, every target already moved is put back as it was (a new one
    deleted, a replaced or versioned one restored, the version copy removed)
    and the error is raised. The temporary copies and backups are deleted
    either way, except a backup whose restore failed (it is then the only
    copy of the earlier file; the error says where). The moves run through
    ``run`` (:func:`cnm_ingest.transfer.pool.run_all`, bounded), which lets
    every move under way finish before the error is raised, so ``undo`` is
    complete when it runs.
    """
    undo: list[_Undo] = []  # appended by the workers (list.append is atomic)
    scratch: list[tuple[str, str]] = []
    run = run or _sequential

    def move(pair: tuple[dict[str, Any], int]) -> dict[str, Any]:
        return _move_one(
            pair[0],
            pair[1],
            duplicate_handling=duplicate_handling,
            execution_name=execution_name,
            undo=undo,
            scratch=scratch,
            absent=(pair[0]["staged_bucket"], pair[0]["staged_key"]) in absent,
            **options,
        )

    try:
        staged = run(move, list(zip(files, sizes, strict=True)))
    except BaseException as exc:
        kept: list[str] = []
        for step in reversed(undo):
            try:
                step.run()
            except (ClientError, TransientError):
                kept += [f"s3://{step.bucket}/{step.restore_from}"] if step.restore_from else []
        scratch = [(b, k) for b, k in scratch if f"s3://{b}/{k}" not in kept]
        _delete_quietly(scratch + [(f["staged_bucket"], f["temp_key"]) for f in files])
        if kept:
            exc.add_note(f"restoring the granule failed; the earlier files are kept at {', '.join(kept)}")
        raise
    left = _delete_quietly(scratch + [(f["staged_bucket"], f["temp_key"]) for f in files])
    if left:
        raise TransientError(f"the granule is staged but {len(left)} temporary object(s) could not be deleted: {left}")
    return staged


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
    owner: Owner | None = None,
    other_owner_handling: str = DEFAULT_OTHER_OWNER_HANDLING,
    concurrency: int | None = None,
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
    check_targets(prepared, duplicate_handling)
    return stage_prepared(
        prepared,
        duplicate_handling=duplicate_handling,
        execution_name=execution_name,
        provider=provider,
        multipart_threshold=multipart_threshold,
        part_size=part_size,
        owner=owner,
        other_owner_handling=other_owner_handling,
        concurrency=concurrency,
    )


def stage_prepared(
    prepared: list[dict[str, Any]],
    *,
    duplicate_handling: str,
    execution_name: str,
    provider: dict[str, Any],
    multipart_threshold: int | None = None,
    part_size: int | None = None,
    owner: Owner | None = None,
    other_owner_handling: str = DEFAULT_OTHER_OWNER_HANDLING,
    gate: commit_order.Gate | None = None,
    concurrency: int | None = None,
    stop: Callable[[], bool] | None = None,
    verified: frozenset[int] = frozenset(),
    temporary_buckets: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Stage one granule's checked files: copy and verify all into temporary keys, then commit all.

    Returns the granule files pointing at what is staged after the run.
    Every file passed :func:`prepare_file` and :func:`check_targets` before
    this is called. The existing targets are checked first (owners, ``error``
    and ``skip`` decided before any copy); ``gate`` (:mod:`cnm_ingest.transfer.commit_order`)
    orders concurrent executions of the granule; nothing staged is touched
    before every file verified, and the commit is all or nothing (:func:`commit`).

    Every per-file step (the target checks, the copies and verifications,
    the moves, reading a kept file) runs ``concurrency`` files at a time
    (:func:`runner`), with one shared backoff on S3 throttling; the result is
    the same as one file at a time (``concurrency=1``).

    Deadline-aware: the execution's temporary copies already there (listed in
    its :func:`temporary_area` of the granule's buckets and ``temporary_buckets``)
    are kept when :func:`trust` accepts them (``verified``: indexes of
    ``prepared`` an earlier invocation verified), so no verified file is copied
    again; one no file of the granule needs any more is deleted. Once ``stop()``
    says True no new file starts, and when the files in flight are done (or
    before the commit, if it says True then) :class:`PartialTransferError` is
    raised with ``done``: the indexes of ``prepared`` whose verified temporary
    copies are kept for the next invocation; nothing is committed, and the
    execution stays registered with ``gate``.
    """
    owner = owner or Owner(str(provider.get("id") or ""))
    copy_options = {"multipart_threshold": multipart_threshold, "part_size": part_size}
    gate = gate or commit_order.Gate()
    run = runner(concurrency)

    def where(f: dict[str, Any]) -> tuple[str, str]:
        return f["staged_bucket"], f["staged_key"]

    present = target_heads(prepared, run)
    absent = Absent(present)  # the targets the check found nothing at: every target not present
    existing = {w: e for w, found in present.items() if (e := _existing(found, execution_name)) is not None}
    for (bucket, key), found in existing.items():
        check_owner(found, owner, other_owner_handling, bucket, key)
        if duplicate_handling == "error":
            raise _duplicate_error(bucket, key)
    skipped = set(existing) if duplicate_handling == "skip" else set()
    positions = [i for i, f in enumerate(prepared) if where(f) not in skipped]
    to_copy = [prepared[i] for i in positions]
    gate.start()
    try:
        try:
            buckets = {f["staged_bucket"] for f in prepared} | set(temporary_buckets)
            listed = listed_temporaries(execution_name, buckets)
            if listed:  # copies of an earlier attempt: the ones no file needs any more are deleted
                needed = {(f["staged_bucket"], f["temp_key"]) for f in to_copy}
                _delete_quietly(sorted(t for t in listed - needed if not t[1].endswith(BACKUP_SUFFIX)))

            def stage(at: tuple[int, dict[str, Any]]) -> int:
                return _reuse_or_copy(
                    at[1],
                    listed=listed,
                    recorded=at[0] in verified,
                    execution_name=execution_name,
                    provider=provider,
                    owner=owner,
                    **copy_options,
                )

            sizes: list[int] = run(stage, list(zip(positions, to_copy, strict=True)), stop=stop)
            if stop is not None and to_copy and stop():  # every file verified, too late to commit them all
                raise PartialTransferError(set(range(len(to_copy))), sizes)
            gate.acquire()
        except PartialTransferError as partial:
            raise PartialTransferError({positions[i] for i in partial.done}, [None] * len(prepared)) from None
        except BaseException:
            _discard(to_copy)
            raise
        moved = commit(
            to_copy,
            sizes,
            duplicate_handling=duplicate_handling,
            execution_name=execution_name,
            owner=owner,
            other_owner_handling=other_owner_handling,
            run=run,
            absent=absent,
            **copy_options,
        )
        gate.done()
    except PartialTransferError:
        raise  # continued by the next invocation: still registered with the gate
    except BaseException:
        gate.abandon()
        raise
    if not skipped:
        return moved  # every file was copied, in order
    staged = {where(f): s for f, s in zip(to_copy, moved, strict=True)}
    kept = [f for f in prepared if where(f) in skipped]
    staged.update(zip(map(where, kept), run(lambda f: _kept(f, *where(f)), kept), strict=True))
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


def other_owner_handling(config: dict[str, Any]) -> str:
    """The collection's ``other_owner_handling`` (default :data:`DEFAULT_OTHER_OWNER_HANDLING`), checked."""
    value = config.get("other_owner_handling")
    value = DEFAULT_OTHER_OWNER_HANDLING if value is None else value
    if value not in OTHER_OWNER_HANDLING:
        raise ConfigurationError(f"other_owner_handling must be one of {OTHER_OWNER_HANDLING}, not {value!r}")
    return str(value)


def sync_message(
    message: Message, execution: Execution, *, stop: Callable[[], bool] | None = None, **copy_options: Any
) -> Message:
    """The SyncGranule step: stage every file of every granule in ``payload.granules``.

    Every file of every granule is checked (names, provider confinement,
    targets: :func:`check_targets`) before the first S3 call. Each granule's
    commit is ordered against other executions of the same granule by
    :mod:`cnm_ingest.transfer.commit_order` (the ``EXECUTIONS_TABLE``).

    Deadline-aware: once ``stop()`` says True (the handler's :func:`stop_when`)
    the step returns the message with ``meta.sync_continuation``
    (:class:`Continuation`) instead of the staged granules; the state machine
    runs SyncGranule again with it, and that invocation goes on where this one
    stopped (:func:`stage_prepared`: nothing verified is copied again). The
    message the last invocation returns has no marker. An invocation that
    verifies no new file, or the ``SYNC_MAX_INVOCATIONS``-th that would stop
    again, deletes the granule's temporary copies and raises
    :class:`SyncUnfinishedError` instead, so the loop always ends.
    """
    meta = message.get("meta") or {}
    config = collection_config(meta)
    granules = payload.granules(message)
    if not isinstance(granules, list) or not granules:
        raise CnmValidationError("payload.granules is empty: TranslateMessage did not run", "$.payload.granules")
    resume = Continuation.read(meta, len(granules))
    invocation, limit = resume.invocations + 1, max_invocations()
    bucket = staging_bucket(meta, config)
    template = config.get("url_path") or DEFAULT_URL_PATH
    handling = config.get("duplicate_handling") or config.get("duplicateHandling") or "error"  # ours, else Cumulus's
    owners = other_owner_handling(config)
    provider = provider_config(meta)
    buckets = config.get("buckets") or meta.get("buckets") or {}
    options = {
        "duplicate_handling": handling,
        "checksum_required": bool(config.get("checksum_required")),
        "execution_name": execution.get("name", ""),
        "provider": provider,
    }
    first = resume.committed  # the granules before it were staged by earlier invocations
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
        for granule in granules[first:]
    ]  # collection files entries: bucket, type and url_path per file (Cumulus)
    forbidden = stack_buckets(meta) | {at.bucket for placed in placements for _, at in placed}
    prepared = [
        [
            prepare_file(f, bucket=at.bucket, prefix=at.prefix, forbidden=forbidden, file_type=at.type, **options)
            for f, at in placed
        ]
        for placed in placements
    ]  # every check before any read
    del placements  # held no longer than needed: the step's memory per file is the prepared dict's
    check_targets([f for files in prepared for f in files], handling)
    order = commit_order.order_key(payload.cnm_if_readable(message), options["execution_name"])
    named: dict[str, Any] = meta["collection"] if isinstance(meta.get("collection"), dict) else {}
    name, version = named.get("name") or config.get("name") or "", named.get("version") or config.get("version") or ""
    collection_key = f"{name}___{version}"
    synced = list(granules[:first])
    for at, (granule, checked) in enumerate(zip(granules[first:], prepared, strict=True), start=first):
        gate = commit_order.Gate.for_granule(
            collection=collection_key,
            granule_id=str(granule.get("granuleId") or ""),
            order=order,
            execution_name=options["execution_name"],
        )
        targets = targets_digest(checked)
        resumed = at == first and resume.targets == targets
        try:
            staged = stage_prepared(
                checked,
                duplicate_handling=handling,
                execution_name=options["execution_name"],
                provider=provider,
                owner=Owner(str(provider.get("id") or ""), str(granule.get("granuleId") or "")),
                other_owner_handling=owners,
                gate=gate,
                stop=stop,
                verified=resume.verified if resumed else frozenset(),
                temporary_buckets=resume.buckets if at == first else (),
                **copy_options,
            )
        except PartialTransferError as partial:
            progressed = at > first or bool(partial.done - (resume.verified if resumed else frozenset()))
            if not progressed or invocation >= limit:
                _discard(checked)
                gate.abandon()
                why = (
                    f"{MAX_INVOCATIONS_ENV} is {limit}" if progressed else "no new file was verified in this invocation"
                )
                raise SyncUnfinishedError(
                    f"SyncGranule stopped at its deadline in invocation {invocation} with {len(partial.done)} of "
                    f"{len(checked)} files of granule {granule.get('granuleId')!r} verified: {why}; "
                    "the temporary copies were deleted and nothing of the granule was staged"
                ) from None
            where = sorted({f["staged_bucket"] for f in checked} | set(resume.buckets if at == first else ()))
            marker = Continuation(
                invocations=invocation,
                committed=at,
                verified=frozenset(partial.done),
                targets=targets,
                buckets=tuple(where),
                done=sum(len(g["files"]) for g in synced) + len(partial.done),
                files=sum(len(g.get("files") or ()) for g in granules),
            )
            out = message if at == first else payload.set_part(message, "payload", "granules", synced + granules[at:])
            return {**out, "meta": {**(out.get("meta") or {}), CONTINUATION: marker.marker()}}
        synced.append({**granule, "files": staged, "sync_completed": datetime.now(UTC).isoformat()})
        prepared[at - first] = []  # its files are staged: their prepared dicts are not held while the answer is built
        del checked
    out = payload.set_part(message, "payload", "granules", synced)
    return {**out, "meta": {k: v for k, v in (out.get("meta") or {}).items() if k != CONTINUATION}}
