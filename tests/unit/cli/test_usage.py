"""Usage the CLI checks before any AWS call: help text, --prefix against the module's rule, times, files to send.

A usage error exits 2 and an error has one exit code in text and --json mode (the paths that reach AWS:
tests/functional/cli/test_exit_codes.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from cnm_ingest_cli import errors, ops
from cnm_ingest_cli.main import cli
from cnm_ingest_cli.stack import PREFIX_RULE

from tests.cli_runner import Cli

ROOT = Path(__file__).resolve().parents[3]
GOOD = {
    "version": "1.6.1",
    "identifier": "id-1",
    "collection": {"name": "C", "version": "1"},
    "provider": "P",
    "submissionTime": "2026-01-01T00:00:00Z",
    "product": {
        "name": "g",
        "files": [{"type": "data", "name": "g.nc", "uri": "s3://b/g.nc", "size": 1}],
    },
}


def commands(group: click.Group = cli, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_every_command_and_option_has_help_text():
    walked = dict(commands())
    assert {"status", "send", "responses", "dlq", "reingest", "redrive-execution", "replay", "rules"} <= {
        p[0] for p in walked
    }
    assert {("rules", "list"), ("rules", "enable"), ("dlq", "redrive")} <= set(walked)
    missing = [" ".join(path) for path, command in walked.items() if not (command.help or "").strip()]
    assert missing == []
    undocumented = [
        f"{' '.join(path)} {param.opts[0]}"
        for path, command in [((), cli), *walked.items()]
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert undocumented == []
    for path in walked:  # and --help prints it
        out = Cli()(*path, "--help").output
        assert walked[path].help.split("\n")[0][:40] in " ".join(out.split())


def test_the_prefix_rule_is_the_module_s():
    """The Python regex is the one the root module's `prefix` validation uses (variables.tf)."""
    tf = (ROOT / "variables.tf").read_text()
    block = re.search(r'variable "prefix" \{(.*?)\n\}', tf, re.S)
    assert block, "variables.tf has no prefix variable"
    found = re.search(r'can\(regex\("((?:[^"\\]|\\.)*)", var\.prefix\)\)', block.group(1))
    assert found, "the prefix validation is not a regex on var.prefix"
    assert PREFIX_RULE.pattern == found.group(1).replace("\\\\", "\\")


@pytest.mark.parametrize(
    "prefix",
    [
        "P",
        "Podaac-sit",
        "podaac..sit",
        "../podaac",
        "podaac sit",
        " podaac",
        "podaac-",
        "-podaac",
        "9podaac",
        "ab",
        "a" * 33,
        "pödaac",
        "podaac\u202esit",
        "podaac\u0000",
        "ｐｏｄａａｃ",  # fullwidth letters
        "podaac/sit",
        "",
    ],
)
def test_a_malformed_prefix_is_a_usage_error_naming_the_rule(prefix):
    for as_json in ((), ("--json",)):
        out = Cli("--prefix", prefix)("rules", "list", *as_json, code=2).output
        assert "'--prefix'" in out and "3-32 lowercase letters" in out
    if "\0" not in prefix:  # no environment variable holds a NUL
        assert "3-32 lowercase" in Cli(env={"CNM_INGEST_PREFIX": prefix or " "})("status", code=2).output


@pytest.mark.parametrize("prefix", ["abc", "a" * 32, "podaac-sit", "lp-daac-2"])
def test_prefixes_the_module_accepts_pass(prefix):
    assert PREFIX_RULE.fullmatch(prefix)


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--since", "banana"),
        ("status", "--since", "last tuesday"),
        ("status", "--until", "2026-13-01"),
        ("status", "--since", ""),
        ("status", "--since", "99999999999999d"),
        ("status", "--since", "٣h"),  # an Arabic-Indic digit: not a time here
        ("status", "--since", "2099-01-01T00:00:00Z"),  # in the future
        ("status", "--since", "1h", "--until", "2h"),  # after --until
        ("responses", "--since", "banana"),
        ("responses", "--since", "2999-01-01"),
        ("replay", "--from", "banana"),
        ("replay", "--from", "1h", "--to", "2h"),
        ("replay", "--from", "3000-01-01T00:00:00+14:00"),
        ("replay",),  # --from is required
    ],
)
def test_a_bad_time_is_a_usage_error_in_both_modes(args):
    for as_json in ((), ("--json",)):
        result = Cli("--prefix", "daac-ops")(*args, *as_json, code=2)
        assert "Usage:" in result.output


