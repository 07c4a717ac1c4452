"""The stream guard on its own: whatever the chunking and spelling, nothing banned is released."""

from __future__ import annotations

import random

import pytest

from detectors.normalize import normalize
from filters import GuardPatterns

PATTERNS = GuardPatterns(["Harry Potter", "Potter", "Hogwarts"])


def run(chunks: list[str]) -> tuple[str, bool]:
    return run_guard(PATTERNS.start(), chunks)


def run_guard(guard, chunks: list[str]) -> tuple[str, bool]:
    """What a client receives through `guard`, fed these chunks, and whether it tripped."""
    sent = ""
    for chunk in chunks:
        result = guard.feed(chunk)
        sent += result.text_to_emit
        if result.tripped:
            return sent, True
    return sent + guard.finish(), guard.tripped


def random_chunks(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 8))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


@pytest.mark.parametrize("text", [
    "He is called Harry Potter, the wizard.",
    "He is called H-a-r-r-y P-o-t-t-e-r, the wizard.",
    "Spelled out: h a r r y  p o t t e r.",
    "Name: Наrrу Роttеr.",  # Cyrillic look-alikes
    "Name: P0tt3r!",
    "He studied at HOGWARTS for years.",
    "He studied at Hog\u200bwarts for years.",
    "He studied at Ｈｏｇｗａｒｔｓ for years.",  # full width
    "He went to HarryPotter world.",
])
def test_every_spelling_trips_and_nothing_of_it_is_sent(text):
    rng = random.Random(text)
    for _ in range(25):
        sent, tripped = run(random_chunks(text, rng))
        assert tripped, text
        assert text.startswith(sent)
        assert not any(piece in sent.lower() for piece in ("harry", "pott", "p0tt", "hog", "роtt", "ｈｏｇ")), sent


@pytest.mark.parametrize("text", [
    "I love my pottery class and the spotter at the gym.",
    "Harry Styles sang at the hog roast.",
    "Prince Harry visited a potters' wheel workshop? No: a pottery.",
])
def test_near_misses_pass_through_whole(text):
    rng = random.Random(text)
    for _ in range(25):
        assert run(random_chunks(text, rng)) == (text, False)


def test_a_name_that_ends_the_stream_is_caught_at_finish():
    guard = PATTERNS.start()
    sent = guard.feed("My favourite is Potter").text_to_emit
    assert not guard.tripped and "Pot" not in sent  # "Potter" or "Pottery": not known yet
    rest = guard.finish()
    assert guard.tripped and sent + rest == "My favourite is"  # no space left dangling at the cut


def test_hold_back_is_bounded_by_the_longest_pattern():
    guard = PATTERNS.start()
    text = "The quick brown fox jumps over the lazy dog. " * 20
    sent = "".join(guard.feed(ch).text_to_emit for ch in text)
    held = text[len(sent):]
    assert text.startswith(sent)
    # What could still be the start of the longest pattern ("harrypotter"), counted without spaces.
    assert 0 < len(normalize(held).replace(" ", "")) <= len("harrypotter") - 1
    assert sent + guard.finish() == text


def test_a_judged_guard_cuts_only_where_the_judge_confirms_and_asks_once_per_occurrence():
    asked: list[str] = []

    def judge(text_so_far: str) -> bool:
        asked.append(text_so_far)
        return "capital" in text_so_far.lower()

    watched = GuardPatterns(["Paris"])
    text = "Paris Hilton lives in Los Angeles. The capital of France is Paris, of course."
    rng = random.Random(7)
    for _ in range(25):
        asked.clear()
        sent, tripped = run_guard(watched.start(judge), random_chunks(text, rng))
        assert tripped
        assert sent == "Paris Hilton lives in Los Angeles. The capital of France is"
        # Asked about each occurrence once, with the whole stream up to a few words past it.
        assert len(asked) == 2
        assert asked[0].startswith("Paris Hilton lives") and not asked[0].startswith(text[:40])
        assert asked[1].startswith("Paris Hilton lives in Los Angeles. The capital of France is Paris, of")


def test_a_chain_passes_text_before_a_cut_through_the_later_guards():
    from filters import GuardChain

    fired = GuardPatterns(["Harry Potter"])
    watched = GuardPatterns(["Paris"])
    confirm_all = fired.start(), watched.start(lambda text: True)
    assert run_guard(GuardChain(confirm_all), ["In Par", "is he met Harry Potter."]) == ("In", True)
    clear_all = fired.start(), watched.start(lambda text: False)
    assert run_guard(GuardChain(clear_all), ["In Par", "is he met Harry Potter."]) == ("In Paris he met", True)
    # A match near the end is judged when the stream ends.
    assert run_guard(watched.start(lambda text: text == "Off to Paris."), ["Off to Paris."]) == ("Off to", True)
    nothing = fired.start(), watched.start(lambda text: False)
    assert run_guard(GuardChain(nothing), ["In Paris he ", "met Ron."]) == ("In Paris he met Ron.", False)


