#!/usr/bin/env python3
"""Generate the Inputs / Outputs tables of every module README (terraform-docs style).

    python tools/gen_docs.py           # rewrite the tables in place
    python tools/gen_docs.py --check   # exit 1 and name the stale READMEs

terraform-docs is not obtainable from the registries this project can reach,
so this small generator reads ``variables.tf`` / ``outputs.tf`` with
python-hcl2 and writes the tables between the markers
``<!-- BEGIN_TF_DOCS -->`` and ``<!-- END_TF_DOCS -->`` of ``README.md`` in
every ``modules/*`` and every ``examples/*``, and of ``docs/inputs.md`` for the
root module (its README is for the people who adopt the module, and stays short).
:func:`error_codes_table` is the error code table of ``docs/INTERFACES.md``, from
``cnm_ingest.errors`` (the product carries no docs generator).
It also writes the workflow message section of ``docs/INTERFACES.md`` from the
step schemas (``tools/gen_contract.py`` renders it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import gen_contract  # noqa: E402

BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"


def module_dirs(root: Path = ROOT) -> list[Path]:
    dirs = [root]
    for group in ("modules", "examples"):
        dirs += sorted(p for p in (root / group).glob("*") if p.is_dir() and list(p.glob("*.tf")))
    return dirs


def doc_path(directory: Path) -> Path:
    """Where a module's tables go: docs/inputs.md for the root module, else its README.md."""
    return directory / "docs" / "inputs.md" if directory == ROOT else directory / "README.md"


def _unquote(value):
    """python-hcl2 keeps HCL string quotes (and wraps expressions in ${...}); undo that."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return json.loads(value) if "\\" in value else value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def _blocks(directory: Path, kind: str) -> list[tuple[str, dict]]:
    out = []
    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as fh:
            parsed = hcl2.load(fh)
        for block in parsed.get(kind, []):
            for name, body in block.items():
                out.append((_unquote(name), body))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if "\n" not in text else "<pre>" + _cell(text) + "</pre>"


def _default(body: dict) -> str:
    if "default" not in body:
        return "n/a"
    value = _unquote(body["default"])
    if value is None:
        return "`null`"
    if isinstance(value, str):
        return _code(json.dumps(value))
    return _code(json.dumps(value, sort_keys=True))


def render(directory: Path) -> str:
    lines = ["## Inputs", ""]
    variables = sorted(_blocks(directory, "variable"), key=lambda v: ("default" in v[1], v[0]))
    if variables:
        lines += [
            "| Name | Description | Type | Default | Required |",
            "|------|-------------|------|---------|:--------:|",
        ]
        for name, body in variables:
            lines.append(
                f'| <a name="input_{name}"></a> [{name}](#input_{name}) '
                f"| {_cell(_unquote(body.get('description', '')))} "
                f"| {_code(str(_unquote(body.get('type', 'any'))))} | {_default(body)} "
                f"| {'no' if 'default' in body else 'yes'} |"
            )
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    outputs = sorted(_blocks(directory, "output"))
    if outputs:
        lines += ["| Name | Description |", "|------|-------------|"]
        for name, body in outputs:
            lines.append(
                f'| <a name="output_{name}"></a> [{name}](#output_{name}) '
                f"| {_cell(_unquote(body.get('description', '')))} |"
            )
    else:
        lines.append("No outputs.")
    return "\n".join(lines)


def updated_readme(directory: Path) -> tuple[str, str]:
    readme = doc_path(directory)
    current = readme.read_text() if readme.exists() else f"# {directory.name}\n"
    block = f"{BEGIN}\n{render(directory)}\n{END}"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + block + tail
    else:
        new = current.rstrip("\n") + "\n\n" + block + "\n"
    return current, new


def error_codes_table() -> str:
    """The error code table of docs/INTERFACES.md (between its ``error-codes`` markers), generated from
    cnm_ingest.errors' mapping (tests/unit/compat/test_errors.py keeps them equal)."""
    sys.path.insert(0, str(ROOT / "lambda_src"))
    from cnm_ingest.errors import DEFAULT_ERROR_CODE, ERROR_CLASSES

    rows = ["| error name | CNM errorCode | Cumulus equivalent | meaning |", "|---|---|---|---|"]
    for c in sorted(ERROR_CLASSES, key=lambda c: (c.error_code, c.__name__)):
        doc = (c.__doc__ or "").strip().splitlines()[0].replace("|", "\\|")
        rows.append(f"| `{c.__name__}` | {c.error_code} | {f'`{c.cumulus_name}`' if c.cumulus_name else ''} | {doc} |")
    cumulus = sorted(c.cumulus_name for c in ERROR_CLASSES if c.cumulus_name)
    rows.append(f"| {', '.join(f'`{n}`' for n in cumulus)} (Cumulus names) | as their equivalent above | | |")
    rows.append(f"| any other name (`States.Timeout`, `Lambda.Unknown`, ...) | {DEFAULT_ERROR_CODE} | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if any README is stale; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for directory in module_dirs():
        current, new = updated_readme(directory)
        if current != new:
            stale.append(directory.relative_to(ROOT).as_posix() or ".")
            if not args.check:
                doc_path(directory).write_text(new)
    interfaces = gen_contract.INTERFACES
    current = interfaces.read_text(encoding="utf-8")
    new = gen_contract.updated_interfaces(current)
    if current != new:
        stale.append(interfaces.relative_to(ROOT).as_posix())
        if not args.check:
            interfaces.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("stale Inputs/Outputs tables (run: python tools/gen_docs.py):", *stale, sep="\n  ")
        return 1
    print(("updated: " + ", ".join(stale)) if stale and not args.check else "README tables up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
