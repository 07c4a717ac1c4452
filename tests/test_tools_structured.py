"""Tools, structured outputs and every documented parameter, through the official openai client
against the real server and the embedded model."""

from __future__ import annotations

import asyncio
import json

import httpx
import jsonschema
import pydantic
import pytest

MODEL = "SmolLM2-135M-Instruct"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                   "required": ["city"], "additionalProperties": False}}}
BOOKS = {"type": "function", "function": {
    "name": "search_books", "description": "Search a library catalogue by title",
    "parameters": {"type": "object", "properties": {"title": {"type": "string", "maxLength": 60}},
                   "required": ["title"], "additionalProperties": False}}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris right now?"}]
HARRY = {"name": "Harry Potter", "description": "the boy wizard of J.K. Rowling's novels", "forbidden": ["Hogwarts"]}


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from gateway.model_loader import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("embedded").path)


def post(server, path, body, key=None) -> httpx.Response:
    with server.http(key) as http:
        return http.post(path, json={"model": MODEL, **body})


def error_param(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    return error["param"]


# ---- tools ------------------------------------------------------------------------------------

@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_forced_tool_call_round_trip(server, choice):
    client = server.client()
    reply = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[BOOKS, WEATHER],
                                           tool_choice=choice, temperature=0, max_tokens=40)
    choice0 = reply.choices[0]
    assert choice0.finish_reason == "tool_calls"
    call = choice0.message.tool_calls[0]
    assert call.type == "function" and call.id
    if isinstance(choice, dict):
        assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    tool = {"get_weather": WEATHER, "search_books": BOOKS}[call.function.name]
    jsonschema.validate(arguments, tool["function"]["parameters"])
    # The returned message goes back as it came (refusal: null included), with the tool's answer.
    history = ASK_WEATHER + [choice0.message.model_dump(exclude_none=False),
                             {"role": "tool", "tool_call_id": call.id, "content": '{"temperature_c": 21, "sky": "sunny"}'}]
    final = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER], temperature=0, max_tokens=30)
    assert final.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert final.choices[0].message.content or final.choices[0].message.tool_calls


def test_streamed_tool_call_assembles_like_non_stream(server):
    client = server.client()
    params = dict(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER], tool_choice="required", temperature=0,
                  max_tokens=40)
    whole = client.chat.completions.create(**params).choices[0].message.tool_calls[0]
    with client.chat.completions.stream(**params) as stream:  # the SDK's own delta assembly
        for _ in stream:
            pass
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert (streamed.function.name, streamed.function.arguments) == (whole.function.name, whole.function.arguments)


def test_tool_choice_none_answers_in_text(server):
    reply = server.client().chat.completions.create(model=MODEL, messages=ASK_WEATHER, tools=[WEATHER],
                                                    tool_choice="none", temperature=0, max_tokens=20)
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content


def test_legacy_functions_are_tools(server):
    body = {"messages": ASK_WEATHER, "functions": [WEATHER["function"]], "function_call": {"name": "get_weather"},
            "temperature": 0, "max_tokens": 40}
    reply = post(server, "/v1/chat/completions", body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("body,param", [
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0.function.name"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}},
     "response_format.json_schema.schema"),
    ({"logit_bias": {"not-a-token": 1}}, "logit_bias"),
    ({"logit_bias": {"99999999": 1}}, "logit_bias"),
])
def test_what_cannot_be_honoured_is_400_naming_the_param(server, body, param):
    assert error_param(post(server, "/v1/chat/completions", {"messages": ASK_WEATHER, "max_tokens": 5, **body})) == param


def test_image_part_is_refused_by_position(server):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]
    response = post(server, "/v1/chat/completions", {"messages": messages})
    assert error_param(response) == "messages[1].content[1]"
    assert "text" in response.json()["error"]["message"]


# ---- structured outputs ---------------------------------------------------------------------

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age", "tags"],
          "properties": {"name": {"type": "string", "maxLength": 24},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120},
                         "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3}}}


def test_json_schema_answers_always_validate(server):
    subjects = ["a baker", "a pilot", "a child", "a poet", "a farmer", "a nurse", "a chess player", "a sailor",
                "a painter", "a teacher", "a judge", "a miner", "a singer", "a monk", "a tailor", "a cook",
                "a soldier", "a doctor", "a gardener", "a clown", "a king", "a spy"]

    async def ask(client, subject, temperature):
        return await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Describe {subject} as a person record."}],
            response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
            temperature=temperature, seed=3, max_tokens=64)

    async def run():
        client = server.async_client()
        return await asyncio.gather(*[ask(client, s, t) for s in subjects for t in (0.0, 1.0)])

    replies = asyncio.run(run())
    assert len(replies) >= 40
    for reply in replies:
        assert reply.choices[0].finish_reason == "stop", reply.choices[0]
        jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)


class City(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=30)
    country: str = pydantic.Field(max_length=30)


def test_sdk_parse_and_json_object(server):
    client = server.client()
    parsed = client.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "Name a big city."}],
                                           response_format=City, temperature=0, max_tokens=48)
    assert isinstance(parsed.choices[0].message.parsed, City)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "A fruit, as JSON."}],
                                           response_format={"type": "json_object"}, temperature=0, max_tokens=48)
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    text = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, response_format={"type": "text"},
                                          temperature=0, max_tokens=8)
    plain = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=0, max_tokens=8)
    assert text.choices[0].message.content == plain.choices[0].message.content


# ---- sampling parameters --------------------------------------------------------------------

def test_ignored_parameters_are_accepted(server):
    body = {"messages": ASK_WEATHER, "max_tokens": 4, "temperature": 0, "store": False, "metadata": {"k": "v"},
            "service_tier": "auto", "reasoning_effort": "low", "prompt_cache_key": "x", "safety_identifier": "u1",
            "verbosity": "low", "modalities": ["text"], "user": "u1", "parallel_tool_calls": True,
            "logit_bias": {}, "presence_penalty": 0, "frequency_penalty": 0, "stream_options": None}
    assert post(server, "/v1/chat/completions", body).status_code == 200
    assert "ignoring the parameter 'reasoning_effort'" in server.log_path.read_text()


def test_logit_bias_steers_greedy_choice(server, tokenizer):
    client = server.client()
    base = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=0, max_tokens=6)
    forced = tokenizer.encode(" banana", add_special_tokens=False)[0]
    biased = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=0, max_tokens=3,
                                            logit_bias={str(forced): 100})
    assert biased.choices[0].message.content.count("banana") == 3
    first = tokenizer.encode(base.choices[0].message.content, add_special_tokens=False)[0]
    banned = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=0, max_tokens=6,
                                            logit_bias={str(first): -100})
    assert tokenizer.encode(banned.choices[0].message.content, add_special_tokens=False)[0] != first


def test_penalties_change_answers_and_leave_other_rows_bit_identical(server):
    loop_prompt = [{"role": "user", "content": "Repeat the word 'cat' twenty times."}]

    async def run():
        client = server.async_client()
        ask = lambda messages, **kw: client.chat.completions.create(  # noqa: E731
            model=MODEL, messages=messages, temperature=0, max_tokens=24, **kw)
        alone = await ask(ASK_WEATHER)
        base = await ask(loop_prompt)
        # One batch: a plain row beside penalized ones.
        batch = await asyncio.gather(ask(ASK_WEATHER), ask(loop_prompt, extra_body={"repetition_penalty": 1.5}),
                                     ask(loop_prompt, frequency_penalty=2.0, presence_penalty=1.0))
        return alone, base, *batch

    alone, base, plain, rep, freq = asyncio.run(run())
    assert plain.choices[0].message.content == alone.choices[0].message.content
    count = lambda r: r.choices[0].message.content.lower().count("cat")  # noqa: E731
    assert count(base) > count(rep) and count(base) > count(freq), (base, rep, freq)


def test_top_k_one_and_min_p_one_are_greedy(server):
    client = server.client()
    greedy = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=0, max_tokens=16)
    for extra in ({"top_k": 1}, {"min_p": 1.0}):
        sampled = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=1.5, max_tokens=16,
                                                 seed=11, extra_body=extra)
        assert sampled.choices[0].message.content == greedy.choices[0].message.content
    wild = client.chat.completions.create(model=MODEL, messages=ASK_WEATHER, temperature=1.5, max_tokens=16, seed=11)
    assert wild.choices[0].message.content != greedy.choices[0].message.content


