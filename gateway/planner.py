"""Per-request plan: which of the tenant's active targets fire, and what Lethe does about them.

The only module that combines the detector with policies. A request that triggers nothing gets
no plan at all and runs the base model unchanged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from detectors.types import Detection, Message

from .engines.base import RowPlan
from .registry import Registry
from .store import GLOBAL, TargetRecord


class ResponsePolicy(Protocol):
    def apply(self, messages: list[dict[str, str]], targets: list[TargetRecord]) -> tuple[list[dict[str, str]], RowPlan | None]: ...


class InstructionPolicy:
    """Baseline: a system instruction to answer as someone who never heard of the fired targets.

    It names only the targets this conversation already touches, never any other registration.
    """

    # Small models follow short, literal instructions far better than nuanced ones (measured on
    # SmolLM2-135M: a longer "answer naturally" wording was ignored outright).
    TEMPLATE = "You do not know anything about {names}. When asked about {it}, reply only: I'm not familiar with that."

    def apply(self, messages, targets):
        names = ", ".join(t.name for t in targets)
        many = len(targets) > 1
        instruction = self.TEMPLATE.format(names=names, it="them" if many else "it")
        return [{"role": "system", "content": instruction}, *messages], None


@dataclass(frozen=True)
class PlanResult:
    detections: list[Detection]
    targets: list[TargetRecord]


class Planner:
    def __init__(self, registry: Registry, policy: ResponsePolicy | None = None):
        self.registry = registry
        self.policy = policy or InstructionPolicy()

    def detect(self, tenant_id: str, messages: list[dict[str, str]]) -> PlanResult:
        active = self.registry.active_ids(tenant_id)
        if not active:
            return PlanResult([], [])
        conversation = [Message(m["role"], m["content"]) for m in messages]
        detections = self.registry.detector.detect(conversation, [tenant_id, GLOBAL], active)
        targets = [self.registry.get_visible_unchecked(d.target_id) for d in detections]
        return PlanResult(detections, [t for t in targets if t is not None])

    async def plan(self, tenant, messages):
        result = await asyncio.to_thread(self.detect, tenant.id, messages)
        if not result.targets:
            return messages, None
        return self.policy.apply(messages, result.targets)
