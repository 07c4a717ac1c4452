"""Probing the gateway as an attacker would, on a real server: cross-tenant side channels (spelling
correction, the embedding cache, usage), bad text, input that would buy CPU, names that match
everything, and curl's default content type."""

from __future__ import annotations

import json
import random
import statistics
import time

import httpx
import pytest
from live_server import detected_names

EVEREST = {"name": "Mount Everest", "description": "the highest mountain on Earth, in the Himalayas"}
CURIE = {"name": "Marie Curie", "description": "the physicist and chemist who discovered radium"}
# What is probed here is detection and input handling, not the answer's filters: a policy with no
# token bans, guard or steering asks no background work of the model (fact terms, vectors), which
# would otherwise run beside, and blur, the timing measurements.
DETECTION = {"interventions": ["instruction"]}


def detect(http: httpx.Client, text: str) -> httpx.Response:
    return http.post("/v1/forget-targets/detect", json={"messages": [{"role": "user", "content": text}]})


def test_another_tenants_registration_cannot_switch_off_spelling_correction(server):
    a = server.tenant_with(DETECTION, targets=[EVEREST])
    with server.http(a) as http:
        assert detected_names(http, "How tall is Evrest?") == ["Mount Everest"]
    with server.admin() as admin:
        c_id = admin.post("/admin/tenants", json={"name": "c"}).json()
    with server.http(c_id["api_key"]) as http:
        assert http.post("/v1/forget-targets", json={"name": "Evrest"}).status_code == 201
    with server.http(a) as http:
        assert detected_names(http, "How tall is Evrest?") == ["Mount Everest"]
    with server.admin() as admin:
        assert admin.delete(f"/admin/tenants/{c_id['id']}").status_code in (200, 204)
    with server.http(a) as http:
        assert detected_names(http, "How tall is Evrest?") == ["Mount Everest"]


def _long_text(rng: random.Random, sentences: int = 24) -> str:
    words = "river lamp stone quiet market orchard letter window garden harbour bridge candle winter meadow".split()
    return " ".join(" ".join(rng.choice(words) for _ in range(12)).capitalize() + f" {rng.randrange(10**6)}."
                    for _ in range(sentences))


def _seconds(http: httpx.Client, text: str) -> float:
    started = time.perf_counter()
    assert detect(http, text).status_code == 200
    return time.perf_counter() - started


def test_a_text_another_tenant_sent_is_no_faster_than_a_fresh_one(server):
    rng = random.Random()  # fresh texts on every run: nothing cached by an earlier run
    sender, prober = server.tenant_with(DETECTION, targets=[CURIE]), server.tenant_with(DETECTION, targets=[EVEREST])
    sent = [_long_text(rng) for _ in range(4)]
    with server.http(sender) as http:
        for text in sent:
            detect(http, text)
        own_repeat = statistics.median(_seconds(http, text) for text in sent)
    with server.http(prober) as http:
        foreign, fresh = [], []
        for text in sent:  # alternated, so the box's load hits both alike
            foreign.append(_seconds(http, text))
            fresh.append(_seconds(http, _long_text(rng)))
    foreign_s, fresh_s = statistics.median(foreign), statistics.median(fresh)
    # The cache is real (the sender's own repeat is fast) but per tenant: another tenant's text
    # costs the prober what a fresh one does (it was 30x faster with a shared cache).
    assert own_repeat < 0.5 * fresh_s, (own_repeat, fresh_s)
    assert foreign_s > 0.5 * fresh_s, (foreign_s, fresh_s)


def test_usage_never_shows_what_lethe_added(server, model_name):
    triggered, plain = server.tenant_with(targets=[CURIE]), server.tenant_with()
    question = "Who is Marie Curie?"
    with server.http(triggered) as http:
        assert detected_names(http, question) == ["Marie Curie"]

    def usages(key: str) -> list[dict]:
        with server.http(key) as http:
            chat = {"model": model_name, "messages": [{"role": "user", "content": question}], "max_tokens": 2,
                    "temperature": 0}
            out = [http.post("/v1/chat/completions", json=chat).json()["usage"],
                   http.post("/v1/completions", json={"model": model_name, "prompt": question, "max_tokens": 2,
                                                      "temperature": 0}).json()["usage"]]
            for path, body in (("/v1/chat/completions", chat),
                               ("/v1/completions", {"model": model_name, "prompt": question, "max_tokens": 2})):
                body = {**body, "stream": True, "stream_options": {"include_usage": True}}
                with http.stream("POST", path, json=body) as reply:
                    chunks = [json.loads(line[6:]) for line in reply.iter_lines()
                              if line.startswith("data: ") and line != "data: [DONE]"]
                out.append(chunks[-1]["usage"])
        return [u["prompt_tokens"] for u in out]

    assert usages(triggered) == usages(plain)


