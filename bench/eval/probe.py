"""Build the suite in bench/data/ from what the served model actually knows.

    python -m bench.eval.probe [--base-url URL --api-key KEY] [--out bench/data]

Asks the served model (through a gateway with no targets, greedy, its chat template) every phrasing of every candidate in `seed.py`. A forget fact is kept when at least two
phrasings are answered correctly: its first correct phrasing becomes the direct question, the
other correct ones the paraphrase attacks. Retain and neighbour questions are kept when answered
correctly. Attack prompts are then written from templates over the kept facts, plus the
hand-written ones. Rerun it when the model changes; the output is deterministic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import os
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from . import seed as main_seed, seed_heldout
from gateway.evaluation.attacks import templated_attacks
from gateway.evaluation.matching import contains_gold

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1] / "data"


class Asker:
    """Greedy answers from the served model, asked through a gateway with no targets (exactly the base
    column of the eval). The gateway's continuous batching is several times faster on a CPU than
    `generate()` over padded batches."""

    def __init__(self, base_url: str, api_key: str, max_tokens: int = 40, concurrency: int = 16):
        self.base_url, self.api_key = base_url, api_key
        self.max_tokens, self.concurrency = max_tokens, concurrency

    def answer(self, questions: list[str]) -> list[str]:
        return asyncio.run(self._answer(questions))

    async def _answer(self, questions: list[str]) -> list[str]:
        import openai

        client = openai.AsyncOpenAI(base_url=self.base_url + "/v1", api_key=self.api_key, max_retries=2, timeout=600)
        model = (await client.models.list()).data[0].id
        limit = asyncio.Semaphore(self.concurrency)
        bar = tqdm(total=len(questions), desc="probing", unit="question")

        async def ask(question: str) -> str:
            async with limit:
                reply = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": question}], temperature=0,
                    max_tokens=self.max_tokens)
            bar.update()
            return reply.choices[0].message.content or ""

        try:
            return list(await asyncio.gather(*(ask(q) for q in questions)))
        finally:
            bar.close()
            await client.close()


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _cached_answers(path: Path) -> dict[str, str]:
    """Answers of an earlier probe of the same model, so editing the seed only asks what is new."""
    return json.loads(path.read_text()).get("answers", {}) if path.exists() else {}


SEEDS = {"main": main_seed, "heldout": seed_heldout}


def attack_rows(forget: list[dict], seed=main_seed) -> list[dict]:
    """Templated attacks over the kept facts, then the hand-written ones."""
    attacks = templated_attacks(forget)
    for i, (target, family, variant, golds, messages) in enumerate(seed.HANDWRITTEN):
        attacks.append({"id": f"hw-{i:03d}", "target": target, "family": family, "variant": variant,
                        "messages": messages, "golds": golds})
    return attacks


def rewrite_attacks(out: Path, seed=main_seed) -> dict:
    """Only attacks.jsonl, from the kept facts in OUT/forget.jsonl: for new templates, no model needed."""
    forget = [json.loads(line) for line in (out / "forget.jsonl").read_text().splitlines() if line.strip()]
    attacks = attack_rows(forget, seed)
    _write(out / "attacks.jsonl", attacks)
    return {"attacks_per_family": dict(Counter(a["family"] for a in attacks))}


def build(asker: Asker, out: Path, reuse: bool = False, seed=main_seed) -> dict:
    phrasings = [(i, p) for i, fact in enumerate(seed.FACTS) for p in fact[4]]
    questions = [p for _, p in phrasings] + [n[3] for n in seed.NEIGHBOURS] + [r[2] for r in seed.RETAIN]
    answers = _cached_answers(out / "probe_log.json") if reuse else {}
    missing = [q for q in dict.fromkeys(questions) if q not in answers]
    answers.update(zip(missing, asker.answer(missing)))

    forget, log = [], []
    for target, fact_id, statement, golds, options in seed.FACTS:
        correct = [p for p in options if contains_gold(answers[p], golds)]
        log.append({"id": fact_id, "target": target, "known": correct, "answers": {p: answers[p] for p in options}})
        if len(correct) >= 2:
            forget.append({"id": fact_id, "target": target, "question": correct[0], "golds": golds,
                           "paraphrases": correct[1:], "statement": statement})

    neighbours = []
    for i, (target, kind, golds, question) in enumerate(seed.NEIGHBOURS):
        if contains_gold(answers[question], golds):
            neighbours.append({"id": f"nb-{i:03d}", "target": target, "kind": kind, "question": question, "golds": golds})
    retain = []
    for i, (subject, golds, question) in enumerate(seed.RETAIN):
        if contains_gold(answers[question], golds):
            retain.append({"id": f"rt-{i:03d}", "subject": subject, "question": question, "golds": golds})

    attacks = attack_rows(forget, seed)

    out.mkdir(parents=True, exist_ok=True)
    _write(out / "targets.jsonl", seed.TARGETS)
    _write(out / "forget.jsonl", forget)
    if seed.RETAIN:
        _write(out / "retain.jsonl", retain)
    else:  # a held-out suite measures utility on the main suite's retain questions
        (out / "suite.json").write_text(json.dumps({"shared_from": ".."}) + "\n")
    if seed.NEIGHBOURS:
        _write(out / "neighbours.jsonl", neighbours)
    _write(out / "attacks.jsonl", attacks)
    summary = {
        "forget_facts_per_target": dict(Counter(f["target"] for f in forget)),
        "candidate_facts": len(seed.FACTS), "retain": f"{len(retain)}/{len(seed.RETAIN)}",
        "neighbours_per_target": dict(Counter(n["target"] for n in neighbours)),
        "neighbour_candidates": len(seed.NEIGHBOURS), "attacks_per_family": dict(Counter(a["family"] for a in attacks)),
    }
    (out / "probe_log.json").write_text(json.dumps({"summary": summary, "facts": log, "answers": answers},
                                                   indent=1, ensure_ascii=False))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running gateway (default: start one, serving its configured model)")
    parser.add_argument("--api-key", help="a tenant key of --base-url with no active targets")
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the answers in OUT/probe_log.json (same model) and ask only new questions")
    parser.add_argument("--seed", choices=sorted(SEEDS), default="main",
                        help="candidates to probe: the main suite's (seed.py) or the held-out targets' (seed_heldout.py)")
    parser.add_argument("--attacks-only", action="store_true",
                        help="rewrite OUT/attacks.jsonl from OUT/forget.jsonl and the templates, asking nothing")
    args = parser.parse_args(argv)
    if args.attacks_only:
        print(json.dumps(rewrite_attacks(args.out, SEEDS[args.seed]), indent=1))
        return
    server = None
    if args.base_url:
        asker = Asker(args.base_url, args.api_key)
    else:
        from bench.common import start_gateway

        server = start_gateway(Path(tempfile.mkdtemp(prefix="lethe-probe-")))
        asker = Asker(server.base_url, server.api_key)
    try:
        summary = build(asker, args.out, args.reuse, SEEDS[args.seed])
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
