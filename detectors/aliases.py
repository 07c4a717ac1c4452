"""Aliases and probe prompts generated from a target's name, for targets registered with a name only."""

from __future__ import annotations

import re
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
# Function words: an alias that is one of them (or nothing at all once normalized) would fire on
# almost any text ("Who is it?").
STOP_WORDS = frozenset("""
a an the and or but nor not no yes so if then than as at by for from in into of off on onto out over to up
upon with without about above after before below between during under until via per is am are was were be
been being do does did done have has had having can could shall should will would may might must i me my
you your yours he him his she her hers it its we us our ours they them their theirs this that these
those who whom whose what which when where why how all any each every some such own same other there here
just also too very only s t d ll m re ve o y
""".split())
# Words that say what kind of thing a name is ("Amazon River", "Mount Everest", "Acme Corporation"):
# the name's remaining word is its distinctive head.
_DESIGNATORS = frozenset("""
mount mt mountain mountains range peak volcano river lake ocean sea bay gulf strait channel island islands
isle peninsula desert canyon valley falls waterfall glacier forest jungle park reef cape coast delta basin
plateau street avenue road bridge tower castle palace cathedral temple abbey museum stadium airport station
square university college school institute company corporation corp inc incorporated ltd llc plc group
foundation empire kingdom republic state province county city town village
""".split())


def unmatchable(text: str) -> str | None:
    """Why `text` cannot serve as a name, alias or forbidden string, or None when it can."""
    norm = normalize(text)
    if not norm:
        return "it has no letters or digits once invisible characters and punctuation are removed"
    if norm in STOP_WORDS:
        return f"it reads as the everyday word '{norm}'"
    return None


def head_words(name: str, aliases: Sequence[str] = ()) -> list[str]:
    """The distinctive word of a name made of it and designators ("Amazon" of "Amazon River"), when
    it is not an alias already: a mention of it alone may mean the target, or something else."""
    words = name.split()
    if not 2 <= len(words) <= 3:
        return []
    heads = [w for w in words if w.lower() not in _DESIGNATORS | _COMMON_WORDS | STOP_WORDS]
    if len(heads) != 1 or not heads[0][:1].isalpha() or len(heads[0]) < 3:
        return []
    known = {normalize(a) for a in (name, *aliases)}
    return [] if normalize(heads[0]) in known else heads


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
        if unmatchable(surname) is None and surname.lower() not in _COMMON_WORDS | _DESIGNATORS \
                and words[0].lower() not in _TITLES:
            base.append(surname)
    out: list[str] = []
    seen: set[str] = set()
    for alias in base:
        # Already a variant of an earlier alias ("Potter's" after "Potter"): kept, not varied again,
        # so expanding an expanded list changes nothing.
        stem = alias[:-2] if alias.endswith("'s") else alias[:-1] if alias.endswith("s") else None
        variants = (alias,) if stem and normalize(stem) in seen else (alias, alias + "'s", alias + "s")
        for variant in variants:
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
# The embedding model is mostly English: the same questions in French, Spanish and German bring
# translated prompts (and paraphrases in those languages) much closer to the target.
_PROBES_TRANSLATED = (
    "Qui est {n} ?", "Parle-moi de {n}.", "Qu'est-ce que {n} ?",
    "¿Quién es {n}?", "Háblame de {n}.", "¿Qué es {n}?",
    "Wer ist {n}?", "Erzähl mir etwas über {n}.", "Was ist {n}?",
)


def probe_prompts(name: str, description: str = "") -> list[str]:
    prompts = [p.format(n=name) for p in (*_PROBES, *_PROBES_TRANSLATED)]
    if description:
        prompts.append(description)
    return list(dict.fromkeys(prompts))


# Near misses: the target's name words in other names and other senses ("Harry Styles", "Michelle
# Obama", "Paris Hilton", "a Mars bar"). They are not thresholds to beat but competitors: a text that
# shares a name word with the target fires only if it is clearly closer to the target than to them.
_OTHER_FIRST = ("John", "Mary", "James", "Sarah")
_OTHER_LAST = ("Smith", "Johnson", "Garcia", "Miller")
_NAME_TITLES = ("Prince", "King")
_NEAR_TEMPLATES = ("Who is {x}?", "Tell me about {x}.")
_OTHER_SENSES = ("a person named {w}", "{w}, a character in an old story", "the singer {w}", "a product called {w}",
                 "the {w} brand", "a small town called {w}")

# Many surnames are also ordinary nouns (potter, baker, bush, cook): the word in that sense.
_COMMON_SENSES = ("a {w} at work", "the {w}'s tools", "what a {w} does")


# Other things a one-word name can be, by kind, each a sentence to compare a mention's context with:
# "Who was Mars in Roman mythology?" reads as the first, "What is plaster of Paris made from?" as the
# fourth, whatever the name. They veto a one-word alias only where they beat the target's own texts
# clearly (see the detector), so a target that is itself a god or a brand is not vetoed by them.
_SENSES = (
    "{w}, a figure of Greek and Roman mythology", "{w}, a character in a novel, a film or a play",
    "an international treaty, agreement or event named after {w}",
    "a material, substance or unit of measurement named after {w}",
    "a company called {w} and the products it sells", "a food, drink or candy brand called {w}",
    "a song or an album by the singer {w}",
)