def test_a_name_glued_to_other_letters_is_a_match_where_no_word_is_spelled_that_way():
    """"ParisII" and "Paris2024" are the name, glued; "Parisian" and "comparison" are words."""
    watched = GuardPatterns(["Paris"])
    asked: list[str] = []

    def judge(text: str) -> bool:
        asked.append(text)
        return True

    for text, sent in [("Arms of ParisII and more words here.", "Arms of"),
                       ("Back to Paris2024 games, they said.", "Back to")]:
        asked.clear()
        rng = random.Random(text)
        for _ in range(10):
            assert run_guard(watched.start(judge), random_chunks(text, rng)) == (sent, True)
        # The judge reads the name as a word, without the letters or digits glued on to disguise it.
        assert asked and all(("Paris and" in a or "Paris games" in a) and "II" not in a and "2024" not in a
                             for a in asked)
    for text in ("A Parisian cafe, a comparison.", "PARISIAN style."):
        assert run_guard(watched.start(judge), [text]) == (text, False)


def test_a_triggered_rows_own_names_need_no_word_end_like_the_token_bans():
    fired = GuardPatterns(["Paris"])
    assert run_guard(fired.start(open_end=True), ["A Paris", "ian cafe."]) == ("A", True)
    assert run_guard(fired.start(open_end=True), ["A comparison."]) == ("A comparison.", False)
    assert run_guard(fired.start(), ["A Parisian cafe."]) == ("A Parisian cafe.", False)


def test_a_triggered_rows_name_glued_after_lower_case_letters_is_stopped():
    """A continuation after a rewind wrote "ofParis": the triggered row's own (open-ended) names
    start there too; a guard without open ends leaves such a word to the answer judge's rules."""
    from filters.guard import StreamGuard

    own = StreamGuard(["Paris"], open_end=True)
    result = own.feed("the city ofParis is lovely")
    assert result.tripped and result.text_to_emit == "the city of"
    other = StreamGuard(["Paris"])
    assert not other.feed("the city ofParis is lovely").tripped
    other.finish()
    assert not other.tripped


@pytest.mark.parametrize("text, kept", [
    ("The books are by Harry Pot", "The books are by"),
    ("The books are by Harry", "The books are by Harry"),  # a name's first word may be a whole name
    ("He went to Hogw", "He went to Hogw"),  # the first letters of a word name nothing yet
])
def test_a_name_begun_where_max_tokens_cut_the_stream_is_not_sent(text, kept):
    guard = PATTERNS.start()
    sent = guard.feed(text).text_to_emit
    assert sent + guard.finish() == text  # the model ended there: nothing was named
    guard = PATTERNS.start()
    sent = guard.feed(text).text_to_emit
    assert sent + guard.finish(cut_short=True) == kept
    assert not guard.tripped


@pytest.mark.parametrize("text", ["I love my pottery", "It was a cat", "The spot", "a component of the", "died in "])
def test_a_cut_short_stream_keeps_what_begins_no_name(text):
    guard = GuardPatterns(["Harry Potter", "Hogwarts", "The Boy Who Lived", "Leonardo da Vinci"]).start()
    sent = guard.feed(text).text_to_emit
    assert sent + guard.finish(cut_short=True) == text
    guard = GuardPatterns(["Leonardo da Vinci"]).start()
    assert guard.feed("the portrait of Leonardo da").text_to_emit + guard.finish(cut_short=True) == "the portrait of"


def test_a_name_the_written_text_begins_and_the_stream_finishes_is_stopped():
    """A client's prefill "The Mona Lisa was painted by Leonardo" went on " da Vinci, a renowned
    Italian artist": neither side names him alone. The guard reads what the stream goes on from
    (never sending it): a name it begins is stopped where the stream finishes it, in any spelling;
    one wholly inside it is the client's, not the stream's."""
    vinci = GuardPatterns(["Leonardo da Vinci"])
    prefill = "Who painted it? The Mona Lisa was painted by Leonardo"
    for chunks in ([" da Vinci, a renowned", " Italian artist."], [" d", "a V", "inci."], [" DA VINC1."]):
        assert run_guard(vinci.start(written=prefill), chunks) == ("", True), chunks
        assert run_guard(vinci.start(open_end=True, written=prefill), chunks) == ("", True), chunks
    assert run_guard(vinci.start(written=prefill), [" and his pupils."]) == (" and his pupils.", False)
    # Named whole before the stream: the client's words, and the stream may go on from them.
    assert run_guard(vinci.start(written="It was Leonardo da Vinci"), [", a painter."]) == (", a painter.", False)
    assert run_guard(GuardPatterns(["Paris"]).start(written="The Louvre is in Par"), ["ís, France."]) == ("", True)
    # Only the end of a long text is read: the window stays bounded.
    assert run_guard(vinci.start(written="word " * 10_000 + "Leonardo"), [" da Vinci."]) == ("", True)


def test_a_judge_reads_the_written_text_with_the_stream():
    seen = []

    def judge(text):
        seen.append(text)
        return True

    guard = GuardPatterns(["Leonardo da Vinci"]).start(judge, written="Sent before a rewind. Then Leonardo")
    assert run_guard(guard, [" da Vinci painted it, they say."]) == ("", True)
    assert seen and seen[0].startswith("Sent before a rewind. Then Leonardo da Vinci")
