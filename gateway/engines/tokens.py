"""The raw bytes behind a token id, as the OpenAI logprobs format reports them."""

from __future__ import annotations

from filters.vocab import vocab_for


class TokenBytes:
    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._raw = vocab_for(tokenizer).raw  # the same byte table the token bans match against

    def __call__(self, token_id: int) -> bytes:
        raw = self._raw[token_id] if token_id < len(self._raw) else b""
        # Special tokens spell no text; logprobs name them as the tokenizer writes them.
        return raw or self._tokenizer.decode([token_id]).encode("utf-8")
