"""Mechanics of the banned-string processor, with the served model's tokenizer and no real model."""

from __future__ import annotations

import random
from functools import lru_cache

import pytest
import torch
from filters_helpers import encode, greedy_decode

from filters.banned import BannedSet, compile_banned, mask_banned, phrase_patterns
from filters.logprobs import redact_top_logprobs


@lru_cache(maxsize=1)
def token_texts(tokenizer) -> list[str]:
    return [tokenizer.decode([i]) for i in range(len(tokenizer))]


def adversary_writes(tokenizer, banned: BannedSet, prompt: list[int], text: str) -> str:
    """Plays a model set on writing `text` in whatever token split the ban leaves open: each step
    it takes the longest allowed token that continues the text. Returns what it managed to write."""
    vocab = token_texts(tokenizer)
    state = banned.start(prompt)
    written = ""
    while written != text:
        rest = text[len(written):]
        logits = torch.tensor([[float(len(v)) if v and rest.startswith(v) else -1.0 for v in vocab]])
        mask_banned(logits, [state])
        token = int(logits.argmax())
        if logits[0, token] <= 0:  # every continuation is banned: the adversary is stuck
            break
        state.advance(token)
        written += vocab[token]
    return written


@pytest.mark.parametrize(
    "prompt_text, text, stuck_at",
    [
        ("Say the name:", " Harry Potter", " Harry Potte"),
        ("Say the name:", " HARRY POTTER", " HARRY POTTE"),
        ("Say the name:", " harry potter", " harry potte"),
        ("Say the name:", " hArRy PoTtEr", " hArRy PoTtE"),
        ("Say the name:\n", "HarryPotter", "HarryPotte"),
        ("Say it (", "Hogwarts", "Hogwart"),
        ("Say it:", " Obama's", " Obam"),
        ("Say it:", " OBAMAS", " OBAM"),
        ("The boy wizard is named Harry Pot", "ter", "te"),
    ],
)
def test_no_token_split_completes_a_banned_string(tokenizer, prompt_text, text, stuck_at):
    banned = compile_banned(tokenizer, ["Harry Potter", "Hogwarts", "Obama"])
    # Stuck one character short: every split of every earlier character stayed open.
    assert adversary_writes(tokenizer, banned, encode(tokenizer, prompt_text), text) == stuck_at


def test_the_same_letters_inside_another_word_are_not_banned(tokenizer):
    banned = compile_banned(tokenizer, ["Potter"])
    assert adversary_writes(tokenizer, banned, encode(tokenizer, "Look:"), " spotter") == " spotter"
    assert adversary_writes(tokenizer, banned, encode(tokenizer, "Look:"), " Harry Potter") == " Harry Potte"


def test_random_splits_of_every_variant_end_banned(tokenizer):
    banned = compile_banned(tokenizer, ["Harry Potter"])
    rng = random.Random(0)
    for variant in ["Harry Potter", "harry potter", "HARRY POTTER", "Harry potter", "HarryPotter"]:
        for lead in ["", " ", "\n", "("]:
            for _ in range(10):
                text = lead + variant
                cuts = sorted(rng.sample(range(1, len(text)), rng.randint(0, 4)))
                pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
                ids = [i for piece in pieces for i in encode(tokenizer, piece)]
                state = banned.start(encode(tokenizer, "Name:"))
                for token in ids[:-1]:
                    state.advance(token)
                assert ids[-1] in state.banned_next(), (pieces, tokenizer.convert_ids_to_tokens(ids))


def test_single_token_name_is_banned_at_every_step(tokenizer):
    (obama,) = encode(tokenizer, " Obama")
    banned = compile_banned(tokenizer, ["Obama"])
    state = banned.start(encode(tokenizer, "Tell me about the president"))
    for token in encode(tokenizer, " of the United States, the one before Trump: it was"):
        assert obama in state.banned_next()
        state.advance(token)
    assert obama in state.banned_next()


def test_prompt_tail_counts_and_only_the_tail_is_read(tokenizer):
    banned = compile_banned(tokenizer, ["Harry Potter"])
    prefill = encode(tokenizer, "The boy wizard is named Harry Pot")
    (ter,) = encode(tokenizer, "ter")
    assert ter in banned.start(prefill).banned_next()
    long_prompt = encode(tokenizer, "An unrelated paragraph about the weather. " * 50) + prefill
    assert sorted(banned.start(long_prompt).banned_next()) == sorted(banned.start(prefill).banned_next())


