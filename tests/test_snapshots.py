"""Immutable snapshots in-process: owner indexes, the registry under concurrent writes, the
answer judge off the caller's thread, policy validation. Real embedder, real FAISS, real SQLite."""

from __future__ import annotations

import random
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import detectors.index as index_module
from detectors.embeddings import DIM
from detectors.index import DetectionView, OwnerIndex, PreparedTarget
from detectors.normalize import normalize
from detectors.types import TargetSpec
from filters import GuardPatterns
from gateway.policy import ResponsePolicy
from gateway.registry import Caller, Registry, TargetNotFound
from gateway.store import GLOBAL, Store
from stress import run_threads


def fake_target(target_id: str, name: str, owner: str = "t", seed: int = 0) -> PreparedTarget:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((2, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return PreparedTarget(TargetSpec(target_id, owner, name, (name,)), vectors.astype(np.float16), 0.6, None,
                          frozenset(), frozenset())


def hits(view: DetectionView, text: str) -> set[str]:
    return {h.target_id for h in view.lexical_hits(normalize(text)) if view.eligible(h.target_id) is not None}


def test_an_index_change_makes_a_new_index_and_leaves_the_old_one_intact():
    before = OwnerIndex.build([fake_target("a", "Zorblax Quentaro"), fake_target("b", "Vintrel Moskavy", seed=1)])
    old_view = DetectionView((before,))
    after = before.with_changes([fake_target("a", "Pelmora Drasken", seed=2)], removals=["b"])
    new_view = DetectionView((after,))
    # The edit's old alias is gone at once from the new index, though it stays in the base layer.
    assert hits(new_view, "zorblax quentaro and vintrel moskavy") == set()
    assert hits(new_view, "pelmora drasken") == {"a"}
    # A request still holding the old index sees exactly what it saw before the write.
    assert hits(old_view, "zorblax quentaro and vintrel moskavy") == {"a", "b"}
    assert hits(old_view, "pelmora drasken") == set()
    assert len(before) == 2 and len(after) == 1


def test_merging_and_rebasing_keep_exactly_the_live_targets(monkeypatch):
    monkeypatch.setattr(index_module, "DELTA_LIMIT", 8)
    rng = random.Random(3)
    index, live = OwnerIndex(), {}
    for step in range(120):
        target_id = f"x{rng.randrange(30)}"
        if rng.random() < 0.25 and target_id in live:
            index = index.with_changes(removals=[target_id])
            live.pop(target_id)
        else:
            name = "".join(rng.choice(string.ascii_lowercase) for _ in range(9))
            target = fake_target(target_id, name, seed=step)
            index = index.with_changes([target])
            live[target_id] = target
        if index.needs_merge:
            start = index
            merged = start.merged()
            # Writes that land while the merge runs are replayed onto it.
            extra = fake_target("late", "latecomer" + str(step), seed=step)
            index = start.with_changes([extra]).rebased(merged)
            live["late"] = extra
        assert {t.id: t for t in index.live()} == live
        assert len(index) == len(live)
    view = DetectionView((index,))
    for target_id, target in live.items():
        assert target_id in hits(view, target.spec.name)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from detectors.detector import Detector

    store = Store(tmp_path_factory.mktemp("registry") / "lethe.db")
    reg = Registry(store, Detector())
    reg.load()
    yield reg
    store.close()


def _name(rng: random.Random) -> str:
    return " ".join("".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3)).capitalize()
                    for _ in range(2))


def test_an_edit_replaces_the_old_target_and_never_re_expands_its_aliases(registry):
    caller = Caller("tn_edit")
    created = registry.create("tn_edit", name="Zorblax Quentaro", aliases=["Zorbie"], description="a fictional explorer",
                              examples=[], forbidden=[], negatives=[], mandatory=False)
    assert {"Quentaro", "Quentaro's", "Zorbie", "Zorbie's"} <= set(created.aliases)
    renamed = registry.update(caller, created.id, name="Vintrel Moskavy")
    assert not any(a.endswith("'s's") or a.endswith("'ss") or a.endswith("ss") for a in renamed.aliases), renamed.aliases
    assert "Zorbie" in renamed.aliases and not any("zorblax" in a.lower() or "quentaro" in a.lower() for a in renamed.aliases)
    assert not any("Zorblax" in e for e in renamed.examples)
    planner_view = registry.snapshot("tn_edit").view
    assert hits(planner_view, "who is zorblax quentaro") == set()
    assert hits(planner_view, "who is vintrel moskavy") == {created.id}
    again = registry.update(caller, created.id, description="an explorer of old maps")
    assert sorted(again.aliases) == sorted(renamed.aliases)  # an edit of another field leaves them alone
    registry.delete(caller, created.id)
    with pytest.raises(TargetNotFound):
        registry.update(caller, created.id, name="Back Again")


