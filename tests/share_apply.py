"""The shared apply on its own: ``pytest tests/share_apply.py`` with ``CNM_SHARED_APPLY`` set to a directory.

scripts/test.sh runs it beside stage 1 on a warm machine (the AWS provider already built and cached): it applies
both examples to its own local AWS and shares that apply in the directory (tests/worlds.py: the snapshot, each
example as staged, its Terraform state), while stage 1 lints and runs the unit tier. The stage-2 processes then
load the apply instead of waiting for one. Its name does not start with ``test_``, so only a run that names this
file collects it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.worlds import EXAMPLES, SHARED


def test_the_examples_are_applied_and_shared(applied_examples):
    share = Path(os.environ[SHARED])
    assert sorted(applied_examples) == sorted(EXAMPLES)
    assert json.loads((share / "applied.json").read_text())["examples"] == sorted(EXAMPLES)
    for example in EXAMPLES:
        assert (share / f"{example}.tfstate").stat().st_size > 0
