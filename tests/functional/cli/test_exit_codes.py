"""Every error path of the CLI, run in text and in --json mode on moto: one error, one exit code.

In --json mode the error is one JSON object on stderr with the same exit code; in text mode it is
``Error: ...``. A missing resource is named with the region and the likely cause. The region comes
from --region, else AWS_DEFAULT_REGION, else AWS_REGION (boto3 reads only the first variable)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cnm_ingest_cli import ops
from cnm_ingest_cli import stack as stack_mod

from tests.cli_runner import Cli

GOOD = {
    "version": "1.6.1",
    "identifier": "id-1",
    "collection": {"name": "C", "version": "1"},
    "provider": "P",
    "submissionTime": "2026-01-01T00:00:00Z",
    "product": {"name": "g", "files": [{"type": "data", "name": "g.nc", "uri": "s3://b/g.nc", "size": 1}]},
}
LIKELY = "wrong --prefix or region, or the stack is not applied"


def _table(name: str, key: str = "name", region: str = "us-east-1") -> None:
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _denied(*_args, **_kwargs):
    raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not you"}}, "Scan")


def _boom(*_args, **_kwargs):
    raise RuntimeError("a bug")


@dataclass
class Case:
    args: tuple[str, ...]
    code: int
    says: str
    env: dict[str, str | None] = field(default_factory=dict)
    setup: Callable[[pytest.MonkeyPatch, Path], None] | None = None


def _write(name: str, text: str) -> Callable[[pytest.MonkeyPatch, Path], None]:
    return lambda _mp, tmp: (tmp / name).write_text(text)


def _redrive_half(mp: pytest.MonkeyPatch, _tmp: Path) -> None:
    mp.setattr(stack_mod.Stack, "dlq_url", "http://q")
    mp.setattr(ops, "dlq_redrive", lambda *a, **k: [{"message_id": "m", "outcome": "failed", "reason": "x"}])


CASES = {
    "unexpected": Case(
        ("--prefix", "daac-sit", "rules", "list"),
        1,
        "unexpected RuntimeError",
        setup=lambda mp, _t: mp.setattr(ops, "rules_list", _boom),
    ),
    "unknown option": Case(("--prefix", "daac-sit", "status", "--bogus"), 2, "No such option"),
    "bad time": Case(("--prefix", "daac-sit", "status", "--since", "banana"), 2, "not a time"),
    "future window": Case(("--prefix", "daac-sit", "replay", "--from", "2999-01-01"), 2, "in the future"),
    "bad prefix": Case(("--prefix", "Daac..sit", "status"), 2, "3-32 lowercase letters"),
    "redrive what": Case(("--prefix", "daac-sit", "dlq", "redrive"), 2, "--all"),
    "which stack": Case(("status",), 3, "which stack"),
    "no outputs file": Case(("--outputs", "missing.json", "status"), 3, "no outputs file"),
    "outputs not JSON": Case(
        ("--outputs", "o.json", "status"),
        3,
        "not the JSON",
        setup=lambda _mp, tmp: (tmp / "o.json").write_bytes(b"\xff{"),
    ),
    "outputs a plain directory": Case(
        ("--outputs", ".", "status"), 3, "has no Terraform outputs", env={"PATH": "/nonexistent"}
    ),
    "no executions table": Case(
        ("--prefix", "daac-sit", "status"), 3, f"no executions table daac-sit-executions in us-east-1: {LIKELY}"
    ),
    "stack from before the one status store": Case(
        ("--prefix", "daac-sit", "status"),
        3,
        "has no status store yet: apply cnm-ingest 0.3.0 or later",
        setup=lambda _mp, _t: _table("daac-sit-rules"),
    ),
    "no rules table": Case(
        ("--prefix", "daac-sit", "rules", "list"), 3, f"no rules table daac-sit-rules in us-east-1: {LIKELY}"
    ),
    "no rules table to enable": Case(
        ("--prefix", "daac-sit", "rules", "enable", "r"), 3, f"no rules table daac-sit-rules in us-east-1: {LIKELY}"
    ),
    "no stream": Case(
        ("--prefix", "daac-sit", "send", "good.json"),
        3,
        f"no stream daac-sit-notifications in us-east-1: {LIKELY}",
        setup=_write("good.json", json.dumps(GOOD)),
    ),
    "no queue": Case(
        ("--prefix", "daac-sit", "dlq", "list"), 3, f"no queue daac-sit-kinesisFailure in us-east-1: {LIKELY}"
    ),
    "no response stream": Case(
        ("--prefix", "daac-sit", "responses"), 3, f"no stream daac-sit-responses in us-east-1: {LIKELY}"
    ),
    "unknown profile": Case(
        ("--prefix", "daac-sit", "--profile", "no-such-profile", "rules", "list"), 4, "no-such-profile"
    ),
    "no region": Case(
        ("--prefix", "daac-sit", "rules", "list"),
        4,
        "no AWS region",
        env={"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_CONFIG_FILE": "/nonexistent"},
    ),
    "access denied": Case(
        ("--prefix", "daac-sit", "rules", "list"),
        4,
        "access denied (AccessDeniedException)",
        setup=lambda mp, _t: mp.setattr(ops, "rules_list", _denied),
    ),
    "no rule": Case(
        ("--prefix", "daac-sit", "rules", "disable", "nope"),
        5,
        "no rule 'nope'",
        setup=lambda _mp, _t: _table("daac-sit-rules"),
    ),
    "no file": Case(("--prefix", "daac-sit", "send", "nope.json"), 5, "no file or directory"),
    "refused CNM": Case(
        ("--prefix", "daac-sit", "send", "bad.json"), 6, "1 of 1 file(s) refused", setup=_write("bad.json", "{}")
    ),
    "partly failed": Case(("--prefix", "daac-sit", "dlq", "redrive", "--all"), 7, "not redriven", setup=_redrive_half),
}


@pytest.mark.parametrize("name", CASES)
def test_every_error_has_one_exit_code_in_text_and_json(name, aws, tmp_path, monkeypatch):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)
    if case.setup:
        case.setup(monkeypatch, tmp_path)
    env = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", **case.env}
    text = Cli(env=env)(*case.args, code=case.code)
    assert case.says in " ".join(text.output.split()), text.output
    as_json = Cli(env=env)(*case.args, "--json", code=case.code)
    if case.code == 2:
        assert "Usage:" in as_json.stderr  # Click's usage message, before any command ran
        return
    error = json.loads(as_json.stderr.strip().splitlines()[-1])
    assert error["exit_code"] == case.code and case.says in error["message"]


def test_the_cases_cover_every_exit_code():
    assert {case.code for case in CASES.values()} == set(range(1, 8))


@pytest.mark.parametrize(
    "env, region",
    [
        ({"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": None}, "eu-north-1"),
        ({"AWS_REGION": None, "AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
        ({"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),  # boto3's variable first
    ],
)
def test_the_region_variables_the_help_names_are_honoured(aws, env, region):
    out = Cli("--prefix", "daac-sit", env=env)("rules", "list", code=3).output
    assert f"in {region}:" in out
    out = Cli("--prefix", "daac-sit", "--region", "sa-east-1", env=env)("rules", "list", code=3).output
    assert "in sa-east-1:" in out  # --region before either variable
    assert "AWS_DEFAULT_REGION" in Cli()("--help").output and "AWS_REGION" in Cli()("--help").output


def test_a_table_in_the_region_given_is_found(aws):
    """The region decides where the CLI looks: the rules table in eu-north-1 is listed from AWS_REGION alone."""
    _table("daac-sit-rules", region="eu-north-1")
    env = {"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": None}
    assert Cli("--prefix", "daac-sit", env=env).json("rules", "list") == []
    assert "in us-east-1:" in Cli("--prefix", "daac-sit", "--region", "us-east-1")("rules", "list", code=3).output


def test_odd_unicode_names_are_not_found_not_errors(aws):
    _table("daac-sit-rules")
    for name in ("ĝranule\u202e", "../../etc/passwd", "名前", "x" * 2000, "rule\u0000"):
        assert "no rule" in Cli("--prefix", "daac-sit", "--region", "us-east-1")("rules", "enable", name, code=5).output
