"""What must hold on every engine beyond the plain API: a triggered row's bans, untriggered rows
left alone in the same batch, and a start-up that refuses to serve when interventions cannot act."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from dataclasses import fields

import pytest
from live_server import ROOT, VLLM_ENV, free_port

HARRY = {"name": "Harry Potter", "description": "the boy wizard of J.K. Rowling's novels"}
ASK_NAME = "Who is Harry Potter? Begin your answer with his full name."
INNOCENT = ["What is the capital of Italy?", "Name three primary colours."]


def ask(server, key, question, max_tokens=24) -> str:
    reply = server.client(key).chat.completions.create(
        model="SmolLM2-135M-Instruct", messages=[{"role": "user", "content": question}], temperature=0,
        max_tokens=max_tokens)
    return reply.choices[0].message.content


def test_a_banned_row_never_writes_the_name_and_untriggered_rows_match_the_plain_engine(engine_server):
    plain = engine_server.tenant_with()
    banning = engine_server.tenant_with({"interventions": ["tokens"]}, [HARRY])  # bans alone, no instruction
    jobs = [(plain, ASK_NAME), (banning, ASK_NAME)] + [(plain, q) for q in INNOCENT] + [(banning, q) for q in INNOCENT]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:  # one shared batch
        answers = list(pool.map(lambda job: ask(engine_server, *job), jobs))
    assert "potter" in answers[0].lower(), answers[0]  # the plain engine knows the name
    assert "potter" not in answers[1].lower(), answers[1]  # the name and the surname are banned
    n = len(INNOCENT)
    assert answers[2:2 + n] == answers[2 + n:]  # rows that trigger nothing: byte-identical


def _serve(tmp_path, env: dict, timeout: float = 600) -> tuple[int, str]:
    """Runs `lethe serve` until it exits by itself; returns its exit code and log."""
    log = tmp_path / "serve.log"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "LETHE_DB_PATH": str(tmp_path / "lethe.db"), **env}
    with log.open("w") as out:
        process = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
            cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    return process.returncode, log.read_text()


def test_a_compiled_vllm_configuration_is_refused_unless_steering_is_off(tmp_path):
    code, log = _serve(tmp_path, {"LETHE_ENGINE": "vllm", "LETHE_ENFORCE_EAGER": "false"}, timeout=120)
    assert code != 0
    assert "refusing to start" in log and "enforce_eager" in log and "steering: false" in log


def test_the_self_check_refuses_to_serve_when_the_steering_hooks_do_not_fire(tmp_path):
    """The worker's hooks are disarmed (failpoint): the probe row answers like the plain one, so the
    server must stop instead of serving triggered rows unsteered."""
    code, log = _serve(tmp_path, {**VLLM_ENV, "LETHE_FAILPOINTS": "steering_hooks"})
    assert code != 0
    assert "refusing to serve" in log and "steering hooks do not fire" in log


def test_every_sampling_parameter_reaches_vllm_or_is_handled_by_the_gateway():
    from gateway.engines.base import SamplingParams
    from gateway.engines.vllm import IN_GATEWAY, PASSED, vllm_sampling

    unmapped = {f.name for f in fields(SamplingParams)} - set(PASSED) - IN_GATEWAY
    assert not unmapped, f"map these to vLLM in gateway/engines/vllm.py: {unmapped}"
    params = SamplingParams(max_tokens=7, temperature=0.5, top_p=0.9, seed=3, logprobs=True, top_logprobs=2)
    mapped = vllm_sampling(params, {"lethe_ban": ["x"]}, redacting=True)
    assert (mapped.max_tokens, mapped.temperature, mapped.top_p, mapped.seed) == (7, 0.5, 0.9, 3)
    assert mapped.logprobs > 2  # room for redacted candidates
    assert mapped.extra_args == {"lethe_ban": ["x"]}
