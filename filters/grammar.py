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


# Keywords whose values are sub-schemas a value must match (one, a list of them, or a map of names
# to them); "not" and "if" are left alone: a constant there would change what they exclude.
_SCHEMA = ("additionalProperties", "items", "contains")
_SCHEMAS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
# A string the client constrained itself (a choice, a format, a pattern) is left to the grammar.
_CONSTRAINED = ("enum", "const", "pattern", "format")


def ignorant_schema(schema: str | None, sentences: Sequence[str]) -> str:
    """The schema a structured answer that must not know a target is decoded with: every free-text
    string value is the first of `sentences` that fits its length bounds, so the answer keeps the
    client's format and says it does not know instead of filling the fields with made-up specifics
    ('{"answer": "Macekakku 3, 1000"}'). Keys, numbers, booleans and constrained strings stay as
    the schema has them (the token bans still apply there); optional properties are left out.
    `None`, or an object schema with no properties (JSON mode: any object, whose keys a model fills
    with specifics too), becomes {"answer": <sentence>}."""
    parsed = json.loads(schema) if schema is not None else {"type": "object"}
    if not isinstance(parsed, dict) or (parsed.get("type") == "object" and not parsed.get("properties")
                                        and not any(k in parsed for k in _SCHEMAS)):
        parsed = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
                  "additionalProperties": False}
    return json.dumps(_ignorant(parsed, sentences))


def _ignorant(node, sentences: Sequence[str]):
    if not isinstance(node, dict):
        return node
    if _free_string(node):
        fits = [s for s in sentences if node.get("minLength", 0) <= len(s) <= node.get("maxLength", len(s))]
        return {**node, "type": "string", "const": fits[0]} if fits else node
    if _nullable(node) and not any(_free_string(n) for key in ("anyOf", "oneOf") for n in node.get(key) or []):
        # A value the schema lets be unknown (Optional[int]): null says so; a number would be made up.
        return {"type": "null"}
    required = node.get("required")
    if isinstance(node.get("properties"), dict) and isinstance(required, list) and required:
        # An optional field is one more place for a made-up specific ("confidence": 10000000...).
        node = {**node, "properties": {k: v for k, v in node["properties"].items() if k in required}}
    out = dict(node)
    for key in _SCHEMA:
        if isinstance(node.get(key), dict):
            out[key] = _ignorant(node[key], sentences)
    for key in _SCHEMAS:
        if isinstance(node.get(key), list):
            out[key] = [_ignorant(n, sentences) for n in node[key]]
    if isinstance(node.get("items"), list):
        out["items"] = [_ignorant(n, sentences) for n in node["items"]]
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            out[key] = {name: _ignorant(n, sentences) for name, n in node[key].items()}
    return out


def states_specifics(schema: str) -> bool:
    """Whether every answer the schema admits states a specific the model would have to make up
    or know: a required number, boolean, choice or patterned string that no constant fixes ("year":
    integer, "city": one of an enum). Read on an `ignorant_schema`, where free text and values that
    may be null are fixed already: what still states a specific is a question the client's format
    lets the answer only answer."""
    root = json.loads(schema)
    return _specific(root, root, 0)


def _specific(node, root: dict, depth: int) -> bool:
    if not isinstance(node, dict) or depth > 32:
        return False
    if "$ref" in node:
        ref = node["$ref"]
        target = root
        for part in ref.lstrip("#/").split("/") if ref.startswith("#/") else ():
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _specific(target, root, depth + 1)
    if "const" in node:
        return False
    if "enum" in node:
        return len(node["enum"]) > 1
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list) and node[key]:
            return all(_specific(n, root, depth + 1) for n in node[key])
    if isinstance(node.get("allOf"), list) and any(_specific(n, root, depth + 1) for n in node["allOf"]):
        return True
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "null" in types:
        return False
    if any(t in ("integer", "number", "boolean") for t in types) or (
            "string" in types and any(k in node for k in ("pattern", "format"))):
        return True
    if "object" in types or "properties" in node:
        props = node.get("properties") or {}
        return any(_specific(props.get(name), root, depth + 1) for name in node.get("required") or [])
    if "array" in types:
        items = node.get("prefixItems") or [node.get("items")]
        return node.get("minItems", 0) > 0 and any(_specific(n, root, depth + 1) for n in items)
    return False


def _nullable(node: dict) -> bool:
    types = node.get("type")
    return (isinstance(types, list) and "null" in types) or any(
        isinstance(n, dict) and n.get("type") == "null" for key in ("anyOf", "oneOf") for n in node.get(key) or [])


def _free_string(node) -> bool:
    """A value that may be any text ({"type": "string"}, or a string or something else)."""
    types = node.get("type") if isinstance(node, dict) else None
    return (types == "string" or (isinstance(types, list) and "string" in types)) and \
        not any(k in node for k in _CONSTRAINED)
