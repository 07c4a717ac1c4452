"""The detector: lexical aliases first, then semantic similarity, span by span.

Three kinds of evidence, from strongest to weakest:

* A multi-word alias ("Harry Potter", "harrypotter", "Hary Poter") fires at once.
* A one-word alias ("Paris", "Mars") fires too, unless its context says it names something else:
  a capitalised word right beside it that is not a title or the start of a sentence ("Paris
  Hilton", "Michelle Obama", "Bruno Mars", "Paris, Texas"), a proper name built on it with "of"
  ("the Treaty of Paris", "Paris of Troy"), an article before it ("a potter's wheel", "a Mars
  bar"), the name written plainly in lower case in a text that uses capitals (the everyday word:
  "a scratch that mars the finish"), or every sentence holding it being closer to another sense
  of the word (a figure of myth, a treaty, a material, a company, a brand, a song: "Who was Mars
  in Roman mythology?") than to the target. Then the sentence around it must confirm: be as close
  to the target as a semantic hit must be, and clearly closer to it than to the target's near
  misses and other senses. Senses of the target's own kind (a company, for Microsoft) never count;
  nor, in an answer, when its question asked for the target's kind of thing ("What planet ...?"
  answered "... the Roman god of war, Mars").
* A one-word alias that is only part of a longer name (a surname: "Obama", "Potter") is shared by
  other people: it fires at once only beside another word of the target's own (the rest of its
  name, a proper noun of its description); alone, its sentence must be as close to the target as
  a semantic hit must be.
* A sentence window with no alias fires when it is close to one of the target's prompts (above the
  target's calibrated threshold) and closer to it than to any neutral prompt by a margin; when the
  window shares a name word with the target ("Who is Harry Styles?"), it must also beat the target's
  near misses by a margin.

A capitalised neighbour is not another sense when it is a title ("Madame Curie"), a place's own
state or era ("the State of Japan", "Renaissance Paris") or close in meaning to the target itself
("Microsoft Corporation", "Google Inc"). The distinctive word of a name made of
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

from .aliases import SENSE_KINDS, STOP_WORDS, head_words, name_words, near_misses, other_senses, partial_forms, proper_nouns, without_name
from .embeddings import Embedder
from .index import EMPTY_INDEX, DetectionView, OwnerIndex, PreparedTarget
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
# A sense kind at least this close (cosine) to the target's description, name left out, is the
# target's own kind (a company for "Microsoft", a god for "Zeus"): it cannot veto the target.
# Measured: own kinds 0.39-0.63, other kinds <= 0.29.
_OWN_KIND = 0.35
# A capitalised neighbour at least this close (cosine) to the target's own texts names part of it
# ("Microsoft Corporation", "Google Inc"); measured: such words 0.30-0.59, other entities' words <= 0.24.
_RELATED_NEIGHBOUR = 0.3
_ARTICLES = frozenset({"a", "an"})
# Words that name a place's own state or era, not another thing: "the State of Japan", "the
# Republic of France" (before "of"); "Renaissance Paris", "Imperial Japan" (right before the name).
_OWN_OF = frozenset("""state republic kingdom empire government nation commonwealth federation principality duchy
dominion province prefecture county region territory island islands isle metropolis municipality""".split())
_ERAS = frozenset("""ancient medieval mediaeval renaissance baroque modern imperial feudal colonial contemporary
prewar postwar wartime occupied liberated revolutionary downtown""".split())


@dataclass
class DetectorConfig:
    threshold_floor: float = 0.5  # no target fires below this similarity, whatever calibration says
    neutral_quantile: float = 0.99  # of the neutral prompts' similarity to the target: the threshold
    margin: float = 0.0
    neutral_margin: float = 0.07  # a semantic hit must beat the closest neutral prompt by this
    near_miss_margin: float = 0.1  # ... and, sharing a name word, the target's closest near miss by this
    # A one-word alias whose every sentence is closer by this to another sense of the word ("plaster
    # of Paris", "Mars, the Roman god") than to the target needs confirmation like a doubtful one.
    sense_margin: float = 0.05
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


def _answered(question: str, answer: str, at: int, words: int) -> str:
    """The answer's sentence holding position `at`, after the end of the question it answers, in
    at most `words` words (half each)."""
    start = max((m.end() for m in _SENTENCE.finditer(answer, 0, at)), default=0)
    end = next((m.start() for m in _SENTENCE.finditer(answer, at)), len(answer))
    half = words // 2
    return " ".join([*question.split()[-half:], *answer[start:end].split()[:half]])


def _other_sense(raw: str, offsets: list[int], text: str, hit: LexicalHit, own: Collection[str],
                 related: Callable[[str], bool] = lambda word: False, cased: bool = False) -> str | None:
    """The word pair ("bruno mars", "a mars", "treaty of paris") that says a one-word alias names
    something else, if any. `cased`: the target's name is written with a capital."""
    before = text[:hit.start].split()
    after = text[hit.end:].split()
    word = text[hit.start:hit.end]
    if before and before[-1] in _ARTICLES:
        return f"{before[-1]} {word}"
    raw_start = offsets[hit.start]
    raw_end = offsets[hit.end - 1] + 1
    # A capitalised name written in lower case, plainly (not spelled out or disguised), in a text
    # that uses capitals: the everyday word ("a scratch that mars the finish", "potter's clay").
    if cased and raw[raw_start:raw_end].replace("'", "") == word and any(c.isupper() for c in raw):
        return word

    def capital_neighbour(word: str, raw_pos: int, gap: str, joins=("", ",", "-"), titles=_TITLES) -> bool:
        # A title before the name is its bearer's ("President Obama"); after it, it starts another
        # name ("Paris Saint-Germain").
        if word in own or word in titles or not raw[raw_pos:raw_pos + 1].isupper():
            return False
        return gap.strip() in joins and not related(word)

    def starts_sentence(pos: int) -> bool:
        head = raw[:pos].rstrip()
        return not head or head[-1] in ".!?:;\"'(\n"

    if before:
        pos = offsets[hit.start - 1 - len(before[-1])]
        # A comma after the word before ends its phrase ("the Champ de Mars, Paris, France" lists
        # places); only one after the name qualifies it ("Paris, Texas").
        gap = raw[pos + 1:raw_start].lstrip("".join(c for c in raw[pos:raw_start] if c.isalnum()))
        if not starts_sentence(pos) and capital_neighbour(before[-1], pos, gap, ("", "-"), _TITLES | _ERAS):
            return f"{before[-1]} {word}"
        # A proper name built on it with "of" names another thing: "the Treaty of Paris", "the
        # Judgement of Paris" (titles are the target's own: "the Mayor of Paris", "Emperor of Japan").
        if len(before) >= 2 and before[-1] == "of":
            pos = offsets[hit.start - 4 - len(before[-2])]
            if not starts_sentence(pos) and capital_neighbour(before[-2], pos, "", titles=_TITLES | _OWN_OF):
                return f"{before[-2]} of {word}"
    if after:
        pos = offsets[hit.end + 1]
        gap = raw[raw_end:pos]
        if capital_neighbour(after[0], pos, gap.replace("'s", "").replace("'", ""), titles=frozenset()):
            return f"{word} {after[0]}"
        if len(after) >= 2 and after[0] == "of" and capital_neighbour(after[1], offsets[hit.end + 4], ""):
            return f"{word} of {after[1]}"  # "Paris of Troy"
    return None


