"""Constrained decoding: a per-row grammar mask over the logits (xgrammar), for JSON answers.

A `Grammars` object belongs to one tokenizer; it compiles a JSON schema (or "any JSON object")
once and hands each row its own matcher. The masks of all constrained rows in a batch are
filled into one bitmask and applied in one call; rows without a grammar are never touched.

Whitespace between JSON tokens is not allowed: a small model given the freedom pads an answer
with newlines until it runs out of tokens, and compact JSON is what clients parse anyway.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Sequence

import torch
import xgrammar as xgr


class GrammarError(ValueError):
    """The schema cannot be compiled into a grammar (unsupported or invalid)."""


class Grammars:
    def __init__(self, tokenizer, vocab_size: int, stop_ids: Sequence[int]):
        self.vocab_size = vocab_size
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids))
        self._compiler = xgr.GrammarCompiler(info)
        # Keyed by the serialized schema: a schema sent with every request compiles once.
        self.compile = lru_cache(maxsize=256)(self._compile)

    def _compile(self, schema: str | None) -> xgr.CompiledGrammar:
        try:
            if schema is None:  # json_object: any object, any keys
                return self._compiler.compile_json_schema('{"type": "object"}', any_whitespace=False, strict_mode=False)
            json.loads(schema)
            return self._compiler.compile_json_schema(schema, any_whitespace=False, strict_mode=True)
        except Exception as exc:
            raise GrammarError(f"the JSON schema cannot be used for constrained decoding: {exc}") from None

    def matcher(self, schema: str | None) -> GrammarState:
        return GrammarState(xgr.GrammarMatcher(self.compile(schema)))


class GrammarState:
    """One row's position in its grammar."""

    __slots__ = ("_matcher",)

    def __init__(self, matcher: xgr.GrammarMatcher):
        self._matcher = matcher

    def advance(self, token_id: int) -> bool:
        """Whether the token was allowed (it always is when sampled under the mask)."""
        return self._matcher.accept_token(token_id)

    @property
    def done(self) -> bool:
        """The grammar has ended (its stop token was accepted): nothing may follow."""
        return self._matcher.is_terminated()

    @property
    def complete(self) -> bool:
        """What was generated is a whole sentence of the grammar."""
        return self._matcher.is_completed()


def mask_grammar(logits: torch.Tensor, states: Sequence[GrammarState | None]) -> None:
    """Sets -inf in place at the ids each constrained row's grammar forbids next."""
    rows = [i for i, state in enumerate(states) if state is not None]
    if not rows:
        return
    vocab = logits.shape[-1]
    bitmask = xgr.allocate_token_bitmask(len(states), vocab)
    for i in rows:
        states[i]._matcher.fill_next_token_bitmask(bitmask, i)
    # On CPU, xgrammar's own single-threaded kernel: the torch fallback runs parallel ops that
    # stall for a scheduler slice whenever the cores are busy.
    backend = "cpu" if logits.device.type == "cpu" else "auto"
    xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device), vocab_size=vocab, indices=rows, backend=backend)
