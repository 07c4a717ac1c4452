"""One row's output side, shared by every engine: from sampled token ids to GenerationOutputs.

An engine decides *which* token a row gets (its forward pass, steering and token bans); what
happens to that token afterwards is the same whatever produced it: incremental detokenization,
stop strings, the stream guard holding back and cutting, logprobs held until their text has been
sent (and redacted when the row bans strings), and the finish reason. Keeping this in one class is
what makes the HF and vLLM engines answer the same request with the same bytes.

When the guard stops a name, the row ends where the policy says: a bare `content_filter` cut, the
ignorance sentence, or a rewind: the text since the row's last safe point (held back, never
sent) is dropped and the row ends with `finish_reason "rewind"` and a `Resume`, from which the
serving layer continues the answer as a new request. Whichever engine runs the rows, the rewind
is the same code.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Callable

from filters import redact_top_logprobs
from filters.safepoints import SafePoints

from .base import GenerationOutput, GenerationRequest, Resume, RowPlan, TokenLogprob, TopLogprob, refusal_ending
from .text import IncrementalDetokenizer, StopStringMatcher
from .tokens import TokenBytes

log = logging.getLogger("lethe.engine")

# Given the ids a row must not list and its min_p floor, the chosen token's logprob entry
# (engine-specific source).
LogprobFn = Callable[[set[int], float], TokenLogprob]


def collect_eos_ids(*sources) -> list[int]:
    """Every end-of-sequence id named by the generation config, model config or tokenizer."""
    ids: list[int] = []
    for source in sources:
        value = getattr(source, "eos_token_id", None)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and v not in ids:
                ids.append(int(v))
    return ids


@dataclass
class TokenCodec:
    """What a row needs to know about the model's vocabulary."""

    tokenizer: object
    token_bytes: TokenBytes
    eos_ids: list[int]
    max_model_len: int

    def top(self, token: int, logprob: float) -> TopLogprob:
        raw = self.token_bytes(token)
        return TopLogprob(raw.decode("utf-8", errors="replace"), max(logprob, -9999.0), list(raw))

    def entry(self, token: int, logprob: float, candidates: list[tuple[int, float]], hidden: set[int],
              top_n: int, min_p: float = 0.0) -> TokenLogprob:
        """A logprob entry from (id, logprob) candidates, best first; hidden ids are never listed, nor,
        with `min_p`, candidates the row could not sample."""
        kept = redact_top_logprobs(candidates, hidden, top_n, min_p) if top_n else []
        chosen = self.top(token, logprob)
        return TokenLogprob(chosen.token, chosen.logprob, chosen.bytes, [self.top(t, v) for t, v in kept])


