"""A reference decoder (greedy or sampled) with the steering hooks armed per forward pass, as the engine runs them.

Used by the steering sweep and the behaviour tests, which need the model alone, without the gateway.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from .hooks import GatedSteering


def render_chat(tokenizer, question: str, system: str | None = None) -> list[int]:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


def greedy_decode(model, tokenizer, prompts: list[list[int]], steering: GatedSteering | None = None,
                  plans: list[dict] | None = None, max_new: int = 32) -> list[list[int]]:
    """Left-padded, KV-cached greedy decoding; each row stops at its EOS (not included)."""
    return decode(model, tokenizer, prompts, steering, plans, max_new)


@torch.no_grad()
def decode(model, tokenizer, prompts: list[list[int]], steering: GatedSteering | None = None,
           plans: list[dict] | None = None, max_new: int = 32, temperature: float = 0.0,
           seed: int = 0, min_p: float = 0.0) -> list[list[int]]:
    """`greedy_decode`, or plain sampling at `temperature` (top_p 1, as the SDK's default) from `seed`,
    dropping tokens less likely than `min_p` times the likeliest (vLLM's min_p) when set."""
    generator = torch.Generator().manual_seed(seed)
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), tokenizer.eos_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for _ in range(max_new):
        if steering is not None:
            steering.set_rows(plans)
        try:
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                           use_cache=True, logits_to_keep=1).logits[:, -1]
        finally:
            if steering is not None:
                steering.clear()
        if temperature > 0:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            if min_p > 0:
                probs = probs * (probs >= min_p * probs.max(-1, keepdim=True).values)
            next_ids = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(logits.device)
        else:
            next_ids = logits.argmax(-1)
        for i, token in enumerate(next_ids.tolist()):
            if done[i]:
                continue
            if token == tokenizer.eos_token_id:
                done[i] = True
            else:
                out[i].append(token)
        if all(done):
            break
        ids = next_ids[:, None]
        pos = mask.sum(-1, keepdim=True)
        mask = torch.cat([mask, torch.ones_like(pos)], dim=-1)
    return out
