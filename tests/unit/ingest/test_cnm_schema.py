"""The bundled CNM schema and the conformance samples."""

from __future__ import annotations

import pytest

from cnm_ingest.cnm import validate
from cnm_ingest.errors import CnmValidationError
from tests.conftest import BUNDLED_SCHEMA, SHARED_CNM, is_response


def test_bundled_schema_is_byte_identical_to_the_published_copy():
    assert BUNDLED_SCHEMA.read_bytes() == (SHARED_CNM / "cnm-schema-1.6.1.json").read_bytes()


def test_every_notification_sample_is_accepted(samples):
    notifications = {name: m for name, m in samples.items() if not is_response(m)}
    assert notifications, "no notification samples found"
    for name, message in notifications.items():
        assert validate.validate_notification(message) is message, name


def test_responses_are_rejected_as_notifications(samples):
    responses = {name: m for name, m in samples.items() if is_response(m)}
    assert responses, "no response samples found"
    for message in responses.values():
        with pytest.raises(CnmValidationError):
            validate.validate_notification(message)


def _variants(samples) -> list[dict]:
    """Every sample, and mutations aimed at the parts fast_notification_schema rewrites."""
    import copy

    out = []
    for message in samples.values():
        out.append(message)
        product = message.get("product") or {}
        mutations = [
            lambda m: m.update(response={"status": "SUCCESS"}),
            lambda m: m.update(response=None),
            lambda m: m.pop("collection", None),
            lambda m: m.update(collection="plain-name"),
            lambda m: m.update(collection={"name": "x"}),
            lambda m: m.update(collection={}),
            lambda m: m.update(collection=7),
            lambda m: m.update(collection=["a"]),
            lambda m: m.get("product", {}).pop("files", None),
            lambda m: m.get("product", {}).pop("name", None),
            lambda m: m.get("product", {}).update(filegroups=[]),
            lambda m, product=product: m.get("product", {}).update(
                filegroups=[{"id": "g", "files": product.get("files", [])}]
            ),
            lambda m, product=product: (
                m.get("product", {}).pop("files", None),
                m.get("product", {}).update(filegroups=[{"id": "g", "files": product.get("files", [])}]),
            ),
            lambda m: (m.get("product", {}).pop("files", None), m.get("product", {}).pop("name", None)),
            lambda m: m.get("product", {}).update(files=None),
            lambda m: m.update(product="not an object"),
            lambda m: m.update(product={}),
        ]
        for mutate in mutations:
            variant = copy.deepcopy(message)
            mutate(variant)
            out.append(variant)
    return out


def test_the_fast_notification_schema_accepts_exactly_what_the_published_branch_accepts(samples):
    """The compiled validator uses a rewrite (no exceptions on the good path); it must agree document by document."""
    import jsonschema

    reference = jsonschema.Draft7Validator(validate.notification_schema())
    fast = validate.compiled("notification")
    verdicts = []
    for doc in _variants(samples):
        expected = reference.is_valid(doc)
        try:
            fast(doc)
            got = True
        except Exception:
            got = False
        assert got == expected, (expected, doc)
        verdicts.append(expected)
    assert True in verdicts and False in verdicts  # both outcomes were exercised
