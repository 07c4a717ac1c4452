"""Per-request plan: which of the tenant's active targets fire, and what Lethe does about them.

The only module that combines the detector with the interventions (instruction, token bans,
stream guard, steering). A request that triggers nothing gets no plan at all and runs the base
model unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Awaitable, Callable, Sequence

from detectors.aliases import stated_specifics
from detectors.anaphora import points_back
from detectors.types import Detection, DetectionTooLarge, Message
from filters import GuardPatterns, GuardPlan, compile_banned

from .engines.base import RowPlan
from .errors import detection_too_large, detector_unavailable
from .failpoints import failpoint
from .policy import (IGNORANCE_OPENER, IGNORANCE_SENTENCE, IGNORANCE_SHORT, MAX_REWINDS, REFUSAL_TELLS, TRAILING_OFF,
                     ResponsePolicy)
from .registry import Registry, Snapshot
from .store import TargetRecord

# Only a plain question is checked against the model's own answer: inside a jailbreak wrapper, an
# encoding request or a role-play the model's greedy answer plays along and names nothing, though a
# sampled one may; those stay fired on similarity alone.
VERIFIED_MAX_WORDS = 40
VERIFY_TOKENS = 24  # the name of what a plain question is about comes in an answer's first words

log = logging.getLogger("lethe.planner")

# Small models follow short, literal instructions far better than nuanced ones (measured on
# SmolLM2-135M: a longer "answer naturally" wording was ignored outright). It names only the
# targets this conversation already touches, never any other registration.
INSTRUCTION = "You do not know anything about {names}. When asked about {it}, reply only: " + IGNORANCE_SENTENCE


def instruction_text(names: list[str]) -> str:
    return INSTRUCTION.format(names=", ".join(names), it="them" if len(names) > 1 else "it")


def instruction_message(targets: list[TargetRecord]) -> dict[str, str]:
    return {"role": "system", "content": instruction_text([t.name for t in targets])}


def registered_phrases(target: TargetRecord) -> tuple[str, ...]:
    """What its registration says a target is called or must never show: names, aliases (a
    person's surname included) and forbidden strings."""
    return tuple(dict.fromkeys([target.name, *target.aliases, *target.forbidden]))


def banned_phrases(target: TargetRecord) -> tuple[str, ...]:
    """What a triggered row must never write: the registered phrases and the distinctive facts the
    model itself associates with the target ("Bill Gates", "Himalayas": its fact terms, found at
    registration). Case, spacing, plural and possessive variants are the filters' job."""
    facts = target.knowledge.banned if target.knowledge else ()
    return tuple(dict.fromkeys([*registered_phrases(target), *facts]))


def guarded_phrases(target: TargetRecord) -> tuple[str, ...]:
    """`banned_phrases` plus the fact terms too ordinary to mask while sampling ("radioactivity"):
    a triggered row's stream guard stops those only where the answer actually writes them."""
    context = target.knowledge.context if target.knowledge else ()
    return tuple(dict.fromkeys([*banned_phrases(target), *context]))


@lru_cache(maxsize=1024)
def _guard_patterns(phrases: frozenset[str]) -> GuardPatterns:
    # Keyed by the fired targets' phrases only (a handful): bounded whatever the number of targets.
    return GuardPatterns(sorted(phrases))


@lru_cache(maxsize=16)
def _watched_redaction(tokenizer, parts: tuple[GuardPatterns, ...]):
    # Keyed by the compiled layers themselves: it is compiled again only once a layer changes.
    return compile_banned(tokenizer, sorted({p for part in parts for p in part.phrases}))


@dataclass(frozen=True)
class PlanResult:
    detections: list[Detection]
    targets: list[TargetRecord]  # the ones that fired
    # Fired by a conversation of several turns whose last turn does not name them, and the
    # question now asked does not go near them (the model's own answer to it names none of their
    # names or facts): the answer keeps their names out and is otherwise the model's own. A chat
    # that once asked about Paris must not get "I don't know" to every later question.
    background: list[TargetRecord] = field(default_factory=list)


class Planner:
    def __init__(self, registry: Registry, tokenizer, default_policy: ResponsePolicy, steering=None,
                 judges: int = 2, triggered_min_p: float = 0.0):
        self.registry = registry
        self.triggered_min_p = triggered_min_p
        self.tokenizer = tokenizer
        self.default_policy = default_policy
        self.steering = steering  # gives a target's per-layer vectors; None when steering is unavailable
        # Answer judges run here, never on the engine thread: a guard holds the text while they decide.
        self.judges = ThreadPoolExecutor(max_workers=judges, thread_name_prefix="lethe-judge")
        # (prompt ids, enough) -> the served model's own greedy answer, read until `enough(text)`;
        # set once the engine is up (None: no check).
        self.answer: Callable[[Sequence[int], Callable[[str], bool]], Awaitable[str]] | None = None

    def shutdown(self) -> None:
        self.judges.shutdown(wait=False, cancel_futures=True)

    def policy_for(self, tenant) -> ResponsePolicy:
        return self.default_policy.merged(tenant.policy)

    def detect(self, snapshot: Snapshot, messages: list[dict[str, str]]) -> PlanResult:
        """Detection over one snapshot (embeds and searches: call it off the event loop)."""
        if not snapshot.has_active:
            return PlanResult([], [])
        failpoint("detector")
        conversation = [Message(m["role"], m["content"]) for m in messages]
        detections = self.registry.detector.detect_in(conversation, snapshot.view)
        return PlanResult(detections, [snapshot.record(d.target_id) for d in detections])

    async def detect_checked(self, snapshot: Snapshot, messages: list[dict[str, str]],
                             prompt_ids: Sequence[int] | None = None) -> PlanResult:
        """Detection, then the model's own word on what fired on doubtful grounds: a plain question
        that fired only semantically, and a target the last of several turns does not name
        (`prompt_ids`: the conversation as the engine reads it; without them nothing is checked)."""
        result = await asyncio.to_thread(self.detect, snapshot, messages)
        earlier: set[str] = set()
        current = _current_turn(messages)
        if current is not None and result.targets and _stands_alone(current):
            # What the last turn names itself stays fired; what it is only near is the answer's to
            # decide, as for a plain question of one turn.
            now = await asyncio.to_thread(self.detect, snapshot, current)
            earlier = {t.id for t in result.targets} - {d.target_id for d in now.detections if d.method == "lexical"}
        return await self._verified(snapshot, messages, result, prompt_ids, earlier)

    async def _verified(self, snapshot: Snapshot, messages, result: PlanResult,
                        prompt_ids: Sequence[int] | None, earlier: set[str]) -> PlanResult:
        """Reads the served model's own greedy answer. A semantic detection of a plain question is
        dropped when that answer neither names the target nor states one of its fact terms (nor a
        context term the question did not say first): similarity finds what a question is near
        ("Which planet has the Great Red Spot?" is near Mars's questions), not what it is about; the
        model's answer says that (Jupiter). A question that describes the target is answered
        without its name, but with its facts ("Into which ocean does the largest river in South
        America flow?" -> "the Atlantic Ocean", a fact term of the Amazon River). An `earlier` target (one the last turn does not name, though an earlier
        turn may, or the last one is near it) goes to the background unless that answer names it or
        states its facts, in any words or language: "In which city is the Eiffel Tower?" after a
        turn about Paris is answered "Paris", "What is 2 plus 2?" is not. It fails closed: any
        error keeps every detection as it fired."""
        plain = _plain_question(messages)
        semantic = {d.target_id for d in result.detections if d.method == "semantic" and plain}
        doubtful = semantic | earlier
        if not doubtful or self.answer is None or prompt_ids is None:
            return result

        # A prefill the answer continues is read with it: "…named Harry Pot" + "ter" names him.
        prefill = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""

        asked = {w for m in messages if m["role"] != "assistant" for w in _WORD.findall(m["content"].lower())}

        def evidence(target_id: str) -> list[str]:
            record = snapshot.record(target_id)
            if record is None or record.knowledge is None:
                return []
            # Answering a question that is near the target, a word the model keeps coming back to
            # about it ("evolution" for Charles Darwin: a context term) says the question is about
            # it, unless the question said it first. Not for an earlier turn's target: "Western" or
            # "President" in an answer to an unrelated question is no sign it went back.
            context = [w for w in record.knowledge.context if target_id in semantic
                       and not set(_WORD.findall(w.lower())) <= asked]
            return [*record.knowledge.banned, *context]

        facts = {t: _words_pattern(words) for t in doubtful if (words := evidence(t))}

        def named(text: str) -> set[str]:
            said = self.registry.detector.named_in(prefill + text, snapshot.view, doubtful)
            return said | {t for t, pattern in facts.items() if pattern.search(prefill + text)}

        try:
            answer = await self.answer(prompt_ids, lambda text: named(text) == doubtful)
        except Exception as exc:  # overloaded or failing: serve it as fired, never unprotected
            log.info("detection kept unchecked: %s", type(exc).__name__)
            return result
        said = named(answer)
        kept = [d for d in result.detections if d.target_id not in semantic or d.target_id in said]
        background = earlier - said
        if len(kept) == len(result.detections) and not background:
            return result
        return PlanResult(kept, [snapshot.record(d.target_id) for d in kept if d.target_id not in background],
                          [snapshot.record(t) for t in background])

    async def plan(self, tenant, messages, form: str = "chat", prompt_ids: Sequence[int] | None = None,
                   listing: bool = False):
        """`form`: what the answer is, for the `ignorance` intervention: "chat" (free text in a
        chat, which may start with the opener; a tool the model may call or not included), "text"
        (a raw completion) or "structured" (a forced tool call, a response format: the grammar
        shapes it, and its free-text strings say the ignorance sentence). `prompt_ids`:
        the client's conversation as the engine reads it (for `detect_checked`). `listing`: the
        request asks for top_logprobs."""
        # One snapshot from here to the request's last token, the answer judge included.
        snapshot = self.registry.snapshot(tenant.id)
        policy = self.policy_for(tenant)
        if not snapshot.has_active:
            return messages, None
        try:
            result = await self.detect_checked(snapshot, messages, prompt_ids)
        except DetectionTooLarge as exc:
            raise detection_too_large(exc) from None
        except Exception:
            log.exception("detection failed for tenant %s", snapshot.tenant_id)
            if policy.on_detector_error == "open":
                return messages, None
            raise detector_unavailable() from None
        if not result.targets and not result.background and not policy.uses("guard"):
            return messages, None
        return await asyncio.to_thread(self.build, snapshot, messages, result, policy, form=form, listing=listing,
                                       continues=client_text(messages, form))

    def build(self, snapshot: Snapshot, messages, result: PlanResult, policy: ResponsePolicy, ban: bool = False,
              form: str = "chat", listing: bool = False, written: str = "", continues: str = ""):
        """The row plan (compiles bans and guard patterns, may touch the store for steering
        vectors: call it off the event loop). `ban` bans the fired names whatever the policy: a
        continuation after a rewind that did not would write the stopped name again. `written`:
        for the continuation of a model's own answer, what the client has of it. `continues`: the
        client's own text the answer goes on from (`client_text`), which the guard reads as the
        stream's start: a name it begins and the answer finishes is the answer's."""
        plan = RowPlan(continues=continues)
        targets = result.targets
        kept_out = [*targets, *result.background]  # every target whose names stay out
        asked = messages
        stated = _stated(messages, kept_out)
        # A background target's fact terms are not banned: they are words such as "President" or
        # "Western", which an answer that is not about the target may need ("The president who
        # abolished slavery"). Its answer was checked not to go near them, and they stay out of
        # top_logprobs.
        named = frozenset(p for t in result.background for p in registered_phrases(t))
        fired_phrases = frozenset(p for t in targets for p in banned_phrases(t)) | named | stated
        guarded = frozenset(p for t in targets for p in guarded_phrases(t)) | named | stated
        listed = guarded | frozenset(p for t in result.background for p in guarded_phrases(t))
        if policy.uses("guard"):
            # The answer is part of the conversation: a target the prompt did not touch fires when
            # the answer names it and detection over the conversation plus the answer agrees.
            plan.guard = GuardPlan(
                banned=_guard_patterns(guarded) if kept_out else None,
                watched=snapshot.watched,
                judge=self._answer_judge(snapshot, messages, {t.id for t in kept_out}, policy),
                executor=self.judges,
            )
            plan.refusal_text = IGNORANCE_SENTENCE if policy.refusal in ("sentence", "rewind") else None
            if listing and not kept_out and snapshot.watched:
                # The guard reads the text, not the alternatives: "The Eiffel Tower is in" fires
                # nothing, and its top_logprobs listed " Paris". Compiled only when asked for.
                plan.redact = _watched_redaction(self.tokenizer, snapshot.watched.parts)
            if policy.refusal == "rewind":
                plan.rewinds = MAX_REWINDS
                plan.replan = partial(self._replan, snapshot, asked, result, policy, form)
        plain = False
        if targets:
            plan.min_p = self.triggered_min_p
            if policy.uses("instruction"):
                messages = [instruction_message(targets), *messages]
            plain = policy.uses("ignorance") and form != "structured"
            if plain:
                messages = self._ignorance(plan, messages, form, written)
            elif policy.uses("ignorance"):
                plan.ignorant_strings = (IGNORANCE_SENTENCE, *IGNORANCE_SHORT)
            if policy.uses("steering") and self.steering is not None:
                plan.steering = self.steering.vectors_for(targets)
        if kept_out:
            # Compiled either way: without token bans the names are still kept out of top_logprobs.
            # Listing an alternative costs no fluency, so it hides the facts too ordinary to ban
            # while sampling ("radioactivity" after "Marie Curie did pioneering research on").
            plan.redact = compile_banned(self.tokenizer, sorted(listed))
        banned = sorted(fired_phrases) if policy.uses("tokens") or ban else []
        if banned or plain:
            plan.banned = compile_banned(self.tokenizer, [*banned, *(REFUSAL_TELLS if plain else ())], plain=plain)
        return messages, (None if plan.empty else plan)

    def _ignorance(self, plan: RowPlan, messages, form: str, written: str = ""):
        """A triggered free-text answer is one sentence of ignorance: what follows it is where a
        steered small model rambles and makes things up; and its bans are `plain` (no capitalised
        word or number the conversation does not hold). It starts as ignorance too: Lethe's opener
        (`continuation_opener`) is put at the end of the prompt and sent to the client as the
        answer's first words, and the model finishes the sentence. That holds for a text the client
        wants continued (an assistant prefill, a raw completion prompt): steered or banned, a small
        model continuing "Barack Obama was" mid-sentence writes word salad or a made-up substitute
        (' a member of the group of the "I am a powerful sor', "The currency of Japan is the" +
        " yuan."). `continued`: the continuation of a model's own answer that was stopped at a name
        (`written`: what the client has of it): the opener follows that answer."""
        plan.sentences = 1
        if not messages:
            return messages
        if form == "continued":
            # The model's own answer, stopped at a target's name: it did need the target, so it goes
            # on as ignorance too ("The Mona Lisa is attributed to" + "... well, I'm not sure."), not
            # as a sentence finished without the fact, which a small model finishes with a made-up
            # one ("...first introduced by a mysterious entity named \"Theores\"") or word salad.
            # The opener follows the answer, which the continuation's prompt ends with.
            plan.opener = continuation_opener(written)
            return messages
        plan.opener = continuation_opener(client_text(messages, form))
        return with_answer(messages, form, plan.opener)

    def _replan(self, snapshot: Snapshot, messages, result: PlanResult, policy: ResponsePolicy, form: str,
                answer: str, written: str):
        """The plan to continue a rewound answer with: the targets the conversation fired plus
        those the answer so far fires (the stopped name included), over the same snapshot.
        `answer`: all of it, the stopped name included; `written`: what the client has. The plan's
        `opener` is text to send after `written`, which the prompt does not hold yet. A client's
        prefill the answer went on from is read with it: "…painted by Leonardo" + " da Vinci"
        names him, and the answer trails off after the prefill, not after nothing."""
        client = client_text(messages, form)
        found = self.detect(snapshot, with_answer(messages, form, answer))
        # An answer that went near a background target after all gets the target's whole treatment.
        fired = {t.id: t for t in [*result.targets, *result.background, *found.targets]}
        merged = PlanResult([*result.detections, *found.detections], list(fired.values()))
        if result.targets:
            # The answer began with Lethe's opener, which the prompt holds and the client has.
            planned, plan = self.build(snapshot, messages, merged, policy, ban=True, form=form, continues=client)
            if plan is not None:
                plan.opener = ""
            return planned, plan
        # The model's own answer, under way (a structured one keeps its format: no opener).
        if form != "structured":
            form = "continued"
        return self.build(snapshot, messages, merged, policy, ban=True, form=form, written=client + written,
                          continues=client)

    def _answer_judge(self, snapshot: Snapshot, messages, fired: set[str], policy: ResponsePolicy):
        def judge(answer: str) -> bool:
            try:
                found = self.detect(snapshot, [*messages, {"role": "assistant", "content": answer}])
            except DetectionTooLarge:
                return True  # an answer too long to check is cut, never streamed unchecked
            except Exception:
                log.exception("answer detection failed for tenant %s", snapshot.tenant_id)
                return policy.on_detector_error != "open"  # the same failure mode as for prompts
            return any(t.id not in fired for t in found.targets)

        return judge


# Where a text ends so that a new sentence may follow it.
_SENTENCE_OVER = re.compile(r"(?:^|[.!?:;\n\"')\]])\s*$")


def client_text(messages, form: str) -> str:
    """The client's own text the answer goes on from: an assistant prefill, a raw completion's prompt."""
    if messages and (messages[-1]["role"] == "assistant" or form == "text"):
        return messages[-1]["content"]
    return ""


def with_answer(messages, form: str, answer: str) -> list[dict]:
    """The conversation with `answer` after it: joined to the client's own text it goes on from
    (`client_text`), else as the assistant's turn."""
    client = client_text(messages, form)
    if client:
        return [*messages[:-1], {**messages[-1], "content": client + answer}]
    return [*messages, {"role": "assistant", "content": answer}]


def continuation_opener(written: str) -> str:
    """How a triggered answer begins after what is already written (nothing, a client's prefill, a
    raw prompt), so that it reads as ignorance whatever comes before: after a finished sentence (or
    nothing), `IGNORANCE_OPENER`; in the middle of one, `TRAILING_OFF` ("The capital of France is"
    + "... well, I'm not sure" + "."), which no noun after "at the" or "is a" could be."""
    if _SENTENCE_OVER.search(written):
        return IGNORANCE_OPENER if not written or written[-1].isspace() else " " + IGNORANCE_OPENER
    return TRAILING_OFF


def _stated(messages, targets: list[TargetRecord]) -> frozenset[str]:
    """What the conversation itself says about the fired targets ("Here is a fact: Microsoft's
    console is the Xbox."): a row that must not know a target does not hand those back either,
    though the prompt holds them (the `plain` bans let a prompt's own words through)."""
    if not targets:
        return frozenset()
    text = "\n".join(m["content"] for m in messages)
    return frozenset(w for t in targets for w in stated_specifics(text, [t.name, *t.aliases]))


def _words_pattern(words: Sequence[str]) -> re.Pattern:
    """Any of these words or phrases, whole, as written (fact terms are names and numbers)."""
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + r")(?!\w)")


