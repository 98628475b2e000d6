"""Credentials scoped to one provider: what SyncGranule reads a provider's files and secret with.

SyncGranule's own role cannot read any provider bucket or provider secret.
It may only assume the stack's provider-read role (``PROVIDER_READ_ROLE_ARN``,
modules/workflow), whose policy covers every provider's buckets and secrets;
each AssumeRole passes a session policy (:func:`session_policy`) built from
one provider's configuration, and the credentials it returns can do only
what both allow:

- ``s3:GetObject`` on the provider's bucket (``host``), under each of its
  ``allowed_prefixes`` (the whole bucket when it lists none);
- ``s3:ListBucket`` on that bucket with an ``s3:prefix`` condition to the same
  prefixes, so that a missing file under them reads as not found (404), not
  AccessDenied;
- ``s3:PutObject`` / ``s3:AbortMultipartUpload`` in the temporary area
  (``.cnm-ingest-tmp/``) of the buckets the granule is staged in: a
  server-side copy reads the source and writes the destination with one set
  of credentials, and it only ever writes a temporary key;
- ``secretsmanager:GetSecretValue`` on the provider's own secret
  (``credentials_secret_arn``);
- ``kms:Decrypt`` / ``kms:GenerateDataKey`` through S3 only (the role names the keys).

``*``, ``?`` and ``$`` in a bucket prefix are written as IAM's ``${*}``,
``${?}`` and ``${$}``, so a prefix can never widen into a wildcard. Without
``PROVIDER_READ_ROLE_ARN`` (the function run outside the module) the
function's own credentials are used.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from cnm_ingest import aws
from cnm_ingest.errors import ConfigurationError

ROLE_ENV = "PROVIDER_READ_ROLE_ARN"
TEMP_AREA = ".cnm-ingest-tmp/"  # cnm_ingest.workflow.sync_granule.TEMP_PREFIX (staging imports this module)
MAX_POLICY_CHARS = 2048  # AWS's limit on an inline session policy (before packing)
_SESSION_NAME = re.compile(r"[^\w+=,.@-]", re.ASCII)


def iam_literal(text: str) -> str:
    """``text`` in an IAM resource or StringLike value, with ``$``, ``*`` and ``?`` taken literally."""
    return text.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}")


def _folders(provider: dict[str, Any]) -> list[str]:
    prefixes = provider.get("allowed_prefixes")
    if prefixes is None:
        return [""]
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise ConfigurationError(f"provider {provider.get('id')!r}'s allowed_prefixes must be a list of strings")
    folders = sorted({p.strip("/") + "/" for p in prefixes if p.strip("/")})
    return folders or [""]


def session_policy(
    provider: dict[str, Any], *, temporary_buckets: Iterable[str] = (), partition: str = "aws"
) -> dict[str, Any]:
    """The session policy for reading ``provider``'s files (see the module docstring); a plain function."""
    arn = f"arn:{partition}:s3:::"
    statements: list[dict[str, Any]] = []
    host = provider.get("host")
    if (provider.get("protocol") or "s3") == "s3" and isinstance(host, str) and host:
        folders = _folders(provider)
        statements.append(
            {
                "Sid": "ReadProviderObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": [f"{arn}{iam_literal(host)}/{iam_literal(f)}*" for f in folders],
            }
        )
        listing: dict[str, Any] = {
            "Sid": "ListProviderPrefixes",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"{arn}{iam_literal(host)}",
        }
        if folders != [""]:
            listing["Condition"] = {"StringLike": {"s3:prefix": [f"{iam_literal(f)}*" for f in folders]}}
        statements.append(listing)
        temporary = sorted(set(temporary_buckets))
        if temporary:
            statements.append(
                {
                    "Sid": "WriteStagingTemporaryArea",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                    "Resource": [f"{arn}{iam_literal(b)}/{TEMP_AREA}*" for b in temporary],
                }
            )
        statements.append(
            {
                "Sid": "KeysThroughS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            }
        )
    secret = provider.get("credentials_secret_arn")
    if isinstance(secret, str) and secret:
        statements.append(
            {
                "Sid": "ReadProviderSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret,
            }
        )
    if not statements:
        statements.append({"Sid": "Nothing", "Effect": "Deny", "Action": "*", "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def policy_text(policy: dict[str, Any]) -> str:
    """The session policy as sent (compact JSON); ConfigurationError above AWS's size limit."""
    text = json.dumps(policy, separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_POLICY_CHARS:
        raise ConfigurationError(
            f"the provider's session policy is {len(text)} characters, over AWS's {MAX_POLICY_CHARS}: "
            "too many allowed_prefixes or too long names"
        )
    return text


def session_name(provider: dict[str, Any]) -> str:
    """``cnm-ingest-<provider id>`` in AssumeRole's RoleSessionName alphabet, at most 64 characters."""
    return _SESSION_NAME.sub("-", f"cnm-ingest-{provider.get('id') or 'provider'}")[:64]


def client(service: str, provider: dict[str, Any], *, temporary_buckets: Iterable[str] = ()) -> Any:
    """A ``service`` client that can read only ``provider``'s files and secret (see the module docstring)."""
    role = os.environ.get("PROVIDER_READ_ROLE_ARN")  # a literal: tests/e2e/test_contract reads it from the code
    if not role:
        return aws.client(service)
    partition = role.split(":")[1] if role.count(":") >= 5 else "aws"
    policy = session_policy(provider, temporary_buckets=temporary_buckets, partition=partition)
    return aws.assumed_client(service, role, policy_text(policy), session_name(provider))


def secrets_client(secret_arn: str) -> Any:
    """A Secrets Manager client that can read ``secret_arn`` only."""
    return client("secretsmanager", {"id": "secret", "protocol": "secret", "credentials_secret_arn": secret_arn})
