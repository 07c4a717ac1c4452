"""Frameworks as users run them, pointed at the real gateway: litellm and langchain-openai."""

from __future__ import annotations

import json
import os

import pydantic
import pytest

# litellm would otherwise try to download its price list on import (no network in CI).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "SmolLM2-135M-Instruct"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


class City(pydantic.BaseModel):
    """A city and the country it is in."""

    name: str = pydantic.Field(max_length=30)
    country: str = pydantic.Field(max_length=30)


@pytest.fixture(scope="module")
def litellm_call(server):
    import litellm

    def call(**params):
        return litellm.completion(model="openai/" + MODEL, api_base=server.v1, api_key=server.api_key,
                                  temperature=0, **params)

    return call


def test_litellm_completion_and_stream(litellm_call):
    whole = litellm_call(messages=ASK, max_tokens=12)
    assert whole.choices[0].message.content
    pieces = [c.choices[0].delta.content or "" for c in litellm_call(messages=ASK, max_tokens=12, stream=True)]
    assert "".join(pieces) == whole.choices[0].message.content


def test_litellm_tools_and_streamed_tools(litellm_call):
    import litellm

    reply = litellm_call(messages=ASK, max_tokens=40, tools=[WEATHER], tool_choice="required")
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    chunks = list(litellm_call(messages=ASK, max_tokens=40, tools=[WEATHER], tool_choice="required", stream=True))
    built = litellm.stream_chunk_builder(chunks).choices[0].message.tool_calls[0]
    assert (built.function.name, built.function.arguments) == (call.function.name, call.function.arguments)


@pytest.fixture(scope="module")
def llm(server):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=MODEL, base_url=server.v1, api_key=server.api_key, temperature=0, max_tokens=40,
                      max_retries=0)


def test_langchain_bind_tools(llm):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city."""
        return "sunny, 21 C"

    bound = llm.bind_tools([get_weather], tool_choice="get_weather")
    asked = HumanMessage("What is the weather in Paris?")
    message = bound.invoke([asked])
    call = message.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"].get("city"), str)
    # The agent loop: the call and its result go back into the history.
    answer = llm.bind_tools([get_weather]).invoke(
        [asked, message, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])])
    assert answer.content or answer.tool_calls


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output(llm, method):
    city = llm.with_structured_output(City, method=method).invoke("Name a big city and its country.")
    assert isinstance(city, City)


def test_langchain_stream(llm):
    streamed = "".join(chunk.content for chunk in llm.stream("Say hello."))
    assert streamed == llm.invoke("Say hello.").content
