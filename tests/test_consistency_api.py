"""One consistent view per request, over HTTP on a real server: edits take effect whole and at
once, failed generations reach the client OpenAI-shaped, and a bounded stress run of writers and
readers across tenants gives no 5xx, no KeyError and no cross-tenant result."""

from __future__ import annotations

import json
import random
import threading
import time

import httpx
import pytest
from stress import run_threads
from live_server import start_server

FAIL = "Quaxmorph-fail-prefill"  # a prompt holding this fails its prefill (failpoint)
NO_STEERING = {"interventions": ["instruction", "tokens", "guard"]}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    # Consistency of writes is under test, not what the model knows: no probing of each written target.
    server = start_server(tmp_path_factory.mktemp("consistency"), {"LETHE_FAILPOINTS": f"prefill={FAIL}",
                                                                   "LETHE_FACT_TERMS": "false"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model_name(srv) -> str:
    return srv.client().models.list().data[0].id


def _detect(http: httpx.Client, text: str) -> list[dict]:
    reply = http.post("/v1/forget-targets/detect", json={"messages": [{"role": "user", "content": text}]})
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def test_an_edit_takes_effect_whole_when_it_returns(srv):
    with srv.http(srv.tenant_with(NO_STEERING)) as http:
        created = http.post("/v1/forget-targets", json={"name": "Zorblax Quentaro", "description": "a fictional explorer"})
        assert created.status_code == 201, created.text
        target_id = created.json()["id"]
        assert [d["target_id"] for d in _detect(http, "Who is Zorblax Quentaro?")] == [target_id]
        renamed = http.patch(f"/v1/forget-targets/{target_id}", json={"name": "Vintrel Moskavy"})
        assert renamed.status_code == 200, renamed.text
        aliases = renamed.json()["aliases"]
        assert not any(a.endswith("'s's") or "Quentaro" in a or "Zorblax" in a for a in aliases), aliases
        assert _detect(http, "Who is Zorblax Quentaro? Tell me about Quentaro's travels.") == []
        assert [d["target_id"] for d in _detect(http, "Who is Vintrel Moskavy?")] == [target_id]


def test_a_target_policy_is_refused_rather_than_stored_and_ignored(srv):
    with srv.http(srv.tenant_with(NO_STEERING)) as http:
        reply = http.post("/v1/forget-targets", json={"name": "Pelmora Drasken", "policy": {"refusal": "cut"}})
        assert reply.status_code == 400 and reply.json()["error"]["param"] == "policy", reply.text
        created = http.post("/v1/forget-targets", json={"name": "Pelmora Drasken"}).json()
        assert "policy" not in created
        assert http.patch(f"/v1/forget-targets/{created['id']}", json={"policy": {}}).status_code == 400


def test_a_failed_generation_is_an_openai_error_never_a_hang_or_an_unknown_finish_reason(srv, model_name):
    body = {"model": model_name, "messages": [{"role": "user", "content": f"Say {FAIL}."}], "max_tokens": 4}
    with srv.http() as http:
        http.timeout = httpx.Timeout(60)
        reply = http.post("/v1/chat/completions", json=body)
        assert reply.status_code == 500, reply.text
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
        assert reply.json()["error"]["type"] == "server_error"
        with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as stream:
            events = [line[len("data: "):] for line in stream.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert json.loads(events[-2])["error"]["type"] == "server_error"
        assert not any('"finish_reason": "error"' in e for e in events)
        completion = http.post("/v1/completions", json={"model": model_name, "prompt": ["Hello", f"{FAIL}"], "max_tokens": 2})
        assert completion.status_code == 500 and "error" in completion.json()
        # The engine carries on.
        assert http.post("/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "Hi"}]}).status_code == 200
    with srv.client() as client:  # and the official client raises a proper error
        import openai

        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(**body)


def test_every_completion_prompt_is_checked_against_the_context(srv, model_name):
    long_prompt = "word " * 9000
    with srv.http() as http:
        reply = http.post("/v1/completions", json={"model": model_name, "prompt": ["Hi", long_prompt], "max_tokens": 2})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "context_length_exceeded"


def _name(rng: random.Random) -> str:
    return " ".join("".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3)).capitalize()
                    for _ in range(2))


def test_writers_and_readers_across_tenants_stay_consistent(srv, model_name):
    """Bounded stress: per tenant a writer creates, edits, toggles and deletes targets while readers
    detect and chat. Zero 5xx, zero KeyError, an edit that returned is never followed by a lexical
    match on the old name, and no tenant ever gets another tenant's target."""
    keys = [srv.tenant_with(NO_STEERING) for _ in range(3)]
    owner_of: dict[str, int] = {}
    names: dict[str, str] = {}
    retired: list[tuple[float, int, str, str]] = []  # (edit returned, tenant, target id, old name)
    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def writer(i: int):
        rng = random.Random(i)
        mine: list[str] = []
        with srv.http(keys[i]) as http:
            while not stop.is_set():
                op = rng.random()
                if op < 0.4 or not mine:
                    name = _name(rng)
                    reply = http.post("/v1/forget-targets", json={"name": name})
                    statuses.append(reply.status_code)
                    if reply.status_code == 201:
                        target_id = reply.json()["id"]
                        owner_of[target_id], names[target_id] = i, name
                        mine.append(target_id)
                        if target_id not in {d["target_id"] for d in _detect(http, f"Who is {name}?")}:
                            failures.append(f"created {name} not live on return")
                elif op < 0.7:
                    target_id = rng.choice(mine)
                    old, new = names[target_id], _name(rng)
                    reply = http.patch(f"/v1/forget-targets/{target_id}", json={"name": new})
                    statuses.append(reply.status_code)
                    names[target_id] = new
                    retired.append((time.monotonic(), i, target_id, old))
                    if any(d["target_id"] == target_id and d["method"] == "lexical" for d in _detect(http, f"Who is {old}?")):
                        failures.append(f"old name {old} fired after the edit returned")
                elif op < 0.85:
                    target_id = rng.choice(mine)
                    for active in (False, True):
                        reply = http.put(f"/v1/forget-targets/{target_id}/activation", json={"active": active})
                        statuses.append(reply.status_code)
                        fired = target_id in {d["target_id"] for d in _detect(http, f"Who is {names[target_id]}?")}
                        if fired != active:
                            failures.append(f"toggle to {active} not live on return")
                else:
                    target_id = mine.pop(rng.randrange(len(mine)))
                    statuses.append(http.delete(f"/v1/forget-targets/{target_id}").status_code)
                    if target_id in {d["target_id"] for d in _detect(http, f"Who is {names[target_id]}?")}:
                        failures.append("deleted target still fired")

    def reader(seed: int):
        rng = random.Random(seed)
        clients = [srv.http(k) for k in keys]
        try:
            step = 0
            while not stop.is_set():
                i = rng.randrange(len(keys))
                mention = " and ".join(rng.sample(list(names.values()), min(3, len(names)))) or "nobody"
                started = time.monotonic()
                if step % 4 == 3:
                    reply = clients[i].post("/v1/chat/completions", json={
                        "model": model_name, "messages": [{"role": "user", "content": f"Who is {mention}?"}],
                        "max_tokens": 3, "temperature": 0})
                    statuses.append(reply.status_code)
                else:
                    reply = clients[i].post("/v1/forget-targets/detect",
                                            json={"messages": [{"role": "user", "content": f"Who is {mention}?"}]})
                    statuses.append(reply.status_code)
                    for d in reply.json().get("data", []):
                        if owner_of.get(d["target_id"], i) != i:
                            failures.append(f"tenant {i} got tenant {owner_of[d['target_id']]}'s target")
                        for when, owner, target_id, old in list(retired):
                            if (when < started and target_id == d["target_id"] and d["method"] == "lexical"
                                    and old in mention and names[target_id] not in mention):
                                failures.append(f"old name {old} matched after its edit returned")
                step += 1
        finally:
            for c in clients:
                c.close()

    run_threads(writer, len(keys), reader, 2, stop, seconds=25, join_timeout=180)
    assert not failures, failures[:5]
    assert statuses and all(code < 500 for code in statuses), sorted(set(statuses))
    assert len(names) >= 4 and retired
    log = srv.log_path.read_text()
    assert "KeyError" not in log and "detection failed" not in log


def test_a_failed_prefill_fails_the_rows_it_was_admitting_instead_of_leaving_them_waiting():
    """In-process engine with the real model: a plan that breaks the prefill forward pass (a
    steering vector of the wrong size) ends its row with an error at once; the engine goes on."""
    import asyncio

    import torch

    from bench.common import load_engine
    from gateway.engines.base import GenerationRequest, RowPlan, SamplingParams
    from steering import GatedSteering

    engine = load_engine(max_batch_size=4)
    engine.steering = GatedSteering(engine.model)
    engine.start()

    async def one(plan, prompt="What is the capital of France?"):
        ids = engine.render_chat([{"role": "user", "content": prompt}])
        reasons = []
        async for out in engine.generate(GenerationRequest(f"r{random.random()}", ids, SamplingParams(4, 0.0), plan)):
            reasons.append(out.finish_reason)
        return reasons[-1]

    try:
        broken = RowPlan(steering={3: torch.zeros(7)})
        assert asyncio.run(asyncio.wait_for(one(broken), timeout=60)) == "error"
        assert asyncio.run(asyncio.wait_for(one(None), timeout=60)) in ("stop", "length")
    finally:
        engine.shutdown()


def test_with_fact_terms_off_a_target_is_ready_without_probing_and_the_log_says_so(srv):
    _, key = srv.new_tenant("no-fact-terms")
    with srv.http(key) as http:
        created = http.post("/v1/forget-targets", json={"name": "Marie Curie"}).json()
    settled = srv.settled(key, created["id"], timeout=120)
    assert settled["status"] == "ready" and settled["fact_terms"] is None, settled
    assert "fact terms are off (fact_terms: false)" in srv.log_path.read_text()
