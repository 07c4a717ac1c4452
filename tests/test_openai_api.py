"""The OpenAI surface, through the official client and plain HTTP, against the real embedded model.
Tests taking `engine_server` run on both engines (hf and vllm)."""

from __future__ import annotations

import asyncio
import re

import httpx
import openai
import pytest

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_lists_the_served_model(server, model_name):
    models = server.client().models.list()
    assert [m.id for m in models.data] == [model_name]
    assert server.client().models.retrieve(model_name).id == model_name


def test_chat_answers_a_known_fact(engine_server, model_name):
    reply = engine_server.client().chat.completions.create(model=model_name, messages=CHAT, temperature=0, max_tokens=20)
    choice = reply.choices[0]
    assert "paris" in choice.message.content.lower()
    assert choice.finish_reason == "stop"
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_stream_equals_non_stream_under_greedy(engine_server, model_name):
    messages = [{"role": "user", "content": "Name three fruits and say one thing about each."}]
    client = engine_server.client()
    whole = client.chat.completions.create(model=model_name, messages=messages, temperature=0, max_tokens=40)
    stream = client.chat.completions.create(model=model_name, messages=messages, temperature=0, max_tokens=40,
                                            stream=True, stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_completion_usage_counts_tokens(engine_server, model_name):
    reply = engine_server.client().completions.create(model=model_name, prompt="The capital of France is",
                                               max_tokens=5, temperature=0)
    assert "Paris" in reply.choices[0].text
    assert reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"
    # prompt_tokens is the tokenizer's count of the raw prompt: a few tokens, not the chat template's dozens
    assert 3 <= reply.usage.prompt_tokens <= 8


def test_completion_stream_and_batch_prompts(engine_server, model_name):
    client = engine_server.client()
    reply = client.completions.create(model=model_name, prompt=["One, two,", "Monday, Tuesday,"], max_tokens=4,
                                      temperature=0)
    assert sorted(c.index for c in reply.choices) == [0, 1]
    streamed = {}
    for chunk in client.completions.create(model=model_name, prompt="One, two,", max_tokens=4, temperature=0, stream=True):
        for c in chunk.choices:
            streamed[c.index] = streamed.get(c.index, "") + c.text
    assert streamed[0] == next(c.text for c in reply.choices if c.index == 0)


def test_n_choices_are_sampled_independently(engine_server, model_name):
    reply = engine_server.client().chat.completions.create(
        model=model_name, messages=[{"role": "user", "content": "Write a random word."}],
        n=2, temperature=1.0, seed=7, max_tokens=12)
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.usage.completion_tokens >= 2
    # seeded sampling is reproducible
    again = engine_server.client().chat.completions.create(
        model=model_name, messages=[{"role": "user", "content": "Write a random word."}],
        n=2, temperature=1.0, seed=7, max_tokens=12)
    assert [c.message.content for c in again.choices] == [c.message.content for c in reply.choices]


def test_stop_sequence_cuts_and_is_not_included(engine_server, model_name):
    messages = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    client = engine_server.client()
    full = client.chat.completions.create(model=model_name, messages=messages, temperature=0, max_tokens=40)
    assert "5" in full.choices[0].message.content
    cut = client.chat.completions.create(model=model_name, messages=messages, temperature=0, max_tokens=40, stop=["5"])
    text = cut.choices[0].message.content
    assert "5" not in text
    assert cut.choices[0].finish_reason == "stop"
    assert full.choices[0].message.content.startswith(text)


def test_logprobs_are_reported(engine_server, model_name):
    reply = engine_server.client().chat.completions.create(model=model_name, messages=CHAT, temperature=0, max_tokens=5,
                                                    logprobs=True, top_logprobs=3)
    items = reply.choices[0].logprobs.content
    assert len(items) == 5
    assert "".join(i.token for i in items) == reply.choices[0].message.content
    for item in items:
        assert len(item.top_logprobs) == 3
        assert item.logprob <= 0
        # greedy picks the most likely token
        assert item.token == item.top_logprobs[0].token


def test_assistant_prefill_is_continued(engine_server, model_name):
    messages = CHAT + [{"role": "assistant", "content": "The capital of France is"}]
    reply = engine_server.client().chat.completions.create(model=model_name, messages=messages, temperature=0, max_tokens=5)
    assert "Paris" in reply.choices[0].message.content


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def test_missing_and_wrong_keys_are_401(server, model_name):
    body = {"model": model_name, "messages": CHAT}
    _error(httpx.post(server.v1 + "/chat/completions", json=body), 401)
    _error(server.http("wrong-key").post("/v1/chat/completions", json=body), 401)
    with pytest.raises(openai.AuthenticationError):
        server.client("wrong-key").models.list()


@pytest.mark.parametrize("body,param", [
    ({"messages": CHAT}, "model"),
    ({"model": "MODEL", "messages": []}, "messages"),
    ({"model": "MODEL", "messages": CHAT, "temperature": 5}, "temperature"),
    ({"model": "MODEL", "messages": CHAT, "top_p": 0}, "top_p"),
    ({"model": "MODEL", "messages": CHAT, "n": 0}, "n"),
    ({"model": "MODEL", "messages": CHAT, "max_tokens": 0}, "max_tokens"),
    ({"model": "MODEL", "messages": CHAT, "max_tokens": "ten"}, "max_tokens"),
    ({"model": "MODEL", "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"model": "MODEL", "messages": CHAT, "unknown_field": 1}, "unknown_field"),
    ({"model": "MODEL", "messages": CHAT, "top_logprobs": 2}, "top_logprobs"),
])
def test_invalid_bodies_are_400(server, model_name, body, param):
    body = {k: (model_name if v == "MODEL" else v) for k, v in body.items()}
    error = _error(server.http().post("/v1/chat/completions", json=body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_invalid_json_is_400(server):
    _error(server.http().post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}), 400)


def test_unknown_model_and_route_are_404(server):
    error = _error(server.http().post("/v1/chat/completions", json={"model": "gpt-9", "messages": CHAT}), 404)
    assert error["code"] == "model_not_found"
    _error(server.http().get("/v1/does-not-exist"), 404)
    with pytest.raises(openai.NotFoundError):
        server.client().chat.completions.create(model="gpt-9", messages=CHAT)


def test_prompt_too_long_is_rejected(server, model_name):
    huge = "word " * 5000
    error = _error(server.http().post("/v1/chat/completions",
                                      json={"model": model_name, "messages": [{"role": "user", "content": huge}]}), 400)
    assert error["code"] == "context_length_exceeded"
    error = _error(server.http().post("/v1/chat/completions",
                                      json={"model": model_name, "messages": CHAT, "max_tokens": 100_000}), 400)
    assert error["code"] == "context_length_exceeded"
    error = _error(server.http().post("/v1/chat/completions", content=b"x" * (5 * 1024 * 1024),
                                      headers={"content-type": "application/json"}), 413)
    assert error["code"] == "request_too_large"


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _batch_histogram(text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'lethe_batch_size_bucket\{le="([^"]+)"\} (\S+)', text)}


def test_concurrent_requests_are_batched(server, model_name):
    before = _batch_histogram(httpx.get(server.base_url + "/metrics").text)
    prompts = [f"Write one sentence about the number {i}." for i in range(8)]

    async def run():
        client = server.async_client()
        return await asyncio.gather(*[
            client.chat.completions.create(model=model_name, messages=[{"role": "user", "content": p}],
                                           temperature=0, max_tokens=24) for p in prompts])

    replies = asyncio.run(run())
    assert all(r.choices[0].message.content for r in replies)
    after = _batch_histogram(httpx.get(server.base_url + "/metrics").text)
    # forward passes that ran with more than 4 rows at once
    wide = (after["+Inf"] - after["4.0"]) - (before["+Inf"] - before["4.0"])
    assert wide >= 5


def test_health_and_metrics(server):
    health = httpx.get(server.base_url + "/healthz").json()
    assert health["status"] == "ok"
    text = httpx.get(server.base_url + "/metrics").text
    assert _metric(text, "lethe_requests_total") > 0
    assert "lethe_request_latency_seconds_bucket" in text
    assert _metric(text, "lethe_generated_tokens_total") > 0


def test_logs_hold_no_prompt_text_or_keys(server, model_name):
    secret = "the-secret-phrase-zebra-42"
    server.client().chat.completions.create(model=model_name, messages=[{"role": "user", "content": secret}],
                                            max_tokens=2)
    log = server.log_path.read_text()
    assert secret not in log
    assert server.api_key not in log
