"""What runs inside vLLM's worker processes: the thin adapters that put Lethe's per-row
interventions into a vLLM V1 engine. The logic itself is the one the HF engine uses:

- `BanProcessor` is a V1 custom logits processor driven by `filters.banned` (the byte trie and
  `BanState`). A request carries its banned patterns in `SamplingParams.extra_args["lethe_ban"]`;
  each distinct pattern set is compiled once per tokenizer (the same lru cache as in the gateway)
  and each row gets its own `BanState`, primed with the prompt tail and advanced with the row's
  output tokens. Rows follow the persistent batch through `update_state` (removed, added, moved;
  an add or a move onto a row replaces what was there), and rows at or past the batch size are
  never touched, since a finished request does not always show up in `removed`.
- `LetheWorker` is a worker extension (`worker_extension_cls`). `lethe_install` puts
  `steering.hooks.GatedSteering` on the decoder layers and wraps the model runner's
  `_model_forward`: before each forward pass it maps the batch's requests
  (`input_batch.req_ids`) to their token ranges (`query_start_loc`) and arms the hooks with the
  vectors named by `extra_args["lethe_steer"]`. Rows without a key get nothing, not even a zero,
  so they stay bit-identical. vLLM layers return `(hidden, residual)` whose sum is the residual
  stream; adding to `hidden` adds to the stream, and rotation works on the sum.
  The same wrapper captures the residual stream at a request's last prompt token when its
  `extra_args["lethe_capture"]` asks, which is how steering vectors are computed through the served
  engine (no second copy of the model in transformers).

Hooks are Python forward hooks: they fire only when the model runs eagerly (`enforce_eager=True`).
Under torch.compile / CUDA graphs they are silently skipped, which is why the gateway refuses a
compiled configuration with steering on and proves at start that the hooks fire.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

from filters.banned import BannedSet, BanState, compile_patterns, mask_banned
from steering.hooks import GatedSteering, Rotate, find_decoder_layers
from steering.vectors import weights_identity

from ..failpoints import armed

log = logging.getLogger("lethe.vllm_worker")

BAN_KEY = "lethe_ban"
PLAIN_KEY = "lethe_plain"  # the banned set is plain (filters/banned.py): no new specifics
STEER_KEY = "lethe_steer"
CAPTURE_KEY = "lethe_capture"


@lru_cache(maxsize=4)
def _tokenizer(path: str, revision: str | None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, revision=revision)


class _BanRow:
    __slots__ = ("state", "output", "seen")

    def __init__(self, state: BanState, output: list[int]):
        self.state, self.output, self.seen = state, output, 0

    def catch_up(self) -> BanState:
        # `output` is vLLM's live list of the row's generated ids; -1 marks one not yet known.
        while self.seen < len(self.output) and self.output[self.seen] >= 0:
            self.state.advance(self.output[self.seen])
            self.seen += 1
        return self.state


class BanProcessor(LogitsProcessor):
    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        config = vllm_config.model_config
        self._tokenizer_ref = (config.tokenizer, config.tokenizer_revision)
        self._rows: dict[int, _BanRow] = {}
        self._batch_size = 0
        self._end_id = _tokenizer(*self._tokenizer_ref).eos_token_id

    @classmethod
    def validate_params(cls, params) -> None:
        patterns = (params.extra_args or {}).get(BAN_KEY)
        if patterns is not None and not (isinstance(patterns, list) and all(isinstance(p, str) for p in patterns)):
            raise ValueError(f"extra_args[{BAN_KEY!r}] must be a list of strings")

    def is_argmax_invariant(self) -> bool:
        return False  # a ban changes what greedy picks

    def _banned_set(self, patterns: list[str], plain: bool) -> BannedSet:
        return compile_patterns(_tokenizer(*self._tokenizer_ref), patterns, plain)

    def _new_row(self, params, prompt_ids, output_ids) -> _BanRow | None:
        extra = (params.extra_args or {}) if params is not None else {}
        patterns, plain = extra.get(BAN_KEY), bool(extra.get(PLAIN_KEY))
        if not patterns and not plain:
            return None
        return _BanRow(self._banned_set(patterns or [], plain).start(prompt_ids or ()), output_ids)

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is not None:
            self._batch_size = batch_update.batch_size
        process_dict_updates(self._rows, batch_update, self._new_row)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._rows:
            return logits
        states: list[BanState | None] = [None] * logits.shape[0]
        for index, row in self._rows.items():
            if index < min(self._batch_size, len(states)):
                states[index] = row.catch_up()
        mask_banned(logits, states, self._end_id)
        return logits


# ---- steering vectors on the wire ------------------------------------------------------------


# collective_rpc carries plain data (tensors arrive as lists), so vectors travel as float lists.


def plan_to_wire(plan: dict) -> dict[int, list[tuple[str, list[float]]]]:
    """A RowPlan.steering dict as plain data for collective_rpc: {layer: [(kind, floats)]}."""
    out = {}
    for layer, value in plan.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        out[int(layer)] = [("rotate", v.vector.detach().float().cpu().tolist()) if isinstance(v, Rotate)
                           else ("add", v.detach().float().cpu().tolist()) for v in items]
    return out


def plan_from_wire(wire: dict, device, dtype) -> dict:
    plan = {}
    for layer, items in wire.items():
        values = [Rotate(torch.tensor(t, device=device)) if kind == "rotate"
                  else torch.tensor(t, dtype=dtype, device=device) for kind, t in items]
        plan[int(layer)] = values[0] if len(values) == 1 else tuple(values)
    return plan


# ---- the worker extension ----------------------------------------------------------------------


class LetheWorker:
    """Mixed into vLLM's worker class; its methods are called with `collective_rpc`."""

    def lethe_install(self) -> dict:
        runner = self.model_runner
        if getattr(runner, "_lethe_installed", False):
            return self._lethe_info
        if not hasattr(runner, "_model_forward") or not hasattr(runner, "input_batch"):
            raise RuntimeError(f"{type(runner).__name__} is not vLLM's V1 model runner: Lethe cannot steer on it")
        model = runner.get_model()
        layers = find_decoder_layers(model)
        param = next(model.parameters())
        self._lethe_steering = GatedSteering(model, layers, split_residual=True)
        self._lethe_vectors: dict[str, dict] = {}
        self._lethe_captures: dict[str, dict[int, torch.Tensor]] = {}
        self._lethe_capture_at: list[tuple[int, str]] = []  # (token position, capture id) in this pass
        self._lethe_lock = threading.Lock()
        for i, layer in enumerate(layers):
            layer.register_forward_hook(self._lethe_capture_hook(i))
        forward = runner._model_forward

        skip = armed("steering_hooks")  # stands in for a runner where the hooks never fire (tests)

        def steered_forward(*args, **kwargs):
            if not skip:
                self._lethe_arm()
            try:
                return forward(*args, **kwargs)
            finally:
                self._lethe_steering.clear()
                self._lethe_capture_at = []

        runner._model_forward = steered_forward
        runner._lethe_installed = True
        embed = next((p for n, p in model.named_parameters() if "embed" in n), param)
        config = self.model_runner.model_config.hf_config
        self._lethe_info = {
            "num_layers": len(layers),
            "hidden_size": self.model_runner.model_config.get_hidden_size(),
            "identity": weights_identity(config, embed, layers),
            "runner": type(runner).__name__,
            "device": str(param.device),
            "dtype": str(param.dtype).removeprefix("torch."),
        }
        self._lethe_device, self._lethe_dtype = param.device, param.dtype
        return self._lethe_info

    def lethe_put_vectors(self, key: str, wire: dict) -> bool:
        plan = plan_from_wire(wire, self._lethe_device, self._lethe_dtype)
        with self._lethe_lock:
            self._lethe_vectors[key] = plan
        return True

    def lethe_take_captures(self, capture_ids: list[str]) -> dict:
        with self._lethe_lock:
            taken = {cid: self._lethe_captures.pop(cid, {}) for cid in capture_ids}
        return {cid: {layer: t.tolist() for layer, t in layers.items()} for cid, layers in taken.items()}

    # ---- per forward pass ---------------------------------------------------------------------

    def _lethe_arm(self) -> None:
        runner = self.model_runner
        batch = runner.input_batch
        n = batch.num_reqs
        if n == 0:
            return
        starts = runner.query_start_loc.np[: n + 1].tolist()
        plans: list[dict | None] = []
        spans: list[tuple[int, int]] = []
        for i, req_id in enumerate(batch.req_ids[:n]):
            state = runner.requests.get(req_id)
            extra = state.sampling_params.extra_args if state is not None and state.sampling_params else None
            plan = None
            if extra:
                key = extra.get(STEER_KEY)
                if key is not None:
                    plan = self._lethe_vectors.get(key)
                    if plan is None:  # the gateway sends vectors before the request: never unsteered silently
                        raise RuntimeError(f"steering vectors {key} were never sent to this worker")
                capture = extra.get(CAPTURE_KEY)
                if capture is not None:
                    done, prompt = int(batch.num_computed_tokens_cpu[i]), int(batch.num_prompt_tokens[i])
                    if done < prompt <= done + starts[i + 1] - starts[i]:  # this pass reaches the last prompt token
                        self._lethe_capture_at.append((starts[i] + prompt - 1 - done, capture))
            plans.append(plan)
            spans.append((starts[i], starts[i + 1]))
        if any(plans):
            self._lethe_steering.set_rows(plans, spans=spans)

    def _lethe_capture_hook(self, index: int):
        def hook(module, args, output):
            if not self._lethe_capture_at:
                return None
            stream = output[0] + output[1] if isinstance(output, tuple) and len(output) > 1 and output[1] is not None \
                else (output[0] if isinstance(output, tuple) else output)
            with self._lethe_lock:
                for position, cid in self._lethe_capture_at:
                    self._lethe_captures.setdefault(cid, {})[index] = stream[position].float().cpu()
            return None

        return hook
