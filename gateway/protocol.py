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


class _Part(BaseModel):
    """A non-text content part: parsed so it can be refused by name, never silently dropped."""

    model_config = ConfigDict(extra="allow")


class ImagePart(_Part):
    type: Literal["image_url"]


class AudioPart(_Part):
    type: Literal["input_audio"]


class FilePart(_Part):
    type: Literal["file"]


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Strict):
    name: str
    arguments: str = "{}"


class ToolCall(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None  # the legacy single call of `functions`
    # Sent back by clients that replay a returned message (`message.model_dump()`); not read.
    refusal: str | None = None
    annotations: list | None = None
    audio: dict | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    def unsupported_part(self) -> tuple[int, str] | None:
        """(index, type) of the first part a text-only model cannot read."""
        if isinstance(self.content, list):
            for j, part in enumerate(self.content):
                if not isinstance(part, (TextPart, RefusalPart)):
                    return j, part.type
        return None

    def calls(self) -> list[ToolCall]:
        calls = list(self.tool_calls or [])
        if self.function_call is not None:
            calls.append(ToolCall(id="call_legacy", function=self.function_call))
        return calls


class StreamOptions(_Strict):
    include_usage: bool = False
    continuous_usage_stats: bool = False  # vLLM's; usage arrives once, at the end, either way


FunctionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class FunctionDef(_Strict):
    name: FunctionName
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None

    def parameters_schema(self) -> dict:
        return self.parameters or {"type": "object", "properties": {}}


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDef


class _NamedFunction(_Strict):
    name: FunctionName


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: _NamedFunction


class JsonSchemaSpec(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    description: str | None = None
    schema_: dict | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextFormat(_Strict):
    type: Literal["text"]


class JsonObjectFormat(_Strict):
    type: Literal["json_object"]


class JsonSchemaFormat(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]

Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
Bias = Annotated[float, Field(ge=-100.0, le=100.0)]

# Parameters with no meaning for a self-hosted model: accepted so clients that send them by
# default work, logged once, and listed in the README.
IGNORED = ("store", "metadata", "service_tier", "reasoning_effort", "prompt_cache_key", "prompt_cache_retention",
           "safety_identifier", "verbosity", "modalities", "user", "prediction", "audio", "web_search_options")


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
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: Annotated[dict[str, Bias], Field(max_length=300)] | None = None
    # vLLM's extras, same names and meaning (0 or -1 top_k means off).
    top_k: Annotated[int, Field(ge=-1)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0.0, le=2.0)] | None = None
    # Ignored (see IGNORED).
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def ignored_fields(self) -> list[str]:
        return [name for name in IGNORED if name in self.model_fields_set]


class ChatCompletionRequest(_SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: Annotated[list[FunctionDef], Field(max_length=128)] | None = None
    function_call: Literal["none", "auto"] | _NamedFunction | None = None
    response_format: ResponseFormat | None = None
    # Ignored (see IGNORED).
    reasoning_effort: str | None = None
    verbosity: str | None = None
    modalities: list[str] | None = None
    prediction: dict | None = None
    audio: dict | None = None
    web_search_options: dict | None = None

    def tool_defs(self) -> list[FunctionDef]:
        """`tools`, or the legacy `functions`, as one list."""
        return [t.function for t in self.tools or []] + list(self.functions or [])

    def choice_of_tool(self) -> str | None:
        """none | auto | required | a function name, with OpenAI's defaults (auto when tools are given)."""
        choice = self.tool_choice if self.tool_choice is not None else self.function_call
        if isinstance(choice, NamedToolChoice):
            return choice.function.name
        if isinstance(choice, _NamedFunction):
            return choice.name
        if choice is not None:
            return choice
        return "auto" if self.tool_defs() else "none"


class CompletionRequest(_SamplingFields):
    prompt: (str | Annotated[list[str], Field(min_length=1)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
             | Annotated[list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]], Field(min_length=1)])
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    echo: bool = False
    best_of: Annotated[int, Field(ge=1, le=16)] | None = None
    suffix: str | None = None

    def prompts(self) -> list[str | list[int]]:
        """Each prompt as text or as token ids."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if self.prompt and isinstance(self.prompt[0], int):
            return [list(self.prompt)]
        return list(self.prompt)


# ---- Lethe's own surface --------------------------------------------------------------------

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=2000)]


class PolicyOverrides(_Strict):
    """A tenant's overrides of the server's response policy (see gateway/policy.py); null keeps the default."""

    interventions: Annotated[list[Literal["instruction", "ignorance", "tokens", "guard", "steering"]], Field(max_length=5)] | None = None
    refusal: Literal["rewind", "sentence", "cut"] | None = None
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
    # No per-target "policy": the tenant's policy decides what happens when any of its targets fires.
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
    mandatory: bool | None = None

    @field_validator("name", "aliases", "forbidden")
    @classmethod
    def _matchable(cls, value):
        return _matchable_names(value)


class Activation(_Strict):
    active: bool


class DetectRequest(_Strict):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
