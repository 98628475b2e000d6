"""The README and CONTRIBUTING.md: every code block checked, the README short and plain, links that resolve.

Each fenced block has a language this file knows how to check:
- ``hcl``: parsed here, and the module block's inputs are the root module's (required ones present);
  ``tests/terraform/test_readme_hcl.py`` runs ``terraform validate`` on it;
- ``bash``: each command names a script or tool that exists, and ``cnm-ingest`` lines use only
  commands and options the CLI has;
- ``text``: the architecture diagram, whose functions must be handlers that exist.
"""

from __future__ import annotations

import re
import shlex

import click
import hcl2
import pytest

from tests.docs_check import LINK, ROOT, Block, anchors, code_blocks, local_links, stats

README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
CHECKED = [README, CONTRIBUTING]
# Pages written for issue 19 from the README's contributor material; their links must resolve too.
MOVED_PAGES = [
    ROOT / "docs" / name
    for name in (
        "testing.md",
        "local-aws.md",
        "performance.md",
        "guarantees.md",
        "operating.md",
        "configuration.md",
        "compatibility.md",
        "inputs.md",
    )
]
MAX_WORDS = 3500
MAX_WORDS_PER_SENTENCE = 20


def blocks(lang: str | None = None) -> list[tuple[str, Block]]:
    return [(path.name, b) for path in CHECKED for b in code_blocks(path) if lang is None or b.lang == lang]


def ids(items: list[tuple[str, Block]]) -> list[str]:
    return [f"{name}:{b.line}" for name, b in items]


# --- size and plainness ----------------------------------------------------------------------------


def test_readme_is_short_and_plain():
    s = stats(README.read_text())
    assert s.words < MAX_WORDS, f"README.md has {s.words} words; keep it under {MAX_WORDS} (move detail to docs/)"
    assert s.words_per_sentence <= MAX_WORDS_PER_SENTENCE, (
        f"README.md averages {s.words_per_sentence:.1f} words per sentence; aim at {MAX_WORDS_PER_SENTENCE} or fewer"
    )


def test_readme_starts_with_the_module_block():
    """The first screen: what it is, the diagram, then the module block (no test tiers before it)."""
    text = README.read_text()
    first_module = text.index('module "cnm_ingest"')
    assert text[:first_module].count("\n") < 40, "the module block must be on the README's first screen"
    for contributor_word in ("pytest", "moto", "localaws", "bench"):
        assert contributor_word not in text[:first_module], f"{contributor_word!r} before the module block"


def test_prose_stats_count_sentences_and_leave_code_out():
    s = stats(
        "# Title\n\nOne two three. Four five, e.g. six.\n\n- item one\n- item two\n\n```bash\nnot prose here\n```\n"
    )
    assert (s.sentences, s.prose_words, s.words) == (4, 11, 20)


# --- code blocks ------------------------------------------------------------------------------------


def test_every_code_block_has_a_checked_language():
    found = blocks()
    assert found, "no code blocks found"
    unknown = [f"{name}:{b.line} ({b.lang or 'no language'})" for name, b in found if b.lang not in CHECKERS]
    assert not unknown, f"code blocks without a checker: {unknown}"


def module_call(block: Block) -> dict:
    parsed = hcl2.loads(block.text)
    calls = [body for m in parsed.get("module", []) for name, body in m.items() if name.strip('"') == "cnm_ingest"]
    assert len(calls) == 1, f'{block}: expected one module "cnm_ingest" block'
    return {k: v for k, v in calls[0].items() if not k.startswith("__")}


def root_variables() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for tf in ROOT.glob("*.tf"):
        for block in hcl2.loads(tf.read_text()).get("variable", []):
            for name, body in block.items():
                out[name.strip('"')] = body
    return out


@pytest.mark.parametrize(("name", "block"), blocks("hcl"), ids=ids(blocks("hcl")))
def test_hcl_block_passes_the_root_modules_inputs(name, block):
    call = module_call(block)
    variables = root_variables()
    unknown = sorted(set(call) - {"source"} - set(variables))
    assert not unknown, f"{name} {block}: not inputs of the root module: {unknown}"
    required = {k for k, v in variables.items() if "default" not in v}
    assert required <= set(call), f"{name} {block}: required inputs missing: {sorted(required - set(call))}"
    lines = block.text.splitlines()
    for var in required:
        line = next(line for line in lines if re.match(rf"\s*{var}\s*=", line))
        assert "REQUIRED" in line, f"{name} {block}: mark the required input {var} with a REQUIRED comment"


def test_readme_has_the_module_block():
    assert [b for b in code_blocks(README) if b.lang == "hcl" and 'module "cnm_ingest"' in b.text]


def cli_group() -> click.Group:
    from cnm_ingest_cli.main import cli

    return cli


def check_cli(argv: list[str]) -> None:
    """Each command and option of ``argv`` exists in the CLI, in the place it is given (no code runs)."""
    command: click.Command = cli_group()
    path = ["cnm-ingest"]
    tokens = iter(argv)
    for token in tokens:
        if token.startswith("-"):
            option = token.split("=", 1)[0]
            params = {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}
            assert option in params, f"{' '.join(path)} has no option {option} (options: {sorted(params)})"
            param = params[option]
            takes_value = isinstance(param, click.Option) and not param.is_flag and not param.count
            if takes_value and "=" not in token:
                next(tokens)
        elif isinstance(command, click.Group):
            assert token in command.commands, f"{' '.join(path)} has no command {token!r}"
            command = command.commands[token]
            path.append(token)
    assert not isinstance(command, click.Group), f"{' '.join(path)} is a group: name one of its commands"


