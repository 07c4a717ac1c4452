"""What each token id spells, as bytes, indexed for prefix queries.

Banning works on the bytes a token adds to the text rather than on canonical tokenizations:
a model can spell " Potter" as " Pot" + "ter" just as well as with the single token " Potter",
so a ban must catch every split. Queries are ASCII case-insensitive (keys are lowercased).
"""

from __future__ import annotations

import re
import weakref
from bisect import bisect_left
from functools import cached_property, lru_cache
from typing import Iterable

import torch

# Bytes that continue a word: a banned string may only start right after anything else.
WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    # GPT-2 style byte-level BPE spells every byte as one printable unicode character.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def token_bytes(tokenizer) -> list[bytes]:
    """The bytes each id adds to decoded text; b"" for special tokens, which spell no text."""
    size = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(size)))
    special = set(tokenizer.all_special_ids)
    special.update(i for i, tok in tokenizer.added_tokens_decoder.items() if tok.special)
    probe = tokenizer.convert_ids_to_tokens(tokenizer.encode("a b", add_special_tokens=False))
    byte_level = any(p.startswith("Ġ") for p in probe)
    decoder = _byte_level_decoder()
    out: list[bytes] = []
    for i, piece in enumerate(pieces):
        if i in special or piece is None:
            out.append(b"")
        elif byte_level and all(c in decoder for c in piece):
            out.append(bytes(decoder[c] for c in piece))
        elif m := _HEX_BYTE.fullmatch(piece):  # SentencePiece byte fallback
            out.append(bytes([int(m.group(1), 16)]))
        else:  # SentencePiece marks a leading space with U+2581
            out.append(piece.replace("\u2581", " ").encode("utf-8"))
    return out


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with `prefix`.

    Prefixes here are pieces of UTF-8 text, which never holds 0xFF, so the last byte can grow.
    """
    return prefix[:-1] + bytes([prefix[-1] + 1])


class _SortedIndex:
    """Byte strings sorted, so all entries starting with a prefix form one contiguous slice."""

    def __init__(self, entries: list[tuple[bytes, int]]):
        entries.sort()
        self.keys = [k for k, _ in entries]
        self.ids = [i for _, i in entries]
        self.exact: dict[bytes, list[int]] = {}
        for key, token in entries:
            self.exact.setdefault(key, []).append(token)

    def with_prefix(self, prefix: bytes) -> list[int]:
        lo = bisect_left(self.keys, prefix)
        hi = bisect_left(self.keys, _prefix_end(prefix), lo)
        return self.ids[lo:hi]


class Vocab:
    """One tokenizer's tokens as lowercased bytes, built once per tokenizer."""

    def __init__(self, tokenizer):
        self.raw = token_bytes(tokenizer)
        self.lower = [b.lower() for b in self.raw]
        self.special = frozenset(i for i, b in enumerate(self.lower) if not b)
        # Whole tokens, for strings that start where the token starts.
        self.whole = _SortedIndex([(b, i) for i, b in enumerate(self.lower) if b])
        # Tails that start after a non-word byte inside a token (" Obama" holds "obama"), for
        # strings that start, and possibly end, inside one token whatever came before it.
        self.inner = _SortedIndex([
            (b[k:], i)
            for i, b in enumerate(self.lower)
            for k in range(1, len(b))
            if b[k - 1] not in WORD_BYTES
        ])

    @cached_property
    def specific(self) -> torch.Tensor:
        """Ids of the tokens that start a capitalised word ("Patel", " Xbox"). "I" and its
        contractions are not specifics; numbers are `numerals`."""
        return torch.tensor([t for t, text in enumerate(self._starts) if text and text[0].isupper()
                             and not _first_person(text)], dtype=torch.long)

    @cached_property
    def numerals(self) -> list[tuple[int, bool, bytes, bool]]:
        """The tokens that start with a digit, after spaces or not: (id, spaced, their leading digits,
        whether other bytes follow them, ending the number)."""
        out = []
        for t, raw in enumerate(self.raw):
            text = raw.lstrip()
            digits = re.match(rb"[0-9]*", text).group()
            if digits:
                out.append((t, len(text) < len(raw), digits, len(digits) < len(text)))
        return out

    @cached_property
    def number_enders(self) -> torch.Tensor:
        """Ids of every token but the digits that go on with a number (no space before them)."""
        going_on = {t for t, spaced, _, _ in self.numerals if not spaced}
        return torch.tensor([t for t in range(len(self.raw)) if t not in going_on], dtype=torch.long)

    @cached_property
    def first_person(self) -> torch.Tensor:
        """Ids of "I" and its contractions, with or without a space before."""
        return torch.tensor([t for t, text in enumerate(self._starts) if _first_person(text)], dtype=torch.long)

    @cached_property
    def word_continuations(self) -> torch.Tensor:
        """Ids of the tokens that go on with the word before them (a letter, digit or hyphen first)."""
        return torch.tensor([t for t, raw in enumerate(self.raw) if raw[:1].isalnum() or raw[:1] == b"-"],
                            dtype=torch.long)

    @cached_property
    def glued_capitals(self) -> torch.Tensor:
        """Ids of the tokens that start with a capital letter, no space before it: after a letter
        they glue a new word onto the last one ("defeatedThe", "ofParis")."""
        return torch.tensor([t for t, raw in enumerate(self.raw) if raw.decode("utf-8", errors="ignore")[:1].isupper()],
                            dtype=torch.long)

    @cached_property
    def _script_leads(self) -> list[frozenset[int]]:
        """Per token, the lead bytes of the characters beyond ASCII it writes (see `script_leads`)."""
        return [script_leads(b) for b in self.raw]

    @lru_cache(maxsize=64)
    def foreign(self, held: frozenset[int]) -> torch.Tensor:
        """Ids of the tokens that write a script none of `held` (lead bytes, `script_leads`) opens."""
        return torch.tensor([t for t, leads in enumerate(self._script_leads) if leads - held], dtype=torch.long)

    @cached_property
    def _held_words(self) -> list[bytes]:
        """The words the tokenizer holds whole (a space, then ASCII letters only), lower-cased, sorted."""
        return sorted({b[1:] for b in self.lower if b[:1] == b" " and b[1:].isalpha()})

    @cached_property
    def _letter_continuations(self) -> tuple[torch.Tensor, dict[bytes, list[int]], dict[bytes, list[int]]]:
        """The tokens that go on with a word (an ASCII letter or a digit first): all of them, those
        that are letters only (by their letters), and those whose letters end the word (by them)."""
        every, going_on, closing = [], {}, {}
        for t, b in enumerate(self.lower):
            if not b[:1].isalnum() or not b[:1].isascii():
                continue
            every.append(t)
            letters = re.match(rb"[a-z]*", b).group()
            if not letters:
                continue  # a digit glued onto letters ("rmii24"): no word
            (going_on if letters == b else closing).setdefault(letters, []).append(t)
        return torch.tensor(every, dtype=torch.long), going_on, closing

    @cached_property
    def held_words(self) -> frozenset[bytes]:
        return frozenset(self._held_words)

    def unheld_continuations(self, word: bytes, also: frozenset[bytes], device: torch.device) -> torch.Tensor:
        """A mask (True: banned) of the tokens that would leave the word under way (`word`, lower-cased
        letters) other than one the tokenizer holds whole, nor `also` holds: after " bism", "ic"
        ("bismicali" is nothing); after " unbe", " known" ("unbe" is nothing either). A plural of a
        held word is a word ("delicacies"). On `device`."""
        rests = tuple(w[len(word):] for w in also if w.startswith(word) and w != word)
        if not rests and word not in also:
            return self._unheld(word, device)
        return self._mask(word, rests, word in also).to(device)

    def after_bare_space(self, also: frozenset[bytes], device: torch.device) -> torch.Tensor:
        """A mask (True: banned) of what may not follow a bare space token. A word the tokenizer holds
        comes with a space token of its own (" ilk" is " " + "ilk": SmolLM2 holds no " ilk"), so
        letters here can only begin one of `also`'s words ("qwzrtland"); and another space (alone
        or before a word) or a line break only pads a sentence the row was cornered in ("information
        about the  model", "about the \n"). What is left is digits (numbers are spelled " " +
        digit), other scripts and punctuation."""
        mask = self._bare_space_banned.clone()
        allowed = self._toward(b"", tuple(also))
        if allowed:
            mask[sorted(allowed)] = False
        return mask.to(device)

    @cached_property
    def _bare_space_banned(self) -> torch.Tensor:
        return torch.tensor([raw[:1].isalpha() or raw[:1].isspace() for raw in self.raw], dtype=torch.bool)

    @cached_property
    def bare_space_ids(self) -> frozenset[int]:
        """Ids of the tokens that are spaces only, no line break: " ", "  ", a tab."""
        return frozenset(t for t, raw in enumerate(self.raw) if raw.isspace() and b"\n" not in raw)

    @cached_property
    def bare_spaces(self) -> torch.Tensor:
        return torch.tensor(sorted(self.bare_space_ids), dtype=torch.long)

    @lru_cache(maxsize=256)  # a vocabulary-sized mask each: a word's mask is remade in milliseconds
    def _unheld(self, word: bytes, device: torch.device) -> torch.Tensor:
        return self._mask(word, (), False).to(device)

    def _mask(self, word: bytes, rests: tuple[bytes, ...], ends: bool) -> torch.Tensor:
        if ends or self._is_word(word):
            mask = self._continuing.clone()  # it may end here; only how it goes on is checked
        else:
            mask = torch.ones(len(self.raw), dtype=torch.bool)  # half a word: it must go on
        allowed = self._toward(word, (*self._rests(word), *rests))
        if allowed:
            mask[sorted(allowed)] = False
        return mask

    @cached_property
    def _continuing(self) -> torch.Tensor:
        mask = torch.zeros(len(self.raw), dtype=torch.bool)
        mask[self._letter_continuations[0]] = True
        return mask

    def _is_word(self, word: bytes) -> bool:
        held = self.held_words
        return word in held or any(stem in held and word in _plural_tails(stem, stem)
                                   for stem in (word[:-1], word[:-2], word[:-3] + b"y"))

    def _toward(self, word: bytes, rests) -> set[int]:
        """The tokens that go on from `word` toward one of the words it begins (`rests`: what completes each)."""
        _, going_on, closing = self._letter_continuations
        allowed: set[int] = set()
        for rest in rests:
            for tail in (rest, *_plural_tails(word + rest, rest)):
                for k in range(1, len(tail) + 1):
                    allowed.update(going_on.get(tail[:k], ()))
                allowed.update(closing.get(tail, ()))
        return allowed

    @lru_cache(maxsize=4096)
    def _rests(self, word: bytes) -> tuple[bytes, ...]:
        """What completes `word` into a held word: "ord" for "w" and "word", for one; b"" if it is one."""
        words = self._held_words
        lo = bisect_left(words, word)
        hi = bisect_left(words, _prefix_end(word), lo) if word else len(words)
        return tuple(w[len(word):] for w in words[lo:hi])

    @cached_property
    def _starts(self) -> list[str]:
        return [raw.decode("utf-8", errors="ignore").lstrip() for raw in self.raw]


