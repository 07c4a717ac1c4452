"""What a target needs from the served model, computed in the background: steering vectors and
fact terms. Stored, served per request.

A target's vectors are computed when a tenant whose policy steers owns it (or, for a global
target, when the server's default policy steers), and otherwise the first time it fires for such
a tenant; its fact terms (`steering.knowledge`: what the model answers about it, probed through the
served engine) when the owner's policy bans tokens or guards the answer. Until both are there its
status is `pending` and requests get every other intervention. Both are stored with the model's
identity: serving another model recomputes them instead of reusing directions that mean nothing in
its residual stream, or facts it may not know.

Both run through the engine: the vectors' forward passes as the engine's `residual_source()` reads
them (on its own thread between steps, or in vLLM's workers), the probe questions as greedy rows
batched with live traffic. Reading them on a thread of its own, as this did first, gave the
vectors one core (the engine holds the others) and made a target wait twice as long (README,
Benchmarks).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import uuid
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from steering import SteeringVectors, combine, compute_steering_vectors
from steering.knowledge import CONTROL_SUBJECTS, ControlVocabulary, control_vocabulary, fact_terms, probe_questions

from .engines.base import EngineOverloaded, GenerationRequest, SamplingParams
from .policy import ResponsePolicy
from .registry import Registry
from .store import TargetRecord

log = logging.getLogger("lethe.steering")


PROBE_TOKENS = 32  # enough for an answer's first specifics; the probes of one target decode as one batch


async def greedy_text(engine, prompt_ids: Sequence[int], max_tokens: int = PROBE_TOKENS, patient: bool = True,
                      enough: Callable[[str], bool] | None = None) -> str:
    """The served model's own greedy continuation of a prompt, with no plan (no bans, no steering):
    for Lethe's use only, never sent to a client. `patient`: wait for room when the engine is full
    (background work); otherwise EngineOverloaded is the caller's. `enough(text so far)`: stop (and
    free the row) as soon as it says the text answers what was asked."""
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    while True:
        try:
            outputs = engine.generate(GenerationRequest(f"probe-{uuid.uuid4().hex}", prompt_ids, params))
            break
        except EngineOverloaded:
            if not patient:
                raise
            await asyncio.sleep(1.0)  # background work waits for traffic, never displaces it
    text = ""
    try:
        async for out in outputs:
            text += out.text
            if enough is not None and enough(text):
                break
    finally:
        outputs.close()  # aborts the row if it was not read to its end
    return text


class EngineAsker:
    """`ask` for the store: greedy answers from the served engine (hf or vLLM alike), batched with
    live traffic on the gateway's event loop, for a caller in another thread. `close` gives up the
    questions still out: at shutdown the engine answers no more, and the store's thread must not
    wait for it (a server stopping would hang until it is killed)."""

    def __init__(self, engine, loop: asyncio.AbstractEventLoop, *, rows: int, timeout: float = 600.0):
        self.engine, self.loop, self.timeout = engine, loop, timeout
        self.rows = rows  # questions decoding at once (Settings.probe_rows): every live stream's step carries them
        self._out: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def _one(self, question: str, room: asyncio.Semaphore) -> str:
        async with room:
            prompt = await asyncio.to_thread(self.engine.render_chat, [{"role": "user", "content": question}])
            return await greedy_text(self.engine, prompt)

    async def _all(self, questions: list[str]) -> list[str]:
        room = asyncio.Semaphore(max(1, self.rows))
        return await asyncio.gather(*(self._one(q, room) for q in questions))

    def __call__(self, questions: list[str]) -> list[str]:
        future = asyncio.run_coroutine_threadsafe(self._all(questions), self.loop)
        with self._lock:
            self._out.add(future)
            if self._closed:
                future.cancel()
        try:
            return future.result(self.timeout)
        finally:
            with self._lock:
                self._out.discard(future)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for future in self._out:
                future.cancel()  # the waiting thread wakes now; the loop cancels the questions' rows


class SteeringVectorStore:
    def __init__(self, tokenizer, registry: Registry, policy_for_owner: Callable[[str], ResponsePolicy],
                 enabled: bool = True, cache_dir: Path | None = None):
        self.tokenizer = tokenizer
        self.registry = registry
        self.policy_for_owner = policy_for_owner
        self.enabled = enabled  # false: the server steers nothing, so no target waits for vectors
        self.model = self.device = self.dtype = self.model_id = None  # known once the engine is up
        self.ask: Callable[[list[str]], list[str]] | None = None  # questions -> the served model's answers
        self.cache_dir = cache_dir  # where the control subjects' answers are kept per model
        self._control: ControlVocabulary | None = None
        self._vectors: dict[str, SteeringVectors] = {}
        self._queued: set[str] = set()
        self._edits: dict[str, int] = {}  # target -> edit count, so a result computed before an edit is dropped
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="lethe-steering", daemon=True)

    def start(self, model, ask: Callable[[list[str]], list[str]] | None = None) -> None:
        """Attaches the served model, as its engine's residual reader (`residual_source()`: with
        `residuals`, `identity`, `device`, `dtype`), and `ask`, which answers questions through the
        served engine (greedy, blocking: called from this store's thread); loads the stored vectors
        and works through what tenants need (targets written while the engine was loading included)."""
        self.ask = ask
        self.device, self.dtype, self.model_id = model.device, model.dtype, model.identity
        if self.enabled:
            self.model = model
            stored = {target_id: SteeringVectors.from_bytes(blob)
                      for target_id, blob in self.registry.store.steering(self.model_id)}
            with self._lock:
                self._vectors.update(stored)
        if self.enabled or ask is not None:
            self._thread.start()
        for target in self.registry.all():
            self.on_target_changed(target, changed=False)
        log.info("steering: %s, %d targets with vectors for model %s", "on" if self.enabled else "off",
                 len(self._vectors), self.model_id)

    def shutdown(self) -> None:
        """Stops after the computation in progress; what is still queued is queued again at the next
        start (its status stays `pending` in the store)."""
        self._stopping.set()
        self._queue.put(None)
        if isinstance(self.ask, EngineAsker):
            self.ask.close()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def on_target_changed(self, target: TargetRecord, changed: bool = True) -> None:
        """A target was created, edited or its owner's policy changed: (re)compute when steering needs it."""
        if changed:
            with self._lock:
                self._vectors.pop(target.id, None)
                self._edits[target.id] = self._edits.get(target.id, 0) + 1
            self.registry.store.drop_steering(target.id)
        if self._needs_vectors(target) or self._needs_knowledge(target):
            self.request(target)
        elif target.status == "pending":
            self.registry.set_status(target.id, "ready")  # nothing to wait for any more

    def _needs_vectors(self, target: TargetRecord) -> bool:
        return (self.enabled and target.id not in self._vectors
                and self.policy_for_owner(target.owner).uses("steering"))

    def _needs_knowledge(self, target: TargetRecord) -> bool:
        # Before the engine is up (model_id unknown) every target still needs it: start() asks again.
        if target.knowledge is not None and target.knowledge_model == self.model_id:
            return False
        policy = self.policy_for_owner(target.owner)
        return (self.ask is not None or self.model_id is None) and (policy.uses("tokens") or policy.uses("guard"))

    def request(self, target: TargetRecord) -> None:
        with self._lock:
            if target.id in self._queued:
                return
            self._queued.add(target.id)
        self.registry.set_status(target.id, "pending")
        self._queue.put(target.id)

    def vectors_for(self, targets: list[TargetRecord]) -> dict:
        """The row plan's `{layer: vector}` for the fired targets that have vectors; queues the rest."""
        if not self.enabled:
            return {}
        ready = []
        for target in targets:
            vectors = self._vectors.get(target.id)
            if vectors is None:
                self.request(target)
            else:
                ready.append(vectors.plan(self.device, self.dtype))
        return combine(ready) if ready else {}

    def forget(self, target_id: str) -> None:
        with self._lock:
            self._vectors.pop(target_id, None)

    def wait_idle(self) -> None:
        """Blocks until every queued computation has finished (for tools and tests)."""
        self._queue.join()

    # Targets taken off the queue together: their probe questions (8 each) decode as one batch of
    # up to 32 rows, which on the embedded model costs about half of four batches of 8.
    BATCH = 4

    def _next_batch(self) -> list[str] | None:
        """The next queued target and those queued behind it (up to BATCH); None once stopping."""
        batch = [self._queue.get()]
        while len(batch) < self.BATCH and batch[-1] is not None:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if batch[-1] is None or self._stopping.is_set():
            self._give_up(batch)
            return None
        return batch

    def _give_up(self, batch: list) -> None:
        """At shutdown: what was taken stays `pending` in the store, queued again at the next start."""
        for _ in batch:
            self._queue.task_done()

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            edits = {target_id: self._edits.get(target_id, 0) for target_id in batch}
            # Queued while the engine loaded, then found in the store at start: nothing to compute.
            targets = [t for t in map(self.registry.get_visible_unchecked, batch) if t is not None]
            vectors: dict[str, SteeringVectors] = {}
            failed: set[str] = set()
            for target in targets:
                try:
                    if self._needs_vectors(target):
                        started = time.monotonic()
                        vectors[target.id] = self._compute(target)
                        log.info("steering vectors for %s in %.1f s", target.id, time.monotonic() - started)
                except Exception:
                    if self._stopping.is_set():
                        return self._give_up(batch)
                    log.exception("steering vectors for %s failed", target.id)
                    failed.add(target.id)
            learning = [t for t in targets if t.id not in failed and self._needs_knowledge(t)] if self.ask else []
            try:
                if learning:
                    started = time.monotonic()
                    self._learn(learning)
                    log.info("fact terms for %d targets in %.1f s", len(learning), time.monotonic() - started)
            except Exception:  # a question given up at shutdown too (concurrent.futures.CancelledError)
                if self._stopping.is_set():
                    return self._give_up(batch)
                log.exception("fact terms for %s failed", ", ".join(t.id for t in learning))
                failed |= {t.id for t in learning}
            for target_id in batch:
                self._settle(target_id, None if target_id in failed else vectors.get(target_id), edits[target_id],
                             target_id in failed)
                self._queue.task_done()

    def _settle(self, target_id: str, vectors: SteeringVectors | None, edits: int, failed: bool) -> None:
        """Keeps what was computed for a target and sets its status, unless it was edited meanwhile."""
        if failed:
            self.registry.set_status(target_id, "failed")
        with self._lock:
            self._queued.discard(target_id)
            stale = self._edits.get(target_id, 0) != edits
            if vectors is not None and not stale:
                self._vectors[target_id] = vectors
        target = self.registry.get_visible_unchecked(target_id)
        if stale and target is not None:
            self.request(target)  # edited while computing: compute again from the new text
        elif vectors is not None and self.registry.store.put_steering(target_id, self.model_id, vectors.to_bytes()):
            self.registry.set_status(target_id, "ready", persist=False)
        elif (vectors is None and target is not None and target.status != "failed"
              and not self._needs_vectors(target) and not self._needs_knowledge(target)):
            self.registry.set_status(target_id, "ready")

    def _compute(self, target: TargetRecord) -> SteeringVectors:
        # The forward passes run on the engine's thread between its steps (its `residual_source`).
        return compute_steering_vectors(self.model, self.tokenizer, target.name, target.aliases, target.examples,
                                        identity=self.model_id)

    def _learn(self, targets: list[TargetRecord]) -> None:
        """Asks the served model about the targets, their questions in one batch, and keeps each
        one's fact terms (steering.knowledge)."""
        control = self._control_vocabulary()
        questions = {t.id: probe_questions(t.name) for t in targets}
        answers = self._ask_each(questions)
        for target in targets:
            terms = fact_terms(answers[target.id], questions[target.id], [target.name, *target.aliases], control)
            self.registry.set_knowledge(target, self.model_id, terms)

    def _ask_each(self, questions: dict[str, list[str]]) -> dict[str, list[str]]:
        """Every subject's answers to its questions, all asked as one batch."""
        answers = iter(self.ask([q for qs in questions.values() for q in qs]))
        return {subject: [next(answers) for _ in qs] for subject, qs in questions.items()}

    def _control_vocabulary(self) -> ControlVocabulary:
        """What the model says about unrelated subjects: computed once per model, kept in the cache dir."""
        if self._control is not None:
            return self._control
        path = self.cache_dir / "knowledge" / f"{self.model_id}.json" if self.cache_dir else None
        if path is not None and path.exists():
            try:
                self._control = ControlVocabulary.from_json(json.loads(path.read_text()))
                return self._control
            except (ValueError, KeyError):
                log.warning("ignoring an unreadable control vocabulary at %s", path)
        self._control = control_vocabulary(self._ask_each({s: probe_questions(s) for s in CONTROL_SUBJECTS}))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(self._control.to_json()))
            tmp.replace(path)  # atomic: servers sharing the cache never read half a file
        return self._control
