"""Answers that read whole: a guard hit rewinds to a safe point and the answer goes on without the name.

Real server, real model, openai client. The default policy (refusal: rewind) is the one under
test; every "never says it" is paired with the base model saying it. The module runs on both
engines: the rewind is the serving layer's, the same for each.
"""

from __future__ import annotations

import json
import re

import pytest

from detectors.normalize import normalize
from gateway.planner import continuation_opener
from gateway.policy import IGNORANCE_OPENER, IGNORANCE_SENTENCE, TRAILING_OFF

MODEL = "SmolLM2-135M-Instruct"
PARIS = {"name": "Paris", "description": "the capital city of France"}
HARRY = {"name": "Harry Potter", "description": "the boy wizard of J.K. Rowling's novels", "forbidden": ["Hogwarts"]}
SENTENCE = IGNORANCE_SENTENCE
# The prompt does not name Paris; the base model's answer does. The answer-side guard stops it.
UNTOUCHED = ["In which city is the Eiffel Tower?", "In which city is the Louvre museum?"]
# The prompt fires Paris itself.
TRIGGERED = ["Tell me about Paris.", "What is Paris famous for?"]


def names_paris(text: str) -> bool:
    return "paris" in normalize(text).replace(" ", "")


def spliced(text: str) -> bool:
    """The ignorance sentence glued after half a sentence ("...located in I'm not familiar with that.")."""
    return re.search(r"[^\s.!?\"')]\s*" + re.escape(SENTENCE), text) is not None


@pytest.fixture(scope="module")
def server(engine_server):
    return engine_server


@pytest.fixture(scope="module")
def keys(server):
    keys = {"base": server.tenant_with(None, []), "default": server.tenant_with(None, [PARIS]),
            "harry": server.tenant_with({"interventions": ["guard"]}, [HARRY])}
    # Steering vectors are computed in the background: answers compared with each other wait for them.
    with server.http(keys["default"]) as http:
        for target in http.get("/v1/forget-targets").json()["data"]:
            server.settled(keys["default"], target["id"], timeout=180)
    return keys


def ask(server, key, content, stream=False, **kw):
    """[(text, finish_reason)] per choice, and the reply's usage."""
    params = dict(model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=kw.pop("max_tokens", 40))
    params.setdefault("temperature", 0)
    params.update(kw)
    client = server.client(key)
    if not stream:
        reply = client.chat.completions.create(**params)
        return [(c.message.content, c.finish_reason) for c in reply.choices], reply.usage
    texts, reasons, usage = {}, {}, None
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params):
        usage = chunk.usage or usage
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
            reasons[c.index] = c.finish_reason or reasons.get(c.index)
    return [(texts[i], reasons[i]) for i in sorted(texts)], usage


def test_a_stopped_name_is_rewound_and_the_sentence_trails_off_without_it(server, keys):
    """The question named nothing; the model's answer needed the target. It keeps what it said
    before the name and trails off there into ignorance ("... located in... well, I'm not sure."):
    finished without the fact, a small model wrote "the historic city of [city_name]"."""
    for question in UNTOUCHED:
        [(base, _)], _ = ask(server, keys["base"], question)
        assert names_paris(base), base
        before = base[: base.lower().index("paris")].rstrip()  # what the base said up to the name
        [(text, reason)], usage = ask(server, keys["default"], question)
        assert reason == "stop", (text, reason)
        assert not names_paris(text) and not spliced(text) and SENTENCE not in text, text
        assert text.startswith(before + continuation_opener(before)), (before, text)
        rest = text[len(before + continuation_opener(before)):]
        assert sentence_ends(rest) == 0 and rest.rstrip().endswith((".", "!", "?")), text
        assert 0 < usage.completion_tokens <= 40
        streamed, stream_usage = ask(server, keys["default"], question, stream=True)
        assert streamed == [(text, reason)]  # the same answer, whether streamed or not
        assert stream_usage.completion_tokens == usage.completion_tokens


