"""The engine interface: what the HTTP layer needs from anything that generates tokens.

The in-process transformers engine implements it today; a vLLM engine can implement it later
without the routers noticing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Protocol, Sequence


@dataclass(frozen=True)
class StructuredOutput:
    """A grammar the answer must follow; one of the two is set. Mirrors vLLM's
    StructuredOutputsParams(json=..., json_object=...), so an engine maps it field for field."""

    json: str | None = None  # a JSON schema, serialized (hashable, and the cache key of its grammar)
    json_object: bool = False


@dataclass(frozen=True)
class SamplingParams:
    """Field names and neutral values are vLLM's SamplingParams', so engines map them 1:1."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    top_k: int = 0  # 0 or -1: off
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0  # over prompt and output tokens, as in vLLM
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    structured: StructuredOutput | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def penalized(self) -> bool:
        """Whether any logit adjustment applies (rows without one are never touched)."""
        return bool(self.presence_penalty or self.frequency_penalty or self.repetition_penalty != 1.0
                    or self.logit_bias)


@dataclass
class RowPlan:
    """Per-row interventions for one generation; an empty plan leaves the row untouched.

    `steering` maps layer index -> vector added to that layer's output for this row only.
    `banned` and `guard` are shared, compiled objects whose `start(...)` gives each row its own
    state, so one plan can serve the n choices of a request.
    """

    steering: dict[int, Any] = field(default_factory=dict)
    banned: Any = None
    guard: Any = None
    refusal_text: str | None = None  # sent instead of a content_filter cut, when the policy asks
    # How many times a row's answer may be rewound to its last safe point and continued after the
    # guard stops a name (0: no rewinding), and how to plan a continuation: given the answer so
    # far (the stopped name included) and what the client has of it, the conversation as planned
    # for it and its plan (whose `opener`, if any, is sent and continued after what the client has).
    rewinds: int = 0
    replan: Callable[[str, str], tuple[list[dict], RowPlan | None]] | None = None
    # Names whose way into top_logprobs is hidden where no token ban applies (a BannedSet).
    redact: Any = None
    min_p: float = 0.0  # a floor on the row's min_p while sampling (triggered rows: stay among likely tokens)
    # The `ignorance` intervention. `opener`: text the answer starts with, already at the end of the
    # prompt (an assistant prefill); the serving layer sends it first. `sentences`: the row ends,
    # finish_reason "stop", once it has sent this many whole sentences (0: no limit).
    opener: str = ""
    sentences: int = 0
    # A structured answer (JSON, a tool call) cannot be one sentence of ignorance: its free-text
    # string values are (`filters.grammar.ignorant_schema`), the first of these that fits.
    ignorant_strings: tuple[str, ...] = ()
    # The client's own text the answer goes on from (an assistant prefill, a raw completion's
    # prompt): the guard reads it as the start of the stream, never sends it.
    continues: str = ""

    @property
    def empty(self) -> bool:
        return not self.steering and self.banned is None and self.guard is None

    @property
    def holds(self) -> bool:
        """Whether the row sends whole sentences: its own names are guarded and a guard hit is
        answered by rewinding or a sentence, which must not follow half a sentence; or it ends
        after a number of sentences."""
        guarded = bool(getattr(self.guard, "banned", None)) and (self.rewinds > 0 or self.refusal_text is not None)
        return guarded or self.sentences > 0


def refusal_ending(answered: str, refusal: str) -> str:
    """What ends an answer stopped at `answered` with the refusal sentence: the whole sentence after
    what was said, or its rest where the answer so far is only its start (an ignorance opener)."""
    said = answered.strip()
    if refusal.startswith(said):
        return refusal[len(said):] if said else refusal
    return (" " if answered and not answered[-1].isspace() else "") + refusal


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    prompt_ids: Sequence[int]
    params: SamplingParams
    plan: RowPlan | None = None
    # The answer this request continues after a rewind (the prompt ends with it): the client has
    # it already, and the guard's judge reads it as the start of the answer.
    answer_prefix: str = ""


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob]


@dataclass
class GenerationOutput:
    """One step's worth of a row's output: a text delta (possibly empty) and, on the last, why it ended."""

    text: str
    token_count: int  # completion tokens generated so far
    prompt_tokens: int
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None  # stop | length | content_filter | error | rewind | refusal (Lethe's, its text the refusal)
    resume: Resume | None = None  # with "rewind": where the answer goes on from


@dataclass(frozen=True)
class Resume:
    """A row stopped at a guard hit, rewound to its last safe point."""

    prefix_ids: list[int]  # the answer the client has from this row, as tokens to continue the prompt with
    answer: str  # all the row's answer, the stopped name and what followed it included (to re-plan from)


class RowOutputs:
    """One generation's outputs, for one reader. Closing it before the last output (or never
    reading it) aborts the generation, so no row runs on for a reader that has gone."""

    def __init__(self, queue, abort):
        self._queue = queue
        self._abort = abort
        self.done = False

    def __aiter__(self) -> RowOutputs:
        return self

    async def __anext__(self) -> GenerationOutput:
        if self.done:
            raise StopAsyncIteration
        try:
            output = await self._queue.get()
        except BaseException:  # cancelled while waiting: the reader is gone
            self.close()
            raise
        self.done = output.finish_reason is not None
        return output

    def close(self) -> None:
        if not self.done:
            self.done = True
            self._abort()

    async def aclose(self) -> None:
        self.close()


class EngineOverloaded(RuntimeError):
    """The waiting queue is full; the caller should retry later."""


class Engine(Protocol):
    model_name: str
    max_model_len: int
    tokenizer: Any

    def start(self) -> None: ...

    def shutdown(self) -> None: ...

    def generate(self, request: GenerationRequest) -> RowOutputs:
        """Queues the request at once (or raises EngineOverloaded) and returns its outputs."""

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        """Token ids of the conversation; `tools` only when `native_tools` (the template renders them)."""

    native_tools: bool  # the chat template renders tool definitions itself

    def encode(self, text: str) -> list[int]: ...
