"""What checking a similarity-only hit, or an earlier turn's target, against the model's own answer costs.

    python -m bench.verify_bench [--quick] [--rounds N]

Two gateways, one with `verify_semantic: true` (the default) and one with it off, each with a
tenant holding the suite's Paris and Mars targets. Three kinds of plain question, each asked of
both, alternating which goes first, `--rounds` times, streamed, greedy:

- `about`: no name in it, fires on similarity, and the model's answer names the target ("What is
  the capital of France?"): still fired, after a probe that stops at the name;
- `near`: fires on similarity only, the model's answer names something else ("Which planet has
  the Great Red Spot?"): with the check it is answered as by the base model;
- `untouched`: fires nothing: no probe, the check costs nothing;
- `later, other`: the `untouched` questions as the next turn after one about Paris: fired by that
  turn, then left in the background by the check (answered as by the base model, Paris's names
  still banned), where without it the whole conversation stays fired;
- `later, about`: a next turn that goes back to Paris without naming it: still fired, after a probe.

Prints, per kind, what `/detect` says on each gateway and the median time to the first content
token (TTFT) and to the whole answer, and the TTFT the check adds (median of the per-round
differences, min..max).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from .common import median, start_gateway, table

SUITE = Path(__file__).parent / "data" / "targets.jsonl"
TARGETS = ("Paris", "Mars")
QUESTIONS = {
    "about": ["What is the capital of France?", "Which planet is the Curiosity rover exploring?",
              "France's capital is which city?"],
    "near": ["Which planet has the Great Red Spot?", "Which dwarf planet was once considered the ninth planet?",
             "Which planet is the brightest in the night sky?"],
    "untouched": ["What is 2 plus 2?", "Who painted the Mona Lisa?", "What is the boiling point of water?"],
}
EARLIER = [{"role": "user", "content": "Tell me about Paris."}, {"role": "assistant", "content": "I don't know."}]
LATER = {"later, other": QUESTIONS["untouched"],
         "later, about": ["In which city is the Eiffel Tower?", "In which city is the Louvre museum?"]}
# kind -> (label, conversation)
CASES = {kind: [(q, [{"role": "user", "content": q}]) for q in qs] for kind, qs in QUESTIONS.items()}
CASES.update({kind: [(f"(Paris turn) {q}", [*EARLIER, {"role": "user", "content": q}]) for q in qs]
              for kind, qs in LATER.items()})
MAX_TOKENS = 32


def _targets() -> list[dict]:
    rows = [json.loads(line) for line in SUITE.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["name"] in TARGETS]


def _ready(server, key: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    with server.http(key) as http:
        while time.monotonic() < deadline:
            if all(t["status"] != "pending" for t in http.get("/v1/forget-targets").json()["data"]):
                return
            time.sleep(2)
    raise SystemExit("targets still pending after the timeout")


def _fired(server, key: str, messages: list[dict]) -> str:
    with server.http(key) as http:
        data = http.post("/v1/forget-targets/detect", json={"messages": messages}).json()["data"]
    return ",".join(f"{d['name']}({d['method'][:3]}{', background' if d.get('background') else ''})"
                    for d in data) or "-"


def _timed(server, key: str, model: str, messages: list[dict]) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    stream = server.client(key).chat.completions.create(
        model=model, messages=messages, temperature=0, max_tokens=MAX_TOKENS, stream=True)
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="alternations per question (default 3, quick 2)")
    parser.add_argument("--quick", action="store_true", help="two rounds")
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 3)
    servers, keys = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for side, flag in (("on", "true"), ("off", "false")):
                (Path(tmp) / side).mkdir()
                servers[side] = start_gateway(Path(tmp) / side, {"LETHE_VERIFY_SEMANTIC": flag})
                keys[side] = servers[side].tenant_with(targets=_targets(), name=f"verify-{side}")
            for side in servers:
                _ready(servers[side], keys[side])
            model = servers["on"].client().models.list().data[0].id
            cases = [case for kind_cases in CASES.values() for case in kind_cases]
            for side in servers:  # warm-up
                _timed(servers[side], keys[side], model, cases[-1][1])
            detected = {(side, label): _fired(servers[side], keys[side], messages)
                        for label, messages in cases for side in servers}
            timings = {(side, label): [] for label, _ in cases for side in servers}
            for r in range(args.rounds):
                for label, messages in cases:
                    for side in (("on", "off") if r % 2 == 0 else ("off", "on")):
                        timings[side, label].append(_timed(servers[side], keys[side], model, messages))
        finally:
            for server in servers.values():
                server.stop()

    print(f"\nSimilarity-only hits checked against the model's answer: on vs off ({args.rounds} rounds, streamed, "
          f"greedy, {MAX_TOKENS} tokens; TTFT/whole answer in ms, medians)")
    rows = []
    for kind, kind_cases in CASES.items():
        for q, _ in kind_cases:
            on, off = timings["on", q], timings["off", q]
            added = [(a[0] - b[0]) * 1000 for a, b in zip(on, off)]
            rows.append([kind, q[:52], detected["on", q], detected["off", q],
                         median([t[0] for t in on]) * 1000, median([t[0] for t in off]) * 1000,
                         f"{median(added):+.0f} ({min(added):+.0f}..{max(added):+.0f})",
                         median([t[1] for t in on]) * 1000, median([t[1] for t in off]) * 1000])
    print(table(rows, ["kind", "question", "fired (on)", "fired (off)", "TTFT on", "TTFT off", "TTFT added (ms)",
                       "answer on", "answer off"]))
    print("(a fired chat answer's first words are the ignorance opener, sent at once: its TTFT off is the "
          "gateway's own; an unfired one waits for the model)")


if __name__ == "__main__":
    main()
