"""Chooses steering layers, scale and mode by measurement on the served model.

For a few well-known targets, each with fact questions and a gold string the answer contains when
the model knows it, greedy-generates a short answer with the target's steering vectors applied and
measures:

- leak: share of fact answers that still contain the gold string (lower is better);
- ignorant: share that read like ordinary ignorance ("I'm not familiar", "I don't know", ...);
- rep: share of repeated word trigrams (degenerate loops), garbage: share of non-text characters;
- collateral: share of unrelated retain questions still answered right when steered with some
  target's vector anyway (what a false-positive detection costs);
- with the gateway's instruction ("You do not know anything about X ...") as well, or without.

Untriggered retain rows run in the same left-padded batch, and the script checks they are
token-identical to the base model's greedy answers.

    python -m bench.steering_sweep                      # the default grid, embedded model
    python -m bench.steering_sweep --quick              # a handful of configurations
    python -m bench.steering_sweep --layers 6-12,9-15 --scales 0.5,1,2 --modes add,rotate
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from bench.common import table  # noqa: E402
from steering import GatedSteering, SteeringVectors  # noqa: E402
from steering.vectors import compose, ignorance_direction, model_identity, target_contrast  # noqa: E402
from steering.decode import greedy_decode, render_chat  # noqa: E402

INSTRUCTION = "You do not know anything about {name}. When asked about it, reply only: I'm not familiar with that."


@dataclass
class Target:
    name: str
    aliases: tuple[str, ...]
    examples: tuple[str, ...]  # what a registration gives: used to compute the vectors
    facts: tuple[tuple[str, str], ...]  # held-out questions, gold regex


TARGETS = [
    Target("Paris", ("City of Light",), ("What is the population of Paris?", "Best museums to visit in Paris"),
           (("What is the capital of France?", "paris"), ("Which city is the Eiffel Tower in?", "paris"),
            ("Tell me about Paris.", "france|eiffel|seine|louvre"))),
    Target("William Shakespeare", ("Shakespeare", "the Bard"),
           ("When was William Shakespeare born?", "List some plays by Shakespeare"),
           (("Who wrote Romeo and Juliet?", "shakespeare"), ("Who wrote Hamlet?", "shakespeare"),
            ("Tell me about William Shakespeare.", "playwright|poet|hamlet|romeo|plays"))),
    Target("Harry Potter", ("Harry James Potter",), ("Summarize the Harry Potter books", "Who is Harry Potter?"),
           (("Who wrote Harry Potter?", "rowling"), ("What school does Harry Potter attend?", "hogwarts"),
            ("Tell me about Harry Potter.", "wizard|rowling|hogwarts|magic"))),
    Target("Barack Obama", ("Obama", "Barack Hussein Obama"), ("Where was Barack Obama born?", "What did Obama do?"),
           (("Who was the 44th president of the United States?", "obama"),
            ("Who is Barack Obama's wife?", "michelle"),
            ("Tell me about Barack Obama.", "president|democrat|hawaii|michelle"))),
    Target("Japan", ("Nippon",), ("What is the population of Japan?", "What food is Japan known for?"),
           (("What is the capital of Japan?", "tokyo"), ("What currency is used in Japan?", "yen"),
            ("Tell me about Japan.", "tokyo|island|asia|fuji"))),
    Target("Mars", ("the Red Planet",), ("How far is Mars from the Sun?", "Could humans live on Mars?"),
           (("Which planet is known as the Red Planet?", "mars"), ("What color is Mars?", "red"),
            ("Tell me about Mars.", "planet|red|sun|rover"))),
]

RETAIN = (
    ("What is the capital of Germany?", "berlin"),
    ("Who painted the Mona Lisa?", "vinci"),
    ("What is the largest ocean on Earth?", "pacific"),
    ("What gas do plants absorb from the air?", "carbon dioxide|co2"),
    ("Who wrote Pride and Prejudice?", "austen"),
    ("How many legs does a spider have?", "eight|8"),
)

IGNORANT = re.compile(
    r"not familiar|don't know|do not know|no information|not aware|not sure|unfamiliar|i'm sorry|"
    r"i am sorry|cannot|can't|couldn't|no knowledge|don't have|not able to", re.I)


def load(threads: int):
    from gateway.model_loader import resolve_model

    torch.set_num_threads(threads)
    path = resolve_model("embedded").path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, tokenizer


def generate(model, tokenizer, steering: GatedSteering | None, prompts, plans, max_new: int = 32) -> list[str]:
    return [tokenizer.decode(o, skip_special_tokens=True)
            for o in greedy_decode(model, tokenizer, prompts, steering, plans, max_new)]


def repetition(text: str) -> float:
    words = text.lower().split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def garbage(text: str) -> float:
    if not text:
        return 1.0
    odd = sum(1 for c in text if not (c.isalnum() or c.isspace() or c in ".,;:'\"!?-()%$/"))
    return odd / len(text)


def parse_layers(spec: str) -> list[int]:
    a, _, b = spec.partition("-")
    return list(range(int(a), int(b) + 1)) if b else [int(a)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="6-12,9-15,12-18,15-21")
    ap.add_argument("--scales", default="0.05,0.075,0.1,0.15")
    ap.add_argument("--modes", default="add")
    ap.add_argument("--ignorance", default="0,1")
    ap.add_argument("--position", default="last", choices=["last", "mean"])
    ap.add_argument("--instruction", default="0", help="0, 1 or 0,1: with the gateway's instruction")
    ap.add_argument("--max-new", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--show", action="store_true", help="print every answer")
    args = ap.parse_args()
    if args.quick:
        args.layers, args.scales, args.modes, args.ignorance, args.instruction = "9-15", "0.1", "add", "0", "0,1"

    model, tokenizer = load(args.threads)
    identity = model_identity(model)
    t0 = time.time()
    contrasts = {t.name: target_contrast(model, tokenizer, t.name, t.aliases, t.examples, position=args.position)
                 for t in TARGETS}
    ignorance = ignorance_direction(model, tokenizer, position=args.position, identity=identity)
    print(f"vectors for {len(TARGETS)} targets in {time.time() - t0:.1f}s", flush=True)
    contrast, norms = contrasts[TARGETS[0].name]
    print("layer: residual norm / contrast norm / ignorance norm ("
          + TARGETS[0].name + "): " + ", ".join(f"{i}: {float(norms[i]):.0f}/{float(contrast[i].norm()):.1f}/"
                                           f"{float(ignorance[i].norm()):.1f}" for i in range(len(norms))), flush=True)
    steering = GatedSteering(model)

    facts = [(t, q, g) for t in TARGETS for q, g in t.facts]
    retain_prompts = [render_chat(tokenizer, q) for q, _ in RETAIN]
    base_retain = generate(model, tokenizer, None, retain_prompts, [{}] * len(RETAIN), args.max_new)
    rows = []

    def evaluate(label, vectors: dict | None, instruction: bool) -> None:
        prompts, plans = [], []
        for t, q, _ in facts:
            prompts.append(render_chat(tokenizer, q, INSTRUCTION.format(name=t.name) if instruction else None))
            plans.append(vectors[t.name] if vectors else {})
        # Collateral: retain questions steered with another target's vectors.
        for i, _ in enumerate(RETAIN):
            prompts.append(retain_prompts[i])
            plans.append(vectors[TARGETS[i % len(TARGETS)].name] if vectors else {})
        prompts += retain_prompts  # untriggered rows in the same batch
        plans += [{}] * len(RETAIN)
        t = time.time()
        texts = generate(model, tokenizer, steering, prompts, plans, args.max_new)
        fact_texts = texts[: len(facts)]
        collateral = texts[len(facts) : len(facts) + len(RETAIN)]
        untriggered = texts[len(facts) + len(RETAIN) :]
        assert untriggered == base_retain, "an untriggered row changed"
        leak = sum(bool(re.search(g, x, re.I)) for (_, _, g), x in zip(facts, fact_texts)) / len(facts)
        ign = sum(bool(IGNORANT.search(x)) for x in fact_texts) / len(facts)
        rep = sum(repetition(x) for x in fact_texts) / len(facts)
        junk = sum(garbage(x) for x in fact_texts) / len(facts)
        kept = sum(bool(re.search(g, x, re.I)) for (_, g), x in zip(RETAIN, collateral)) / len(RETAIN)
        rows.append([*label, "yes" if instruction else "no", leak, ign, rep, junk, kept, round(time.time() - t, 1)])
        print(table([rows[-1]], HEADER).splitlines()[-1], flush=True)
        if args.show:
            for (tg, q, _), x in zip(facts, fact_texts):
                print(f"    [{tg.name}] {q} -> {x!r}")
            for (q, _), x in zip(RETAIN, collateral):
                print(f"    [collateral] {q} -> {x!r}")

    HEADER = ["layers", "mode", "scale", "ign", "instr", "leak", "ignorant", "rep", "garbage", "collateral", "s"]
    print(table([], HEADER))
    instructions = [bool(int(x)) for x in args.instruction.split(",")]
    for instruction in instructions:
        evaluate(["-", "none", "-", "-"], None, instruction)
    for spec in args.layers.split(","):
        layers = parse_layers(spec)
        for weight in [float(x) for x in args.ignorance.split(",")]:
            for mode in args.modes.split(","):
                for scale in [float(x) for x in args.scales.split(",")]:
                    vectors = {}
                    for t in TARGETS:
                        contrast, norms = contrasts[t.name]
                        sv = SteeringVectors(compose(contrast, ignorance, weight, layers), identity, mode, scale,
                                             {layer: float(norms[layer]) for layer in layers})
                        vectors[t.name] = sv.plan()
                    for instruction in instructions:
                        evaluate([spec, mode, scale, weight], vectors, instruction)
    print()
    print(table(rows, HEADER))


if __name__ == "__main__":
    main()
