"""Fixtures reproducing the shapes of PO.DAAC's and Cumulus's test inputs (our own values; see fixtures/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def fixture():
    return load


def valid_response_everywhere(response: dict, reference_schema: dict) -> dict:
    """The response is valid for our compiled validator and for jsonschema with date-time formats checked."""
    import jsonschema

    from cnm_ingest.cnm.validate import validate_response

    validate_response(response)
    key = json.dumps(reference_schema, sort_keys=True)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = jsonschema.Draft7Validator(
            reference_schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
        )
    _VALIDATORS[key].validate(response)
    return response


_VALIDATORS: dict = {}
