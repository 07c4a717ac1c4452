"""Request schemas mirroring the OpenAI API, kept apart from the serving logic.

Unknown fields are rejected (as OpenAI does) so a typo never silently changes behaviour. Text
must be valid Unicode: JSON can carry a lone surrogate ("\\ud800") that no tokenizer accepts and
that would read differently to the detector and to the model, so it is refused with a 400.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detectors.aliases import unmatchable

_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_unicode(value):
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise ValueError("contains a lone UTF-16 surrogate (U+D800 to U+DFFF), which is not valid Unicode text")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _valid_unicode(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _valid_unicode(key)
            _valid_unicode(item)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _unicode_text(cls, value):
        return _valid_unicode(value)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(_Strict):
    include_usage: bool = False


Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


class _SamplingFields(_Strict):
    model: str
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: Annotated[int, Field(ge=1, le=16)] = 1
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    user: str | None = None
    # Accepted for client compatibility; only their neutral value is honoured (see validator).
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None

    @field_validator("presence_penalty", "frequency_penalty")
    @classmethod
    def _neutral_only(cls, value: float | None) -> float | None:
        if value not in (None, 0, 0.0):
            raise ValueError("only 0 is supported by this server")
        return value

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatCompletionRequest(_SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None


class CompletionRequest(_SamplingFields):
    prompt: str | Annotated[list[str], Field(min_length=1)]
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    echo: bool = False

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


# ---- Lethe's own surface --------------------------------------------------------------------

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=2000)]


class PolicyOverrides(_Strict):
    """A tenant's overrides of the server's response policy (see gateway/policy.py); null keeps the default."""

    interventions: Annotated[list[Literal["instruction", "tokens", "guard", "steering"]], Field(max_length=4)] | None = None
    refusal: Literal["sentence", "cut"] | None = None
    on_detector_error: Literal["closed", "open"] | None = None

    def stored(self) -> dict:
        return self.model_dump(exclude_none=True)


class TenantCreate(_Strict):
    name: ShortText
    policy: PolicyOverrides | None = None


class TenantPatch(_Strict):
    policy: PolicyOverrides


def _matchable_names(value):
    """A name, alias or forbidden string must be something detection can match: not empty and not
    an everyday word once normalized (a zero-width-only name would otherwise fire on "Who is it?")."""
    for i, text in enumerate([value] if isinstance(value, str) else value or []):
        _valid_unicode(text)
        reason = unmatchable(text)
        if reason:
            where = "" if isinstance(value, str) else f" (item {i})"
            raise ValueError(f"{text!r}{where} cannot identify a forget target: {reason}")
    return value


class ForgetTargetCreate(_Strict):
    name: ShortText
    aliases: Annotated[list[ShortText], Field(max_length=64)] = []
    description: Annotated[str, Field(max_length=2000)] = ""
    examples: Annotated[list[LongText], Field(max_length=64)] = []
    forbidden: Annotated[list[ShortText], Field(max_length=64)] = []
    negatives: Annotated[list[LongText], Field(max_length=64)] = []
    policy: dict = {}
    scope: Literal["tenant", "global"] = "tenant"
    mandatory: bool = False

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("name", "aliases", "forbidden")
    @classmethod
    def _matchable(cls, value):
        return _matchable_names(value)


class ForgetTargetPatch(_Strict):
    name: ShortText | None = None
    aliases: Annotated[list[ShortText], Field(max_length=64)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    examples: Annotated[list[LongText], Field(max_length=64)] | None = None
    forbidden: Annotated[list[ShortText], Field(max_length=64)] | None = None
    negatives: Annotated[list[LongText], Field(max_length=64)] | None = None
    policy: dict | None = None
    mandatory: bool | None = None

    @field_validator("name", "aliases", "forbidden")
    @classmethod
    def _matchable(cls, value):
        return _matchable_names(value)


class Activation(_Strict):
    active: bool


class DetectRequest(_Strict):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
