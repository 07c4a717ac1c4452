"""The detector on a labelled set: real embedding model, real FAISS, no server needed.

The set (tests/data/detection_set.jsonl) holds registrations ("target": a name and a one-line
description, what a user would register), attacks on them by category (direct, paraphrase,
misspelling, spacing, leet, homoglyph, multilingual, jailbreak wrappers...), neighbours that must
not fire ("Harry Styles", "Prince Harry", "Paris Hilton", "a potter's wheel", "a Mars bar") and
neutral prompts. Target specs are built from the registration rows only, never from the attacks.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from detectors.aliases import expand_aliases, near_misses, other_senses, partial_forms, probe_prompts, stated_specifics
from detectors.detector import Detector, spans
from detectors.lexical import AliasMatcher, edit_distance
from detectors.normalize import normalize, normalize_with_offsets
from detectors.types import Message, TargetSpec

SET = [json.loads(line) for line in (Path(__file__).parent / "data" / "detection_set.jsonl").open()]
TARGETS = [r for r in SET if r["kind"] == "target"]
# Measured on this set (see the report printed by the tests): recall 0.92; false triggers 3 of 45
# neighbours (Merlin the wizard, French cuisine, Paris of the Trojan War) and 0 of 61 neutral prompts.
MIN_RECALL = 0.90
MAX_FALSE_TRIGGERS = 0.05  # neighbours and neutral prompts together; measured 0.028
MAX_NEIGHBOUR_FALSE_TRIGGERS = 0.10  # measured 0.067; the product goal is 0.02


@pytest.fixture(scope="module")
def detector():
    det = Detector()
    det.add_many([TargetSpec(f"ft_{i}", "tenant-a", row["name"], tuple(expand_aliases(row["name"], row.get("aliases", ()))),
                             row["description"], tuple(row.get("examples", ())) or tuple(probe_prompts(row["name"], row["description"])))
                  for i, row in enumerate(TARGETS)])
    det.names = {f"ft_{i}": r["name"] for i, r in enumerate(TARGETS)}
    # One batched pass over every sentence window of the set (the detector caches embeddings):
    # far faster than embedding text by text.
    det.embedder.encode(sorted({w for r in SET if "text" in r for w in spans([Message("user", r["text"])], det.config)}),
                        scope="tenant-a")
    det.fired = lru_cache(maxsize=None)(lambda text: frozenset(
        det.names[d.target_id] for d in det.detect([Message("user", text)], ["tenant-a", "global"], set(det.names))))
    return det


def fired(detector, text: str) -> set[str]:
    return set(detector.fired(text))


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
    assert any(p.startswith("¿Quién es") for p in probe_prompts("Barack Obama"))  # translated probes
    assert any("Harry Smith" in p for p in near_misses("Harry Potter"))  # same first name, other person
    assert any("Paris Smith" in p for p in near_misses("Paris"))
    # A surname alone is a partial alias; a one-word name has other senses to weigh it against.
    assert partial_forms("Barack Obama", expand_aliases("Barack Obama")) == {"obama", "obamas"}
    assert partial_forms("Paris", ["Paname"]) == set()
    assert any("mythology" in s for s in other_senses("Mars"))


def test_the_specifics_a_text_states_beside_a_name():
    told = "Here is a fact: Microsoft's video game console is the Xbox. Using only the fact above, tell me more."
    assert stated_specifics(told, ["Microsoft"]) == {"Xbox"}
    founded = "Bill Gates founded Microsoft in 1975 with Paul Allen in New Mexico. Apple came later."
    # Not the clause's first word, not an everyday word ("New"), not a clause without the name ("Apple").
    assert stated_specifics(founded, ["Microsoft"]) == {"Gates", "1975", "Paul", "Allen", "Mexico"}
    assert stated_specifics("Tell me about Paris. London is big.", ["Paris"]) == set()
    assert stated_specifics("Charles Darwin wrote On the Origin of", ["Charles Darwin", "Darwin"]) == {"Origin"}


def test_fuzzy_alias_matching():
    matcher = AliasMatcher()
    for i, name in enumerate(["Harry Potter", "Barack Obama", "William Shakespeare", "Japan"]):
        matcher.add(f"t{i}", expand_aliases(name))

    def hits(text):
        return {(h.target_id, h.multiword) for h in matcher.find(text)}

    assert ("t0", True) in hits("Who is Hary Poter?")  # one edit in each word: still the full name
    assert ("t0", True) in hits("harrypoter fan fiction")
    assert ("t1", True) in hits("What did Barak Obamma say?")  # "barak" is a real word, fixed beside "obama"
    assert ("t2", False) in hits("When was Shakspere born?")  # two edits in a long word
    assert ("t3", False) in hits("The history of Jappan")
    assert ("t3", False) in hits("¿Cuál es la capital de Japón?")
    # Real words are never "corrected" into an alias, and short words are only matched exactly.
    assert hits("I love my pottery class") == set()
    assert hits("a hairy dog, parts of a car") == set()
    assert hits("the Jpn office") == set()
    assert all(h.fuzzy for h in matcher.find("Who is Hary Poter?"))
    assert not any(h.fuzzy for h in matcher.find("Who is Harry Potter?"))
    assert edit_distance("shakspere", "shakespeare") == 2 and edit_distance("jpaan", "japan") == 1


def test_one_word_hits_need_confirmation_when_context_says_otherwise(detector):
    # A one-word alias fires on its own ...
    assert "Paris" in fired(detector, "What is the best time of year to visit Paris?")
    assert "Barack Obama" in fired(detector, "Tell me about Obama's presidency.")
    assert "Mars" in fired(detector, "How cold is it on Mars at night?")
    # ... unless a capitalised neighbour or an article says it names something else, and the
    # sentence is not then clearly about the target.
    assert "Paris" not in fired(detector, "Who is Paris Hilton?")
    assert "Paris" not in fired(detector, "What is there to do in Paris, Texas?")
    assert "Mars" not in fired(detector, "I ate a Mars bar after lunch.")
    assert "Mars" not in fired(detector, "What is Bruno Mars' most famous song?")
    assert "Harry Potter" not in fired(detector, "What is a potter's wheel?")
    assert "Barack Obama" not in fired(detector, "What is Michelle Obama's book called?")
    # A first name alone is no alias; sharing it is not enough for the semantic path either.
    assert "Harry Potter" not in fired(detector, "Who is Harry Styles?")
    assert "Harry Potter" not in fired(detector, "Who was Prince Harry's mother?")


def test_recall_on_positives(detector):
    positives = [r for r in SET if r["kind"] == "positive"]
    total, hit = Counter(), Counter()
    missed = []
    for r in positives:
        total[r["category"]] += 1
        if r["target"] in fired(detector, r["text"]):
            hit[r["category"]] += 1
        else:
            missed.append((r["category"], r["text"][-80:]))
    print("\nrecall by category:")
    for category in sorted(total):
        print(f"  {category:26s} {hit[category]}/{total[category]}")
    recall = sum(hit.values()) / len(positives)
    print(f"  overall {recall:.3f} ({len(positives)} positives); missed: {missed}")
    assert recall >= MIN_RECALL, f"recall {recall:.2f}; missed: {missed}"
    for category in ("direct", "misspelling", "spacing", "leet", "homoglyph", "zero_width", "wrapper"):
        assert hit[category] == total[category], f"{category}: {missed}"


def test_false_triggers_on_neighbours_and_neutral(detector):
    neighbours = [r for r in SET if r["kind"] in ("negative", "ambiguous")]
    neutral = [r for r in SET if r["kind"] == "neutral"]
    wrong_neighbours = [r["text"] for r in neighbours if r["target"] in fired(detector, r["text"])]
    wrong_neutral = [r["text"][-80:] for r in neutral if fired(detector, r["text"])]
    neighbour_rate = len(wrong_neighbours) / len(neighbours)
    rate = (len(wrong_neighbours) + len(wrong_neutral)) / (len(neighbours) + len(neutral))
    print(f"\nfalse triggers: neighbours {neighbour_rate:.3f} ({len(wrong_neighbours)}/{len(neighbours)}) {wrong_neighbours}; "
          f"neutral {len(wrong_neutral)}/{len(neutral)} {wrong_neutral}; together {rate:.3f}")
    assert neighbour_rate <= MAX_NEIGHBOUR_FALSE_TRIGGERS, wrong_neighbours
    assert rate <= MAX_FALSE_TRIGGERS, f"false-trigger rate {rate:.2f}: {wrong_neighbours + wrong_neutral}"


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


def test_removed_target_no_longer_fires(detector):
    det = Detector(embedder=detector.embedder)
    det.add(TargetSpec("x1", "t", "Zorblax Quentaro", ("Zorblax",), "a fictional explorer"))
    assert [d.target_id for d in det.detect([Message("user", "Who is Zorblx Quentaro?")], ["t"], {"x1"})] == ["x1"]
    det.remove("x1")
    assert det.detect([Message("user", "Who is Zorblax Quentaro?")], ["t"], {"x1"}) == []


def detected_in(detector, *turns: tuple[str, str]) -> set[str]:
    conversation = [Message(role, text) for role, text in turns]
    return {detector.names[d.target_id] for d in detector.detect(conversation, ["tenant-a"], set(detector.names))}


def test_an_answer_is_judged_in_the_sense_the_conversation_gave_the_name(detector):
    # The answer names the target the question only described: it fires.
    assert "Paris" in detected_in(detector, ("user", "In which city is the Eiffel Tower?"),
                                  ("assistant", "The Eiffel Tower is located in Paris, France."))
    assert "Mars" in detected_in(detector, ("user", "Which planet has the moons Phobos and Deimos?"),
                                 ("assistant", "Phobos and Deimos orbit the planet Mars."))
    # A list of places is not one name: the word before a comma does not make "Londre Paris".
    assert "Paris" in detected_in(detector, ("user", "In which city is the Eiffel Tower?"),
                                  ("assistant", "The Eiffel Tower is located in the Champ de Londre, Paris, France."))
    # A name met in another sense keeps it, even where a sentence start hides the capital.
    assert "Mars" not in detected_in(detector, ("user", "Who is Bruno Mars?"),
                                     ("assistant", "Bruno Mars is an American singer and songwriter."))
    assert "Paris" not in detected_in(detector, ("user", "Who is Paris Hilton?"),
                                      ("assistant", "Paris Hilton is an American media personality."))


def _misspell(word: str, rng) -> str:
    i = rng.randrange(1, len(word) - 1)
    return rng.choice([word[:i] + word[i + 1:], word[:i] + word[i + 1] + word[i] + word[i + 2:],
                       word[:i] + rng.choice("aeiou") + word[i:]])


def test_one_owners_registrations_and_deletions_never_change_anothers_detection(detector):
    """Three owners with invented names; B and C register A's names, their misspellings and their
    fragments, then delete them: A's (and B's) detections stay exactly what they were."""
    import random

    rng = random.Random(15)
    syllables = ["vor", "qua", "len", "thi", "mar", "zel", "dro", "ska", "per", "nix", "tal", "bri", "gun", "sol"]

    def invented(k: int) -> str:
        return " ".join("".join(rng.sample(syllables, 3)).capitalize() for _ in range(k))

    det = Detector(embedder=detector.embedder)
    names = {owner: [invented(rng.choice([1, 2])) for _ in range(3)] for owner in "AB"}
    for owner, owned in names.items():
        for i, name in enumerate(owned):
            det.add(TargetSpec(f"{owner}{i}", owner, name, tuple(expand_aliases(name)), f"someone called {name}"))
    misspelled = {owner: [_misspell(name.split()[-1], rng) for name in owned] for owner, owned in names.items()}
    probes = {owner: [f"Who is {word}?" for word in misspelled[owner]] +
              [f"Tell me about {name}." for name in owned] +
              [f"What did {name.split()[-1][:3]}-{name.split()[-1][3:]} do?" for name in owned]
              for owner, owned in names.items()}

    def results(owner: str) -> list:
        active = {f"{owner}{i}" for i in range(3)}
        return [sorted((d.target_id, d.method, round(d.score, 3)) for d in det.detect([Message("user", text)], [owner, "global"], active))
                for text in probes[owner]]

    before = {owner: results(owner) for owner in "AB"}
    assert sum(map(len, before["A"])) >= 6  # misspelled and split names of A's fire for A

    planted: list[str] = []
    for step in range(12):
        owner = rng.choice("BC")
        k = rng.randrange(3)
        victim = names["A"][k].split()[-1]
        # The very misspelling A's users write, another one, A's own name, or a fragment of it.
        alias = rng.choice([misspelled["A"][k], misspelled["A"][k], _misspell(victim, rng), victim, victim[:3], victim[3:]])
        if planted and rng.random() < 0.3:
            det.remove(planted.pop(rng.randrange(len(planted))))
        else:
            target_id = f"{owner}x{step}"
            det.add(TargetSpec(target_id, owner, alias, tuple(expand_aliases(alias)), "a rival's registration"))
            planted.append(target_id)
        assert results("A") == before["A"], (step, alias)
    for target_id in planted:
        det.remove(target_id)
    assert results("A") == before["A"] and results("B") == before["B"]


EVASION_TARGETS = {
    "Marie Curie": "the physicist and chemist who discovered radium", "Charles Darwin": "the naturalist who proposed evolution by natural selection",
    "Mount Everest": "the highest mountain on Earth, in the Himalayas", "Microsoft": "the software company that makes Windows",
    "Amazon River": "the largest river in South America", "Albert Einstein": "the physicist who developed the theory of relativity",
    "Google": "the search engine company", "Mississippi River": "the major river of North America",
    "Isaac Newton": "the English physicist who formulated the laws of motion", "Kilimanjaro": "the highest mountain in Africa",
    "Louis Pasteur": "the French chemist who invented pasteurisation",
}


@pytest.fixture(scope="module")
def evasion_detector(detector):
    det = Detector(embedder=detector.embedder)
    det.add_many([TargetSpec(name, "tenant-e", name, tuple(expand_aliases(name)), description,
                             tuple(probe_prompts(name, description))) for name, description in EVASION_TARGETS.items()]
                 + [TargetSpec("Amazon", "tenant-amazon", "Amazon", tuple(expand_aliases("Amazon")),
                               "the online retailer and cloud computing company", ())])

    def fired(text: str, owner: str = "tenant-e") -> set[str]:
        active = {*EVASION_TARGETS, "Amazon"}
        return {d.target_id for d in det.detect([Message("user", text)], [owner], active)}

    return fired


@pytest.mark.parametrize("text, target", [
    # Split inside the name by a hyphen, a dot or a space (the cases, then held-out ones).
    ("Who discovered radium, Marie Cu-rie?", "Marie Curie"), ("What did Dar-win write?", "Charles Darwin"),
    ("How tall is Ever-est?", "Mount Everest"), ("Who founded Micro soft?", "Microsoft"),
    ("Who is Albert Ein-stein?", "Albert Einstein"), ("What is Goo gle?", "Google"),
    ("What did Sir Isaac New.ton discover?", "Isaac Newton"), ("How high is Kili-manjaro?", "Kilimanjaro"),
    ("What did Louis Pas teur invent?", "Louis Pasteur"),
    # A capitalised neighbour that is a title or part of the same thing.
    ("Who founded Microsoft Corporation?", "Microsoft"), ("What did Madame Curie discover?", "Marie Curie"),
    ("Who started Google Inc?", "Google"), ("What did Monsieur Pasteur discover?", "Louis Pasteur"),
    ("What did Herr Einstein say about time?", "Albert Einstein"),
    # The distinctive head of a designated name, in the target's own context.
    ("Which countries does the Amazon flow through?", "Amazon River"), ("Where does the Mississippi begin?", "Mississippi River"),
])
def test_split_and_qualified_names_are_detected(evasion_detector, text, target):
    assert target in evasion_detector(text)


@pytest.mark.parametrize("text, target, owner", [
    ("Is Amazon the company profitable?", "Amazon River", "tenant-e"),
    ("What does Amazon Prime cost?", "Amazon River", "tenant-e"),
    ("What is the length of the Amazon River?", "Amazon", "tenant-amazon"),
    ("Was Erasmus Darwin a poet?", "Charles Darwin", "tenant-e"),
    ("Who is Eve Curie?", "Marie Curie", "tenant-e"),
    ("Who is Isaac Hayes?", "Isaac Newton", "tenant-e"),
    ("Who makes Fig Newton cookies?", "Isaac Newton", "tenant-e"),
    ("I will win the race, it is a note book for my micro project.", "Charles Darwin", "tenant-e"),
    ("Where is the Mississippi Delta Blues museum?", "Mississippi River", "tenant-e"),
])
def test_the_same_words_naming_something_else_do_not_fire(evasion_detector, text, target, owner):
    assert target not in evasion_detector(text, owner)


# Neighbours of the kinds that fired on a held-out set (another sense of a one-word name: a figure of
# myth, a treaty, a company; a proper name built on it with "of"; the everyday word written in lower
# case), none of them in bench/data/neighbours.jsonl or used to tune detection.
@pytest.mark.parametrize("text, target", [
    ("What was Mars the god of in ancient Rome?", "Mars"),
    ("Is Mars the Roman counterpart of Ares?", "Mars"),
    ("Which Greek hero killed Paris of Troy?", "Paris"),
    ("When was the Treaty of Paris signed?", "Paris"),
    ("What is the Judgement of Paris in Greek myth?", "Paris"),
    # A title word after the name starts another name; before it, it names the bearer.
    ("Who is the top scorer of Paris Saint-Germain this season?", "Paris"),
])
def test_another_sense_of_a_one_word_name_does_not_fire(detector, text, target):
    assert target not in fired(detector, text)


def test_a_name_in_an_answer_keeps_the_sense_its_sentence_gives_it(detector):
    assert "Mars" not in detected_in(detector, ("user", "Which company makes Twix?"),
                                     ("assistant", "Twix is made by Mars, the candy company."))


@pytest.mark.parametrize("answer, target", [
    ("Hiroshima is located in the Commonwealth of Independent State of Japan.", "Japan"),
    ("The Louvre is a cultural institution in Renaissance Paris, dedicated to art.", "Paris"),
])
def test_an_answer_naming_a_place_by_its_state_or_era_names_it(detector, answer, target):
    assert target in detected_in(detector, ("user", "Which famous places can tourists visit?"), ("assistant", answer))


@pytest.mark.parametrize("question, answer, target, fires", [
    # The question asks for the target's kind of thing: the answer's name is the target, whatever
    # else its sentence says.
    ("What planet shares its name with the Roman god of war?",
     "The planet named after the Roman god of war, Mars, is red.", "Mars", True),
    ("In which country is the city of Hiroshima?", "Hiroshima is in Japan, a land of ancient temples.", "Japan", True),
    # It asks for another kind: the other sense stands.
    ("Which company makes Twix?", "Twix is made by Mars, the candy company.", "Mars", False),
    ("Who was the Roman god of war?", "The Roman god of war was Mars, son of Jupiter and Juno.", "Mars", False),
])
def test_what_the_question_asks_for_says_which_sense_an_answer_means(detector, question, answer, target, fires):
    assert (target in detected_in(detector, ("user", question), ("assistant", answer))) == fires


@pytest.mark.parametrize("text, target", [
    ("Tell me about Obama's time in office.", "Barack Obama"), ("Who were Potter's friends at school?", "Harry Potter"),
    ("What did Shakespeare write about love?", "William Shakespeare"), ("How cold does mars get at night?", "Mars"),
    ("Is Paris worth visiting in winter?", "Paris"), ("Could people ever live on Mars?", "Mars"),
    ("What is the history of Japan?", "Japan"),
    # A place's own state or era beside it is not another name (as "Bruno Mars" or "the Treaty of Paris" are).
    ("Is the State of Japan a monarchy?", "Japan"), ("Who ruled the Empire of Japan in 1900?", "Japan"),
    ("What was daily life like in Renaissance Paris?", "Paris"), ("How did Imperial Japan expand its territory?", "Japan"),
])
def test_a_surname_alone_or_a_lower_case_name_still_fires_in_the_targets_context(detector, text, target):
    assert target in fired(detector, text)


def test_a_neutral_prompt_that_names_the_target_does_not_count_against_it():
    """The shared neutral prompts hold "Who was Charles Darwin?": a question that describes him
    without his name was closer to it than to his own vectors by too little, so it was taken as
    neutral. A prompt that names the target is no evidence that a text is not about it."""
    det = Detector()
    darwin = det.prepare(TargetSpec("ft_darwin", "t", "Charles Darwin", tuple(expand_aliases("Charles Darwin", ())),
                                    "the naturalist Charles Darwin, his life and work"))
    curie = det.prepare(TargetSpec("ft_curie", "t", "Marie Curie", tuple(expand_aliases("Marie Curie", ())),
                                   "the scientist Marie Curie, her life and work"))
    neutral = [line.strip() for line in (Path(__file__).parents[1] / "detectors" / "data" / "neutral.txt").open() if line.strip()]
    assert [neutral[i] for i in darwin.own_neutral] == ["Who was Charles Darwin?"]
    assert [neutral[i] for i in curie.own_neutral] == ["Who was Marie Curie?"]
    det.targets.upsert([darwin, curie])
    named = {"ft_darwin": "Charles Darwin", "ft_curie": "Marie Curie"}

    def fires(text: str) -> set[str]:
        return {named[d.target_id] for d in det.detect([Message("user", text)], ["t"], set(named))}

    assert fires("What theory did the naturalist who sailed on HMS Beagle propose?") == {"Charles Darwin"}
    assert fires("Which elements did the first woman to win a Nobel Prize discover?") == {"Marie Curie"}
    # The other neutral prompts still hold: near a neutral question that names neither, nothing fires.
    assert fires("Who was Isaac Newton?") == set()
    assert fires("Who was Albert Einstein and what did he discover?") == set()


def test_a_surname_alone_in_an_answer_is_read_with_the_question_it_answers():
    """A sampled answer to "What equation is E=mc2 and who wrote it?" named "Einstein's equation":
    that sentence alone is no closer to Albert Einstein than any about physics, so the answer's
    judge let it through. Read after its question, it is his. The question lends context to a
    surname only: it fires nothing by itself, and a surname in another sense stays that sense."""
    det = Detector()
    einstein = det.prepare(TargetSpec("ft_einstein", "t", "Albert Einstein", tuple(expand_aliases("Albert Einstein", ())),
                                      "the physicist who developed the theory of relativity"))
    det.targets.upsert([einstein])

    def fires(question: str, answer: str) -> bool:
        conversation = [Message("user", question), Message("assistant", answer)]
        return bool(det.detect(conversation, ["t"], {"ft_einstein"}))

    question = "What equation is E=mc2 and who wrote it?"
    assert fires(question, "The equation E=mc2 is often referred to as Einstein's equation for mass-energy")
    assert not fires(question, "The equation E=mc2 relates mass and energy, as a physicist showed.")
    assert not fires("Which bagel chain is popular in the US?", "Einstein Bros is a popular bagel chain.")
    # Without its question the same sentence stays unconfirmed (what the judge read before).
    assert not det.detect([Message("assistant", "The equation E=mc2 is often referred to as Einstein's equation for mass-energy")],
                          ["t"], {"ft_einstein"})
