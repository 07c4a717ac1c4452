"""A tenant's response policy: which interventions run when one of its targets fires.

The server's settings give the default; a tenant may override any field. Kept as plain data so
the store can persist it as JSON and the evaluation suite can compare policies side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

INTERVENTIONS = ("instruction", "ignorance", "tokens", "guard", "steering")
REFUSALS = ("rewind", "sentence", "cut")
DETECTOR_FAILURES = ("closed", "open")
Intervention = Literal["instruction", "ignorance", "tokens", "guard", "steering"]
Refusal = Literal["rewind", "sentence", "cut"]
DetectorFailure = Literal["closed", "open"]

# Said when the stream guard cuts and the policy asks for a fluent ending rather than a bare
# content_filter stop. Worded like ordinary ignorance, so it reveals no registration, and in the
# words the model itself finds likeliest for it: given a question it knows, "I'm sorry, but I don't
# have any information about that." scores a perplexity of 5-8 under the base model, "I'm not
# familiar with that." 17-35 (README, Evaluation).
IGNORANCE_SENTENCE = "I'm sorry, but I don't have any information about that."
# Where a structured answer's string field is too short for the sentence.
IGNORANCE_SHORT = ("I don't know.", "unknown")
# How a triggered free-text answer begins under the `ignorance` intervention: the model finishes the
# sentence in its own words ("... I don't know the answer to that question.", "... I don't have
# any information about that."). Without it, a steered 135M model opens with "I'm unable to
# provide..." or rambles (README).
IGNORANCE_OPENER = "I'm sorry, but I don't"
# How a triggered answer begins in the middle of a sentence the client wrote ("The capital of France
# is", "Shakespeare's plays were staged at the"): it trails off rather than finish the sentence with a
# fact or a made-up substitute. Of nine wordings scored by the base model after ten such prefixes (the
# answer given the prefix alone), this one read likeliest: median perplexity 14, worst 64, against 40
# and 246 for " something that I don't know about." and 77 and 344 for " — I'm not sure." (README).
TRAILING_OFF = "... well, I'm not sure"
# What a policy refusal sounds like, kept out of a triggered free-text answer: a model that never
# learned a thing does not say it was stopped ("I'm unable to provide any information", "I've been
# instructed to"), and an answer that does tells the client a filter is there.
REFUSAL_TELLS = ("unable to provide", "unable to share", "unable to discuss", "unable to disclose", "unable to reveal",
                 "cannot provide", "can't provide", "not able to provide", "not allowed", "not permitted",
                 "instructed", "instruction", "been told", "told to", "forget", "forgot", "restricted", "redacted",
                 "censored", "filtered", "system prompt", "know anything about")
# How often one answer may be rewound and continued before it simply ends at its last safe point:
# each continuation bans what was stopped, so a second hit is rare and a third rarer still.
MAX_REWINDS = 2


@dataclass(frozen=True)
class ResponsePolicy:
    # All five: the combination that leaked least under every attack family in `lethe eval`
    # (see README, Evaluation); the filters alone leave the facts the name does not carry.
    interventions: frozenset[str] = frozenset(INTERVENTIONS)
    # What a guard hit becomes. "rewind": the answer goes back to its last safe point (a triggered
    # row sends whole sentences) and is continued with the stopped target's plan, so it reads whole;
    # "sentence": it ends at the safe point with IGNORANCE_SENTENCE; "cut": finish_reason content_filter.
    refusal: str = "rewind"
    on_detector_error: str = "closed"  # "closed": refuse with 503; "open": serve without a plan

    def __post_init__(self) -> None:
        # Every key is checked where a policy is made (settings, stored overrides): a typo must
        # fail loudly, not fail closed in one place and open in another.
        unknown = set(self.interventions) - set(INTERVENTIONS)
        if unknown:
            raise ValueError(f"unknown interventions: {', '.join(sorted(unknown))} (known: {', '.join(INTERVENTIONS)})")
        if self.refusal not in REFUSALS:
            raise ValueError(f"refusal must be one of {', '.join(REFUSALS)}, not {self.refusal!r}")
        if self.on_detector_error not in DETECTOR_FAILURES:
            raise ValueError(f"on_detector_error must be one of {', '.join(DETECTOR_FAILURES)}, "
                             f"not {self.on_detector_error!r}")

    def merged(self, overrides: dict) -> ResponsePolicy:
        """This policy with a tenant's stored overrides applied (unknown keys were refused at the API)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if "interventions" in values:
            values["interventions"] = frozenset(values["interventions"])
        return replace(self, **values)

    def uses(self, intervention: str) -> bool:
        return intervention in self.interventions

    def as_dict(self) -> dict:
        return {"interventions": [i for i in INTERVENTIONS if i in self.interventions], "refusal": self.refusal,
                "on_detector_error": self.on_detector_error}