def test_concurrent_writers_and_readers_see_one_consistent_snapshot(registry, monkeypatch):
    """Writers create, edit, toggle and delete targets of several tenants (with background merges)
    while readers detect: no exception, an edit that returned never lets the old alias match, a
    tenant never gets another tenant's target, and a snapshot never changes under its reader."""
    from gateway.planner import Planner

    monkeypatch.setattr(index_module, "DELTA_LIMIT", 3)  # merges run all the time
    planner = Planner(registry, tokenizer=None, default_policy=ResponsePolicy())
    tenants = ["tn_a", "tn_b", "tn_c"]
    owner_of: dict[str, str] = {}
    retired: list[tuple[float, str, str, str]] = []  # (when the edit returned, tenant, target id, old name)
    names: dict[str, str] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(tenant: str, seed: int):
        rng = random.Random(seed)
        caller = Caller(tenant)
        mine: list[str] = []
        try:
            while not stop.is_set():
                op = rng.random()
                if op < 0.4 or not mine:
                    name = _name(rng)
                    target = registry.create(tenant, name=name, aliases=[], description="", examples=[name],
                                             forbidden=[], negatives=[], mandatory=False)
                    owner_of[target.id], names[target.id] = tenant, name
                    mine.append(target.id)
                    assert hits(registry.snapshot(tenant).view, name.lower()) >= {target.id}  # live on return
                elif op < 0.7:
                    target_id = rng.choice(mine)
                    old, new = names[target_id], _name(rng)
                    registry.update(caller, target_id, name=new, examples=[new])
                    names[target_id] = new
                    retired.append((time.monotonic(), tenant, target_id, old))
                    assert target_id not in hits(registry.snapshot(tenant).view, old.lower())
                elif op < 0.85:
                    target_id = rng.choice(mine)
                    registry.set_active(tenant, caller, target_id, False)
                    assert target_id not in hits(registry.snapshot(tenant).view, names[target_id].lower())
                    registry.set_active(tenant, caller, target_id, True)
                else:
                    target_id = mine.pop(rng.randrange(len(mine)))
                    registry.delete(caller, target_id)
                    assert registry.snapshot(tenant).view.eligible(target_id) is None
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader(seed: int):
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                tenant = rng.choice(tenants)
                started = time.monotonic()
                snapshot = registry.snapshot(tenant)
                mention = " and ".join(rng.sample(list(names.values()), min(4, len(names)))) or "nobody"
                messages = [{"role": "user", "content": f"Tell me about {mention}."}]
                first = planner.detect(snapshot, messages)
                for d, record in zip(first.detections, first.targets):
                    assert owner_of.get(d.target_id) == tenant and record.owner == tenant
                for when, owner, target_id, old in list(retired):
                    if when < started and owner == tenant and old in mention:
                        lexical = {d.target_id for d in first.detections if d.method == "lexical"}
                        assert target_id not in lexical or names[target_id] in mention
                # The same snapshot answers the same, whatever was written meanwhile.
                assert [d.target_id for d in planner.detect(snapshot, messages).detections] == \
                    [d.target_id for d in first.detections]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    run_threads(lambda i: writer(tenants[i], i), len(tenants), reader, 2, stop, seconds=20, join_timeout=120)
    planner.shutdown()
    registry.wait_merged()
    assert not errors, repr(errors[0])
    assert len(names) >= 6 and retired
    # After the dust settles the live state matches the store.
    stored = {r.id: r.name for r in registry.store.targets(tenants)}
    assert {r.id: r.name for t in tenants for r in registry.visible(t) if r.owner != GLOBAL} == stored


