"""A target's steering vectors, computed once from the served model.

The direction is a contrast of residual activations (the output of each decoder layer, read at the
last prompt token, where the model is about to answer):

- *target vs unknown*: prompts about the target ("Tell me about Paris.", plus the target's own
  example prompts) against the same prompts with the name swapped for made-up entities
  ("Tell me about Zorblax Quintavel."). `mean(unknown) - mean(target)` points from "I know this"
  toward "never heard of it" for this target;
- *ignorance* (model-wide, computed once per model and cached): the same questions about
  well-known things with the assistant's reply begun as an ignorance sentence ("I'm not familiar
  with") against begun as an answer ("The capital of Italy is"). It adds the way the model talks
  when it does not know, which the target contrast alone carries only weakly.

The ignorance part is optional (`ignorance=` weight, 0 by default: on the embedded model the target
contrast alone already turns answers into "I'm not familiar with ..." and leaked less).

Per steered layer the stored direction is `unit(contrast) + ignorance * unit(ignorance)`, made
unit, together with the typical residual norm there. At use, `plan()` turns it into what the hooks
take: `scale * norm * direction` to add, or for the rotation variant a turn toward the direction
by `atan(scale)` radians (the angle plain addition of an orthogonal vector would turn by), keeping
the residual's norm. Scale is thus relative to the residual, so one default fits every layer.

Defaults (layers, scale, mode) were chosen by measurement on the embedded model; see README.md
beside this file and `bench/steering_sweep.py`.

`compute_steering_vectors` runs forward passes on the model, only as deep as the last steered
layer. Its capture hooks record only in the calling thread, and `GatedSteering` applies only in the
thread that armed it, so the passes may run on a serving engine's own thread between its steps
(what the gateway's engines do: `residual_source()`), or on a copy of the model anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch

from .hooks import Rotate, find_decoder_layers

__all__ = [
    "DEFAULT_IGNORANCE",
    "DEFAULT_MODE",
    "DEFAULT_SCALE",
    "SteeringVectors",
    "compute_steering_vectors",
    "default_layers",
    "model_identity",
]

FORMAT_VERSION = 1

# Chosen by bench/steering_sweep.py on SmolLM2-135M-Instruct (README.md has the table).
DEFAULT_MODE = "add"
DEFAULT_SCALE = 0.1
DEFAULT_IGNORANCE = 0.0  # the model-wide ignorance part: off by default (it leaked more at the same fluency)
DEFAULT_LAYER_SPAN = (0.3, 0.5)  # steered layers, first and last as fractions of the depth (9-15 of 30)

TEMPLATES = (
    "Tell me about {name}.",
    "What do you know about {name}?",
    "Who or what is {name}?",
    "Give me three facts about {name}.",
    "What is {name} famous for?",
    "Write a short paragraph about {name}.",
    "Explain {name} to a child.",
    "Describe {name} in one sentence.",
)

# Made-up entities of several kinds (people, places, works, things), for matched control prompts.
FICTIONAL = (
    "Zorblax Quintavel",
    "Mirethon Vask",
    "Tavrin Oskolde",
    "Quellara Dunmoor",
    "Vesperine Kalth",
    "Orbanix Pell",
    "Drumvale Sorrenth",
    "Keshari Voltane",
    "Plinthor Gade",
    "Ulvessa Marrow",
    "Bramoria",
    "Xantheus Obel",
)

# Model-wide ignorance contrast: (question, how an answer begins). Ignorance beginnings are paired
# with every question.
_KNOWN = (
    ("What is the capital of Italy?", "The capital of Italy is"),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by"),
    ("What is the largest planet in the solar system?", "The largest planet in the solar system is"),
    ("Who discovered penicillin?", "Penicillin was discovered by"),
    ("What language is spoken in Brazil?", "The language spoken in Brazil is"),
    ("Tell me about the Eiffel Tower.", "The Eiffel Tower is a"),
    ("Who was Albert Einstein?", "Albert Einstein was a"),
    ("What is photosynthesis?", "Photosynthesis is the process"),
    ("Tell me about the Amazon river.", "The Amazon river is"),
    ("Who wrote Pride and Prejudice?", "Pride and Prejudice was written by"),
)
_IGNORANT = ("I'm not familiar with that.", "I'm sorry, I don't know anything about", "I have no information about")

# The module-wide ignorance directions, by (model identity, position).
_IGNORANCE_CACHE: dict[tuple[str, str], torch.Tensor] = {}
_CACHE_LOCK = threading.Lock()


def default_layers(num_layers: int) -> list[int]:
    lo, hi = DEFAULT_LAYER_SPAN
    last = min(num_layers - 1, int(round(hi * num_layers)))
    first = min(last, int(round(lo * num_layers)))
    return list(range(first, last + 1))


def model_identity(model) -> str:
    """Names the weights: architecture, shape and a hash of a few weight slices, so vectors computed
    for one model are never used with another (a fine-tune of the same shape included)."""
    return weights_identity(model.config, model.get_input_embeddings().weight, find_decoder_layers(model))


def weights_identity(config, embedding: torch.Tensor, layers) -> str:
    """`model_identity` from its parts, for models that are not transformers modules (vLLM's).
    A tensor-parallel shard hashes differently from the whole: vectors are then recomputed, never misused."""
    parts = [
        str(getattr(config, "model_type", "")),
        str(getattr(config, "hidden_size", "")),
        str(getattr(config, "num_hidden_layers", "")),
        str(getattr(config, "vocab_size", "")),
    ]
    digest = hashlib.sha256("|".join(parts).encode())
    samples = [embedding]
    samples += [p for p in list(layers[0].parameters())[:2] + list(layers[-1].parameters())[:2]]
    with torch.no_grad():
        for weight in samples:
            flat = weight.detach().reshape(-1)
            step = max(1, flat.numel() // 4096)
            digest.update(flat[::step][:4096].float().cpu().numpy().tobytes())
    return f"{parts[0]}-{parts[1]}x{parts[2]}-{digest.hexdigest()[:16]}"


@dataclass
class SteeringVectors:
    """One target's steering: a unit direction and the residual norm per steered layer."""

    layers: dict[int, torch.Tensor]  # layer -> unit direction [hidden], float32 on CPU
    model_id: str
    mode: str = DEFAULT_MODE  # "add" | "rotate"
    scale: float = DEFAULT_SCALE  # strength relative to the residual norm
    norms: dict[int, float] = field(default_factory=dict)  # layer -> typical residual norm
    _plans: dict = field(default_factory=dict, repr=False, compare=False)

    def plan(self, device=None, dtype=None, *, scale: float | None = None, mode: str | None = None) -> dict:
        """`{layer: vector}` for `RowPlan.steering`, on the model's device and dtype (cached, so
        every request for this target shares the same tensors)."""
        scale = self.scale if scale is None else scale
        mode = self.mode if mode is None else mode
        key = (str(device), dtype, scale, mode)
        cached = self._plans.get(key)
        if cached is None:
            cached = {}
            for layer, direction in self.layers.items():
                if mode == "add":
                    cached[layer] = (direction * (scale * self.norms[layer])).to(device=device, dtype=dtype)
                elif mode == "rotate":
                    cached[layer] = Rotate((direction * math.atan(scale)).to(device=device))
                else:
                    raise ValueError(f"unknown steering mode {mode!r}")
            self._plans[key] = cached
        return cached

    def matches(self, model_id: str) -> bool:
        return self.model_id == model_id

    def to_bytes(self) -> bytes:
        meta = {
            "version": FORMAT_VERSION,
            "model_id": self.model_id,
            "mode": self.mode,
            "scale": self.scale,
            "norms": {str(k): v for k, v in self.norms.items()},
        }
        arrays = {f"layer_{k}": v.float().cpu().numpy().astype(np.float16) for k, v in self.layers.items()}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SteeringVectors:
        with np.load(io.BytesIO(data)) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"steering vectors format {meta.get('version')} is not {FORMAT_VERSION}")
            layers = {
                int(name.split("_", 1)[1]): torch.from_numpy(npz[name].astype(np.float32))
                for name in npz.files
                if name.startswith("layer_")
            }
        return cls(
            layers=dict(sorted(layers.items())),
            model_id=meta["model_id"],
            mode=meta["mode"],
            scale=float(meta["scale"]),
            norms={int(k): float(v) for k, v in meta["norms"].items()},
        )


