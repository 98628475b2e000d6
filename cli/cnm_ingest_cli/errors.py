"""CLI errors and their exit codes: one table, used in text and ``--json`` mode alike.

:data:`EXIT_CODES` maps each error class to its code; :func:`exit_code` reads it for any
exception (Click's usage errors included), and the README's "Operating it" lists the same table
(``tests/unit/cli/test_exit_codes.py`` checks both, and runs every error path in both modes).

| code | meaning |
|---|---|
| 0 | done |
| 1 | unexpected error |
| 2 | usage error (bad option or argument: unknown option, a time that is not one, a malformed --prefix) |
| 3 | stack not found (no outputs, or a resource of the stack is missing) |
| 4 | AWS refused or unreachable (access denied, no or expired credentials, no region, endpoint down) |
| 5 | not found (granule, execution, DLQ message, rule, shard, file) |
| 6 | refused input (invalid CNM, granule in several collections, nothing to reingest, not routed, not redrivable) |
| 7 | partly failed (some records not put, started or redriven, or a DLQ entry lost; the rest were) |
| 8 | unaccounted (reconcile: records lost, stuck, parked or ended without an answer) |
"""

from __future__ import annotations

import json
from typing import IO, Any

import click
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

OK, UNEXPECTED, USAGE, STACK_NOT_FOUND, AWS_REFUSED, NOT_FOUND, REFUSED_INPUT, PARTIAL, UNACCOUNTED = range(9)

# Where a missing resource most likely comes from (the prefix, the region, or a stack not applied).
LIKELY_CAUSE = "wrong --prefix or region, or the stack is not applied"


class CliError(click.ClickException):
    """An error the CLI reports; its exit code is :data:`EXIT_CODES` of its class (text and ``--json`` alike)."""

    as_json = False  # set by the command group when the command ran with --json

    def show(self, file: IO[Any] | None = None) -> None:
        """Text mode: ``Error: message``; ``--json`` mode: one JSON object on stderr; the same exit code."""
        if self.as_json:
            body = {"error": type(self).__name__, "message": self.format_message(), "exit_code": self.exit_code}
            click.echo(json.dumps(body, ensure_ascii=False), file=file, err=True)
            return
        super().show(file)


class StackNotFound(CliError):
    pass


class AwsRefused(CliError):
    pass


class NotFound(CliError):
    pass


class RefusedInput(CliError):
    pass


class PartialFailure(CliError):
    pass


class Unaccounted(CliError):
    pass


# The one exit-code table: an error is found here by its class (or the nearest base class listed).
EXIT_CODES: dict[type[BaseException], int] = {
    click.UsageError: USAGE,  # BadParameter, NoSuchOption, MissingParameter ... are UsageErrors
    StackNotFound: STACK_NOT_FOUND,
    AwsRefused: AWS_REFUSED,
    NotFound: NOT_FOUND,
    RefusedInput: REFUSED_INPUT,
    PartialFailure: PARTIAL,
    Unaccounted: UNACCOUNTED,
    CliError: UNEXPECTED,
}


for _cls, _code in EXIT_CODES.items():  # each class's exit_code (what Click exits with) is the table's
    if issubclass(_cls, CliError):
        _cls.exit_code = _code


# What each exit code means, short (the --help epilog; the table above says it in full).
MEANINGS = {
    OK: "done",
    UNEXPECTED: "unexpected error",
    USAGE: "usage (bad option, time or --prefix)",
    STACK_NOT_FOUND: "stack not found",
    AWS_REFUSED: "AWS refused or unreachable",
    NOT_FOUND: "not found",
    REFUSED_INPUT: "refused input",
    PARTIAL: "partly failed",
    UNACCOUNTED: "unaccounted (reconcile)",
}


def exit_code(exc: BaseException) -> int:
    """The exit code of ``exc`` from :data:`EXIT_CODES` (1 for anything not in it)."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return UNEXPECTED


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


def translate(exc: BaseException, where: str = "") -> CliError | None:
    """The CliError for an AWS error, or None when it is not one we name.

    ``where`` says which stack and region the command was looking at (``stack 'p' in us-west-2``), so
    that a missing resource is reported with the likely cause rather than as a raw AWS message.
    """
    if isinstance(exc, NoRegionError):
        return AwsRefused("no AWS region: give --region, or set AWS_REGION or AWS_DEFAULT_REGION")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, ProfileNotFound)):
        return AwsRefused(f"AWS credentials: {exc}")
    if isinstance(exc, EndpointConnectionError):
        return AwsRefused(f"cannot reach AWS: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        operation = getattr(exc, "operation_name", "")
        if code in ACCESS_CODES:
            return AwsRefused(f"access denied ({code}) on {operation}: {message}")
        if code in MISSING_CODES:
            return StackNotFound(
                f"a resource of {where or 'the stack'} was not found ({code} on {operation}: {message}): {LIKELY_CAUSE}"
            )
    return None
