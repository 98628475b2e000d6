"""errors.is_retryable: the one "is this error transient?" of the consumer, hydrate and CnmResponse (issue 20)."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.idempotency import exceptions as pt
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from cnm_ingest import errors
from cnm_ingest.consumer import consume


def client_error(code: str, status: int, op: str = "PutItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, op)


@pytest.mark.parametrize(
    "exc",
    [
        pt.IdempotencyPersistenceLayerError("Failed to save in progress record", client_error("Throttling", 400)),
        pt.IdempotencyPersistenceLayerError("Failed to update record state to success", client_error("x", 500)),
        pt.IdempotencyAlreadyInProgressError("Execution already in progress"),
        pt.IdempotencyInconsistentStateError("save_inprogress and get_record return inconsistent results."),
        pt.IdempotencyItemAlreadyExistsError(),
        errors.IdempotencyStoreError("store down"),
        errors.DeadlineError("no time left"),
        client_error("ProvisionedThroughputExceededException", 400),
        client_error("InternalFailure", 500, "UpdateItem"),
        ReadTimeoutError(endpoint_url="https://dynamodb.us-west-2.amazonaws.com"),
        # the transport errors botocore's standard retry mode retries: still transient after its attempts
        ConnectionClosedError(endpoint_url="https://kinesis.us-west-2.amazonaws.com"),
        ResponseStreamingError(error="Connection broken: IncompleteRead(3 bytes read)"),
        EndpointConnectionError(endpoint_url="https://kinesis.us-west-2.amazonaws.com"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_store_failures_and_aws_throttling_are_retryable(exc):
    assert errors.is_retryable(exc)
    assert consume.is_retryable(exc)  # the consumer and hydrate use the same decision


@pytest.mark.parametrize(
    "exc",
    [
        pt.IdempotencyValidationError("payload does not match the stored record"),  # a retry meets it again
        pt.IdempotencyKeyError("no idempotency key"),
        client_error("ConditionalCheckFailedException", 400),
        client_error("AccessDeniedException", 400),
        errors.CnmValidationError("bad", "$.identifier"),
        ParamValidationError(report="Invalid type for parameter Data"),  # a request the SDK refuses: again next time
        ValueError("bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_a_retry_meets_again_are_not_retryable(exc):
    assert not errors.is_retryable(exc)


def test_the_store_error_is_transient_and_named_for_the_state_machine():
    assert issubclass(errors.IdempotencyStoreError, errors.TransientError)
    assert errors.error_code_for("IdempotencyStoreError") == "PROCESSING_ERROR"


def test_store_errors_are_known_without_importing_powertools(monkeypatch):
    """The consumer's cold start does not import Powertools' idempotency: an exception of it cannot exist then."""
    import sys

    monkeypatch.delitem(sys.modules, errors.POWERTOOLS_IDEMPOTENCY_EXCEPTIONS)
    assert not errors.is_store_error(RuntimeError("x"))
    assert "aws_lambda_powertools.utilities.idempotency.exceptions" not in sys.modules