def test_the_answer_judge_runs_elsewhere_while_the_guard_holds_the_text():
    asked, release = threading.Event(), threading.Event()

    def slow_judge(context: str) -> bool:
        asked.set()
        release.wait(10)
        return "Paris" in context

    with ThreadPoolExecutor(1) as pool:
        guard = GuardPatterns(["Paris"]).start(slow_judge, pool)
        begun = time.monotonic()
        sent = guard.feed("We flew to Paris").text_to_emit
        for word in " and then walked for a long while by the river.".split(" "):
            sent += guard.feed(" " + word).text_to_emit
        assert time.monotonic() - begun < 1.0  # the feeding thread never waited for the judge
        assert asked.wait(5) and guard.pending
        assert sent == "We flew to" and not guard.tripped  # held from the match on (and the space before it)
        release.set()
        deadline = time.monotonic() + 5
        while guard.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        result = guard.feed(" More.")
        assert result.tripped and result.text_to_emit == ""


def test_a_cleared_match_is_released_once_the_judge_answers():
    with ThreadPoolExecutor(1) as pool:
        guard = GuardPatterns(["Paris"]).start(lambda context: False, pool)
        sent = guard.feed("Paris Hilton is a media personality and").text_to_emit
        time.sleep(0.2)
        sent += guard.feed(" businesswoman.").text_to_emit + guard.finish()
    assert sent == "Paris Hilton is a media personality and businesswoman." and not guard.tripped


@pytest.mark.parametrize("bad", [{"on_detector_error": "clsoed"}, {"refusal": "silence"},
                                 {"interventions": frozenset({"tokens", "telepathy"})}])
def test_every_policy_key_is_validated(bad):
    with pytest.raises(ValueError):
        ResponsePolicy(**bad)
    with pytest.raises(ValueError):
        ResponsePolicy().merged(bad)


def test_a_policy_typo_in_the_settings_stops_the_server_at_start(monkeypatch):
    from gateway.config import Settings

    monkeypatch.setenv("LETHE_ON_DETECTOR_ERROR", "clsoed")
    with pytest.raises(ValueError, match="on_detector_error"):
        Settings.load().response_policy()


def test_a_semantic_hit_on_a_plain_question_stands_only_if_the_models_own_answer_names_the_target(registry):
    """The planner's check of a similarity-only hit, with the real detector: the answer function
    stands in for the engine here (the live test in test_targets_api runs the real model)."""
    import asyncio

    from gateway.planner import Planner

    planner = Planner(registry, tokenizer=None, default_policy=ResponsePolicy())
    mars = registry.create("tn_verify", name="Mars", aliases=["the Red Planet"], description="the fourth planet from the Sun",
                           examples=[], forbidden=[], negatives=[], mandatory=False)
    snapshot = registry.snapshot("tn_verify")
    question = [{"role": "user", "content": "Which planet has the Great Red Spot?"}]
    read: list[str] = []

    def answering(text: str):
        async def answer(prompt_ids, enough):
            for end in range(1, len(text) + 1):  # as a stream: stops where `enough` says
                read.append(text[:end])
                if enough(text[:end]):
                    break
            return read[-1]
        return answer

    async def failing(prompt_ids, enough):
        raise RuntimeError("engine overloaded")

    def fired(messages, answer, prompt_ids=(1, 2, 3)):
        planner.answer = answer
        return [d.target_id for d in asyncio.run(planner.detect_checked(snapshot, messages, prompt_ids)).detections]

    assert fired(question, None) == [mars.id]  # similarity alone fires it
    assert fired(question, answering("Jupiter has the Great Red Spot, a storm.")) == []
    assert fired(question, answering("Mars has no such spot; Jupiter does.")) == [mars.id]
    assert read[-1] == "Mars"  # read no further than the name
    assert fired(question, failing) == [mars.id]  # fails closed
    # A prefill the answer continues is read with it: the name across the seam counts.
    prefilled = [*question, {"role": "assistant", "content": "The planet with it is Ma"}]
    assert fired(prefilled, None) == [mars.id]
    assert fired(prefilled, answering("rs, not Jupiter.")) == [mars.id]
    # Not a plain question (a system prompt, a second turn): similarity alone decides, unasked.
    read.clear()
    tutor = [{"role": "system", "content": "You are an astronomy tutor."}, *question]
    assert fired(tutor, answering("Jupiter.")) == [mars.id] and not read
    assert fired(question, answering("Jupiter."), prompt_ids=None) == [mars.id] and not read
    # An answer that states one of the target's fact terms is about it too, named or not (a question
    # that describes the target is answered with its facts: "…flows into the Atlantic Ocean").
    from steering.knowledge import FactTerms

    assert registry.set_knowledge(mars, "a-model", FactTerms(banned=("Olympus Mons", "Phobos")))
    snapshot = registry.snapshot("tn_verify")
    assert fired(question, answering("It is the planet of Olympus Mons, the tallest volcano.")) == [mars.id]
    assert read[-1].endswith("Olympus Mons")  # read no further than the fact
    assert fired(question, answering("Jupiter has the Great Red Spot, a storm.")) == []
    assert fired(question, answering("Olympus alone is a mountain in Greece.")) == []  # the whole term
    # A context term (an ordinary word the model keeps using about the target) counts too, unless
    # the question said it first: an answer that only echoes the question says nothing.
    assert registry.set_knowledge(mars, "a-model", FactTerms(banned=("Olympus Mons",), context=("storm", "planet")))
    snapshot = registry.snapshot("tn_verify")
    assert fired(question, answering("The spot is a giant storm.")) == [mars.id]
    assert fired(question, answering("The planet is a gas giant.")) == []  # "planet" is the question's