def check_shell_line(line: str) -> None:
    words = shlex.split(line, comments=True)
    if not words:
        return
    program, args = words[0], words[1:]
    if program == "cnm-ingest":
        check_cli(args)
    elif program == "bash":
        assert args and (ROOT / args[0]).is_file(), f"{line!r}: no script {args[0] if args else ''}"
    else:
        raise AssertionError(f"{line!r}: no check for {program!r} (add one to tests/unit/tooling/test_docs.py)")


@pytest.mark.parametrize(("name", "block"), blocks("bash"), ids=ids(blocks("bash")))
def test_shell_block_commands_and_flags_exist(name, block):
    for line in block.text.splitlines():
        check_shell_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "cnm-ingest status --no-such-flag",
        "cnm-ingest no-such-command",
        "cnm-ingest dlq",
        "cnm-ingest --prefix x dlq redrive --al",
        "bash scripts/no-such-script.sh",
        "make everything",
    ],
)
def test_shell_checker_refuses_what_does_not_exist(line):
    with pytest.raises(AssertionError):
        check_shell_line(line)


def test_shell_checker_accepts_options_with_values_and_flags():
    check_shell_line("cnm-ingest --prefix p --region us-west-2 status --granules --status FAILED --since 2h")
    check_shell_line("cnm-ingest --json dlq redrive --all --dry-run  # a comment")


HANDLER_NAME = re.compile(r"\b([a-z]+(?:_[a-z]+)+) λ")


@pytest.mark.parametrize(("name", "block"), blocks("text"), ids=ids(blocks("text")))
def test_diagram_names_handlers_that_exist(name, block):
    named = set(HANDLER_NAME.findall(block.text))
    assert named, f"{name} {block}: no function named in the diagram"
    handlers = {p.stem for p in (ROOT / "lambda_src" / "handlers").glob("*.py")}
    assert named <= handlers, f"{name} {block}: not handlers: {sorted(named - handlers)}"


@pytest.mark.parametrize(("name", "block"), blocks("tree"), ids=ids(blocks("tree")))
def test_layout_trees_name_files_that_exist(name, block):
    """A ```tree block: its first line is a folder; each next line is a subfolder (``./`` for that folder)
    and the files or folders in it, each of which must exist."""
    root, *lines = block.text.strip().splitlines()
    base = ROOT / root.strip()
    assert base.is_dir(), f"{name} {block}: {root.strip()} is not a folder"
    missing = []
    for line in lines:
        folder, *entries = line.split()
        assert entries, f"{name} {block}: {line!r} names no file"
        missing += [f"{folder}{e}" for e in entries if not (base / folder / e).exists()]
    assert not missing, f"{name} {block}: no such file or folder: {missing}"


CHECKERS = {"hcl", "bash", "text", "tree"}


# --- what the README says about the CLI matches the CLI -------------------------------------------------


def table_rows(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        rows.append(" ".join(line.split()))
    return rows


def test_exit_code_table_is_the_clis():
    from cnm_ingest_cli import errors

    header = "| code | meaning |"
    readme = table_rows(README.read_text(), header)
    cli_doc = table_rows("\n".join(line.strip() for line in (errors.__doc__ or "").splitlines()), header)
    assert readme == cli_doc, "README's exit codes differ from cnm_ingest_cli/errors.py's table"


def test_command_table_lists_every_cli_command():
    rows = table_rows(README.read_text(), "| command | what it does |")
    listed = {re.match(r"\|\s*`([a-z-]+)", row).group(1) for row in rows}  # type: ignore[union-attr]
    assert listed == set(cli_group().commands), "README's command table and the CLI's commands differ"


# --- links ----------------------------------------------------------------------------------------------


def in_page_links(page) -> list[str]:
    return [t for t in LINK.findall(page.read_text()) if t.startswith("#")]


@pytest.mark.parametrize("page", CHECKED + MOVED_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = [t for t in local_links(page) if not (page.parent / t.split("#")[0]).exists()]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"
    for target in local_links(page) + [f"{page.name}{t}" for t in in_page_links(page)]:
        file, _, anchor = target.partition("#")
        if anchor and file.endswith(".md"):
            assert anchor in anchors(page.parent / file), f"{page.relative_to(ROOT)}: no anchor #{anchor} in {file}"


# --- the inputs the README names are the module's -------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "column"),
    [("| what | input | notes |", 1), ("| input | default | what it does |", 0)],
    ids=["what your DAAC brings", "settings you may want"],
)
def test_input_tables_name_root_inputs_with_their_defaults(header, column):
    variables = root_variables()
    rows = table_rows(README.read_text(), header)
    assert rows, f"no table {header!r} in README.md"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = [n.split("[")[0] for n in re.findall(r"`([a-z_]+(?:\[\]\.[a-z_]+)?)`", cells[column])]
        assert names, f"no input named in {row!r}"
        unknown = [n for n in names if n not in variables]
        assert not unknown, f"{row!r}: not inputs of the root module: {unknown}"
        if column == 0:
            default = hcl2.loads(f"x = {cells[1].strip('`')}")["x"]
            assert default == variables[names[0]].get("default"), f"{names[0]}: README says {cells[1]}"


def test_readme_gives_the_demo_and_the_ci_test_command():
    commands = [
        line.split("#")[0].strip() for b in code_blocks(README) if b.lang == "bash" for line in b.text.splitlines()
    ]
    assert "bash scripts/demo.sh" in commands and "bash scripts/test.sh" in commands
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(), "CI must run the README's test command"
