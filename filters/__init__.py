"""Output-side interventions for triggered rows: token bans, a streaming text guard, logprob redaction."""

from .banned import BannedSet, BanState, compile_banned, compile_patterns, mask_banned
from .guard import GuardChain, GuardPatterns, GuardPlan, GuardResult, StreamGuard
from .logprobs import redact_top_logprobs

__all__ = [
    "BanState",
    "BannedSet",
    "GuardChain",
    "GuardPatterns",
    "GuardPlan",
    "GuardResult",
    "StreamGuard",
    "compile_banned",
    "compile_patterns",
    "mask_banned",
    "redact_top_logprobs",
]
