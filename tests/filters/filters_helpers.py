"""Helpers shared by the filters tests: prompts as the gateway builds them, and a decode loop."""

from __future__ import annotations

import torch


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def chat_prompt(tokenizer, user: str, prefill: str | None = None) -> list[int]:
    """The prompt the gateway builds; a trailing assistant message is continued, not closed."""
    messages = [{"role": "user", "content": user}]
    if prefill is not None:
        messages.append({"role": "assistant", "content": prefill})
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=prefill is None, continue_final_message=prefill is not None,
        tokenize=True, return_dict=False,
    )
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


@torch.no_grad()
def greedy_decode(model, prompts: list[list[int]], states: list, steps: int, pad_id: int = 0) -> list[list[int]]:
    """Left-padded batch, KV cache, one token per step, the ban applied between forward and argmax:
    the same shape of loop as the gateway's engine."""
    from filters.banned import mask_banned

    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True)
    generated: list[list[int]] = [[] for _ in prompts]
    for step in range(steps):
        logits = out.logits[:, -1, :].float()
        mask_banned(logits, states)
        chosen = logits.argmax(-1)
        for row, token in enumerate(chosen.tolist()):
            generated[row].append(token)
            if states[row] is not None:
                states[row].advance(token)
        if step == steps - 1:
            break
        positions = mask.sum(-1, keepdim=True)
        mask = torch.cat([mask, torch.ones_like(positions)], dim=-1)
        out = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=positions,
                    past_key_values=out.past_key_values, use_cache=True)
    return generated
