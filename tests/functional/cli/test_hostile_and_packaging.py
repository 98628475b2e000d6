"""Hostile input to the CLI, credentials it cannot use, and how the CLI is packaged (never in a Lambda zip)."""

from __future__ import annotations

import json
import tomllib
import zipfile

import pytest

from tests.conftest import ROOT
from tools.recorder_feed import feed

from .conftest import Cli, notification


@pytest.mark.parametrize("identifier", ["a#b?c/../d", "g\u202e\U0001f600 é", "x" * 300])
def test_odd_identifiers_are_sent_recorded_and_found(local, cli, tmp_path, identifier):
    data = b"odd" * 10
    local.put_object(f"s3://provider-bucket/{identifier}.nc", data)
    (tmp_path / "odd.json").write_text(json.dumps(notification(identifier, data)), encoding="utf-8")
    (sent,) = cli.json("send", str(tmp_path / "odd.json"))
    assert sent["identifier"] == identifier
    local.deliver_new()
    executions = local.wait_for_executions()
    assert len(executions) == 1
    assert feed(local.sfn, [e["executionArn"] for e in executions]) == {"batchItemFailures": []}
    found = cli.json("status", executions[0]["executionArn"])
    assert found["execution"]["cnm_identifier"] == identifier
    granule_id = found["execution"]["granule_ids"][0]
    assert cli.json("status", granule_id)["granule"][0]["granule_id"] == granule_id
    assert "no granule or execution" in cli("status", granule_id + "-other", code=5).output


def test_an_unknown_profile_is_exit_4(local):
    result = Cli("--prefix", "local", "--profile", "no-such-profile-anywhere")("rules", "list", code=4)
    assert "no-such-profile-anywhere" in result.output


def test_a_granule_in_two_collections_needs_collection(local, cli):
    from cnm_ingest import records
    from tests.functional.records.conftest import event, workflow_input

    for i, coll in enumerate(("A", "B")):
        records.record_event(
            local.EXECUTIONS_TABLE,
            event(f"e{i}", "FAILED", error="E", input=workflow_input(identifier="same", collection=coll)),
        )
    assert "several collections" in cli("reingest", "same", code=6).output
    assert len(cli.json("status", "same")["granule"]) == 2
    assert [g["collection"] for g in cli.json("status", "same", "--collection", "B__1")["granule"]] == ["B__1"]


def test_the_cli_is_installed_by_the_project_and_in_no_lambda_zip():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["cnm-ingest"] == "cnm_ingest_cli.main:main"
    assert set(project["tool"]["setuptools"]["packages"]) == {"cnm_ingest", "cnm_ingest_cli"}
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
        assert "cnm_ingest/records.py" in names, name