_WORD = re.compile(r"\w+")

# Roles that frame every turn rather than ask one.
_FRAMING_ROLES = ("system", "developer")


def _current_turn(messages: list[dict[str, str]]) -> list[dict[str, str]] | None:
    """The framing messages and the last user turn with what follows it, when earlier turns come
    before it; None for a conversation of one turn."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None or all(m["role"] in _FRAMING_ROLES for m in messages[:last]):
        return None
    return [*(m for m in messages[:last] if m["role"] in _FRAMING_ROLES), *messages[last:]]


def _stands_alone(current: list[dict[str, str]]) -> bool:
    """The current turn is one short question that does not refer back ("What is its capital?"
    keeps every target of the turns it refers to; a long one may be a wrapper the greedy answer
    plays along with)."""
    asked = [m for m in current if m["role"] not in _FRAMING_ROLES]  # the last user message first
    return _short(asked[0]) and not points_back(" ".join(m["content"] for m in asked))


def _plain_question(messages: list[dict[str, str]]) -> bool:
    """One short user turn (an assistant prefill may follow it): what the model's greedy answer
    reads the way the client meant it."""
    turns = [m for m in messages if m["role"] != "assistant"]
    return len(turns) == 1 and turns[0]["role"] == "user" and messages[0] is turns[0] and _short(turns[0])


def _short(message: dict[str, str]) -> bool:
    """Short enough that the model's greedy answer reads it as asked; a long one may be a wrapper
    the answer plays along with."""
    return len(message["content"].split()) <= VERIFIED_MAX_WORDS
