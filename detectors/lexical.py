"""Whole-word alias matching with an Aho-Corasick automaton that stays fast at 10^6 aliases.

Building an automaton over a million aliases takes seconds, so new aliases go into a small
delta automaton rebuilt on each add (milliseconds); once the delta grows past a bound it is
folded into the main automaton. Removals are tombstones, dropped at the next fold.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

import ahocorasick

from .normalize import normalize

_DELTA_LIMIT = 2_000


@dataclass(frozen=True)
class LexicalHit:
    target_id: str
    alias: str
    start: int
    end: int


class AliasMatcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aliases: dict[str, set[str]] = defaultdict(set)  # normalized alias -> target ids
        self._main = ahocorasick.Automaton()
        self._delta = ahocorasick.Automaton()
        self._delta_keys: set[str] = set()
        self._removed: set[str] = set()

    @staticmethod
    def forms(alias: str) -> set[str]:
        norm = normalize(alias)
        return {norm, norm.replace(" ", "")} - {""}

    def add(self, target_id: str, aliases: list[str], rebuild: bool = True) -> None:
        with self._lock:
            self._removed.discard(target_id)
            for alias in aliases:
                for form in self.forms(alias):
                    self._aliases[form].add(target_id)
                    self._delta_keys.add(form)
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
        for form in list(self._aliases):
            self._aliases[form] -= self._removed
            if not self._aliases[form]:
                del self._aliases[form]
        self._removed.clear()
        main = ahocorasick.Automaton()
        for form in self._aliases:
            main.add_word(form, form)
        if self._aliases:
            main.make_automaton()
        self._main, self._delta, self._delta_keys = main, ahocorasick.Automaton(), set()

    def find_normalized(self, text: str) -> list[LexicalHit]:
        """Matches in already-normalized text, whole words only ("pottery" is not "potter")."""
        padded = f" {text} "
        hits: list[LexicalHit] = []
        with self._lock:
            automata = [a for a in (self._main, self._delta) if a.kind == ahocorasick.AHOCORASICK]
            removed = set(self._removed)
            aliases = self._aliases
            for automaton in automata:
                for end, form in automaton.iter(padded):
                    start = end - len(form) + 1
                    if padded[start - 1] != " " or padded[end + 1] != " ":
                        continue
                    for target_id in aliases.get(form, ()):
                        if target_id not in removed:
                            hits.append(LexicalHit(target_id, form, start - 1, end))
        return hits

    def find(self, text: str) -> list[LexicalHit]:
        return self.find_normalized(normalize(text))
