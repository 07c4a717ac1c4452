"""Mechanics of the gated hooks on a tiny random-weight Llama (no download, runs in seconds)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from steering import GatedSteering, Rotate, combine, find_decoder_layers
from steering.hooks import _rotate

HIDDEN = 64


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def steering(model):
    s = GatedSteering(model)
    yield s
    s.remove()


def vec(seed: int, norm: float = 4.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(HIDDEN, generator=g)
    return v / v.norm() * norm


def batch(prompts: list[list[int]]):
    """Left-padded ids, mask and positions, as the engine builds them."""
    width = max(len(p) for p in prompts)
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def logits(model, steering, prompts, plans=None):
    ids, mask, pos = batch(prompts)
    if steering is not None and plans is not None:
        steering.set_rows(plans)
    try:
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
    finally:
        if steering is not None:
            steering.clear()


P1 = [5, 17, 33, 2, 9, 41, 7]
P2 = [11, 3, 60, 22]


def test_untriggered_row_is_bit_identical_to_the_hook_free_model(model):
    base = logits(model, None, [P1, P2])
    s = GatedSteering(model)
    try:
        steered = logits(model, s, [P1, P2], [{}, {0: vec(1), 2: vec(2)}])
        assert torch.equal(steered[0], base[0])
        assert not torch.allclose(steered[1], base[1], atol=1e-3)
        rotated = logits(model, s, [P1, P2], [{1: Rotate(vec(3, 1.0))}, {}])
        assert torch.equal(rotated[1], base[1])
        assert not torch.allclose(rotated[0], base[0], atol=1e-3)
    finally:
        s.remove()


def test_nothing_set_costs_nothing_and_clear_restores_base(model, steering):
    base = logits(model, None, [P1, P2])
    assert torch.equal(logits(model, steering, [P1, P2], [{}, {}]), base)
    assert not steering.active
    logits(model, steering, [P1, P2], [{1: vec(1)}, {1: vec(2)}])
    assert not steering.active  # cleared after the pass
    assert torch.equal(logits(model, steering, [P1, P2]), base)


def test_left_padding_does_not_change_a_steered_row(model, steering):
    plan = {0: vec(4), 1: vec(5)}
    alone = logits(model, steering, [P2], [plan])
    padded = logits(model, steering, [P1, P2], [{}, plan])  # P2 is left-padded here
    torch.testing.assert_close(padded[1], alone[0], atol=1e-5, rtol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("value", [vec(6), Rotate(vec(6, 0.8))], ids=["add", "rotate"])
def test_kv_cache_decode_matches_full_recompute(model, steering, value):
    """Steered greedy decoding with the cache (steps of length 1) equals recomputing everything."""
    plans = [{}, {1: value, 2: value}]
    prompts = [P1, P2]
    ids, mask, pos = batch(prompts)
    cache = DynamicCache()
    steering.set_rows(plans)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True)
    steering.clear()
    cached_tokens, cached_logits = [], []
    step = out.logits[:, -1]
    for _ in range(6):
        token = step.argmax(-1, keepdim=True)
        cached_tokens.append(token)
        cached_logits.append(step)
        pos = mask.sum(-1, keepdim=True)
        mask = torch.cat([mask, torch.ones_like(pos)], dim=-1)
        steering.set_rows(plans)
        step = model(input_ids=token, attention_mask=mask, position_ids=pos, past_key_values=cache,
                     use_cache=True).logits[:, -1]
        steering.clear()
    seqs = [list(p) for p in prompts]
    for i, token in enumerate(cached_tokens):
        full = logits(model, steering, seqs, plans)
        torch.testing.assert_close(full, cached_logits[i], atol=1e-4, rtol=1e-4)
        assert torch.equal(full.argmax(-1, keepdim=True), token)
        for row, t in zip(seqs, token.tolist()):
            row.append(t[0])


class TupleLayer(nn.Module):
    """A decoder layer that returns (hidden, extra), as many architectures do."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs), None