_ASKED = re.compile(r"\b(?:what|which)\s+(\w+)(?:\s+(\w+))?")


def _kind_words(text: str) -> frozenset[str]:
    """Content words, singular ("planets" -> "planet"): what a question or a description calls a thing."""
    return frozenset(w[:-1] if w.endswith("s") and not w.endswith("ss") else w
                     for w in normalize(text).split() if len(w) >= 4 and w not in STOP_WORDS)


def _asked_kinds(question: str) -> frozenset[str]:
    """The kind of thing a question asks for: "What planet shares its name with the Roman god of war?"
    -> {"planet", "share"}; read against a target's description, it says in which sense an answer's
    one-word name is meant, whatever else the answer's sentence is close to."""
    return frozenset().union(*(_kind_words(" ".join(filter(None, m.groups()))) for m in _ASKED.finditer(normalize(question))))


def _supported(text: str, hit: LexicalHit, target: PreparedTarget) -> bool:
    """Whether the text holds another word of the target's own (the rest of its name, a proper noun
    of its description), or a title names the bearer ("Madame Curie", "President Obama"): what
    makes a surname alone ("Obama", "Potter") this target's."""
    before = text[:hit.start].split()
    if before and before[-1] in _TITLES:
        return True
    others = target.own_context - target.partial
    return any(len(w) >= 3 and w in others for w in (text[:hit.start] + " " + text[hit.end:]).split())


