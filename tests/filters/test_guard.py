"""The stream guard on its own: whatever the chunking and spelling, nothing banned is released."""

from __future__ import annotations

import random

import pytest

from detectors.normalize import normalize
from filters import GuardPatterns

PATTERNS = GuardPatterns(["Harry Potter", "Potter", "Hogwarts"])


def run(chunks: list[str]) -> tuple[str, bool]:
    guard = PATTERNS.start()
    sent = ""
    for chunk in chunks:
        result = guard.feed(chunk)
        sent += result.text_to_emit
        if result.tripped:
            return sent, True
    sent += guard.finish()
    return sent, guard.tripped


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
    assert guard.tripped and sent + rest == "My favourite is "


def test_hold_back_is_bounded_by_the_longest_pattern():
    guard = PATTERNS.start()
    text = "The quick brown fox jumps over the lazy dog. " * 20
    sent = "".join(guard.feed(ch).text_to_emit for ch in text)
    held = text[len(sent):]
    assert text.startswith(sent)
    # What could still be the start of the longest pattern ("harrypotter"), counted without spaces.
    assert 0 < len(normalize(held).replace(" ", "")) <= len("harrypotter") - 1
    assert sent + guard.finish() == text
