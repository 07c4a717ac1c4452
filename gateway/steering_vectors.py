"""Steering vectors for the served model: computed in the background, stored, served per request.

A target's vectors are computed when a tenant whose policy steers owns it (or, for a global
target, when the server's default policy steers), and otherwise the first time it fires for such
a tenant; until then its status is `pending` and requests get every other intervention. Vectors
are stored with the model's identity: serving another model recomputes them instead of reusing
directions that mean nothing in its residual stream.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

from steering import SteeringVectors, combine, compute_steering_vectors, model_identity

from .policy import ResponsePolicy
from .registry import Registry
from .store import TargetRecord

log = logging.getLogger("lethe.steering")


class SteeringVectorStore:
    def __init__(self, tokenizer, registry: Registry, policy_for_owner: Callable[[str], ResponsePolicy],
                 enabled: bool = True):
        self.tokenizer = tokenizer
        self.registry = registry
        self.policy_for_owner = policy_for_owner
        self.enabled = enabled  # false: the server steers nothing, so no target waits for vectors
        self.model = self.device = self.dtype = self.model_id = None  # known once the engine is up
        self._vectors: dict[str, SteeringVectors] = {}
        self._queued: set[str] = set()
        self._edits: dict[str, int] = {}  # target -> edit count, so a result computed before an edit is dropped
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="lethe-steering", daemon=True)

    def start(self, model) -> None:
        """Attaches the served model (a transformers module, or an engine's residual reader with
        `residuals`, `identity`, `device`, `dtype`), loads its stored vectors and works through what
        steering tenants need (targets written while the engine was loading included)."""
        if self.enabled:
            self.model = model
            if hasattr(model, "residuals"):
                self.device, self.dtype, self.model_id = model.device, model.dtype, model.identity
            else:
                param = next(model.parameters())
                self.device, self.dtype = param.device, param.dtype
                self.model_id = model_identity(model)
            stored = {target_id: SteeringVectors.from_bytes(blob)
                      for target_id, blob in self.registry.store.steering(self.model_id)}
            with self._lock:
                self._vectors.update(stored)
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
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def on_target_changed(self, target: TargetRecord, changed: bool = True) -> None:
        """A target was created, edited or its owner's policy changed: (re)compute when steering needs it."""
        if changed:
            with self._lock:
                self._vectors.pop(target.id, None)
                self._edits[target.id] = self._edits.get(target.id, 0) + 1
            self.registry.store.drop_steering(target.id)
        if self.enabled and self.policy_for_owner(target.owner).uses("steering"):
            self.request(target)
        elif target.id not in self._vectors and target.status == "pending":
            self.registry.set_status(target.id, "ready")  # nothing to wait for any more

    def request(self, target: TargetRecord) -> None:
        with self._lock:
            if target.id in self._vectors or target.id in self._queued:
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

    def _work(self) -> None:
        while True:
            target_id = self._queue.get()
            if target_id is None or self._stopping.is_set():
                self._queue.task_done()
                return
            edits = self._edits.get(target_id, 0)
            try:
                # Queued while the engine loaded, then found in the store at start: nothing to compute.
                vectors = None if target_id in self._vectors else self._compute(target_id)
            except Exception:
                log.exception("steering vectors for %s failed", target_id)
                self.registry.set_status(target_id, "failed")
                vectors = None
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
            elif vectors is None and target is not None and target_id in self._vectors:
                self.registry.set_status(target_id, "ready")
            self._queue.task_done()

    def _compute(self, target_id: str) -> SteeringVectors | None:
        target = self.registry.get_visible_unchecked(target_id)
        if target is None:  # deleted while queued
            return None
        # Runs beside the engine's thread: the gated hooks only act in the thread that armed them.
        return compute_steering_vectors(self.model, self.tokenizer, target.name, target.aliases, target.examples,
                                        identity=self.model_id)
