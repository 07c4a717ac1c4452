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
    def _starts(self) -> list[str]:
        return [raw.decode("utf-8", errors="ignore").lstrip() for raw in self.raw]


def _first_person(text: str) -> bool:
    return text == "I" or text.startswith("I'")


_VOCABS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def vocab_for(tokenizer) -> Vocab:
    vocab = _VOCABS.get(tokenizer)
    if vocab is None:
        vocab = _VOCABS[tokenizer] = Vocab(tokenizer)
    return vocab
