"""One store through three servers: a graceful stop while background work runs, a restart that
serves another model, and a kill -9 in the middle of writes. Each start costs a model load, so the
three lifetimes are one chain rather than three tests of two servers each."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time

import httpx
from live_server import detected_names as _detect, start_server


def _write_until_killed(srv) -> list[tuple[str, bool]]:
    """Creates and toggles targets until SIGKILL lands anywhere in a write; returns (id, active) of
    every write the client saw acknowledged."""
    acknowledged: list[tuple[str, bool]] = []
    stop = threading.Event()

    def writer():
        with srv.http() as http:
            i = 0
            while not stop.is_set():
                try:
                    reply = http.post("/v1/forget-targets", json={"name": f"Quelorna Vantrisk {i}"})
                    if reply.status_code == 201:
                        acknowledged.append((reply.json()["id"], True))
                        if http.put(f"/v1/forget-targets/{reply.json()['id']}/activation",
                                    json={"active": i % 2 == 0}).status_code == 200:
                            acknowledged[-1] = (acknowledged[-1][0], i % 2 == 0)
                except httpx.HTTPError:
                    return
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(random.uniform(0, 0.5))  # land the kill anywhere in the next write
    os.kill(srv.process.pid, signal.SIGKILL)
    stop.set()
    thread.join()
    srv.process.wait()
    return acknowledged


def test_targets_activations_and_vectors_survive_stops_restarts_and_kill_9(tmp_path):
    first = start_server(tmp_path)
    db_path = first.env["LETHE_DB_PATH"]
    same_store = {"LETHE_DB_PATH": db_path, "LETHE_ADMIN_KEY": first.admin_key}
    try:
        _, key = first.new_tenant("durable")
        with first.http(key) as http:
            steered = http.post("/v1/forget-targets", json={"name": "Barack Obama"}).json()
            assert first.settled(key, steered["id"], timeout=180)["status"] == "ready"
            # Written just before the stop: their fact terms are being asked of the model when it comes.
            kept = http.post("/v1/forget-targets", json={"name": "William Shakespeare"}).json()
            paused = http.post("/v1/forget-targets", json={"name": "Japan"}).json()
            assert http.put(f"/v1/forget-targets/{paused['id']}/activation", json={"active": False}).status_code == 200
            assert http.get(f"/v1/forget-targets/{kept['id']}").json()["status"] == "pending"
    finally:
        first.stop()
    # It stopped on SIGTERM (uvicorn exits with that signal once shut down), not by the SIGKILL that
    # follows 20 s of waiting: background work in flight is given up, not waited for.
    assert first.process.returncode in (0, -signal.SIGTERM), first.process.returncode

    db = sqlite3.connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM steering_vectors WHERE target_id = ?", (steered["id"],)).fetchone()[0] == 1
    with db:  # as if the stored vectors had been computed on a different model
        db.execute("UPDATE steering_vectors SET model_id = 'another-model'")
    db.close()

    second = start_server(tmp_path, same_store)
    try:
        with second.http(key) as http:
            listed = {t["id"]: t["active"] for t in http.get("/v1/forget-targets").json()["data"]}
            assert listed == {steered["id"]: True, kept["id"]: True, paused["id"]: False}
            assert http.get(f"/v1/forget-targets/{steered['id']}").json()["status"] == "pending"
            # The work the stop gave up is done now, not marked failed.
            for target in (steered, kept):
                assert second.settled(key, target["id"], timeout=180)["status"] == "ready", target["name"]
            assert _detect(http, "Who wrote Hamlet? I mean William Shakespeare.") == ["William Shakespeare"]
            assert _detect(http, "What is the capital of Japan?") == []
        db = sqlite3.connect(db_path)
        models = {m for (m,) in db.execute("SELECT model_id FROM steering_vectors WHERE target_id = ?", (steered["id"],))}
        db.close()
        assert len(models) == 2 and "another-model" in models
        acknowledged = _write_until_killed(second)
    finally:
        second.stop()
    assert len(acknowledged) >= 3

    third = start_server(tmp_path, same_store)
    try:
        with third.http(second.api_key) as http:
            listed = {t["id"]: t for t in http.get("/v1/forget-targets").json()["data"]}
            # Every write the client saw acknowledged survived; nothing half-written appeared.
            assert {i for i, _ in acknowledged} <= set(listed)
            assert len(listed) <= len(acknowledged) + 1
            for target_id, active in acknowledged:
                assert listed[target_id]["active"] == active or target_id == acknowledged[-1][0]
            for target_id, target in listed.items():
                fired = _detect(http, f"Tell me about {target['name']}.")
                assert (target["name"] in fired) == target["active"], target
        with third.http(key) as http:  # the first tenant's targets, through all three lifetimes
            assert {t["id"] for t in http.get("/v1/forget-targets").json()["data"]} == {steered["id"], kept["id"], paused["id"]}
    finally:
        third.stop()
