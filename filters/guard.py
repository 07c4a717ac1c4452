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

Two more ends count. A name glued to what follows at a change of case or between letters and
digits ("ParisII", "Paris2024") ends there: no ordinary word is spelled that way, so it is the name
written to slip past a word match. And a guard started with `open_end` (a triggered row's own
names) needs no end at all, like the token bans it backs: "Parisian" names Paris as surely as
"Paris" does, and the row was asked about Paris; nor a word start where lower-case letters run
into it ("ofParis": a row continued after a rewind wrote the name without its space).

A cut, and what is held back, never leaves whitespace dangling at the end of what was sent: the
client gets "located in", not "located in ", so an answer continued from there reads whole.
"""

from __future__ import annotations

import re
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Callable, Sequence

import ahocorasick

from detectors.aliases import STOP_WORDS
from detectors.normalize import normalize, normalize_with_offsets

# A word longer than this (a base64 blob, a letter run without end) is cut for context, so
# each feed costs at most about this much normalizing however long the stream grows.
_MAX_CONTEXT = 256
# A judge reads at most this much of what the stream goes on from (`written`): the answer sent
# before a rewind, whole, and a prefill's or a raw prompt's end; the conversation it has anyway.
_MAX_JUDGED_BEFORE = 2_000
# What is glued to a name, and whether it is a word of its own (a capital then lower-case letters).
_GLUED_RUN = re.compile(r"\w+")
_WORD = re.compile(r"[A-Z]?[a-z]{2,}")
# A judged match waits for this many more (compact) characters: the next words decide whether
# "Paris" is the city or the start of "Paris Hilton".
_JUDGE_LOOKAHEAD = 16


@dataclass(frozen=True)
class GuardResult:
    text_to_emit: str
    tripped: bool


class GuardPatterns:
    """Patterns compiled once (normalized, compacted, in one automaton) and shared by streams.

    `combine` joins compiled sets without recompiling them (a tenant's large, rarely rebuilt set
    and its small, often rebuilt one)."""

    def __init__(self, patterns: Sequence[str]):
        self.phrases = tuple(patterns)  # as given, for whoever needs them otherwise (token bans)
        self.parts: tuple[GuardPatterns, ...] = (self,)  # the sets compiled on their own it joins
        self.compact = frozenset(c for c in (normalize(p).replace(" ", "") for p in patterns) if c)
        self.longest = max(map(len, self.compact), default=0)
        automaton = ahocorasick.Automaton()
        for pattern in self.compact:
            automaton.add_word(pattern, len(pattern))
        if self.compact:
            automaton.make_automaton()
        self._automata = (automaton,) if self.compact else ()

    @classmethod
    def combine(cls, parts: Sequence[GuardPatterns]) -> GuardPatterns:
        joined = cls.__new__(cls)
        parts = [p for p in parts if p]
        # Neither is materialized for a union: read `parts`.
        joined.compact = parts[0].compact if len(parts) == 1 else None
        joined.phrases = parts[0].phrases if len(parts) == 1 else None
        joined.parts = tuple(q for p in parts for q in p.parts)
        joined.longest = max((p.longest for p in parts), default=0)
        joined._automata = tuple(a for p in parts for a in p._automata)
        return joined

    def __bool__(self) -> bool:
        return bool(self._automata)

    def begins(self, compact: str) -> bool:
        """Whether `compact` is the start of a pattern but no whole one (a whole one is matched)."""
        return any(a.match(compact) for a in self._automata) and not any(a.exists(compact) for a in self._automata)

    def occurrences(self, compact: str) -> list[tuple[int, int]]:
        """(start, stop) of every occurrence, overlapping ones included."""
        return [(end + 1 - size, end + 1) for automaton in self._automata for end, size in automaton.iter(compact)]

    def start(self, judge: Callable[[str], bool] | None = None, executor: Executor | None = None,
              open_end: bool = False, written: str = "") -> StreamGuard:
        return StreamGuard(self, judge, executor, open_end, written)


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

    def glued(self, raw: str, stop: int) -> bool:
        """Whether compact index `stop` falls where a word is glued to a name: lower to upper
        case ("ParisII") or letter to digit and back ("Paris2024")."""
        if not 0 < stop < len(self.offsets) or stop in self.bounds:
            return False
        a, b = raw[self.offsets[stop - 1]], raw[self.offsets[stop - 1] + 1]
        return (a.islower() and b.isupper()) or (a.isalpha() and b.isdigit()) or (a.isdigit() and b.isalpha())


class StreamGuard:
    """Cuts at the first pattern match; with a `judge`, only at a match the judge confirms.

    The judge sees the whole stream up to a few words past the match and is asked once per
    occurrence; a match it clears is emitted. With an `executor` the judge runs there and the
    guard holds the text from the match on until it answers, so whoever feeds the guard (the
    engine's decode loop) never waits for it; only `finish` waits for answers still due.

    `written`: what the stream goes on from and the reader already has (a client's prefill, the
    answer sent before a rewind). It is never emitted, and a match wholly inside it is not the
    stream's; one it begins and the stream finishes is ("…painted by Leonardo" + " da Vinci").
    Its last `_MAX_CONTEXT` characters are matched, from a word start (a judge reads more).
    """

    def __init__(self, patterns: Sequence[str] | GuardPatterns, judge: Callable[[str], bool] | None = None,
                 executor: Executor | None = None, open_end: bool = False, written: str = ""):
        self._patterns = patterns if isinstance(patterns, GuardPatterns) else GuardPatterns(patterns)
        self._judge = judge
        self._executor = executor
        self._open_end = open_end
        self._verdicts: dict[int, Future] = {}  # stream offset of a match end -> the judge's answer
        window, read = _tail(written, _MAX_CONTEXT), _tail(written, _MAX_JUDGED_BEFORE)
        self._raw = window  # the window: raw text kept for context plus everything not yet emitted
        self._emitted = len(window)  # how much of the window has been emitted (or was never to be)
        self._trimmed = 0  # raw characters dropped from the front of the window so far
        # What was dropped, kept only for a judge, with what came before the window.
        before = read[:len(read) - len(window)]
        self._history: list[str] = [before] if judge is not None and before else []
        self._cleared: set[int] = set()  # stream offsets of match ends the judge let through
        self.tripped = False

    def feed(self, delta: str) -> GuardResult:
        if self.tripped:
            return GuardResult("", True)
        self._raw += delta
        return self._scan(final=False)

    def finish(self, cut_short: bool = False) -> str:
        """The held-back text once the stream has ended; check `tripped` afterwards, since a
        pattern that closes the stream is only confirmed here (nothing follows it). `cut_short`:
        the stream was cut off (max_tokens), not ended by the model, so a pattern's first words
        at its end are the name it was writing: they are not sent ("...the portrait of Leonardo
        da"). A cut answer is incomplete anyway, and the words it loses begin a name."""
        if self.tripped:
            return ""
        return self._scan(final=True, cut_short=cut_short).text_to_emit

    @property
    def waits(self) -> bool:
        """Whether `finish` may wait for a judge running elsewhere (then call it off the hot loop)."""
        return self._judge is not None and self._executor is not None

    @property
    def pending(self) -> bool:
        """Whether a judge's answer is still due (then `finish` waits for it)."""
        return any(not f.done() for f in self._verdicts.values())

    def _scan(self, final: bool, cut_short: bool = False) -> GuardResult:
        if not self._patterns:
            return self._emit_until(len(self._raw), False)
        view = _View(self._raw)
        end = len(view.compact)
        hold = max(0, end - (self._patterns.longest - 1))  # compact index where holding starts
        cuts: list[int] = []
        for start, stop in self._patterns.occurrences(view.compact):
            # A triggered row's own name may also start glued after lower-case letters ("ofParis").
            if (start not in view.bounds and not (self._open_end and view.glued(self._raw, start))) \
                    or view.offsets[stop - 1] < self._emitted:
                continue  # inside a word, or judged already when it was emitted
            glued = view.glued(self._raw, stop)
            if self._open_end or glued or stop in view.bounds or (stop == end and final):
                if self._judge is not None and not final and end - stop < _JUDGE_LOOKAHEAD:
                    hold = min(hold, start)
                else:
                    verdict = self._confirmed(view.offsets[stop - 1] + 1, len(self._raw) if final else
                                              view.offsets[min(stop + _JUDGE_LOOKAHEAD, end) - 1] + 1, final,
                                              glued)
                    if verdict is None:  # the judge has not answered yet: hold from the match on
                        hold = min(hold, start)
                    elif verdict:
                        cuts.append(view.offsets[start])
            elif stop == end:  # the next character decides ("Potter" or "Pottery"): keep it back
                hold = min(hold, start)
        if cuts:
            self.tripped = True
            return self._emit_until(self._unspaced(min(cuts)), True)
        if final:
            begun = self._name_begun(view) if cut_short else len(self._raw)
            return self._emit_until(self._unspaced(begun) if begun < len(self._raw) else begun, False)
        # With nothing normalized yet, even "@" might become the first letter of a word.
        held_raw = view.offsets[hold] if hold < end else (view.offsets[-1] + 1 if end else 0)
        result = self._emit_until(self._unspaced(held_raw), False)
        self._trim(view, hold)
        return result

    def _name_begun(self, view: _View) -> int:
        """Raw index where the stream's end begins a pattern with a whole word of its own (not a
        function word: "Leonardo da" of "Leonardo da Vinci", not "the" of "The Red Planet", nor
        the first letters of one word, which name nothing yet), or the window's length."""
        end = len(view.compact)
        for start in range(max(0, end - self._patterns.longest + 1), end):
            if start not in view.bounds or view.offsets[start] < self._emitted \
                    or not self._patterns.begins(view.compact[start:]):
                continue
            cuts = sorted(b for b in view.bounds if start < b < end)
            whole = [view.compact[a:b] for a, b in zip([start, *cuts], cuts)]  # the last word may be cut
            if any(len(word) >= 3 and word not in STOP_WORDS for word in whole):
                return view.offsets[start]
        return len(self._raw)

    def _unspaced(self, raw_index: int) -> int:
        """`raw_index` moved back over the whitespace before it (never into what was sent)."""
        while raw_index > self._emitted and self._raw[raw_index - 1].isspace():
            raw_index -= 1
        return raw_index

    def _confirmed(self, raw_stop: int, raw_context_end: int, final: bool, glued: bool = False) -> bool | None:
        """Whether the judge confirms the match ending at `raw_stop`; None while it is deciding.
        A glued name reaches the judge as a word of its own: what is glued to it stays a word when
        it is one ("ParisHilton" as "Paris Hilton") and is dropped when it is not ("ParisII" and
        "Paris2024" as "Paris"): letters or digits glued to a name disguise it, they name nothing."""
        if self._judge is None:
            return True
        at = self._trimmed + raw_stop
        if at in self._cleared:
            return False
        verdict = self._verdicts.get(at)
        if verdict is None:
            context = self._raw[:raw_context_end]
            if glued:
                tail = _GLUED_RUN.match(context, raw_stop)
                suffix = tail.group() if tail else ""
                kept = " " + suffix if _WORD.fullmatch(suffix) else ""
                context = context[:raw_stop] + kept + context[raw_stop + len(suffix):]
            context = "".join(self._history) + context
            verdict = self._verdicts[at] = (self._executor.submit(self._judge, context) if self._executor
                                            else _settled(self._judge(context)))
        if not verdict.done() and not final:
            return None
        if verdict.result():  # the judge answers for its own failures (fail closed or open)
            return True
        del self._verdicts[at]
        self._cleared.add(at)
        return False

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
            if self._judge is not None:
                self._history.append(self._raw[:keep_from])
            self._raw = self._raw[keep_from:]
            self._emitted -= keep_from
            self._trimmed += keep_from
            self._cleared = {at for at in self._cleared if at > self._trimmed}
            self._verdicts = {at: f for at, f in self._verdicts.items() if at > self._trimmed}


class GuardChain:
    """Stream guards in series: what one lets out, the next scans. Trips when any of them does."""

    def __init__(self, guards: Sequence[StreamGuard]):
        self._guards = list(guards)

    @property
    def tripped(self) -> bool:
        return any(g.tripped for g in self._guards)

    @property
    def pending(self) -> bool:
        return any(g.pending for g in self._guards)

    @property
    def waits(self) -> bool:
        return any(g.waits for g in self._guards)

    def feed(self, delta: str) -> GuardResult:
        for i, guard in enumerate(self._guards):
            result = guard.feed(delta)
            delta = result.text_to_emit
            if result.tripped:  # the text before the cut still passes the guards after this one
                return GuardResult(self._flush(delta, i + 1), True)
        return GuardResult(delta, False)

    def finish(self, cut_short: bool = False) -> str:
        """The held-back text once the stream has ended; check `tripped` afterwards."""
        return self._flush("", 0, cut_short)

    def _flush(self, text: str, first: int, cut_short: bool = False) -> str:
        """Passes `text` through the guards from `first` on and ends each: nothing more follows."""
        for guard in self._guards[first:]:
            if text:
                text = guard.feed(text).text_to_emit
            if not guard.tripped:
                text += guard.finish(cut_short)
        return text


@dataclass(frozen=True)
class GuardPlan:
    """A row's guard: `banned` patterns are cut wherever they appear, `watched` ones only where
    `judge` confirms (run on `executor` when given). Shared by the rows of a request; `start()`
    gives each its own state."""

    banned: GuardPatterns | None = None
    watched: GuardPatterns | None = None
    judge: Callable[[str], bool] | None = None
    executor: Executor | None = None

    def start(self, written: str = "") -> StreamGuard | GuardChain:
        """One row's guard; `written` is the text this row goes on from (a client's prefill, the
        answer sent before a rewind): names it begins are finished in the row, and the judge
        reads it."""
        guards = []
        if self.banned:
            guards.append(self.banned.start(open_end=True, written=written))
        if self.watched:
            guards.append(self.watched.start(self.judge, self.executor, written=written))
        return guards[0] if len(guards) == 1 else GuardChain(guards)


def _tail(written: str, limit: int) -> str:
    """The last `limit` characters of `written`, from the start of a word."""
    if len(written) <= limit:
        return written
    tail = written[-limit:]
    space = re.search(r"\s", tail)
    return tail[space.end():] if space else tail


def _settled(value: bool) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future
