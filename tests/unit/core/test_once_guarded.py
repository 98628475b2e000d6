"""idempotency.guarded: a store failure before the side effect is IdempotencyStoreError; after it, the effect's result
(the success record written late), never an error that would make the caller repeat the effect."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
from botocore.exceptions import ClientError

from cnm_ingest import idempotency
from cnm_ingest.errors import IdempotencyStoreError

THROTTLED = ClientError({"Error": {"Code": "Throttling"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "UpdateItem")


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(idempotency, "sleep", slept.append)
    return slept


def powertools(before: bool = False, after: bool = False):
    """A stand-in for Powertools' idempotent call: optionally the in-progress write or the success write fails."""

    def run(tracked):
        if before:
            raise IdempotencyPersistenceLayerError("Failed to save in progress record", THROTTLED)
        result = tracked()
        if after:
            raise IdempotencyPersistenceLayerError("Failed to update record state to success", THROTTLED)
        return result

    return run


def test_before_the_effect_is_a_store_error_and_nothing_ran():
    ran = []
    with pytest.raises(IdempotencyStoreError):
        idempotency.guarded(powertools(before=True), lambda: ran.append(1), save=lambda r: None, what="t")
    assert ran == []


def test_after_the_effect_returns_its_result_and_saves_late(no_sleep):
    ran, saved = [], []
    out = idempotency.guarded(powertools(after=True), lambda: ran.append(1) or "result", save=saved.append, what="t")
    assert (out, ran, saved) == ("result", [1], ["result"])
    assert len(no_sleep) == 1


def test_after_the_effect_with_the_store_down_still_returns_the_result(no_sleep):
    calls = []

    def save(result):
        calls.append(result)
        raise THROTTLED

    assert idempotency.guarded(powertools(after=True), lambda: 7, save=save, what="t") == 7
    assert len(calls) == idempotency.LATE_SAVE_ATTEMPTS and len(no_sleep) == idempotency.LATE_SAVE_ATTEMPTS


def test_a_pure_effect_raises_when_its_result_is_not_saved():
    with pytest.raises(IdempotencyStoreError):
        idempotency.guarded(powertools(after=True), lambda: "pinned", save=None, what="pin")


def test_an_error_of_the_effect_itself_propagates_unchanged():
    def effect():
        raise THROTTLED

    with pytest.raises(ClientError):
        idempotency.guarded(powertools(), effect, save=lambda r: None, what="t")
