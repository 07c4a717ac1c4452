from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetSpec:
    id: str
    owner: str  # partition: a tenant id, or "global"
    name: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    examples: tuple[str, ...] = ()  # prompts about the target
    negatives: tuple[str, ...] = ()  # prompts that must not fire; raise the calibrated threshold


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Detection:
    target_id: str
    score: float  # 0..1
    method: str  # "lexical" | "semantic"
    threshold: float


class DetectionTooLarge(ValueError):
    """A conversation past the detector's work bounds: refuse it, never serve it unchecked."""
