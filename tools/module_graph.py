#!/usr/bin/env python3
"""Which module call of a Terraform configuration reads which: the module dependency graph.

    python tools/module_graph.py            # the root module
    python tools/module_graph.py DIR --dot  # Graphviz

A module call reads another when one of its arguments refers to
``module.<other>``, directly or through the locals and resources it refers to
(followed transitively). tests/terraform/test_structure.py asserts the graph of
the root module has no cycle and that modules/dead_letter reads nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parents[1]


def _strip(name: str) -> str:
    return name.strip('"')


def _blocks(directory: Path) -> tuple[dict, dict, dict]:
    modules: dict[str, dict] = {}
    locals_: dict[str, object] = {}
    others: dict[str, object] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as fh:
            parsed = hcl2.load(fh)
        for block in parsed.get("module", []):
            modules.update({_strip(k): v for k, v in block.items()})
        for block in parsed.get("locals", []):
            locals_.update({_strip(k): v for k, v in block.items()})
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, byname in block.items():
                    for name, body in byname.items():
                        prefix = "data." if kind == "data" else ""
                        others[f"{prefix}{_strip(rtype)}.{_strip(name)}"] = body
    return modules, locals_, others


def module_graph(directory: Path = ROOT) -> dict[str, set[str]]:
    """module call name -> the module calls it reads."""
    modules, locals_, others = _blocks(directory)

    def reads(text: str, seen: set[str]) -> set[str]:
        found = set(re.findall(r"\bmodule\.([A-Za-z0-9_-]+)", text))
        for name in set(re.findall(r"\blocal\.([A-Za-z0-9_]+)", text)):
            if f"local.{name}" not in seen and name in locals_:
                seen.add(f"local.{name}")
                found |= reads(json.dumps(locals_[name]), seen)
        for address in set(re.findall(r"\b((?:data\.)?aws_[a-z0-9_]+\.[A-Za-z0-9_]+)", text)):
            if address not in seen and address in others:
                seen.add(address)
                found |= reads(json.dumps(others[address]), seen)
        return found

    return {
        name: reads(json.dumps({k: v for k, v in body.items() if k != "source"}), set()) - {name}
        for name, body in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle, each once (rotated to start at its smallest name)."""
    found: set[tuple[str, ...]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                loop = path[path.index(nxt) :]
                i = loop.index(min(loop))
                found.add(tuple(loop[i:] + loop[:i]))
            elif nxt in graph:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    return [[*loop, loop[0]] for loop in sorted(found)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--dot", action="store_true", help="print Graphviz instead of a list")
    args = parser.parse_args(argv)
    graph = module_graph(args.directory)
    if args.dot:
        print("digraph modules {")
        for name, reads in sorted(graph.items()):
            print(f'  "{name}";' if not reads else "\n".join(f'  "{name}" -> "{r}";' for r in sorted(reads)))
        print("}")
    else:
        for name, reads in sorted(graph.items()):
            print(f"{name:20} reads {', '.join(sorted(reads)) or '(nothing)'}")
        loops = cycles(graph)
        print(f"cycles: {len(loops)}" + "".join(f"\n  {' -> '.join(c)}" for c in loops[:10]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