def _plural_tails(word: bytes, rest: bytes) -> tuple[bytes, ...]:
    """How `rest`, which completes `word`, goes on into its plural. A word that ends in "s" is most
    often a plural already ("healers": a row wrote "healer" + "se" toward "healerses"); only "-ss"
    and "-us" take another ("classes", "buses")."""
    if word.endswith(b"s"):
        return (rest + b"es",) if word.endswith((b"ss", b"us")) else ()
    if word.endswith((b"x", b"z", b"ch", b"sh", b"o")):
        return rest + b"s", rest + b"es"
    # "-es" only follows a hiss or an "o": a sampled row wrote "debug" + "e" toward "debuges".
    return (rest + b"s", *((rest[:-1] + b"ies",) if rest.endswith(b"y") else ()))


def script_leads(data: bytes) -> frozenset[int]:
    """The UTF-8 lead bytes in `data` that open a character beyond ASCII and everyday punctuation:
    accented and extended Latin letters, IPA and combining marks (0xC2-0xCD; a steered row continued
    "Mount Everest is located in the" with "region of the iz-zakıfıya minhāzının", which the
    made-up-word check, being ASCII, does not read), Greek, Cyrillic, Hebrew, Arabic (0xCE-0xDF),
    0xE0-0xF4, and 0xE2 but where it writes general punctuation or currency ("’", "—", "…", "€": 0xE2
    0x80 or 0x82, then a byte) rather than symbols, enclosed numbers or direction marks ("①",
    U+200F). A tokenizer spells those with a bare 0xE2 token, so a lead whose sequence the token does
    not finish counts too. Roughly one lead byte per script block: a prompt in Russian opens
    Cyrillic, one in French (é, ç: 0xC3) its accented letters."""
    leads = set()
    for i, byte in enumerate(data):
        if byte == 0xE2:
            if data[i + 1:i + 2] not in (b"\x80", b"\x82") or i + 2 >= len(data):
                leads.add(byte)
        elif 0xC2 <= byte <= 0xF4:
            leads.add(byte)
    return frozenset(leads)


def _first_person(text: str) -> bool:
    return text == "I" or text.startswith("I'")


_VOCABS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def vocab_for(tokenizer) -> Vocab:
    vocab = _VOCABS.get(tokenizer)
    if vocab is None:
        vocab = _VOCABS[tokenizer] = Vocab(tokenizer)
    return vocab
