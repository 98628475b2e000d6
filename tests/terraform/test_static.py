"""Static checks on the Terraform: checkov, and README tables in step with the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .tfhelpers import ROOT

CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
CONFIG = ROOT / ".checkov.yaml"


# The module's accepted findings: inline skips in the module's own files, so that a DAAC's
# repository that sources the module scans clean without this repository's .checkov.yaml.
INLINE_SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")
MODULE_FILES = [*ROOT.glob("*.tf"), *ROOT.glob("modules/*/*.tf")]
EXAMPLES = ["minimal", "complete"]


def inline_skips(files) -> list[tuple[str, int, str, str]]:
    """(file, line, check id, reason) for every `#checkov:skip=ID:reason` comment."""
    skips = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INLINE_SKIP.search(line)
            if m:
                skips.append(
                    (
                        str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                        number,
                        m.group(1),
                        (m.group(2) or "").strip(),
                    )
                )
    return skips


def checkov(directory: Path, *args: str) -> dict:
    """The Terraform report of a checkov run (fails, never skips, when checkov is absent)."""
    assert CHECKOV.exists(), "checkov is not installed: run scripts/setup.sh"
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=directory,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert terraform, f"checkov scanned no Terraform:\n{proc.stdout[:2000]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == (1 if terraform[0]["summary"]["failed"] else 0), proc.stderr[-2000:]
    return terraform[0]


def failures(report: dict) -> list[str]:
    return [f"{f['check_id']} {f['resource']} ({f['file_path']})" for f in report["results"]["failed_checks"]]


def test_checkov_config_skips_paths_only():
    """No check is skipped repository-wide: a consumer would not have this file."""
    config = yaml.safe_load(CONFIG.read_text())
    assert config["skip-path"], config
    assert not {"skip-check", "soft-fail", "soft-fail-on", "check"} & set(config), config


def test_every_inline_checkov_skip_has_a_reason():
    skips = inline_skips([*MODULE_FILES, *ROOT.glob("examples/*/*.tf")])
    assert len(skips) >= 10, skips  # the module's accepted findings are inline: drop this premise, not the skips
    missing = [f"{file}:{line} {cid}" for file, line, cid, reason in skips if len(reason) < 20]
    assert not missing, f"inline checkov skips without a reason: {missing}"
    assert all(re.fullmatch(r"CKV2?_(AWS|TF)_\d+", cid) for _, _, cid, _ in skips), skips


def test_a_skip_without_a_reason_is_found(tmp_path):
    bare = tmp_path / "main.tf"
    bare.write_text(
        'resource "aws_s3_bucket" "b" {\n  #checkov:skip=CKV_AWS_18\n  # checkov:skip=CKV_AWS_144: short\n}\n'
    )
    assert [(cid, reason) for _, _, cid, reason in inline_skips([bare])] == [
        ("CKV_AWS_18", ""),
        ("CKV_AWS_144", "short"),
    ]


def test_checkov_passes_on_modules_and_examples():
    report = checkov(ROOT, "--config-file", str(CONFIG))
    summary = report["summary"]
    assert summary["resource_count"] > 50
    assert summary["parsing_errors"] == 0
    assert not failures(report), "checkov failures:\n" + "\n".join(failures(report))


@pytest.fixture(scope="module")
def consumer_report(tmp_path_factory):
    """checkov as a DAAC's CI runs it: on a repository of its own whose module block sources this
    one (a local path here; a release archive is downloaded the same way), with external modules
    downloaded, and neither this repository's .checkov.yaml nor any option of ours."""
    repo = tmp_path_factory.mktemp("daac-repo")
    for example in EXAMPLES:
        root = repo / example
        root.mkdir()
        source = os.path.relpath(ROOT, root)
        for tf_file in (ROOT / "examples" / example).glob("*.tf"):
            text = tf_file.read_text().replace('source = "../../"', f'source = "{source}/"')
            text = text.replace('"../../modules/', f'"{source}/modules/')
            (root / tf_file.name).write_text(text)
        assert f'source = "{source}/"' in (root / "main.tf").read_text()
    return checkov(repo, "--framework", "terraform", "--download-external-modules", "true")


def test_checkov_passes_on_a_consumer_repository(consumer_report):
    summary = consumer_report["summary"]
    assert summary["parsing_errors"] == 0
    assert not failures(consumer_report), "checkov failures in a consumer's repository:\n" + "\n".join(
        failures(consumer_report)
    )
    assert summary["failed"] == 0


def test_the_consumer_scan_reads_the_modules_own_resources(consumer_report):
    """The scan went into the module (its resources, with their inline skips), not only the module block."""
    module_files = {path.resolve() for path in MODULE_FILES}
    in_module = [
        s for s in consumer_report["results"]["skipped_checks"] if Path(s["file_abs_path"]).resolve() in module_files
    ]
    assert {s["check_id"] for s in in_module} == {cid for _, _, cid, _ in inline_skips(MODULE_FILES)}
    resources = {s["resource"] for s in in_module}
    assert any(r.startswith("module.cnm_ingest.module.workflow.") for r in resources), resources
    assert consumer_report["summary"]["resource_count"] > 100, consumer_report["summary"]


def test_readme_tables_are_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
