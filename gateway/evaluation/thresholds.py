"""Regression gate: the first policy column of a report against committed bounds.

thresholds.json: {"min": {metric: bound}, "max": {metric: bound}, "goals": {"min": …, "max": …}}; a
metric is a key of the column's scores ("retain_acc", "attack_leak.prefill", "quality_t1.gibberish_rate")
or of detection ("detection.tpr"). A miss of "min"/"max" is a regression (exit 1); "goals" are where the
project wants to be and are reported (`goal_misses`) without failing, until a bound is met and moved
up into "max"/"min".
"""

from __future__ import annotations

import json
from pathlib import Path

from .suite import DEFAULT_DIR

DEFAULT_FILE = DEFAULT_DIR / "thresholds.json"  # beside the suite it gates


def _lookup(scores: dict, column: str, metric: str):
    node = scores if metric.startswith("detection.") else scores["columns"][column]
    for part in metric.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check(report: dict, path: Path = DEFAULT_FILE) -> dict:
    bounds = json.loads(Path(path).read_text())
    columns = [c for c in report["scores"]["columns"] if c != "base"]
    if not columns:
        return {"file": str(path), "column": None, "failures": ["no policy column to check"]}
    column = columns[0]
    return {"file": str(path), "column": column, "failures": _misses(report["scores"], column, bounds),
            "goal_misses": _misses(report["scores"], column, bounds.get("goals", {}))}


def _misses(scores: dict, column: str, bounds: dict) -> list[str]:
    out = []
    for kind, ok in (("min", lambda v, b: v >= b), ("max", lambda v, b: v <= b)):
        for metric, bound in bounds.get(kind, {}).items():
            value = _lookup(scores, column, metric)
            if value is None:
                out.append(f"{metric} missing")
            elif not ok(value, bound):
                out.append(f"{metric} = {value:.3f}, {'below' if kind == 'min' else 'above'} {bound}")
    return out
