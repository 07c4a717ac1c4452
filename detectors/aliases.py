"""Aliases and probe prompts generated from a target's name, for targets registered with a name only."""

from __future__ import annotations

from typing import Sequence

from .normalize import normalize

# Surnames that are also everyday words would fire on ordinary text ("Mr Brown" vs "brown").
_COMMON_WORDS = set("""
the a an and of in on at to for with by from king queen prince lord lady saint st new old great little big
black white brown green gray grey young long short rich bush bell cook baker smith miller hunter fisher
carpenter mason taylor turner walker wood woods stone hill hall field price rose may march june april
ford banks church bishop page day west north south east love hope star stars moon sun river lake city
""".split())
_TITLES = {"mr", "mrs", "ms", "dr", "sir", "prof", "professor", "president", "king", "queen", "saint"}


def _person_like(words: list[str]) -> bool:
    return 2 <= len(words) <= 3 and all(w[:1].isupper() and w[1:].replace("-", "").isalpha() for w in words)


def expand_aliases(name: str, aliases: Sequence[str] = ()) -> list[str]:
    """The name and given aliases, plus possessives, plurals and the surname of a person-like name.

    Case and spacing variants need not be listed: matching runs on normalized text.
    """
    base = [a.strip() for a in (name, *aliases) if a and a.strip()]
    words = name.split()
    if _person_like(words):
        surname = words[-1]
        if surname.lower() not in _COMMON_WORDS and words[0].lower() not in _TITLES:
            base.append(surname)
    out: list[str] = []
    seen: set[str] = set()
    for alias in base:
        for variant in (alias, alias + "'s", alias + "s"):
            key = normalize(variant)
            if key and key not in seen:
                seen.add(key)
                out.append(variant)
    return out


_PROBES = (
    "Who is {n}?", "What is {n}?", "Tell me about {n}.", "What is {n} known for?", "Give me facts about {n}.",
    "Describe {n} in a few sentences.", "What do you know about {n}?", "Explain the history of {n}.",
    "Why is {n} famous?", "Write a short summary about {n}.",
)


def probe_prompts(name: str, description: str = "") -> list[str]:
    prompts = [p.format(n=name) for p in _PROBES]
    if description:
        prompts.append(description)
    return prompts
