"""Gateway overhead vs the bare engine, same prompts, same run.

    python -m bench.gateway_bench [--quick]

Measures (1) the median latency the HTTP layer adds per request at concurrency 1, (2) total
completion tokens/s at concurrency 1, 4, 8 and 16 through the gateway and through the engine
called in-process, and (3) the gain of batching: tokens/s at concurrency 8 over sequential.
The gateway runs in its own process (as in production) and is called with a plain async HTTP
client, so the figures are the gateway's, not a client SDK's. Bare and gateway requests
alternate one by one, so drift of the machine (heat, other load) hits both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from .common import load_engine, median, start_gateway, table

PROMPTS = [
    "Explain how a bicycle works.", "Describe the water cycle.", "Write a short poem about autumn.",
    "What are the benefits of exercise?", "How do plants make food?", "Describe a busy market.",
    "Explain what a computer does.", "Tell a short story about a dog.", "Why is the sky blue?",
    "How do you bake bread?", "Describe the ocean.", "What is a good breakfast?",
    "Explain how rain forms.", "Describe a mountain hike.", "What makes a good friend?", "How do birds fly?",
]
MAX_TOKENS = 32


async def _bare(engine, prompt: str) -> tuple[float, int]:
    from gateway.engines.base import GenerationRequest, SamplingParams

    ids = engine.render_chat([{"role": "user", "content": prompt}])
    started = time.perf_counter()
    tokens = 0
    request = GenerationRequest(uuid.uuid4().hex, ids, SamplingParams(MAX_TOKENS, temperature=0.0))
    async for out in engine.generate(request):
        tokens = out.token_count
    return time.perf_counter() - started, tokens


async def _http(client, model: str, prompt: str) -> tuple[float, int]:
    started = time.perf_counter()
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": MAX_TOKENS}
    reply = await client.post("/v1/chat/completions", json=body)
    reply.raise_for_status()
    return time.perf_counter() - started, reply.json()["usage"]["completion_tokens"]


async def _throughput(call, concurrency: int, requests: int) -> float:
    pending = list(range(requests))

    async def worker():
        tokens = 0
        while pending:
            i = pending.pop()
            tokens += (await call(PROMPTS[i % len(PROMPTS)]))[1]
        return tokens

    started = time.perf_counter()
    counts = await asyncio.gather(*[worker() for _ in range(concurrency)])
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, for a smoke run")
    args = parser.parse_args()
    repeats = 8 if args.quick else 24
    levels = [1, 4, 8, 16]
    per_level = {1: 4, 4: 8, 8: 16, 16: 32} if args.quick else {1: 8, 4: 16, 8: 32, 16: 64}

    engine = load_engine()
    engine.start()
    server = start_gateway(Path(tempfile.mkdtemp()))
    try:
        import httpx

        model = server.client().models.list().data[0].id
        headers = {"Authorization": f"Bearer {server.api_key}"}

        async def run():
            async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=600) as client:
                bare = lambda p: _bare(engine, p)  # noqa: E731
                http = lambda p: _http(client, model, p)  # noqa: E731
                for call in (bare, http, bare, http):  # warm-up both sides
                    await call(PROMPTS[0])
                pairs = []
                for i in range(repeats):
                    prompt = PROMPTS[i % len(PROMPTS)]
                    pairs.append(((await bare(prompt))[0], (await http(prompt))[0]))
                tps = {c: (await _throughput(bare, c, per_level[c]), await _throughput(http, c, per_level[c]))
                       for c in levels}
                return pairs, tps

        pairs, tps = asyncio.run(run())
    finally:
        server.stop()
        engine.shutdown()

    print(f"\nGateway vs bare engine ({MAX_TOKENS} new tokens/request, greedy)")
    print(table([[c, b, h, h / b] for c, (b, h) in tps.items()],
                ["concurrency", "bare tok/s", "gateway tok/s", "gateway/bare"]))
    bare_lat = [b for b, _ in pairs]
    http_lat = [h for _, h in pairs]
    added = [(h - b) * 1000 for b, h in pairs]
    print(f"\nlatency at concurrency 1: bare median {median(bare_lat) * 1000:.1f} ms, gateway median "
          f"{median(http_lat) * 1000:.1f} ms; added per request (median of paired differences) {median(added):.1f} ms")
    print(f"batching gain, gateway tok/s at concurrency 8 over concurrency 1: {tps[8][1] / tps[1][1]:.2f}x")
    print(f"gateway at concurrency 16 keeps {tps[16][1] / tps[16][0]:.3f}x of the bare engine's tok/s")


if __name__ == "__main__":
    main()
