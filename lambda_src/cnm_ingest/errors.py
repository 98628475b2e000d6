"""Typed errors and how they map to CNM response error codes.

:data:`ERROR_CODES_BY_NAME` is the one mapping from a Step Functions error name
(our exception class names, and the Cumulus task error names PO.DAAC's
CnmResponse maps) to the CNM ``response.errorCode``; the table in
``docs/INTERFACES.md`` is generated from it (``tools/gen_docs.py``; a test keeps them equal).
As in PO.DAAC's CnmResponse: checksum and size mismatches are VALIDATION_ERROR;
a file not found, a remote resource error and a connection timeout are
TRANSFER_ERROR; any other error is PROCESSING_ERROR.

The split matters for loss-free ingest: a :class:`RecordError` is about the
record itself and is never retried (the record goes to the fallback path or is
answered with a FAILURE response); anything else may be transient.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any


class CnmIngestError(Exception):
    """Any other error of ours (``error_code``: CNM errorCode; ``cumulus_name``: the Cumulus error it stands for)."""

    error_code = "PROCESSING_ERROR"
    cumulus_name: str | None = None


class RecordError(CnmIngestError):
    """The record itself is unusable; retrying cannot help."""

    error_code = "VALIDATION_ERROR"


class DecodeError(RecordError):
    """The record is not base64 / UTF-8 / JSON."""


class CnmValidationError(RecordError):
    """The message does not conform to the CNM schema."""

    def __init__(self, message: str, path: str = "$"):
        super().__init__(f"CNM schema violation at {path}: {message}")
        self.path = path


class AddressNotAllowedError(RecordError):
    """The provider's host resolves to an address its configuration does not allow (loopback, private...)."""


class NoMatchingRuleError(RecordError):
    """No enabled rule matches the message's collection and provider."""


class NotConfiguredError(NoMatchingRuleError):
    """A matching rule names a collection or provider that is not in its table."""


class TransferError(CnmIngestError):
    """A file could not be fetched from the provider."""

    error_code = "TRANSFER_ERROR"
    cumulus_name = "RemoteResourceError"


class ChecksumMismatchError(TransferError):
    """The staged copy's checksum differs from the checksum in the CNM."""

    error_code = "VALIDATION_ERROR"
    cumulus_name = "InvalidChecksum"


class FileNotFoundAtSourceError(TransferError):
    """The file is not at the provider."""

    cumulus_name = "FileNotFound"


class SizeMismatchError(TransferError):
    """The staged (or source) object's size differs from the size in the CNM."""

    error_code = "VALIDATION_ERROR"
    cumulus_name = "UnexpectedFileSize"


class ConnectionTimeoutError(TransferError):
    """The provider's host did not answer in time."""

    cumulus_name = "ConnectionTimeout"


class SyncUnfinishedError(TransferError):
    """SyncGranule could not finish a granule in its invocations (SYNC_MAX_INVOCATIONS), or one made no progress.

    One invocation verified no new file before its deadline, or the bound on invocations was reached. Its
    temporary copies are deleted and nothing is staged."""


class DuplicateFileError(CnmIngestError):
    """A staged file exists and the collection's duplicate handling is 'error'."""

    error_code = "PROCESSING_ERROR"


class OtherOwnerFileError(DuplicateFileError):
    """A staged file belongs to another provider (or granule) and the collection's other_owner_handling keeps it."""


class SupersededError(CnmIngestError):
    """A CNM for the same granule submitted later is staged; this one was not staged (commit order)."""

    error_code = "PROCESSING_ERROR"


class ConfigurationError(CnmIngestError):
    """The collection / workflow configuration is unusable (e.g. a bad url_path)."""

    error_code = "PROCESSING_ERROR"


class PartialTransferError(CnmIngestError):
    """A bounded parallel run (``transfer.pool.run_all``) stopped before every item was done.

    ``done`` holds the indexes completed and ``results`` the results so far (the rest ``None``), for a caller
    that continues from there."""

    def __init__(self, done: set[int], results: list[Any]) -> None:
        super().__init__(f"{len(done)} of {len(results)} done")
        self.done, self.results = done, results


class TransientError(CnmIngestError):
    """A temporary failure (throttling, 5xx, timeout): the workflow retries the task."""

    error_code = "PROCESSING_ERROR"


class WorkflowError(CnmIngestError):
    """Raised by CnmResponse after answering FAILURE, so the execution ends FAILED.

    The message is a JSON object ``{"Error", "errorCode", "errorMessage"}``
    describing the original error, which StopStatus records.
    """

    error_code = "PROCESSING_ERROR"


