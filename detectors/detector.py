"""The detector: lexical aliases first, then semantic similarity, span by span.

Three kinds of evidence, from strongest to weakest:

* A multi-word alias ("Harry Potter", "harrypotter", "Hary Poter") fires at once.
* A one-word alias ("Potter", "Paris", "Mars") fires at once too, unless its context says it names
  something else: a capitalised word right beside it that is not a title or the start of a
  sentence ("Paris Hilton", "Michelle Obama", "Bruno Mars", "Paris, Texas") or an article before
  it ("a potter's wheel", "a Mars bar"). Then the sentence around it must confirm: be as close to
  the target as a semantic hit must be, and clearly closer to it than to the target's near misses.
* A sentence window with no alias fires when it is close to one of the target's prompts (above the
  target's calibrated threshold) and closer to it than to any neutral prompt by a margin; when the
  window shares a name word with the target ("Who is Harry Styles?"), it must also beat the target's
  near misses by a margin.

A capitalised neighbour is not another sense when it is a title ("Madame Curie") or close in meaning
to the target itself ("Microsoft Corporation", "Google Inc"). The distinctive word of a name made of
it and designators ("Amazon" of "Amazon River") is a one-word alias that always needs that
confirmation: "How long is the Amazon?" fires, "Is Amazon the company profitable?" does not.

Work per call is bounded (characters and sentence windows): past the bound `DetectionTooLarge` is
raised, for the caller to refuse the request rather than serve it unchecked.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Sequence

import numpy as np

from .aliases import head_words, name_words, near_misses, proper_nouns
from .embeddings import Embedder, TargetIndex
from .lexical import AliasMatcher, LexicalHit
from .normalize import normalize, normalize_with_offsets
from .types import Detection, DetectionTooLarge, Message, TargetSpec

_NEUTRAL_PATH = Path(__file__).parent / "data" / "neutral.txt"
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_TITLES = frozenset("""mr mrs ms miss dr doctor sir dame lord lady saint st president senator governor general captain
king queen prince princess pope uncle aunt professor prof planet mount city madame madam mme mademoiselle mlle
monsieur mister herr frau senor senora senorita signor signora don dona sheikh emperor empress tsar czar duke
duchess count countess baron baroness chancellor minister premier reverend rev father sister bishop cardinal
rabbi imam sultan judge justice mayor admiral colonel major lieutenant sergeant chief""".split())
# A capitalised neighbour at least this close (cosine) to the target's own texts names part of it
# ("Microsoft Corporation", "Google Inc"); measured: such words 0.30-0.59, other entities' words <= 0.24.
_RELATED_NEIGHBOUR = 0.3
_ARTICLES = frozenset({"a", "an"})


@dataclass
class DetectorConfig:
    threshold_floor: float = 0.5  # no target fires below this similarity, whatever calibration says
    neutral_quantile: float = 0.99  # of the neutral prompts' similarity to the target: the threshold
    margin: float = 0.0
    neutral_margin: float = 0.07  # a semantic hit must beat the closest neutral prompt by this
    near_miss_margin: float = 0.1  # ... and, sharing a name word, the target's closest near miss by this
    window_sentences: int = 2  # windows of 1..this many sentences
    max_window_words: int = 64
    top_k: int = 16
    # Work bounds per detection (the whole conversation): past them DetectionTooLarge. A context of
    # a few thousand tokens is far below both; they stop text that could never be served (or a
    # /detect call) from buying seconds of CPU.
    max_chars: int = 64_000
    max_windows: int = 2_048


def spans(messages: Sequence[Message], cfg: DetectorConfig) -> list[str]:
    """Sentence windows over every message, so a long wrapper cannot dilute a short mention."""
    out: list[str] = []
    for message in messages:
        sentences = [s.strip() for s in _SENTENCE.split(message.content) if s and s.strip()]
        pieces: list[str] = []
        for sentence in sentences:
            words = sentence.split()
            pieces.extend(" ".join(words[i:i + cfg.max_window_words]) for i in range(0, len(words), cfg.max_window_words))
        for size in range(1, max(1, cfg.window_sentences) + 1):
            for i in range(max(1, len(pieces) - size + 1)):
                out.append(" ".join(pieces[i:i + size]))
    return list(dict.fromkeys(w for w in out if w))


def _other_sense(raw: str, offsets: list[int], text: str, hit: LexicalHit, own: Collection[str],
                 related: Callable[[str], bool] = lambda word: False) -> str | None:
    """The word pair ("bruno mars", "a mars") that says a one-word alias names something else, if any."""
    before = text[:hit.start].split()
    after = text[hit.end:].split()
    word = text[hit.start:hit.end]
    if before and before[-1] in _ARTICLES:
        return f"{before[-1]} {word}"
    raw_start = offsets[hit.start]
    raw_end = offsets[hit.end - 1] + 1

    def capital_neighbour(word: str, raw_pos: int, gap: str) -> bool:
        if word in own or word in _TITLES or not raw[raw_pos:raw_pos + 1].isupper():
            return False
        return gap.strip() in ("", ",", "-") and not related(word)

    if before:
        pos = offsets[hit.start - 1 - len(before[-1])]
        head = raw[:pos].rstrip()
        sentence_start = not head or head[-1] in ".!?:;\"'(\n"
        if not sentence_start and capital_neighbour(before[-1], pos, raw[pos + 1:raw_start].lstrip("".join(c for c in raw[pos:raw_start] if c.isalnum()))):
            return f"{before[-1]} {word}"
    if after:
        pos = offsets[hit.end + 1]
        gap = raw[raw_end:pos]
        if capital_neighbour(after[0], pos, gap.replace("'s", "").replace("'", "")):
            return f"{word} {after[0]}"
    return None


def _word_pairs(text: str, hit: LexicalHit) -> set[str]:
    word = text[hit.start:hit.end]
    before, after = text[:hit.start].split()[-1:], text[hit.end:].split()[:1]
    return {f"{w} {word}" for w in before} | {f"{word} {w}" for w in after}


class Detector:
    def __init__(self, embedder: Embedder | None = None, config: DetectorConfig | None = None):
        self.embedder = embedder or Embedder()
        self.config = config or DetectorConfig()
        self.lexical = AliasMatcher()
        self.index = TargetIndex()
        self._owner: dict[str, str] = {}
        self._threshold: dict[str, float] = {}
        self._near: dict[str, np.ndarray] = {}  # target id -> near-miss vectors (float16)
        self._words: dict[str, frozenset[str]] = {}  # target id -> its name words
        # target id -> name words plus the proper nouns of its description: "France" next to
        # "Paris" is the target's own context ("Paris, France"), not another sense of the name.
        self._own_context: dict[str, frozenset[str]] = {}
        self._weak: dict[str, frozenset[str]] = {}  # target id -> alias forms that always need confirmation
        self._described: set[str] = set()  # targets whose last vector is their description
        self._lock = threading.Lock()
        neutral = [line.strip() for line in _NEUTRAL_PATH.read_text().splitlines() if line.strip()]
        self._neutral = self.embedder.encode(neutral or [""])

    @staticmethod
    def _texts(spec: TargetSpec) -> list[str]:
        return list(dict.fromkeys([spec.name, *spec.aliases[:8], *spec.examples, *([spec.description] if spec.description else [])]))

    def _vectors(self, spec: TargetSpec) -> np.ndarray:
        return self.embedder.encode(self._texts(spec), scope=spec.owner)

    def _calibrate(self, spec: TargetSpec, vectors: np.ndarray) -> float:
        cfg = self.config
        reference = self._neutral
        if spec.negatives:
            reference = np.concatenate([reference, self.embedder.encode(list(spec.negatives), scope=spec.owner)])
        best = (reference @ vectors.T).max(axis=1)  # each neutral prompt's closest target vector
        return float(min(0.9, max(cfg.threshold_floor, np.quantile(best, cfg.neutral_quantile) + cfg.margin)))

    def _prepare(self, spec: TargetSpec) -> tuple[np.ndarray, float, np.ndarray | None]:
        vectors = self._vectors(spec)
        near = near_misses(spec.name)
        negatives = list(spec.negatives)
        near_vectors = self.embedder.encode([*near, *negatives], scope=spec.owner) if near or negatives else None
        return vectors, self._calibrate(spec, vectors), near_vectors

    def _register(self, spec: TargetSpec, vectors: np.ndarray, threshold: float, near: np.ndarray | None,
                  rebuild: bool) -> None:
        weak = head_words(spec.name, spec.aliases)
        self.lexical.add(spec.id, [spec.name, *spec.aliases, *weak], rebuild=rebuild, owner=spec.owner)
        self.index.add(spec.owner, spec.id, vectors)
        with self._lock:
            self._owner[spec.id] = spec.owner
            self._threshold[spec.id] = threshold
            self._words[spec.id] = frozenset(name_words(spec.name, spec.aliases))
            self._own_context[spec.id] = self._words[spec.id] | proper_nouns(spec.description)
            self._weak[spec.id] = frozenset(f for w in weak for f in AliasMatcher.forms(w))
            if spec.description and self._texts(spec)[-1] == spec.description:
                self._described.add(spec.id)
            else:
                self._described.discard(spec.id)
            if near is not None:
                self._near[spec.id] = near.astype(np.float16)
            else:
                self._near.pop(spec.id, None)

    def add(self, spec: TargetSpec) -> float:
        vectors, threshold, near = self._prepare(spec)
        self._register(spec, vectors, threshold, near, rebuild=True)
        return threshold

    def add_many(self, specs: Sequence[TargetSpec], progress: bool = False) -> None:
        from tqdm import tqdm

        for spec in tqdm(specs, desc="indexing forget targets", disable=not progress or not specs):
            vectors, threshold, near = self._prepare(spec)
            self._register(spec, vectors, threshold, near, rebuild=False)
        self.lexical.rebuild()

    def remove(self, target_id: str) -> None:
        self.lexical.remove(target_id)
        self.index.remove(target_id)
        with self._lock:
            self._owner.pop(target_id, None)
            self._threshold.pop(target_id, None)
            self._near.pop(target_id, None)
            self._words.pop(target_id, None)
            self._own_context.pop(target_id, None)
            self._weak.pop(target_id, None)
            self._described.discard(target_id)

    def threshold(self, target_id: str) -> float | None:
        return self._threshold.get(target_id)

    def _confirmed(self, target_id: str, score: float, window_vec: np.ndarray, window: str, neutral: float,
                   threshold: float, near_miss: bool, near_margin: float | None = None) -> bool:
        """Whether a window's similarity to a target holds up against neutral prompts and near misses."""
        cfg = self.config
        if score < threshold or score - neutral < cfg.neutral_margin:
            return False
        if not near_miss:
            words = self._words.get(target_id)
            near_miss = bool(words) and any(w in words or w[:-1] in words for w in normalize(window).split())
        if near_miss:
            near = self._near.get(target_id)
            margin = cfg.near_miss_margin if near_margin is None else near_margin
            if near is not None and score - float((near.astype(np.float32) @ window_vec).max()) < margin:
                return False
        return True

    def _related(self, target_id: str, scope: str) -> Callable[[str], bool]:
        """Whether a word is close in meaning to the target's description (its last vector). Not to
        its name: "Hilton" is as close to "Paris" as "Corporation" is to "Microsoft"."""
        def related(word: str) -> bool:
            vectors = self.index.target_vectors(self._owner[target_id], target_id)
            if vectors is None or target_id not in self._described:
                return False
            return float(vectors[-1] @ self.embedder.encode([word], scope=scope)[0]) >= _RELATED_NEIGHBOUR

        return related

    def check_budget(self, messages: Sequence[Message]) -> None:
        chars = sum(len(m.content) for m in messages)
        if chars > self.config.max_chars:
            raise DetectionTooLarge(f"the conversation has {chars} characters; at most {self.config.max_chars} can be checked")

    def detect(self, messages: Sequence[Message], owners: Sequence[str], active: Collection[str]) -> list[Detection]:
        """Which of `active` (owned by one of `owners`) the conversation touches. The first owner is
        the one asking: caches that could tell one owner about another's texts are kept per asker."""
        owners = list(owners)
        if not active:
            return []
        self.check_budget(messages)
        scope = owners[0] if owners else ""

        # Cost follows the candidates found, not the number of active targets (10^5 per tenant).
        def eligible(target_id: str) -> float | None:
            if target_id not in active or self._owner.get(target_id) not in owners:
                return None
            return self._threshold.get(target_id)

        found: dict[str, Detection] = {}
        to_confirm: dict[str, list[str]] = {}  # target id -> normalized words of its doubtful one-word hits
        # A name met in another sense keeps it for the rest of the conversation: "Who is Bruno
        # Mars?" then an answer opening "Bruno Mars is…", where the capital proves nothing.
        other_senses: set[str] = set()
        sensed: set[str] = set()  # targets with a hit that reads as another sense (not just a weak head word)
        for message in messages:
            text, offsets = normalize_with_offsets(message.content)
            for hit in self.lexical.find_normalized(text, owners=owners):
                threshold = eligible(hit.target_id)
                if threshold is None or hit.target_id in found:
                    continue
                sense = None if hit.multiword else (
                    _other_sense(message.content, offsets, text, hit, self._own_context.get(hit.target_id, frozenset()),
                                 self._related(hit.target_id, scope))
                    or next(iter(_word_pairs(text, hit) & other_senses), None))
                if sense is None and hit.alias not in self._weak.get(hit.target_id, ()):
                    found[hit.target_id] = Detection(hit.target_id, 1.0, "lexical", threshold)
                    to_confirm.pop(hit.target_id, None)
                else:
                    if sense is not None:
                        other_senses.add(sense)
                        sensed.add(hit.target_id)
                    to_confirm.setdefault(hit.target_id, []).append(text[hit.start:hit.end])
        windows = spans(messages, self.config)
        if not windows:
            return sorted(found.values(), key=lambda d: -d.score)
        if len(windows) > self.config.max_windows:
            raise DetectionTooLarge(f"the conversation has {len(windows)} sentence windows; at most "
                                    f"{self.config.max_windows} can be checked")
        vectors = self.embedder.encode(windows, scope=scope)
        per_window = self.index.search_each(vectors, owners, self.config.top_k)
        neutral_cache: dict[int, float] = {}

        def neutral(i: int) -> float:  # only for windows with a candidate: most requests have none
            if i not in neutral_cache:
                neutral_cache[i] = float(np.einsum("ij,j->i", self._neutral, vectors[i]).max())
            return neutral_cache[i]

        norm_windows: dict[int, str] = {}

        # Doubtful one-word hits: the windows that contain the word must confirm the target.
        for target_id, keys in to_confirm.items():
            threshold = self._threshold[target_id]
            target_vecs = self.index.target_vectors(self._owner[target_id], target_id)
            if target_vecs is None:
                continue
            for i, window in enumerate(windows):
                padded = norm_windows.setdefault(i, f" {normalize(window)} ")
                if not any(f" {key} " in padded for key in keys):
                    continue
                score = float((target_vecs @ vectors[i]).max())
                # A head word alone ("the Amazon") need only be closer to the target than to its other senses.
                near_margin = None if target_id in sensed else 0.0
                if self._confirmed(target_id, score, vectors[i], window, neutral(i), threshold, True, near_margin):
                    found[target_id] = Detection(target_id, score, "lexical", threshold)
                    break

        best: dict[str, Detection] = {}
        for i, scores in enumerate(per_window):
            for target_id, score in scores.items():
                threshold = eligible(target_id)
                if threshold is None or target_id in found or score < threshold:
                    continue
                if target_id in best and best[target_id].score >= score:
                    continue
                if self._confirmed(target_id, score, vectors[i], windows[i], neutral(i), threshold,
                                   target_id in to_confirm):
                    best[target_id] = Detection(target_id, score, "semantic", threshold)
        found.update(best)
        return sorted(found.values(), key=lambda d: -d.score)
