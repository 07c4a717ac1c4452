"""Whole-word alias matching with an Aho-Corasick automaton that stays fast at 10^6 aliases.

Building an automaton over a million aliases takes seconds, so new aliases go into a small
delta automaton rebuilt on each add (milliseconds); once the delta grows past a bound it is
folded into the main automaton. Removals are tombstones, dropped at the next fold.

Misspellings ("Hary Poter", "Barak Obamma", "Jappan") are matched by correcting words before the
automaton runs. Only words the embedding model's vocabulary does not know are corrected, so
"pottery", "hairy" or "parts" never become "potter", "harry" or "paris": edit distance 1 for words
of 4 to 7 letters, 2 for longer ones (all two-edit cases except two substitutions), by generating
the word's variants and looking them up, so the alias side needs only a set of its words and, for
words of 8 letters or more, of their one-letter deletions. A known word next to a corrected or
exact alias word is corrected too when the pair then forms a two-word alias ("Barak Obamma").
Fragments of one alias word split by a hyphen, a dot or a space ("Cu-rie", "Dar-win", "Micro soft")
are joined back when together they spell an alias word and none of them is one alone.

What correction and joining may correct towards is per owner: a tenant's lookups see only its own
alias words and the global ones, so no tenant's registrations can change another tenant's matches
(a tenant registering "Evrest" would otherwise stop "Evrest" being corrected to "Everest" for all).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick

from .normalize import normalize

_DELTA_LIMIT = 2_000
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_FUZZY_MIN = 4  # shorter words are only matched exactly
_FUZZY_LONG = 8  # from this length two edits are allowed


@dataclass(frozen=True)
class LexicalHit:
    target_id: str
    alias: str  # the normalized alias form that matched
    start: int  # in the normalized text
    end: int
    multiword: bool = False  # the alias has two words or more (or is their concatenation): unambiguous
    fuzzy: bool = False  # matched only after correcting a misspelling


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Whole words of the embedding model's vocabulary: real words, never corrected as misspellings."""
    try:
        from .embeddings import embedded_model_path

        vocab = (embedded_model_path() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    except Exception:  # noqa: BLE001 - without the model, correct every unknown-looking word
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and w.isascii())


@lru_cache(maxsize=8192)
def edits1(word: str) -> tuple[str, ...]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out.update(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)
    out.update(a + c + b[1:] for a, b in splits if b for c in _LETTERS)
    out.update(a + c + b for a, b in splits for c in _LETTERS)
    out.discard(word)
    return tuple(out)


@lru_cache(maxsize=8192)
def _deletes(word: str, depth: int) -> tuple[str, ...]:
    level = {word}
    out: set[str] = set()
    for _ in range(depth):
        level = {w[:i] + w[i + 1:] for w in level for i in range(len(w))}
        out |= level
    return tuple(out)


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def max_edits(word: str) -> int:
    return 0 if len(word) < _FUZZY_MIN else 1 if len(word) < _FUZZY_LONG else 2


class _Vocab:
    """One owner's alias words: what correction and joining may turn a text word into."""

    def __init__(self) -> None:
        self.words: dict[str, int] = defaultdict(int)  # alias word -> number of forms using it
        self.long_deletes: dict[str, set[str]] = defaultdict(set)  # one-letter deletion -> long alias words
        self.forms: dict[str, int] = defaultdict(int)  # whole forms, for two-word pair correction

    def change(self, form: str, delta: int) -> None:
        self.forms[form] += delta
        if not self.forms[form]:
            del self.forms[form]
        for word in form.split():
            if delta > 0 and self.words.get(word, 0) == 0 and len(word) >= _FUZZY_LONG:
                for d in _deletes(word, 1):
                    self.long_deletes[d].add(word)
            self.words[word] += delta
            if not self.words[word]:
                del self.words[word]
                if len(word) >= _FUZZY_LONG:
                    for d in _deletes(word, 1):
                        self.long_deletes[d].discard(word)
                        if not self.long_deletes[d]:
                            del self.long_deletes[d]


