"""Regression gate: the first policy column of a report against committed bounds.

thresholds.json: {"min": {metric: bound}, "max": {metric: bound}}; a metric is a key of the
column's scores ("retain_acc", "attack_leak.prefill") or of detection ("detection.tpr").
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "thresholds.json"


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
    failures = []
    for kind, ok in (("min", lambda v, b: v >= b), ("max", lambda v, b: v <= b)):
        for metric, bound in bounds.get(kind, {}).items():
            value = _lookup(report["scores"], column, metric)
            if value is None:
                failures.append(f"{metric} missing")
            elif not ok(value, bound):
                failures.append(f"{metric} = {value:.3f}, {'below' if kind == 'min' else 'above'} {bound}")
    return {"file": str(path), "column": column, "failures": failures}
