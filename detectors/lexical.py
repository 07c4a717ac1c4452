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


class AliasMatcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aliases: dict[str, set[str]] = defaultdict(set)  # normalized alias -> target ids
        self._main = ahocorasick.Automaton()
        self._delta = ahocorasick.Automaton()
        self._delta_keys: set[str] = set()
        self._removed: set[str] = set()
        self._multiword: set[str] = set()  # forms that come from an alias of two words or more
        self._words: dict[str, int] = defaultdict(int)  # alias word -> number of forms using it
        self._long_deletes: dict[str, set[str]] = defaultdict(set)  # one-letter deletion -> long alias words
        self._corrections: dict[str, str | None] = {}  # word -> its correction, until the aliases change

    @staticmethod
    def forms(alias: str) -> set[str]:
        norm = normalize(alias)
        return {norm, norm.replace(" ", "")} - {""}

    def add(self, target_id: str, aliases: list[str], rebuild: bool = True) -> None:
        with self._lock:
            self._removed.discard(target_id)
            for alias in aliases:
                norm = normalize(alias)
                for form in self.forms(alias):
                    if target_id not in self._aliases[form]:
                        for word in form.split():
                            if self._words[word] == 0 and len(word) >= _FUZZY_LONG:
                                for d in _deletes(word, 1):
                                    self._long_deletes[d].add(word)
                            self._words[word] += 1
                    self._aliases[form].add(target_id)
                    self._delta_keys.add(form)
                    self._corrections.clear()
                    if " " in norm:
                        self._multiword.add(form)
            if rebuild:
                self._rebuild_delta()

    def remove(self, target_id: str) -> None:
        with self._lock:
            self._removed.add(target_id)

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
        if self._removed:
            for form in list(self._aliases):
                self._aliases[form] -= self._removed
                if not self._aliases[form]:
                    del self._aliases[form]
            self._multiword &= self._aliases.keys()
            self._words = defaultdict(int)
            self._long_deletes = defaultdict(set)
            for form in self._aliases:
                for word in form.split():
                    if self._words[word] == 0 and len(word) >= _FUZZY_LONG:
                        for d in _deletes(word, 1):
                            self._long_deletes[d].add(word)
                    self._words[word] += 1
        self._removed.clear()
        self._corrections.clear()
        main = ahocorasick.Automaton()
        for form in self._aliases:
            main.add_word(form, form)
        if self._aliases:
            main.make_automaton()
        self._main, self._delta, self._delta_keys = main, ahocorasick.Automaton(), set()

    def correct(self, word: str) -> str | None:
        """The alias word that an unknown word misspells, or None."""
        if word in self._corrections:
            return self._corrections[word]
        fix = self._correct(word)
        if len(self._corrections) > 50_000:
            self._corrections.clear()
        self._corrections[word] = fix
        return fix

    def _correct(self, word: str) -> str | None:
        limit = max_edits(word)
        if not limit or word in self._words or not word.isalpha() or word in known_words():
            return None
        words, best = self._words, None
        candidates = [w for w in edits1(word) if w in words]
        if not candidates and limit > 1:
            candidates = [w for w in _deletes(word, 2) if w in words]
            for variant in (*edits1(word), *_deletes(word, 2)):
                candidates.extend(self._long_deletes.get(variant, ()))
        for cand in candidates:  # closest first, then the more frequent alias word
            dist = edit_distance(word, cand)
            if dist <= max(limit, max_edits(cand)) and (best is None or (dist, -words[cand]) < best[0]):
                best = ((dist, -words[cand]), cand)
        return best[1] if best else None

    def _corrected(self, text: str) -> tuple[str, list[tuple[int, int]]] | None:
        """`text` with misspelled alias words corrected, and the spans (in the original) of corrections.

        Corrections keep no character offsets; a hit that touches one is reported on the original
        words it covers.
        """
        words = text.split(" ")
        fixed = list(words)
        changed = False
        for i, word in enumerate(words):
            if len(word) >= _FUZZY_MIN and word not in self._words:
                fix = self.correct(word)
                if fix:
                    fixed[i], changed = fix, True
        # A known word beside an alias word: corrected when the two then form a two-word alias.
        for i, word in enumerate(fixed):
            if len(word) < _FUZZY_MIN or word not in self._words:
                continue
            for j in (i - 1, i + 1):
                if 0 <= j < len(fixed) and fixed[j] == words[j] and fixed[j] not in self._words and max_edits(fixed[j]):
                    pair = (lambda v: f"{v} {word}") if j < i else (lambda v: f"{word} {v}")
                    for variant in edits1(fixed[j]):
                        if pair(variant) in self._aliases and edit_distance(variant, fixed[j]) <= max_edits(fixed[j]):
                            fixed[j], changed = variant, True
                            break
        if not changed:
            return None
        return " ".join(fixed), [(i, len(words[i])) for i in range(len(words)) if fixed[i] != words[i]]

    def _scan(self, padded: str, automata, removed: set[str]) -> list[LexicalHit]:
        hits: list[LexicalHit] = []
        for automaton in automata:
            for end, form in automaton.iter(padded):
                start = end - len(form) + 1
                if padded[start - 1] != " " or padded[end + 1] != " ":
                    continue
                for target_id in self._aliases.get(form, ()):
                    if target_id not in removed:
                        hits.append(LexicalHit(target_id, form, start - 1, end, form in self._multiword))
        return hits

    def find_normalized(self, text: str, fuzzy: bool = True) -> list[LexicalHit]:
        """Matches in already-normalized text, whole words only ("pottery" is not "potter")."""
        with self._lock:
            automata = [a for a in (self._main, self._delta) if a.kind == ahocorasick.AHOCORASICK]
            removed = set(self._removed)
            hits = self._scan(f" {text} ", automata, removed)
            corrected = self._corrected(text) if fuzzy and self._words else None
            if corrected is None:
                return hits
            fixed_text, _ = corrected
            exact = {(h.target_id, h.alias) for h in hits}
            # Map word index -> (start, end) in both texts so fuzzy hits point at the original words.
            orig_bounds = _word_bounds(text)
            fixed_bounds = _word_bounds(fixed_text)
            fixed_starts = {b[0]: k for k, b in enumerate(fixed_bounds)}
            fixed_ends = {b[1]: k for k, b in enumerate(fixed_bounds)}
            for hit in self._scan(f" {fixed_text} ", automata, removed):
                if (hit.target_id, hit.alias) in exact:
                    continue
                first, last = fixed_starts[hit.start], fixed_ends[hit.end]
                hits.append(LexicalHit(hit.target_id, hit.alias, orig_bounds[first][0], orig_bounds[last][1],
                                       hit.multiword, True))
        return hits

    def find(self, text: str) -> list[LexicalHit]:
        return self.find_normalized(normalize(text))


def _word_bounds(text: str) -> list[tuple[int, int]]:
    bounds, pos = [], 0
    for word in text.split(" "):
        bounds.append((pos, pos + len(word)))
        pos += len(word) + 1
    return bounds
