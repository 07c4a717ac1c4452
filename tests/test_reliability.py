"""Faults, limits and isolation on real servers: fail-closed detection, rate
limits, bad bytes, one failing row in a batch, and a randomized cross-tenant leak hunt."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from live_server import start_server

HARRY = {"name": "Harry Potter", "description": "the boy wizard of J.K. Rowling's novels"}


def chat_body(model: str, content: str, max_tokens: int = 4) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, "temperature": 0}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """A server whose detector always fails, with low rate limits."""
    srv = start_server(tmp_path_factory.mktemp("faulty"), {
        "LETHE_FAILPOINTS": "detector", "LETHE_TARGET_WRITES_PER_MINUTE": "5", "LETHE_REQUESTS_PER_MINUTE": "8",
        "LETHE_FACT_TERMS": "false"})
    yield srv
    srv.stop()


def test_detector_failure_fails_closed_by_default_and_open_when_asked(faulty, model_name):
    closed = faulty.tenant_with(None, [HARRY])
    opened = faulty.tenant_with({"on_detector_error": "open"}, [HARRY])
    with faulty.http(closed) as http:
        reply = http.post("/v1/chat/completions", json=chat_body(model_name, "Who wrote Harry Potter?"))
        assert reply.status_code == 503 and reply.json()["error"]["code"] == "detector_unavailable"
        assert reply.headers["retry-after"]
        assert http.post("/v1/forget-targets/detect", json={"messages": [{"role": "user", "content": "hi"}]}).status_code == 503
    with faulty.http(opened) as http:
        assert http.post("/v1/chat/completions", json=chat_body(model_name, "Who wrote Harry Potter?")).status_code == 200
    # A tenant with nothing to detect never reaches the detector.
    with faulty.http(faulty.tenant_with()) as http:
        assert http.post("/v1/chat/completions", json=chat_body(model_name, "Hello")).status_code == 200


def test_rate_limits_are_per_tenant_and_say_when_to_retry(faulty, model_name):
    busy, calm = faulty.tenant_with(), faulty.tenant_with()
    with faulty.http(busy) as http:
        codes = [http.post("/v1/forget-targets", json={"name": f"Target {i}"}).status_code for i in range(7)]
        assert codes[:5] == [201] * 5 and codes[5:] == [429, 429]
        reply = http.post("/v1/forget-targets", json={"name": "One more"})
        assert reply.json()["error"]["code"] == "rate_limit_exceeded" and int(reply.headers["retry-after"]) >= 1
    with faulty.http(faulty.tenant_with()) as http:  # no targets: the failing detector is never asked
        codes = [http.post("/v1/chat/completions", json=chat_body(model_name, "Hi", 1)).status_code for _ in range(10)]
        assert codes[:8] == [200] * 8 and codes[8:] == [429, 429]
    with faulty.http(calm) as http:  # the other tenant is untouched by the first one's bursts
        assert http.post("/v1/chat/completions", json=chat_body(model_name, "Hi", 1)).status_code == 200
        assert http.post("/v1/forget-targets", json={"name": "Mine"}).status_code == 201


@pytest.mark.parametrize("raw, content_type", [
    (b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "application/json"),
    (b"\xc3\x28 not json", "application/json"),
    (b"model=m", "application/x-www-form-urlencoded"),
])
def test_undecodable_bodies_are_openai_shaped_400s(server, raw, content_type):
    with server.http() as http:
        reply = http.post("/v1/chat/completions", content=raw, headers={"content-type": content_type})
    assert reply.status_code == 400, reply.text
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}


def test_a_row_that_raises_does_not_disturb_its_batch():
    """In-process engine with the real model: one row's guard blows up mid-generation."""
    from bench.common import load_engine
    from gateway.engines.base import GenerationRequest, RowPlan, SamplingParams

    class ExplodingGuard:
        def start(self, written=""):
            return self

        def feed(self, text):
            raise RuntimeError("guard failure")

    engine = load_engine(max_batch_size=8)
    engine.start()
    prompts = ["Describe the ocean.", "What is the capital of France?", "Write a short poem about autumn."]

    async def run(plans):
        async def one(prompt, plan):
            ids = engine.render_chat([{"role": "user", "content": prompt}])
            text, reason = "", None
            async for out in engine.generate(GenerationRequest(f"r{random.random()}", ids, SamplingParams(24, 0.0), plan)):
                text, reason = text + out.text, out.finish_reason or reason
            return text, reason
        return await asyncio.gather(*(one(p, plan) for p, plan in zip(prompts, plans)))

    try:
        alone = asyncio.run(run([None, None, None]))
        mixed = asyncio.run(run([None, RowPlan(guard=ExplodingGuard()), None]))
    finally:
        engine.shutdown()
    assert mixed[1][1] == "error"
    assert mixed[0] == alone[0] and mixed[2] == alone[2]


