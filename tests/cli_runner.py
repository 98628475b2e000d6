"""The ``cnm-ingest`` CLI driven as an operator drives it (Click's CliRunner), for the functional and e2e tiers."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result


class Cli:
    """``Cli("--prefix", p)("status")`` runs ``cnm-ingest --prefix p status``, asserting its exit code;
    ``.json(...)`` adds ``--json`` and parses the output. ``env`` is set for each run (an endpoint, credentials)."""

    def __init__(self, *base: str, env: dict[str, str | None] | None = None) -> None:
        self.base = list(base)
        self.env: dict[str, str | None] = {"COLUMNS": "200", **(env or {})}
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Result:
        from cnm_ingest_cli.main import cli

        result = self.runner.invoke(cli, [*self.base, *args], env=self.env)
        assert result.exit_code == code, f"exit {result.exit_code} (want {code}): {result.output}\n{result.exception!r}"
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def lines(self, *args: str, code: int = 0) -> list[Any]:
        """Output of a command printing one JSON document a line (``responses --json``)."""
        return [json.loads(line) for line in self(*args, "--json", code=code).stdout.splitlines() if line]
