"""The bundled CNM schema and the conformance samples."""

from __future__ import annotations

import pytest

from cnm_ingest import cnm
from cnm_ingest.errors import CnmValidationError
from tests.conftest import BUNDLED_SCHEMA, SHARED_CNM, is_response


def test_bundled_schema_is_byte_identical_to_the_published_copy():
    assert BUNDLED_SCHEMA.read_bytes() == (SHARED_CNM / "cnm-schema-1.6.1.json").read_bytes()


def test_every_notification_sample_is_accepted(samples):
    notifications = {name: m for name, m in samples.items() if not is_response(m)}
    assert notifications, "no notification samples found"
    for name, message in notifications.items():
        assert cnm.validate_notification(message) is message, name


def test_responses_are_rejected_as_notifications(samples):
    responses = {name: m for name, m in samples.items() if is_response(m)}
    assert responses, "no response samples found"
    for name, message in responses.items():
        with pytest.raises(CnmValidationError):
            cnm.validate_notification(message)
