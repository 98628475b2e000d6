"""No test may patch a name the code under test lacks: find ``monkeypatch.setattr/delattr(..., raising=False)``
whose target is a project module or object.

``raising=False`` lets ``setattr`` add an attribute that does not exist. Against a project module or class
it makes a test pass against code that cannot work (issue 23: a test patched ``message.read_cnm`` in, a
function that did not exist, and the recorder it tested could not read offloaded CNMs). Against anything
else (``os.environ`` through ``delenv``, a third-party object) it is left alone.

The target is a project one when it is a name (or an attribute of one) imported from a project package
in the same file, or a dotted string naming one (``"cnm_ingest.executions.x"``). The project packages are
:data:`PROJECT`. Run as ``python tools/check_patches.py [DIR ...]`` (default ``tests``): one line a finding,
exit 1 when there is any; ``tests/unit/tooling/test_patch_targets.py`` runs it in CI.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project's importable packages: lambda_src/cnm_ingest, cli/cnm_ingest_cli, and the repository's own
# localaws, build (build.py), tools and bench.
PROJECT = frozenset({"cnm_ingest", "cnm_ingest_cli", "localaws", "build", "tools", "bench"})
PATCHERS = frozenset({"setattr", "delattr"})


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: raising=False on project target {self.target}"


def _is_project(dotted: str) -> bool:
    return dotted.split(".", 1)[0] in PROJECT


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it was imported as, for every import in the file (any scope)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    root = alias.name.split(".", 1)[0]
                    names[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a Name or an Attribute chain on one, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _target(call: ast.Call, imports: dict[str, str]) -> str | None:
    """The project object a setattr/delattr call patches, spelled out, or None when it is not a project one."""
    if not call.args:
        first = next((k.value for k in call.keywords if k.arg == "target"), None)
    else:
        first = call.args[0]
    if first is None:
        return None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value if _is_project(first.value) else None  # setattr("pkg.mod.name", value)
    dotted = _dotted(first)
    if dotted is None:
        return None
    root, _, rest = dotted.partition(".")
    resolved = imports.get(root)
    if resolved is None or not _is_project(resolved):
        return None
    name = f"{resolved}.{rest}" if rest else resolved
    if len(call.args) > 1 and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str):
        name += f".{call.args[1].value}"
    return name


def _lenient(call: ast.Call) -> bool:
    """``raising=`` given, and not the literal True."""
    for k in call.keywords:
        if k.arg == "raising":
            return not (isinstance(k.value, ast.Constant) and k.value.value is True)
    return False


def scan_source(source: str, path: str = "<string>") -> list[Finding]:
    tree = ast.parse(source, filename=path)
    imports = _imports(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in PATCHERS
            and _lenient(node)
        ):
            target = _target(node, imports)
            if target is not None:
                found.append(Finding(path, node.lineno, target))
    return sorted(found, key=lambda f: f.line)


def python_files(dirs: Iterable[Path]) -> Iterator[Path]:
    for d in dirs:
        yield from sorted(p for p in d.rglob("*.py") if ".venv" not in p.parts)


def scan(dirs: Iterable[Path]) -> list[Finding]:
    found = []
    for path in python_files(dirs):
        shown = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        found.extend(scan_source(path.read_text(encoding="utf-8"), shown))
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    found = scan([Path(a).resolve() for a in args] or [ROOT / "tests"])
    for f in found:
        print(f)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
