"""The raw bytes behind a token id, as the OpenAI logprobs format reports them."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    # GPT-2 style byte-level BPE spells every byte as a printable unicode character.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class TokenBytes:
    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._cache: dict[int, bytes] = {}

    def __call__(self, token_id: int) -> bytes:
        raw = self._cache.get(token_id)
        if raw is None:
            raw = self._cache[token_id] = self._lookup(token_id)
        return raw

    def _lookup(self, token_id: int) -> bytes:
        piece = self._tokenizer.convert_ids_to_tokens(token_id)
        decoder = _byte_decoder()
        if piece is not None and all(ch in decoder for ch in piece):
            return bytes(decoder[ch] for ch in piece)
        return self._tokenizer.decode([token_id]).encode("utf-8")
