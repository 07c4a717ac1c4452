"""The engines' start-up: loading, and refusing to serve when interventions cannot act. (Bans, guard
and steering on both engines: test_output_filters.py, test_steering_api.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields

from live_server import ROOT, VLLM_ENV, free_port



def test_healthz_says_loading_until_the_vllm_engine_is_up_and_checked(vllm_server):
    assert vllm_server.health_seen[0] == (503, "loading")
    assert vllm_server.health_seen[-1] == (200, "ok")
    log = vllm_server.log_path.read_text()
    assert "vLLM ready in" in log and "self-check" in log


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
    from gateway.engines.base import SamplingParams, StructuredOutput
    from gateway.engines.vllm import IN_GATEWAY, PASSED, vllm_sampling

    unmapped = {f.name for f in fields(SamplingParams)} - set(PASSED) - IN_GATEWAY
    assert not unmapped, f"map these to vLLM in gateway/engines/vllm.py: {unmapped}"
    params = SamplingParams(max_tokens=7, temperature=0.5, top_p=0.9, seed=3, logprobs=True, top_logprobs=2,
                            top_k=5, repetition_penalty=1.2, logit_bias=((11, -5.0),),
                            structured=StructuredOutput(json='{"type": "object"}'))
    mapped = vllm_sampling(params, {"lethe_ban": ["x"]}, redacting=True)
    assert (mapped.max_tokens, mapped.temperature, mapped.top_p, mapped.seed) == (7, 0.5, 0.9, 3)
    assert (mapped.top_k, mapped.repetition_penalty, mapped.logit_bias) == (5, 1.2, {11: -5.0})
    assert mapped.structured_outputs.json == '{"type": "object"}' 
    assert mapped.logprobs > 2  # room for redacted candidates
    assert mapped.extra_args == {"lethe_ban": ["x"]}
