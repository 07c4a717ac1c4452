"""HF engine vs vLLM engine, and vLLM with interventions on vs off, in one run.

    python -m bench.engine_bench [--quick] [--device cuda --model DIR --tensor-parallel-size N]

Both engines are loaded in this process, behind the same Engine interface the gateway uses, and
get the same prompts (greedy, the same max_tokens). For each concurrency (1, 8, 16) rounds
alternate HF and vLLM so drift of the machine hits both alike; printed are total completion
tokens/s and time to first token (p50/p99) per engine, and the vLLM/HF ratio.

Then, on vLLM at batch 8, rounds alternate untouched rows with rows that carry a full plan: token
bans for a target's names, plain (no new capitalised word or number, as the `ignorance`
intervention asks), and steering vectors for it, computed through the vLLM engine itself (the
residual capture in its workers). The on/off tokens/s ratio is the price of the interventions.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from .common import PROMPTS, ROOT, pct, table

TARGET = ("Harry Potter", ["Hogwarts", "Hermione Granger"])


async def _one(engine, ids: list[int], max_tokens: int, plan=None) -> tuple[float, int, float]:
    from gateway.engines.base import GenerationRequest, SamplingParams

    started = time.perf_counter()
    first, tokens = None, 0
    request = GenerationRequest(uuid.uuid4().hex, ids, SamplingParams(max_tokens, temperature=0.0), plan)
    async for out in engine.generate(request):
        if first is None and out.token_count:
            first = time.perf_counter() - started
        tokens = out.token_count
    return time.perf_counter() - started, tokens, first or 0.0


async def _batch(engine, prompts: list[list[int]], max_tokens: int, plan=None) -> tuple[float, int, list[float]]:
    started = time.perf_counter()
    results = await asyncio.gather(*(_one(engine, ids, max_tokens, plan) for ids in prompts))
    return time.perf_counter() - started, sum(r[1] for r in results), [r[2] for r in results]


def _settings(args, engine: str):
    from gateway.config import Settings

    return Settings.load(ROOT / "configs" / "default.yaml", engine=engine, model=args.model, device=args.device,
                         max_model_len=1024, max_batch_size=max(args.concurrency),
                         tensor_parallel_size=args.tensor_parallel_size)


async def _load(args):
    from gateway.app import build_engine
    from gateway.metrics import Metrics

    hf = build_engine(_settings(args, "hf"), Metrics())
    hf.start()
    vllm = build_engine(_settings(args, "vllm"), Metrics())
    await vllm.load()
    vllm.start()
    import os

    import torch

    # The HF engine computes in this process, vLLM in its worker processes: say what each may use.
    print(f"this process: {torch.get_num_threads()} torch threads on {len(os.sched_getaffinity(0))} cores; "
          f"machine load {os.getloadavg()[0]:.1f}", flush=True)
    return hf, vllm


async def _engines(args, hf, vllm) -> None:
    prompts = [hf.render_chat([{"role": "user", "content": p}]) for p in PROMPTS]
    await _batch(hf, prompts[:2], 4)  # warm-up: first calls pay for lazy initialisation
    await _batch(vllm, prompts[:2], 4)
    rows = []
    for c in args.concurrency:
        batch = [prompts[i % len(prompts)] for i in range(c)]
        stats = {"hf": [0.0, 0, []], "vllm": [0.0, 0, []]}
        for _ in range(args.rounds):
            for name, engine in (("hf", hf), ("vllm", vllm)):
                wall, tokens, ttfts = await _batch(engine, batch, args.max_tokens)
                stats[name][0] += wall
                stats[name][1] += tokens
                stats[name][2] += ttfts
        tps = {k: v[1] / v[0] for k, v in stats.items()}
        rows.append([c, tps["hf"], tps["vllm"], tps["vllm"] / tps["hf"],
                     pct(stats["hf"][2], 0.5) * 1000, pct(stats["vllm"][2], 0.5) * 1000,
                     pct(stats["hf"][2], 0.99) * 1000, pct(stats["vllm"][2], 0.99) * 1000])
        print(f"  concurrency {c} done", flush=True)
    print("\nHF vs vLLM (greedy, max_tokens=%d, %d rounds alternating)" % (args.max_tokens, args.rounds))
    print(table(rows, ["concurrency", "hf tok/s", "vllm tok/s", "vllm/hf", "hf ttft p50 ms", "vllm ttft p50 ms",
                       "hf ttft p99 ms", "vllm ttft p99 ms"]))


async def _interventions(args, vllm) -> None:
    from filters import compile_banned
    from gateway.engines.base import RowPlan
    from gateway.planner import banned_phrases
    from steering import compute_steering_vectors

    name, aliases = TARGET
    source = vllm.residual_source(asyncio.get_running_loop())
    started = time.perf_counter()
    vectors = await asyncio.to_thread(compute_steering_vectors, source, vllm.tokenizer, name, aliases)
    print(f"\nsteering vectors for {name!r} computed through vLLM in {time.perf_counter() - started:.1f} s")

    class _Target:  # what banned_phrases reads of a registered target
        def __init__(self):
            self.name, self.aliases, self.forbidden, self.knowledge = name, aliases, [], None

    plan = RowPlan(steering=vectors.plan(source.device, source.dtype),
                   banned=compile_banned(vllm.tokenizer, banned_phrases(_Target()), plain=True))
    prompts = [vllm.render_chat([{"role": "user", "content": p}]) for p in PROMPTS]
    batch = [prompts[i % len(prompts)] for i in range(8)]
    totals = {"off": [0.0, 0], "on": [0.0, 0]}
    for _ in range(args.rounds * 2):
        for key, row_plan in (("off", None), ("on", plan)):
            wall, tokens, _ = await _batch(vllm, batch, args.max_tokens, row_plan)
            totals[key][0] += wall
            totals[key][1] += tokens
    off, on = (totals[k][1] / totals[k][0] for k in ("off", "on"))
    print("vLLM, batch 8, every row triggered (bans + steering) vs none, alternating:")
    print(table([[off, on, on / off]], ["plain tok/s", "interventions tok/s", "on/off"]))


async def _main(args) -> None:
    hf, vllm = await _load(args)
    try:
        if args.part in ("all", "engines"):
            await _engines(args, hf, vllm)
        if args.part in ("all", "interventions"):
            await _interventions(args, vllm)
    finally:
        hf.shutdown()
        vllm.shutdown()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and tokens")
    parser.add_argument("--device", default="auto", help="cpu | cuda | auto")
    parser.add_argument("--model", default="embedded", help="a transformers model directory (default: embedded)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--part", choices=["all", "engines", "interventions"], default="all")
    parser.add_argument("--max-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.max_tokens = args.max_tokens or (16 if args.quick else 48)
    asyncio.run(_main(args))


if __name__ == "__main__":  # vLLM spawns its engine processes: they must not rerun this
    main()
