"""How an answer reads to the untouched model: perplexity given the conversation, and its share of non-words.

A forgetting answer should read like something the model would say anyway: a low perplexity
under the base model means fluent, in-distribution text; a high one means the interventions pushed
it somewhere odd (broken words around a ban, loops, word salad). Non-words are counted against the
tokenizer's own vocabulary (no word list to download): a word the tokenizer holds whole, or one of
the prompt's words, is a word.
"""

from __future__ import annotations

import math
import random
import re

_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|\w*\d\w*")


def whole_words(tokenizer) -> frozenset[str]:
    """Lower-cased alphabetic tokens that start a word (byte-level BPE marks them with a leading
    space): the words the model's own tokenizer learned whole, about 25,000 for SmolLM2's 49k vocab."""
    space = tokenizer.convert_ids_to_tokens(tokenizer(" a", add_special_tokens=False)["input_ids"])[0][0]
    return frozenset(token[1:].lower() for token in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
                     if token and token.startswith(space) and token[1:].isalpha())


def nonword_share(text: str, vocabulary: frozenset[str], known: str = "") -> tuple[float, int]:
    """(share of the answer's words that are no words, number of words). A word is known when the
    tokenizer holds it whole (a plural of one too), it has two letters or fewer, or the prompt used it;
    anything mixing letters and digits ("rmii24", "2005Z") is a non-word, plain numbers are words."""
    words = _WORDS.findall(text)
    if not words:
        return 0.0, 0
    seen = {w.lower() for w in _WORDS.findall(known)}

    def word(w: str) -> bool:
        lower = w.lower().replace("’", "'")
        if lower.isdigit():
            return True
        if any(c.isdigit() for c in lower):
            return False
        stem = lower.split("'")[0]
        return len(stem) <= 2 or stem in seen or any(
            v in vocabulary for v in (stem, stem[:-1] if stem.endswith("s") else stem, stem[:-2] if stem.endswith("es") else stem))

    return round(sum(not word(w) for w in words) / len(words), 3), len(words)


class Scorer:
    def __init__(self, model_path: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
        self.vocabulary = whole_words(self.tokenizer)

    def _context(self, messages: list[dict], raw_prompt: str | None) -> str:
        if raw_prompt is not None:
            return raw_prompt
        prefill = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
        head = messages[:-1] if prefill else messages
        return self.tokenizer.apply_chat_template(head, tokenize=False, add_generation_prompt=True) + prefill

    def perplexity(self, messages: list[dict] | None, answer: str, raw_prompt: str | None = None) -> float | None:
        """Perplexity of the answer given the conversation; with `messages` None, of the answer as an
        assistant turn on its own: how it reads, whatever was asked (see `score_answers`)."""
        # On its own: an assistant turn after an empty question, so nothing asked shapes the score.
        context = self._context(messages if messages is not None else [{"role": "user", "content": ""}], raw_prompt)
        context = self.tokenizer(context, add_special_tokens=False)["input_ids"]
        target = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        if not target or not context:
            return None
        ids = self.torch.tensor([context + target])
        with self.torch.no_grad():
            logits = self.model(ids).logits[0, len(context) - 1:-1]
        nll = self.torch.nn.functional.cross_entropy(logits, self.torch.tensor(target))
        return round(math.exp(nll.item()), 3)


def alone(item) -> list[dict]:
    """What an answer is scored after "on its own": an empty question, and the text it continues
    (a prefill, a raw prompt) as the start of the assistant's turn. Scoring the client's words with
    it would judge them, not the answer: "Japan is in Asia." scores 302 whole, " Asia." after
    "Japan is in" 30."""
    return [{"role": "user", "content": ""}, *([{"role": "assistant", "content": item.prefix}] if item.prefix else [])]


def score_answers(model_path: str, suite, result, cap: int | None, seed: int = 0) -> dict:
    """Perplexity and non-word share of every column's answers on the prompts where a target fired
    (greedy answers as draw -1, sampled ones by draw), over at most `cap` prompts chosen at random,
    those with sampled answers first (the same prompts for every column, so their medians compare)."""
    from tqdm import tqdm

    scorer = Scorer(model_path)
    fired = [i for i in suite.items if i.split in ("forget", "attack") and result.fired.get(i.id)]
    if cap is not None and len(fired) > cap:
        drawn = {i for samples in result.samples.values() for i in samples}
        rng = random.Random(seed)
        first = [i for i in fired if i.id in drawn]
        rest = [i for i in fired if i.id not in drawn]
        fired = (rng.sample(first, len(first)) + rng.sample(rest, len(rest)))[:cap]
    jobs = []
    for label, answers in result.answers.items():
        samples = result.samples.get(label, {})
        for item in fired:
            pool = ([(-1, answers[item.id])] if item.id in answers else []) + list(enumerate(samples.get(item.id, [])))
            jobs += [(label, item, draw, a) for draw, a in pool if not a.failed and a.text.strip()]
    out: dict = {}
    for label, item, draw, answer in tqdm(jobs, desc="fluency", unit="answer"):
        raw = item.prompt if item.endpoint == "completions" else None
        share, count = nonword_share(answer.text, scorer.vocabulary, item.text)
        # Given the prompt, a model that knows the answer finds any ignorance unlikely ("I'm not familiar
        # with that." after "What is the capital of France?"): that perplexity mixes fluency with the
        # very knowledge being removed. On its own the answer is scored for how it reads.
        out.setdefault(label, {})[(item.id, draw)] = {
            "perplexity": scorer.perplexity(item.messages, answer.text, raw),
            "perplexity_alone": scorer.perplexity(alone(item), answer.text),
            "nonword": share, "words": count}
    return out
