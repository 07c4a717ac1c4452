"""Gateway overhead vs the bare engine, same prompts, same run.

    python -m bench.gateway_bench [--quick] [--rounds N] [--targets 100] [--state DIR]

Measures, for a tenant without targets and for one with `--targets` active targets that the
prompts never touch:

1. total completion tokens/s at concurrency 1, 4, 8 and 16, through the gateway (its own process,
   as in production, called with a plain async HTTP client) and through the engine called
   in-process; every level is run `--rounds` times, bare and gateway alternating (the order flips
   each round), and the ratio is reported as the median of the rounds with its min-max spread, so
   drift of a shared machine hits both sides alike and shows in the spread instead of the result;
2. the latency the gateway adds per request at concurrency 1 (median of paired differences) and
   per generated token;
3. CPU seconds per generated token: of the bench process while the bare engine runs, and of the
   server process (all its threads) while the gateway runs.

The gateway's database lives in `--state` (default ~/.cache/lethe/bench/gateway), so the tenant with
targets and its steering vectors (minutes of compute for 100 targets) are made once and reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .common import PROMPTS, load_engine, median, start_gateway, table

MAX_TOKENS = 32
LEVELS = (1, 4, 8, 16)

# Invented people and places: names a model may know nothing about and the prompts above never touch.
_FIRST = ["Aldric", "Brisa", "Corvin", "Delphine", "Eamon", "Fenella", "Gideon", "Halvard", "Isolde", "Jorund"]
_LAST = ["Quillfeather", "Marrowby", "Thistlewood", "Ravensmere", "Oakhurst", "Vellacott", "Greyholm",
         "Ashcombe", "Wyndham-Price", "Callowmere"]


def untouched_targets(count: int) -> list[dict]:
    names = [f"{first} {last}" for last in _LAST for first in _FIRST]
    if count > len(names):
        raise SystemExit(f"--targets is at most {len(names)}")
    return [{"name": name, "description": "a private person whose data must be forgotten"} for name in names[:count]]


def _tenant_with_targets(server, state: Path, count: int) -> str:
    """The key of a tenant with `count` untouched active targets, made on the first run in `state`."""
    saved = state / f"tenant-{count}.json"
    if saved.exists():
        key = json.loads(saved.read_text())["api_key"]
        with server.http(key) as http:
            reply = http.get("/v1/forget-targets")
        if reply.status_code == 200 and len(reply.json()["data"]) == count:
            return key
    key = server.tenant_with(targets=untouched_targets(count))
    saved.write_text(json.dumps({"api_key": key}))
    return key


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    """What one side (bare or a gateway tenant) measured."""

    tps: dict[int, list[float]] = field(default_factory=lambda: {c: [] for c in LEVELS})
    cpu: float = 0.0
    tokens: int = 0


async def _bare(engine, prompt: str) -> tuple[float, int]:
    from gateway.engines.base import GenerationRequest, SamplingParams

    ids = engine.render_chat([{"role": "user", "content": prompt}])
    started = time.perf_counter()
    tokens = 0
    request = GenerationRequest(uuid.uuid4().hex, ids, SamplingParams(MAX_TOKENS, temperature=0.0))
    async for out in engine.generate(request):
        tokens = out.token_count
    return time.perf_counter() - started, tokens


async def _http(client, model: str, key: str, prompt: str) -> tuple[float, int]:
    started = time.perf_counter()
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": MAX_TOKENS}
    reply = await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
    reply.raise_for_status()
    return time.perf_counter() - started, reply.json()["usage"]["completion_tokens"]


async def _throughput(call, concurrency: int, requests: int, side: Side, cpu_now) -> float:
    pending = list(range(requests))

    async def worker():
        tokens = 0
        while pending:
            i = pending.pop()
            tokens += (await call(PROMPTS[i % len(PROMPTS)]))[1]
        return tokens

    cpu_before = cpu_now()
    started = time.perf_counter()
    total = sum(await asyncio.gather(*[worker() for _ in range(concurrency)]))
    elapsed = time.perf_counter() - started
    side.cpu += cpu_now() - cpu_before
    side.tokens += total
    return total / elapsed


def _wait_ready(server, key: str, timeout: float = 1800) -> None:
    """Steering vectors are computed in the background; measure only once none is pending."""
    from tqdm import tqdm

    deadline = time.monotonic() + timeout
    with server.http(key) as http, tqdm(desc="steering vectors", unit="target") as bar:
        while time.monotonic() < deadline:
            targets = http.get("/v1/forget-targets").json()["data"]
            ready = sum(t["status"] != "pending" for t in targets)
            bar.total = len(targets)
            bar.n = ready
            bar.refresh()
            if ready == len(targets):
                return
            time.sleep(2)
    raise SystemExit("steering vectors still pending after the timeout")


def _spread(values: list[float]) -> str:
    return f"{median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per round, for a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="alternations per concurrency level (default 3, quick 2)")
    parser.add_argument("--targets", type=int, default=100, help="untouched active targets of the second tenant (0: skip it)")
    parser.add_argument("--state", type=Path, default=Path.home() / ".cache" / "lethe" / "bench" / "gateway",
                        help="the gateway's database, kept between runs")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    repeats = 6 if args.quick else 16
    per_level = {1: 3, 4: 8, 8: 16, 16: 32} if args.quick else {1: 6, 4: 16, 8: 32, 16: 64}

    engine = load_engine()
    engine.start()
    args.state.mkdir(parents=True, exist_ok=True)
    server = start_gateway(args.state)
    try:
        import httpx

        model = server.client().models.list().data[0].id
        tenants = {"no targets": server.api_key}
        if args.targets:
            tenants[f"{args.targets} untouched targets"] = key = _tenant_with_targets(server, args.state, args.targets)
            _wait_ready(server, key)

        async def run():
            bare_side = Side()
            sides = {name: Side() for name in tenants}
            pairs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in tenants}
            async with httpx.AsyncClient(base_url=server.base_url, timeout=600) as client:
                bare = lambda p: _bare(engine, p)  # noqa: E731
                calls = {name: (lambda p, k=key: _http(client, model, k, p)) for name, key in tenants.items()}
                for call in (bare, *calls.values(), bare, *calls.values()):  # warm-up every side
                    await call(PROMPTS[0])
                for i in range(repeats):
                    prompt = PROMPTS[i % len(PROMPTS)]
                    base_latency, _ = await bare(prompt)
                    for name, call in calls.items():
                        latency, tokens = await call(prompt)
                        pairs[name].append((base_latency, latency, tokens))
                server_cpu = lambda: _cpu_seconds(server.process.pid)  # noqa: E731
                for r in range(rounds):
                    for c in LEVELS:
                        order = [("bare", bare), *calls.items()]
                        if r % 2:
                            order.reverse()
                        for name, call in order:
                            side = bare_side if name == "bare" else sides[name]
                            cpu = time.process_time if name == "bare" else server_cpu
                            side.tps[c].append(await _throughput(call, c, per_level[c], side, cpu))
            return bare_side, sides, pairs

        bare_side, sides, pairs = asyncio.run(run())
    finally:
        server.stop()
        engine.shutdown()

    print(f"\nGateway vs bare engine ({MAX_TOKENS} new tokens/request, greedy, {rounds} alternating rounds per level;"
          " ratio = median of the per-round ratios, min-max in brackets)")
    rows = []
    for c in LEVELS:
        row: list[object] = [c, median(bare_side.tps[c])]
        for side in sides.values():
            row += [median(side.tps[c]), _spread([g / b for g, b in zip(side.tps[c], bare_side.tps[c])])]
        rows.append(row)
    header = ["concurrency", "bare tok/s"]
    for name in sides:
        header += [f"gateway tok/s [{name}]", f"gateway/bare [{name}]"]
    print(table(rows, header))
    print()
    for name, side in sides.items():
        added = [(g - b) * 1000 for b, g, _ in pairs[name]]
        per_token = [(g - b) * 1000 / max(t, 1) for b, g, t in pairs[name]]
        print(f"[{name}] added latency at concurrency 1: {median(added):+.1f} ms/request "
              f"(spread {min(added):+.1f}..{max(added):+.1f}), {median(per_token):+.2f} ms/token; "
              f"CPU per token: server {side.cpu / max(side.tokens, 1) * 1000:.2f} ms vs bare "
              f"{bare_side.cpu / max(bare_side.tokens, 1) * 1000:.2f} ms")
    print(f"(bare latency at concurrency 1: median {median([b for b, _, _ in next(iter(pairs.values()))]) * 1000:.0f} ms; "
          f"stdev of bare tok/s at concurrency 8: {statistics.pstdev(bare_side.tps[8]):.2f})")


if __name__ == "__main__":
    main()
