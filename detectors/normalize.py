"""One canonical word view of text, shared by the detector and the output guard.

Attacks spell names so that naive matching misses them: "H a r r y", "h.a.r.r.y", "P0tt3r",
Cyrillic look-alikes, zero-width joiners. Everything folds to lowercase ASCII words separated
by single spaces. `normalize_with_offsets` also says which raw character produced each
normalized one, so a streaming guard can cut the raw text exactly where a match starts.
"""

from __future__ import annotations

import re
import unicodedata

from unidecode import unidecode

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"})
_LEET_CHARS = set("013457@$!|")
_WORD = re.compile(r"[a-z0-9@$!|]+")
# Cyrillic and Greek letters that look like Latin ones. Applied only inside words that mix
# scripts (the signature of a look-alike attack); real Russian or Greek is transliterated instead.
_CONFUSABLE = str.maketrans(
    "аеорсухкмтнвіјѕАВЕКМНОРСТХУІЈЅαοντυικΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxkmthbijsABEKMHOPCTXYIJSaovtuikABEZHIKMNOPTYX",
)
_RAW_WORD = re.compile(r"\w+")


def _unmask_lookalikes(text: str) -> str:
    def fix(m: re.Match) -> str:
        word = m.group()
        has_latin = any("a" <= c.lower() <= "z" for c in word)
        return word.translate(_CONFUSABLE) if has_latin and not word.isascii() else word

    return _RAW_WORD.sub(fix, text)  # one char for one char: offsets stay valid


def _fold_char(ch: str) -> str:
    ch = unicodedata.normalize("NFKC", ch).translate(_ZERO_WIDTH)
    if not ch:
        return ""
    return unidecode(ch).casefold() if not ch.isascii() else ch.casefold()


def _fold_word(word: str) -> str:
    # "!" and "|" at a word's edge are punctuation ("yes!"), not the letters they can stand for.
    word = word.strip("!|") or word
    # Leet only where letters and leet symbols mix: "p0tt3r" folds, "1984" stays a number.
    if any(c.isalpha() for c in word) and any(c in _LEET_CHARS for c in word):
        return word.translate(_LEET)
    return word.strip("@$") or word


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    folded: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(_unmask_lookalikes(text)):
        for out in _fold_char(ch):
            folded.append(out)
            origin.append(i)
    flat = "".join(folded)
    words = [(m.start(), _fold_word(m.group())) for m in _WORD.finditer(flat)]
    out_chars: list[str] = []
    offsets: list[int] = []
    i = 0
    while i < len(words):
        start, word = words[i]
        # A run of single letters ("h a r r y", "h-o-g") is one spelled-out word.
        if len(word) == 1 and i + 1 < len(words) and len(words[i + 1][1]) == 1:
            j = i
            while j < len(words) and len(words[j][1]) == 1:
                j += 1
            pieces = words[i:j]
            i = j
        else:
            pieces = [(start, word)]
            i += 1
        if out_chars:
            out_chars.append(" ")
            offsets.append(origin[pieces[0][0]])
        for s, w in pieces:
            for k, c in enumerate(w):
                out_chars.append(c)
                offsets.append(origin[min(s + k, len(origin) - 1)])
    return "".join(out_chars), offsets


def normalize(text: str) -> str:
    return normalize_with_offsets(text)[0]
