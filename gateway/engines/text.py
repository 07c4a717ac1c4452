"""Turning a row's token stream into text deltas: incremental detokenization and stop strings."""

from __future__ import annotations

from typing import Sequence

_REPLACEMENT = "\ufffd"


def native_tools(tokenizer) -> bool:
    """Whether the chat template renders tool definitions itself."""
    return "tools" in (getattr(tokenizer, "chat_template", None) or "")


def render_chat(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
    """The prompt ids of a conversation (tools only for a template that renders them). A trailing
    assistant message is a prefill: the model continues it instead of starting anew."""
    prefill = bool(messages) and messages[-1]["role"] == "assistant"
    ids = tokenizer.apply_chat_template(
        messages,
        tools=tools,
        add_generation_prompt=not prefill,
        continue_final_message=prefill,
        tokenize=True,
        return_dict=False,
    )
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)


class IncrementalDetokenizer:
    """Decodes one token at a time without splitting multi-byte characters or merged tokens.

    Decoding a token alone is wrong for byte-level BPE (a UTF-8 character can span tokens, and
    leading spaces depend on neighbours), so each step decodes a short window ending at the new
    token and emits only what the window gained. Text ending in U+FFFD is an unfinished character
    and is held until the next token completes it.
    """

    def __init__(self, tokenizer, prompt_ids: Sequence[int]):
        self._tokenizer = tokenizer
        self._ids: list[int] = list(prompt_ids[-4:])  # context so the first token's spacing is right
        self._prefix_offset = 0
        self._read_offset = len(self._ids)

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        decode = self._tokenizer.decode
        prefix = decode(self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=False)
        full = decode(self._ids[self._prefix_offset :], skip_special_tokens=False)
        if len(full) > len(prefix) and not full.endswith(_REPLACEMENT):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return full[len(prefix) :]
        return ""


class StopStringMatcher:
    """Finds stop strings across deltas, holding back any tail that could still become one."""

    def __init__(self, stops: Sequence[str]):
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, delta: str) -> tuple[str, bool]:
        """Returns (text safe to emit, whether a stop string was hit)."""
        if not self._stops:
            return delta, False
        text = self._pending + delta
        hits = [i for i in (text.find(s) for s in self._stops) if i >= 0]
        if hits:
            self._pending = ""
            return text[: min(hits)], True
        hold = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:k]):
                    hold = max(hold, k)
                    break
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold], False

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest
