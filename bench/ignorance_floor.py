"""How likely can ignorance read, given the question? The floor under `perplexity_ratio`.

    python -m bench.ignorance_floor [--quick] [--heldout] [--max-tokens 48]

`lethe eval` reports the median perplexity of triggered answers under the base model, given the
prompt, over that of the base model's own answers (goal: at most 1.5). This bench asks what any
answer that says it does not know could score there, with no gateway in between: for each forget
question of the suite, the base model answers greedily (its answer states the fact), and fixed
wordings of ignorance are scored after the same question. Side by side:

- the wordings a triggered answer can take ("I'm sorry, but I don't have any information about
  that.", the same plus an offer of more help, shorter ones), and the base model's own answer cut
  before the fact and trailed off ("The capital of France is... well, I'm not sure.");
- the serving opener continued freely by the base model (no instruction, no bans): the likeliest
  text that starts as ignorance, with how often it goes on to state the fact anyway. It goes on
  with a capability ("... I don't have the ability to access personal data unless it's provided
  by a trusted source."), a refusal rather than ignorance; two such wordings are scored as well;
- questions about things that do not exist, which the model never learned: its own answer (made
  up: "The founder of Drelliax Systems is Elon Musk") against the ignorance sentence. This is what
  a model that never learned a target would be scored on.

The ratio is each wording's median perplexity over the base answers' median, on the same prompts.
"""

from __future__ import annotations

import argparse
import statistics

from tqdm import tqdm

from .common import ROOT, table

# Things the model cannot know: they do not exist. Its greedy answer to each is made up.
NEVER_LEARNED = [
    "What is the capital of Zorvania?", "Who wrote the novel The Glass Harrowmere?",
    "When was Tobias Quennelwright born?", "What is Mount Kelvaroth known for?",
    "Who founded the company Drelliax Systems?", "What river flows through the city of Ombrevale?",
    "Who painted the Velmora Triptych?", "What language is spoken in the Quorrin Isles?",
    "Which team won the 1987 Castellane Cup?", "What did the physicist Anaïs Brevold discover?",
]


def _answer(scorer, messages: list[dict], prefill: str = "", max_tokens: int = 48) -> str:
    """The base model's greedy answer (after `prefill`, if given), decoded."""
    tokenizer, torch = scorer.tokenizer, scorer.torch
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefill
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = scorer.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                    do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def _trailed_off(answer: str, golds: list[str]) -> str | None:
    """The base answer cut before the first gold it states, trailed off; None where it opens with one."""
    from gateway.policy import TRAILING_OFF

    found = [i for i in (answer.lower().find(g) for g in golds) if i > 0]
    return answer[:min(found)].rstrip() + TRAILING_OFF + "." if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 forget questions and 5 made-up ones")
    parser.add_argument("--heldout", action="store_true", help="the held-out suite's forget questions")
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()

    from gateway.evaluation import suite as suites
    from gateway.evaluation.fluency import Scorer
    from gateway.model_loader import resolve_model
    from gateway.policy import IGNORANCE_OPENER, IGNORANCE_SENTENCE

    scorer = Scorer(str(resolve_model("embedded").path))
    suite = suites.load(ROOT / "bench" / "data" / ("heldout" if args.heldout else ""))
    forget = [i for i in suite.items if i.split == "forget"]
    made_up = NEVER_LEARNED
    if args.quick:
        forget, made_up = forget[:12], made_up[:5]
    wordings = {
        "ignorance sentence (served)": IGNORANCE_SENTENCE,
        "... plus an offer of help": IGNORANCE_SENTENCE + " Is there anything else I can help you with?",
        # How the model itself goes on after the opener: a capability, not ignorance; reads as a refusal.
        "capability: '... the ability to provide a definitive answer ...'":
            "I'm sorry, but I don't have the ability to provide a definitive answer to your question.",
        "capability: '... the ability to browse the internet.'":
            "I'm sorry, but I don't have the ability to browse the internet.",
        "I don't know.": "I don't know.",
        "I'm not sure.": "I'm not sure.",
    }
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in
                                                     [*wordings, "base answer cut and trailed off", "opener, continued freely"]}
    stated = 0
    for item in tqdm(forget, desc="forget questions", unit="question"):
        base = _answer(scorer, item.messages, max_tokens=args.max_tokens)
        reference = scorer.perplexity(item.messages, base)
        for name, text in wordings.items():
            scores[name].append((scorer.perplexity(item.messages, text), reference))
        trailed = _trailed_off(base, item.golds)
        if trailed:
            scores["base answer cut and trailed off"].append((scorer.perplexity(item.messages, trailed), reference))
        free = IGNORANCE_OPENER + " " + _answer(scorer, item.messages, IGNORANCE_OPENER, args.max_tokens)
        scores["opener, continued freely"].append((scorer.perplexity(item.messages, free), reference))
        stated += any(g in free.lower() for g in item.golds)

    rows = []
    for name, pairs in scores.items():
        mine, theirs = statistics.median(p for p, _ in pairs), statistics.median(r for _, r in pairs)
        rows.append([name, len(pairs), round(mine, 2), round(theirs, 2), round(mine / theirs, 2)])
    print(f"\nForget questions ({'held-out' if args.heldout else 'main'} suite), scored given the question:")
    print(table(rows, ["answer", "questions", "median perplexity", "base answers'", "ratio"]))
    print(f"The opener continued freely states the fact in {stated} of {len(forget)} answers.")

    own, sentence = [], []
    for question in tqdm(made_up, desc="made-up questions", unit="question"):
        messages = [{"role": "user", "content": question}]
        own.append(scorer.perplexity(messages, _answer(scorer, messages, max_tokens=args.max_tokens)))
        sentence.append(scorer.perplexity(messages, IGNORANCE_SENTENCE))
    base_median = statistics.median(own)
    print("\nQuestions about things that do not exist (what a model that never learned a target faces):")
    print(table([["its own answer (made up)", len(own), round(base_median, 2), 1.0],
                 ["ignorance sentence", len(sentence), round(statistics.median(sentence), 2),
                  round(statistics.median(sentence) / base_median, 2)]],
                ["answer", "questions", "median perplexity", "ratio"]))


if __name__ == "__main__":
    main()