def test_parse_time():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert ops.parse_time("2h", now) == now - timedelta(hours=2)
    assert ops.parse_time("2026-01-01T00:00:00", now) == datetime(2026, 1, 1, tzinfo=UTC)
    assert ops.parse_time(" now ", now) == now
    for text in ("banana", "2h ago", "1e3h", "-2h", "9999999999h"):
        with pytest.raises(ValueError, match="not a time"):
            ops.parse_time(text, now)


def test_sending_hostile_files_refuses_each_with_its_reason_and_needs_no_stack(tmp_path, monkeypatch):
    """No AWS is reached (the prefix names no stack): every file is refused, with the same exit code in both modes."""
    inbox = tmp_path / "inbox ünï\u202ecode"
    inbox.mkdir()
    (inbox / "empty.json").write_bytes(b"")
    (inbox / "blank.json").write_bytes(b" \n\t")
    (inbox / "bad bytes.json").write_bytes(b"\xff\xfe\x00{")
    (inbox / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (inbox / "not-cnm.json").write_text(json.dumps({**GOOD, "product": {"name": "g"}}))
    with (inbox / "huge.json").open("wb") as f:  # sparse: 64 MiB on paper, nothing read
        f.truncate(64 * 1024 * 1024)
    (inbox / "dir.json").mkdir()  # a directory named like a CNM file: not a file, skipped
    (inbox / "unreadable.json").write_text(json.dumps(GOOD))
    real_open = Path.open

    def denied(self, *args, **kwargs):  # the tests run as root, for whom chmod 000 changes nothing
        if self.name == "unreadable.json":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    reasons = {}
    for as_json in (True, False):
        result = Cli("--prefix", "nobody-here")("send", str(inbox), *(["--json"] if as_json else []), code=6)
        if as_json:
            reasons = {Path(r["file"]).name: r["refused"] for r in json.loads(result.stdout)}
            assert json.loads(result.stderr)["exit_code"] == 6
        else:
            assert "7 of 7 file(s) refused" in result.output
    assert set(reasons) == {  # dir.json is not a file: not sent, not refused
        "empty.json",
        "blank.json",
        "bad bytes.json",
        "deep.json",
        "not-cnm.json",
        "huge.json",
        "unreadable.json",
    }
    assert reasons["empty.json"] == reasons["blank.json"] == "empty file"
    assert "not UTF-8" in reasons["bad bytes.json"]
    assert "larger than a Kinesis record" in reasons["huge.json"]
    assert "Permission denied" in reasons["unreadable.json"]
    assert "schema" in reasons["not-cnm.json"]
    assert reasons["deep.json"]


def test_a_named_path_that_is_not_a_file_is_refused(tmp_path):
    fifo = tmp_path / "pipe.json"
    import os

    os.mkfifo(fifo)
    result = Cli("--prefix", "nobody-here")("send", str(fifo), "--json", code=6)
    assert "not a regular file" in json.loads(result.stdout)[0]["refused"]


def test_one_exit_code_table():
    """Every CliError class and Click's usage errors have their code in the one table; the README lists it."""
    classes = {errors.StackNotFound: 3, errors.AwsRefused: 4, errors.NotFound: 5, errors.RefusedInput: 6}
    classes |= {errors.PartialFailure: 7, errors.Unaccounted: 8, errors.CliError: 1}
    classes |= {click.UsageError: 2, click.BadParameter: 2}
    for cls, code in classes.items():
        assert errors.exit_code(cls("m")) == code
        assert cls("m").exit_code == code
    assert errors.exit_code(RuntimeError("x")) == 1
    assert set(errors.EXIT_CODES.values()) == set(range(1, 9))
    doc = dict(re.findall(r"^\| (\d) \| (.+) \|$", errors.__doc__ or "", re.M))
    assert sorted(int(k) for k in doc) == sorted(errors.MEANINGS) == list(range(9))
    epilog = " ".join(Cli()("--help").output.split())
    assert all(f"{code} {meaning}" in epilog for code, meaning in errors.MEANINGS.items())
