"""Typed errors and how they map to CNM response error codes.

The split matters for loss-free ingest: a :class:`RecordError` is about the
record itself and is never retried (the record goes to the fallback path or is
answered with a FAILURE response); anything else may be transient.
"""

from __future__ import annotations


class CnmIngestError(Exception):
    """Base class; ``error_code`` is the CNM ``response.errorCode``."""

    error_code = "PROCESSING_ERROR"


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


class NoMatchingRuleError(RecordError):
    """No enabled rule matches the message's collection and provider."""


class NotConfiguredError(NoMatchingRuleError):
    """A matching rule names a collection or provider that is not in its table."""


class TransferError(CnmIngestError):
    """A file could not be fetched or did not match its size / checksum."""

    error_code = "TRANSFER_ERROR"


class ChecksumMismatchError(TransferError):
    pass


class FileNotFoundAtSourceError(TransferError):
    pass


class SizeMismatchError(TransferError):
    """The staged (or source) object's size differs from the size in the CNM."""


class DuplicateFileError(CnmIngestError):
    """A staged file exists and the collection's duplicate handling is 'error'."""

    error_code = "PROCESSING_ERROR"


class ConfigurationError(CnmIngestError):
    """The collection / workflow configuration is unusable (e.g. a bad url_path)."""

    error_code = "PROCESSING_ERROR"


class TransientError(CnmIngestError):
    """A temporary failure (throttling, 5xx, timeout): the workflow retries the task."""

    error_code = "PROCESSING_ERROR"


class WorkflowError(CnmIngestError):
    """Raised by CnmResponse after answering FAILURE, so the execution ends FAILED.

    The message is a JSON object ``{"Error", "errorCode", "errorMessage"}``
    describing the original error, which StopStatus records.
    """

    error_code = "PROCESSING_ERROR"


ERROR_CODES = ("VALIDATION_ERROR", "PROCESSING_ERROR", "TRANSFER_ERROR")


def error_code_for(error_type: str) -> str:
    """Map an exception class name (as Step Functions reports it) to a CNM error code."""
    cls = _BY_NAME.get(error_type)
    if cls is not None:
        return cls.error_code
    return "PROCESSING_ERROR"


class WorkflowPayloadError(CnmIngestError):
    """A part of the workflow message stored in the payload bucket is missing or does not match its reference."""


class WorkflowInputTooLargeError(RecordError):
    """The workflow message of a record exceeds what Step Functions accepts as execution input (256 KiB)."""

    error_code = "PROCESSING_ERROR"


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


_BY_NAME = {c.__name__: c for c in [CnmIngestError, *_all_subclasses(CnmIngestError)]}