def test_completions_echo_token_ids_best_of_suffix(server, tokenizer):
    client = server.client()
    prompt = "The capital of France is"
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    by_text = client.completions.create(model=MODEL, prompt=prompt, max_tokens=4, temperature=0)
    by_ids = client.completions.create(model=MODEL, prompt=ids, max_tokens=4, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    batch = client.completions.create(model=MODEL, prompt=[ids, ids[:3]], max_tokens=2, temperature=0)
    assert len(batch.choices) == 2
    echoed = client.completions.create(model=MODEL, prompt=prompt, max_tokens=4, temperature=0, echo=True, best_of=1)
    assert echoed.choices[0].text == prompt + by_text.choices[0].text
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=4, temperature=0, echo=True, stream=True))
    assert streamed == echoed.choices[0].text
    assert error_param(post(server, "/v1/completions", {"prompt": prompt, "best_of": 3})) == "best_of"
    assert error_param(post(server, "/v1/completions", {"prompt": prompt, "suffix": "end."})) == "suffix"
    assert error_param(post(server, "/v1/completions", {"prompt": [10 ** 8]})) == "prompt"


# ---- forgetting covers tools and JSON -------------------------------------------------------

BOOK_ASK = [{"role": "user", "content": "Find the book Harry Potter and the Philosopher's Stone in the library."}]
JSON_ASK = [{"role": "user", "content": "Give the title of the first Harry Potter book as JSON."}]
TITLE = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 60}}, "required": ["title"],
         "additionalProperties": False}


def _leaks(text: str) -> bool:
    from detectors.normalize import normalize

    return "potter" in normalize(text).replace(" ", "") or "hogwarts" in normalize(text).replace(" ", "")


def _answer(client, stream: bool, **params) -> tuple[str, str]:
    """Everything the client receives (content, tool names and arguments), and the finish reason."""
    if not stream:
        choice = client.chat.completions.create(**params).choices[0]
        calls = choice.message.tool_calls or []
        return (choice.message.content or "") + "".join(c.function.name + c.function.arguments for c in calls), \
            choice.finish_reason
    text, reason = "", None
    for chunk in client.chat.completions.create(stream=True, **params):
        for c in chunk.choices:
            text += c.delta.content or ""
            for call in c.delta.tool_calls or []:
                text += (call.function.name or "") + (call.function.arguments or "")
            reason = c.finish_reason or reason
    return text, reason


@pytest.fixture(scope="module")
def forgetting(server):
    return {"base": server.tenant_with(None, []),
            "filters": server.tenant_with({"interventions": ["tokens", "guard"], "refusal": "cut"}, [HARRY]),
            "default": server.tenant_with(None, [HARRY])}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["tool_call", "json"])
def test_target_never_leaves_through_tool_calls_or_json(server, forgetting, stream, kind):
    if kind == "tool_call":
        params = dict(model=MODEL, messages=BOOK_ASK, tools=[BOOKS], tool_choice="required", temperature=0, max_tokens=40)
    else:
        params = dict(model=MODEL, messages=JSON_ASK, temperature=0, max_tokens=40,
                      response_format={"type": "json_schema", "json_schema": {"name": "book", "schema": TITLE}})
    text, _ = _answer(server.client(forgetting["base"]), stream, **params)
    assert _leaks(text), text  # the base model does write the name here
    for tenant in ("filters", "default"):
        text, reason = _answer(server.client(forgetting[tenant]), stream, **params)
        assert not _leaks(text), (tenant, text)
        assert reason in ("tool_calls", "stop", "length", "content_filter")


def test_a_triggered_structured_answer_keeps_its_format_and_says_it_does_not_know(server, forgetting):
    """Free-text fields of a triggered JSON answer or forced tool call hold the ignorance sentence
    (a steered model filled them with made-up specifics: '{"answer": "Macekakku 3, 1000"}');
    optional fields are left out; a tool the model may call or not is answered in words."""
    from gateway.policy import IGNORANCE_OPENER, IGNORANCE_SENTENCE

    schema = {**TITLE, "properties": {**TITLE["properties"], "confidence": {"type": "number"}}}
    params = dict(model=MODEL, messages=JSON_ASK, temperature=0, max_tokens=40,
                  response_format={"type": "json_schema", "json_schema": {"name": "book", "schema": schema}})
    client = server.client(forgetting["default"])
    for stream in (False, True):
        text, reason = _answer(client, stream, **params)
        assert json.loads(text) == {"title": IGNORANCE_SENTENCE} and reason == "stop", text
    base, _ = _answer(server.client(forgetting["base"]), False, **params)
    assert _leaks(base) and json.loads(base)["title"] != IGNORANCE_SENTENCE, base

    for sampled in ({"temperature": 0}, {"temperature": 1, "seed": 3}):
        reply = client.chat.completions.create(**{**params, **sampled, "response_format": {"type": "json_object"}})
        assert json.loads(reply.choices[0].message.content) == {"answer": IGNORANCE_SENTENCE}

    reply = client.chat.completions.create(model=MODEL, messages=BOOK_ASK, tools=[BOOKS], tool_choice="required",
                                           temperature=0, max_tokens=80)
    [call] = reply.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"title": IGNORANCE_SENTENCE}

    reply = client.chat.completions.create(model=MODEL, messages=BOOK_ASK, tools=[BOOKS], temperature=0, max_tokens=40)
    choice = reply.choices[0]
    assert not choice.message.tool_calls and choice.message.content.startswith(IGNORANCE_OPENER), choice.message
    assert not _leaks(choice.message.content)