class _View:
    """The union of some owners' vocabularies (a tenant's own and the global one), read-only."""

    def __init__(self, vocabs: list[_Vocab], corrections: dict[str, str | None]):
        self.vocabs = vocabs
        self.corrections = corrections  # word -> its correction, for exactly these owners

    def count(self, word: str) -> int:
        return sum(v.words.get(word, 0) for v in self.vocabs)

    def has(self, word: str) -> bool:
        return any(word in v.words for v in self.vocabs)

    def has_form(self, form: str) -> bool:
        return any(form in v.forms for v in self.vocabs)

    def long_words(self, variant: str) -> set[str]:
        out: set[str] = set()
        for v in self.vocabs:
            out |= v.long_deletes.get(variant, set())
        return out

    def correct(self, word: str) -> str | None:
        """The alias word that an unknown word misspells, or None."""
        if word in self.corrections:
            return self.corrections[word]
        fix = self._correct(word)
        if len(self.corrections) > 20_000:
            self.corrections.clear()
        self.corrections[word] = fix
        return fix

    def _correct(self, word: str) -> str | None:
        limit = max_edits(word)
        if not limit or self.has(word) or not word.isalpha() or word in known_words():
            return None
        best = None
        candidates = [w for w in edits1(word) if self.has(w)]
        if not candidates and limit > 1:
            candidates = [w for w in _deletes(word, 2) if self.has(w)]
            for variant in (*edits1(word), *_deletes(word, 2)):
                candidates.extend(self.long_words(variant))
        for cand in candidates:  # closest first, then the more frequent alias word
            dist = edit_distance(word, cand)
            if dist <= max(limit, max_edits(cand)) and (best is None or (dist, -self.count(cand)) < best[0]):
                best = ((dist, -self.count(cand)), cand)
        return best[1] if best else None

    def corrected(self, text: str) -> tuple[str, list[tuple[int, int]]] | None:
        """`text` with split alias words joined and misspelled ones corrected, and for each word of
        the result the first and last word of `text` it stands for; None when nothing changed."""
        words = text.split(" ")
        tokens: list[list] = []  # [word, first original word, last original word]
        i = 0
        while i < len(words):
            for size in (3, 2):  # "cu rie" -> "curie"; longer runs first
                piece = words[i:i + size]
                joined = "".join(piece)
                if (len(piece) == size and len(joined) >= _FUZZY_MIN and self.has(joined)
                        and not any(self.has(w) for w in piece)):
                    tokens.append([joined, i, i + size - 1])
                    i += size
                    break
            else:
                word = words[i]
                fix = self.correct(word) if len(word) >= _FUZZY_MIN and not self.has(word) else None
                tokens.append([fix or word, i, i])
                i += 1
        # A known word beside an alias word: corrected when the two then form a two-word alias.
        for k, (word, first, last) in enumerate(tokens):
            if len(word) < _FUZZY_MIN or not self.has(word):
                continue
            for j in (k - 1, k + 1):
                if not 0 <= j < len(tokens):
                    continue
                other, o_first, o_last = tokens[j]
                if o_first != o_last or other != words[o_first] or self.has(other) or not max_edits(other):
                    continue
                pair = (lambda v: f"{v} {word}") if j < k else (lambda v: f"{word} {v}")
                for variant in edits1(other):
                    if self.has_form(pair(variant)) and edit_distance(variant, other) <= max_edits(other):
                        tokens[j][0] = variant
                        break
        if all(t[1] == t[2] and t[0] == words[t[1]] for t in tokens):
            return None
        return " ".join(t[0] for t in tokens), [(t[1], t[2]) for t in tokens]


class AliasMatcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aliases: dict[str, set[str]] = defaultdict(set)  # normalized alias -> target ids
        self._main = ahocorasick.Automaton()
        self._delta = ahocorasick.Automaton()
        self._delta_keys: set[str] = set()
        self._multiword: set[tuple[str, str]] = set()  # (target id, form) from an alias of two words or more
        self._owner: dict[str, str] = {}  # target id -> owner
        self._target_forms: dict[str, set[str]] = {}
        self._vocabs: dict[str, _Vocab] = defaultdict(_Vocab)
        # Corrections, remembered per set of owners until one of them changes its aliases.
        self._corrections: dict[tuple[str, ...], dict[str, str | None]] = {}

    @staticmethod
    def forms(alias: str) -> set[str]:
        norm = normalize(alias)
        return {norm, norm.replace(" ", "")} - {""}

    def add(self, target_id: str, aliases: list[str], rebuild: bool = True, owner: str = "") -> None:
        with self._lock:
            if target_id in self._target_forms:  # added again: its old aliases go first
                self._drop(target_id)
            self._owner[target_id] = owner
            mine = self._target_forms[target_id] = set()
            vocab = self._vocabs[owner]
            for alias in aliases:
                norm = normalize(alias)
                for form in self.forms(alias):
                    if form not in mine:
                        mine.add(form)
                        vocab.change(form, +1)
                    self._aliases[form].add(target_id)
                    self._delta_keys.add(form)
                    if " " in norm:
                        self._multiword.add((target_id, form))
            self._forget_corrections(owner)
            if rebuild:
                self._rebuild_delta()

    def remove(self, target_id: str) -> None:
        """Takes effect at once: the automata keep the forms until the next fold, mapped to nothing."""
        with self._lock:
            self._drop(target_id)

    def _drop(self, target_id: str) -> None:
        owner = self._owner.pop(target_id, None)
        for form in self._target_forms.pop(target_id, ()):
            self._aliases[form].discard(target_id)
            self._multiword.discard((target_id, form))
            self._vocabs[owner].change(form, -1)
        if owner is not None:
            self._forget_corrections(owner)

    def _forget_corrections(self, owner: str) -> None:
        for key in [k for k in self._corrections if owner in k]:
            del self._corrections[key]

    def rebuild(self) -> None:
        """Folds everything into the main automaton (bulk loads, and when the delta is large)."""
        with self._lock:
            self._fold()

    def _rebuild_delta(self) -> None:
        if len(self._delta_keys) > _DELTA_LIMIT:
            self._fold()
            return
        delta = ahocorasick.Automaton()
        for key in self._delta_keys:
            delta.add_word(key, key)
        if self._delta_keys:
            delta.make_automaton()
        self._delta = delta

    def _fold(self) -> None:
        for form in [f for f, ids in self._aliases.items() if not ids]:
            del self._aliases[form]
        main = ahocorasick.Automaton()
        for form in self._aliases:
            main.add_word(form, form)
        if self._aliases:
            main.make_automaton()
        self._main, self._delta, self._delta_keys = main, ahocorasick.Automaton(), set()

    def _view(self, owners: tuple[str, ...] | None) -> _View:
        key = tuple(sorted(self._vocabs)) if owners is None else owners
        if key not in self._corrections and len(self._corrections) >= 1024:
            del self._corrections[next(iter(self._corrections))]  # the least recently created
        corrections = self._corrections.setdefault(key, {})
        return _View([self._vocabs[o] for o in key if o in self._vocabs], corrections)

    def _scan(self, padded: str, automata, owners: tuple[str, ...] | None) -> list[LexicalHit]:
        hits: list[LexicalHit] = []
        for automaton in automata:
            for end, form in automaton.iter(padded):
                start = end - len(form) + 1
                if padded[start - 1] != " " or padded[end + 1] != " ":
                    continue
                for target_id in self._aliases.get(form, ()):
                    if owners is None or self._owner.get(target_id) in owners:
                        hits.append(LexicalHit(target_id, form, start - 1, end, (target_id, form) in self._multiword))
        return hits

    def find_normalized(self, text: str, fuzzy: bool = True, owners=None) -> list[LexicalHit]:
        """Matches in already-normalized text, whole words only ("pottery" is not "potter").

        `owners` limits both the targets matched and the words correction may use (None: all).
        """
        owners = tuple(owners) if owners is not None else None
        with self._lock:
            automata = [a for a in (self._main, self._delta) if a.kind == ahocorasick.AHOCORASICK]
            hits = self._scan(f" {text} ", automata, owners)
            view = self._view(owners)
            corrected = view.corrected(text) if fuzzy and view.vocabs else None
            if corrected is None:
                return hits
            fixed_text, origin = corrected
            exact = {(h.target_id, h.alias) for h in hits}
            # Word index -> (start, end) in both texts, so fuzzy hits point at the original words.
            orig_bounds = _word_bounds(text)
            fixed_bounds = _word_bounds(fixed_text)
            fixed_starts = {b[0]: k for k, b in enumerate(fixed_bounds)}
            fixed_ends = {b[1]: k for k, b in enumerate(fixed_bounds)}
            for hit in self._scan(f" {fixed_text} ", automata, owners):
                if (hit.target_id, hit.alias) in exact:
                    continue
                first, last = origin[fixed_starts[hit.start]][0], origin[fixed_ends[hit.end]][1]
                hits.append(LexicalHit(hit.target_id, hit.alias, orig_bounds[first][0], orig_bounds[last][1],
                                       hit.multiword, True))
        return hits

    def find(self, text: str, owners=None) -> list[LexicalHit]:
        return self.find_normalized(normalize(text), owners=owners)


def _word_bounds(text: str) -> list[tuple[int, int]]:
    bounds, pos = [], 0
    for word in text.split(" "):
        bounds.append((pos, pos + len(word)))
        pos += len(word) + 1
    return bounds
