"""Tool-call parsing and the streaming hold-back, on answers a model writes under tool_choice auto."""

from __future__ import annotations

import json

import pytest

from gateway.protocol import FunctionDef
from gateway.tools import CallBuffer, ToolUse, call_text, json_text

WEATHER = FunctionDef(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
TIME = FunctionDef(name="get_time")
AUTO = ToolUse((WEATHER, TIME), "auto")


@pytest.mark.parametrize("answer,content,calls", [
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>', None, [("get_weather", {"city": "Oslo"})]),
    ('Let me check.\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>', "Let me check.", [("get_time", {})]),
    ('<tool_call>{"name": "get_time", "arguments": {}}</tool_call><tool_call>{"name": "get_weather", '
     '"arguments": "{\\"city\\": \\"Rome\\"}"}</tool_call>', None, [("get_time", {}), ("get_weather", {"city": "Rome"})]),
    ('  {"name": "get_weather", "parameters": {"city": "Lima"}}', None, [("get_weather", {"city": "Lima"})]),
    ('[{"name": "get_time", "arguments": {}}]', None, [("get_time", {})]),
    # an unfinished tag at the end of max_tokens still parses when its JSON is whole
    ('<tool_call>{"name": "get_time", "arguments": {}}', None, [("get_time", {})]),
])
def test_calls_are_parsed(answer, content, calls):
    got_content, got = AUTO.parse(answer)
    assert got_content == content
    assert [(c.name, json.loads(c.arguments)) for c in got] == calls
    assert len({c.id for c in got}) == len(got)


@pytest.mark.parametrize("answer", [
    "The weather is fine.",
    '{"city": "Oslo"}',  # JSON, but not a call
    '<tool_call>{"name": "launch_rockets", "arguments": {}}</tool_call>',  # not an offered function
    '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>',  # cut JSON
])
def test_non_calls_stay_content(answer):
    assert AUTO.parse(answer) == (answer, [])


def test_parallel_false_keeps_the_first_call():
    serial = ToolUse((WEATHER, TIME), "auto", parallel=False)
    _, calls = serial.parse('[{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {}}]')
    assert [c.name for c in calls] == ["get_time"]


def test_named_choice_offers_and_constrains_only_that_function():
    named = ToolUse((WEATHER, TIME), "get_weather")
    schema = json.loads(named.call_schema())
    assert schema["properties"]["name"] == {"const": "get_weather"}
    assert "get_time" not in named.preamble()
    assert named.parse('{"name": "get_time", "arguments": {}}') == ('{"name": "get_time", "arguments": {}}', [])


def _stream(buffer: CallBuffer, pieces: list[str]) -> tuple[str, str, list]:
    sent = "".join(buffer.feed(p) for p in pieces)
    rest, calls = buffer.finish()
    return sent, rest, calls


def test_stream_sends_plain_text_at_once_and_holds_a_call():
    sent, rest, calls = _stream(CallBuffer(AUTO), ["It is ", "sunny <tool", "_call>{\"name\": \"get_time\", ",
                                                   "\"arguments\": {}}</tool_call>"])
    assert sent == "It is sunny " and rest == "" and [c.name for c in calls] == ["get_time"]
    sent, rest, calls = _stream(CallBuffer(AUTO), ["The <to", "p of the hill", " is green"])
    assert sent == "The <top of the hill is green" and not calls
    sent, rest, calls = _stream(CallBuffer(AUTO), [" {\"name\": \"get_w", "eather\", \"arguments\": {}}"])
    assert sent == "" and [c.name for c in calls] == ["get_weather"]
    sent, rest, calls = _stream(CallBuffer(AUTO), ["{\"note\": 1}"])
    assert sent + rest == "{\"note\": 1}" and not calls


def test_decoded_strings_undo_json_escapes():
    # A name written in escapes must reach the guard decoded.
    _, calls = AUTO.parse('{"name": "get_weather", "arguments": {"city": "\\u0048arry"}}')
    assert "Harry" in call_text(calls[0])
    assert "Harry" in json_text('{"who": "\\u0048arry"}')
    assert json_text("not json") is None
