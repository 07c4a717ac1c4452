"""Keeping top_logprobs from naming what a triggered row must not say.

Masked tokens already sit at -inf, but the tokens on the way to them do not: after "Harry" a
listed " Pot" at -0.1 gives the name away as surely as the text would. So a triggered row hides
`BanState.redacted_next()`: every token that would start, continue or complete a banned string
at that step (taken before the chosen token is advanced). This is narrower than hiding every
token of every banned sequence at every step, which would blank common pieces such as "'s"
or "ter" from all of a row's lists, and wider where it matters: it follows the row's text, so
it also hides the non-canonical splits a static list of token sequences would miss.

And a triggered row lists only what it could write: it samples with a min_p floor, so the long tail
of its alternatives (" radiation" at rank 9 after "Marie Curie did pioneering research on a new type
of") is what the model knows but the row never says, facts no ban names included.
"""

from __future__ import annotations

import math
from typing import AbstractSet


def redact_top_logprobs(
    top: list[tuple[int, float]], banned_ids: AbstractSet[int], limit: int | None = None, min_p: float = 0.0
) -> list[tuple[int, float]]:
    """`top` (best first) without the banned ids, order kept, at most `limit` entries; with `min_p`,
    only entries at least `min_p` times as likely as the best, the tokens a row sampling with that
    min_p can write.

    To still list n entries after redaction, ask the model for n + len(banned_ids) candidates
    and pass limit=n.
    """
    floor = top[0][1] + math.log(min_p) if top and min_p > 0.0 else float("-inf")
    kept = [entry for entry in top if entry[0] not in banned_ids and entry[1] >= floor]
    return kept if limit is None else kept[:limit]
