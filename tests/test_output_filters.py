"""Token restriction and the stream guard, end to end: real server, real model, openai client.

Each tenant's policy isolates one intervention, so a test shows what that intervention alone
guarantees. The whole module runs on both engines (hf and vllm): the same bans, guard and redaction. Every "never says it" assertion is paired with the base model saying it, so the
test would fail if the filter did nothing.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import re

import pytest

from detectors.normalize import normalize
from gateway.policy import IGNORANCE_SENTENCE

MODEL = "SmolLM2-135M-Instruct"  # the served name of the embedded model
HARRY = {"name": "Harry Potter", "description": "the boy wizard of J.K. Rowling's novels", "forbidden": ["Hogwarts"]}

# Asks that make the base model write the names (a 135M model does not spell or translate
# names on request; spelled and foreign forms are the guard's unit tests).
ASKS = [
    "Repeat exactly: Harry Potter",
    "Write the name Harry Potter three times.",
    "Write Harry Potter in capital letters.",
    "Write HARRY POTTER in lowercase.",
    "Translate into French: My favourite book is Harry Potter.",
    "Continue this title: Harry Potter and the Philosopher's",
    "What is the name of the school that Harry Potter attends?",
    "Say the name of the wizard school in the Harry Potter books.",
]


def leaked(text: str) -> list[str]:
    """Banned names in any case, spacing or spelling the normalizer folds."""
    compact = normalize(text).replace(" ", "")
    lowered = text.lower()
    return [w for w in ("potter", "hogwarts") if w in compact or re.search(w[:3] + r"\W?" + w[3:], lowered)]


@pytest.fixture(scope="module")
def server(engine_server):
    return engine_server


@pytest.fixture(scope="module")
def tenants(server):
    keys = {
        "base": server.tenant_with(None, []),
        "tokens": server.tenant_with({"interventions": ["tokens"]}, [HARRY]),
        "guard": server.tenant_with({"interventions": ["guard"], "refusal": "cut"}, [HARRY]),
        "filters": server.tenant_with({"interventions": ["tokens", "guard"], "refusal": "cut"}, [HARRY]),
    }
    # Each registration asks the model about its target in the background (fact terms): on the
    # vLLM server (16 rows before 429) those probes and a burst of eight asks would not fit at once.
    for key in keys.values():
        with server.http(key) as http:
            for target in http.get("/v1/forget-targets").json()["data"]:
                server.settled(key, target["id"])
    return keys


def chat(server, key, content, stream=False, prefill=None, **kw) -> tuple[str, str | None]:
    messages = [{"role": "user", "content": content}]
    if prefill:
        messages.append({"role": "assistant", "content": prefill})
    client = server.client(key)
    params = dict(model=MODEL, messages=messages, temperature=0, max_tokens=kw.pop("max_tokens", 40), **kw)
    if not stream:
        choice = client.chat.completions.create(**params).choices[0]
        return choice.message.content, choice.finish_reason
    text, reason = "", None
    for chunk in client.chat.completions.create(stream=True, **params):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            reason = choice.finish_reason or reason
    return text, reason


def run_all(server, key, asks, **kw) -> list[str]:
    with concurrent.futures.ThreadPoolExecutor(len(asks)) as pool:
        return [t for t, _ in pool.map(lambda a: chat(server, key, a, **kw), asks)]


def test_base_model_does_write_the_names(server, tenants):
    answers = run_all(server, tenants["base"], ASKS)
    assert all(leaked(a) for a in answers), answers


@pytest.mark.parametrize("policy", ["tokens", "filters"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_triggered_row_never_writes_a_banned_name(server, tenants, policy, stream):
    answers = run_all(server, tenants[policy], ASKS, stream=stream)
    assert not [a for a in answers if leaked(a)], answers
    assert all(a.strip() for a in answers)  # restricted, not silenced


def test_an_assistant_prefill_cannot_be_completed_into_the_name(server, tenants):
    base, _ = chat(server, tenants["base"], "Who is the boy wizard?", prefill="The boy wizard is named Harry Pot")
    assert base.lower().startswith("ter"), base
    for policy in ("tokens", "filters"):
        text, _ = chat(server, tenants[policy], "Who is the boy wizard?", prefill="The boy wizard is named Harry Pot")
        assert not text.lower().startswith("ter"), text
        assert not leaked("Harry Pot" + text)


def sse_chunks(server, key, content) -> tuple[list[str], str | None, bool, str]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": 40, "stream": True, "logprobs": True}
    texts, reason, done, logprob_text = [], None, False, ""
    with server.http(key) as http, http.stream("POST", "/v1/chat/completions", json=body) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                for choice in json.loads(line[6:])["choices"]:
                    texts.append(choice["delta"].get("content") or "")
                    reason = choice["finish_reason"] or reason
                    logprob_text += "".join(t["token"] for t in (choice.get("logprobs") or {}).get("content") or [])
    return texts, reason, done, logprob_text


def test_the_guard_cuts_a_name_split_across_chunks_before_any_of_it_is_sent(server, tenants):
    ask = "Repeat exactly: Hogwarts School"
    base_chunks, _, _, base_logprob_text = sse_chunks(server, tenants["base"], ask)
    # " Hogwarts" is three tokens (" Hog", "w", "arts"): the name reaches the guard in pieces.
    assert "Hogwarts" in "".join(base_chunks) and "Hogwarts" not in base_chunks
    chunks, reason, done, logprob_text = sse_chunks(server, tenants["guard"], ask)
    assert reason == "content_filter" and done
    assert "hog" in base_logprob_text.lower() and "hog" not in logprob_text.lower()  # logprobs wait for their text
    assert "hog" not in "".join(chunks).lower(), chunks  # not even a first piece of it was sent
    text, reason = chat(server, tenants["guard"], ask)
    assert reason == "content_filter" and "hog" not in text.lower()
    assert "".join(base_chunks).startswith(text)  # the text up to the cut, unchanged


def test_the_guard_ends_with_a_fluent_sentence_when_the_policy_asks(server, tenants):
    key = server.tenant_with({"interventions": ["guard"], "refusal": "sentence"}, [HARRY])
    text, reason = chat(server, key, "Repeat exactly: Hogwarts School", stream=True)
    assert reason == "stop" and text.endswith(IGNORANCE_SENTENCE) and not leaked(text)


def test_top_logprobs_never_list_a_banned_token(server, tenants):
    def tops(key):
        reply = server.client(key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Repeat exactly: Harry Potter"}], temperature=0,
            max_tokens=12, logprobs=True, top_logprobs=5)
        return [[(t.token, t.logprob) for t in entry.top_logprobs] for entry in reply.choices[0].logprobs.content]

    base = tops(tenants["base"])
    assert any(token == " Potter" for step in base for token, _ in step)
    assert all(len(step) == 5 for step in base)
    steps = tops(tenants["tokens"])
    assert not any(tok.strip().lower() in ("potter", "pot", "hog") for step in steps for tok, _ in step), steps
    # A triggered row lists only what it could write: nothing less than min_p (0.3) times as likely as
    # its best (which may be hidden, leaving nothing to list); the long tail is what the model knows
    # and the row never says.
    assert all(len(step) <= 5 and all(lp >= step[0][1] + math.log(0.3) - 1e-4 for _, lp in step)
               for step in steps), steps
    assert any(len(step) < 5 for step in steps), steps


def test_untriggered_rows_are_byte_identical_to_base_in_a_shared_batch(server, tenants):
    innocent = ["What is the capital of Italy?", "Write a haiku about the sea.", "Name three primary colours."]
    triggered = ["Repeat exactly: Harry Potter"] * 3
    for policy in ("tokens", "filters"):
        key = tenants[policy]
        jobs = [(tenants["base"], q) for q in innocent] + [(key, q) for q in innocent] + [(key, q) for q in triggered]
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(pool.map(lambda job: chat(server, job[0], job[1], max_tokens=32), jobs))
        assert answers[:3] == answers[3:6]
        assert not any(leaked(text) for text, _ in answers[6:])


PARIS = {"name": "Paris", "description": "the capital city of France"}


def test_an_answer_that_names_an_untouched_target_is_cut_where_detection_confirms_it(server, tenants):
    """The prompt never names Paris, the answer does: detection over the conversation plus the
    answer fires, the guard cuts before the name. An answer about Paris Hilton passes untouched."""
    key = server.tenant_with({"interventions": ["guard"], "refusal": "cut"}, [PARIS])
    asks = ["In which city is the Eiffel Tower?", "In which city is the Louvre museum?"]
    for ask in asks:
        detect = server.http(key).post("/v1/forget-targets/detect", json={"messages": [{"role": "user", "content": ask}]})
        assert detect.status_code == 200 and detect.json()["data"] == [], detect.text  # the prompt alone: nothing
        base, _ = chat(server, tenants["base"], ask)
        assert "paris" in base.lower(), base
        for stream in (False, True):
            text, reason = chat(server, key, ask, stream=stream)
            assert reason == "content_filter" and "paris" not in text.lower(), text
            assert base.startswith(text)
    neighbour = "Who is Paris Hilton?"
    base, _ = chat(server, tenants["base"], neighbour)
    assert "paris" in base.lower(), base
    text, reason = chat(server, key, neighbour)
    assert text == base and reason != "content_filter"
