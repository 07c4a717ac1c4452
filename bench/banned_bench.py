"""Cost of token restriction: decode tokens/s with 1,000 banned sequences active vs none.

    python -m bench.banned_bench [--quick] [--phrases 1000]

The in-process engine serves the same greedy prompts twice per round: rows with no plan, and
rows whose plan bans `--phrases` made-up names (each compiled with its case, space and
possessive variants, plus the stream guard over the same names). The names never occur in the
answers, so both sides generate the same tokens and the ratio is the pure cost of the per-row
trie state, the logits mask and the guard. Rounds alternate sides so machine drift hits both.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

from .common import load_engine, table

PROMPTS = [
    "Explain how a bicycle works.", "Describe the water cycle.", "Write a short poem about autumn.",
    "What are the benefits of exercise?", "How do plants make food?", "Describe a busy market.",
    "Explain what a computer does.", "Tell a short story about a dog.",
]
SYLLABLES = ["ka", "lo", "mir", "ven", "tal", "dra", "sho", "quin", "bel", "zor", "ath", "ri", "mon", "vek", "lu", "gar"]


def made_up_names(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()

    return [f"{word()} {word()}" if i % 2 else word() for i in range(count)]


async def _run(engine, plan, concurrency: int, max_tokens: int) -> tuple[float, int, list[str]]:
    from gateway.engines.base import GenerationRequest, SamplingParams

    async def one(prompt: str) -> tuple[int, str]:
        ids = engine.render_chat([{"role": "user", "content": prompt}])
        request = GenerationRequest(uuid.uuid4().hex, ids, SamplingParams(max_tokens, temperature=0.0), plan)
        tokens, text = 0, ""
        async for out in engine.generate(request):
            tokens, text = out.token_count, text + out.text
        return tokens, text

    started = time.perf_counter()
    results = await asyncio.gather(*(one(PROMPTS[i % len(PROMPTS)]) for i in range(concurrency)))
    total = sum(tokens for tokens, _ in results)
    return total / (time.perf_counter() - started), total, [text for _, text in results]


def filter_step_ms(engine, plan, texts: list[str]) -> float:
    """Milliseconds per decode step the filters add to a batch of len(texts) rows, timed alone.

    Replays the rows' real tokens through what the engine runs per step for a restricted row:
    the logits mask, the trie advance and the stream guard. Timing it apart from the forward
    pass keeps the figure exact even when other load makes tokens/s noisy.
    """
    import torch

    from filters import mask_banned

    tokenizer = engine.tokenizer
    streams = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    prompts = [engine.render_chat([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]) for i in range(len(texts))]
    states = [plan.banned.start(p) for p in prompts]
    guards = [plan.guard.start() for _ in texts]
    logits = torch.zeros(len(texts), len(tokenizer))
    steps = max(map(len, streams))
    started = time.perf_counter()
    for step in range(steps):
        mask_banned(logits, states)
        for row, stream in enumerate(streams):
            if step < len(stream):
                states[row].advance(stream[step])
                guards[row].feed(tokenizer.decode(stream[step : step + 1]))
    return (time.perf_counter() - started) * 1000 / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and tokens (about a minute)")
    parser.add_argument("--phrases", type=int, default=1000)
    args = parser.parse_args()

    from filters import GuardPatterns, compile_banned
    from gateway.engines.base import RowPlan

    engine = load_engine()
    engine.start()
    names = made_up_names(args.phrases)
    started = time.perf_counter()
    banned = compile_banned(engine.tokenizer, names)
    guard = GuardPatterns(names)
    compile_ms = (time.perf_counter() - started) * 1000
    restricted = RowPlan(banned=banned, guard=guard)
    # A triggered row under `ignorance` also keeps out new specifics, made-up words and other scripts.
    ignorant = RowPlan(banned=compile_banned(engine.tokenizer, names, plain=True), guard=guard)
    rounds, max_tokens = (3, 32) if args.quick else (5, 64)

    async def measure():
        rows = []
        await _run(engine, None, 1, 4)  # warm-up
        for concurrency in (1, 8):
            plain, ban = [], []
            for _ in range(rounds):
                plain_tps, plain_tokens, texts = await _run(engine, None, concurrency, max_tokens)
                ban_tps, ban_tokens, _ = await _run(engine, restricted, concurrency, max_tokens)
                assert plain_tokens == ban_tokens, "the made-up names changed the output"
                plain.append(plain_tps)
                ban.append(ban_tps)
            p, b = statistics.median(plain), statistics.median(ban)
            step_ms = concurrency / p * 1000  # a decode step makes one token per row
            filters_ms = statistics.median(filter_step_ms(engine, restricted, texts) for _ in range(3))
            plain_ms = statistics.median(filter_step_ms(engine, ignorant, texts) for _ in range(3))
            rows.append([concurrency, p, b, b / p, step_ms, filters_ms, step_ms / (step_ms + filters_ms),
                         plain_ms, step_ms / (step_ms + plain_ms)])
        return rows

    try:
        rows = asyncio.run(measure())
    finally:
        engine.shutdown()
    print(f"{len(banned)} banned byte patterns from {args.phrases} names; compile + guard build {compile_ms:.0f} ms")
    print(table(rows, ["concurrency", "plain tok/s", f"{args.phrases} banned tok/s", "measured ratio",
                       "step ms", "filters ms/step", "ratio from step cost", "plain set ms/step",
                       "plain ratio from step cost"]))
    print(f"worst measured ratio {min(r[3] for r in rows):.3f}, worst ratio from step cost "
          f"{min(r[6] for r in rows):.3f} (target >= 0.97: at most 3% fewer tokens/s)")


if __name__ == "__main__":
    main()
