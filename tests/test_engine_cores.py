"""Only the engine thread computes on several cores (gateway/engines/cores.py).

A second thread that runs a multi-threaded torch op gets an OpenMP team of its own, and with more
OpenMP workers than cores libgomp parks the engine's workers after every parallel region (the
gateway's forward passes were 40 % slower than the bare engine's). The tests count the process's
threads: a torch op in any other thread must not add OpenMP workers, while the engine keeps its own.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import torch

from gateway.engines.cores import ENGINE_THREADS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(ENGINE_THREADS < 2, reason="one core: nothing to share")


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _threads_while(work) -> int:
    """The process's thread count while a new thread that has just run `work` is still alive."""
    done, release = threading.Event(), threading.Event()
    seen = []

    def body():
        work()
        done.set()
        release.wait()

    thread = threading.Thread(target=body)
    thread.start()
    done.wait()
    seen.append(_threads())
    release.set()
    thread.join()
    return seen[0]


@pytest.fixture(scope="module")
def engine():
    from gateway.app import build_engine
    from gateway.config import Settings
    from gateway.metrics import Metrics

    engine = build_engine(Settings.load(ROOT / "configs" / "default.yaml", max_batch_size=4), Metrics())
    engine.start()
    yield engine
    engine.shutdown()


def test_other_threads_compute_on_one_core(engine):
    before = _threads()
    during = _threads_while(lambda: torch.ones(1 << 20).add_(1))  # large enough for the parallel path
    assert during == before + 1, "a torch op outside the engine thread started OpenMP workers"


def test_the_engine_thread_keeps_its_cores(engine):
    seen = []
    engine_ready = threading.Event()

    def probe():
        seen.append(torch.get_num_threads())
        engine_ready.set()

    # Run the probe on the engine thread itself: between steps, as a forward pre-hook would.
    handle = engine.model.register_forward_pre_hook(lambda module, args: probe() if not seen else None)
    try:
        import asyncio

        from gateway.engines.base import GenerationRequest, SamplingParams

        async def one():
            ids = engine.render_chat([{"role": "user", "content": "Say hi."}])
            async for _ in engine.generate(GenerationRequest("cores", ids, SamplingParams(2, temperature=0.0))):
                pass

        asyncio.run(one())
    finally:
        handle.remove()
    assert engine_ready.is_set()
    assert seen[0] == ENGINE_THREADS
    assert torch.get_num_threads() == 1  # this (the main) thread: the process default


def test_work_between_steps_runs_on_the_engine_thread_and_its_failure_stays_its_own(engine):
    """Steering vectors' forward passes run as jobs between the engine's steps, with its cores;
    a job that raises hands the error to its caller and the engine serves on."""
    import asyncio

    from gateway.engines.base import GenerationRequest, SamplingParams

    seen = engine.between_steps(lambda: (threading.current_thread().name, torch.get_num_threads())).result(60)
    assert seen == ("lethe-engine", ENGINE_THREADS)

    def broken():
        raise ValueError("a job's own failure")

    with pytest.raises(ValueError, match="own failure"):
        engine.between_steps(broken).result(60)

    async def answer() -> str:
        ids = engine.render_chat([{"role": "user", "content": "What is the capital of France?"}])
        text = ""
        async for out in engine.generate(GenerationRequest("after-job", ids, SamplingParams(8, temperature=0.0))):
            text += out.text
        return text

    assert "Paris" in asyncio.run(answer())


def test_probe_questions_decode_at_most_probe_rows_at_once(engine):
    """A target's probe questions join the batch every live stream steps with: `rows` bounds how
    many do at once, so a burst of registrations cannot stretch a client's token gaps without end."""
    import asyncio

    from gateway.steering_vectors import EngineAsker

    batches: list[int] = []
    handle = engine.model.register_forward_pre_hook(
        lambda module, args, kwargs: batches.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        countries = ["France", "Germany", "Japan", "France", "Germany"]
        answers = EngineAsker(engine, loop, rows=2)([f"What is the capital of {c}?" for c in countries])
    finally:
        handle.remove()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert max(batches) == 2  # the engine's own limit is 4
    capitals = ["Paris", "Berlin", "Tokyo", "Paris", "Berlin"]
    assert [capital in answer for capital, answer in zip(capitals, answers)] == [True] * 5, answers  # each its own
