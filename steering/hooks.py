"""Per-row gated residual hooks on a transformers decoder.

`GatedSteering(model)` puts one forward hook on every decoder layer, once. Before a forward pass
the engine calls `set_rows(plans)` with one plan per batch row (`{layer index: vector}`, empty for
a row that triggered nothing); after it, `clear()`. For each layer that some row uses, the hook
holds the indices of the rows that steer there and a `[rows steered, hidden]` table of their
vectors, and touches those rows only:

- untriggered rows are never written, not even with a zero, so they are bit-identical to the base
  model (the output tensor is copied and only the steered rows of the copy change);
- every position of a steered row is changed, prefill and decode steps alike, so the hook does not
  care about left padding (padding positions are masked out of attention anyway) or the KV cache
  (a decode step is just a sequence of length 1);
- a layer that returns a tuple has its first element changed and the rest passed through;
- with nothing set, or on a layer no row uses, the hook returns at once;
- only forwards in the thread that called `set_rows` are steered, so vectors can be computed on
  the same model from another thread while the engine runs.

A plan's value says how to steer at that layer:

- a tensor `v`: plain addition, `h + v`;
- `Rotate(v)`: norm-preserving, `h` turns toward the direction of `v` by the angle `|v|` radians
  (never past it) in the plane of `h` and `v`, and keeps its norm;
- a list or tuple of those: summed per kind.

`combine()` merges the plans of several targets firing on one row: per layer the additions are
summed (each target keeps its direction rather than being averaged down) and the sum is capped at
the norm of the strongest single one (rotations likewise, by angle). Uncapped, three targets firing
on one question ("¿Quién escribió los libros de Harry Potter?" fired Harry Potter, and semantically
Shakespeare and Japan) pushed three times as hard, and the answer was word salad ("I'm
notingifiical to perform to ensurei"): steering keeps a small model fluent only within a narrow
strength window (steering/README.md).

Plans are treated as immutable: tables are rebuilt only when the list of plan objects changes, so
a running batch whose rows do not change pays for the table once, not at every decode step.

Engines that flatten the batch (vLLM: one `[tokens, hidden]` tensor for all requests) pass
`spans`, each row's `(start, end)` token range, and the per-row tables are expanded to tokens.
`split_residual=True` is for layers that return `(hidden, residual)` whose sum is the residual
stream (vLLM's fused-residual layers): an addition to `hidden` is an addition to the stream, and a
rotation turns the sum.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

__all__ = ["GatedSteering", "Rotate", "combine", "find_decoder_layers"]

# Where common architectures keep their decoder layers; the longest ModuleList is the fallback.
_LAYER_PATHS = (
    "model.layers",  # Llama, Mistral, Qwen, Gemma, Phi-3, SmolLM
    "model.language_model.layers",  # multimodal wrappers
    "language_model.model.layers",
    "model.decoder.layers",  # OPT
    "transformer.h",  # GPT-2, GPT-J, Falcon, Bloom
    "gpt_neox.layers",
    "layers",
)


@dataclass(frozen=True)
class Rotate:
    """A norm-preserving steer: turn the residual toward `vector` by `|vector|` radians."""

    vector: torch.Tensor


def find_decoder_layers(model: nn.Module) -> nn.ModuleList:
    for path in _LAYER_PATHS:
        obj: Any = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ValueError(f"cannot find the decoder layers of {type(model).__name__}")
    return max(lists, key=len)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def combine(plans: Iterable[Mapping[int, Any]]) -> dict[int, Any]:
    """One plan from several targets' plans: per layer, the vectors of each kind are summed and the
    sum capped at the norm of the strongest one (see the module docstring)."""
    out: dict[int, list] = {}
    for plan in plans:
        for layer, value in plan.items():
            out.setdefault(int(layer), []).extend(_as_list(value))
    return {layer: _merged(values) for layer, values in out.items()}


def _merged(values: list):
    if len(values) == 1:
        return values[0]
    adds = [v for v in values if not isinstance(v, Rotate)]
    turns = [v.vector for v in values if isinstance(v, Rotate)]
    merged = ([_capped_sum(adds)] if adds else []) + ([Rotate(_capped_sum(turns))] if turns else [])
    return merged[0] if len(merged) == 1 else tuple(merged)


def _capped_sum(vectors: list[torch.Tensor]) -> torch.Tensor:
    total = torch.stack(vectors).sum(0)
    limit = max(float(v.float().norm()) for v in vectors)
    norm = float(total.float().norm())
    return total * (limit / norm) if norm > limit else total


@dataclass
class _Table:
    """What one layer's hook needs for one forward pass."""

    add_index: torch.Tensor | None = None  # [n] row indices
    add: torch.Tensor | None = None  # [n, hidden]
    rot_index: torch.Tensor | None = None
    rot_dir: torch.Tensor | None = None  # [n, hidden], unit, float32
    rot_angle: torch.Tensor | None = None  # [n, 1], radians, float32


