"""Tool calling, engine-independent: tools into the prompt, tool calls out of the answer.

A chat template that renders `tools` itself gets them; otherwise (SmolLM2's does not) the tools
are described in a system message of our own, the *tool preamble*, asking for Hermes-style
calls: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. Earlier calls in the
history are written back in the same form, so the model sees its own convention.

`tool_choice` "required" or a named function is enforced by constrained decoding: the answer
must be the JSON of one call (`call_schema`). Under "auto" the answer is parsed: tagged calls,
or an answer that is nothing but a call's JSON object (or a list of them).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Iterator

from .protocol import FunctionDef

TAG_OPEN, TAG_CLOSE = "<tool_call>", "</tool_call>"
_TAGGED = re.compile(re.escape(TAG_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(TAG_CLOSE) + r"|$)", re.S)

PREAMBLE = (
    "You can call functions. To call one, reply with nothing but\n"
    f'{TAG_OPEN}{{"name": "<function name>", "arguments": {{<arguments as a JSON object>}}}}{TAG_CLOSE}\n'
    "Call a function only when it helps to answer. The functions:\n"
)


@dataclass(frozen=True)
class Call:
    name: str
    arguments: str  # a JSON object, serialized
    id: str

    def wire(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ToolUse:
    """What a request asks of tools: the functions, and `choice` (auto | required | a name)."""

    functions: tuple[FunctionDef, ...]
    choice: str
    parallel: bool = True

    @property
    def constrained(self) -> bool:
        return self.choice != "auto"

    def definitions(self) -> list[dict]:
        """The OpenAI `tools` list, as chat templates that render tools expect it."""
        return [{"type": "function", "function": f.model_dump(exclude_none=True)} for f in self._offered()]

    def preamble(self) -> str:
        lines = [json.dumps(f.model_dump(exclude_none=True), ensure_ascii=False) for f in self._offered()]
        ask = "" if not self.constrained else "\nYou must call " + (
            "one of them." if self.choice == "required" else f"the function {self.choice}.")
        return PREAMBLE + "\n".join(lines) + ask

    def _offered(self) -> list[FunctionDef]:
        if self.choice in ("auto", "required"):
            return list(self.functions)
        return [f for f in self.functions if f.name == self.choice]

    def call_schema(self) -> str:
        """JSON schema of one call to an offered function, for constrained decoding."""
        options = [{"type": "object",
                    "properties": {"name": {"const": f.name}, "arguments": f.parameters_schema()},
                    "required": ["name", "arguments"], "additionalProperties": False}
                   for f in self._offered()]
        # Keys keep their order: the grammar writes properties in it ("name" first commits to a function).
        return json.dumps(options[0] if len(options) == 1 else {"anyOf": options})

    def parse(self, text: str) -> tuple[str | None, list[Call]]:
        """(content left over, calls) from an answer; no calls when none parse as an offered function."""
        names = {f.name for f in self._offered()}
        stripped = text.strip()
        if self.constrained or not _TAGGED.search(text):
            calls = _calls_from(_loads(stripped), names)
            if calls or self.constrained:
                return (None if calls else text), self._limit(calls)
            return text, []
        calls = [c for m in _TAGGED.finditer(text) for c in _calls_from(_loads(m.group(1)), names)]
        if not calls:
            return text, []
        rest = _TAGGED.sub("", text).strip()
        return (rest or None), self._limit(calls)

    def _limit(self, calls: list[Call]) -> list[Call]:
        return calls if self.parallel else calls[:1]


def history_content(content: str, calls: list) -> str:
    """An assistant turn's text with its tool calls written back as the model was asked to write them."""
    written = []
    for call in calls:
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except json.JSONDecodeError:
            arguments = call.function.arguments
        written.append(TAG_OPEN + json.dumps({"name": call.function.name, "arguments": arguments},
                                             ensure_ascii=False) + TAG_CLOSE)
    return "\n".join([content, *written] if content else written)


def call_text(call: Call) -> str:
    """The decoded strings of a call (name, keys, values), for the output guard: JSON escapes
    ("\\u0048arry") are undone, so a name cannot leave spelled in escapes."""
    try:
        parts = [call.name, *_strings(json.loads(call.arguments))]
    except json.JSONDecodeError:
        parts = [call.name, call.arguments]
    return " . ".join(parts)


def json_text(text: str) -> str | None:
    """The decoded strings of a JSON answer, or None when it is not JSON."""
    try:
        return " . ".join(_strings(json.loads(text)))
    except json.JSONDecodeError:
        return None


class CallBuffer:
    """Streams an answer's content while holding back whatever may be a tool call.

    Constrained answers are all call; under "auto", text that opens with `{`/`[`, or anything
    from a `<tool_call>` tag on, waits for the end, when `finish` parses it.
    """

    def __init__(self, tools: ToolUse | None):
        self.tools = tools
        self.hold_all = tools is not None and tools.constrained
        self._held = ""
        self._started = False  # content has gone out, so the answer is not a bare JSON call
        self._in_call = False

    def feed(self, text: str) -> str:
        if self.hold_all or self._in_call:
            self._held += text
            return ""
        text = self._held + text
        self._held = ""
        if self.tools is None:
            return text
        if not self._started:
            head = text.lstrip()
            if not head or head[0] in "{[":
                self._held = text
                return ""
        at = text.find(TAG_OPEN)
        if at >= 0:
            self._in_call = True
            self._held = text[at:]
            return self._out(text[:at])
        # A tail that may still become the tag waits for the next delta.
        for k in range(min(len(TAG_OPEN) - 1, len(text)), 0, -1):
            if text.endswith(TAG_OPEN[:k]):
                self._held = text[-k:]
                return self._out(text[:-k])
        return self._out(text)

    def _out(self, text: str) -> str:
        self._started = self._started or bool(text.strip())
        return text

    def finish(self) -> tuple[str, list[Call]]:
        """(content still to send, calls)."""
        held, self._held = self._held, ""
        if self.tools is None or not held:
            return held, []
        content, calls = self.tools.parse(held)
        return (content or "") if calls else held, calls


def _loads(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _calls_from(value, names: set[str]) -> list[Call]:
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            return []
        arguments = item.get("arguments", item.get("parameters", {}))
        if isinstance(arguments, str):
            parsed = _loads(arguments)
            arguments = parsed if isinstance(parsed, dict) else None
        if not isinstance(arguments, dict):
            return []
        calls.append(Call(item["name"], json.dumps(arguments, ensure_ascii=False), f"call_{uuid.uuid4().hex[:24]}"))
    return calls


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)
