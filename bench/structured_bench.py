"""Cost of structured outputs: decode tokens/s with a json_schema grammar on vs off.

    python -m bench.structured_bench [--quick] [--rounds 3] [--max-tokens 48]

The in-process engine serves the same greedy prompts at batch 1 and batch 8, once free and once
constrained by a JSON schema (an object with one long string, so every row runs to max_tokens
as free ones do). Rounds alternate sides so machine drift hits both; the table shows medians and
the on/off ratio. The grammar's own cost per decode step (the bitmask fill and apply for every
row, and the matcher advance) is then timed alone by replaying the constrained rows' tokens,
which stays exact when other load makes tokens/s noisy. Goal: at most 10% slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

from .common import load_engine, table

PROMPTS = [
    "Describe the water cycle.", "Write a short poem about autumn.", "What are the benefits of exercise?",
    "How do plants make food?", "Describe a busy market.", "Explain what a computer does.",
    "Tell a short story about a dog.", "Explain how a bicycle works.",
]
# A long minimum length keeps every constrained row going to max_tokens, like the free rows:
# a batch whose rows end at different times would shrink and measure that instead of the mask.
SCHEMA = json.dumps({"type": "object", "properties": {"answer": {"type": "string", "minLength": 2000}},
                     "required": ["answer"], "additionalProperties": False})


async def _run(engine, structured, batch: int, max_tokens: int) -> tuple[float, float, list[list[int]]]:
    """Decode tokens/s (from each row's first token to its last, so prefill and answer length
    do not enter), mean tokens per answer, and the rows' token ids."""
    from gateway.engines.base import GenerationRequest, SamplingParams

    async def one(prompt: str) -> tuple[int, list[int], float, float]:
        ids = engine.render_chat([{"role": "user", "content": prompt}])
        params = SamplingParams(max_tokens, temperature=0.0, structured=structured)
        tokens, text, first, last = 0, "", None, 0.0
        async for out in engine.generate(GenerationRequest(uuid.uuid4().hex, ids, params)):
            now = time.perf_counter()
            first = now if first is None else first
            tokens, text, last = out.token_count, text + out.text, now
        # Ids for the replay; re-encoding the text may merge a few, so counts come from the engine.
        return tokens, engine.tokenizer.encode(text, add_special_tokens=False)[:tokens], first, last

    results = await asyncio.gather(*(one(PROMPTS[i % len(PROMPTS)]) for i in range(batch)))
    counts = [n for n, _, _, _ in results]
    span = max(last for *_, last in results) - min(first for _, _, first, _ in results)
    return sum(max(n - 1, 0) for n in counts) / max(span, 1e-9), sum(counts) / batch, [s for _, s, _, _ in results]


def mask_step_ms(engine, structured, streams: list[list[int]]) -> float:
    """Milliseconds per decode step the grammar adds to a batch of len(streams) rows."""
    import torch

    from filters.grammar import mask_grammar

    grammars = engine.grammars()
    states = [grammars.matcher(structured.json) for _ in streams]
    logits = torch.zeros(len(streams), engine.vocab_size)
    steps = max(map(len, streams))
    started = time.perf_counter()
    for step in range(steps):
        mask_grammar(logits, [s if step < len(stream) else None for s, stream in zip(states, streams)])
        for state, stream in zip(states, streams):
            if step < len(stream):
                state.advance(stream[step])
    return 1000 * (time.perf_counter() - started) / max(steps, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and tokens")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    rounds, max_tokens = (2, 32) if args.quick else (args.rounds, args.max_tokens)

    from gateway.engines.base import StructuredOutput

    engine = load_engine(max_batch_size=8)
    engine.start()
    structured = StructuredOutput(json=SCHEMA)
    started = time.perf_counter()
    engine.grammars().compile(SCHEMA)
    compile_ms = 1000 * (time.perf_counter() - started)
    rows, replay = [], {}
    try:
        asyncio.run(_run(engine, None, 1, 4))  # warm-up
        for batch in (1, 8):
            speeds = {"off": [], "on": []}
            lengths = {"off": [], "on": []}
            for r in range(rounds):
                for side in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    speed, length, streams = asyncio.run(
                        _run(engine, structured if side == "on" else None, batch, max_tokens))
                    speeds[side].append(speed)
                    lengths[side].append(length)
                    if side == "on":
                        replay[batch] = streams
            off, on = statistics.median(speeds["off"]), statistics.median(speeds["on"])
            step_ms = 1000 * batch / off  # one decode step of the whole batch, unconstrained
            mask_ms = mask_step_ms(engine, structured, replay[batch])
            rows.append([batch, off, on, on / off, statistics.mean(lengths["off"]), statistics.mean(lengths["on"]),
                         step_ms, mask_ms, mask_ms / step_ms])
    finally:
        engine.shutdown()
    print(f"grammar compile (first time, then cached): {compile_ms:.1f} ms")
    print(table(rows, ["batch", "decode tok/s off", "on", "on/off", "tokens off", "on", "step ms",
                      "mask ms/step", "mask/step"]))
    print("goal: on/off >= 0.90 (at most 10% slower)")


if __name__ == "__main__":
    main()
