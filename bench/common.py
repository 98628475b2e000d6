"""What every benchmark returns: rows of ``{name, value, unit, limit, ratio}`` (``goal`` optional).

``ratio`` is ``value / limit``: above 1 is faster than the limit for a rate,
slower than the reference for a time. ``goal`` says which way is good
(``">= 20"``, ``"<= 1.3"``); the runner marks each row against it.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "lambda_src") not in sys.path:
    sys.path.insert(0, str(ROOT / "lambda_src"))

Row = dict[str, Any]


def row(name: str, value: float, unit: str, limit: str, ratio: float | None, goal: str = "") -> Row:
    return {"name": name, "value": value, "unit": unit, "limit": limit, "ratio": ratio, "goal": goal}


def meets(r: Row) -> bool | None:
    """Whether ``r`` meets its goal (None when it states none)."""
    goal = (r.get("goal") or "").strip()
    if not goal or r.get("ratio") is None:
        return None
    op, _, num = goal.partition(" ")
    bound = float(num)
    return r["ratio"] >= bound if op == ">=" else r["ratio"] <= bound


def median(fn: Callable[[], float], runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))