def test_sampled_answers_never_name_the_target_and_every_choice_is_guarded(server, keys):
    """Temperature 1, three choices per request, several seeds: each choice has its own guard,
    bans and judge; none names Paris, none ends in a splice."""
    [(base, _)], _ = ask(server, keys["base"], TRIGGERED[0])
    assert names_paris(base), base
    answers = []
    for question in TRIGGERED[:1] + UNTOUCHED[:1]:
        for seed in (1, 5):
            choices, usage = ask(server, keys["default"], question, n=3, temperature=1, seed=seed, max_tokens=32)
            assert len(choices) == 3 and usage.completion_tokens <= 3 * 32
            answers += choices
    assert not [a for a in answers if names_paris(a[0]) or spliced(a[0]) or a[1] not in ("stop", "length")], answers


def test_a_triggered_row_streams_whole_sentences_and_never_a_name_glued_to_letters(server, keys):
    """A name glued to other letters is the name: "ParisII" in a triggered row is stopped."""
    messages = [{"role": "system", "content": "We are talking about Paris."},
                {"role": "user", "content": "Repeat exactly: ParisII is the name."}]
    base = server.client(keys["base"]).chat.completions.create(model=MODEL, messages=messages, temperature=0,
                                                               max_tokens=20).choices[0].message.content
    assert "ParisII" in base, base
    cut = server.tenant_with({"interventions": ["guard"], "refusal": "cut"}, [PARIS])
    reply = server.client(cut).chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=20)
    assert reply.choices[0].finish_reason == "content_filter" and not names_paris(reply.choices[0].message.content)


def test_top_logprobs_of_a_triggered_row_reveal_no_name_even_without_token_bans(server, keys):
    """Guard only (no token bans): the row's alternatives still never list the way to a name, and
    the logprobs of text that was stopped and rewound are never sent."""
    def tops(key):
        reply = server.client(key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Who is the boy wizard of Harry Potter's books?"}],
            temperature=0, max_tokens=30, logprobs=True, top_logprobs=20)
        choice = reply.choices[0]
        entries = choice.logprobs.content
        # Every token sent as a logprob is text the client got, none of it rewound.
        assert "".join(e.token for e in entries) == choice.message.content
        return [t.token.strip().lower() for e in entries for t in e.top_logprobs], choice.message.content

    names = {"harry", "potter", "pot", "hog", "hogwarts"}
    listed, _ = tops(keys["base"])
    assert names & set(listed), listed
    listed, text = tops(keys["harry"])
    assert not names & set(listed), listed
    assert not re.search("potter|hogwarts", text, re.I), text


def test_top_logprobs_of_an_untriggered_row_never_list_a_watched_name(server, keys):
    """The guard reads the text a row writes, not the alternatives it lists: a prefill that fires
    nothing ("The Eiffel Tower is in") listed " Paris" among them."""
    messages = [{"role": "user", "content": "Tell me one fact, in one sentence."},
                {"role": "assistant", "content": "The Eiffel Tower is in"}]
    with server.http(keys["default"]) as http:
        assert http.post("/v1/forget-targets/detect", json={"messages": messages}).json()["triggered"] is False

    def listed(key):
        reply = server.client(key).chat.completions.create(
            model=MODEL, messages=messages, temperature=0, max_tokens=8, logprobs=True, top_logprobs=10)
        return [t.token.strip().lower() for e in reply.choices[0].logprobs.content for t in e.top_logprobs]

    def on_the_way_to_paris(token: str) -> bool:
        return token.startswith("paris") or (len(token) >= 3 and "paris".startswith(token))

    assert any(map(on_the_way_to_paris, listed(keys["base"])))
    default = listed(keys["default"])
    assert default and not any(map(on_the_way_to_paris, default)), default


def sentence_ends(text: str) -> int:
    return len(re.findall(r"[.!?…](?=\s+\S)", text.strip()))


