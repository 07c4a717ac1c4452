"""Per-row bans on the tokens that would complete a banned string.

A `BannedSet` is a byte trie of banned strings. Matching bytes instead of canonical token
sequences is what makes the ban hold: " Potter" is one token in SmolLM2, but a row that has
produced " Harry Pot" (an assistant prefill, say) completes the name with "ter", and a model
steered away from " Potter" happily spells it " Pot" + "ter" or " P" + "otter". Whatever the
split, the token that would finish the string is banned. The rules:

- A banned string starts only at a word boundary: after a non-alphanumeric byte or at the start
  of the text. This is what "with and without a leading space" means in bytes, and it keeps
  "Potter" from banning "spotter".
- Matching ignores ASCII case, so every capitalisation (lower, Title, ALL CAPS, mixed) is
  banned; non-ASCII phrases add their lower/upper/title forms explicitly.
- Plurals and possessives ("Obamas", "Obama's") contain the bare name as a prefix, so banning
  the completion of the bare name already bans them. A multi-word phrase also bans its
  space-less spelling ("HarryPotter").
- There is no word boundary at the end: the completion is banned before anyone knows what
  follows, so a triggered row cannot write "Potters" or "pottery" either. Rows that trigger
  nothing carry no state and are never touched.
- A `plain` set also bans every specific the conversation does not already hold: a token that
  starts a capitalised word, unless the prompt has that very token, except where a sentence
  starts; and any number but the prompt's own, digit by digit, and whole ("201" is not "2017").
  A row that must not know a target cannot name a substitute for what it forgot ("founded by
  Bill Patel", "the Xbox 1255"); it can only say it does not know. Where the prompt ends
  mid-sentence (a prefill: "The capital of Japan is"), its first token is not "I"
  either: "is I'm not familiar with that." is a refusal spliced into a sentence. And "I" stays a
  word of its own: the token after it cannot go on with letters ("Ikos", "Izalak", "Istanbul"),
  nor can a capital be glued onto a word ("defeatedThe 2016 election…", a continuation that
  started the sentence over, held words or not) or a full stop ("I.V.E.U.S.A").
  Its words are words: one goes on only toward a word the tokenizer holds whole (or its plural)
  or one of the prompt's ("bismicali" is none), and it writes no script the prompt does not, nor a
  bare space token unless the prompt has one, nor after one a second space, a line break or any
  letters but the start of one of the prompt's words: a word the tokenizer holds comes with a
  space token of its own, so " " + "ilk" is a word spelled by hand (`Vocab.after_bare_space`). Nor
  does it write the same three tokens twice: a row cornered on every name it knew loops.

A row's `BanState` tracks the trie nodes its recent text has reached: at most one per start
position, so the work per step is bounded by the longest banned string, not by how many there
are. The tokens banned at a node are computed on first visit and cached on the node.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Iterator, Sequence

import torch

from .vocab import WORD_BYTES, Vocab, script_leads, vocab_for


class _Node:
    __slots__ = ("children", "terminal", "banned", "listed")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.terminal = False
        self.banned: list[int] | None = None  # tokens that complete a string from here
        self.listed: list[int] | None = None  # tokens that continue one without completing it


def _walk(node: _Node, data: bytes) -> _Node | None:
    for byte in data:
        node = node.children.get(byte)
        if node is None:
            return None
    return node


def _paths(node: _Node) -> Iterator[tuple[bytes, _Node]]:
    """Every (path, node) below `node`, not descending past a completed string."""
    stack = [(node, b"")]
    while stack:
        parent, path = stack.pop()
        for byte, child in parent.children.items():
            step = path + bytes((byte,))
            yield step, child
            if not child.terminal:
                stack.append((child, step))


def _ends_word(data: bytes) -> bool:
    return bool(data) and data[-1] in WORD_BYTES


@lru_cache(maxsize=65536)
def phrase_patterns(phrase: str) -> frozenset[bytes]:
    """The lowercased UTF-8 strings one phrase bans (see the module docstring for the rules)."""
    text = " ".join(phrase.split())
    if not text:
        return frozenset()
    title = " ".join(w[:1].upper() + w[1:].lower() for w in text.split(" "))
    forms = {text, text.lower(), text.upper(), title, text[:1].upper() + text[1:]}
    forms |= {f.replace(" ", "") for f in forms}
    return frozenset(f.encode("utf-8").lower() for f in forms)


class BannedSet:
    """Compiled banned strings for one tokenizer; immutable and shared by every row that uses it."""

    def __init__(self, vocab: Vocab, patterns: frozenset[bytes], plain: bool = False):
        self.vocab = vocab
        self.patterns = patterns
        self.plain = plain
        self.max_len = max(map(len, patterns), default=0)
        self._root = _Node()
        for pattern in patterns:
            node = self._root
            for byte in pattern:
                node = node.children.setdefault(byte, _Node())
            node.terminal = True
        # A token that holds a whole banned string after a non-word byte of its own (" Obama")
        # completes it whatever came before, so it is banned at every step.
        self._always = sorted({t for p in patterns for t in vocab.inner.with_prefix(p)})
        self._inner_listed: list[int] | None = None
        self._word_set: frozenset[bytes] | None = None

    def __len__(self) -> int:
        return len(self.patterns)

    def pattern_strings(self) -> list[str]:
        """The compiled patterns as text, for `compile_patterns` in another process (a vLLM worker)."""
        return sorted(p.decode("utf-8") for p in self.patterns)

    @staticmethod
    def union(sets: Iterable[BannedSet]) -> BannedSet:
        """One set banning everything the given sets ban, for a row where several targets fire."""
        sets = list(sets)
        if not sets:
            raise ValueError("union of no banned sets")
        vocab = sets[0].vocab
        if any(s.vocab is not vocab for s in sets):
            raise ValueError("banned sets compiled for different tokenizers")
        if len(sets) == 1:
            return sets[0]
        return _compiled(vocab, frozenset().union(*(s.patterns for s in sets)), any(s.plain for s in sets))

    def start(self, prompt_ids: Sequence[int] = ()) -> BanState:
        """A fresh state for one row, primed with the prompt's tail.

        The tail matters for an assistant prefill: one ending in " Harry Pot" must not be
        completed. Only the last `max_len` bytes can take part in a match, so only they are read.
        """
        state = BanState(self)
        lower = self.vocab.lower
        if self.plain:
            specific = self.vocab.specific
            held = torch.tensor(sorted(self._held(prompt_ids)), dtype=torch.long)
            prompt = b"".join(self.vocab.raw[t] for t in prompt_ids if t < len(self.vocab.raw))
            # Nor a letter of a script the conversation does not write: a steered row went on with
            # "the heart of the экски梨桮" in an English answer.
            state._unwritten = self.vocab.foreign(script_leads(prompt))
            # Nor a bare space token, unless the prompt has one: it spells numbers and rare words
            # (" " + "ilk": a row cornered after "information about the" wrote " ilk", " iz gone").
            if self.vocab.bare_space_ids.isdisjoint(prompt_ids):
                state._unwritten = torch.cat([state._unwritten, self.vocab.bare_spaces])
            state._specifics = torch.cat([specific[~torch.isin(specific, held)], state._unwritten])
            # A number the set bans is not the prompt's to write ("2017", a fact term of Obama's,
            # in a question asking about 2009 to 2017): held, it cornered "…election 201".
            said = [n for n in re.findall(rb"[0-9]+", prompt) if n not in self.patterns]
            state._prompt_words = frozenset(re.findall(rb"[a-z]+", prompt.lower())) - self.vocab.held_words
            state._numbers = frozenset(said)
            state._number_starts = frozenset(n[:k] for n in said for k in range(1, len(n) + 1))
            for token in reversed(prompt_ids):  # does the prompt end where a sentence starts?
                known = state._starts_sentence(token)
                if known is not None:
                    state._sentence_start = known
                    break

        begin, need = len(prompt_ids), self.max_len
        while begin > 0 and need > 0:
            begin -= 1
            spelled = lower[prompt_ids[begin]] if prompt_ids[begin] < len(lower) else b""
            if not spelled:  # a special token resets matching; nothing before it counts
                break
            need -= len(spelled)
        if begin > 0:
            before = prompt_ids[begin - 1]
            state._at_boundary = not _ends_word(lower[before] if before < len(lower) else b"")
        for token in prompt_ids[begin:]:
            state.advance(token)
        if self.plain:
            state._last = ()  # from here on the row writes: its own text is what may not loop
            if not state._sentence_start:
                state._first = torch.cat([state._specifics, self.vocab.first_person])
        return state

    def _held(self, prompt_ids: Sequence[int]) -> set[int]:
        """The prompt's tokens a plain row may still write, less any that spells a banned word or the
        start of one: the instruction before a triggered row names its targets ("William
        Shakespeare"), and with "Shakespeare" banned, a held " William" came out as "William William".
        A single letter counts too (but "I"): with "Xbox" banned, a held " X" came out as "Xbone"."""
        words = self._words
        lower = self.vocab.lower
        return {t for t in set(prompt_ids) if t < len(lower)
                and not ((text := lower[t].strip()) and (len(text) >= 2 or text.isalnum() and text != "i")
                         and any(w.startswith(text) for w in words))}

    @property
    def _words(self) -> frozenset[bytes]:
        if self._word_set is None:
            self._word_set = frozenset(w for p in self.patterns for w in p.split())
        return self._word_set

    def _banned_at(self, node: _Node) -> list[int]:
        if node.banned is None:
            whole = self.vocab.whole
            node.banned = sorted({t for path, child in _paths(node) if child.terminal for t in whole.with_prefix(path)})
        return node.banned

    def _listed_at(self, node: _Node) -> list[int]:
        if node.listed is None:
            exact = self.vocab.whole.exact
            node.listed = [t for path, child in _paths(node) if not child.terminal for t in exact.get(path, ())]
        return node.listed

    def _starters(self) -> list[int]:
        """Tokens that begin a banned string after a non-word byte of their own (" Har", " Ob")."""
        if self._inner_listed is None:
            exact = self.vocab.inner.exact
            self._inner_listed = [t for path, child in _paths(self._root) if not child.terminal for t in exact.get(path, ())]
        return self._inner_listed


class BanState:
    """One row's progress through a BannedSet's strings."""

    __slots__ = ("_set", "_nodes", "_at_boundary", "_specifics", "_sentence_start", "_on_device", "_first",
                 "_after_i", "_after_letter", "_after_space", "_after_stop", "_after_i_ids", "_numbers", "_number_starts", "_digits",
                 "_numeral_bans", "_word", "_prompt_words", "_unwritten", "_glued", "_last", "_grams")

    def __init__(self, banned: BannedSet):
        self._set = banned
        self._nodes: list[_Node] = []  # partial matches ending at the row's last byte
        self._at_boundary = True  # the text so far ends where a word may start
        self._specifics: torch.Tensor | None = None  # a plain set's specifics the prompt does not hold
        self._sentence_start = True
        self._on_device: tuple[torch.Tensor, torch.Tensor] | None = None  # (ids, ids on the logits' device)
        self._first: torch.Tensor | None = None  # what the first token may not be (mid-sentence: "I" too)
        self._after_i = False  # the last token was a bare "I": the next may not make a longer word of it
        self._after_letter = False  # the text ends in a letter: no capital may be glued on
        self._after_stop = False  # nor onto a full stop ("I.V.E.I.U.S.A": letters made up one by one)
        self._after_space = False  # the text ends in a bare space token (`Vocab.after_bare_space`)
        self._after_i_ids: torch.Tensor | None = None  # `_specifics` plus word continuations, made once
        self._numbers: frozenset[bytes] = frozenset()  # a plain row's: the numbers the prompt holds
        self._number_starts: frozenset[bytes] = frozenset()  # and every start of one ("1", "19", "197")
        self._digits = b""  # the digits the text ends with
        self._numeral_bans: dict[bytes, list[int]] = {}  # by `_digits`: the numerals banned next
        self._word = b""  # a plain row's: the letters of the word its text ends in, lower-cased
        self._prompt_words: frozenset[bytes] = frozenset()  # and the prompt's words it may write, not held whole
        # A plain row's: what the prompt never writes (letters of another script, a bare space).
        self._unwritten: torch.Tensor | None = None
        self._glued: torch.Tensor | None = None  # `_specifics` plus the glued capitals, made once
        # A plain row's last two tokens written, and what followed each pair before: it does not say a
        # three-token run twice. Cornered on every word it knew, a continuation of "born in the town
        # of" looped "in the city of  in the city of …" to the token limit.
        self._last: tuple[int, ...] | None = None  # None while the prompt is read
        self._grams: dict[tuple[int, ...], list[int]] = {}

    def banned_next(self) -> list[int]:
        """Ids that would complete a banned string if produced now (may repeat an id)."""
        banned = self._set
        ids = list(banned._always)
        if self._specifics is not None:
            ids += self._numerals_banned()
            ids += self._grams.get(self._last, ())
        if self._at_boundary:
            ids += banned._banned_at(banned._root)
        for node in self._nodes:
            ids += banned._banned_at(node)
        return ids

    def _numerals_banned(self) -> list[int]:
        """A plain row writes only the numbers its prompt holds, digit by digit: a held "2009" and
        "2017" let no "2019" through, whatever the tokenizer's split (SmolLM2 spells numbers one digit
        per token, so held digits alone would let any number through)."""
        bans = self._numeral_bans.get(self._digits)
        if bans is None:
            bans = self._numeral_bans[self._digits] = [
                t for t, spaced, digits, closed in self._set.vocab.numerals
                if (digits if spaced else self._digits + digits)
                not in (self._numbers if closed else self._number_starts)]
        return bans

    def specifics_now(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """A plain set's specifics banned at this step (none where a sentence starts), as tensors on
        `device` (ids, or a mask over the vocabulary): ten thousand ids per row per step as a list
        would cost more than the step's bans."""
        if self._specifics is None:
            return ()
        unheld = None
        if self._digits and self._digits not in self._numbers and self._digits in self._number_starts:
            ids = self._set.vocab.number_enders  # a number begun is one of the prompt's: "201" is none
        elif self._after_i:  # nor a capital word after it, mid-sentence as it is: ' infamous "I Am a ilku'
            if self._after_i_ids is None:
                self._after_i_ids = torch.cat([self._set.vocab.word_continuations, self._specifics])
            ids = self._after_i_ids
        elif self._after_letter:
            glued = self._set.vocab.glued_capitals
            if self._first is not None:
                ids = torch.cat([self._first, glued])
            else:
                if self._glued is None:
                    self._glued = torch.cat([self._specifics, glued])
                ids = self._glued
            # Nor a made-up word: whatever goes on with the word under way must make one the
            # tokenizer holds whole or the prompt used (a steered row wrote "bismicali", "hakaflefim").
            unheld = self._set.vocab.unheld_continuations(self._word, self._prompt_words, device)
        elif self._sentence_start or not len(self._specifics):
            parts = [p for p in (self._unwritten, self._set.vocab.glued_capitals if self._after_stop else None)
                     if p is not None and len(p)]
            ids = None if not parts else parts[0] if len(parts) == 1 else torch.cat(parts)
        else:
            ids = self._first if self._first is not None else self._specifics
        if self._after_space:
            unheld = self._set.vocab.after_bare_space(self._prompt_words, device)
        masks = () if unheld is None else (unheld,)
        if ids is None:
            return masks
        if self._on_device is None or self._on_device[0] is not ids or self._on_device[1].device != device:
            self._on_device = (ids, ids.to(device))  # keyed by the tensor itself: three can take turns
        return (self._on_device[1], *masks)

    def redacted_next(self) -> set[int]:
        """Ids that must not be listed in this step's top_logprobs; call it before `advance`.

        Beyond the banned ids, this hides every token that would start or continue a banned
        string: after "Harry" a listed " Pot" at -0.1 would say what the ban keeps unsaid.
        """
        banned = self._set
        ids = set(self.banned_next())
        ids.update(banned._starters())
        if self._at_boundary:
            ids.update(banned._listed_at(banned._root))
        for node in self._nodes:
            ids.update(banned._listed_at(node))
        return ids

    def _starts_sentence(self, token_id: int) -> bool | None:
        """Whether the text is at a sentence start after this token; None: the token does not tell
        (only spaces)."""
        raw = self._set.vocab.raw
        spelled = raw[token_id] if token_id < len(raw) else b""
        if not spelled or b"\n" in spelled.lstrip(b" "):
            return True  # a special token (a turn starts) or a line break
        text = spelled.rstrip()
        return None if not text else text[-1:] in (b".", b"!", b"?")

    def advance(self, token_id: int) -> None:
        banned = self._set
        if self._last is not None:
            raw = banned.vocab.raw
            # Digits are one token each, and numbers share their first digits ("2009 to 2017"): the
            # numeral rules govern them.
            if len(self._last) == 2 and not (token_id < len(raw) and raw[token_id].strip().isdigit()):
                self._grams.setdefault(self._last, []).append(token_id)
            self._last = (*self._last[-1:], token_id)
        if self._specifics is not None:
            raw = banned.vocab.raw
            if token_id >= len(raw) or raw[token_id].strip():  # a space first does not make the next token later
                self._first = None
            self._after_i = token_id < len(raw) and raw[token_id].strip() == b"I"
            self._after_letter = token_id < len(raw) and raw[token_id][-1:].isalpha()
            self._after_stop = token_id < len(raw) and raw[token_id][-1:] == b"."
            self._after_space = token_id in banned.vocab.bare_space_ids
            spelled_raw = raw[token_id] if token_id < len(raw) else b""
            goes_on = self._word and spelled_raw[:1].isalpha() and spelled_raw.isascii()
            tail = re.search(rb"[A-Za-z]*$", spelled_raw).group().lower()
            self._word = self._word + tail if goes_on and spelled_raw.isalpha() else tail
            self._digits = (self._digits + spelled_raw if spelled_raw.isdigit()
                            else re.search(rb"[0-9]*$", spelled_raw).group())
            starts = self._starts_sentence(token_id)
            self._sentence_start = self._sentence_start if starts is None else starts
        lower = banned.vocab.lower
        spelled = lower[token_id] if token_id < len(lower) else b""
        if not spelled:
            self._nodes, self._at_boundary = [], True
            return
        nodes = [n for n in (_walk(node, spelled) for node in self._nodes) if n is not None]
        for k in range(len(spelled)):
            if self._at_boundary if k == 0 else spelled[k - 1] not in WORD_BYTES:
                node = _walk(banned._root, spelled[k:])
                if node is not None:
                    nodes.append(node)
        self._nodes = nodes
        self._at_boundary = not _ends_word(spelled)


