"""How long a registered target takes to become `ready`, and what that work costs the traffic being served.

    python -m bench.registration_bench [--quick] [--rounds N]

A target is `pending` until the served model has given its steering vectors (forward passes over
~50 short prompts) and its fact terms (8 probe questions answered greedily). Three measures, each
side by side in one run:

- `residuals`: the vectors' forward passes, in-process, as they ran before (a thread of their own
  on one core, every layer, batches of 16) against now (the engine's cores, as jobs between its
  steps, stopping after the last steered layer, batches of 8); alternating order, `--rounds` times;
- `ready`: a gateway's time from POST to `ready` for four of the suite's targets registered one at a
  time (each waited for) against the same four registered at once (their probes decode as one batch);
- `traffic`: a streaming client's decode rate and its longest gap between two tokens while four
  targets are being prepared, against the same client with nothing being prepared.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import torch

from .common import load_engine, median, pct, start_gateway, table

SUITE = Path(__file__).parent / "data" / "targets.jsonl"
NAMES = ("Paris", "Mars", "Japan", "Barack Obama")
STREAM_PROMPT = "Describe the water cycle in detail."


def _suite_targets() -> list[dict]:
    rows = [json.loads(line) for line in SUITE.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["name"] in NAMES]


def bench_residuals(rounds: int) -> list[list[object]]:
    from detectors.aliases import probe_prompts
    from steering.vectors import contrast_prompts, default_layers, residuals

    engine = load_engine()
    engine.start()
    try:
        reader = engine.residual_source()
        paris = _suite_targets()[0]
        # What registering the suite's Paris computes vectors from (its examples generated, as the API does).
        examples = paris.get("examples") or probe_prompts(paris["name"], paris["description"])
        prompts = [p for side in contrast_prompts(engine.tokenizer, paris["name"], paris.get("aliases", []), examples)
                   for p in side]
        upto = max(default_layers(engine.num_layers))
        times: dict[str, list[float]] = {"before": [], "now": []}

        def before():
            def run():  # any thread but the engine's computes on one core (gateway/engines/cores.py)
                torch.set_num_threads(1)
                residuals(engine.model, prompts, batch_size=16)

            thread = threading.Thread(target=run)
            started = time.monotonic()
            thread.start()
            thread.join()
            return time.monotonic() - started

        def now():
            started = time.monotonic()
            reader.residuals(prompts, upto=upto)
            return time.monotonic() - started

        for r in range(rounds):
            for name, fn in ((("before", before), ("now", now)) if r % 2 == 0 else (("now", now), ("before", before))):
                times[name].append(fn())
    finally:
        engine.shutdown()
    b, n = median(times["before"]), median(times["now"])
    return [[f"residuals of {len(prompts)} prompts", b, n, b / n, f"{min(times['before']) / max(times['now']):.2f}-"
             f"{max(times['before']) / min(times['now']):.2f}"]]


def _register(server, key: str, targets: list[dict]) -> list[str]:
    with server.http(key) as http:
        ids = []
        for t in targets:
            reply = http.post("/v1/forget-targets", json=t)
            assert reply.status_code == 201, reply.text
            ids.append(reply.json()["id"])
    return ids


def _stream(server, stop: threading.Event, rates: list[float], gaps: list[float]) -> None:
    client = server.client()
    model = client.models.list().data[0].id
    while not stop.is_set():
        started = last = time.monotonic()
        tokens = 0
        stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": STREAM_PROMPT}],
                                                max_tokens=48, temperature=0, stream=True)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                now = time.monotonic()
                if tokens:
                    gaps.append(now - last)
                last, tokens = now, tokens + 1
        rates.append(tokens / max(last - started, 1e-6))


def bench_gateway(rounds: int, probe_rows: int) -> tuple[list[list[object]], list[list[object]]]:
    targets = _suite_targets()
    rows, traffic = [], []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_gateway(Path(tmp), {"LETHE_PROBE_ROWS": str(probe_rows)})
        try:
            one_by_one, together = [], []
            for _ in range(rounds):
                key = server.tenant_with()
                started = time.monotonic()
                for t in targets:
                    (target_id,) = _register(server, key, [t])
                    server.settled(key, target_id, timeout=600)
                one_by_one.append(time.monotonic() - started)
                key = server.tenant_with()
                started = time.monotonic()
                for target_id in _register(server, key, targets):
                    server.settled(key, target_id, timeout=600)
                together.append(time.monotonic() - started)
            a, b = median(one_by_one), median(together)
            rows.append([f"{len(targets)} targets to ready (s), probe_rows {probe_rows}", a, b, a / b,
                         f"{min(one_by_one) / max(together):.2f}-{max(one_by_one) / min(together):.2f}"])

            # The streaming client alone, then while a tenant's four targets are prepared.
            for label in ("idle", "preparing"):
                stop, rates, gaps = threading.Event(), [], []
                client = threading.Thread(target=_stream, args=(server, stop, rates, gaps))
                client.start()
                if label == "idle":
                    time.sleep(20)
                else:
                    key = server.tenant_with()
                    for target_id in _register(server, key, targets):
                        server.settled(key, target_id, timeout=600)
                stop.set()
                client.join()
                traffic.append([f"{label}, probe_rows {probe_rows}", median(rates), pct(gaps, 0.5) * 1000, pct(gaps, 0.99) * 1000, max(gaps) * 1000])
        finally:
            server.stop()
    traffic.append([f"ratio preparing / idle, probe_rows {probe_rows}", *(p / i for p, i in zip(traffic[1][1:], traffic[0][1:]))])
    return rows, traffic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 4")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--probe-rows", type=lambda v: [int(x) for x in v.split(",")], default=[8, 32],
                        help="the gateway part once per value of Settings.probe_rows (default 8,32)")
    parser.add_argument("--gateway-only", action="store_true", help="skip the in-process residuals part")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 4)
    rows = bench_residuals(rounds) if not args.gateway_only else []
    ready, traffic = [], []
    for probe_rows in args.probe_rows:
        more_ready, more_traffic = bench_gateway(max(1, rounds // 2), probe_rows)
        ready += more_ready
        traffic += more_traffic
    print(table(rows + ready, ["measure", "before / one at a time", "now / at once", "ratio", "min-max"]))
    print()
    print(table(traffic, ["one streaming client", "tok/s", "token gap p50 (ms)", "p99 (ms)", "max (ms)"]))


if __name__ == "__main__":
    main()
