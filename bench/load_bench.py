"""Load: many concurrent streaming clients, a share of them hanging up mid-stream.

    python -m bench.load_bench [--quick] [--clients 200] [--duration 60] [--max-waiting 64]
    python -m bench.load_bench --abuse [--quick]

Starts a gateway in its own process with a bounded queue, then keeps `--clients` streaming chat
requests in flight for `--duration` seconds; every fifth client closes its connection after the
first few chunks. Reports what a operator needs to trust the gateway under pressure: no 5xx and
no crash, how many requests the bounded queue turned away (429 with Retry-After, retried by the
client after that delay), that no generation is left running once clients are gone (the
engine's running/waiting gauges), and the server's memory before, at peak and after.

`--abuse` measures what input can buy instead. Normal clients (short chats, on a tenant with
targets) run alone and beside abusers, alternating phase by phase: abusers send long texts of
unique sentences (each as long as the context allows, so detection cannot be cached) and floods of
tiny /detect calls. It prints the normal requests' p50/p99 latency without vs with the abuse,
and the server's CPU-seconds (user + system, all threads, from /proc) per abusive request against
a request of the same text on a tenant without targets, which runs no detection (goal: x2 at most).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


ABUSE_WORDS = ("river lamp stone quiet market orchard letter window garden harbour bridge candle winter meadow "
               "copper violin tunnel lantern ribbon falcon").split()


def unique_text(rng: random.Random, chars: int) -> str:
    """Sentences never sent before (a random number in each), so no cache can help."""
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < chars:
        out.append(" ".join(rng.choice(ABUSE_WORDS) for _ in range(rng.randrange(6, 14))).capitalize()
                   + f" {rng.randrange(10 ** 6)}.")
    return " ".join(out)


async def normal_loop(http, model, deadline, latencies, stats, rng) -> None:
    while time.monotonic() < deadline:
        body = {"model": model, "messages": [{"role": "user", "content": rng.choice(PROMPTS)}], "max_tokens": 8,
                "temperature": 0}
        started = time.monotonic()
        reply = await http.post("/v1/chat/completions", json=body)
        stats[f"normal {reply.status_code}"] += 1
        if reply.status_code == 200:
            latencies.append(time.monotonic() - started)


async def long_text_loop(http, model, deadline, chars, stats, rng) -> None:
    while time.monotonic() < deadline:
        body = {"model": model, "messages": [{"role": "user", "content": unique_text(rng, chars)}], "max_tokens": 1}
        reply = await http.post("/v1/chat/completions", json=body)
        stats[f"long text {reply.status_code}"] += 1


async def tiny_detect_loop(http, deadline, stats, rng) -> None:
    while time.monotonic() < deadline:
        body = {"messages": [{"role": "user", "content": f"Is {rng.randrange(10 ** 9)} a number?"}]}
        reply = await http.post("/v1/forget-targets/detect", json=body)
        stats[f"tiny detect {reply.status_code}"] += 1
        if reply.status_code == 429:
            await asyncio.sleep(float(reply.headers.get("retry-after", "1")))


async def abuse_phase(base_url, keys, model, seconds, abusive, chars, seed) -> tuple[list[float], Counter]:
    rng = random.Random(seed)
    latencies: list[float] = []
    stats: Counter = Counter()
    deadline = time.monotonic() + seconds

    def client(key):
        return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=httpx.Timeout(300, connect=30))

    async with client(keys["normal"]) as normal, client(keys["abuser"]) as abuser:
        tasks = [normal_loop(normal, model, deadline, latencies, stats, random.Random(rng.random())) for _ in range(4)]
        if abusive:
            tasks += [long_text_loop(abuser, model, deadline, chars, stats, random.Random(rng.random())) for _ in range(2)]
            tasks += [tiny_detect_loop(abuser, deadline, stats, random.Random(rng.random())) for _ in range(4)]
        await asyncio.gather(*tasks)
    return latencies, stats


def cost_per_request(server, keys, model, chars, repeats) -> dict[str, list[float]]:
    """Server CPU-seconds for the same request on a tenant with targets (detection runs) and one
    without (it does not), alternating; the server is otherwise idle."""
    rng = random.Random(1)
    pid = server.process.pid
    costs: dict[str, list[float]] = {k: [] for k in ("long, targets", "long, none", "tiny detect", "tiny chat, none")}
    with httpx.Client(base_url=server.base_url, timeout=300) as http:
        def measure(label, key, path, body):
            before = cpu_seconds(pid)
            reply = http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
            assert reply.status_code == 200, reply.text[:300]
            costs[label].append(cpu_seconds(pid) - before)

        for _ in range(repeats):
            text = unique_text(rng, chars)  # one text for both sides, fresh for every pair
            chat = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 1}
            measure("long, targets", keys["abuser"], "/v1/chat/completions", chat)
            measure("long, none", keys["plain"], "/v1/chat/completions", chat)
            tiny = f"Is {rng.randrange(10 ** 9)} a number?"
            for _ in range(10):
                measure("tiny detect", keys["abuser"], "/v1/forget-targets/detect",
                        {"messages": [{"role": "user", "content": tiny + str(rng.random())}]})
                measure("tiny chat, none", keys["plain"], "/v1/chat/completions",
                        {"model": model, "messages": [{"role": "user", "content": tiny}], "max_tokens": 1})
    return costs


def abuse_main(args) -> None:
    phase_s, rounds, repeats = (8.0, 2, 2) if args.quick else (20.0, 3, 4)
    targets = [{"name": "Harry Potter", "description": "the boy wizard book series"},
               {"name": "Marie Curie", "description": "the physicist who discovered radium"}]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_gateway(Path(tmp), {"LETHE_REQUESTS_PER_MINUTE": "0",
                                           "LETHE_INTERVENTIONS": "instruction,tokens,guard"})
        try:
            keys = {"normal": server.tenant_with(targets=targets), "abuser": server.tenant_with(targets=targets),
                    "plain": server.tenant_with()}
            model = httpx.get(server.v1 + "/models", headers={"Authorization": f"Bearer {server.api_key}"}).json()["data"][0]["id"]
            # As long as the context allows: about 4 characters a token, a margin for the template.
            chars = int(3.2 * int(server.env.get("LETHE_MAX_MODEL_LEN", 4096)))
            costs = cost_per_request(server, keys, model, chars, repeats)
            calm: list[float] = []
            loaded: list[float] = []
            stats: Counter = Counter()
            started = time.monotonic()
            for r in range(rounds):  # alternating phases, so the box's own load hits both alike
                lat, st = asyncio.run(abuse_phase(server.base_url, keys, model, phase_s, False, chars, 2 * r))
                calm += lat
                stats.update(st)
                lat, st = asyncio.run(abuse_phase(server.base_url, keys, model, phase_s, True, chars, 2 * r + 1))
                loaded += lat
                stats.update(st)
            elapsed = time.monotonic() - started
            alive = server.process.poll() is None
        finally:
            server.stop()

    print(f"abuse mix: {rounds} x ({phase_s:.0f} s calm + {phase_s:.0f} s abused), {elapsed:.0f} s; 4 normal clients, "
          f"2 long-text abusers ({chars} chars of unique sentences), 4 tiny-/detect abusers")
    print(table([[k, v] for k, v in sorted(stats.items())], ["outcome", "count"]))
    calm, loaded = calm or [float("nan")], loaded or [float("nan")]
    print(table([["without abuse", len(calm), median(calm), pct(calm, 0.99)],
                 ["with abuse", len(loaded), median(loaded), pct(loaded, 0.99)],
                 ["ratio", "", median(loaded) / median(calm), pct(loaded, 0.99) / pct(calm, 0.99)]],
                ["normal chat (max_tokens 8)", "requests", "p50 s", "p99 s"]))
    long_ratio = median(costs["long, targets"]) / median(costs["long, none"])
    tiny_ratio = median(costs["tiny detect"]) / median(costs["tiny chat, none"])
    print(table([["long unique text, chat, tenant with targets", median(costs["long, targets"]), ""],
                 ["same text, tenant without targets", median(costs["long, none"]), f"x{long_ratio:.2f}"],
                 ["tiny /detect, tenant with targets", median(costs["tiny detect"]), ""],
                 ["tiny chat, tenant without targets", median(costs["tiny chat, none"]), f"x{tiny_ratio:.2f}"]],
                ["request", "server CPU-s (median)", "ratio"]))
    print(f"goal: abusive request <= x2 a request of the same length without targets: "
          f"{'met' if max(long_ratio, tiny_ratio) <= 2 else 'NOT met'}; server alive: {alive}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 clients for 20 s")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--max-waiting", type=int, default=64, help="the gateway's queue bound for this run")
    parser.add_argument("--abuse", action="store_true", help="normal traffic beside abusive input (see above)")
    args = parser.parse_args()
    if args.abuse:
        abuse_main(args)
        return
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
