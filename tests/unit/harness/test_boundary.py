"""The emulator layer (localaws) depends on nothing of the product but the packages it runs.

It reads what Terraform deployed and runs the zips the emulator stores; it never imports the
product's code (``cnm_ingest``), its build script (``build``), its CLI, the tests or the demo.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("cnm_ingest", "handlers", "build", "cli", "cnm_ingest_cli", "tests", "tools", "demo")


def imported_modules(source: str) -> set[str]:
    """Every module an import statement names, at any depth (function-level imports too); relative imports are ''."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("" if node.level else node.module or "")
    return names


def forbidden(names: set[str]) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] in FORBIDDEN)


def test_the_check_sees_imports_at_any_depth():
    source = "import os\nfrom . import server\ndef f():\n    from cnm_ingest import dlq\n    import build\n"
    assert forbidden(imported_modules(source)) == ["build", "cnm_ingest"]
    assert forbidden(imported_modules("import cli.cnm_ingest_cli.stack\nfrom tests.worlds import x\n")) == [
        "cli.cnm_ingest_cli.stack",
        "tests.worlds",
    ]
    assert forbidden(imported_modules("import buildkit\nfrom clickhouse import c\n")) == []


@pytest.mark.parametrize("path", sorted((ROOT / "localaws").glob("*.py")), ids=lambda p: p.name)
def test_localaws_imports_nothing_of_the_product(path):
    assert forbidden(imported_modules(path.read_text())) == [], (
        f"localaws/{path.name} imports the product or the harness around it: read build/manifest.json, "
        "deployed resources or plain JSON instead"
    )
