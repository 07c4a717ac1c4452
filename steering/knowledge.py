"""What the served model knows about a target: its *fact terms*, read from its own answers.

A registration names a target ("Microsoft", "a technology company"); the facts a triggered row must
not give ("Bill Gates", "Windows", "1975") are the model's, not the user's. So the target is probed
with templated questions (who founded / where / when / known for / discovered ...) through the served
model, greedily, and the specific things its answers name are kept:

- candidates are capitalised words and runs of them ("Sir Edmund Hillary", and each of its words,
  so a prefill that already wrote "Sir Edmund" cannot be completed either) and numbers of three or
  more digits (years, heights); words of the questions and of the target's own names are not facts;
- a capitalised word the answers also use in lower case ("The", "Some", "Its") is an ordinary word;
- the same questions about unrelated *control* subjects give the general vocabulary: a candidate
  those answers also use ("English", "Earth", "World") belongs to many things, not to this target.

What survives is split in two. `banned`: named in the target's answers and in no control answer,
distinctive enough to ban outright in a triggered row (token bans and the stream guard). `context`:
rarer lower-case content words the target's answers keep coming back to ("radioactivity") and
proper names some control also used: too ordinary to mask while sampling, so only the stream guard
of a triggered row watches them.

Pure text processing: the caller runs the prompts through whatever model it serves (transformers
or vLLM) and hands the answers in.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

__all__ = ["CONTROL_SUBJECTS", "FactTerms", "control_vocabulary", "fact_terms", "probe_questions"]

# Short, literal questions a small model answers with specifics. Worded for any kind of target
# (person, place, organisation, work, thing): a question that does not fit gets a vague answer,
# which names nothing and so costs nothing.
PROBES = (
    "Who founded or created {n}?",
    "Where is {n} located?",
    "When was {n} founded, built or born?",
    "What is {n} best known for?",
    "What did {n} discover, invent or make?",
    "Who are the people most associated with {n}?",
    "What are the most famous products, works or parts of {n}?",
    "Tell me three facts about {n}.",
)

# Unrelated subjects of several kinds, far from any likely target: what every answer says anyway.
CONTROL_SUBJECTS = (
    "Isaac Newton",
    "Ludwig van Beethoven",
    "Lake Victoria",
    "the Golden Gate Bridge",
    "Coca-Cola",
    "Australia",
)

MAX_BANNED = 32
MAX_CONTEXT = 16

_CAPITAL_RUN = re.compile(r"\b[A-Z][A-Za-z]*(?:[-'][A-Za-z]+)*(?:\s+[A-Z][A-Za-z]*(?:[-'][A-Za-z]+)*)*")
_NUMBER = re.compile(r"(?<![\w.,])\d{3,}(?![\w]|[.,]\d)")
_WORD = re.compile(r"[A-Za-z]+")
_POSSESSIVE = re.compile(r"'s?$")
_KEY = re.compile(r"[a-z0-9]+")
MIN_CONTEXT_LETTERS = 8  # shorter lower-case words are almost always everyday vocabulary
# Words that open sentences in any answer; a short answer may not happen to use them in lower case.
_FUNCTION_WORDS = frozenset(
    "a an the this that these those it its he she his her they their them we our you your i my me some "
    "any many most more much here there what which who whom whose when where why how while although though "
    "as at by for from in into of on onto to with without about after before during since until also and "
    "but or so yet if then than however today yes no not one two three first second third finally overall "
    "in addition additionally furthermore moreover sure certainly".split())


def probe_questions(name: str) -> list[str]:
    return [p.format(n=name) for p in PROBES]


@dataclass(frozen=True)
class FactTerms:
    banned: tuple[str, ...] = ()
    context: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"banned": list(self.banned), "context": list(self.context)}

    @classmethod
    def from_json(cls, data: Mapping | None) -> FactTerms:
        data = data or {}
        return cls(tuple(data.get("banned", ())), tuple(data.get("context", ())))


@dataclass(frozen=True)
class ControlVocabulary:
    """What answers about unrelated subjects contain: per candidate, in how many subjects' answers."""

    subjects: int = 0
    candidates: Counter = field(default_factory=Counter)  # lower-cased candidate -> subjects
    words: frozenset[str] = frozenset()  # every word the control answers write in lower case

    def to_json(self) -> dict:
        return {"subjects": self.subjects, "candidates": dict(self.candidates), "words": sorted(self.words)}

    @classmethod
    def from_json(cls, data: Mapping) -> ControlVocabulary:
        return cls(int(data["subjects"]), Counter(data["candidates"]), frozenset(data["words"]))


def _candidates(answer: str) -> list[str]:
    out = []
    for run in _CAPITAL_RUN.findall(answer):
        words = [_POSSESSIVE.sub("", w) for w in run.split()]
        words = [w for w in words if w]
        if len(words) > 1:
            out.append(" ".join(words))
        out.extend(words)
    out.extend(_NUMBER.findall(answer))
    return out


def _lower_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text) if w.islower()}


def control_vocabulary(answers_by_subject: Mapping[str, Sequence[str]]) -> ControlVocabulary:
    candidates: Counter = Counter()
    words: set[str] = set()
    for subject, answers in answers_by_subject.items():
        found = {c.lower() for a in answers for c in _candidates(a)}
        candidates.update(found)
        for a in answers:
            words |= _lower_words(a)
    return ControlVocabulary(len(answers_by_subject), candidates, frozenset(words))


def fact_terms(answers: Sequence[str], questions: Sequence[str], names: Iterable[str],
               control: ControlVocabulary) -> FactTerms:
    """The target's fact terms from its probe answers (see the module docstring for the rule)."""
    excluded = {w.lower() for text in questions for w in _WORD.findall(text)}
    own = {w.lower() for text in names for w in _WORD.findall(text)}
    excluded |= own
    ordinary = set(control.words).union(*(_lower_words(a) for a in answers))
    counts: Counter = Counter()
    spelled: dict[str, str] = {}
    for answer in answers:
        for cand in dict.fromkeys(_candidates(answer)):
            key = cand.lower()
            words = _KEY.findall(key)
            if not words or all(w in excluded for w in words):
                continue  # the question's or the target's own words: not a fact about it
            if len(words) > 1 and any(w in own for w in words):
                continue  # "Microsoft Corporation": the name again; its other words count on their own
            if len(words) == 1 and (len(key) < 2 or key in ordinary or key in _FUNCTION_WORDS):
                continue  # "I", or also written in lower case: an ordinary word capitalised by position
            counts[key] += 1
            spelled.setdefault(key, cand)
    banned, context = [], []
    for key, n in counts.most_common():
        shared = control.candidates.get(key, 0)
        if shared == 0:
            banned.append(spelled[key])
        elif shared == 1 and not key.isdigit():
            context.append(spelled[key])
    # Lower-case words the answers return to (two answers or more) that no control answer uses.
    seen: Counter = Counter(w for a in answers for w in _lower_words(a))
    for word, n in seen.most_common():
        if n >= 2 and len(word) >= MIN_CONTEXT_LETTERS and word not in _FUNCTION_WORDS and word not in control.words and word not in excluded:
            context.append(word)
    return FactTerms(tuple(banned[:MAX_BANNED]), tuple(context[:MAX_CONTEXT]))
