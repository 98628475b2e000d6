"""Every HCL block of the README validates with Terraform, as a DAAC would paste it into its own root module.

Each block becomes the main.tf of a scratch root with the module's ``source`` (the release address)
replaced by this repository's path; ``terraform fmt -check``, ``init`` (offline mirror) and
``validate`` must pass with no error.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.docs_check import code_blocks

from .tfhelpers import ROOT, check, tf

pytestmark = [pytest.mark.terraform, pytest.mark.provider]

HCL = [b for b in code_blocks(ROOT / "README.md") if b.lang == "hcl"]
SOURCE = re.compile(r'^(\s*source\s*=\s*)"[^"]*"', re.MULTILINE)


def scratch_root(text: str) -> str:
    replaced, count = SOURCE.subn(lambda m: f'{m.group(1)}"{ROOT}/"', text, count=1)
    assert count == 1, "the block has no module source to replace"
    return replaced


def test_the_readme_has_hcl_blocks():
    assert HCL


@pytest.mark.parametrize("block", HCL, ids=[f"README.md:{b.line}" for b in HCL])
def test_readme_hcl_validates(block, mirror, tmp_path):
    work = tmp_path / "daac"
    work.mkdir()
    (work / "main.tf").write_text(block.text)
    proc = tf(work, "fmt", "-check", "-diff", "-no-color")
    assert proc.returncode == 0, f"{block} is not `terraform fmt` clean:\n{proc.stdout}{proc.stderr}"
    (work / "main.tf").write_text(scratch_root(block.text))
    check(tf(work, "init", "-backend=false", "-input=false", "-no-color"))
    result = json.loads(tf(work, "validate", "-json", "-no-color").stdout)
    errors = [d for d in result["diagnostics"] if d["severity"] == "error"]
    assert result["valid"] is True and not errors, json.dumps(errors, indent=2)


def test_a_wrong_input_fails_validation(mirror, tmp_path):
    """The check can fail: the README's block with an input the module does not have."""
    block = next(b for b in HCL if 'module "cnm_ingest"' in b.text)
    work = tmp_path / "daac"
    work.mkdir()
    (work / "main.tf").write_text(scratch_root(block.text))
    check(tf(work, "init", "-backend=false", "-input=false", "-no-color"))
    (work / "main.tf").write_text(scratch_root(block.text).replace("staging_bucket_name", "staging_bucket", 1))
    result = json.loads(tf(work, "validate", "-json", "-no-color").stdout)
    assert result["valid"] is False
