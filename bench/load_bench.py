"""Load: many concurrent streaming clients, a share of them hanging up mid-stream.

    python -m bench.load_bench [--quick] [--clients 200] [--duration 60] [--max-waiting 64]

Starts a gateway in its own process with a bounded queue, then keeps `--clients` streaming chat
requests in flight for `--duration` seconds; every fifth client closes its connection after the
first few chunks. Reports what a operator needs to trust the gateway under pressure: no 5xx and
no crash, how many requests the bounded queue turned away (429 with Retry-After, retried by the
client after that delay), that no generation is left running once clients are gone (the
engine's running/waiting gauges), and the server's memory before, at peak and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from .common import median, pct, start_gateway, table

PROMPTS = ["Tell a long story about a dragon.", "Describe the history of Rome.", "Explain how engines work.",
           "Write a poem about the sea.", "Describe a busy city at night.", "What is machine learning?"]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gauge(metrics_text: str, name: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


async def client_loop(http: httpx.AsyncClient, model: str, deadline: float, hang_up: bool, stats: Counter,
                      ttfts: list[float], rng: random.Random) -> None:
    while time.monotonic() < deadline:
        body = {"model": model, "messages": [{"role": "user", "content": rng.choice(PROMPTS)}], "stream": True,
                "max_tokens": 48, "temperature": 0.7}
        started = time.monotonic()
        try:
            async with http.stream("POST", "/v1/chat/completions", json=body) as reply:
                if reply.status_code == 429:
                    stats["429"] += 1
                    stats["429 with Retry-After"] += "retry-after" in reply.headers
                    await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
                    continue
                stats[f"{reply.status_code // 100}xx"] += 1
                chunks = 0
                async for line in reply.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        choices = json.loads(line[6:]).get("choices") or [{}]  # a usage chunk has none
                        delta = choices[0].get("delta") or {}
                        if chunks == 0 and delta.get("content"):  # the first chunk only names the role
                            ttfts.append(time.monotonic() - started)
                        chunks += bool(delta.get("content"))
                        if hang_up and chunks >= 3:
                            stats["hung up"] += 1
                            break  # leaving the block closes the connection mid-stream
                else:
                    stats["completed"] += 1
        except httpx.HTTPError as exc:
            stats[f"transport error {type(exc).__name__}"] += 1
            await asyncio.sleep(0.5)


async def run(base_url: str, key: str, model: str, clients: int, duration: float, pid: int) -> dict:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=httpx.Timeout(300, connect=30)) as http:
        stats: Counter = Counter()
        ttfts: list[float] = []
        peak = 0.0
        deadline = time.monotonic() + duration
        tasks = [asyncio.create_task(client_loop(http, model, deadline, i % 5 == 0, stats, ttfts, random.Random(i)))
                 for i in range(clients)]
        while not all(t.done() for t in tasks):
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(1)
        await asyncio.gather(*tasks)
    return {"stats": stats, "ttfts": ttfts, "peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 clients for 20 s")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--max-waiting", type=int, default=64, help="the gateway's queue bound for this run")
    args = parser.parse_args()
    clients, duration = (50, 20.0) if args.quick else (args.clients, args.duration)

    with tempfile.TemporaryDirectory() as tmp:
        server = start_gateway(Path(tmp), {"LETHE_MAX_WAITING": str(args.max_waiting),
                                           "LETHE_REQUESTS_PER_MINUTE": "0"})
        try:
            pid = server.process.pid
            model = httpx.get(server.v1 + "/models", headers={"Authorization": f"Bearer {server.api_key}"}).json()["data"][0]["id"]
            # Warm up, so the baseline includes the allocations any first request makes.
            asyncio.run(run(server.base_url, server.api_key, model, 8, 3, pid))
            time.sleep(2)
            before = rss_mib(pid)
            started = time.monotonic()
            result = asyncio.run(run(server.base_url, server.api_key, model, clients, duration, pid))
            elapsed = time.monotonic() - started
            time.sleep(5)  # let aborted rows leave the batch
            metrics = httpx.get(server.base_url + "/metrics").text
            after = rss_mib(pid)
            alive = server.process.poll() is None
        finally:
            server.stop()

    stats = result["stats"]
    print(f"{clients} streaming clients for {duration:.0f} s ({elapsed:.0f} s with draining), queue bound {args.max_waiting}")
    print(table([[k, v] for k, v in sorted(stats.items())], ["outcome", "count"]))
    ttfts = result["ttfts"] or [float("nan")]
    print(f"time to first token: p50 {median(ttfts):.2f} s, p99 {pct(ttfts, 0.99):.2f} s")
    print(f"after the load: running {gauge(metrics, 'lethe_running_requests'):.0f}, "
          f"waiting {gauge(metrics, 'lethe_waiting_requests'):.0f}, server alive: {alive}")
    print(f"server RSS MiB: before {before:.0f}, peak {result['peak']:.0f}, after {after:.0f} "
          f"(after - before = {after - before:+.0f})")
    print("5xx:", stats.get("5xx", 0), "| transport errors:", sum(v for k, v in stats.items() if k.startswith("transport")))


if __name__ == "__main__":
    main()