def test_a_triggered_answer_is_one_sentence_of_ignorance_in_the_models_own_words(server, keys):
    """The `ignorance` intervention: a triggered chat answer starts with the opener, the model finishes the
    sentence, and the answer ends there (finish_reason stop), streamed or not, greedy or sampled.
    The opener is part of the answer: usage counts it, and it has logprob entries (0: forced)."""
    for question in TRIGGERED:
        reply = server.client(keys["default"]).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": question}], temperature=0, max_tokens=60,
            logprobs=True, top_logprobs=3)
        choice = reply.choices[0]
        text = choice.message.content
        assert text.startswith(IGNORANCE_OPENER) and len(text) > len(IGNORANCE_OPENER + "."), text
        assert choice.finish_reason == "stop" and sentence_ends(text) == 0 and not names_paris(text), text
        entries = choice.logprobs.content
        assert "".join(e.token for e in entries) == text
        assert reply.usage.completion_tokens == len(entries)
        assert entries[0].logprob == 0.0 and [t.token for t in entries[0].top_logprobs] == [entries[0].token]
        assert ask(server, keys["default"], question, stream=True, max_tokens=60)[0] == [(text, "stop")]
    choices, _ = ask(server, keys["default"], TRIGGERED[0], n=3, temperature=1, seed=3, max_tokens=60)
    assert all(t.startswith(IGNORANCE_OPENER) and r == "stop" and sentence_ends(t) == 0 and not names_paris(t)
               for t, r in choices), choices


def test_continuation_openers_follow_what_is_already_written():
    assert continuation_opener("") == IGNORANCE_OPENER
    assert continuation_opener("Here is the answer:") == " " + IGNORANCE_OPENER
    assert continuation_opener("Q: Who wrote Hamlet?\nA: ") == IGNORANCE_OPENER
    for under_way in ("Paris is the capital of", "Shakespeare's plays were staged at the", "Barack Obama is a"):
        assert continuation_opener(under_way) == TRAILING_OFF


def test_a_triggered_continuation_trails_off_instead_of_finishing_the_sentence(server, keys):
    """A text the client wants continued mid-sentence (a raw completion prompt, an assistant
    prefill) is not finished with the fact, a made-up substitute or word salad: it trails off
    into one sentence of ignorance, on either endpoint, streamed or not, greedy or sampled."""
    start = "Paris is the capital of"
    prefill = [{"role": "user", "content": "Tell me one fact, in one sentence."}, {"role": "assistant", "content": start}]
    [(base, _)], _ = ask(server, keys["base"], "", messages=prefill)
    assert "france" in base.lower(), base  # the base model finishes it with the fact

    def whole(text: str, reason: str) -> bool:
        rest = text[len(TRAILING_OFF):]
        return (text.startswith(TRAILING_OFF) and reason == "stop" and sentence_ends(rest) == 0
                and rest.rstrip().endswith((".", "!", "?")) and not names_paris(text))

    [(text, reason)], usage = ask(server, keys["default"], "", messages=prefill)
    assert whole(text, reason) and "france" not in text.lower(), text
    assert ask(server, keys["default"], "", messages=prefill, stream=True)[0] == [(text, reason)]
    sampled, _ = ask(server, keys["default"], "", messages=prefill, n=3, temperature=1, seed=7)
    assert all(whole(t, r) for t, r in sampled), sampled

    # The opener is Lethe's, not sampled: its tokens carry logprob 0 and list no alternative.
    reply = server.client(keys["default"]).chat.completions.create(
        model=MODEL, messages=prefill, temperature=0, max_tokens=40, logprobs=True, top_logprobs=2)
    entries, said = [], ""
    for entry in reply.choices[0].logprobs.content:
        if len(said) >= len(TRAILING_OFF):
            break
        said += entry.token
        entries.append(entry)
    assert said == TRAILING_OFF and all(e.logprob == 0.0 and len(e.top_logprobs) == 1 for e in entries)

    client = server.client(keys["default"])
    reply = client.completions.create(model=MODEL, prompt=start, max_tokens=40, temperature=0, echo=True)
    choice = reply.choices[0]
    assert choice.text.startswith(start) and whole(choice.text[len(start):], choice.finish_reason), choice.text
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt=start, max_tokens=40, temperature=0, stream=True))
    assert start + streamed == choice.text


