"""A triggered answer sampled as the SDK samples by default (temperature 1) is still English: steering
flattens the next-token distribution, and sampling its tail gave word salad ("Make it with my order
with Algalona FOIQ 108712")."""

from __future__ import annotations

import time

import pytest
from transformers import AutoTokenizer

from bench.steering_sweep import vocab_share

MODEL = "SmolLM2-135M-Instruct"
PARIS = {"name": "Paris", "description": "the capital city of France"}
QUESTIONS = ["What is the capital of France?", "What is Paris famous for?", "Tell me about Paris."]
SAMPLES = 4  # choices per question (n), each sampled from its own seed
BOUND = 0.8  # English prose scores about 0.9 and up; the word salad above scores 0.67


@pytest.fixture(scope="module")
def tokenizer():
    from gateway.model_loader import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("embedded").path)


def test_sampled_triggered_answers_are_words(server, tokenizer):
    key = server.tenant_with(targets=[PARIS])
    with server.http(key) as http:
        target = http.get("/v1/forget-targets").json()["data"][0]
        deadline = time.monotonic() + 600  # a loaded CI box probes slowly
        while target["status"] == "pending" and time.monotonic() < deadline:  # steering needs its vectors
            time.sleep(0.5)
            target = http.get(f"/v1/forget-targets/{target['id']}").json()
        assert target["status"] == "ready", target
        for q in QUESTIONS:
            assert http.post("/v1/forget-targets/detect", json={"messages": [{"role": "user", "content": q}]}
                             ).json()["triggered"], q
    client = server.client(key)
    answers = [c.message.content for q in QUESTIONS
               for c in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": q}],
                                                       temperature=1, seed=0, n=SAMPLES, max_tokens=24).choices]
    scores = [vocab_share(tokenizer, a) for a in answers]
    assert min(scores) >= BOUND, [(round(s, 2), a) for s, a in zip(scores, answers) if s < BOUND]
    assert not any("paris" in a.lower() for a in answers), answers