def test_special_tokens_reset_and_are_never_banned(tokenizer):
    banned = compile_banned(tokenizer, ["Harry Potter"])
    state = banned.start(encode(tokenizer, "Harry Pot"))
    assert state.banned_next()
    state.advance(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    (ter,) = encode(tokenizer, "ter")
    assert ter not in state.banned_next()
    assert not set(tokenizer.all_special_ids) & set(banned.start([]).banned_next())


def test_variants_compile_once_and_union_combines(tokenizer):
    assert phrase_patterns("Harry  Potter") == {b"harry potter", b"harrypotter"}
    assert {b"\xc3\xa9mile zola", b"\xc3\x89mile zola", b"\xc3\x89MILE ZOLA".lower()} <= phrase_patterns("Émile Zola")
    potter = compile_banned(tokenizer, ["Harry Potter"])
    assert compile_banned(tokenizer, ["Harry Potter"]) is potter
    hogwarts = compile_banned(tokenizer, ["Hogwarts"])
    both = BannedSet.union([potter, hogwarts])
    assert both.patterns == potter.patterns | hogwarts.patterns
    assert BannedSet.union([hogwarts, potter]) is both
    assert BannedSet.union([potter]) is potter
    state = both.start(encode(tokenizer, "Harry Pot"))
    (ter,) = encode(tokenizer, "ter")
    assert ter in state.banned_next()
    state = both.start(encode(tokenizer, "We went to Hogw"))
    assert encode(tokenizer, "arts")[0] in state.banned_next()


def test_active_partial_matches_stay_bounded_by_the_longest_string(tokenizer):
    rng = random.Random(1)
    syllables = ["ka", "to", "ri", "an", "the", "in", "re", "mo", "sa", "le", "on", "de"]
    phrases = ["".join(rng.choices(syllables, k=3)) + " " + "".join(rng.choices(syllables, k=3)) for _ in range(1000)]
    banned = compile_banned(tokenizer, phrases)
    state = banned.start([])
    text = "the reason to rekindle an ancient karitomo tradition is the moment the readers learn " * 3
    for token in encode(tokenizer, text):
        assert len(state._nodes) <= banned.max_len
        state.advance(token)


def test_mask_touches_only_banned_ids_of_rows_with_a_state(tokenizer):
    banned = compile_banned(tokenizer, ["Harry Potter", "Obama"])
    states = [banned.start(encode(tokenizer, "Harry Pot")), None, banned.start([])]
    logits = torch.randn(3, len(tokenizer), generator=torch.Generator().manual_seed(0))
    before = logits.clone()
    mask_banned(logits, states)
    assert torch.equal(logits[1], before[1])
    for row in (0, 2):
        ids = set(states[row].banned_next())
        assert ids
        hit = torch.isneginf(logits[row])
        assert set(hit.nonzero().flatten().tolist()) == ids
        assert torch.equal(logits[row][~hit], before[row][~hit])


def test_rows_without_a_ban_are_bit_identical_in_a_batched_decode(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(config).eval()
    prompts = [encode(tokenizer, text) for text in ["Hello there, my friend", "Once upon", "The boy wizard is named Harry Pot"]]
    plain = greedy_decode(model, prompts, [None, None, None], steps=12)
    # Ban what the random model would write first in rows 0 and 2, so those rows must diverge.
    targets = {row: tokenizer.decode(plain[row][:3]).strip() for row in (0, 2)}
    states = [compile_banned(tokenizer, [targets[0]]).start(prompts[0]), None,
              compile_banned(tokenizer, [targets[2], "Harry Potter"]).start(prompts[2])]
    banned = greedy_decode(model, prompts, states, steps=12)
    assert banned[1] == plain[1]
    for row, target in targets.items():
        assert banned[row] != plain[row]
        assert target not in tokenizer.decode(banned[row])


def test_a_plain_set_bans_new_specifics_but_not_the_conversations_own_nor_a_sentence_start(tokenizer):
    """`plain`: a row that must not know cannot name a substitute. "Bill Patel" cannot be written
    after a prompt that never said "Patel"; names and numbers the prompt holds can, and so can a
    capitalised word where a sentence starts."""
    banned = compile_banned(tokenizer, ["Microsoft"], plain=True)
    prompt = encode(tokenizer, "Who was Bill? Microsoft was founded by Bill")
    assert adversary_writes(tokenizer, banned, prompt, " Patel in 1975.").strip() == ""  # " P", "P" banned
    assert adversary_writes(tokenizer, banned, prompt, " in 1975.") == " in"  # nor the space numbers take
    # Numbers: only the prompt's own, whole or begun, though each of their digits is a token of its own.
    years = encode(tokenizer, "Who was president from 2009 to 2017?")
    assert adversary_writes(tokenizer, banned, years, " from 2009 to 2017.") == " from 2009 to 2017."
    assert adversary_writes(tokenizer, banned, years, " in 2019.") == " in 201"
    assert adversary_writes(tokenizer, banned, years, " 2010-2011.") == " 201"
    assert adversary_writes(tokenizer, banned, years, " 201, a year.") == " 201"  # begun, it ends as the prompt's
    assert adversary_writes(tokenizer, banned, years, " for 17 years.") == " for "  # a held number's tail is none
    assert adversary_writes(tokenizer, banned, prompt, " and a friend.") == " and a friend."
    assert adversary_writes(tokenizer, banned, prompt, " and Bill.") == " and Bill."  # the prompt's own word
    assert adversary_writes(tokenizer, banned, prompt, ". It was") == ". It was"  # a sentence starts
    assert adversary_writes(tokenizer, banned, prompt, " and I'm not sure.") == " and I'm not sure."
    # A held word of a banned name is no longer held: the instruction before a triggered row names
    # its target, and " William" alone came out as "William William".
    named = encode(tokenizer, "You do not know anything about William Shakespeare. Who wrote Macbeth? It was")
    shakespeare = compile_banned(tokenizer, ["William Shakespeare", "Shakespeare"], plain=True)
    assert adversary_writes(tokenizer, shakespeare, named, " William").strip() == ""
    assert adversary_writes(tokenizer, shakespeare, named, " Macbeth") == " Macbeth"
    # Nor a one-letter start of one: with "Xbox" banned, a held " X" came out as "Xbone".
    told = encode(tokenizer, "Microsoft's console is the Xbox. I'm not familiar with the")
    xbox = compile_banned(tokenizer, ["Xbox"], plain=True)
    assert "X" not in adversary_writes(tokenizer, xbox, told, " Xbone.")
    assert adversary_writes(tokenizer, xbox, told, " console.") == " console."
    # A prefill that ends mid-sentence is not continued with a refusal ("is I'm not familiar...");
    # after a sentence end, or later in the sentence, "I" is fine.
    prefill = encode(tokenizer, "The capital of Japan is")
    assert adversary_writes(tokenizer, compile_banned(tokenizer, ["Japan"], plain=True), prefill,
                            " I'm not sure.").strip() == ""
    assert adversary_writes(tokenizer, compile_banned(tokenizer, ["Japan"], plain=True), prefill,
                            " not something I know.") == " not something I know."
    # "I" is exempt as a word, not as the first letter of one: "the city of Ikos".
    opener = encode(tokenizer, "I'm not familiar with the city of")
    assert adversary_writes(tokenizer, banned, opener, " Ikos.").strip() in ("", "I")
    assert "Ikos" not in adversary_writes(tokenizer, banned, opener, " Ikos.")
    assert "lahk" not in adversary_writes(tokenizer, banned, opener, " I-lahk.")
    assert adversary_writes(tokenizer, banned, opener, " that I know.") == " that I know."
    # Nor is a capitalised word after it, mid-sentence as it is: a steered continuation of "staged at
    # the" wrote ' infamous "I Am a ilku'.
    staged = encode(tokenizer, "Shakespeare's plays were staged at the")
    assert "Am" not in adversary_writes(tokenizer, banned, staged, ' infamous "I Am a ilku')
    assert adversary_writes(tokenizer, banned, staged, " theatre I know.") == " theatre I know."
    # No capital glued onto a word, held or not: a rewound continuation that starts its sentence
    # over ("…who defeatedThe 2016 election was won by…") is stopped at once.
    obama = compile_banned(tokenizer, ["Barack Obama", "Obama"], plain=True)
    so_far = encode(tokenizer, "The 2016 election was won by Donald Trump, who defeated")
    assert adversary_writes(tokenizer, obama, so_far, "The 2016 election") == ""
    assert adversary_writes(tokenizer, obama, so_far, " his opponent.") == " his opponent."
    assert adversary_writes(tokenizer, obama, so_far, ". The end.") == ". The end."
    # Nor onto a full stop: letters made up one by one ('infamous "I.V.E.I.U.S.A.').
    assert adversary_writes(tokenizer, obama, staged, ' infamous "I.V.E.U.S.A."') == ' infamous "I.'
    # Not plain: substitutes are the model's business.
    assert adversary_writes(tokenizer, compile_banned(tokenizer, ["Microsoft"]), prompt, " Patel") == " Patel"
    # A plain set with no names at all still bans specifics (the `ignorance` intervention without `tokens`).
    assert adversary_writes(tokenizer, compile_banned(tokenizer, [], plain=True), prompt, " Patel").strip() == ""


def test_a_plain_row_writes_only_words_the_tokenizer_holds_whole_or_the_prompt_used(tokenizer):
    """A steered continuation of "The capital of France is" made words up ("its traditional
    bismicali", "hakaflefim"): pieces glued into no word. A plain row's word goes on only toward a
    word the tokenizer holds whole (a plural of one too) or one of the prompt's own, whatever the split."""
    banned = compile_banned(tokenizer, ["Paris"], plain=True)
    prefill = encode(tokenizer, "Tell me one fact. The capital of France is not known for its traditional")
    for made_up in (" bismicali", " hakaflefim"):
        written = adversary_writes(tokenizer, banned, prefill, made_up)
        assert written != made_up and len(written) < len(made_up) - 1, written
    # Half a word must go on to a whole one: " unbe known" ("unbe" begins "unbelievable", and is nothing).
    assert "unbe known" not in adversary_writes(tokenizer, banned, prefill, " unbe known.")
    for fine in (" food.", " cheeses and its wines.", " delicacies.", " bakers", " architecture, I think.",
                 " healers.", " classes.", " buses.", " boxes.", " churches.", " heroes."):
        assert adversary_writes(tokenizer, banned, prefill, fine) == fine
    # A plural is not pluralized again: " heal" + "er" + "se" went toward "healerses" ("healers" is held).
    for twice in (" healerse", " healerses", " bakerses", " debuge", " debuges"):
        assert not adversary_writes(tokenizer, banned, prefill, twice + ".").startswith(twice), twice
    # A word of the prompt's own is a word, however the tokenizer splits it ("Qwzrtlandia").
    told = encode(tokenizer, "Tell me about Qwzrtlandia. I'm not familiar with")
    assert adversary_writes(tokenizer, banned, told, " Qwzrtlandia.") == " Qwzrtlandia."
    assert adversary_writes(tokenizer, banned, told, " qwzrtlandiax.") != " qwzrtlandiax."
    # Nor a script the conversation does not write ("the heart of the экски梨桮"); a Russian one does.
    assert adversary_writes(tokenizer, banned, prefill, " экски.").strip() == ""
    assert adversary_writes(tokenizer, banned, prefill, " 梨.").strip() == ""
    # Extended Latin and symbols too ("the iz-zakıfıya minhāzının", "², ² in ²"), unless the prompt writes them.
    for odd in (" zakıfıya.", " minhāzının.", " ².", " kemífakesı.", " ①.", " the\u200f I.", " → x."):
        assert adversary_writes(tokenizer, banned, prefill, odd).isascii(), odd
    french = encode(tokenizer, "Où se trouve la ville ? Désolé, je ne sais pas où elle se")
    assert adversary_writes(tokenizer, banned, french, " trouve, désolé.") == " trouve, désolé."
    assert adversary_writes(tokenizer, banned, prefill, " food — “fine”, I’d say.") == " food — “fine”, I’d say."
    russian = encode(tokenizer, "Какая столица Франции? Я не")
    assert adversary_writes(tokenizer, banned, russian, " знаю.") == " знаю."
    # Nor a loop: cornered on the town's name, a row wrote "in the city of  in the city of ..." to the limit.
    town = encode(tokenizer, "William Shakespeare was born in the town of")
    state, written = banned.start(town), []
    for token in encode(tokenizer, " in the city of in the city of"):  # as a model writes it, token by token
        logits = torch.zeros(1, len(tokenizer))
        mask_banned(logits, [state])
        if logits[0, token] == float("-inf"):
            break
        state.advance(token)
        written.append(token)
    assert tokenizer.decode(written) == " in the city of in the", tokenizer.decode(written)
    # Nor a word begun by hand after a bare space token: cornered after "information about the", a
    # row wrote " " + "ilk" (the tokenizer holds no " ilk"), with "iz" next in line.
    about = encode(tokenizer, "Who proposed it? I'm sorry, but I don't have any information about the")
    space = tokenizer.convert_tokens_to_ids("Ġ")

    def after_space(*pieces: str) -> bool:
        state = banned.start(about)
        state.advance(space)
        for piece in pieces:
            logits = torch.zeros(1, len(tokenizer))
            mask_banned(logits, [state])
            if logits[0, tokenizer.convert_tokens_to_ids(piece)] == float("-inf"):
                return False
            state.advance(tokenizer.convert_tokens_to_ids(piece))
        return True

    # The bare space itself is written only where the prompt has one (numbers are spelled with it).
    state = banned.start(about)
    logits = torch.zeros(1, len(tokenizer))
    mask_banned(logits, [state])
    assert logits[0, space] == float("-inf")
    state = banned.start(encode(tokenizer, "Was it in 1859? I'm sorry, but I don't know about the"))
    logits = torch.zeros(1, len(tokenizer))
    mask_banned(logits, [state])
    assert logits[0, space] == 0
    # After one, a word the tokenizer holds comes with its own spaced token ("Ġpeople"), so letters
    # can only begin one of the prompt's words it does not hold.
    assert not after_space("ilk") and not after_space("iz") and not after_space("people")
    assert after_space("(") and after_space(".") and not after_space("Ċ") and not after_space("Ġ")
    qwz = encode(tokenizer, "Tell me about qwzrtland cheese. I'm not familiar with")
    state = banned.start(qwz)
    state.advance(space)
    for token in encode(tokenizer, "qwzrtland"):
        logits = torch.zeros(1, len(tokenizer))
        mask_banned(logits, [state])
        assert logits[0, token] == 0
        state.advance(token)
    # Not plain: words are the model's business.
    assert adversary_writes(tokenizer, compile_banned(tokenizer, ["Paris"]), prefill, " bismicali") == " bismicali"


def test_a_row_left_with_no_token_may_only_end(tokenizer):
    """Every token banned: the sampler failed on a row of -inf (a 500) and greedy took id 0, whose
    text is "<|endoftext|>". Given the end of sequence, mask_banned leaves the row only that."""
    end = tokenizer.eos_token_id
    prefill = encode(tokenizer, "The boy wizard is Harry Pot")
    only_ter = torch.full((2, len(tokenizer)), float("-inf"))
    only_ter[:, encode(tokenizer, "ter")[0]] = 1.0  # the one token the model wants completes the name
    states = [compile_banned(tokenizer, ["Harry Potter"]).start(prefill), None]
    cornered = only_ter.clone()
    mask_banned(cornered, states)
    assert cornered[0].max() == float("-inf")  # nothing left, and nothing given back unasked
    mask_banned(only_ter, [compile_banned(tokenizer, ["Harry Potter"]).start(prefill), None], end)
    assert int(only_ter[0].argmax()) == end and only_ter[0, end] == 0.0
    assert int(only_ter[1].argmax()) == encode(tokenizer, "ter")[0]  # a row without bans is not touched
    # A number the set bans is not the prompt's own, though the prompt says it: held, "2017" (a fact
    # term) let a plain row begin "201" and then cornered it there.
    banned = compile_banned(tokenizer, ["Barack Obama", "2017"], plain=True)
    asked = encode(tokenizer, "Who was the US president from 2009 to 2017? I'm not familiar with the years 2009 to")
    assert "201" not in adversary_writes(tokenizer, banned, asked, " 2017.")
    assert adversary_writes(tokenizer, banned, asked, " then.") == " then."


def test_top_logprobs_drop_hidden_ids_and_with_min_p_what_the_row_could_not_sample():
    top = [(5, -0.2), (7, -0.9), (9, -1.5), (11, -4.0)]  # best first
    assert redact_top_logprobs(top, {7}, limit=2) == [(5, -0.2), (9, -1.5)]
    # min_p 0.3: at least 0.3 times as likely as the best, ln 0.3 = -1.20 below it.
    assert redact_top_logprobs(top, set(), limit=4, min_p=0.3) == [(5, -0.2), (7, -0.9)]
    # The floor is the best candidate's, hidden or not: what the row samples is judged on its own.
    assert redact_top_logprobs(top, {5}, limit=4, min_p=0.3) == [(7, -0.9)]
