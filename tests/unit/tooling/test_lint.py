"""Lint and types, as CI runs them: every local hook of .pre-commit-config.yaml (ruff, mypy, terraform fmt, tflint).

The hooks are the one definition of the checks; these tests read and run
them, so a developer's ``pre-commit run --all-files`` and CI agree. Run them
alone with ``pytest -m lint``.
"""

from __future__ import annotations

import ast
import configparser
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.lint


def hooks() -> list[dict]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_every_hook_is_local_and_runs_the_pinned_tools():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    ids = {hook["id"] for hook in hooks()}
    assert {"ruff", "ruff-format", "mypy", "terraform-fmt", "tflint"} <= ids
    for hook in hooks():
        assert hook["language"] == "system"
        assert hook["pass_filenames"] is False, f"{hook['id']}: must check the whole repository, as CI does"
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pinned = {d.split("==")[0] for d in dev if "==" in d}
    assert {"ruff", "mypy", "pre-commit"} <= pinned


@pytest.mark.parametrize("hook_id", [h["id"] for h in hooks()])
def test_hook_passes(hook_id):
    hook = next(h for h in hooks() if h["id"] == hook_id)
    cmd = shlex.split(hook["entry"])
    if cmd[0] == ".venv/bin/python":
        cmd[0] = sys.executable  # the interpreter running the tests is the venv's
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{hook['name']} found problems:\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"


def test_editorconfig_and_ruff_agree_on_the_line_length():
    editorconfig = configparser.ConfigParser()
    editorconfig.read_string("[top]\n" + (ROOT / ".editorconfig").read_text())
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert int(editorconfig["*.py"]["max_line_length"]) == ruff["line-length"] == 120


def test_handlers_are_typed_with_the_powertools_lambda_context():
    """Each handler's ``context`` parameter is annotated with Powertools' LambdaContext, not Any."""
    wrong = []
    for path in sorted((ROOT / "lambda_src" / "handlers").glob("*.py")):
        tree = ast.parse(path.read_text())
        fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"), None)
        assert fn is not None, f"{path.name}: no handler function"
        annotations = {a.arg: ast.unparse(a.annotation) if a.annotation else None for a in fn.args.args}
        if annotations.get("context") != "LambdaContext":
            wrong.append(f"{path.name}: context: {annotations.get('context')}")
    assert not wrong, "handlers not typed with LambdaContext:\n" + "\n".join(wrong)


def test_mypy_covers_the_product_and_the_emulator_layer():
    """mypy checks lambda_src, the emulator layer (localaws) and the demo drivers, as strictly as the product."""
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert {"lambda_src", "localaws", "demo"} <= set(mypy["files"])
    assert mypy["disallow_untyped_defs"] is True and mypy["check_untyped_defs"] is True
    ignored = [o["module"] for o in mypy.get("overrides", []) if o.get("ignore_errors")]
    assert not [
        m
        for group in ignored
        for m in ([group] if isinstance(group, str) else group)
        if m.startswith(("localaws", "demo"))
    ]