class GatedSteering:
    """Installs gated hooks on `model`'s decoder layers; see the module docstring."""

    def __init__(self, model: nn.Module, layers: nn.ModuleList | None = None, *, split_residual: bool = False):
        self.layers = layers if layers is not None else find_decoder_layers(model)
        self.split_residual = split_residual
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._tables: dict[int, _Table] = {}
        self._key: list[Mapping] | None = None  # the plan objects the tables were built from
        self._built: dict[int, _Table] = {}
        self._spans: tuple | None = None  # the token spans `_tokens` was expanded for
        self._tokens: dict[int, _Table] = {}
        self._owner = 0  # the thread that armed the hooks; forwards in other threads are untouched
        self._handles = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(self.layers)]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def active(self) -> bool:
        return bool(self._tables)

    def set_rows(self, plans: Sequence[Mapping[int, Any] | None],
                 spans: Sequence[tuple[int, int]] | None = None) -> None:
        """Arms the hooks for the next forward pass; `plans[i]` steers batch row i (the tokens
        `spans[i]` of a flattened batch, when given)."""
        if not any(plans):
            self._tables = {}
            return
        if self._key is None or len(self._key) != len(plans) or any(a is not b for a, b in zip(self._key, plans)):
            self._built = self._build(plans)
            self._key = list(plans)
            self._spans = None
        self._owner = threading.get_ident()
        if spans is None:
            self._tables = self._built
            return
        spans = tuple(spans)
        if spans != self._spans:  # decode steps of an unchanged batch keep their spans
            self._tokens = {k: _to_tokens(t, spans) for k, t in self._built.items()}
            self._spans = spans
        self._tables = self._tokens

    def clear(self) -> None:
        """Disarms the hooks (the built tables are kept for the next identical batch)."""
        self._tables = {}

    def remove(self) -> None:
        """Takes the hooks off the model for good."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._tables, self._built, self._key = {}, {}, None

    # ---- building ---------------------------------------------------------------------------

    def _build(self, plans: Sequence[Mapping[int, Any] | None]) -> dict[int, _Table]:
        adds: dict[int, tuple[list[int], list[torch.Tensor]]] = {}
        rots: dict[int, tuple[list[int], list[torch.Tensor]]] = {}
        for row, plan in enumerate(plans):
            for layer, value in (plan or {}).items():
                layer = int(layer)
                if not 0 <= layer < len(self.layers):
                    raise ValueError(f"steering layer {layer} is outside 0..{len(self.layers) - 1}")
                add = [v for v in _as_list(value) if not isinstance(v, Rotate)]
                rot = [v.vector for v in _as_list(value) if isinstance(v, Rotate)]
                if add:
                    rows, vecs = adds.setdefault(layer, ([], []))
                    rows.append(row)
                    vecs.append(_sum(add, self.device, self.dtype))
                if rot:
                    rows, vecs = rots.setdefault(layer, ([], []))
                    rows.append(row)
                    vecs.append(_sum(rot, self.device, torch.float32))
        tables: dict[int, _Table] = {}
        for layer, (rows, vecs) in adds.items():
            table = tables.setdefault(layer, _Table())
            table.add_index = torch.tensor(rows, dtype=torch.long, device=self.device)
            table.add = torch.stack(vecs)
        for layer, (rows, vecs) in rots.items():
            table = tables.setdefault(layer, _Table())
            stacked = torch.stack(vecs)
            angle = stacked.norm(dim=-1, keepdim=True)
            table.rot_index = torch.tensor(rows, dtype=torch.long, device=self.device)
            table.rot_dir = stacked / angle.clamp_min(1e-12)
            table.rot_angle = angle.clamp(max=math.pi)
        return tables

    # ---- the hook ---------------------------------------------------------------------------

    def _hook(self, layer: int):
        def hook(module, args, output):
            tables = self._tables
            if not tables or threading.get_ident() != self._owner:
                return None
            table = tables.get(layer)
            if table is None:
                return None
            if isinstance(output, tuple):
                residual = output[1] if self.split_residual and len(output) > 1 else None
                return (_apply(output[0], table, residual), *output[1:])
            if isinstance(output, torch.Tensor):
                return _apply(output, table)
            raise TypeError(f"decoder layer {layer} returned {type(output).__name__}; expected a tensor or tuple")

        return hook


def _sum(vectors: list, device, dtype) -> torch.Tensor:
    total = vectors[0].to(device=device, dtype=torch.float32)
    for v in vectors[1:]:
        total = total + v.to(device=device, dtype=torch.float32)
    return total.reshape(-1).to(dtype)


def _to_tokens(table: _Table, spans: Sequence[tuple[int, int]]) -> _Table:
    """A per-row table as a per-token one, for a flattened `[tokens, hidden]` batch."""

    def expand(index, values):
        if index is None:
            return None, None
        ranges = [spans[r] for r in index.tolist()]
        lengths = torch.tensor([e - s for s, e in ranges], device=index.device)
        tokens = torch.cat([torch.arange(s, e, device=index.device) for s, e in ranges])
        return tokens, values.repeat_interleave(lengths, dim=0)

    add_index, add = expand(table.add_index, table.add)
    rot_index, rot_dir = expand(table.rot_index, table.rot_dir)
    rot_angle = None if table.rot_index is None else expand(table.rot_index, table.rot_angle)[1]
    return _Table(add_index, add, rot_index, rot_dir, rot_angle)


def _apply(hidden: torch.Tensor, table: _Table, residual: torch.Tensor | None = None) -> torch.Tensor:
    """`hidden` is [batch, seq, hidden] (or [tokens, hidden], each token a row); only the table's
    rows change, in a copy. With `residual`, the stream is `hidden + residual` (see the module doc)."""
    if hidden.dim() == 2:
        flat_residual = None if residual is None else residual[:, None, :]
        return _apply(hidden[:, None, :], table, flat_residual)[:, 0, :]
    if table.add is not None:
        index = table.add_index
        add = table.add.to(hidden.dtype)[:, None, :].expand(len(index), hidden.shape[1], hidden.shape[2])
        hidden = hidden.index_add(0, index, add)
    if table.rot_dir is not None:
        index = table.rot_index
        rows = hidden.index_select(0, index).float()  # [n, seq, hidden]
        if residual is None:
            turned = _rotate(rows, table.rot_dir, table.rot_angle)
        else:
            base = residual.index_select(0, index).float()
            turned = _rotate(rows + base, table.rot_dir, table.rot_angle) - base
        hidden = hidden.index_copy(0, index, turned.to(hidden.dtype))
    return hidden


def _rotate(h: torch.Tensor, direction: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Turns each h[i, t] toward direction[i] by angle[i] (not past it), keeping |h[i, t]|."""
    u = direction[:, None, :]  # [n, 1, hidden]
    norm = h.norm(dim=-1, keepdim=True)
    unit = h / norm.clamp_min(1e-12)
    cos = (unit * u).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    ortho = u - cos * unit  # the part of u orthogonal to h: the way to turn
    ortho_norm = ortho.norm(dim=-1, keepdim=True)
    turn = torch.minimum(angle[:, None, :].expand_as(cos), torch.acos(cos))
    turned = torch.cos(turn) * unit + torch.sin(turn) * ortho / ortho_norm.clamp_min(1e-12)
    # Already aligned (nothing orthogonal to turn along): leave h as it is.
    turned = torch.where(ortho_norm > 1e-6, turned, unit)
    return turned * norm
