"""Draw a CloudWatch dashboard body's widget layout to a PNG (matplotlib): one box per widget on the 24-column
grid, with its title, kind and what it shows. For the docs: CloudWatch renders dashboards only in the console.

    python tools/render_dashboard.py BODY.json docs/dashboard.png
    python tools/render_dashboard.py --plan PLAN.json docs/dashboard.png   # `terraform show -json tfplan`

BODY.json is the ``dashboard_body`` (``{"widgets": [...]}``); with ``--plan``, the first
``aws_cloudwatch_dashboard`` of the plan is drawn. Needs matplotlib (``pip install .[docs]``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

COLOURS = {"metric": "#dbe9f6", "log": "#fde9c9", "text": "#e8e8e8", "alarm": "#f6d5d5"}


def body_from_plan(plan: dict[str, Any]) -> dict[str, Any]:
    for rc in plan.get("resource_changes", []):
        if rc["type"] == "aws_cloudwatch_dashboard":
            return json.loads(rc["change"]["after"]["dashboard_body"])
    raise SystemExit("no aws_cloudwatch_dashboard in the plan")


def describe(widget: dict[str, Any]) -> list[str]:
    """What a widget shows, a few short lines: its metrics (namespace metric), its query, or its text."""
    props = widget.get("properties", {})
    if widget["type"] == "log":
        return textwrap.wrap(props.get("query", "").split("|", 1)[-1].strip(), 70)[:3]
    if widget["type"] == "text":
        return textwrap.wrap(props.get("markdown", "").replace("#", "").strip(), 70)[:3]
    lines = []
    for line in props.get("metrics", []):
        plain = [x for x in line if not isinstance(x, dict)]
        options = next((x for x in line if isinstance(x, dict)), {})
        if "expression" in options:
            lines.append(options["expression"])
        elif len(plain) >= 2:
            value = str(plain[3]).rsplit(":", 1)[-1] if len(plain) >= 4 else ""  # an ARN by its name
            lines.append(f"{plain[0]} {plain[1]}" + (f" [{value}]" if value else ""))
    unique = list(dict.fromkeys(lines))
    shown = [textwrap.shorten(x, 80) for x in unique[:4]]
    return shown + ([f"... and {len(unique) - 4} more"] if len(unique) > 4 else [])


def render(body: dict[str, Any], out: Path, title: str = "") -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    widgets = body["widgets"]
    rows = max(w["y"] + w["height"] for w in widgets)
    fig, ax = plt.subplots(figsize=(16, 16 * rows / 24 * 0.62 + 0.6))
    ax.set_xlim(0, 24)
    ax.set_ylim(rows, 0)
    ax.axis("off")
    for w in widgets:
        x, y, width, height = w["x"], w["y"], w["width"], w["height"]
        ax.add_patch(
            FancyBboxPatch(
                (x + 0.1, y + 0.1),
                width - 0.2,
                height - 0.2,
                boxstyle="round,pad=0,rounding_size=0.2",
                facecolor=COLOURS.get(w["type"], "white"),
                edgecolor="#555555",
            )
        )
        props = w.get("properties", {})
        heading = props.get("title") or props.get("markdown", "").splitlines()[0].lstrip("# ")
        ax.text(x + 0.4, y + 0.6, heading, fontsize=10, fontweight="bold", va="top", wrap=True)
        ax.text(x + 0.4, y + 1.5, f"{w['type']} widget ({width}x{height})", fontsize=8, style="italic", va="top")
        ax.text(x + 0.4, y + 2.3, "\n".join(describe(w)), fontsize=7, va="top", family="monospace")
    if title:
        ax.set_title(title, fontsize=13)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the dashboard body JSON, or with --plan `terraform show -json`")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--plan", action="store_true", help="SOURCE is a plan's JSON")
    parser.add_argument("--title", default="", help="a title above the layout")
    args = parser.parse_args(argv)
    data = json.loads(args.source.read_text())
    render(body_from_plan(data) if args.plan else data, args.out, args.title)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