@dataclass
class RowStream:
    request: GenerationRequest
    emit: Callable[[GenerationOutput], None]
    codec: TokenCodec
    plan: RowPlan = field(default_factory=RowPlan)
    ban_state: object | None = None
    redact_state: object | None = None  # what hides banned names from top_logprobs (the ban state, if any)
    guard: object | None = None
    hold: SafePoints | None = None  # a row that may rewind sends whole sentences
    generated: int = 0
    finished: bool = False
    finish_reason: str | None = None
    # Logprobs wait until the text of their token has been sent: a guard that holds back and then
    # cuts a banned string must not have sent that string's tokens as logprobs.
    pending_logprobs: list[tuple[int, TokenLogprob]] = field(default_factory=list)  # (text end, entry)
    decoded_chars: int = 0
    sent_chars: int = 0
    # The row's tokens and where each one's text ends, so a rewind knows which tokens the client has.
    ids: list[int] = field(default_factory=list)
    token_ends: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    cut_text: str = ""  # what the guard let through before a cut, sent with the last output
    # Where a finish that may wait for the answer judge runs, so the caller (a decode loop) never
    # waits for it; None runs it in place.
    defer: Callable[..., object] | None = None
    detokenizer: IncrementalDetokenizer = field(init=False)
    stops: StopStringMatcher = field(init=False)

    def __post_init__(self) -> None:
        self.plan = self.request.plan or RowPlan()
        self.detokenizer = IncrementalDetokenizer(self.codec.tokenizer, self.request.prompt_ids)
        self.stops = StopStringMatcher(self.request.params.stop)
        banned, redact = self.plan.banned, self.plan.redact
        if banned is not None:
            self.ban_state = self.redact_state = banned.start(self.request.prompt_ids)
        if redact is not None and (banned is None or not redact.patterns <= banned.patterns):
            # Bans without the names (`plain` only): the names are still kept out of top_logprobs.
            self.redact_state = redact.start(self.request.prompt_ids)
        if self.plan.guard is not None:
            self.guard = self.plan.guard.start(self.plan.continues + self.request.answer_prefix)
        if self.plan.holds and self.request.params.structured is None:
            self.hold = SafePoints(max_sentences=self.plan.sentences, after=self.request.answer_prefix)

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def accept(self, token: int, logprob: LogprobFn | None = None) -> None:
        """Takes the row's next token; finishes the row when it ends it."""
        params = self.request.params
        self.generated += 1
        eos = token in self.codec.eos_ids
        entry = None
        if params.logprobs and not eos and logprob is not None:
            # Redaction follows the row's text before this token, so it is decided before advancing.
            hidden = self.redact_state.redacted_next() if self.redact_state is not None and params.top_logprobs else set()
            entry = logprob(hidden, self.plan.min_p)
        if self.redact_state is not None:
            self.redact_state.advance(token)
        if self.ban_state is not None and self.ban_state is not self.redact_state:
            self.ban_state.advance(token)
        if eos:
            self.finish("stop")
            return
        delta = self.detokenizer.add(token)
        self.decoded_chars += len(delta)
        self.ids.append(token)
        self.token_ends.append(self.decoded_chars)
        self.texts.append(delta)
        if entry is not None:
            self.pending_logprobs.append((self.decoded_chars, entry))
        text, hit_stop = self.stops.feed(delta)
        if self.guard is not None:
            # The guard holds back what could still become a banned string and cuts when one appears.
            guarded = self.guard.feed(text)
            text = guarded.text_to_emit
            if guarded.tripped:
                self.cut_text = text
                self.finish("content_filter")
                return
        if self.hold is not None:
            text = self.hold.feed(text)
            if self.hold.complete:
                self._emit(text)
                self.finish("sentences")
                return
        if hit_stop:
            self._emit(text)
            self.finish("stop")
            return
        total = len(self.request.prompt_ids) + self.generated
        if self.generated >= params.max_tokens or total >= self.codec.max_model_len:
            self._emit(text)
            self.finish("length")
            return
        self._emit(text)

    def _emit(self, text: str) -> None:
        logprobs = self._sent_logprobs(text)
        if text or logprobs:
            self.emit(GenerationOutput(text, self.generated, len(self.request.prompt_ids), logprobs))

    def _sent_logprobs(self, text: str, everything: bool = False) -> list[TokenLogprob]:
        """Counts `text` as sent and returns the logprobs whose token text is now all sent."""
        self.sent_chars += len(text)
        ready = [entry for end, entry in self.pending_logprobs if everything or end <= self.sent_chars]
        self.pending_logprobs = [] if everything else [p for p in self.pending_logprobs if p[0] > self.sent_chars]
        return ready

    def finish(self, reason: str) -> None:
        if self.finished:
            return
        self.finished = True  # an engine drops the row from its batch now; the last words may follow
        if self.defer is not None and reason in ("stop", "length") and getattr(self.guard, "waits", False):
            self.defer(self._finish_safely, reason)
        else:
            self._finish_safely(reason)

    def _finish_safely(self, reason: str) -> None:
        try:
            self._send_last(reason)
        except Exception:
            log.exception("finishing row %s failed", self.request_id)
            self.emit(GenerationOutput("", self.generated, len(self.request.prompt_ids), [], "error"))

    def _send_last(self, reason: str) -> None:
        if reason == "sentences":  # complete: what was generated past the last sentence end is dropped
            self.finish_reason = "stop"
            self.emit(GenerationOutput("", self._kept(), len(self.request.prompt_ids), [], "stop"))
            return
        tail, self.cut_text = self.cut_text, ""
        if reason in ("stop", "length"):
            tail = self.stops.flush()
            if self.guard is not None:
                result = self.guard.feed(tail)
                tail = result.text_to_emit
                if not result.tripped:
                    # A string that ends the text is only confirmed here; a name begun where max_tokens cut it is not sent.
                    tail += self.guard.finish(cut_short=reason == "length")
                if self.guard.tripped:
                    reason = "content_filter"
        stopped = reason == "content_filter" and self.guard is not None and self.guard.tripped
        if self.hold is not None:
            tail = self.hold.feed(tail)
            if reason in ("stop", "length"):
                tail += self.hold.flush()
            else:  # the unfinished sentence with the stopped name in it is never sent
                self.hold.drop()
        complete = self.hold is not None and self.hold.complete
        # A normal end sends every remaining logprob (a removed stop string's tokens included).
        logprobs = self._sent_logprobs(tail, everything=reason in ("stop", "length") and not complete)
        count, resume = self.generated, None
        if complete and reason in ("stop", "length"):  # the last sentence ended it: nothing after it was sent
            reason, count = "stop", self._kept()
        # A constrained answer keeps its format: nothing is spliced into JSON or continued outside its
        # grammar. Held until it ends (the client has none of it), it starts again from nothing.
        if stopped and self.request.params.structured is not None:
            if self.plan.rewinds > 0:
                reason, resume = "rewind", Resume([], self.request.answer_prefix + "".join(self.texts))
        elif stopped:
            count = self._kept()  # what the client has, not what was generated and dropped
            if self.plan.rewinds > 0:
                reason, resume = "rewind", Resume(self._prefix_ids(), self.request.answer_prefix + "".join(self.texts))
            elif self.plan.refusal_text is not None:
                tail += refusal_ending(self.request.answer_prefix + self._sent_text(), self.plan.refusal_text)
                reason = "stop"
        self.finish_reason = reason
        self.emit(GenerationOutput(tail, count, len(self.request.prompt_ids), logprobs, reason, resume))

    def _sent_text(self) -> str:
        return "".join(self.texts)[: self.sent_chars]

    def _kept(self) -> int:
        """How many of the row's tokens the client has whole."""
        return bisect.bisect_right(self.token_ends, self.sent_chars)

    def _prefix_ids(self) -> list[int]:
        """The sent answer as tokens: the row's own up to the last whole one, then the rest of the
        sent text (a token cut through) encoded."""
        kept = self._kept()
        start = self.token_ends[kept - 1] if kept else 0
        rest = "".join(self.texts)[start : self.sent_chars]
        more = self.codec.tokenizer.encode(rest, add_special_tokens=False) if rest else []
        return self.ids[:kept] + list(more)
