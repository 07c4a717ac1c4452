"""Decode throughput with steering hooks: steered vs unsteered rows, at batch 1, 8 and 32, in one run.

Each variant prefills a batch of random prompts and then times greedy decode steps the way the
engine runs them (left-padded mask, KV cache, `set_rows` before and `clear()` after each forward,
`logits_to_keep=1`). Variants:

- `no hooks`: the bare model, the reference every ratio is taken against;
- `untriggered`: hooks installed, no row steered (what every request that triggers nothing pays);
- `half`: half the rows steered on the default layers; `all`: every row steered;
- `all, rebuilt`: every row steered and the per-layer tables rebuilt at every step (the worst
  case: the batch's composition changing at every step).

    python -m bench.steering_bench                       # embedded model on CPU
    python -m bench.steering_bench --shape llama3-8b     # Llama-3-8B shape, random bf16 weights, CUDA
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import DynamicCache  # noqa: E402

from bench.common import table  # noqa: E402
from steering import GatedSteering, Rotate, default_layers  # noqa: E402


def load(args):
    if args.shape == "llama3-8b":
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(
            hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
            num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
        )
        device = torch.device(args.device or "cuda")
        torch.set_default_dtype(torch.bfloat16)
        with device:
            model = LlamaForCausalLM(config)
        torch.set_default_dtype(torch.float32)
        return model.eval(), "Llama-3-8B shape (random bf16)"
    from transformers import AutoModelForCausalLM

    from gateway.model_loader import resolve_model

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(resolve_model("embedded").path, dtype=dtype).to(device)
    return model.eval(), f"SmolLM2-135M-Instruct ({str(dtype).removeprefix('torch.')})"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def decode_rate(model, steering, plans, batch: int, prompt_len: int, steps: int, rebuild: bool = False) -> float:
    """Decode tokens per second (all rows) over `steps` steps after a prefill."""
    device = next(model.parameters()).device
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(batch)
    lengths = [prompt_len - (i * 7) % (prompt_len // 2) for i in range(batch)]  # ragged: real left padding
    ids = torch.zeros((batch, prompt_len), dtype=torch.long)
    mask = torch.zeros((batch, prompt_len), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, prompt_len - n :] = torch.randint(0, vocab, (n,), generator=g)
        mask[i, prompt_len - n :] = 1
    ids, mask = ids.to(device), mask.to(device)
    cache = DynamicCache()

    def forward(input_ids, attention_mask, position_ids):
        if steering is not None:
            if rebuild:
                steering._key = None
            steering.set_rows(list(plans))
        try:
            out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        past_key_values=cache, use_cache=True, logits_to_keep=1)
        finally:
            if steering is not None:
                steering.clear()
        return out.logits[:, -1].argmax(-1, keepdim=True)

    token = forward(ids, mask, (mask.cumsum(-1) - 1).clamp(min=0))
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        pos = mask.sum(-1, keepdim=True)
        mask = torch.cat([mask, torch.ones_like(pos)], dim=-1)
        token = forward(token, mask, pos)
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded", help="the served model (embedded)")
    ap.add_argument("--shape", choices=["llama3-8b"], default=None, help="random weights of this shape instead")
    ap.add_argument("--device", default=None)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None, help="decode steps timed (default 64 on CUDA, 16 on CPU)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="add", help="add, rotate or add,rotate")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats = 1

    model, label = load(args)
    device = next(model.parameters()).device
    steps = args.steps or (64 if device.type == "cuda" else 16)
    layers = default_layers(model.config.num_hidden_layers)
    hidden = model.config.hidden_size
    g = torch.Generator().manual_seed(0)
    vectors = {}
    for layer in layers:
        v = torch.randn(hidden, generator=g)
        vectors[layer] = v / v.norm()
    add_plan = {layer: (v * 2.0).to(device=device, dtype=model.dtype) for layer, v in vectors.items()}
    rot_plan = {layer: Rotate((v * 0.5).to(device)) for layer, v in vectors.items()}
    print(f"{label} on {device}; steered layers {layers[0]}-{layers[-1]} of {model.config.num_hidden_layers}; "
          f"prompt {args.prompt_len} tokens, {steps} decode steps, best of {args.repeats}", flush=True)

    steering = GatedSteering(model)
    steering.remove()  # installed per variant below, so `no hooks` really has none
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        variants = [("no hooks", None, False, None), ("untriggered", "none", False, None)]
        for mode in args.modes.split(","):
            plan = add_plan if mode == "add" else rot_plan
            half = [plan if i % 2 == 0 else {} for i in range(batch)] if batch > 1 else None
            if half is not None:
                variants.append((f"half ({mode})", "set", False, half))
            variants.append((f"all ({mode})", "set", False, [plan] * batch))
            variants.append((f"all ({mode}), rebuilt", "set", True, [plan] * batch))
        rates: dict[str, list[float]] = {name: [] for name, *_ in variants}
        decode_rate(model, None, [{}] * batch, batch, args.prompt_len, 2)  # warm-up
        for _ in range(args.repeats):
            for name, kind, rebuild, plans in variants:  # interleaved, so drift hits all alike
                hooks = None if kind is None else GatedSteering(model)
                try:
                    rates[name].append(decode_rate(model, hooks, plans or [{}] * batch, batch, args.prompt_len,
                                                   steps, rebuild))
                finally:
                    if hooks is not None:
                        hooks.remove()
        base, base_median = max(rates["no hooks"]), statistics.median(rates["no hooks"])
        for name, *_ in variants:
            best, median = max(rates[name]), statistics.median(rates[name])
            rows.append([batch, name, round(best, 1), round(median, 1), f"{best / base:.3f}", f"{median / base_median:.3f}"])
        print(table(rows[-len(variants):], HEADER), flush=True)
    print()
    print(table(rows, HEADER))


HEADER = ["batch", "variant", "tok/s best", "tok/s median", "ratio (best)", "ratio (median)"]


if __name__ == "__main__":
    main()
