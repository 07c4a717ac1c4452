"""Start-up proof that the interventions act on the engine as configured.

A configuration can look right and still leave triggered rows unprotected: under torch.compile
or CUDA graphs Python hooks are skipped without a word, and a model runner with another
logits-processor interface ignores the ban processor. So before the gateway reports ready it runs
greedy probes through the real engine: a plain row, a row banning a word the plain row wrote,
and (when steering is on) a row steered hard at a middle layer. The banned row must avoid the word
and the steered row must change; otherwise the server refuses to start.
"""

from __future__ import annotations

import re
import uuid

import torch

from filters import compile_banned

from .engines.base import GenerationRequest, RowPlan, SamplingParams

PROBE = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
MAX_TOKENS = 8


class SelfCheckFailed(RuntimeError):
    pass


def refusal(settings) -> str | None:
    """A configuration known to leave steering unapplied, refused before anything loads."""
    if settings.engine == "vllm" and not settings.enforce_eager and settings.steering:
        return ("engine: vllm with enforce_eager: false runs the model compiled (torch.compile / CUDA graphs), "
                "where Lethe's steering hooks are silently skipped, so triggered rows would go unsteered. "
                "Set enforce_eager: true, or disable steering server-wide with steering: false "
                "(every other intervention stays on).")
    return None


async def _run(engine, prompt: list[int], plan: RowPlan | None) -> str:
    request = GenerationRequest(f"selfcheck-{uuid.uuid4().hex}", prompt,
                                SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0), plan)
    text = ""
    async for out in engine.generate(request):
        text += out.text
    return text


def _probe_vector(hidden_size: int) -> torch.Tensor:
    # Far larger than any residual stream: a row this is added to cannot keep its answer.
    generator = torch.Generator().manual_seed(0)
    vector = torch.randn(hidden_size, generator=generator)
    return vector / vector.norm() * 1e4


async def self_check(engine, steering: bool) -> dict:
    """Raises SelfCheckFailed unless bans (and, when on, steering) change the probe rows."""
    prompt = engine.render_chat(PROBE)
    plain = await _run(engine, prompt, None)
    words = re.findall(r"[A-Za-z]{3,}", plain)
    if not words:
        raise SelfCheckFailed(f"the probe answer {plain!r} has no word to ban")
    word = max(words, key=len)
    plans = {"banned": RowPlan(banned=compile_banned(engine.tokenizer, [word]))}
    if steering:
        plans["steered"] = RowPlan(steering={engine.num_layers // 2: _probe_vector(engine.hidden_size)})
    # One probe at a time: a server configured with a tiny queue must still be able to check itself.
    result = {name: await _run(engine, prompt, plan) for name, plan in plans.items()}
    if re.search(rf"\b{re.escape(word)}", result["banned"], re.IGNORECASE) or result["banned"] == plain:
        raise SelfCheckFailed(f"token bans do not apply on this engine: banning {word!r} still gave "
                              f"{result['banned']!r}")
    if steering and result["steered"] == plain:
        raise SelfCheckFailed("steering hooks do not fire on this engine (a compiled model or an unsupported "
                              "model runner?): the steered probe row answered exactly like the plain one. "
                              "Run eagerly (enforce_eager: true) or set steering: false.")
    return {"plain": plain, **result}