class WorkflowPayloadError(CnmIngestError):
    """A part of the workflow message stored in the payload bucket is missing or does not match its reference."""

    error_code = "PROCESSING_ERROR"


class ContractError(CnmIngestError):
    """A workflow step's input, config or output does not conform to its schema (workflow/schemas/<step>)."""

    error_code = "PROCESSING_ERROR"

    def __init__(self, step: str, kind: str, message: str, path: str = "$"):
        super().__init__(f"{step} {kind} violates the workflow contract at {path}: {message}")
        self.step, self.kind, self.path = step, kind, path


ERROR_CODES = ("VALIDATION_ERROR", "PROCESSING_ERROR", "TRANSFER_ERROR")


class WorkflowInputTooLargeError(RecordError):
    """The workflow message of a record exceeds what Step Functions accepts as execution input (256 KiB)."""

    error_code = "PROCESSING_ERROR"


class IdempotencyStoreError(TransientError):
    """The idempotency store failed (throttling, 5xx, timeout, inconsistent reads) or holds the same side effect in
    progress: retried, never parked or answered FAILURE while the side effect may have happened."""


class DeadlineError(TransientError):
    """No time left in the invocation to start this record: the event source mapping delivers it again."""


class NotAnExecutionEvent(ValueError):
    """The SQS message is not a Step Functions execution status change (it is retried, then parked)."""


DEFAULT_ERROR_CODE = "PROCESSING_ERROR"

POWERTOOLS_IDEMPOTENCY_EXCEPTIONS = "aws_lambda_powertools.utilities.idempotency.exceptions"
# Powertools idempotency errors that say "the store could not answer now", not "this call is wrong":
# a failed read or write of the store, an attempt still in progress, a record that changed between a
# conditional put and the read after it, a conditional put's conflict that escaped Powertools' own handling.
# IdempotencyValidationError (same key, other payload), IdempotencyKeyError and the serialization and
# configuration errors are not: a retry meets them again.
TRANSIENT_IDEMPOTENCY_ERRORS = frozenset(
    {
        "IdempotencyPersistenceLayerError",
        "IdempotencyAlreadyInProgressError",
        "IdempotencyInconsistentStateError",
        "IdempotencyItemAlreadyExistsError",
        "IdempotencyPersistenceConnectionError",
        "IdempotencyPersistenceConsistencyError",
    }
)


def is_store_error(exc: BaseException) -> bool:
    """True for a Powertools idempotency error that a retry can get past (see TRANSIENT_IDEMPOTENCY_ERRORS).

    Powertools is not imported for this: an exception of its classes exists only once it is imported.
    """
    module = sys.modules.get(POWERTOOLS_IDEMPOTENCY_EXCEPTIONS)
    if module is None:
        return False
    return isinstance(
        exc, tuple(getattr(module, name) for name in TRANSIENT_IDEMPOTENCY_ERRORS if hasattr(module, name))
    )


def is_retryable(exc: BaseException) -> bool:
    """THE one decision "is this error transient?" of the consumer, hydrate and CnmResponse.

    True for AWS throttling, 5xx and timeouts (:func:`cnm_ingest.aws.is_transient`), our
    :class:`TransientError` (no time left, :class:`IdempotencyStoreError`, ...) and a transient
    failure of the idempotency store (:func:`is_store_error`). The caller delivers the work again
    (a batch item failure, a raise for Lambda's async retries, a Step Functions Retry).
    """
    from cnm_ingest.aws import is_transient  # errors is the bottom module: aws is only needed here

    return isinstance(exc, TransientError) or is_store_error(exc) or is_transient(exc)


def _all_subclasses(cls: type[CnmIngestError]) -> Iterator[type[CnmIngestError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


ERROR_CLASSES: tuple[type[CnmIngestError], ...] = (CnmIngestError, *_all_subclasses(CnmIngestError))

# Step Functions error name -> CNM errorCode: our classes, then the Cumulus names they stand for.
ERROR_CODES_BY_NAME: dict[str, str] = {
    **{c.__name__: c.error_code for c in ERROR_CLASSES},
    **{c.cumulus_name: c.error_code for c in ERROR_CLASSES if c.cumulus_name},
}


def error_code_for(error_type: str) -> str:
    """Map an error name (an exception class name as Step Functions reports it, or a Cumulus
    error name) to a CNM error code; an unknown name is PROCESSING_ERROR."""
    code = ERROR_CODES_BY_NAME.get(error_type)
    if code is None:  # a subclass defined in another module
        code = next(
            (c.error_code for c in _all_subclasses(CnmIngestError) if c.__name__ == error_type), DEFAULT_ERROR_CODE
        )
    return code