def test_tuple_outputs_are_steered_like_tensor_outputs():
    torch.manual_seed(1)
    layers = nn.ModuleList(nn.Sequential(nn.Linear(HIDDEN, HIDDEN), nn.Tanh()) for _ in range(3))

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = layers

        def forward(self, h):
            for layer in self.layers:
                h = layer(h)
            return h

    class Tupled(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(TupleLayer(layer) for layer in layers)

        def forward(self, h):
            for layer in self.layers:
                h, extra = layer(h)
                assert extra is None
            return h

    x = torch.randn(3, 5, HIDDEN)
    plans = [{0: vec(7)}, {}, {1: Rotate(vec(8, 0.5)), 2: vec(9)}]
    results = []
    for net in (Plain(), Tupled()):
        s = GatedSteering(net)
        base = net(x)
        s.set_rows(plans)
        results.append(net(x))
        s.clear()
        s.remove()
        assert torch.equal(results[-1][1], base[1])
    torch.testing.assert_close(results[0], results[1])


def test_several_targets_combine_by_a_capped_sum(model, steering):
    """Each target keeps its direction (a sum, not a mean), but the push stays that of the strongest
    one: three targets firing on one row must not steer three times as hard."""
    v1, v2 = vec(10), vec(11)
    summed = logits(model, steering, [P1], [{1: v1 + v2}])
    listed = logits(model, steering, [P1], [{1: (v1, v2)}])
    torch.testing.assert_close(listed, summed)  # a tuple in a plan is summed by the hook
    both = combine([{1: v1}, {1: v2, 2: v1}])
    assert both[2] is v1  # a layer only one target steers is left as it is
    limit = max(v1.norm(), v2.norm())
    torch.testing.assert_close(both[1].norm(), limit)  # |v1 + v2| > |v1|: capped
    assert torch.nn.functional.cosine_similarity(both[1], v1 + v2, dim=0) > 0.9999  # direction kept
    torch.testing.assert_close(logits(model, steering, [P1], [{1: both[1]}]),
                               logits(model, steering, [P1], [combine([{1: v1}, {1: v2}])]))
    assert not torch.allclose(logits(model, steering, [P1], [combine([{1: v1}, {1: v2}])]), summed, atol=1e-4)
    # A sum already within the cap is the plain sum; rotations are capped by angle.
    torch.testing.assert_close(combine([{1: v1}, {1: -0.5 * v1}])[1], 0.5 * v1)
    turned = combine([{1: Rotate(v1)}, {1: Rotate(v2)}])[1]
    assert isinstance(turned, Rotate) and torch.isclose(turned.vector.norm(), limit)


def test_tables_are_reused_while_the_batch_is_unchanged(model, steering):
    plans = [{}, {1: vec(1)}]
    steering.set_rows(plans)
    first = steering._tables
    steering.clear()
    steering.set_rows(list(plans))  # a new list of the same plan objects, as each decode step makes
    assert steering._tables is first
    steering.set_rows([{}, {1: vec(1)}])  # a new plan object: rebuilt
    assert steering._tables is not first
    steering.clear()


def test_rotation_keeps_the_norm_and_does_not_overshoot():
    h = torch.randn(2, 4, HIDDEN) * 3
    u = torch.nn.functional.normalize(torch.randn(2, HIDDEN), dim=-1)
    small = _rotate(h, u, torch.tensor([[0.1], [0.2]]))
    torch.testing.assert_close(small.norm(dim=-1), h.norm(dim=-1))
    before = torch.nn.functional.cosine_similarity(h, u[:, None], dim=-1).acos()
    after = torch.nn.functional.cosine_similarity(small, u[:, None], dim=-1).acos()
    torch.testing.assert_close(before - after, torch.tensor([0.1, 0.2])[:, None].expand_as(before), atol=1e-4,
                               rtol=0)
    full = _rotate(h, u, torch.full((2, 1), math.pi))  # a huge angle stops at the direction itself
    torch.testing.assert_close(full, u[:, None] * h.norm(dim=-1, keepdim=True), atol=1e-4, rtol=1e-4)


def test_finds_decoder_layers(model):
    assert find_decoder_layers(model) is model.model.layers

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(nn.Identity() for _ in range(4))
            self.heads = nn.ModuleList([nn.Identity()])

    odd = Odd()
    assert find_decoder_layers(odd) is odd.blocks


def test_rejects_a_layer_outside_the_model(model, steering):
    with pytest.raises(ValueError):
        steering.set_rows([{7: vec(1)}])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@torch.no_grad()
def test_cuda_bf16_untriggered_row_is_bit_identical(model):
    cuda = LlamaForCausalLM(model.config).to("cuda", torch.bfloat16).eval()
    cuda.load_state_dict(model.state_dict())
    ids, mask, pos = (t.cuda() for t in batch([P1, P2, P1]))
    base = cuda(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
    s = GatedSteering(cuda)
    try:
        s.set_rows([{}, {1: vec(1).cuda()}, {0: Rotate(vec(2, 0.7)), 2: vec(3)}])  # CPU vectors are moved
        steered = cuda(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
        s.clear()
    finally:
        s.remove()
    assert torch.equal(steered[0], base[0])
    assert not torch.equal(steered[1], base[1]) and not torch.equal(steered[2], base[2])


class _FusedResidualLayer(nn.Module):
    """A layer shaped like vLLM's: returns (delta, residual) whose sum is the residual stream."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, x):
        return torch.tanh(self.proj(x)), x


def test_flattened_batch_rows_map_to_their_token_spans_and_others_stay_bit_identical():
    """vLLM flattens a batch to [tokens, hidden]: row i's plan must touch its span only, for adds
    and for rotations of the summed stream (hidden + residual)."""
    torch.manual_seed(0)
    holder = nn.Module()
    holder.layers = nn.ModuleList([_FusedResidualLayer(), _FusedResidualLayer()])
    hooks = GatedSteering(holder, holder.layers, split_residual=True)
    x = torch.randn(7, HIDDEN)  # three requests: tokens 0-2, 3, 4-6
    spans = [(0, 3), (3, 4), (4, 7)]
    with torch.no_grad():
        plain = [layer(x) for layer in holder.layers]
        add, rot = vec(1), Rotate(vec(2, norm=0.5))
        hooks.set_rows([{0: add}, None, {1: rot}], spans=spans)
        steered = [layer(x) for layer in holder.layers]
        hooks.clear()
    first, second = steered
    assert torch.equal(first[0][3:], plain[0][0][3:]) and torch.equal(second[0][:4], plain[1][0][:4])
    assert torch.allclose(first[0][:3], plain[0][0][:3] + add)
    stream_before = plain[1][0][4:] + plain[1][1][4:]
    stream_after = second[0][4:] + second[1][4:]
    assert torch.allclose(stream_after.norm(dim=-1), stream_before.norm(dim=-1), atol=1e-4)  # a turn keeps the norm
    turned = torch.nn.functional.cosine_similarity(stream_after, rot.vector[None], dim=-1)
    assert (turned > torch.nn.functional.cosine_similarity(stream_before, rot.vector[None], dim=-1)).all()
    hooks.remove()