def test_randomized_operations_never_show_one_tenant_another_tenants_targets(server, model_name):
    rng = random.Random(7)
    # Isolation is under test: tenants whose policy (the instruction alone) asks no background work of
    # the model for each of the dozens of targets they create.
    keys = [server.tenant_with({"interventions": ["instruction"]}) for _ in range(3)]
    owned: dict[int, dict[str, str]] = {i: {} for i in range(3)}  # tenant -> id -> secret name
    seen: list[tuple[int, str, str]] = []  # (tenant index, what it sent, what it got back)

    def call(i, method, path, body=None):
        with server.http(keys[i]) as http:
            reply = http.request(method, path, json=body)
        seen.append((i, path + json.dumps(body), reply.text))
        return reply

    for step in range(60):
        i = rng.randrange(3)
        op = rng.choice(["create", "create", "list", "get_foreign", "patch_foreign", "toggle_foreign", "delete_foreign",
                         "detect", "toggle_own"])
        foreign = [(j, t) for j in owned if j != i for t in owned[j]]
        if op == "create":
            name = f"Secret{i}x{step} Zephyrine"
            reply = call(i, "POST", "/v1/forget-targets", {"name": name, "aliases": [f"Alias{i}x{step}"]})
            owned[i][reply.json()["id"]] = name
        elif op == "list":
            assert {t["id"] for t in call(i, "GET", "/v1/forget-targets").json()["data"]} == set(owned[i])
        elif op == "detect":
            mention = " and ".join(n for j in owned for n in owned[j].values()) or "nothing"
            call(i, "POST", "/v1/forget-targets/detect", {"messages": [{"role": "user", "content": f"About {mention}"}]})
        elif op == "toggle_own":
            if owned[i]:
                call(i, "PUT", f"/v1/forget-targets/{rng.choice(list(owned[i]))}/activation", {"active": rng.random() < 0.5})
        elif foreign:
            _, target_id = rng.choice(foreign)
            method, body, suffix = {"get_foreign": ("GET", None, ""), "patch_foreign": ("PATCH", {"name": "Mine now"}, ""),
                                    "toggle_foreign": ("PUT", {"active": False}, "/activation"),
                                    "delete_foreign": ("DELETE", None, "")}[op]
            assert call(i, method, f"/v1/forget-targets/{target_id}{suffix}", body).status_code == 404
    # A chat that fires tenant 0's own targets: the instruction it gets names those, never others'.
    own = " and ".join(owned[0].values()) or "Zephyrine"
    with server.http(keys[0]) as http:
        reply = http.post("/v1/chat/completions", json=chat_body(model_name, f"Who are {own}?", 16))
        seen.append((0, "", json.dumps(reply.json())))
    for i, sent, text in seen:
        for j in owned:
            if j != i:
                for target_id, name in owned[j].items():
                    # An error may echo an id the caller itself sent; anything else is a leak.
                    assert target_id in sent or target_id not in text, (i, j, text[:300])
                    assert name not in text and f"Alias{j}x" not in text, (i, j, text[:300])
    assert sum(len(v) for v in owned.values()) >= 5


@pytest.fixture(params=("hf", "vllm"))
def small_queue(request, tmp_path):
    """A server whose queue is small: for hf one of its own (1 running, 1 waiting); for vllm the
    session's vLLM server, whose limits are already small."""
    if request.param == "vllm":
        yield request.getfixturevalue("vllm_server")
        return
    srv = start_server(tmp_path, {"LETHE_MAX_BATCH_SIZE": "1", "LETHE_MAX_WAITING": "1", "LETHE_FACT_TERMS": "false"})
    srv.capacity = 2
    yield srv
    srv.stop()


def test_a_full_queue_answers_429_with_retry_after_before_any_stream_starts(small_queue, model_name):
    srv = small_queue

    def stream_once(_):
        body = {**chat_body(model_name, "Tell a long story about a dragon.", 48), "stream": True}
        with srv.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as reply:
            text = "".join(reply.iter_lines()) if reply.status_code == 200 else reply.read().decode()
            return reply.status_code, reply.headers.get("retry-after"), text

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(srv.capacity + 4) as pool:
        results = list(pool.map(stream_once, range(srv.capacity + 4)))
    codes = sorted(code for code, _, _ in results)
    assert set(codes) == {200, 429} and codes.count(429) >= 3, codes  # the rest ran or waited
    for code, retry_after, text in results:
        if code == 429:
            assert int(retry_after) >= 1 and json.loads(text)["error"]["code"] == "server_overloaded"
        else:
            assert "error" not in text and text.endswith("data: [DONE]")
    with srv.http() as http:  # nothing stuck: the queue drained
        assert http.post("/v1/chat/completions", json=chat_body(model_name, "Hi", 2)).status_code == 200
