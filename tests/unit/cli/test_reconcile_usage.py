"""``cnm-ingest reconcile``: a malformed window or option is a usage error (exit 2) before any AWS call,
in text and --json mode alike."""

from __future__ import annotations

import json

import pytest

from tests.cli_runner import Cli

MALFORMED = [
    ("--from", "yesterday-ish"),  # not a time
    ("--from", "2999-01-01T00:00:00Z"),  # in the future: an empty window
    ("--from", "2h", "--to", "3h"),  # ends before it starts
    ("--from", "2h", "--to", "\udcff"),  # not text a time can be
    ("--from", "2h", "--stuck-after", "soon"),  # not a duration
    ("--from", "2h", "--apply"),  # --apply without --fix
    ("--to", "now"),  # no --from
]


@pytest.mark.parametrize("args", MALFORMED, ids=[" ".join(a).encode("ascii", "replace").decode() for a in MALFORMED])
@pytest.mark.parametrize("as_json", [False, True])
def test_malformed_window_exits_2_without_aws(args, as_json):
    # a prefix of no stack and no endpoint: reaching AWS would be a network error, not exit 2
    cli = Cli("--prefix", "nobody-here", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-west-2"})
    result = cli("reconcile", *args, *(["--json"] if as_json else []), code=2)
    assert "Usage" in result.output or "Error" in result.output


def test_help_names_every_fate_and_the_exit_code():
    out = " ".join(Cli()("reconcile", "--help").output.split())
    for word in ("answered", "parked", "running", "stuck", "unanswered", "lost", "--fix", "--apply", "--stuck-after"):
        assert word in out
    epilog = " ".join(Cli()("--help").output.split())
    assert "8 unaccounted (reconcile)" in epilog and "reconcile" in json.dumps(epilog)
