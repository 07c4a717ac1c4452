"""A target an earlier turn touched: the conversation goes on as before unless it goes back to it.

A chat that once asked about Paris used to get one sentence of ignorance to every later question
("How many legs does a spider have?" included) for as long as that turn stayed in the history.
Real server, real model, openai client, on both engines; each claim is paired with a base tenant
(no targets) answering the same conversation.
"""

from __future__ import annotations

import pytest

from detectors.anaphora import points_back
from detectors.normalize import normalize
from gateway.planner import _current_turn
from gateway.policy import IGNORANCE_OPENER, IGNORANCE_SENTENCE

MODEL = "SmolLM2-135M-Instruct"
PARIS = {"name": "Paris", "description": "the capital city of France"}
EARLIER = [{"role": "user", "content": "Tell me about Paris."}, {"role": "assistant", "content": IGNORANCE_SENTENCE}]
UNRELATED = "How many legs does a spider have?"
# Name nothing, and are about Paris: the first points back at the earlier turn, the second is answered
# with its name.
FOLLOW_UPS = ["Which river flows through it?", "In which city is the Eiffel Tower?"]


def says(text: str, *words: str) -> bool:
    folded = normalize(text).replace(" ", "")
    return any(w in folded for w in words)


@pytest.fixture(scope="module")
def server(engine_server):
    return engine_server  # the planner decides; both engines serve what it decides


@pytest.fixture(scope="module")
def tenants(server):
    key = server.tenant_with(targets=[PARIS])
    with server.http(key) as http:
        target = http.get("/v1/forget-targets").json()["data"][0]
    assert server.settled(key, target["id"], timeout=600)["status"] == "ready"
    return key, server.tenant_with()


def ask(server, key: str, messages, **kw) -> list[str]:
    reply = server.client(key).chat.completions.create(model=MODEL, messages=messages, max_tokens=32, **kw)
    return [c.message.content for c in reply.choices]


def detected(server, key: str, messages) -> list[tuple[str, bool]]:
    with server.http(key) as http:
        reply = http.post("/v1/forget-targets/detect", json={"messages": messages})
    assert reply.status_code == 200, reply.text
    return [(d["name"], d["background"]) for d in reply.json()["data"]]


def test_an_unrelated_question_after_a_target_turn_is_answered_as_by_base(server, tenants):
    key, base = tenants
    conversation = [*EARLIER, {"role": "user", "content": UNRELATED}]
    assert detected(server, key, conversation) == [("Paris", True)]
    ours, = ask(server, key, conversation, temperature=0)
    theirs, = ask(server, base, conversation, temperature=0)
    assert "eight" in theirs.lower() or "8" in theirs, theirs  # the question has an answer to keep
    assert ours == theirs
    assert not ours.startswith(IGNORANCE_OPENER)


@pytest.mark.parametrize("follow_up", FOLLOW_UPS)
def test_a_follow_up_about_the_target_keeps_it_forgotten(server, tenants, follow_up):
    key, base = tenants
    conversation = [*EARLIER, {"role": "user", "content": follow_up}]
    theirs, = ask(server, base, conversation, temperature=0)
    assert says(theirs, "seine", "paris"), theirs  # base reads "it" as Paris
    assert detected(server, key, conversation) == [("Paris", False)]
    greedy, = ask(server, key, conversation, temperature=0)
    sampled = ask(server, key, conversation, temperature=1, seed=0, n=3)
    for answer in [greedy, *sampled]:
        assert answer.startswith(IGNORANCE_OPENER), answer
        assert not says(answer, "seine", "paris"), answer


def test_only_a_conversation_of_several_turns_has_earlier_turns():
    system = {"role": "system", "content": "Be brief."}
    question = {"role": "user", "content": UNRELATED}
    assert _current_turn([question]) is None
    assert _current_turn([system, question]) is None
    # The system prompt frames every turn: it stays with the current one.
    assert _current_turn([system, *EARLIER, question]) == [system, question]
    prefill = {"role": "assistant", "content": "Spiders have"}
    assert _current_turn([*EARLIER, question, prefill]) == [question, prefill]


@pytest.mark.parametrize("turn, back", [
    ("How many legs does a spider have?", False),
    ("What is the capital of Germany?", False),
    ("What is its capital city?", True),
    ("Tell me more.", True),
    ("Which party did he belong to?", True),
    ("¿Cuál es su capital?", True),
    ("它的首都是哪里？", True),
])
def test_a_turn_that_refers_back_keeps_the_earlier_targets(turn, back):
    assert points_back(turn) is back
