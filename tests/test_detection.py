"""The detector on a labelled set: real embedding model, real FAISS, no server needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detectors.aliases import expand_aliases, probe_prompts
from detectors.detector import Detector
from detectors.normalize import normalize, normalize_with_offsets
from detectors.types import Message, TargetSpec

SET = [json.loads(line) for line in (Path(__file__).parent / "data" / "detection_set.jsonl").open()]


@pytest.fixture(scope="module")
def detector():
    det = Detector()
    for i, row in enumerate(r for r in SET if r["kind"] == "target"):
        det.add(TargetSpec(f"ft_{i}", "tenant-a", row["name"], tuple(expand_aliases(row["name"])), row["description"],
                           tuple(probe_prompts(row["name"], row["description"]))))
    det.names = {f"ft_{i}": r["name"] for i, r in enumerate(r for r in SET if r["kind"] == "target")}
    return det


def fired(detector, text: str) -> set[str]:
    hits = detector.detect([Message("user", text)], ["tenant-a", "global"], set(detector.names))
    return {detector.names[d.target_id] for d in hits}


def test_normalization_defeats_spelling_tricks():
    assert normalize("H a r r y") == "harry"
    assert normalize("h.a.r.r.y p.o.t.t.e.r") == "harrypotter"
    assert normalize("P0tt3r in 1984") == "potter in 1984"
    assert normalize("Ha\u200brry") == "harry"
    assert normalize("Наrrу Роttеr") == "harry potter"  # Cyrillic look-alikes
    text, offsets = normalize_with_offsets("Say: H-o-g-w-a-r-t-s!")
    assert text == "say hogwarts"
    assert "Say: H-o-g-w-a-r-t-s!"[offsets[text.index("hogwarts")]] == "H"


def test_aliases_from_a_name_alone():
    aliases = expand_aliases("Barack Obama")
    assert "Obama" in aliases and "Barack Obama's" in aliases
    assert "Brown" not in expand_aliases("Gordon Brown")  # a surname that is an everyday word
    assert any("Barack Obama" in p for p in probe_prompts("Barack Obama"))


def test_recall_on_positives(detector):
    positives = [r for r in SET if r["kind"] == "positive"]
    missed = [r["text"][-80:] for r in positives if r["target"] not in fired(detector, r["text"])]
    recall = 1 - len(missed) / len(positives)
    assert recall >= 0.9, f"recall {recall:.2f}; missed: {missed}"


def test_false_triggers_on_neighbours_and_neutral(detector):
    negatives = [r for r in SET if r["kind"] in ("negative", "neutral")]
    wrong = [r["text"] for r in negatives if fired(detector, r["text"]) & ({r["target"]} if "target" in r else set(detector.names.values()))]
    rate = len(wrong) / len(negatives)
    assert rate <= 0.12, f"false-trigger rate {rate:.2f}: {wrong}"


def test_only_active_targets_of_own_partitions(detector):
    text = "Who wrote Harry Potter?"
    hp = next(t for t, n in detector.names.items() if n == "Harry Potter")
    assert detector.detect([Message("user", text)], ["tenant-b", "global"], {hp}) == []
    assert detector.detect([Message("user", text)], ["tenant-a"], set()) == []
    assert [d.target_id for d in detector.detect([Message("user", text)], ["tenant-a"], {hp})] == [hp]


def test_whole_conversation_is_scanned(detector):
    wrapper = "You are a helpful assistant who loves long stories about cooking and gardening. " * 30
    conversation = [Message("system", wrapper), Message("user", "Tell me a story."),
                    Message("assistant", "Sure. Once upon a time a boy called H.a.r.r.y P.o.t.t.e.r")]
    assert "Harry Potter" in {detector.names[d.target_id] for d in detector.detect(conversation, ["tenant-a"], set(detector.names))}
