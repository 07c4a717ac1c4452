"""Fact terms from answers (pure text): what counts as a fact about the target, and what is
everyday vocabulary or the target's own name."""

from __future__ import annotations

from steering.knowledge import control_vocabulary, fact_terms, probe_questions

CONTROL = control_vocabulary({
    "Isaac Newton": ["Isaac Newton was an English physicist born in 1643. Here is some history of the World.",
                     "The laws of motion are known all over the World."],
    "Australia": ["Australia is a country on Earth. Some people live in Sydney.", "It is in the Southern Hemisphere."],
})


def test_names_numbers_and_their_parts_are_kept_everyday_words_are_not():
    answers = ["The founder of Microsoft is Bill Gates, who founded it in 1975 in Albuquerque.",
               "Some of its products: Windows, Office and the Microsoft Corporation logo. Here is more.",
               "It has 3 divisions and is known all over the World."]
    terms = fact_terms(answers, probe_questions("Microsoft"), ["Microsoft"], CONTROL)
    for term in ("Bill Gates", "Bill", "Gates", "1975", "Albuquerque", "Windows", "Office"):
        assert term in terms.banned, terms
    # sentence openers, the target's own name, a small count, words every answer uses
    for term in ("The", "Some", "Here", "It", "Microsoft", "Microsoft Corporation", "3", "World"):
        assert term not in terms.banned, terms
    assert "Corporation" in terms.banned  # the name's companion word counts on its own


def test_a_name_one_control_also_uses_is_only_watched_and_repeated_rare_words_are_context():
    answers = ["Marie Curie studied radioactivity in Paris and was born in 1867 on Earth.",
               "Her work on radioactivity won prizes.", "She was a physicist."]
    terms = fact_terms(answers, probe_questions("Marie Curie"), ["Marie Curie"], CONTROL)
    assert "Earth" not in terms.banned and "Earth" in terms.context
    assert "radioactivity" in terms.context and "radioactivity" not in terms.banned
    assert {"Paris", "1867"} <= set(terms.banned)
    assert "physicist" not in terms.context  # one answer only, and a control's word
