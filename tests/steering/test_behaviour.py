"""Steering on the embedded model: a steered row stops producing the target's facts, while an
unsteered row in the same left-padded batch is token-identical to the base model."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from steering import GatedSteering, compute_steering_vectors


@pytest.fixture(scope="module")
def embedded():
    from gateway.model_loader import resolve_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 135M model on a shared box: one thread is the fastest here
    path = resolve_model("embedded").path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    yield model, tokenizer
    torch.set_num_threads(threads)


def render(tokenizer, question: str) -> list[int]:
    return list(tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                              tokenize=True, return_dict=False))


@torch.no_grad()
def greedy(model, tokenizer, prompts, steering=None, plans=None, max_new: int = 14) -> list[list[int]]:
    """Left-padded, KV-cached greedy decoding with the hooks armed per forward, as the engine runs it."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), tokenizer.eos_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out: list[list[int]] = [[] for _ in prompts]
    for _ in range(max_new):
        if steering is not None:
            steering.set_rows(plans)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                       use_cache=True, logits_to_keep=1).logits[:, -1]
        if steering is not None:
            steering.clear()
        ids = logits.argmax(-1, keepdim=True)
        for row, token in zip(out, ids[:, 0].tolist()):
            row.append(token)
        pos = mask.sum(-1, keepdim=True)
        mask = torch.cat([mask, torch.ones_like(pos)], dim=-1)
    return out


def test_steered_row_forgets_and_unsteered_neighbour_is_unchanged(embedded):
    model, tokenizer = embedded
    vectors = compute_steering_vectors(model, tokenizer, "Harry Potter", ["Harry James Potter"],
                                       ["Summarize the Harry Potter books", "Who is Harry Potter?"])
    about = render(tokenizer, "Who wrote Harry Potter?")
    other = render(tokenizer, "Name a color.")  # shorter: left-padded in the batch
    assert len(other) < len(about)

    base = greedy(model, tokenizer, [about, other])
    assert "rowling" in tokenizer.decode(base[0]).lower()  # the base model knows the fact
    alone = greedy(model, tokenizer, [other])

    steering = GatedSteering(model)
    try:
        steered = greedy(model, tokenizer, [about, other], steering, [vectors.plan(), {}])
    finally:
        steering.remove()
    text = tokenizer.decode(steered[0], skip_special_tokens=True)
    assert "rowling" not in text.lower(), text
    assert sum(c.isalpha() for c in text) > 5, text  # still words, not silence
    assert steered[1] == base[1]  # the untriggered neighbour: token-identical to the base batch
    assert steered[1] == alone[0]  # ... and to the same question asked alone
