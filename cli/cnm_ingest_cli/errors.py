"""CLI errors and their exit codes (documented in the README, "Operating it").

| code | meaning |
|---|---|
| 0 | done |
| 1 | unexpected error |
| 2 | usage error (bad option or argument) |
| 3 | stack not found (no outputs, or a resource of the stack is missing) |
| 4 | AWS refused or unreachable (access denied, no or expired credentials, endpoint down) |
| 5 | not found (granule, execution, DLQ message, rule) |
| 6 | refused input (an invalid CNM, a granule in several collections without --collection, nothing to reingest from) |
| 7 | partly failed (some records could not be put, started or redriven; the rest were) |
"""

from __future__ import annotations

import click
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

OK, UNEXPECTED, USAGE, STACK_NOT_FOUND, AWS_REFUSED, NOT_FOUND, REFUSED_INPUT, PARTIAL = range(8)


class CliError(click.ClickException):
    exit_code = UNEXPECTED


class StackNotFound(CliError):
    exit_code = STACK_NOT_FOUND


class AwsRefused(CliError):
    exit_code = AWS_REFUSED


class NotFound(CliError):
    exit_code = NOT_FOUND


class RefusedInput(CliError):
    exit_code = REFUSED_INPUT


class PartialFailure(CliError):
    exit_code = PARTIAL


ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "KMSAccessDeniedException",
    "AuthorizationError",
}
MISSING_CODES = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "StateMachineDoesNotExist",
    "NoSuchBucket",
}


def translate(exc: BaseException) -> CliError | None:
    """The CliError for an AWS error, or None when it is not one we name."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, ProfileNotFound, NoRegionError)):
        return AwsRefused(f"AWS credentials or region: {exc}")
    if isinstance(exc, EndpointConnectionError):
        return AwsRefused(f"cannot reach AWS: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        operation = getattr(exc, "operation_name", "")
        if code in ACCESS_CODES:
            return AwsRefused(f"access denied ({code}) on {operation}: {message}")
        if code in MISSING_CODES:
            return StackNotFound(f"a resource of the stack is missing ({code} on {operation}): {message}")
    return None