def _disguised(raw: str, offsets: list[int], text: str, hit: LexicalHit) -> bool:
    """Whether the raw text spells the word otherwise than plainly ("Sh4k3sp34r3", "O-b-a-m-a"):
    someone hiding a name means it, and the embedding would not see the name to confirm it."""
    return raw[offsets[hit.start]:offsets[hit.end - 1] + 1].lower().replace("'", "") != text[hit.start:hit.end]


def _word_pairs(text: str, hit: LexicalHit) -> set[str]:
    word = text[hit.start:hit.end]
    before, after = text[:hit.start].split()[-1:], text[hit.end:].split()[:1]
    return {f"{w} {word}" for w in before} | {f"{word} {w}" for w in after}


class Detector:
    """Prepares targets (embedding, calibration) and detects over an immutable `DetectionView`.

    Holds no target state of its own apart from the small mutable `TargetSet` convenience for
    tools and tests: a server keeps its views in its registry and swaps them on writes.
    """

    def __init__(self, embedder: Embedder | None = None, config: DetectorConfig | None = None):
        self.embedder = embedder or Embedder()
        self.config = config or DetectorConfig()
        neutral = [line.strip() for line in _NEUTRAL_PATH.read_text().splitlines() if line.strip()]
        self._neutral = self.embedder.encode(neutral or [""])
        self._neutral_words = [f" {normalize(text)} " for text in neutral]
        self._kinds = self.embedder.encode(list(SENSE_KINDS))
        self.targets = TargetSet()

    @staticmethod
    def _texts(spec: TargetSpec) -> list[str]:
        return list(dict.fromkeys([spec.name, *spec.aliases[:8], *spec.examples, *([spec.description] if spec.description else [])]))

    def _vectors(self, spec: TargetSpec) -> np.ndarray:
        return self.embedder.encode(self._texts(spec), scope=spec.owner)

    def _own_neutral(self, spec: TargetSpec) -> tuple[int, ...]:
        """The neutral prompts that name the target ("Who was Charles Darwin?"): a question near
        one of those is near the target itself, so they say nothing against it (a shared list
        cannot know which targets will be registered)."""
        names = {n for n in map(normalize, (spec.name, *spec.aliases)) if len(n.split()) >= 2}
        return tuple(i for i, words in enumerate(self._neutral_words) if any(f" {n} " in words for n in names))

    def _calibrate(self, spec: TargetSpec, vectors: np.ndarray, own_neutral: tuple[int, ...] = ()) -> float:
        cfg = self.config
        reference = np.delete(self._neutral, own_neutral, axis=0) if own_neutral else self._neutral
        if spec.negatives:
            reference = np.concatenate([reference, self.embedder.encode(list(spec.negatives), scope=spec.owner)])
        best = (reference @ vectors.T).max(axis=1)  # each neutral prompt's closest target vector
        return float(min(0.9, max(cfg.threshold_floor, np.quantile(best, cfg.neutral_quantile) + cfg.margin)))

    def prepare(self, spec: TargetSpec) -> PreparedTarget:
        """Everything detection needs about one target (embeds: run it off the event loop)."""
        vectors = self._vectors(spec)
        near = near_misses(spec.name)
        negatives = list(spec.negatives)
        senses: list[str] = []
        if spec.description:
            # Only kinds the target is not itself of: "a company called Microsoft" says nothing
            # against the software company.
            described = self.embedder.encode([without_name(spec.description, spec.name)], scope=spec.owner)[0]
            kinds = [k for k, score in enumerate(self._kinds @ described) if score < _OWN_KIND]
            senses = other_senses(spec.name, spec.aliases, kinds)
        others = [*near, *negatives, *senses]
        near_vectors = self.embedder.encode(others, scope=spec.owner) if others else None
        words = frozenset(name_words(spec.name, spec.aliases))
        head = tuple(head_words(spec.name, spec.aliases))
        own_neutral = self._own_neutral(spec)
        return PreparedTarget(spec, vectors.astype(np.float16), self._calibrate(spec, vectors, own_neutral),
                              None if near_vectors is None else near_vectors.astype(np.float16),
                              words, words | proper_nouns(spec.description), head,
                              frozenset(f for w in head for f in AliasMatcher.forms(w)),
                              bool(spec.description) and self._texts(spec)[-1] == spec.description,
                              partial_forms(spec.name, spec.aliases),
                              near_vectors[len(others) - len(senses):].astype(np.float16) if senses else None,
                              _kind_words(spec.description or ""), own_neutral)

    def prepare_many(self, specs: Sequence[TargetSpec], progress: bool = False) -> list[PreparedTarget]:
        from tqdm import tqdm

        return [self.prepare(s) for s in tqdm(specs, desc="indexing forget targets", disable=not progress or not specs)]

    # ---- the TargetSet convenience (tools, tests, benchmarks) ------------------------------------

    def add(self, spec: TargetSpec) -> float:
        return self.targets.upsert([self.prepare(spec)])[0].threshold

    def add_many(self, specs: Sequence[TargetSpec], progress: bool = False) -> None:
        self.targets.upsert(self.prepare_many(specs, progress))

    def remove(self, target_id: str) -> None:
        self.targets.remove([target_id])

    def detect(self, messages: Sequence[Message], owners: Sequence[str], active: Collection[str]) -> list[Detection]:
        """Detection over this detector's own TargetSet, limited to `owners` and `active` ids."""
        return self.detect_in(messages, self.targets.view(owners, active))

    # ---- detection ------------------------------------------------------------------------------

    def _confirmed(self, target: PreparedTarget, score: float, window_vec: np.ndarray, window: str, neutral: float,
                   near_miss: bool, near_margin: float | None = None) -> bool:
        """Whether a window's similarity to a target holds up against neutral prompts and near misses."""
        cfg = self.config
        if score < target.threshold or score - neutral < cfg.neutral_margin:
            return False
        if not near_miss:
            words = target.words
            near_miss = bool(words) and any(w in words or w[:-1] in words for w in normalize(window).split())
        if near_miss and target.near is not None:
            margin = cfg.near_miss_margin if near_margin is None else near_margin
            if score - float((target.near.astype(np.float32) @ window_vec).max()) < margin:
                return False
        return True

    def _related(self, target: PreparedTarget, scope: str) -> Callable[[str], bool]:
        """Whether a word is close in meaning to the target's description (its last vector). Not to
        its name: "Hilton" is as close to "Paris" as "Corporation" is to "Microsoft"."""
        def related(word: str) -> bool:
            if not target.described:
                return False
            description = target.vectors[-1].astype(np.float32)
            return float(description @ self.embedder.encode([word], scope=scope)[0]) >= _RELATED_NEIGHBOUR

        return related

    def check_budget(self, messages: Sequence[Message]) -> None:
        chars = sum(len(m.content) for m in messages)
        if chars > self.config.max_chars:
            raise DetectionTooLarge(f"the conversation has {chars} characters; at most {self.config.max_chars} can be checked")

    @staticmethod
    def named_in(text: str, view: DetectionView, target_ids: Collection[str]) -> set[str]:
        """Which of these targets a text names, by any of their names or aliases, in any sense: read
        on the served model's own answer to a question, it says what the question was about."""
        return {hit.target_id for hit in view.lexical_hits(normalize(text)) if hit.target_id in target_ids}

    def detect_in(self, messages: Sequence[Message], view: DetectionView) -> list[Detection]:
        """Which of the view's eligible targets the conversation touches. Reads only `view`, which
        nothing changes: a concurrent write publishes a new view instead."""
        if view.empty:
            return []
        self.check_budget(messages)
        scope = view.asker  # caches that could tell one tenant about another's texts are kept per asker
        found: dict[str, Detection] = {}
        to_confirm: dict[str, list[str]] = {}  # target id -> normalized words of its doubtful one-word hits
        # A name met in another sense keeps it for the rest of the conversation: "Who is Bruno
        # Mars?" then an answer opening "Bruno Mars is…", where the capital proves nothing.
        other_senses: set[str] = set()
        sensed: set[str] = set()  # targets with a hit that reads as another sense (not just a weak head word)
        # One-word hits that fire unless every sentence holding them reads as another sense of the word.
        to_weigh: dict[str, list[str]] = {}
        asked: frozenset[str] = frozenset()  # what the last question asked for (see _asked_kinds)
        # A surname alone in an answer, read with the question it answers (see _answered).
        answered: dict[str, list[str]] = {}
        question = ""
        for message in messages:
            if message.role == "user":
                asked = _asked_kinds(message.content)
                question = message.content
            elif message.role != "assistant":
                question = ""
            text, offsets = normalize_with_offsets(message.content)
            for hit in view.lexical_hits(text):
                target = view.eligible(hit.target_id)
                if target is None or hit.target_id in found:
                    continue
                sense = None if hit.multiword else (
                    _other_sense(message.content, offsets, text, hit, target.own_context, self._related(target, scope),
                                 target.spec.name[:1].isupper())
                    or next(iter(_word_pairs(text, hit) & other_senses), None))
                if sense is None and hit.alias not in target.weak and (
                        hit.alias not in target.partial or _supported(text, hit, target)
                        or _disguised(message.content, offsets, text, hit)):
                    # An answer naming the kind of thing its question asked for, when that is the
                    # target's kind ("What planet ...?" -> "... the Roman god of war, Mars"), means the target.
                    if target.senses is None or (message.role == "assistant" and asked
                                                 and asked & target.kinds):
                        found[hit.target_id] = Detection(hit.target_id, 1.0, "lexical", target.threshold)
                        to_confirm.pop(hit.target_id, None)
                        to_weigh.pop(hit.target_id, None)
                    else:
                        to_weigh.setdefault(hit.target_id, []).append(text[hit.start:hit.end])
                else:
                    if sense is not None:
                        other_senses.add(sense)
                        sensed.add(hit.target_id)
                    elif message.role == "assistant" and question and hit.alias in target.partial:
                        answered.setdefault(hit.target_id, []).append(
                            _answered(question, message.content, offsets[hit.start], self.config.max_window_words))
                    to_confirm.setdefault(hit.target_id, []).append(text[hit.start:hit.end])
        windows = spans(messages, self.config)
        if not windows:
            found.update((t, Detection(t, 1.0, "lexical", view.eligible(t).threshold)) for t in to_weigh)
            return sorted(found.values(), key=lambda d: -d.score)
        if len(windows) > self.config.max_windows:
            raise DetectionTooLarge(f"the conversation has {len(windows)} sentence windows; at most "
                                    f"{self.config.max_windows} can be checked")
        vectors = self.embedder.encode(windows, scope=scope)
        neutral_cache: dict[int, np.ndarray] = {}

        def neutral(i: int, target: PreparedTarget) -> float:  # only for windows with a candidate: most have none
            if i not in neutral_cache:
                neutral_cache[i] = np.einsum("ij,j->i", self._neutral, vectors[i])
            scores = neutral_cache[i]
            return float(np.delete(scores, target.own_neutral).max() if target.own_neutral else scores.max())

        norm_windows: dict[int, str] = {}

        def holding(keys: list[str]):
            for i, window in enumerate(windows):
                padded = norm_windows.setdefault(i, f" {normalize(window)} ")
                if any(f" {key} " in padded for key in keys):
                    yield i

        for target_id, keys in to_weigh.items():
            if target_id in found:
                continue
            target = view.eligible(target_id)
            target_vecs, senses = target.vectors.astype(np.float32), target.senses.astype(np.float32)
            held = list(holding(keys))
            if not held or any(float((senses @ vectors[i]).max()) - float((target_vecs @ vectors[i]).max())
                               < self.config.sense_margin for i in held):
                found[target_id] = Detection(target_id, 1.0, "lexical", target.threshold)
                to_confirm.pop(target_id, None)
            else:
                sensed.add(target_id)
                to_confirm.setdefault(target_id, []).extend(keys)

        # A surname alone in an answer is also read with its question: "Einstein's equation for
        # mass-energy" is no closer to Albert Einstein than any sentence about physics, but with
        # "What equation is E=mc2 and who wrote it?" before it, it is his. Embedded only when met.
        bridges = [w for t, texts in answered.items() if t not in found for w in texts]
        if bridges:
            windows = [*windows, *bridges]
            vectors = np.concatenate([vectors, self.embedder.encode(bridges, scope=scope)])

        # Doubtful one-word hits: the windows that contain the word must confirm the target.
        for target_id, keys in to_confirm.items():
            target = view.eligible(target_id)
            target_vecs = target.vectors.astype(np.float32)
            for i in holding(keys):
                window = windows[i]
                score = float((target_vecs @ vectors[i]).max())
                # A head word alone ("the Amazon") need only be closer to the target than to its
                # other senses, a surname alone ("Obama") only as close to it as a semantic hit; a
                # name met in another sense must beat its near misses by a margin.
                near_margin = None if target_id in sensed else 0.0 if any(k in target.weak for k in keys) else float("-inf")
                if self._confirmed(target, score, vectors[i], window, neutral(i, target), True, near_margin):
                    found[target_id] = Detection(target_id, score, "lexical", target.threshold)
                    break
        if bridges:  # they confirm surnames only, never fire a target on similarity alone
            windows, vectors = windows[:-len(bridges)], vectors[:-len(bridges)]

        # Cost follows the candidates found, not the number of active targets (10^5 per tenant).
        best: dict[str, Detection] = {}
        for layer, hidden in view.layers():
            for i, scores in enumerate(layer.search(windows, vectors, self.config.top_k, view.asker)):
                for target_id, score in scores.items():
                    if target_id in hidden or target_id in found:
                        continue
                    target = view.eligible(target_id)
                    if target is None or score < target.threshold:
                        continue
                    if target_id in best and best[target_id].score >= score:
                        continue
                    if self._confirmed(target, score, vectors[i], windows[i], neutral(i, target), target_id in to_confirm):
                        best[target_id] = Detection(target_id, score, "semantic", target.threshold)
        found.update(best)
        return sorted(found.values(), key=lambda d: -d.score)


