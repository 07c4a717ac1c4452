"""A streaming text guard: nothing matching a pattern ever leaves, not even its first letters.

The guard holds back the raw text that could still be the start of a pattern, scans the
normalized view of it (see `detectors.normalize`: case, leet, look-alikes, zero-width and
separators folded, spelled-out letters joined) and cuts the stream where a match starts.

Matching happens in the *compact* view: the normalized text with its spaces removed, where
pattern and text agree whatever the spacing ("Harry Potter", "HarryPotter", "Har ry Pot-ter").
A match counts only if it starts and ends on a boundary of that view: a place where the
normalized text had a space, or where raw characters were dropped inside a word. The second
kind finds "H-a-r-r-y" inside a run of spelled letters the normalizer joined with its
neighbours ("a H-a-r-r-y" becomes "aharry"); the first keeps "pottery" clear of "Potter".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import ahocorasick

from detectors.normalize import normalize, normalize_with_offsets

# A word longer than this (a base64 blob, a letter run without end) is cut for context, so
# each feed costs at most about this much normalizing however long the stream grows.
_MAX_CONTEXT = 256


@dataclass(frozen=True)
class GuardResult:
    text_to_emit: str
    tripped: bool


class GuardPatterns:
    """Patterns compiled once (normalized, compacted, in one automaton) and shared by streams."""

    def __init__(self, patterns: Sequence[str]):
        self.compact = frozenset(c for c in (normalize(p).replace(" ", "") for p in patterns) if c)
        self.longest = max(map(len, self.compact), default=0)
        self._automaton = ahocorasick.Automaton()
        for pattern in self.compact:
            self._automaton.add_word(pattern, len(pattern))
        if self.compact:
            self._automaton.make_automaton()

    def occurrences(self, compact: str) -> list[tuple[int, int]]:
        """(start, stop) of every occurrence, overlapping ones included."""
        if not self.compact:
            return []
        return [(end + 1 - size, end + 1) for end, size in self._automaton.iter(compact)]

    def start(self) -> StreamGuard:
        return StreamGuard(self)


class _View:
    """The compact view of a raw window: its characters, their raw offsets and its boundaries."""

    def __init__(self, raw: str):
        normalized, offsets = normalize_with_offsets(raw)
        chars: list[str] = []
        self.offsets: list[int] = []  # raw index of each compact character
        self.word_starts: list[int] = []  # compact index where each normalized word begins
        self.bounds = {0}
        new_word = True
        for ch, at in zip(normalized, offsets):
            if ch == " ":
                self.bounds.add(len(chars))
                new_word = True
                continue
            if new_word:
                self.word_starts.append(len(chars))
                new_word = False
            elif at - self.offsets[-1] > 1:  # raw characters dropped inside a word
                self.bounds.add(len(chars))
            chars.append(ch)
            self.offsets.append(at)
        self.compact = "".join(chars)


class StreamGuard:
    def __init__(self, patterns: Sequence[str] | GuardPatterns):
        self._patterns = patterns if isinstance(patterns, GuardPatterns) else GuardPatterns(patterns)
        self._raw = ""  # the window: raw text kept for context plus everything not yet emitted
        self._emitted = 0  # how much of the window has been emitted
        self.tripped = False

    def feed(self, delta: str) -> GuardResult:
        if self.tripped:
            return GuardResult("", True)
        self._raw += delta
        return self._scan(final=False)

    def finish(self) -> str:
        """The held-back text once the stream has ended; check `tripped` afterwards, since a
        pattern that closes the stream is only confirmed here (nothing follows it)."""
        if self.tripped:
            return ""
        return self._scan(final=True).text_to_emit

    def _scan(self, final: bool) -> GuardResult:
        if not self._patterns.compact:
            return self._emit_until(len(self._raw), False)
        view = _View(self._raw)
        end = len(view.compact)
        hold = max(0, end - (self._patterns.longest - 1))  # compact index where holding starts
        cuts: list[int] = []
        for start, stop in self._patterns.occurrences(view.compact):
            if start not in view.bounds or view.offsets[stop - 1] < self._emitted:
                continue  # inside a word, or judged already when it was emitted
            if stop in view.bounds or (stop == end and final):
                cuts.append(view.offsets[start])
            elif stop == end:  # the next character decides ("Potter" or "Pottery"): keep it back
                hold = min(hold, start)
        if cuts:
            self.tripped = True
            return self._emit_until(min(cuts), True)
        if final:
            return self._emit_until(len(self._raw), False)
        # With nothing normalized yet, even "@" might become the first letter of a word.
        held_raw = view.offsets[hold] if hold < end else (view.offsets[-1] + 1 if end else 0)
        result = self._emit_until(held_raw, False)
        self._trim(view, hold)
        return result

    def _emit_until(self, raw_index: int, tripped: bool) -> GuardResult:
        text = self._raw[self._emitted : raw_index] if raw_index > self._emitted else ""
        self._emitted = max(self._emitted, raw_index)
        return GuardResult(text, tripped)

    def _trim(self, view: _View, hold: int) -> None:
        """Drops emitted text that no future match can start in or be normalized against.

        What stays: the word holding the first held character and the word before it, so that
        boundaries, leet words and letter runs normalize just as they did in the whole text.
        """
        if not view.word_starts:
            return
        word = max((i for i, s in enumerate(view.word_starts) if s <= hold), default=0)
        keep_from = view.offsets[view.word_starts[max(0, word - 1)]]
        keep_from = min(max(keep_from, self._emitted - _MAX_CONTEXT), self._emitted)
        if keep_from > 0:
            self._raw = self._raw[keep_from:]
            self._emitted -= keep_from
