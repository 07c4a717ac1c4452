"""The detector: lexical aliases first, then semantic similarity, span by span."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

from .embeddings import Embedder, TargetIndex
from .lexical import AliasMatcher
from .normalize import normalize
from .types import Detection, Message, TargetSpec

_NEUTRAL_PATH = Path(__file__).parent / "data" / "neutral.txt"
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass
class DetectorConfig:
    threshold_floor: float = 0.55  # no target fires below this similarity, whatever calibration says
    neutral_quantile: float = 0.995
    margin: float = 0.05
    window_sentences: int = 2
    max_window_words: int = 64
    top_k: int = 16


def spans(messages: Sequence[Message], cfg: DetectorConfig) -> list[str]:
    """Sentence windows over every message, so a long wrapper cannot dilute a short mention."""
    out: list[str] = []
    for message in messages:
        sentences = [s.strip() for s in _SENTENCE.split(message.content) if s and s.strip()]
        pieces: list[str] = []
        for sentence in sentences:
            words = sentence.split()
            pieces.extend(" ".join(words[i:i + cfg.max_window_words]) for i in range(0, len(words), cfg.max_window_words))
        for i in range(len(pieces)):
            out.append(" ".join(pieces[i:i + cfg.window_sentences]))
            if i + cfg.window_sentences >= len(pieces):
                break
    return list(dict.fromkeys(out))


class Detector:
    def __init__(self, embedder: Embedder | None = None, config: DetectorConfig | None = None):
        self.embedder = embedder or Embedder()
        self.config = config or DetectorConfig()
        self.lexical = AliasMatcher()
        self.index = TargetIndex()
        self._owner: dict[str, str] = {}
        self._threshold: dict[str, float] = {}
        self._lock = threading.Lock()
        self._neutral = self.embedder.encode(_NEUTRAL_PATH.read_text().split("\n")[:-1] or [""])

    def _vectors(self, spec: TargetSpec) -> np.ndarray:
        texts = [spec.name, *spec.aliases[:8], *spec.examples]
        if spec.description:
            texts.append(spec.description)
        return self.embedder.encode(list(dict.fromkeys(texts)))

    def _calibrate(self, spec: TargetSpec, vectors: np.ndarray) -> float:
        cfg = self.config
        reference = self._neutral
        if spec.negatives:
            reference = np.concatenate([reference, self.embedder.encode(list(spec.negatives))])
        best = (reference @ vectors.T).max(axis=1)  # each neutral prompt's closest target vector
        return float(min(0.9, max(cfg.threshold_floor, np.quantile(best, cfg.neutral_quantile) + cfg.margin)))

    def add(self, spec: TargetSpec) -> float:
        vectors = self._vectors(spec)
        threshold = self._calibrate(spec, vectors)
        self.lexical.add(spec.id, [spec.name, *spec.aliases])
        self.index.add(spec.owner, spec.id, vectors)
        with self._lock:
            self._owner[spec.id] = spec.owner
            self._threshold[spec.id] = threshold
        return threshold

    def add_many(self, specs: Sequence[TargetSpec], progress: bool = False) -> None:
        from tqdm import tqdm

        for spec in tqdm(specs, desc="indexing forget targets", disable=not progress or not specs):
            vectors = self._vectors(spec)
            threshold = self._calibrate(spec, vectors)
            self.lexical.add(spec.id, [spec.name, *spec.aliases], rebuild=False)
            self.index.add(spec.owner, spec.id, vectors)
            with self._lock:
                self._owner[spec.id] = spec.owner
                self._threshold[spec.id] = threshold
        self.lexical.rebuild()

    def remove(self, target_id: str) -> None:
        self.lexical.remove(target_id)
        self.index.remove(target_id)
        with self._lock:
            self._owner.pop(target_id, None)
            self._threshold.pop(target_id, None)

    def threshold(self, target_id: str) -> float | None:
        return self._threshold.get(target_id)

    def detect(self, messages: Sequence[Message], owners: Sequence[str], active: Collection[str]) -> list[Detection]:
        owners = list(owners)
        if not active:
            return []

        # Cost follows the candidates found, not the number of active targets (10^5 per tenant).
        def eligible(target_id: str) -> float | None:
            if target_id not in active or self._owner.get(target_id) not in owners:
                return None
            return self._threshold.get(target_id)

        found: dict[str, Detection] = {}
        for message in messages:
            for hit in self.lexical.find_normalized(normalize(message.content)):
                threshold = eligible(hit.target_id)
                if threshold is not None:
                    found[hit.target_id] = Detection(hit.target_id, 1.0, "lexical", threshold)
        windows = spans(messages, self.config)
        if windows:
            scores = self.index.search(self.embedder.encode(windows), owners, self.config.top_k)
            for target_id, score in scores.items():
                threshold = eligible(target_id)
                if threshold is not None and target_id not in found and score >= threshold:
                    found[target_id] = Detection(target_id, score, "semantic", threshold)
        return sorted(found.values(), key=lambda d: -d.score)