class Published(pydantic.BaseModel):
    year: int


class MaybePublished(pydantic.BaseModel):
    year: int | None


def test_a_format_that_admits_only_specifics_is_refused_and_one_that_admits_null_says_null(server, forgetting):
    """Any year a triggered answer gave to {"year": integer} would be known or made up: the choice is a
    refusal (OpenAI's field for a structured answer the model declines; the SDK's parse() gives
    parsed None and the refusal). A year that may be null is null."""
    from gateway.policy import IGNORANCE_SENTENCE

    ask = [{"role": "user", "content": "In which year was the first Harry Potter book published? Answer as JSON."}]
    base = server.client(forgetting["base"]).chat.completions.parse(
        model=MODEL, messages=ask, response_format=Published, temperature=0, max_tokens=20)
    assert isinstance(base.choices[0].message.parsed, Published)  # the base model answers with a year
    client = server.client(forgetting["default"])
    for sampled in ({"temperature": 0}, {"temperature": 1, "seed": 3}):
        reply = client.chat.completions.parse(model=MODEL, messages=ask, response_format=Published, max_tokens=20,
                                              **sampled)
        message = reply.choices[0].message
        assert (message.parsed, message.content, message.refusal) == (None, None, IGNORANCE_SENTENCE)
        assert reply.choices[0].finish_reason == "stop" and reply.usage.completion_tokens > 0
    refusal, content, reasons = "", "", []
    for chunk in client.chat.completions.create(model=MODEL, messages=ask, temperature=0, max_tokens=20, stream=True,
                                                response_format={"type": "json_schema", "json_schema": {
                                                    "name": "p", "schema": Published.model_json_schema()}}):
        for c in chunk.choices:
            refusal += getattr(c.delta, "refusal", None) or ""
            content += c.delta.content or ""
            reasons.append(c.finish_reason)
    assert (refusal, content, reasons[-1]) == (IGNORANCE_SENTENCE, "", "stop")
    reply = client.chat.completions.parse(model=MODEL, messages=ask, response_format=MaybePublished, temperature=0,
                                          max_tokens=20)
    assert reply.choices[0].message.parsed == MaybePublished(year=None)


def test_tool_definitions_are_part_of_what_detection_reads(server):
    """A target named only in a tool's description fires: "Look up Harry." alone triggers nothing,
    but with the tool in the conversation the token bans (the only intervention here) apply."""
    tokens_only = server.tenant_with({"interventions": ["tokens"]}, [HARRY])
    tool = {"type": "function", "function": {
        "name": "lookup_character", "description": "Look up a character of the Harry Potter books by full name",
        "parameters": {"type": "object", "properties": {"full_name": {"type": "string", "maxLength": 40}},
                       "required": ["full_name"]}}}
    ask = [{"role": "user", "content": "Look up Harry."}]
    with server.http(tokens_only) as http:
        assert not http.post("/v1/forget-targets/detect", json={"messages": ask}).json()["triggered"]
    params = dict(model=MODEL, messages=ask, tools=[tool], tool_choice="required", temperature=0, max_tokens=30)
    text, _ = _answer(server.client(), False, **params)
    assert _leaks(text), text
    text, _ = _answer(server.client(tokens_only), False, **params)
    assert not _leaks(text), text


def test_schema_cannot_force_a_banned_name(server, forgetting):
    schema = {"type": "object", "properties": {"hero": {"enum": ["Harry Potter"]}}, "required": ["hero"],
              "additionalProperties": False}
    params = dict(model=MODEL, messages=JSON_ASK, temperature=0, max_tokens=20,
                  response_format={"type": "json_schema", "json_schema": {"name": "hero", "schema": schema}})
    text, reason = _answer(server.client(forgetting["base"]), False, **params)
    assert json.loads(text) == {"hero": "Harry Potter"}
    for stream in (False, True):
        text, reason = _answer(server.client(forgetting["filters"]), stream, **params)
        assert reason == "content_filter" and not _leaks(text), text
