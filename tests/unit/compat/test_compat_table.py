"""docs/compat-table.md names only tests that exist: every `file.py::test` (and each `::test` after it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TABLE = ROOT / "docs" / "compat-table.md"


def references() -> list[tuple[str, str]]:
    refs = []
    for line in TABLE.read_text().splitlines():
        if not line.startswith("|"):
            continue
        current = None
        for ref in re.findall(r"`([\w/]*\.py)?::(\w+)`|`([\w/]+\.py)`", line.split("|")[-2]):
            path, name, whole = ref
            if whole:
                current = whole
                continue
            current = path or current
            assert current, f"{name} has no file before it in: {line}"
            refs.append((current, name))
    return refs


def test_every_test_the_table_names_exists():
    refs = references()
    assert len(refs) >= 60
    missing = []
    for path, name in refs:
        tree = ast.parse((ROOT / "tests" / path).read_text())
        if name not in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert missing == []


def test_every_routing_and_sftp_test_file_is_named():
    named = {path for path, _ in references()}
    assert {
        "unit/compat/test_routing.py",
        "functional/compat/test_routing_consumer.py",
        "functional/compat/test_sftp_source.py",
        "terraform/test_rule_streams.py",
    } <= named