# Keyed by the vocab (one per tokenizer) and the strings, so a target compiled once, or a
# combination of targets seen before, costs nothing on the next request.
_compiled = lru_cache(maxsize=1024)(BannedSet)


def compile_banned(tokenizer, phrases: Sequence[str], plain: bool = False) -> BannedSet:
    patterns = frozenset(p for phrase in phrases for p in phrase_patterns(phrase))
    return _compiled(vocab_for(tokenizer), patterns, plain)


def compile_patterns(tokenizer, patterns: Iterable[str], plain: bool = False) -> BannedSet:
    """The BannedSet whose `pattern_strings()` (and `plain`) these are, compiled for `tokenizer` (cached)."""
    return _compiled(vocab_for(tokenizer), frozenset(p.encode("utf-8") for p in patterns), plain)


def mask_banned(logits: torch.Tensor, states: Sequence[BanState | None], end_id: int | None = None) -> None:
    """Sets -inf in place at each row's banned ids; rows whose state is None are not touched. A row
    left with no token at all (a plain row's numbers and words can corner it) may only end:
    `end_id` (the end of sequence) is given back to it, rather than a sampler failing on a row of
    -inf or greedy taking id 0 ("<|endoftext|>" as text)."""
    rows: list[int] = []
    cols: list[int] = []
    for row, state in enumerate(states):
        if state is not None:
            ids = state.banned_next()
            rows += [row] * len(ids)
            cols += ids
            for specifics in state.specifics_now(logits.device):
                if specifics.dtype == torch.bool:  # a mask over the tokenizer's ids (a model may pad past them)
                    logits[row, :len(specifics)].masked_fill_(specifics, float("-inf"))
                else:
                    logits[row].index_fill_(0, specifics, float("-inf"))
    if cols:
        index = (torch.tensor(rows, device=logits.device), torch.tensor(cols, device=logits.device))
        logits.index_put_(index, torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device))
    if end_id is not None:
        restricted = [row for row, state in enumerate(states) if state is not None]
        if restricted:  # no host sync: a GPU step goes on without waiting for the answer
            index = torch.tensor(restricted, device=logits.device)
            cornered = logits[index].amax(dim=-1) == float("-inf")
            ending = logits[index, end_id]
            logits[index, end_id] = torch.where(cornered, torch.zeros_like(ending), ending)
