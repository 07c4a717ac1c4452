"""Output-side interventions for triggered rows: token bans, a streaming text guard, logprob redaction."""

from .banned import BannedSet, BanState, compile_banned, mask_banned
from .guard import GuardPatterns, GuardResult, StreamGuard
from .logprobs import redact_top_logprobs

__all__ = [
    "BanState",
    "BannedSet",
    "GuardPatterns",
    "GuardResult",
    "StreamGuard",
    "compile_banned",
    "mask_banned",
    "redact_top_logprobs",
]