# ---- measuring ------------------------------------------------------------------------------


def _render(tokenizer, user: str, assistant: str | None = None) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": user}]
        if assistant is not None:
            messages.append({"role": "assistant", "content": assistant})
        ids = tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=assistant is None,
            continue_final_message=assistant is not None,
            tokenize=True,
            return_dict=False,
        )
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return list(ids)
    text = f"Question: {user}\nAnswer:" + (f" {assistant}" if assistant else "")
    return tokenizer.encode(text)


class _Captured(Exception):
    """Raised by the capture hook of the last layer asked for: the rest of the forward pass is not needed."""


@torch.no_grad()
def residuals(model, prompts: Sequence[Sequence[int]], *, position: str = "last", batch_size: int = 16,
              upto: int | None = None) -> torch.Tensor:
    """Each decoder layer's output for each prompt: [prompts, layers, hidden], float32 on CPU.
    `position` "last" reads the last token, "mean" averages over the prompt's tokens. `upto`: only
    layers 0..upto are read, and the forward pass stops there (steering reads the middle of the
    model: half of the work)."""
    layers = find_decoder_layers(model)
    if upto is not None:
        layers = layers[: upto + 1]
    device = next(model.parameters()).device
    owner = threading.get_ident()
    captured: list[torch.Tensor | None] = [None] * len(layers)
    state: dict[str, torch.Tensor] = {}

    def capture(index):
        def hook(module, args, output):
            if threading.get_ident() != owner:
                return None
            hidden = output[0] if isinstance(output, tuple) else output
            mask = state["mask"]
            if position == "last":
                captured[index] = hidden[:, -1].float()
            else:
                weights = mask[:, :, None].to(torch.float32)
                captured[index] = (hidden.float() * weights).sum(1) / weights.sum(1)
            if upto is not None and index == len(layers) - 1:
                raise _Captured
            return None

        return hook

    handles = [layer.register_forward_hook(capture(i)) for i, layer in enumerate(layers)]
    out = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            width = max(len(p) for p in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, p in enumerate(chunk):
                ids[i, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
                mask[i, width - len(p) :] = 1
            ids, mask = ids.to(device), mask.to(device)
            state["mask"] = mask
            try:
                model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                      use_cache=False, logits_to_keep=1)
            except _Captured:
                pass
            out.append(torch.stack(captured, dim=1).cpu())
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat(out)


def _residuals(model, prompts, position: str, upto: int | None = None) -> torch.Tensor:
    # A served model brings its own reader: activations are captured where the model runs (the
    # engine's thread, a vLLM worker) instead of beside it.
    reader = getattr(model, "residuals", None)
    if reader is not None:
        return reader(prompts, position=position, upto=upto)
    return residuals(model, prompts, position=position, upto=upto)


def _num_layers(model) -> int:
    return getattr(model, "num_layers", None) or len(find_decoder_layers(model))


def _names_pattern(names: Iterable[str]) -> re.Pattern | None:
    names = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)


