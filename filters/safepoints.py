"""Holding a triggered row's text back to its last safe point, so a guard hit can be rewound.

Text already streamed cannot be taken back. A row that may have to rewind (one whose own names
the guard watches) therefore sends whole sentences: what follows the last sentence end waits
until the sentence is complete. When the guard stops a name, the held part is dropped and the
answer goes on from the safe point, which is always the end of what the client has.

A safe point is just after a sentence end (".", "!", "?" or "…", closing quotes and brackets
included, followed by whitespace) or a line break. The whitespace after a sentence end stays
held: a continuation brings its own. A sentence that runs on past `max_hold` characters is let
out at its last clause break (",", ";", ":") or word break instead, so holding stays bounded.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"""[.!?…]["')\]»”’]*(?=\s)|\n""")
_CLAUSE = re.compile(r"""[,;:](?=\s)|\S(?=\s)""")


class SafePoints:
    """`max_sentences` (0: no limit) ends the text after that many sentences: `complete` turns true
    and whatever follows the last one is dropped, however it arrives (a guard may release a
    sentence and the next one at once). `after`: the answer's words before this text (an opener
    the model finishes): "." right after "... well, I'm not sure" ends that sentence."""

    def __init__(self, max_hold: int = 300, max_sentences: int = 0, after: str = ""):
        self._held = ""
        self._max_hold = max_hold
        self._max_sentences = max_sentences
        ends = [m.end() for m in _SENTENCE.finditer(after + " ")]
        # whether the text since the last sentence end has any words yet
        self._said = bool(after[max(ends, default=0):].strip())
        self.sentences = 0  # sentences let out so far (a line break after no words ends none)
        self.complete = False

    def feed(self, text: str) -> str:
        """What of the text so far may be sent now: everything up to the last safe point."""
        if self.complete:
            return ""
        self._held += text
        cut = max((m.end() for m in _SENTENCE.finditer(self._held)), default=0)
        if cut == 0 and len(self._held) > self._max_hold:
            breaks = [m.end() for m in _CLAUSE.finditer(self._held)]
            clauses = [m.end() for m in _CLAUSE.finditer(self._held) if m.group() in ",;:"]
            cut = max(clauses or breaks or [0])
        start = 0
        for end in _SENTENCE.finditer(self._held[: cut + 1]):  # a sentence end is seen with the space after it
            if end.end() > cut:
                break
            if self._said or self._held[start:end.start()].strip():
                self.sentences += 1
                if self.sentences == self._max_sentences:
                    cut, self.complete = end.end(), True
                    break
            self._said, start = False, end.end()
        self._said = self._said or bool(self._held[start:cut].strip())
        sent, self._held = self._held[:cut], self._held[cut:]
        if self.complete:
            self._held = ""
        return sent

    def flush(self) -> str:
        """The held text, once the answer ended normally."""
        held, self._held = self._held, ""
        return held

    def drop(self) -> None:
        """Forgets the held text: the answer is rewound to the safe point."""
        self._held = ""
