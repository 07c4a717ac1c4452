"""One canonical word view of text, shared by the detector and the output guard.

Attacks spell names so that naive matching misses them: "H a r r y", "h.a.r.r.y", "P0tt3r",
Cyrillic look-alikes, zero-width joiners, full-width letters. Everything folds to lowercase
ASCII words separated by single spaces. `normalize_with_offsets` also says which raw character
produced each normalized one, so a streaming guard can cut the raw text exactly where a match
starts.
"""

from __future__ import annotations

import re
import unicodedata

from unidecode import unidecode

# Invisible characters that split a word for a matcher but not for a reader: zero-width and
# formatting characters, control characters ("Ever\x00est") and lone surrogate halves.
_CONTROLS = [c for c in range(0x00, 0xA0) if (c < 0x20 and chr(c) not in "\t\n\r") or c >= 0x7F]
_INVISIBLE = dict.fromkeys(
    [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0xFE00, 0xFE10),
     *range(0xD800, 0xE000), *_CONTROLS, 0x00AD, 0x034F, 0x180E, 0xFEFF],
    None,
)
_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i", "|": "l"})
_LEET_CHARS = frozenset("0134578@$!|")
_EDGE_SYMBOLS = "@$!|"
_WORD = re.compile(r"[a-z0-9@$!|]+(?:'[a-z0-9]+)*")
# Cyrillic and Greek letters that look like Latin ones. Applied only inside words that mix
# scripts (the signature of a look-alike attack); real Russian or Greek is transliterated instead.
_CONFUSABLE = str.maketrans(
    "аеорсухкмтнвіјѕԁɡАВЕКМНОРСТХУІЈЅαοντυικρΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxkmthbijsdgABEKMHOPCTXYIJSaovtuikpABEZHIKMNOPTYX",
)
_RAW_WORD = re.compile(r"\w+")


def _unmask_lookalikes(text: str) -> str:
    def fix(m: re.Match) -> str:
        word = m.group()
        if word.isascii() or not any("a" <= c <= "z" or "A" <= c <= "Z" for c in word):
            return word
        return word.translate(_CONFUSABLE)

    return _RAW_WORD.sub(fix, text)  # one char for one char: offsets stay valid


def _fold(text: str) -> tuple[str, list[int] | None]:
    """Lowercase ASCII for the whole text, and the raw index of each folded char (None: identity)."""
    if text.isascii() and not _ASCII_CONTROL.search(text):
        return text.lower(), None
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(_unmask_lookalikes(text)):
        if ch.isascii():
            out = ch.lower().translate(_INVISIBLE)
        else:
            ch = unicodedata.normalize("NFKC", ch).translate(_INVISIBLE)
            out = unidecode(ch).casefold() if ch else ""
        for c in out:
            chars.append(c)
            origin.append(i)
    return "".join(chars), origin


def _fold_word(token: str) -> tuple[str, list[int]]:
    """A token's folded form and, per folded char, its index in the token (one char for one char)."""
    keep = [k for k, c in enumerate(token) if c != "'"]  # "obama's" -> "obamas", "don't" -> "dont"
    # Symbols at a word's edge are punctuation ("yes!", "@home", "$5"), not letters in disguise.
    while len(keep) > 1 and token[keep[0]] in _EDGE_SYMBOLS:
        keep.pop(0)
    while len(keep) > 1 and token[keep[-1]] in _EDGE_SYMBOLS:
        keep.pop()
    return _unleet("".join(token[k] for k in keep)), keep


def _unleet(word: str) -> str:
    # Leet only where letters and leet symbols mix: "p0tt3r" folds, "1984" stays a number.
    if any(c.isalpha() for c in word) and any(c in _LEET_CHARS for c in word):
        return word.translate(_LEET)
    return word


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """The word view of `text`; offsets[i] is the index in `text` of the char that produced char i.

    A space maps to the first raw char of the word after it.
    """
    flat, origin = _fold(text)
    # Each word as (folded text, index in `flat` of each folded char).
    words: list[tuple[str, list[int]]] = []
    for m in _WORD.finditer(flat):
        folded, keep = _fold_word(m.group())
        words.append((folded, [m.start() + k for k in keep]))

    out: list[str] = []
    flat_pos: list[int] = []
    i = 0
    while i < len(words):
        # A run of single characters that holds two letters or more is one spelled-out word:
        # "h a r r y", "H-o-g-w-a-r-t-s!", "h 4 r r y"; "1 2 3" stays three numbers.
        j = i
        while j < len(words) and len(words[j][0]) == 1:
            j += 1
        if j - i >= 2 and sum(w[0].isalpha() for w in words[i:j]) >= 2:
            word = _unleet("".join(w[0] for w in words[i:j]))
            positions = [w[1][0] for w in words[i:j]]
            i = j
        else:
            word, positions = words[i]
            i += 1
        if out:
            out.append(" ")
            flat_pos.append(positions[0])
        out.append(word)
        flat_pos.extend(positions)
    offsets = flat_pos if origin is None else [origin[p] for p in flat_pos]
    return "".join(out), offsets


def normalize(text: str) -> str:
    return normalize_with_offsets(text)[0]
