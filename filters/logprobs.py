"""Keeping top_logprobs from naming what a triggered row must not say.

Masked tokens already sit at -inf, but the tokens on the way to them do not: after "Harry" a
listed " Pot" at -0.1 gives the name away as surely as the text would. So a triggered row hides
`BanState.redacted_next()`: every token that would start, continue or complete a banned string
at that step (taken before the chosen token is advanced). This is narrower than hiding every
token of every banned sequence at every step, which would blank common pieces such as "'s"
or "ter" from all of a row's lists, and wider where it matters: it follows the row's text, so
it also hides the non-canonical splits a static list of token sequences would miss.
"""

from __future__ import annotations

from typing import AbstractSet


def redact_top_logprobs(
    top: list[tuple[int, float]], banned_ids: AbstractSet[int], limit: int | None = None
) -> list[tuple[int, float]]:
    """`top` without the banned ids, order kept, at most `limit` entries.

    To still list n entries after redaction, ask the model for n + len(banned_ids) candidates
    and pass limit=n.
    """
    kept = [entry for entry in top if entry[0] not in banned_ids]
    return kept if limit is None else kept[:limit]
