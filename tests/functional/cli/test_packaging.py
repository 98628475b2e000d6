"""How the CLI is packaged: installed by the project, in no Lambda zip.

The CLI against a pipeline: tests/e2e/test_cli.py (the Terraform-applied stack); without AWS: tests/unit/cli."""

from __future__ import annotations

import json
import tomllib
import zipfile

import pytest

from tests.conftest import ROOT


def test_the_cli_is_installed_by_the_project_and_in_no_lambda_zip():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["cnm-ingest"] == "cnm_ingest_cli.main:main"
    # every package of lambda_src/cnm_ingest (a pip install of the CLI imports them), and the CLI's
    src = ROOT / "lambda_src"
    on_disk = {".".join(p.parent.relative_to(src).parts) for p in (src / "cnm_ingest").rglob("__init__.py")}
    assert set(project["tool"]["setuptools"]["packages"]) == on_disk | {"cnm_ingest_cli"}
    # and every data file in them (the CNM schema, the step schemas)
    data = project["tool"]["setuptools"]["package-data"]
    for path in (src / "cnm_ingest").rglob("*.json"):
        package = ".".join(path.parent.relative_to(src).parts)
        while package not in on_disk:
            package = package.rsplit(".", 1)[0]
        base = src / package.replace(".", "/")
        assert any(path.match(str(base / g)) for g in data.get(package, [])), f"{path} is in no package-data glob"
    cli_deps = {d.split("==")[0] for d in project["project"]["optional-dependencies"]["cli"]}
    assert {"click", "rich", "boto3"} <= cli_deps
    assert not cli_deps & {d.split("==")[0] for d in project["project"]["dependencies"]}  # not in the layer
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert '["cli"]' in setup and "-e ." in setup
    manifest = ROOT / "build" / "manifest.json"
    if not manifest.is_file():
        pytest.fail("build/manifest.json missing: run .venv/bin/python build.py first")
    functions = json.loads(manifest.read_text())["functions"]
    assert "recorder" in functions
    for name, fn in functions.items():
        names = zipfile.ZipFile(manifest.parent / fn["filename"]).namelist()
        assert not any(n.startswith("cnm_ingest_cli/") for n in names), name
        assert "cnm_ingest/executions.py" in names, name
