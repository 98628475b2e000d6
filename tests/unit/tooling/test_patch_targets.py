"""No test may patch a name the code under test lacks (tools/check_patches.py): ``raising=False`` on a
``monkeypatch.setattr/delattr`` whose target is a project module or object fails CI."""

from __future__ import annotations

import textwrap

import pytest

from tools import check_patches


def _found(source: str) -> list[tuple[int, str]]:
    return [(f.line, f.target) for f in check_patches.scan_source(textwrap.dedent(source))]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (  # the issue-23 case: a function the module lacks, patched in
            """
            from cnm_ingest import message
            def test(monkeypatch):
                monkeypatch.setattr(message, "read_cnm", lambda m: None, raising=False)
            """,
            [(4, "cnm_ingest.message.read_cnm")],
        ),
        (  # dotted string, aliased module, attribute chain, delattr, a non-literal raising, the cli package
            """
            import cnm_ingest.executions as rec
            import localaws
            from cnm_ingest_cli import ops
            FLAG = False
            def test(mp):
                mp.setattr("cnm_ingest.executions.workflow_cnm", None, raising=False)
                mp.setattr(rec, "nope", 1, raising=False)
                mp.setattr(localaws.server.LocalAWS, "x", 1, raising=FLAG)
                mp.delattr(ops.Stack, "dlq_url", raising=False)
                mp.setattr(target=ops, name="y", value=1, raising=False)
            """,
            [
                (7, "cnm_ingest.executions.workflow_cnm"),
                (8, "cnm_ingest.executions.nope"),
                (9, "localaws.server.LocalAWS.x"),
                (10, "cnm_ingest_cli.ops.Stack.dlq_url"),
                (11, "cnm_ingest_cli.ops"),
            ],
        ),
        (  # allowed: raising left at its default or True, environment variables, third-party objects, locals
            """
            import os
            import boto3
            from cnm_ingest import executions
            def test(monkeypatch, thing):
                monkeypatch.setattr(executions, "iso", str)
                monkeypatch.setattr(executions, "iso", str, raising=True)
                monkeypatch.delenv("ROLE", raising=False)
                monkeypatch.setenv("ROLE", "x")
                monkeypatch.setattr(boto3, "client", None, raising=False)
                monkeypatch.setattr(os.path, "sep", "/", raising=False)
                monkeypatch.setattr("boto3.client", None, raising=False)
                monkeypatch.setattr(thing, "x", 1, raising=False)
                monkeypatch.delitem(os.environ, "X", raising=False)
            """,
            [],
        ),
    ],
    ids=["missing-function", "every-spelling", "allowed"],
)
def test_the_check_finds_lenient_patches_of_project_names(source, expected):
    assert _found(source) == expected


def test_no_test_patches_a_project_name_with_raising_false():
    """Fails until tests/functional/records/test_records.py stops patching ``message.read_cnm`` in
    (issue 23: h21status rewrites that test with the recorder's offloaded-CNM reader)."""
    found = check_patches.scan([check_patches.ROOT / "tests"])
    assert not found, "patches that can add a missing project name:\n" + "\n".join(map(str, found))


def test_the_command_line_exit_code(tmp_path, capsys):
    (tmp_path / "test_x.py").write_text(
        "from tools import demo\ndef t(m):\n    m.setattr(demo, 'q', 1, raising=False)\n"
    )
    assert check_patches.main([str(tmp_path)]) == 1
    assert "test_x.py:3: raising=False on project target tools.demo.q" in capsys.readouterr().out
    (tmp_path / "test_x.py").write_text("def t(m):\n    m.setattr('os.sep', 1, raising=False)\n")
    assert check_patches.main([str(tmp_path)]) == 0
