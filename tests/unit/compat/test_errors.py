"""Error codes as PO.DAAC's CnmResponse answers them; the documented table is the mapping."""

from __future__ import annotations

import json
import re

import pytest

from cnm_ingest import errors
from cnm_ingest.errors import error_code_for
from cnm_ingest.workflow import task
from tests.conftest import ROOT
from tools import gen_docs


@pytest.mark.parametrize(
    "name, code",
    [
        # Cumulus task error names, as PO.DAAC's CnmResponse maps them
        ("FileNotFound", "TRANSFER_ERROR"),
        ("RemoteResourceError", "TRANSFER_ERROR"),
        ("ConnectionTimeout", "TRANSFER_ERROR"),
        ("InvalidChecksum", "VALIDATION_ERROR"),
        ("UnexpectedFileSize", "VALIDATION_ERROR"),
        # ours
        ("ChecksumMismatchError", "VALIDATION_ERROR"),
        ("SizeMismatchError", "VALIDATION_ERROR"),
        ("FileNotFoundAtSourceError", "TRANSFER_ERROR"),
        ("ConnectionTimeoutError", "TRANSFER_ERROR"),
        ("TransferError", "TRANSFER_ERROR"),
        ("CnmValidationError", "VALIDATION_ERROR"),
        ("DecodeError", "VALIDATION_ERROR"),
        ("DuplicateFileError", "PROCESSING_ERROR"),
        ("TransientError", "PROCESSING_ERROR"),
        ("NotConfiguredError", "VALIDATION_ERROR"),
        ("NoMatchingRuleError", "VALIDATION_ERROR"),
        ("WorkflowPayloadError", "PROCESSING_ERROR"),
        ("WorkflowError", "PROCESSING_ERROR"),
        # anything else
        ("States.Timeout", "PROCESSING_ERROR"),
        ("Lambda.Unknown", "PROCESSING_ERROR"),
        ("", "PROCESSING_ERROR"),
        ("__class__", "PROCESSING_ERROR"),
        ("constructor", "PROCESSING_ERROR"),
        ("filenotfound", "PROCESSING_ERROR"),
        ("FileNotFound ", "PROCESSING_ERROR"),
        ("x" * 10_000, "PROCESSING_ERROR"),
    ],
)
def test_error_name_to_code(name, code):
    assert error_code_for(name) == code


def test_every_cumulus_equivalent_has_the_code_of_its_class():
    for cls in errors.ERROR_CLASSES:
        if cls.cumulus_name:
            assert error_code_for(cls.cumulus_name) == cls.error_code == error_code_for(cls.__name__)


def test_a_cumulus_error_from_a_daac_step_is_answered_with_the_message_alone():
    cause = json.dumps({"errorType": "InvalidChecksum", "errorMessage": "Invalid checksum for s3://b/k"})
    assert task.original_error({"Error": "InvalidChecksum", "Cause": cause}) == {
        "Error": "InvalidChecksum",
        "errorCode": "VALIDATION_ERROR",
        "errorMessage": "Invalid checksum for s3://b/k",
    }
    # a Cause that is not JSON (States.* errors) is the message itself, as PO.DAAC does
    assert task.original_error({"Error": "ConnectionTimeout", "Cause": "timed out"})["errorMessage"] == "timed out"


def test_documented_table_is_the_mapping():
    text = (ROOT / "docs" / "INTERFACES.md").read_text()
    found = re.search(r"<!-- BEGIN error-codes[^>]*-->\n(.*?)\n<!-- END error-codes -->", text, re.S)
    assert found, "docs/INTERFACES.md has no generated error-codes table"
    assert found.group(1) == gen_docs.error_codes_table()
