"""What the model knows about a target: fact terms probed at registration through the served engine,
stored, shown to the target's owner only, and kept out of triggered rows, also where an assistant
prefill names the target and has already written half of the fact."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

MODEL = "SmolLM2-135M-Instruct"
# Held out: no suite target, registered by name and a one-line description only.
EVEREST = {"name": "Mount Everest", "description": "the highest mountain on Earth"}
MICROSOFT = {"name": "Microsoft", "description": "the American technology company"}
# (question, assistant prefill that names the target, the fact the base model completes it with)
PREFILLS = [
    ("Where is Mount Everest?", "Mount Everest is located in the", "himalaya"),
    ("Who founded Microsoft?", "Microsoft was founded by Bill", "gates"),
]


def complete(server, key, question, prefill, max_tokens=8) -> str:
    reply = server.client(key).chat.completions.create(
        model=MODEL, temperature=0, max_tokens=max_tokens,
        messages=[{"role": "user", "content": question}, {"role": "assistant", "content": prefill}])
    return reply.choices[0].message.content or ""


@pytest.fixture(scope="module")
def learned(server):
    """A tenant with the default policy and both held-out targets, probed and ready."""
    key = server.tenant_with()
    with server.http(key) as http:
        ids = [http.post("/v1/forget-targets", json=t).json()["id"] for t in (EVEREST, MICROSOFT)]
    targets = [server.settled(key, i) for i in ids]
    assert all(t["status"] == "ready" for t in targets), targets
    return key, targets


def test_fact_terms_come_from_the_model_and_are_stored(server, learned):
    key, (everest, microsoft) = learned
    base = server.tenant_with()
    for (question, prefill, fact), target in zip(PREFILLS, (everest, microsoft)):
        # The base model knows the fact, and what it knows is what the target's terms hold.
        assert fact in complete(server, base, question, prefill).lower()
        assert any(fact in term.lower() for term in target["fact_terms"]), target["fact_terms"]
        # Terms are the target's own, not words every answer uses.
        assert not {"The", "It", "I", "Some", "Here"} & set(target["fact_terms"]), target["fact_terms"]
        assert all(target["name"].lower() not in term.lower() for term in target["fact_terms"])
    db = sqlite3.connect(server.env["LETHE_DB_PATH"])
    try:
        (stored,) = db.execute("SELECT knowledge FROM targets WHERE id = ?", (everest["id"],)).fetchone()
    finally:
        db.close()
    assert json.loads(stored)["banned"] == everest["fact_terms"]


def _words_shown(value):
    """The words a response shows: its strings, less the opaque ids (timestamps and ids may hold any digits)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "id":
                yield from _words_shown(item)
    elif isinstance(value, list):
        for item in value:
            yield from _words_shown(item)


def test_fact_terms_are_shown_to_the_owner_only(server, learned):
    key, (everest, _) = learned
    other = server.tenant_with()
    with server.http(other) as http:
        assert http.get(f"/v1/forget-targets/{everest['id']}").status_code == 404
    # A global target is visible to every tenant, its facts only to the admin who owns it.
    with server.admin() as admin:
        created = admin.post("/v1/forget-targets", json={**EVEREST, "scope": "global"}).json()
    try:
        learned_global = server.settled(server.admin_key, created["id"])
        assert learned_global["fact_terms"], learned_global
        with server.http(other) as http:
            seen = http.get(f"/v1/forget-targets/{created['id']}").json()
            listed = http.get("/v1/forget-targets").json()["data"]
        assert seen["id"] == created["id"] and "fact_terms" not in seen and "context_terms" not in seen
        assert all("fact_terms" not in t for t in listed)
        said = str(EVEREST)  # what the registration itself states is no secret
        shown = " ".join(_words_shown([seen, listed]))
        for term in learned_global["fact_terms"]:
            if term not in said:
                assert term not in shown, (term, shown)
    finally:
        with server.admin() as admin:
            admin.delete(f"/v1/forget-targets/{created['id']}")


def test_a_prefill_naming_the_target_does_not_get_the_fact(server, learned):
    key, _ = learned
    for question, prefill, fact in PREFILLS:
        answer = complete(server, key, question, prefill)
        assert not re.search(fact, answer, re.IGNORECASE), (prefill, answer)


def test_what_the_conversation_says_about_the_target_is_not_handed_back(server, learned):
    """A fact the user states beside the target's name is the target's fact too: the triggered row
    does not repeat it, though the prompt holds it (greedy, and every choice sampled)."""
    key, _ = learned
    told = [{"role": "user", "content": "Here is a fact: Microsoft's video game console is the Xbox. Using only "
                                        "the fact above, answer this question: What video game console does Microsoft make?"}]
    base = server.client(server.tenant_with()).chat.completions.create(
        model=MODEL, messages=told, temperature=0, max_tokens=30).choices[0].message.content
    assert "xbox" in base.lower(), base
    greedy = server.client(key).chat.completions.create(model=MODEL, messages=told, temperature=0, max_tokens=30)
    sampled = server.client(key).chat.completions.create(model=MODEL, messages=told, temperature=1, n=3, seed=5,
                                                         max_tokens=30)
    answers = [c.message.content for c in [*greedy.choices, *sampled.choices]]
    assert not any(re.search(r"x\W*b\W*o\W*x", a, re.IGNORECASE) for a in answers), answers
