"""The ban on the served model itself: greedy decoding with the processor never writes a banned
name, while a row that bans nothing is token for token what plain generation gives."""

from __future__ import annotations

import re

import torch
from filters_helpers import chat_prompt, encode, greedy_decode

from filters.banned import BannedSet, compile_banned

STEPS = 32


def mentions(text: str, phrase: str) -> bool:
    """Any capitalisation, with or without the space, at a word start: what the ban promises."""
    words = [re.escape(w) for w in phrase.lower().split()]
    return re.search(r"(?<![a-z0-9])" + " ?".join(words), text.lower()) is not None


def cases(tokenizer) -> list[tuple[list[int], str, str]]:
    """(prompt, banned phrase, prompt text the match may start in)."""
    prefill = "The boy wizard is named Harry Pot"
    return [
        (chat_prompt(tokenizer, "Repeat exactly: Harry Potter"), "Harry Potter", ""),
        (chat_prompt(tokenizer, "What is the name of the school that Harry Potter attends?"), "Hogwarts", ""),
        (chat_prompt(tokenizer, "Spell the word Hogwarts."), "Hogwarts", ""),
        (chat_prompt(tokenizer, "Repeat exactly: Barack Obama"), "Barack Obama", ""),
        (chat_prompt(tokenizer, "Who is the boy wizard?", prefill=prefill), "Harry Potter", prefill),
        (encode(tokenizer, "The 44th president of the United States was Barack"), "Barack Obama", "Barack"),
        (encode(tokenizer, "Harry Potter and the Philosopher's Stone. Harry Potter and the Chamber of Secrets. Harry"),
         "Harry Potter", "Harry"),
    ]


def test_greedy_generation_never_completes_a_banned_name(tokenizer, model):
    rows = cases(tokenizer)
    prompts = [prompt for prompt, _, _ in rows]
    plain = greedy_decode(model, prompts, [None] * len(rows), STEPS)
    # Each row bans its own name, the last one every name at once (several targets firing).
    sets = [compile_banned(tokenizer, [phrase]) for _, phrase, _ in rows]
    sets[-1] = BannedSet.union(sets)
    banned = greedy_decode(model, prompts, [s.start(p) for s, p in zip(sets, prompts)], STEPS)
    for (prompt, phrase, tail), before, after in zip(rows, plain, banned):
        # Without the ban the model does say it, so the test has teeth.
        assert mentions(tail + tokenizer.decode(before), phrase), tokenizer.decode(before)
        assert not mentions(tail + tokenizer.decode(after), phrase), tokenizer.decode(after)
    assert not any(mentions(tokenizer.decode(banned[-1]), phrase) for _, phrase, _ in rows)


def test_a_row_without_a_ban_is_identical_to_plain_generation(tokenizer, model):
    innocent = chat_prompt(tokenizer, "Write the words 'Harry Potter' three times.")
    with torch.no_grad():
        reference = model.generate(torch.tensor([innocent]), attention_mask=torch.ones(1, len(innocent), dtype=torch.long),
                                   max_new_tokens=STEPS, do_sample=False, min_new_tokens=STEPS)[0, len(innocent):].tolist()
    assert greedy_decode(model, [innocent], [None], STEPS)[0] == reference
    # The same row beside rows whose bans change what they write: not one token moves.
    others = [chat_prompt(tokenizer, "Repeat exactly: Harry Potter"), chat_prompt(tokenizer, "Spell the word Hogwarts.")]
    potter = compile_banned(tokenizer, ["Harry Potter", "Hogwarts"])
    batch = greedy_decode(model, [others[0], innocent, others[1]],
                          [potter.start(others[0]), None, potter.start(others[1])], STEPS)
    assert batch[1] == greedy_decode(model, [others[0], innocent, others[1]], [None] * 3, STEPS)[1]
    assert batch[1][:12] == reference[:12]
    assert mentions(tokenizer.decode(reference), "Harry Potter")