class TargetSet:
    """A mutable set of owner indexes for tools and tests: each change swaps in new immutable ones."""

    def __init__(self) -> None:
        self._owners: dict[str, OwnerIndex] = {}
        self._lock = threading.Lock()

    def upsert(self, prepared: Sequence[PreparedTarget]) -> Sequence[PreparedTarget]:
        with self._lock:
            by_owner: dict[str, list[PreparedTarget]] = {}
            for target in prepared:
                by_owner.setdefault(target.spec.owner, []).append(target)
            for owner, targets in by_owner.items():
                current = self._owners.get(owner, EMPTY_INDEX)
                moved = [t.id for t in targets if current.get(t.id) is not None]
                self._owners[owner] = (OwnerIndex.build(targets) if not len(current)
                                       else current.with_changes(targets, moved))
        return prepared

    def remove(self, target_ids: Collection[str]) -> None:
        with self._lock:
            self._owners = {o: i.with_changes(removals=target_ids) if any(i.get(t) for t in target_ids) else i
                            for o, i in self._owners.items()}

    def view(self, owners: Sequence[str], active: Collection[str] | None = None) -> DetectionView:
        indexes = tuple(self._owners[o] for o in dict.fromkeys(owners) if o in self._owners)
        # The first owner is the one asking (see DetectionView.asker).
        return DetectionView(indexes, only=None if active is None else frozenset(active),
                             asker=owners[0] if owners else "")
