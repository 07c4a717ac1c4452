"""Chooses steering layers, scale and mode by measurement on the served model.

For a few well-known targets, each with fact questions and a gold string the answer contains when
the model knows it, greedy-generates a short answer with the target's steering vectors applied and
measures:

- leak: share of fact answers that still contain the gold string (lower is better);
- ignorant: share that read like ordinary ignorance ("I'm not familiar", "I don't know", ...);
- rep: share of repeated word trigrams (degenerate loops), garbage: share of non-text characters;
- collateral: share of unrelated retain questions still answered right when steered with some
  target's vector anyway (what a false-positive detection costs);
- with the gateway's instruction ("You do not know anything about X ...") as well, or without;
- sampled (`--temperature 1 --seeds 3`, the SDK's default sampling) as well as greedy:
  gibberish: share of answers whose words are mostly not words of the tokenizer's vocabulary
  (`vocab_share` below 0.8); ppl: median perplexity of the steered answers under the base model
  (plain question, no steering, no instruction) over the median of the base model's own answers
  at the same temperature; confab: share of answers naming a capitalised word or number that is
  in neither the question nor the base model's greedy answer (a substitute fact, not ignorance).

Untriggered retain rows run in the same left-padded batch, and the script checks they are
token-identical to the base model's greedy answers.

    python -m bench.steering_sweep                      # the default grid, embedded model
    python -m bench.steering_sweep --quick              # a handful of configurations
    python -m bench.steering_sweep --layers 6-12,9-15 --scales 0.5,1,2 --modes add,rotate
    python -m bench.steering_sweep --quick --temperature 0,1 --seeds 3 --instruction 1
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
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
from steering.decode import decode, render_chat  # noqa: E402

# Instruction wordings to compare (`--instruction` picks by key; 0 = none). "gateway" is the one
# gateway/planner.py serves, with the fired target's name.
WORDINGS = {
    "old": "You do not know anything about {name}. When asked about it, reply only: I'm not familiar with that.",
    "gateway": None,  # filled from gateway.planner at start, so the sweep measures what is served
    "general": "You do not know anything about {name}. If asked about it, say in one short sentence that you "
               "do not know, and do not guess any name, place, date or number.",
}


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


def generate(model, tokenizer, steering: GatedSteering | None, prompts, plans, max_new: int = 32,
             temperature: float = 0.0, seed: int = 0, min_p: float = 0.0) -> list[str]:
    return [tokenizer.decode(o, skip_special_tokens=True)
            for o in decode(model, tokenizer, prompts, steering, plans, max_new, temperature, seed, min_p)]


_WORD = re.compile(r"[A-Za-z]+")


def vocab_share(tokenizer, text: str) -> float:
    """Share of an answer's words that are whole words of the tokenizer's vocabulary (one token
    with its leading space, in any case): English prose scores about 0.9 and up, sampled word salad
    ("Algalona FOIQ rmii") far lower. An answer without words scores 0."""
    words = _WORD.findall(text)
    if not words:
        return 0.0
    vocab = tokenizer.get_vocab()
    marker = tokenizer.convert_ids_to_tokens(tokenizer.encode(" a", add_special_tokens=False))[-1][:-1]
    known = sum(1 for w in words if any(marker + v in vocab for v in {w, w.lower(), w.capitalize()}))
    return known / len(words)


def gibberish(tokenizer, text: str, bound: float = 0.8) -> bool:
    return vocab_share(tokenizer, text) < bound


@torch.no_grad()
def perplexity(model, tokenizer, prompts: list[list[int]], answers: list[str]) -> list[float]:
    """Perplexity of each answer under the base model, given its plain question prompt."""
    out = []
    for prompt, answer in zip(prompts, answers):
        ids = tokenizer.encode(answer, add_special_tokens=False)
        if not ids:
            out.append(float("inf"))
            continue
        full = torch.tensor([list(prompt) + ids])
        logits = model(input_ids=full).logits[0, len(prompt) - 1 : -1].float()
        nll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids))
        out.append(math.exp(float(nll)))
    return out


_SPECIFIC = re.compile(r"\b(?:[A-Z][a-z]+|[A-Z]{2,}|\d+)\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:\n]\s*)([A-Z][a-z]+)")


def confabulates(answer: str, question: str, base: str) -> bool:
    """Names a capitalised word or number that is neither in the question nor in the base model's
    answer: a specific claim the model made up instead of saying it does not know (first words of
    sentences and "I" are not names)."""
    starts = set(_SENTENCE_START.findall(answer))
    allowed = {w.lower() for w in _WORD.findall(question + " " + base)} | {"i", "i'm"}
    for word in _SPECIFIC.findall(answer):
        if word in starts or word.lower() in allowed:
            continue
        return True
    return False


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
    ap.add_argument("--instruction", default="0", help="comma list of 0 (none) and wording keys: " + ",".join(WORDINGS)
                    + " (1 = gateway)")
    ap.add_argument("--temperature", default="0", help="comma list, e.g. 0,1")
    ap.add_argument("--seeds", type=int, default=3, help="samples per question at a temperature above 0")
    ap.add_argument("--min-p", default="0", help="comma list: min_p for the triggered rows when sampling")
    ap.add_argument("--max-new", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--show", action="store_true", help="print every answer")
    args = ap.parse_args()
    if args.quick:
        args.layers, args.scales, args.modes, args.ignorance = "9-15", "0.1", "add", "0"
        args.instruction = args.instruction if args.instruction != "0" else "0,1"
    from gateway.planner import instruction_text

    WORDINGS["gateway"] = instruction_text(["{name}"])

    model, tokenizer = load(args.threads)
    identity = model_identity(model)
    t0 = time.time()
    contrasts = {t.name: target_contrast(model, tokenizer, t.name, t.aliases, t.examples, position=args.position)
                 for t in TARGETS}
    ignorance = ignorance_direction(model, tokenizer, position=args.position, identity=identity)
    print(f"vectors for {len(TARGETS)} targets in {time.time() - t0:.1f}s", flush=True)
    steering = GatedSteering(model)

    facts = [(t, q, g) for t in TARGETS for q, g in t.facts]
    plain_prompts = [render_chat(tokenizer, q) for _, q, _ in facts]
    retain_prompts = [render_chat(tokenizer, q) for q, _ in RETAIN]
    temperatures = [float(x) for x in args.temperature.split(",")]
    greedy = [0.0] + [t for t in temperatures if t != 0.0]
    min_ps = [float(x) for x in args.min_p.split(",")]  # the greedy base answer is the confabulation reference
    base_retain = generate(model, tokenizer, None, retain_prompts, [{}] * len(RETAIN), args.max_new)
    # The base model's own answers per temperature and seed: the fluency and confabulation reference.
    base: dict[tuple[float, int], list[str]] = {}
    for temp in greedy:
        for seed in range(args.seeds if temp > 0 else 1):
            base[temp, seed] = generate(model, tokenizer, None, plain_prompts, [{}] * len(facts), args.max_new,
                                        temp, seed)
    base_ppl = {temp: statistics.median(p for (tt, _), texts in base.items() if tt == temp
                                        for p in perplexity(model, tokenizer, plain_prompts, texts))
                for temp in temperatures}
    print("base answers' median perplexity: " + ", ".join(f"T={t:g}: {v:.2f}" for t, v in base_ppl.items()))
    rows = []

    def evaluate(label, vectors: dict | None, wording: str | None) -> None:
        for temp, min_p in [(t, m) for t in temperatures for m in (min_ps if t > 0 else [0.0])]:
            seeds = range(args.seeds if temp > 0 else 1)
            prompts, plans = [], []
            for t, q, _ in facts:
                system = WORDINGS[wording].format(name=t.name) if wording else None
                prompts.append(render_chat(tokenizer, q, system))
                plans.append(vectors[t.name] if vectors else {})
            # Collateral: retain questions steered with another target's vectors.
            for i, _ in enumerate(RETAIN):
                prompts.append(retain_prompts[i])
                plans.append(vectors[TARGETS[i % len(TARGETS)].name] if vectors else {})
            prompts += retain_prompts  # untriggered rows in the same batch
            plans += [{}] * len(RETAIN)
            started = time.time()
            answers, kept, n = [], 0.0, 0
            for seed in seeds:
                texts = generate(model, tokenizer, steering, prompts, plans, args.max_new, temp, seed, min_p)
                fact_texts = texts[: len(facts)]
                collateral = texts[len(facts) : len(facts) + len(RETAIN)]
                if temp == 0:
                    assert texts[len(facts) + len(RETAIN) :] == base_retain, "an untriggered row changed"
                answers += [(f, x, b) for f, x, b in zip(facts, fact_texts, base[0.0, 0])]
                kept += sum(bool(re.search(g, x, re.I)) for (_, g), x in zip(RETAIN, collateral))
                n += len(RETAIN)
            k = len(answers)
            leak = sum(bool(re.search(g, x, re.I)) for (_, _, g), x, _ in answers) / k
            ign = sum(bool(IGNORANT.search(x)) for _, x, _ in answers) / k
            rep = sum(repetition(x) for _, x, _ in answers) / k
            junk = sum(gibberish(tokenizer, x) for _, x, _ in answers) / k
            confab = sum(confabulates(x, q, b) for (_, q, _), x, b in answers) / k
            ppl = statistics.median(perplexity(model, tokenizer, plain_prompts * len(seeds), [x for _, x, _ in answers]))
            rows.append([*label, wording or "no", f"{temp:g}", f"{min_p:g}", leak, ign, rep, junk, confab,
                         round(ppl / base_ppl[temp], 2), kept / n, round(time.time() - started, 1)])
            print(table([rows[-1]], HEADER).splitlines()[-1], flush=True)
            if args.show:
                for (tg, q, _), x, _ in answers:
                    print(f"    [{tg.name}] {q} -> {x!r}")

    HEADER = ["layers", "mode", "scale", "ign", "instr", "T", "min_p", "leak", "ignorant", "rep", "gibberish", "confab",
              "ppl x", "collateral", "s"]
    print(table([], HEADER))
    wordings = [None if x == "0" else ("gateway" if x == "1" else x) for x in args.instruction.split(",")]
    for wording in wordings:
        evaluate(["-", "none", "-", "-"], None, wording)
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
                    for wording in wordings:
                        evaluate([spec, mode, scale, weight], vectors, wording)
    print()
    print(table(rows, HEADER))


if __name__ == "__main__":
    main()
