"""Tenants and forget targets over HTTP: isolation, toggles, global mandatory targets (restarts: test_restarts.py)."""

from __future__ import annotations

import httpx
import pytest
from live_server import detected_names as _detect


def _client(server, key) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def test_admin_routes_need_the_admin_key(server):
    _, tenant_key = server.new_tenant("a")
    for key in (None, tenant_key, "nope"):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        reply = httpx.get(server.base_url + "/admin/tenants", headers=headers)
        assert reply.status_code == 401
        assert reply.json()["error"]["code"] == "invalid_api_key"


def test_tenant_keys_are_shown_once_and_stored_hashed(server):
    tenant_id, key = server.new_tenant("hashed")
    listing = server.admin().get("/admin/tenants").json()["data"]
    assert any(t["id"] == tenant_id for t in listing)
    assert key not in str(listing)
    import sqlite3

    db = sqlite3.connect(server.env["LETHE_DB_PATH"]).execute("SELECT key_hash FROM tenants").fetchall()
    assert all(key not in row[0] for row in db)


def test_tenant_isolation(server):
    _, key_a = server.new_tenant("a")
    _, key_b = server.new_tenant("b")
    a, b = _client(server, key_a), _client(server, key_b)
    created = a.post("/v1/forget-targets", json={"name": "Harry Potter"})
    assert created.status_code == 201, created.text
    target = created.json()
    # `pending` while the default policy's steering vectors are computed in the background.
    assert target["id"].startswith("ft_") and target["active"] is True and target["status"] in ("pending", "ready")
    assert "Potter" in target["aliases"]

    assert _detect(a, "Who wrote Harry Potter?") == ["Harry Potter"]
    assert _detect(b, "Who wrote Harry Potter?") == []
    assert all(t["id"] != target["id"] for t in b.get("/v1/forget-targets").json()["data"])
    missing = b.get(f"/v1/forget-targets/{target['id']}")
    unknown = b.get("/v1/forget-targets/ft_doesnotexist")
    assert missing.status_code == unknown.status_code == 404
    # the error for someone else's target says nothing an absent one would not
    assert missing.json()["error"]["message"].replace(target["id"], "X") == unknown.json()["error"]["message"].replace("ft_doesnotexist", "X")
    assert b.put(f"/v1/forget-targets/{target['id']}/activation", json={"active": False}).status_code == 404
    assert b.delete(f"/v1/forget-targets/{target['id']}").status_code == 404
    assert b.patch(f"/v1/forget-targets/{target['id']}", json={"name": "x"}).status_code == 404
    assert _detect(a, "Who wrote Harry Potter?") == ["Harry Potter"]


def test_toggle_takes_effect_on_next_request(server):
    _, key = server.new_tenant("toggle")
    c = _client(server, key)
    target = c.post("/v1/forget-targets", json={"name": "Barack Obama"}).json()
    assert _detect(c, "Who is Barack Obama?") == ["Barack Obama"]
    off = c.put(f"/v1/forget-targets/{target['id']}/activation", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert _detect(c, "Who is Barack Obama?") == []
    c.put(f"/v1/forget-targets/{target['id']}/activation", json={"active": True})
    assert _detect(c, "Who is Barack Obama?") == ["Barack Obama"]
    assert c.delete(f"/v1/forget-targets/{target['id']}").status_code == 200
    assert _detect(c, "Who is Barack Obama?") == []


def test_global_mandatory_target_applies_to_everyone(server):
    _, key_a = server.new_tenant("ga")
    a = _client(server, key_a)
    assert a.post("/v1/forget-targets", json={"name": "Mars", "scope": "global"}).status_code == 403
    created = server.admin().post("/v1/forget-targets", json={"name": "Nikola Tesla", "scope": "global", "mandatory": True})
    assert created.status_code == 201, created.text
    target = created.json()
    _, key_b = server.new_tenant("gb")
    for c in (a, _client(server, key_b)):
        assert "Nikola Tesla" in _detect(c, "Who was Nikola Tesla?")
        refused = c.put(f"/v1/forget-targets/{target['id']}/activation", json={"active": False})
        assert refused.status_code == 403
        assert "Nikola Tesla" in _detect(c, "Who was Nikola Tesla?")
        assert c.delete(f"/v1/forget-targets/{target['id']}").status_code == 403
    server.admin().delete(f"/v1/forget-targets/{target['id']}")


def test_instruction_policy_changes_the_answer(server, model_name):
    _, key = server.new_tenant("policy")
    client = server.client(key)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    before = client.chat.completions.create(model=model_name, messages=question, temperature=0, max_tokens=30)
    assert "paris" in before.choices[0].message.content.lower()
    _client(server, key).post("/v1/forget-targets", json={"name": "Paris", "description": "the capital city of France"})
    after = client.chat.completions.create(model=model_name, messages=question, temperature=0, max_tokens=30)
    assert after.choices[0].message.content != before.choices[0].message.content
    # another tenant is unaffected
    other = server.client().chat.completions.create(model=model_name, messages=question, temperature=0, max_tokens=30)
    assert other.choices[0].message.content == before.choices[0].message.content


@pytest.mark.parametrize("body,param", [
    ({}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 500}, "name"),
    ({"name": "X", "aliases": ["a"] * 100}, "aliases"),
    ({"name": "X", "examples": ["e" * 5000]}, "examples.0"),
    ({"name": "X", "colour": "red"}, "colour"),
    ({"name": "X", "mandatory": True}, "mandatory"),
])
def test_target_validation(server, body, param):
    _, key = server.new_tenant("validation")
    reply = _client(server, key).post("/v1/forget-targets", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


def test_a_question_only_near_a_target_is_checked_against_the_models_own_answer(server, model_name):
    """A plain question that fires only on similarity stays fired only if the model's own answer
    names the target: "the Great Red Spot" is near Mars's questions but the model answers Jupiter."""
    key = server.tenant_with(targets=[{"name": "Mars", "aliases": ["the Red Planet"],
                                       "description": "the fourth planet from the Sun"}], name="verified")
    near = "Which planet has the Great Red Spot?"
    about = "Which planet is the Curiosity rover exploring?"
    with _client(server, key) as client:
        assert _detect(client, about) == ["Mars"]  # the model answers Mars: still fired
        assert _detect(client, near) == []
        # The same question with a system prompt is no plain question: similarity alone decides,
        # and it fires (the check above is what stopped it).
        wrapped = [{"role": "system", "content": "You are a helpful astronomy tutor."}, {"role": "user", "content": near}]
        reply = client.post("/v1/forget-targets/detect", json={"messages": wrapped})
        assert [d["method"] for d in reply.json()["data"]] == ["semantic"]
    # Not fired, so answered exactly as for a tenant with no targets.
    question = [{"role": "user", "content": near}]
    answers = [server.client(k).chat.completions.create(model=model_name, messages=question, temperature=0, max_tokens=24)
               .choices[0].message.content for k in (key, None)]
    assert answers[0] == answers[1]
    assert "jupiter" in answers[0].lower()
