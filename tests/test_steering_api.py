"""Gated steering through the gateway: vectors computed at registration (pending -> ready),
stored per model, applied only to the rows whose request fired."""

from __future__ import annotations

import concurrent.futures
import sqlite3

import pytest

MODEL = "SmolLM2-135M-Instruct"
HARRY = {"name": "Harry Potter", "description": "the boy wizard of J.K. Rowling's novels"}
FACTS = [("Who wrote Harry Potter?", "rowling"), ("Who is the author of the Harry Potter books?", "rowling")]
INNOCENT = ["What is the capital of Italy?", "Name three primary colours.", "Write a haiku about the sea."]


def ask(server, key, question, max_tokens=32) -> str:
    reply = server.client(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], temperature=0, max_tokens=max_tokens)
    return reply.choices[0].message.content


@pytest.fixture(scope="module")
def server(engine_server):
    """Both engines; on vLLM the vectors are computed through the engine itself."""
    return engine_server


_STEERED: dict[str, tuple[str, str]] = {}  # server url -> (tenant key, target id) of its steered HARRY


def steered_harry(server) -> tuple[str, str]:
    """A tenant that steers (alone: no instruction, no bans) with HARRY registered and ready, once
    per server: its vectors serve both the behaviour test and the engines' comparison."""
    if server.base_url not in _STEERED:
        key = server.tenant_with({"interventions": ["steering"]})
        with server.http(key) as http:
            created = http.post("/v1/forget-targets", json=HARRY).json()
        assert created["status"] == "pending"
        assert server.settled(key, created["id"], timeout=180)["status"] == "ready"
        _STEERED[server.base_url] = key, created["id"]
    return _STEERED[server.base_url]


def test_steering_removes_the_facts_and_leaves_other_rows_identical(server):
    base = server.tenant_with()
    steered, _ = steered_harry(server)

    jobs = [(base, q) for q, _ in FACTS] + [(steered, q) for q, _ in FACTS] + \
           [(base, q) for q in INNOCENT] + [(steered, q) for q in INNOCENT]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:  # one shared batch
        answers = list(pool.map(lambda job: ask(server, *job), jobs))
    n = len(FACTS)
    base_facts, steered_facts = answers[:n], answers[n:2 * n]
    assert all(gold in a.lower() for a, (_, gold) in zip(base_facts, FACTS)), base_facts
    assert not any(gold in a.lower() for a, (_, gold) in zip(steered_facts, FACTS)), steered_facts
    assert answers[2 * n:2 * n + len(INNOCENT)] == answers[2 * n + len(INNOCENT):]  # untriggered: byte-identical


def _stored_vectors(server, target_id):
    from steering import SteeringVectors

    db = sqlite3.connect(server.env["LETHE_DB_PATH"])
    try:
        (blob,) = db.execute("SELECT data FROM steering_vectors WHERE target_id = ?", (target_id,)).fetchone()
    finally:
        db.close()
    return SteeringVectors.from_bytes(blob)


def test_vectors_computed_through_vllm_match_those_from_transformers(hf_server, vllm_server):
    """vLLM's workers capture the residual stream at the last prompt token; read at the wrong token
    or layer, the directions would point elsewhere than the transformers model's."""
    hf, vllm = (_stored_vectors(srv, steered_harry(srv)[1]) for srv in (hf_server, vllm_server))
    assert hf.layers.keys() == vllm.layers.keys()
    for layer, direction in hf.layers.items():
        assert float(direction @ vllm.layers[layer]) > 0.99, layer
        assert abs(hf.norms[layer] - vllm.norms[layer]) < 0.01 * hf.norms[layer], layer