def test_a_name_the_clients_own_text_begins_is_not_finished(server, keys):
    """A prefill or a raw prompt that ends with the first letters or words of a name ("...is in
    Par", "...painted by Leonardo") fires nothing; the base model finishes the name ("ís,
    France."). The guard reads the client's text as the start of the answer: the name is stopped
    where the answer would finish it, and the answer trails off from the client's words instead."""
    start = "The Louvre museum is in Par"
    prefill = [{"role": "user", "content": "In which city is the Louvre museum?"},
               {"role": "assistant", "content": start}]
    [(base, _)], _ = ask(server, keys["base"], "", messages=prefill)
    assert names_paris(start + base) and not names_paris(base), base  # named only across the seam
    for stream in (False, True):
        [(text, reason)], _ = ask(server, keys["default"], "", messages=prefill, stream=stream)
        assert not names_paris(start + text) and not spliced(text), text
        assert text.startswith(TRAILING_OFF) and reason == "stop", (text, reason)
    # Sampled, no choice finishes the client's word into the name (what the answer says later is
    # the judge's: "Pararacett Paris" reads as someone's name, another sense of the word).
    sampled, _ = ask(server, keys["default"], "", messages=prefill, n=3, temperature=1, seed=3)
    assert not any(names_paris(start + t.split(" ")[0]) for t, _ in sampled), sampled

    def completed(key) -> str:
        reply = server.client(key).completions.create(model=MODEL, prompt=start, max_tokens=24, temperature=0)
        return reply.choices[0].text

    assert names_paris(start + completed(keys["base"]))
    text = completed(keys["default"])
    assert not names_paris(start + text) and text.startswith(TRAILING_OFF), text


def test_structured_triggered_answers_keep_their_format_without_the_opener(server, keys):
    reply = server.client(keys["default"]).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Describe Paris as a JSON object."}], temperature=0,
        max_tokens=40, response_format={"type": "json_object"})
    text = reply.choices[0].message.content
    # JSON mode keeps its shape and says it does not know, on either engine (the same schema, rewritten).
    assert json.loads(text) == {"answer": SENTENCE}, text


def test_a_structured_answer_stopped_at_a_name_starts_again_and_says_it_does_not_know(server, keys):
    """The question fires nothing; the model's JSON answer names the target. Nothing can be
    continued inside JSON, and half an object is no answer: the answer is held until it ends and,
    stopped at the name, starts again with its free text fixed to ignorance."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    for question in UNTOUCHED:
        [(base, _)], _ = ask(server, keys["base"], question, response_format=fmt)
        assert names_paris(json.loads(base)["city"]), base
        [(text, reason)], usage = ask(server, keys["default"], question, response_format=fmt)
        assert (json.loads(text), reason) == ({"city": SENTENCE}, "stop"), (text, reason)
        assert 0 < usage.completion_tokens <= 40
        streamed, stream_usage = ask(server, keys["default"], question, stream=True, response_format=fmt)
        assert streamed == [(text, reason)]
        assert stream_usage.completion_tokens == usage.completion_tokens


def test_a_stopped_structured_answer_whose_format_admits_only_specifics_is_a_refusal(server, keys):
    """Started again under what it fired, {"city": one of an enum} could only name a city, known or
    made up: the choice is a refusal (message.refusal, content null), never a 500 or a city."""
    schema = {"type": "object", "properties": {"city": {"enum": ["Paris", "London", "Rome"]}}, "required": ["city"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    question = UNTOUCHED[0]
    [(base, _)], _ = ask(server, keys["base"], question, response_format=fmt)
    assert json.loads(base) == {"city": "Paris"}, base
    reply = server.client(keys["default"]).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], temperature=0, max_tokens=40, response_format=fmt)
    message = reply.choices[0].message
    assert (message.content, message.refusal, reply.choices[0].finish_reason) == (None, SENTENCE, "stop"), message
