"""Safe points: a triggered row sends whole sentences, and under `ignorance` ends after the first."""

from __future__ import annotations

from filters.safepoints import SafePoints


def test_text_is_let_out_at_sentence_ends_only():
    hold = SafePoints()
    assert hold.feed("The tower is in") == ""
    assert hold.feed(" a city. It is") == "The tower is in a city."
    assert hold.feed(" tall.\n") == " It is tall.\n"
    assert hold.sentences == 2 and not hold.complete


def test_a_sentence_limit_ends_the_text_and_drops_what_follows_however_it_arrives():
    piecewise = SafePoints(max_sentences=1)
    sent = "".join(piecewise.feed(p) for p in ["I'm not", " sure", " where", " that is", ".", " It", " is in"])
    assert sent == "I'm not sure where that is." and piecewise.complete
    assert piecewise.feed(" more. And more. ") == "" and piecewise.flush() == ""
    # A guard may release two sentences at once, at the end of the answer.
    at_once = SafePoints(max_sentences=1)
    assert at_once.feed("I'm not familiar with that. I'm not familiar with that. ") == "I'm not familiar with that."
    assert at_once.flush() == ""


def test_a_line_break_with_no_words_before_it_ends_no_sentence():
    hold = SafePoints(max_sentences=1)
    assert hold.feed("\n\n") == "\n\n" and not hold.complete
    assert hold.feed("Not sure.\n") == "Not sure." and hold.complete


def test_no_limit_keeps_everything():
    hold = SafePoints()
    text = "One. Two. Three"
    assert hold.feed(text) + hold.flush() == text


def test_the_words_before_the_text_count_toward_its_first_sentence():
    """An opener the model finishes: a "." right after it ends the sentence it began."""
    finished = SafePoints(max_sentences=1, after="... well, I'm not sure")
    assert finished.feed(". I'm not sure what to expect. ") == "." and finished.complete
    # After a whole sentence (a rewound answer's safe point) the next one still has to have words.
    fresh = SafePoints(max_sentences=1, after="It is tall. ")
    assert fresh.feed(". Next one. Two. ") == ". Next one." and fresh.complete