SENSE_KINDS = tuple(sense.format(w="it") for sense in _SENSES)  # each kind without a name, to compare with a description


def other_senses(name: str, aliases: Sequence[str] = (), kinds: Sequence[int] | None = None) -> list[str]:
    """Sense sentences (of the `kinds` given, by index: all by default) for the name's words that
    match alone: a one-word name, a surname or first name given as an alias, the distinctive head
    of a designated name."""
    words = name.split()
    partial = partial_forms(name, aliases)
    alone = words if len(words) == 1 else [w for w in words if normalize(w) in partial] + head_words(name, aliases)
    chosen = [_SENSES[k] for k in (range(len(_SENSES)) if kinds is None else kinds)]
    return [sense.format(w=w) for w in dict.fromkeys(alone) for sense in chosen]


def without_name(text: str, name: str) -> str:
    """`text` less the words of `name` ("Paris, the capital city of France" -> "the capital city of France")."""
    words = set(normalize(name).split())
    return " ".join(w for w in text.replace(",", " , ").split() if normalize(w) not in words).strip(" ,")


def near_misses(name: str) -> list[str]:
    """Prompts about other things that share a word with a person-like or one-word name, or with
    the distinctive head of a designated one ("Amazon" of "Amazon River")."""
    words = name.split()
    heads = head_words(name)
    if heads:
        words = heads
    if _person_like(words):
        first, last = words[0], words[-1]
        others = [f"{first} {s}" for s in _OTHER_LAST] + [f"{f} {last}" for f in _OTHER_FIRST]
        if first.lower() not in _TITLES:
            others += [f"{t} {first}" for t in _NAME_TITLES]
        others += [sense.format(w=last.lower()) for sense in _COMMON_SENSES]
    elif len(words) == 1 and words[0][:1].isalpha():
        word = words[0]
        others = ([f"{word} {s}" for s in _OTHER_LAST[:3]] + [f"{f} {word}" for f in _OTHER_FIRST[:3]]
                  + [sense.format(w=word) for sense in _OTHER_SENSES])
    else:
        return []
    return [t.format(x=x) for x in others for t in _NEAR_TEMPLATES]


def partial_forms(name: str, aliases: Sequence[str] = ()) -> frozenset[str]:
    """Normalized one-word aliases (and their plural and possessive forms) that are one word of a
    name of two words or more: a surname or first name alone, which other people share."""
    words = normalize(name).split()
    # A designated name's own word is its distinctive part, not one that others share ("Everest"
    # of "Mount Everest"): the head-word rule weighs it against its other senses instead.
    if len(words) < 2 or any(w in _DESIGNATORS for w in words):
        return frozenset()
    out = set()
    for alias in (name, *aliases):
        form = normalize(alias)
        if " " in form or not form:
            continue
        stem = form[:-1] if form.endswith("s") and form[:-1] in words else form
        if stem in words:
            out.add(form)
    return frozenset(out)


def proper_nouns(text: str) -> frozenset[str]:
    """Normalized capitalized words of a text, but the first (capitalized as a sentence start)."""
    words = re.findall(r"[^\W\d_][\w'-]*", text)
    return frozenset(normalize(w) for w in words[1:] if w[:1].isupper())


_CLAUSE = re.compile(r"(?<=[.!?;:])\s+|\n+")
_SPECIFIC = re.compile(r"[^\W\d_][\w'-]*|\d[\d,.]*\d")


def stated_specifics(text: str, names: Sequence[str]) -> frozenset[str]:
    """The specifics a text states beside a name: capitalised words and numbers of two digits or
    more in each clause that holds one of `names` ("Here is a fact: Microsoft's video game console
    is the Xbox." -> "Xbox"), less the names' own words, each clause's first word (capitalised by
    position) and everyday words ("New", "Lake"; and any the text also writes in lower case), which a
    ban would take from every sentence. Words as written, possessives dropped."""
    forms = [n for n in (normalize(name) for name in names) if n]
    if not forms:
        return frozenset()
    # Possessive and plural forms too: normalizing writes "Microsoft's" as "microsofts".
    named = re.compile(r"(?<!\S)(?:" + "|".join(map(re.escape, forms)) + r")s?(?!\S)")
    out = set()
    own = {w for form in forms for w in form.split()} | _COMMON_WORDS | set(re.findall(r"\b[a-z][\w'-]*", text))
    for clause in _CLAUSE.split(text):
        if not named.search(normalize(clause)):
            continue
        for k, word in enumerate(_SPECIFIC.findall(clause)):
            word = re.sub(r"'s?$", "", word)
            if word[0].isdigit() or (k > 0 and word[:1].isupper() and len(word) > 2 and normalize(word) not in own):
                out.add(word)
    return frozenset(out)


def name_words(name: str, aliases: Sequence[str] = ()) -> set[str]:
    """Normalized words of the name and of one-word aliases: a text containing one of them may be a near miss."""
    words = set(normalize(name).split())
    words.update(n for n in (normalize(a) for a in aliases) if n and " " not in n)
    return {w for w in words if len(w) >= 3 and w not in _COMMON_WORDS}
