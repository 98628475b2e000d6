"""The CLI against the local pipeline on moto (tools/cli_stack.py), through Click's CliRunner.

Point these at the Terraform-applied stack later by building ``run`` with
``--outputs <dir>`` instead of the moto stack.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tools.cli_stack import CliStack
from tools.local_pipeline import LambdaHarness


@pytest.fixture
def local(aws_sfn, monkeypatch):
    with LambdaHarness().installed() as harness:
        stack = CliStack()
        for key, value in stack.environment().items():
            monkeypatch.setenv(key, value)
        stack.harness = harness
        stack.add_provider("PROV", "provider-bucket")
        stack.add_collection("COLL", "1", duplicate_handling="error")
        stack.add_rule("coll", "COLL", "PROV", version="1")
        yield stack


class Cli:
    def __init__(self, *base: str) -> None:
        self.base = list(base)
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Result:
        from cnm_ingest_cli.main import cli

        result = self.runner.invoke(cli, [*self.base, *args], env={"COLUMNS": "200"})
        assert result.exit_code == code, f"exit {result.exit_code} (want {code}): {result.output}\n{result.exception!r}"
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def cli(local) -> Cli:
    return Cli("--prefix", local.STACK)


def notification(identifier: str, data: bytes, **overrides: Any) -> dict[str, Any]:
    cnm = {
        "version": "1.6.1",
        "provider": "PROV",
        "collection": {"name": "COLL", "version": "1"},
        "submissionTime": "2024-01-02T03:04:05.678Z",
        "identifier": identifier,
        "product": {
            "name": identifier,
            "files": [
                {
                    "type": "data",
                    "uri": f"s3://provider-bucket/{identifier}.nc",
                    "name": f"{identifier}.nc",
                    "size": len(data),
                    "checksumType": "md5",
                    "checksum": hashlib.md5(data).hexdigest(),
                }
            ],
        },
    }
    cnm.update(overrides)
    return cnm