BAD_TEXTS = ["\ud800", "What is the capital of Germany?\udfff", "Ever\udbffest", "\udc00\ud800 Marie Curie"]
ODD_TEXTS = ["Who is Marie\x00 Cu\x01rie?", "\x1b[31mred\x1b[0m \x7f\x85", "Who is Marie C\u0000urie\u200b?",
             "\uffff\ufffe\ue000 noncharacters", "tab\tnew\nline\rreturn"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/forget-targets/detect"])
def test_lone_surrogates_are_a_clear_400_with_and_without_targets(server, model_name, path):
    for key in (server.tenant_with(DETECTION, targets=[CURIE]), server.tenant_with()):
        with server.http(key) as http:
            for text in BAD_TEXTS:
                body = ({"model": model_name, "prompt": text, "max_tokens": 1} if path == "/v1/completions" else
                        {"model": model_name, "messages": [{"role": "user", "content": text}], "max_tokens": 1})
                if path.endswith("detect"):
                    body = {"messages": body["messages"]}
                reply = http.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
                assert reply.status_code == 400, (text.encode("unicode_escape"), reply.text)
                assert "surrogate" in reply.json()["error"]["message"] and reply.json()["error"]["param"]
            reply = http.post("/v1/forget-targets", content=json.dumps({"name": "Ever\ud800est"}),
                              headers={"content-type": "application/json"})
            assert reply.status_code == 400 and reply.json()["error"]["param"] == "name"


def test_control_characters_neither_crash_nor_dodge_detection(server, model_name):
    key = server.tenant_with(DETECTION, targets=[CURIE])
    with server.http(key) as http:
        for text in ODD_TEXTS:
            reply = http.post("/v1/chat/completions", json={"model": model_name, "max_tokens": 1,
                                                            "messages": [{"role": "user", "content": text}]})
            assert reply.status_code == 200, reply.text
        assert detected_names(http, "Who is Marie\x00 Cu\x01rie?") == ["Marie Curie"]
        assert detected_names(http, "Who discovered radium, Ma\x1brie Cu\x7frie?") == ["Marie Curie"]


def test_fuzzed_bodies_never_5xx_and_are_answered_in_bounded_time(server, model_name):
    rng = random.Random(15)
    alphabet = [*"abc ,.-", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\u200b", "\ufeff", "\uffff", "\U0010ffff",
                "\ud800", "\udfff", "\u202e", "\ue000"]
    key = server.tenant_with(DETECTION, targets=[CURIE])
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))) for _ in range(12)]
    # 1 MB of unique sentences: refused by the cheap context check, never detected for seconds.
    texts.append(_long_text(rng, 12_000)[:1_000_000])
    with server.http(key) as http:
        for text in texts:
            for path, body in (("/v1/chat/completions", {"model": model_name, "max_tokens": 1,
                                                         "messages": [{"role": "user", "content": text}]}),
                               ("/v1/completions", {"model": model_name, "max_tokens": 1, "prompt": text}),
                               ("/v1/forget-targets/detect", {"messages": [{"role": "user", "content": text}]})):
                started = time.perf_counter()
                reply = http.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
                elapsed = time.perf_counter() - started
                assert reply.status_code < 500, (path, text[:40].encode("unicode_escape"), reply.text[:300])
                if reply.status_code >= 400:
                    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
                assert elapsed < 20, (path, len(text), elapsed)  # was 29 s for 100 KB before any 400
        big = http.post("/v1/chat/completions", json={"model": model_name, "max_tokens": 1,
                                                      "messages": [{"role": "user", "content": texts[-1]}]})
        assert big.status_code == 400 and big.json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize("body, param", [
    ({"name": "\u200b\u200c\u200d"}, "name"),
    ({"name": "It"}, "name"),
    ({"name": "--- ... ---"}, "name"),
    ({"name": "Marie Curie", "aliases": ["Madame Curie", "\u2060"]}, "aliases"),
    ({"name": "Marie Curie", "forbidden": ["the"]}, "forbidden"),
])
def test_names_that_normalize_to_nothing_or_a_stop_word_are_refused(server, body, param):
    with server.http(server.tenant_with()) as http:
        reply = http.post("/v1/forget-targets", json=body)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == param
        created = http.post("/v1/forget-targets", json={"name": "Marie Curie"}).json()
        patched = http.patch(f"/v1/forget-targets/{created['id']}", json={"aliases": ["\u200b"]})
        assert patched.status_code == 400 and patched.json()["error"]["param"] == "aliases"
        assert detected_names(http, "Who is it?") == []


def test_a_json_body_without_json_content_type_is_read_as_json(server):
    # What the README's curl line (and `curl -d` in general) sends.
    reply = httpx.post(server.base_url + "/v1/forget-targets", content=b'{"name": "Harry Potter"}',
                       headers={"Authorization": f"Bearer {server.tenant_with()}",
                                "Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 201, reply.text
    bare = httpx.post(server.base_url + "/v1/forget-targets", content=b'{"name": "Harry Potter"}',
                      headers={"Authorization": f"Bearer {server.tenant_with()}"})
    assert bare.status_code == 201, bare.text
