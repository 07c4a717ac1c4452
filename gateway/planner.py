"""Per-request plan: which of the tenant's active targets fire, and what Lethe does about them.

The only module that combines the detector with the interventions (instruction, token bans,
stream guard, steering). A request that triggers nothing gets no plan at all and runs the base
model unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import lru_cache

from detectors.aliases import expand_aliases
from detectors.types import Detection, DetectionTooLarge, Message
from filters import GuardPatterns, GuardPlan, compile_banned

from .engines.base import RowPlan
from .errors import detection_too_large, detector_unavailable
from .failpoints import failpoint
from .policy import IGNORANCE_SENTENCE, ResponsePolicy
from .registry import Registry
from .store import GLOBAL, TargetRecord

log = logging.getLogger("lethe.planner")

# Small models follow short, literal instructions far better than nuanced ones (measured on
# SmolLM2-135M: a longer "answer naturally" wording was ignored outright). It names only the
# targets this conversation already touches, never any other registration.
INSTRUCTION = "You do not know anything about {names}. When asked about {it}, reply only: " + IGNORANCE_SENTENCE


def instruction_message(targets: list[TargetRecord]) -> dict[str, str]:
    names = ", ".join(t.name for t in targets)
    return {"role": "system", "content": INSTRUCTION.format(names=names, it="them" if len(targets) > 1 else "it")}


def banned_phrases(target: TargetRecord) -> tuple[str, ...]:
    """What a triggered row must never write: names, aliases (a person's surname included) and
    forbidden strings. Case, spacing, plural and possessive variants are the filters' job."""
    return tuple(dict.fromkeys([*expand_aliases(target.name, target.aliases), *target.forbidden]))


@lru_cache(maxsize=1024)
def _guard_patterns(phrases: frozenset[str]) -> GuardPatterns:
    return GuardPatterns(sorted(phrases))


@dataclass(frozen=True)
class PlanResult:
    detections: list[Detection]
    targets: list[TargetRecord]  # the ones that fired
    active: list[TargetRecord]  # every target active for the tenant


class Planner:
    def __init__(self, registry: Registry, tokenizer, default_policy: ResponsePolicy, steering=None):
        self.registry = registry
        self.tokenizer = tokenizer
        self.default_policy = default_policy
        self.steering = steering  # gives a target's per-layer vectors; None when steering is unavailable
        self._phrases: dict[str, tuple[TargetRecord, tuple[str, ...]]] = {}

    def policy_for(self, tenant) -> ResponsePolicy:
        return self.default_policy.merged(tenant.policy)

    def detect(self, tenant_id: str, messages: list[dict[str, str]]) -> PlanResult:
        active = self.registry.active(tenant_id)
        if not active:
            return PlanResult([], [], [])
        failpoint("detector")
        conversation = [Message(m["role"], m["content"]) for m in messages]
        detections = self.registry.detector.detect(conversation, [tenant_id, GLOBAL], {t.id for t in active})
        targets = [self.registry.get_visible_unchecked(d.target_id) for d in detections]
        return PlanResult(detections, [t for t in targets if t is not None], active)

    async def plan(self, tenant, messages):
        policy = self.policy_for(tenant)
        try:
            result = await asyncio.to_thread(self.detect, tenant.id, messages)
        except DetectionTooLarge as exc:
            raise detection_too_large(exc) from None
        except Exception:
            log.exception("detection failed for tenant %s", tenant.id)
            if policy.on_detector_error == "open":
                return messages, None
            raise detector_unavailable() from None
        if not result.targets and not (result.active and policy.uses("guard")):
            return messages, None
        return self.build(tenant.id, messages, result, policy)

    def build(self, tenant_id: str, messages, result: PlanResult, policy: ResponsePolicy):
        plan = RowPlan()
        targets = result.targets
        fired_phrases = frozenset(p for t in targets for p in self.phrases(t))
        if policy.uses("guard"):
            # The answer is part of the conversation: a target the prompt did not touch fires when
            # the answer names it and detection over the conversation plus the answer agrees.
            plan.guard = GuardPlan(
                banned=_guard_patterns(fired_phrases) if targets else None,
                watched=_guard_patterns(frozenset(p for t in result.active for p in self.phrases(t))),
                judge=self._answer_judge(tenant_id, messages, {t.id for t in targets}, policy),
            )
            plan.refusal_text = IGNORANCE_SENTENCE if policy.refusal == "sentence" else None
        if targets:
            if policy.uses("instruction"):
                messages = [instruction_message(targets), *messages]
            if policy.uses("tokens"):
                plan.banned = compile_banned(self.tokenizer, sorted(fired_phrases))
            if policy.uses("steering") and self.steering is not None:
                plan.steering = self.steering.vectors_for(targets)
        return messages, (None if plan.empty else plan)

    def phrases(self, target: TargetRecord) -> tuple[str, ...]:
        """`banned_phrases`, remembered until the target's record changes."""
        cached = self._phrases.get(target.id)
        if cached is None or cached[0] is not target:
            cached = self._phrases[target.id] = (target, banned_phrases(target))
        return cached[1]

    def _answer_judge(self, tenant_id: str, messages, fired: set[str], policy: ResponsePolicy):
        def judge(answer: str) -> bool:
            try:
                found = self.detect(tenant_id, [*messages, {"role": "assistant", "content": answer}])
            except DetectionTooLarge:
                return True  # an answer too long to check is cut, never streamed unchecked
            except Exception:
                log.exception("answer detection failed for tenant %s", tenant_id)
                return policy.on_detector_error == "closed"
            return any(t.id not in fired for t in found.targets)

        return judge
