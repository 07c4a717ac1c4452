"""Immutable target indexes: what one detection reads, never changed while it reads it.

A `PreparedTarget` is everything detection needs about one target (vectors, calibrated threshold,
near misses, name words), computed once when the target is written. A `Layer` compiles a set of
prepared targets into an alias automaton and a FAISS index and is never modified afterwards, so
any number of threads search it while writers build the next one.

An `OwnerIndex` is one owner's targets (a tenant's, or the global ones) as a large `base` layer plus
a small `delta` layer and the set of base ids the delta supersedes or deletes. A write rebuilds only
the delta (bounded size: milliseconds), so write-to-live does not grow with the owner's 10^5
targets; a background merge folds the delta into a new base now and then. Every change returns a
new `OwnerIndex`; old ones stay valid for the requests still reading them.

A `DetectionView` is what one request sees: the owner indexes of its tenant and the global one and
the tenant's switched-off targets.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import faiss
import numpy as np

from .embeddings import DIM
from .lexical import AliasMatcher, LexicalHit
from .types import TargetSpec

# A delta past this many targets is folded into the base in the background: rebuilding the delta
# per write stays a few milliseconds, and the base is rebuilt rarely.
DELTA_LIMIT = 256
# Exact search below this many vectors, HNSW above (exact search gets slow, HNSW stays ~flat).
HNSW_ABOVE = 20_000
# Per layer: a window's search results, keyed by the asking tenant and the window's text
# (conversations repeat their earlier turns from request to request, and a layer never changes, so
# its results never go stale; keyed per tenant so that the global layers, shared by all tenants,
# cannot tell one tenant by its speed what another one sent).
_SEARCH_CACHE = 4096


@dataclass(frozen=True, eq=False)
class PreparedTarget:
    spec: TargetSpec
    vectors: np.ndarray  # [n, DIM] float16 (half the memory; scores need no more), unit norm
    threshold: float
    near: np.ndarray | None  # near-miss vectors (float16), or None
    words: frozenset[str]  # its name words
    # Name words plus the proper nouns of its description: "France" next to "Paris" is the
    # target's own context ("Paris, France"), not another sense of the name.
    own_context: frozenset[str]
    head: tuple[str, ...] = ()  # the distinctive word of a designated name ("Amazon" of "Amazon River")
    weak: frozenset[str] = frozenset()  # alias forms (of `head`) that always need confirmation
    described: bool = False  # its last vector is its description
    # One-word alias forms that are one word of a longer name ("Obama", "Potter", "Shakespeare's"):
    # other people share them, so alone they fire only with the target's context (see detector).
    partial: frozenset[str] = frozenset()
    senses: np.ndarray | None = None  # other things its one-word aliases name (float16), or None
    kinds: frozenset[str] = frozenset()  # what its description calls it ("planet"): see detector._asked_kinds
    own_neutral: tuple[int, ...] = ()  # the detector's neutral prompts that name it: see detector._own_neutral

    @property
    def id(self) -> str:
        return self.spec.id


class Layer:
    """An immutable, compiled set of prepared targets: alias automaton plus FAISS index."""

    def __init__(self, targets: Iterable[PreparedTarget], hnsw_above: int = HNSW_ABOVE, index: faiss.Index | None = None):
        """`index`, when given, was built earlier over these targets' vectors in this order (a
        benchmark loads a large one from disk instead of rebuilding it)."""
        self.targets: dict[str, PreparedTarget] = {t.id: t for t in targets}
        self.matcher = AliasMatcher()
        ids: list[str] = []
        for target in self.targets.values():
            self.matcher.add(target.id, [target.spec.name, *target.spec.aliases, *target.head], rebuild=False,
                             owner=target.spec.owner)
            ids.extend([target.id] * len(target.vectors))
        self.matcher.rebuild()
        self._row_ids = np.array(ids, dtype=object)
        self.index = index if index is not None else _build_index([t.vectors for t in self.targets.values()], hnsw_above)
        self._cache: OrderedDict[tuple[str, str], dict[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.targets)

    def search(self, windows: Sequence[str], vectors: np.ndarray, k: int, asker: str = "") -> list[dict[str, float]]:
        """For each window, the best similarity of each target among its k nearest vectors."""
        out: list[dict[str, float] | None] = [None] * len(windows)
        if self.index.ntotal == 0:
            return [{} for _ in windows]
        keys = [(asker, w) for w in windows]
        with self._lock:
            for i, key in enumerate(keys):
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    out[i] = hit
        missing = [i for i, o in enumerate(out) if o is None]
        if missing:
            scores, rows = self.index.search(vectors[missing], min(k, self.index.ntotal))
            fresh = []
            for score_row, id_row in zip(scores, rows):
                best: dict[str, float] = {}
                for score, row in zip(score_row.tolist(), id_row.tolist()):
                    if row >= 0:
                        target_id = self._row_ids[row]
                        if score > best.get(target_id, -1.0):
                            best[target_id] = score
                fresh.append(best)
            with self._lock:
                for i, best in zip(missing, fresh):
                    out[i] = best
                    self._cache[keys[i]] = best
                while len(self._cache) > _SEARCH_CACHE:
                    self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def memory_bytes(self) -> int:
        return int(faiss.serialize_index(self.index).nbytes) if self.index.ntotal else 0


def _build_index(blocks: list[np.ndarray], hnsw_above: int) -> faiss.Index:
    matrix = np.concatenate(blocks).astype(np.float32) if blocks else np.zeros((0, DIM), np.float32)
    if len(matrix) > hnsw_above:
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = 64
    else:
        index = faiss.IndexFlatIP(DIM)
    index.add(np.ascontiguousarray(matrix))
    return index


_EMPTY = Layer(())


@dataclass(frozen=True, eq=False)
class OwnerIndex:
    """One owner's targets: `base` minus `hidden`, plus `delta`. Immutable."""

    base: Layer = _EMPTY
    delta: Layer = _EMPTY
    hidden: frozenset[str] = frozenset()  # base ids superseded by the delta or deleted

    @classmethod
    def build(cls, targets: Iterable[PreparedTarget]) -> OwnerIndex:
        return cls(base=Layer(targets))

    def get(self, target_id: str) -> PreparedTarget | None:
        found = self.delta.targets.get(target_id)
        if found is None and target_id not in self.hidden:
            found = self.base.targets.get(target_id)
        return found

    def live(self) -> Iterator[PreparedTarget]:
        yield from (t for i, t in self.base.targets.items() if i not in self.hidden)
        yield from self.delta.targets.values()

    def __len__(self) -> int:
        return len(self.base) - len(self.hidden) + len(self.delta)

    def layers(self) -> tuple[tuple[Layer, frozenset[str]], ...]:
        """Each layer with the ids whose hits in it no longer count."""
        return (self.base, self.hidden), (self.delta, frozenset())

    def with_changes(self, upserts: Sequence[PreparedTarget] = (), removals: Iterable[str] = ()) -> OwnerIndex:
        """A new index with targets added or replaced and others removed; only the delta is rebuilt."""
        gone = set(removals) | {t.id for t in upserts}
        delta = [t for i, t in self.delta.targets.items() if i not in gone] + list(upserts)
        hidden = self.hidden | {i for i in gone if i in self.base.targets}
        return OwnerIndex(self.base, Layer(delta), frozenset(hidden))

    @property
    def needs_merge(self) -> bool:
        return len(self.delta) > DELTA_LIMIT or len(self.hidden) > max(DELTA_LIMIT, len(self.base) // 4)

    def merged(self) -> OwnerIndex:
        """Everything folded into one new base (slow at 10^5 targets: run it off the request path)."""
        return OwnerIndex.build(self.live())

    def rebased(self, onto: OwnerIndex) -> OwnerIndex:
        """`onto` (a merge of an earlier version of this index) brought up to this version."""
        upserts = [t for t in self.live() if onto.get(t.id) is not t]
        removals = [i for i in onto.base.targets if self.get(i) is None]
        return onto.with_changes(upserts, removals) if upserts or removals else onto

    def memory_bytes(self) -> int:
        return self.base.memory_bytes() + self.delta.memory_bytes()


EMPTY_INDEX = OwnerIndex()


@dataclass(frozen=True)
class DetectionView:
    """What one detection reads: owner indexes (a tenant's and the global one) and the targets
    switched off for the tenant; `only`, when given, limits detection to those ids."""

    indexes: tuple[OwnerIndex, ...]
    inactive: frozenset[str] = frozenset()
    only: frozenset[str] | None = field(default=None)
    asker: str = ""  # the tenant: what layers remember for one never answers another faster

    def eligible(self, target_id: str) -> PreparedTarget | None:
        if target_id in self.inactive or (self.only is not None and target_id not in self.only):
            return None
        for index in self.indexes:
            found = index.get(target_id)
            if found is not None:
                return found
        return None

    def layers(self) -> Iterator[tuple[Layer, frozenset[str]]]:
        for index in self.indexes:
            for layer, hidden in index.layers():
                if len(layer):
                    yield layer, hidden

    def lexical_hits(self, text: str) -> Iterator[LexicalHit]:
        for layer, hidden in self.layers():
            for hit in layer.matcher.find_normalized(text):
                if hit.target_id not in hidden:
                    yield hit

    @property
    def empty(self) -> bool:
        if self.only is not None:
            return not self.only
        return sum(len(i) for i in self.indexes) <= len(self.inactive)
