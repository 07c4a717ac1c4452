"""Named response policies the eval can compare, one fresh tenant each (see gateway/policy.py)."""

from __future__ import annotations

DEFAULT = "default"  # send no policy: the server's configured default
SERVER_DEFAULT_LABEL = "server default"

PRESETS: dict[str, list[str] | None] = {
    DEFAULT: None,
    "instruction": ["instruction"],
    "filters": ["instruction", "tokens", "guard"],
    "steering": ["instruction", "steering"],
    "all": ["instruction", "ignorance", "tokens", "guard", "steering"],
    "no-ignorance": ["instruction", "tokens", "guard", "steering"],
    "no-steering": ["instruction", "ignorance", "tokens", "guard"],
}


def label(name: str) -> str:
    return SERVER_DEFAULT_LABEL if name == DEFAULT else name
