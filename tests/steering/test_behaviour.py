"""Steering on the embedded model: a steered row stops producing the target's facts, while an
unsteered row in the same left-padded batch is token-identical to the base model."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from steering import GatedSteering, compute_steering_vectors
from steering.decode import greedy_decode, render_chat


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


def test_steered_row_forgets_and_unsteered_neighbour_is_unchanged(embedded):
    model, tokenizer = embedded
    vectors = compute_steering_vectors(model, tokenizer, "Harry Potter", ["Harry James Potter"],
                                       ["Summarize the Harry Potter books", "Who is Harry Potter?"])
    about = render_chat(tokenizer, "Who wrote Harry Potter?")
    other = render_chat(tokenizer, "Name a color.")  # shorter: left-padded in the batch
    assert len(other) < len(about)

    base = greedy_decode(model, tokenizer, [about, other], max_new=14)
    assert "rowling" in tokenizer.decode(base[0]).lower()  # the base model knows the fact
    alone = greedy_decode(model, tokenizer, [other], max_new=14)

    steering = GatedSteering(model)
    try:
        steered = greedy_decode(model, tokenizer, [about, other], steering, [vectors.plan(), {}], max_new=14)
    finally:
        steering.remove()
    text = tokenizer.decode(steered[0], skip_special_tokens=True)
    assert "rowling" not in text.lower(), text
    assert sum(c.isalpha() for c in text) > 5, text  # still words, not silence
    assert steered[1] == base[1]  # the untriggered neighbour: token-identical to the base batch
    assert steered[1] == alone[0]  # ... and to the same question asked alone
