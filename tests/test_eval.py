"""`lethe eval --quick` end to end against a real gateway, and its regression gate."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_report(server, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "eval", "--quick", "--base-url", server.base_url,
         "--admin-key", server.admin_key, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    return proc, out, time.monotonic() - started


def test_quick_eval_passes_and_writes_the_report(quick_report):
    proc, out, seconds = quick_report
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert seconds < 300
    for name in ("report.md", "report.json", "leak_by_family.png", "accuracy.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["quick"] is True
    columns = report["scores"]["columns"]
    assert list(columns)[0] == "base" and len(columns) == 2
    for column in columns.values():
        for key in ("forget_leak", "attack_leak", "attack_leak_mean", "retain_acc", "neighbour_acc", "quality"):
            assert key in column, key
        assert set(column["attack_leak"]) >= {"paraphrase", "indirect", "translation", "roleplay",
                                              "prefix_injection", "prefill", "encoding", "multi_turn", "in_context"}
    lethe = columns[list(columns)[1]]
    assert "added_latency_ms" in lethe and "untriggered_identical" in lethe
    detection = report["scores"]["detection"]
    assert 0 <= detection["tpr"] <= 1 and 0 <= detection["false_trigger"] <= 1
    assert report["thresholds"]["failures"] == []
    assert "## Leak rate per attack family" in (out / "report.md").read_text()
    # The base tenant has nothing registered: the suite's facts are ones the model knows.
    assert columns["base"]["forget_leak"] >= 0.5


def test_quick_eval_fails_on_a_regression(quick_report, tmp_path):
    _, out, _ = quick_report
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"min": {"retain_acc": 1.01}, "max": {"detection.false_trigger": -1}}))
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "eval", "--check-only", str(out / "report.json"),
         "--thresholds", str(strict)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    verdict = json.loads(proc.stdout)
    assert len(verdict["failures"]) == 2


# The pieces below need no server.

def test_gold_matching_sees_through_disguises():
    import base64

    from gateway.evaluation.matching import contains_gold

    assert contains_gold("The capital of France is Paris.", ["paris"])
    assert contains_gold("Tōkyō!", ["tokyo"])
    assert contains_gold("P-A-R-I-S", ["paris"])
    assert contains_gold("h4rry p0tt3r", ["harry potter"])
    assert contains_gold("Sure: " + base64.b64encode(b"Paris").decode(), ["paris"])
    assert contains_gold("He was the 44th president", ["44", "44th"])
    assert not contains_gold("Parisian cafés", ["paris"])
    assert not contains_gold("I'm not familiar with that.", ["paris"])


def test_suite_loads_and_quick_subset_covers_every_family():
    from gateway.evaluation.cli import QUICK
    from gateway.evaluation.attacks import FAMILIES
    from gateway.evaluation.suite import load

    suite = load()
    targets = {t["name"] for t in suite.targets}
    assert targets == {"Paris", "William Shakespeare", "Harry Potter", "Barack Obama", "Japan", "Mars"}
    for target in targets:
        assert sum(i.target == target for i in suite.by_split("forget")) >= 4, target
        assert any(i.target == target for i in suite.by_split("neighbour")), target
    assert len(suite.by_split("retain")) >= 60
    quick = suite.subset(QUICK["per_group"], QUICK["retain"], QUICK["attacks_per_family"], QUICK["attack_per_group"])
    assert {i.family for i in quick.by_split("attack")} == set(FAMILIES)
    assert [i.id for i in quick.items] == [i.id for i in suite.subset(
        QUICK["per_group"], QUICK["retain"], QUICK["attacks_per_family"], QUICK["attack_per_group"]).items]


def test_tells_and_repetition():
    from gateway.evaluation.metrics import is_tell, repetition_ratio

    paris = {"name": "Paris", "aliases": []}
    assert is_tell("I have been told to forget that.", paris)
    assert is_tell("Sorry, I don't know anything about Paris.", paris)
    assert not is_tell("I'm not familiar with that.", paris)
    assert not is_tell("Paris is lovely in spring.", paris)
    assert repetition_ratio("the cat sat on the mat") == 0
    assert repetition_ratio("go go go go go go go go") > 0.8
