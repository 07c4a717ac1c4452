"""Shared helpers for the benchmarks: the served engine in-process, and a gateway in a subprocess."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# Everyday prompts that touch no forget target: what the throughput benchmarks generate from.
PROMPTS = [
    "Explain how a bicycle works.", "Describe the water cycle.", "Write a short poem about autumn.",
    "What are the benefits of exercise?", "How do plants make food?", "Describe a busy market.",
    "Explain what a computer does.", "Tell a short story about a dog.", "Why is the sky blue?",
    "How do you bake bread?", "Describe the ocean.", "What is a good breakfast?",
    "Explain how rain forms.", "Describe a mountain hike.", "What makes a good friend?", "How do birds fly?",
]


def load_engine(max_batch_size: int = 32):
    from gateway.app import build_engine
    from gateway.config import Settings
    from gateway.metrics import Metrics

    settings = Settings.load(ROOT / "configs" / "default.yaml", max_batch_size=max_batch_size)
    return build_engine(settings, Metrics())


def start_gateway(tmp: Path, env: dict[str, str] | None = None):
    from live_server import start_server  # the same launcher the tests use (no pytest needed)

    return start_server(tmp, env)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(rows: list[list[object]], header: list[str]) -> str:
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
