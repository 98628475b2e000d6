"""Every error class lives in errors.py, so error_code_for knows it whatever a Lambda imported."""

from __future__ import annotations

import subprocess
import sys

from cnm_ingest import errors
from cnm_ingest.consumer import rulebook
from tests.conftest import ROOT


def test_not_configured_error_lives_in_errors_and_stays_importable_from_config():
    assert errors.NotConfiguredError.__module__ == "cnm_ingest.errors"
    assert rulebook.NotConfiguredError is errors.NotConfiguredError
    assert issubclass(errors.NotConfiguredError, errors.NoMatchingRuleError)


def test_error_code_for_maps_not_configured_without_config_imported():
    """The CnmResponse Lambda never imports config.py: the mapping must not depend on it.

    Run in a fresh interpreter (this test process has imported config already), which
    also proves errors.py imports nothing that pulls config in.
    """
    code = (
        "import sys; from cnm_ingest.errors import error_code_for; "
        "assert 'cnm_ingest.consumer.rulebook' not in sys.modules, 'errors imported config'; "
        "print(error_code_for('NotConfiguredError'), error_code_for('NoSuchError'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "lambda_src")},
    )
    assert out.stdout.split() == ["VALIDATION_ERROR", "PROCESSING_ERROR"]


def test_every_cnm_ingest_error_class_is_defined_in_errors():
    """No module of cnm_ingest defines its own exception class (they all go in errors.py)."""
    import ast

    def is_error_class(node: ast.AST) -> bool:
        return isinstance(node, ast.ClassDef) and any(
            (isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception")))
            or (isinstance(b, ast.Attribute) and b.attr.endswith(("Error", "Exception")))
            for b in node.bases
        )

    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
        for path in sorted((ROOT / "lambda_src").rglob("*.py"))
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if is_error_class(node)
    ]
    assert not offenders, offenders
