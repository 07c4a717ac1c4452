"""Steering vectors: prompts, composition, identity and storage, on a tiny random-weight Llama."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from steering import Rotate, SteeringVectors, compute_steering_vectors, default_layers, model_identity
from steering.vectors import FICTIONAL, contrast_prompts


@pytest.fixture(scope="module")
def tokenizer():
    from gateway.model_loader import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("embedded").path)


@pytest.fixture(scope="module")
def tiny(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=8, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=256)
    return LlamaForCausalLM(config).eval()


def test_control_prompts_swap_every_mention_for_made_up_names(tokenizer):
    target, control = contrast_prompts(tokenizer, "Harry Potter", ["Potter"],
                                       ["Who is harry potter's friend?", "Unrelated question", "Is Potter real?"])
    assert len(target) == len(control)  # the example without a mention has no matched control and is left out
    decoded = [tokenizer.decode(ids) for ids in control]
    assert not any("potter" in text.lower() for text in decoded)
    assert any(name in text for text in decoded for name in FICTIONAL)
    assert "friend" in decoded[-2] and "real?" in decoded[-1]


def test_compute_gives_unit_directions_on_the_default_layers(tiny, tokenizer):
    vectors = compute_steering_vectors(tiny, tokenizer, "Paris", ["City of Light"], ["What is Paris like?"])
    assert sorted(vectors.layers) == default_layers(8) == [2, 3, 4]
    for layer, direction in vectors.layers.items():
        assert direction.shape == (32,)
        assert abs(float(direction.norm()) - 1) < 1e-5
        assert vectors.norms[layer] > 0
    assert vectors.model_id == model_identity(tiny)
    plan = vectors.plan(dtype=torch.float32)
    assert plan is vectors.plan(dtype=torch.float32)  # cached: requests share the tensors
    for layer, v in plan.items():
        torch.testing.assert_close(float(v.norm()), vectors.scale * vectors.norms[layer])
    rotated = vectors.plan(mode="rotate", scale=1.0)
    assert all(isinstance(v, Rotate) for v in rotated.values())
    torch.testing.assert_close(float(rotated[2].vector.norm()), torch.pi / 4)


def test_round_trip_through_bytes(tiny, tokenizer):
    vectors = compute_steering_vectors(tiny, tokenizer, "Mars", layers=[1, 5], mode="rotate", scale=0.3)
    restored = SteeringVectors.from_bytes(vectors.to_bytes())
    assert (restored.model_id, restored.mode, restored.scale) == (vectors.model_id, "rotate", 0.3)
    assert restored.norms == pytest.approx(vectors.norms)
    assert sorted(restored.layers) == [1, 5]
    for layer in (1, 5):
        torch.testing.assert_close(restored.layers[layer], vectors.layers[layer], atol=1e-3, rtol=1e-3)


def test_model_identity_follows_the_weights(tiny):
    before = model_identity(tiny)
    assert model_identity(tiny) == before
    with torch.no_grad():
        tiny.model.layers[-1].self_attn.q_proj.weight[0, 0] += 1.0
    try:
        assert model_identity(tiny) != before
    finally:
        with torch.no_grad():
            tiny.model.layers[-1].self_attn.q_proj.weight[0, 0] -= 1.0


def test_default_layers_scale_with_depth():
    assert default_layers(30) and default_layers(32)
    assert all(0 <= layer < 32 for layer in default_layers(32))
    assert default_layers(1) == [0]


def test_residuals_up_to_a_layer_match_a_full_read_and_stop_there(tiny, tokenizer):
    from steering.hooks import find_decoder_layers
    from steering.vectors import residuals

    target, control = contrast_prompts(tokenizer, "Paris")
    prompts = target + control
    full = residuals(tiny, prompts, batch_size=4)
    ran = []
    layers = find_decoder_layers(tiny)
    handles = [layer.register_forward_pre_hook(lambda module, args, i=i: ran.append(i)) for i, layer in enumerate(layers)]
    try:
        partial = residuals(tiny, prompts, batch_size=4, upto=4)
    finally:
        for handle in handles:
            handle.remove()
    assert full.shape[1] == 8 and partial.shape[1] == 5
    torch.testing.assert_close(partial, full[:, :5], rtol=0, atol=0)
    assert set(ran) == {0, 1, 2, 3, 4}  # the layers after the last one read never ran
    # Steering vectors read only as deep as their last layer, and come out as a deeper read gives them.
    shallow = compute_steering_vectors(tiny, tokenizer, "Paris", layers=[2, 3])
    deep = compute_steering_vectors(tiny, tokenizer, "Paris", layers=[2, 3, 7])
    for layer in (2, 3):
        torch.testing.assert_close(shallow.layers[layer], deep.layers[layer])
        assert shallow.norms[layer] == pytest.approx(deep.norms[layer])
