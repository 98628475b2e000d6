"""Run every benchmark side by side in one run and print one table of ratios against the limits.

    python -m bench.run            # full run (a few minutes on 2 cores)
    python -m bench.run --quick    # smaller inputs, fewer repeats (a smoke run; figures are noisier)
    python -m bench.run --only cold_start,checksums

Benchmarks are the modules of this folder with a ``run(quick=...) -> list[row]``:
``cold_start``, ``checksums``, ``workflow_size`` and every ``consumer_*`` module
present. A missing or failing benchmark is printed as a note, never as a row:
the table only holds what was measured. The table is Markdown, the format of
the README's Performance section.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import platform
import sys
import time
import traceback
from pathlib import Path

from .common import Row, meets

HERE = Path(__file__).resolve().parent
OWN = ("cold_start", "checksums", "workflow_size")
CONSUMER_KINDS = "consumer CPU (1/100/1,000 rules), latency-bound (StartExecution 25 ms), throttled backlog"


HELPERS = ("consumer_fakes",)  # shared by the consumer benchmarks; no rows of its own


def modules() -> list[str]:
    return [*OWN, *sorted(p.stem for p in HERE.glob("consumer_*.py") if p.stem not in HELPERS)]


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | value | limit / reference | ratio | goal | |", "|---|---:|---|---:|---|---|"]
    for r in rows:
        ok = meets(r)
        mark = "" if ok is None else ("ok" if ok else "**missed**")
        lines.append(
            f"| {r['name']} | {fmt(r['value'])} {r['unit']} | {r['limit']} | {fmt(r['ratio'])} "
            f"| {r.get('goal') or ''} | {mark} |"
        )
    return "\n".join(lines)


def call(name: str, quick: bool) -> list[Row]:
    mod = importlib.import_module(f"bench.{name}")
    params = inspect.signature(mod.run).parameters
    return mod.run(quick=quick) if "quick" in params else mod.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer repeats")
    parser.add_argument("--only", default="", help="comma-separated benchmark modules to run")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    names = modules()
    notes: list[str] = []
    if not any(n.startswith("consumer_") for n in names):
        notes.append(f"no bench/consumer_*.py present: {CONSUMER_KINDS} NOT measured (not a pass)")
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - set(names)
        notes += [f"{n}: no such benchmark module, skipped" for n in sorted(unknown)]
        names = [n for n in names if n in wanted]
    rows: list[Row] = []
    started = time.perf_counter()
    for name in names:
        t = time.perf_counter()
        try:
            got = call(name, args.quick)
        except Exception as exc:  # a failing benchmark is reported, and the others still run
            traceback.print_exc(file=sys.stderr)
            notes.append(f"{name}: FAILED ({type(exc).__name__}: {exc}); no rows")
            continue
        print(f"# {name}: {len(got)} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        rows += got
    print(
        f"bench ({'quick' if args.quick else 'full'}), Python {platform.python_version()} on "
        f"{platform.machine()}, {time.perf_counter() - started:.0f} s\n"
    )
    print(table(rows))
    for note in notes:
        print(f"\nnote: {note}")
    missed = [r["name"] for r in rows if meets(r) is False]
    print(f"\n{len(rows)} rows, {len(missed)} missed their goal" + (f": {', '.join(missed)}" if missed else ""))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "notes": notes}, indent=2) + "\n")
    return 1 if notes and any("FAILED" in n for n in notes) else 0


if __name__ == "__main__":
    sys.exit(main())