def test_a_target_only_earlier_turns_name_goes_to_the_background_unless_the_answer_goes_near_it(registry):
    """The planner's split of a conversation of several turns, with the real detector and a stand-in
    for the engine's greedy answer (tests/test_earlier_turns.py runs the real model)."""
    import asyncio

    from gateway.planner import Planner

    planner = Planner(registry, tokenizer=None, default_policy=ResponsePolicy())
    paris = registry.create("tn_turns", name="Paris", aliases=[], description="the capital city of France",
                            examples=[], forbidden=[], negatives=[], mandatory=False)
    snapshot = registry.snapshot("tn_turns")
    asked: list[str] = []

    def answering(text: str):
        async def answer(prompt_ids, enough):
            asked.append(text)
            return text
        return answer

    async def failing(prompt_ids, enough):
        raise RuntimeError("engine overloaded")

    def split(last: str, answer, earlier=("Tell me about Paris.", "I'm sorry, but I don't know.")):
        planner.answer = answer
        messages = [{"role": "user", "content": earlier[0]}, {"role": "assistant", "content": earlier[1]},
                    {"role": "user", "content": last}]
        result = asyncio.run(planner.detect_checked(snapshot, messages, (1, 2, 3)))
        assert [d.target_id for d in result.detections] == [paris.id]  # fired, in either case
        return [t.id for t in result.targets], [t.id for t in result.background]

    assert split("How many legs does a spider have?", answering("A spider has eight legs.")) == ([], [paris.id])
    assert split("In which city is the Eiffel Tower?", answering("The Eiffel Tower is in Paris.")) == ([paris.id], [])
    assert split("How many legs does a spider have?", failing) == ([paris.id], [])  # fails closed
    assert split("How many legs does a spider have?", None) == ([paris.id], [])
    # The last turn names it, refers back, or is too long to be a plain question: whole treatment, unasked.
    asked.clear()
    assert split("And Paris, how many people live there?", answering("")) == ([paris.id], [])
    assert split("What is its population?", answering("")) == ([paris.id], [])
    assert split("Spiders? " * 41, answering("")) == ([paris.id], [])
    assert not asked
    # A system prompt is the current turn's: a target it names stays fired.
    planner.answer = answering("A spider has eight legs.")
    framed = [{"role": "system", "content": "You are a guide to Paris."},
              {"role": "user", "content": "Hello."}, {"role": "assistant", "content": "Hi."},
              {"role": "user", "content": "How many legs does a spider have?"}]
    result = asyncio.run(planner.detect_checked(snapshot, framed, (1, 2, 3)))
    assert [t.id for t in result.targets] == [paris.id] and not result.background