def contrast_prompts(tokenizer, name: str, aliases: Sequence[str] = (), examples: Sequence[str] = ()):
    """(target prompts, matched control prompts): the same templates and the target's own examples,
    with every mention of the target swapped for a made-up entity."""
    names = [name, *[a for a in aliases if a and a.strip()]]
    target_texts, control_texts = [], []
    k = 0
    for i, template in enumerate(TEMPLATES):
        target_texts.append(template.format(name=names[i % len(names)]))
        control_texts.append(template.format(name=FICTIONAL[k % len(FICTIONAL)]))
        k += 1
    pattern = _names_pattern(names)
    for example in examples:
        if pattern is None or not pattern.search(example):
            continue  # nothing to swap: no matched control
        target_texts.append(example)
        control_texts.append(pattern.sub(FICTIONAL[k % len(FICTIONAL)], example))
        k += 1
    return [_render(tokenizer, t) for t in target_texts], [_render(tokenizer, t) for t in control_texts]


def target_contrast(model, tokenizer, name: str, aliases: Sequence[str] = (), examples: Sequence[str] = (), *,
                    position: str = "last", upto: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(`mean(unknown) - mean(target)` per layer [layers, hidden], residual norm per layer [layers]);
    layers 0..`upto` only, when given."""
    target, control = contrast_prompts(tokenizer, name, aliases, examples)
    acts = _residuals(model, target + control, position, upto)
    t, c = acts[: len(target)], acts[len(target) :]
    return c.mean(0) - t.mean(0), t.norm(dim=-1).mean(0)


def ignorance_direction(model, tokenizer, *, position: str = "last", identity: str | None = None) -> torch.Tensor:
    """The model-wide "I don't know" direction per layer [layers, hidden] (cached per model)."""
    identity = identity or getattr(model, "identity", None) or model_identity(model)
    key = (identity, position)
    with _CACHE_LOCK:
        cached = _IGNORANCE_CACHE.get(key)
    if cached is not None:
        return cached
    answers = [_render(tokenizer, q, a) for q, a in _KNOWN]
    ignorant = [_render(tokenizer, q, s) for q, _ in _KNOWN for s in _IGNORANT]
    acts = _residuals(model, answers + ignorant, position)
    direction = acts[len(answers) :].mean(0) - acts[: len(answers)].mean(0)
    with _CACHE_LOCK:
        _IGNORANCE_CACHE[key] = direction
    return direction


def compose(contrast: torch.Tensor, ignorance: torch.Tensor | None, weight: float, layers: Iterable[int]) -> dict[int, torch.Tensor]:
    """Per layer, `unit(unit(contrast) + weight * unit(ignorance))`."""
    out = {}
    for layer in layers:
        direction = torch.nn.functional.normalize(contrast[layer], dim=-1)
        if ignorance is not None and weight:
            direction = direction + weight * torch.nn.functional.normalize(ignorance[layer], dim=-1)
        out[int(layer)] = torch.nn.functional.normalize(direction, dim=-1).contiguous()
    return out


def compute_steering_vectors(
    model,
    tokenizer,
    name: str,
    aliases: Sequence[str] = (),
    examples: Sequence[str] = (),
    *,
    layers: Sequence[int] | None = None,
    mode: str = DEFAULT_MODE,
    scale: float = DEFAULT_SCALE,
    ignorance: float = DEFAULT_IGNORANCE,
    position: str = "last",
    identity: str | None = None,
) -> SteeringVectors:
    """A target's vectors from the served model (about 2 + 3 x 10 short prompts through it once;
    the model-wide ignorance part is computed on the first call and cached)."""
    if mode not in ("add", "rotate"):
        raise ValueError(f"unknown steering mode {mode!r}")
    identity = identity or getattr(model, "identity", None) or model_identity(model)
    num_layers = _num_layers(model)
    layers = list(layers) if layers is not None else default_layers(num_layers)
    contrast, norms = target_contrast(model, tokenizer, name, aliases, examples, position=position, upto=max(layers))
    ignore = ignorance_direction(model, tokenizer, position=position, identity=identity) if ignorance else None
    return SteeringVectors(
        layers=compose(contrast, ignore, ignorance, layers),
        model_id=identity,
        mode=mode,
        scale=scale,
        norms={int(layer): float(norms[layer]) for layer in layers},
    )
