"""Chat and text completions: turns validated OpenAI requests into engine requests and back.

The only place that knows both the OpenAI wire format and the engine interface. Everything
about *what to do* with a request (detection, steering, bans) arrives as a RowPlan from the
planner, so this module never learns how unlearning works.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from functools import partial
from typing import AsyncIterator, Awaitable, Callable, Protocol, Sequence

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from .config import Settings
from .engines.base import (Engine, EngineOverloaded, GenerationOutput, GenerationRequest, Resume, RowOutputs,
                           RowPlan, SamplingParams, StructuredOutput, TokenLogprob, TopLogprob, refusal_ending)
from .errors import APIError, bad_request, client_gone
from .metrics import Metrics
from .protocol import ChatCompletionRequest, CompletionRequest, JsonObjectFormat, JsonSchemaFormat
from filters.grammar import GrammarError, ignorant_schema, states_specifics

from .tools import Call, CallBuffer, ToolUse, call_text, history_content, json_text

log = logging.getLogger("lethe.serving")
_LOGGED_IGNORED: set[str] = set()


class Planner(Protocol):
    """Decides, per request, what Lethe does: may rewrite the messages and returns the row plan."""

    async def plan(self, tenant, messages: list[dict[str, str]], form: str = "chat",
                   prompt_ids: Sequence[int] | None = None) -> tuple[list[dict[str, str]], RowPlan | None]: ...


class NoPlanner:
    async def plan(self, tenant, messages, form="chat", prompt_ids=None):
        return messages, None


@dataclass
class _Choice:
    index: int
    text: str = ""
    finish_reason: str | None = None
    tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    refusal: str | None = None


@dataclass
class _Job:
    """One prompt's worth of work: its token ids and the n generations it fans out to."""

    prompt_ids: list[int]
    plan: RowPlan | None
    first_index: int
    # The prompt as the client sent it: what usage reports, so nothing Lethe adds (an instruction
    # to a triggered row) shows in the bill.
    client_tokens: int
    # This prompt's own sampling (its own room in the context), where prompts differ (completions).
    params: SamplingParams | None = None
    # The prompt ids of this conversation as planned anew (for continuing a rewound answer).
    render: Callable[[list[dict]], list[int]] | None = None


class Serving:
    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics, planner: Planner | None = None):
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.planner = planner or NoPlanner()
        self.open = False  # set once the engine is loaded and its self-check passed

    def _check_open(self) -> None:
        if not self.open:
            raise APIError(503, "The model is still loading; retry shortly.", type="service_unavailable",
                           code="model_loading", headers={"Retry-After": "5"})

    # ---- endpoints ----------------------------------------------------------------------------

    async def chat(self, req: ChatCompletionRequest, tenant, http: Request):
        self._check_model(req.model)
        self._check_open()
        _log_ignored(req)
        tools = _tool_use(req)
        messages = _conversation(req)
        # The tool definitions are part of the conversation detection reads, whoever renders them.
        preamble = {"role": "system", "content": tools.preamble()} if tools is not None else None
        if preamble is not None:
            messages.insert(0, preamble)
        top = req.top_logprobs or 0
        if top and not req.logprobs:
            raise bad_request("top_logprobs requires logprobs to be true", param="top_logprobs")
        native = tools is not None and getattr(self.engine, "native_tools", False)

        def render(conversation):
            if native:
                return self.engine.render_chat([m for m in conversation if m is not preamble], tools.definitions())
            return self.engine.render_chat(conversation)

        # Cheap checks first: text that cannot be served never reaches the detector.
        client_ids = await asyncio.to_thread(render, messages)  # long text: off the event loop
        structured, param = _structured(req, tools)
        params = replace(self._sampling(req, len(client_ids), req.max_completion_tokens or req.max_tokens,
                                        bool(req.logprobs), top), structured=structured)
        # A tool the model may call or not leaves the answer free text until it does: a triggered
        # one is a sentence of ignorance, which calls nothing (a call it made could only carry
        # what it does not know).
        form = "chat" if structured is None else "structured"
        planned, plan = await self.planner.plan(tenant, messages, form=form, prompt_ids=client_ids,
                                                listing=bool(top))
        params = _shaped(params, plan)
        prompt_ids = client_ids if planned is messages else await asyncio.to_thread(render, planned)
        params = self._fit(params, prompt_ids, client_ids)
        jobs = [_Job(prompt_ids, plan, 0, len(client_ids), render=render)]
        response_id = f"chatcmpl-{uuid.uuid4().hex}"
        answers = _Answers(tools, plan, _held(params, plan))
        if req.stream:
            return self._stream(http, response_id, "chat.completion.chunk", jobs, req, params, answers, param)
        choices, prompt_tokens = await self._collect_all(http, jobs, req.n, params, param)
        for c in choices:
            await answers.settle(c)
        return JSONResponse(
            self._envelope(response_id, "chat.completion", [self._chat_choice(c, params.logprobs) for c in choices],
                           _usage(prompt_tokens, choices))
        )

    async def completions(self, req: CompletionRequest, tenant, http: Request):
        self._check_model(req.model)
        self._check_open()
        _log_ignored(req)
        if req.suffix:
            raise bad_request("suffix (fill-in-the-middle) is not supported by this model", param="suffix")
        if req.best_of is not None and req.best_of != req.n:
            # Picking the best of more candidates than are returned needs ranking we do not do.
            raise bad_request(f"best_of must equal n ({req.n}); ranking extra candidates is not supported",
                              param="best_of")
        jobs: list[_Job] = []
        params = None
        echoes: dict[int, str] = {}
        for i, prompt in enumerate(req.prompts()):
            if isinstance(prompt, list):
                self._check_token_ids(prompt, "prompt")
                text = self.engine.tokenizer.decode(prompt)
                client_ids = list(prompt)
            else:
                text = prompt
                client_ids = await asyncio.to_thread(self.engine.encode, prompt)
            if not client_ids:
                raise bad_request("prompt must not be empty", param="prompt")
            job_params = self._sampling(req, len(client_ids), req.max_tokens, req.logprobs is not None, req.logprobs or 0,
                                        default_max=16)
            asked = [{"role": "user", "content": text}]
            planned, plan = await self.planner.plan(tenant, asked, form="text", prompt_ids=client_ids,
                                                   listing=bool(req.logprobs))
            render = partial(self._completion_ids, prompt, text, client_ids)
            ids = client_ids if planned is asked else await asyncio.to_thread(render, planned)
            job_params = self._fit(job_params, ids, client_ids)
            params = params or job_params
            jobs.append(_Job(ids, plan, i * req.n, len(client_ids), job_params, render))
            if req.echo:  # the caller's own prompt, never the instruction Lethe put before it
                echoes.update({i * req.n + j: text for j in range(req.n)})
        response_id = f"cmpl-{uuid.uuid4().hex}"
        if req.stream:
            return self._stream(http, response_id, "text_completion", jobs, req, params, _Echo(echoes))
        choices, prompt_tokens = await self._collect_all(http, jobs, req.n, params)
        for c in choices:
            c.text = echoes.get(c.index, "") + c.text
        return JSONResponse(
            self._envelope(response_id, "text_completion", [self._completion_choice(c, params.logprobs) for c in choices],
                           _usage(prompt_tokens, choices))
        )

    # ---- request -> engine --------------------------------------------------------------------

    def _completion_ids(self, prompt, text: str, client_ids: list[int], messages: list[dict]) -> list[int]:
        """A raw prompt as planned: the planner's instruction has nowhere to go but before the text,
        and the opener of a triggered answer (`planner.continuation_opener`) after it."""
        prefix = "".join(m["content"] + "\n\n" for m in messages[:-1])
        opener = messages[-1]["content"][len(text):]
        if not prefix and not opener:
            return client_ids
        if isinstance(prompt, list):
            return [*(self.engine.encode(prefix) if prefix else []), *client_ids,
                    *(self.engine.encode(opener) if opener else [])]
        return self.engine.encode(prefix + prompt + opener)

    def _check_model(self, model: str) -> None:
        if model != self.engine.model_name:
            raise APIError(404, f"The model '{model}' does not exist.", param="model", code="model_not_found")

    def _check_token_ids(self, ids, param: str) -> None:
        size = len(self.engine.tokenizer)
        bad = next((t for t in ids if not 0 <= int(t) < size), None)
        if bad is not None:
            raise bad_request(f"token id {bad} is outside the vocabulary (0..{size - 1})", param=param)

    def check_context(self, prompt_len: int) -> None:
        limit = self.engine.max_model_len
        if prompt_len >= limit:
            raise bad_request(
                f"This model's maximum context length is {limit} tokens, but the prompt has {prompt_len} tokens.",
                param="messages", code="context_length_exceeded",
            )

    def _sampling(self, req, prompt_len: int, max_tokens: int | None, logprobs: bool, top: int,
                  default_max: int | None = None) -> SamplingParams:
        limit = self.engine.max_model_len
        self.check_context(prompt_len)
        room = limit - prompt_len
        if max_tokens is not None and max_tokens > room:
            raise bad_request(
                f"This model's maximum context length is {limit} tokens; the prompt has {prompt_len} tokens and "
                f"{max_tokens} were requested for the completion.",
                param="max_tokens", code="context_length_exceeded",
            )
        return SamplingParams(
            max_tokens=max_tokens or min(default_max or self.settings.default_max_tokens, room),
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            seed=req.seed,
            stop=req.stop_list(),
            logprobs=logprobs,
            top_logprobs=top,
            top_k=max(req.top_k or 0, 0),
            min_p=req.min_p or 0.0,
            presence_penalty=req.presence_penalty or 0.0,
            frequency_penalty=req.frequency_penalty or 0.0,
            repetition_penalty=req.repetition_penalty or 1.0,
            logit_bias=self._logit_bias(req.logit_bias),
        )

    def _fit(self, params: SamplingParams, prompt_ids: list[int], client_ids: list[int]) -> SamplingParams:
        """`params` for the prompt as planned, which may be longer than the client's by an instruction.

        The completion keeps the room the client asked for where the context allows. Where the
        added text leaves no room at all (a prompt within a few dozen tokens of the limit), the
        request is refused with the context error in the client's own numbers: closed, not unguarded.
        """
        room = self.engine.max_model_len - len(prompt_ids)
        if room < 1:
            raise bad_request(
                f"This model's maximum context length is {self.engine.max_model_len} tokens, but the prompt has "
                f"{len(client_ids)} tokens and leaves no room for the completion.",
                param="messages", code="context_length_exceeded",
            )
        return params if params.max_tokens <= room else replace(params, max_tokens=room)

    def _logit_bias(self, bias: dict[str, float] | None) -> tuple[tuple[int, float], ...]:
        items = []
        for key, value in (bias or {}).items():
            if not (key.strip().isascii() and key.strip().isdigit()):
                raise bad_request(f"logit_bias keys must be token ids, got {key!r}", param="logit_bias")
            items.append((int(key), float(value)))
        self._check_token_ids([t for t, _ in items], "logit_bias")
        return tuple(sorted(items))

    def _generations(self, jobs: Sequence[_Job], n: int, params: SamplingParams,
                     param: str | None = None) -> list[tuple[int, RowOutputs]]:
        streams = []
        shared = params
        for job in jobs:
            self.metrics.prompt_tokens.inc(len(job.prompt_ids))
            params = job.params or shared
            if job.plan is not None and job.plan.min_p > params.min_p:
                params = replace(params, min_p=job.plan.min_p)  # greedy rows are unaffected by min_p
            for j in range(n):
                # Distinct seeds per choice, so n seeded choices are reproducible yet not all alike.
                choice_params = params if params.seed is None or j == 0 else _with_seed(params, params.seed + j)
                request = GenerationRequest(uuid.uuid4().hex, job.prompt_ids, choice_params, job.plan,
                                            answer_prefix=job.plan.opener if job.plan is not None else "")
                try:
                    streams.append((job.first_index + j, _Rewinding(self.engine, request, job.render)))
                except EngineOverloaded as exc:
                    # Queued now, before any response starts: a full queue is a plain 429.
                    _close(streams)
                    raise _overloaded(exc) from None
                except GrammarError as exc:
                    _close(streams)
                    raise bad_request(str(exc), param=param) from None
        return streams

    async def _collect_all(self, http: Request, jobs, n, params, param=None) -> tuple[list[_Choice], int]:
        streams = self._generations(jobs, n, params, param)
        work = asyncio.ensure_future(asyncio.gather(*(_collect(i, s) for i, s in streams)))
        gone = asyncio.ensure_future(_disconnected(http))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not work.done():  # the client left: stop generating for it
            work.cancel()
            work.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no "never retrieved" log
            _close(streams)
            raise client_gone()
        try:
            choices = work.result()
        except GenerationFailed as exc:  # a 500 with the error object; the other choices stop too
            _close(streams)
            raise exc.error from None
        return sorted(choices, key=lambda c: c.index), sum(j.client_tokens for j in jobs)

    # ---- streaming ----------------------------------------------------------------------------

    def _stream(self, http, response_id, object_name, jobs, req, params, shaper, param=None):
        streams = self._generations(jobs, req.n, params, param)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        prompt_tokens = sum(j.client_tokens for j in jobs)
        created = int(time.time())
        started = time.perf_counter()

        def sse(choices: list[dict], usage: dict | None = None) -> str:
            body = {"id": response_id, "object": object_name, "created": created, "model": self.engine.model_name,
                    "choices": choices}
            if include_usage:
                body["usage"] = usage
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            completion_tokens = {i: 0 for i, _ in streams}
            first_token = True
            try:
                if object_name == "chat.completion.chunk":
                    for index, _ in streams:
                        yield sse([{"index": index, "delta": {"role": "assistant", "content": ""},
                                    "logprobs": None, "finish_reason": None}])
                async for index, out in _merge(streams):
                    completion_tokens[index] = out.token_count
                    if out.text or out.logprobs or out.finish_reason:
                        if first_token and out.text:
                            self.metrics.time_to_first_token.observe(time.perf_counter() - started)
                            first_token = False
                        async for piece in shaper.chunks(index, out, params.logprobs):
                            yield sse([piece])
            except GenerationFailed as exc:
                # Headers are sent: the error travels in-band, as OpenAI's own streams carry it.
                yield f"data: {json.dumps(exc.error.body())}\n\n"
                yield "data: [DONE]\n\n"
                return
            finally:  # the client may leave at any yield, even before the first output was read
                _close(streams)
            if include_usage:
                completion = sum(completion_tokens.values())
                yield sse([], {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                               "total_tokens": prompt_tokens + completion})
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ---- response shapes ----------------------------------------------------------------------

    def _envelope(self, response_id: str, object_name: str, choices: list[dict], usage: dict) -> dict:
        return {"id": response_id, "object": object_name, "created": int(time.time()),
                "model": self.engine.model_name, "choices": choices, "usage": usage}

    @staticmethod
    def _chat_choice(c: _Choice, logprobs: bool) -> dict:
        message = {"role": "assistant", "content": c.text or (None if c.calls or c.refusal else ""),
                   "refusal": c.refusal}
        if c.calls:
            message["tool_calls"] = [call.wire() for call in c.calls]
        return {"index": c.index, "message": message,
                "logprobs": _chat_logprobs(c.logprobs) if logprobs else None, "finish_reason": c.finish_reason}

    @staticmethod
    def _completion_choice(c: _Choice, logprobs: bool) -> dict:
        return {"index": c.index, "text": c.text, "logprobs": _completion_logprobs(c.logprobs) if logprobs else None,
                "finish_reason": c.finish_reason}



class _Answers:
    """Turns a chat row's raw answer into what the client gets: content and tool calls, with
    decoded JSON checked by the row's guard. One per request; streams keep a buffer per choice."""

    def __init__(self, tools: ToolUse | None, plan: RowPlan | None, hold: bool):
        self.tools, self.plan, self.hold = tools, plan, hold
        self._buffers: dict[int, CallBuffer] = {}

    async def settle(self, c: _Choice) -> None:
        """Non-stream: parses calls out of a finished choice's text and checks them."""
        if c.finish_reason == "refusal":
            c.refusal, c.text, c.finish_reason = c.text, "", "stop"
            return
        if c.finish_reason not in ("stop", "length"):
            return
        if self.tools is not None:
            content, calls = self.tools.parse(c.text)
            if calls:
                c.text, c.calls, c.finish_reason = content or "", calls, "tool_calls"
        if await self._leaks(c.text if self.hold else None, c.calls):
            c.text, c.calls, c.finish_reason = self._cut()

    async def chunks(self, index: int, out: GenerationOutput, logprobs: bool):
        if out.finish_reason == "refusal":
            yield {"index": index, "delta": {"refusal": out.text}, "logprobs": None, "finish_reason": None}
            yield {"index": index, "delta": {}, "logprobs": None, "finish_reason": "stop"}
            return
        lp = _chat_logprobs(out.logprobs) if logprobs else None
        if self.tools is None and not self.hold:
            if out.text or lp or out.finish_reason:
                yield {"index": index, "delta": {"content": out.text} if out.text else {}, "logprobs": lp,
                       "finish_reason": out.finish_reason}
            return
        buffer = self._buffers.setdefault(index, CallBuffer(self.tools))  # a held answer arrives whole
        text = buffer.feed(out.text)
        reason = out.finish_reason
        calls: list[Call] = []
        if reason is not None:
            rest, calls = buffer.finish()
            if reason not in ("stop", "length"):
                calls = []
            elif await self._leaks(text + rest if self.hold else None, calls):
                text, calls, reason = self._cut()
                rest = ""
            text += rest
        if text or lp:
            yield {"index": index, "delta": {"content": text} if text else {}, "logprobs": lp, "finish_reason": None}
        for k, call in enumerate(calls):
            # The name first, the arguments after: the shape the SDKs assemble from deltas.
            yield {"index": index, "delta": {"tool_calls": [{"index": k, "id": call.id, "type": "function",
                                                             "function": {"name": call.name, "arguments": ""}}]},
                   "logprobs": None, "finish_reason": None}
            yield {"index": index, "delta": {"tool_calls": [{"index": k, "function": {"arguments": call.arguments}}]},
                   "logprobs": None, "finish_reason": None}
        if reason is not None:
            yield {"index": index, "delta": {}, "logprobs": None,
                   "finish_reason": "tool_calls" if calls else reason}

    async def _leaks(self, json_answer: str | None, calls: list[Call]) -> bool:
        guard = self.plan.guard if self.plan is not None else None
        if guard is None:
            return False
        texts = [call_text(c) for c in calls]
        if json_answer is not None:
            texts.append(json_text(json_answer) or "")
        texts = [t for t in texts if t]
        if not texts:
            return False

        def scan() -> bool:
            for text in texts:
                state = guard.start()
                if state.feed(text).tripped:
                    return True
                state.finish()
                if state.tripped:
                    return True
            return False

        return await asyncio.to_thread(scan)  # the guard's judge may run detection

    def _cut(self) -> tuple[str, list[Call], str]:
        """Nothing of a leaking call or JSON answer is sent: content_filter, or the policy's sentence."""
        if self.plan is not None and self.plan.refusal_text is not None and not self.hold:
            return self.plan.refusal_text, [], "stop"
        return "", [], "content_filter"


class _Rewinding:
    """One choice's outputs, continued across rewinds: what the client reads instead of the engine's.

    When the guard stops a name in a row whose policy rewinds, the engine ends the row at its last
    safe point with finish_reason "rewind". The answer then goes on as a new engine request: the
    prompt as planned for what the answer fired (its instruction, bans and steering) followed by
    the answer the client already has, so the model finishes the sentence without the name. Any
    engine serves it the same way. After `plan.rewinds` continuations, or if one cannot start,
    the answer ends at the safe point (with the ignorance sentence if nothing was said at all).
    Each choice of an n>1 request is one of these, with its own guard, bans and judge. An answer
    the plan opens (`RowPlan.opener`, already at the end of the prompt) is sent that text first;
    so is a continuation's (the model's own answer stopped at a name goes on "... well, I'm not
    sure": the planner's `continuation_opener`).

    A guarded structured answer (JSON, a tool call) is `held`: sent whole, as one output, once it
    has ended. Nothing can be continued inside JSON, so one stopped at a name starts again from
    nothing under the new plan, with its grammar's free text fixed to ignorance (`_shaped`):
    `{"city": "I don't know."}`, never half an object cut short. Where the client's schema admits
    only specifics (a required year, a choice of cities), no answer could be ignorance: the choice
    is a refusal, OpenAI's own field for a structured answer the model declines (`_refusal`).
    """

    def __init__(self, engine: Engine, request: GenerationRequest, render: Callable[[list[dict]], list[int]] | None):
        self.engine, self.request, self.render = engine, request, render
        # The refusal this choice answers with, when its format leaves it nothing but specifics.
        self.refusing = _refusal(request.params, request.plan)
        self.outputs = None if self.refusing else engine.generate(request)
        self.rewinds = request.plan.rewinds if request.plan is not None else 0
        self.tokens = 0  # completion tokens of the earlier parts that the client has
        self.answer = ""  # what the client has been sent so far
        self.done = False
        self.held = _held(request.params, request.plan)
        self._restarted = False  # a held answer started again: what was gathered of it goes
        # The first request continues only an opener of Lethe's.
        self._open(request.answer_prefix, engine.encode(request.answer_prefix) if request.answer_prefix else [])

    def __aiter__(self) -> _Rewinding:
        return self

    async def __anext__(self) -> GenerationOutput:
        if not self.held:
            return await self._step()
        text, logprobs = "", []
        while True:
            out = await self._step()
            if self._restarted:
                text, logprobs, self._restarted = "", [], False
            text, logprobs = text + out.text, logprobs + out.logprobs
            if out.finish_reason is not None:
                out.text, out.logprobs = text, logprobs
                return out

    async def _step(self) -> GenerationOutput:
        if self.done:
            raise StopAsyncIteration
        if self.refusing:
            self.done = True
            return self._refused()
        if self.opener:
            out, self.opener = self._opening(), ""
            self.answer += out.text
            return out
        out = await self.outputs.__anext__()
        self.answer += out.text
        out.token_count += self.tokens
        if out.finish_reason != "rewind":
            self.done = out.finish_reason is not None
            return out
        self.tokens = out.token_count
        out.finish_reason, resume, out.resume = None, out.resume, None
        if self.held:  # none of it was sent: it starts again (or ends with nothing of it)
            self.answer, self.tokens, self._restarted = "", 0, True
            out.text, out.logprobs, out.token_count = "", [], 0
        outputs = await self._continuation(resume) if self.rewinds > 0 else None
        if self.done:  # closed while the continuation was planned
            if outputs is not None:
                outputs.close()
            raise StopAsyncIteration
        if outputs is None and self.held:
            self.done = True
            if self.refusing:
                return self._refused()
            out.finish_reason = "content_filter"
            return out
        if outputs is None:
            plan = self.request.plan
            # Nothing said, or only the opener that begins it: the ignorance sentence. A triggered
            # answer always starts with an opener, so a client's own text mid-sentence is followed
            # by TRAILING_OFF, which the sentence does not begin, and gets nothing glued on.
            if plan.refusal_text is not None and plan.refusal_text.startswith(self.answer.strip()):
                out.text += refusal_ending(self.answer, plan.refusal_text)
            out.finish_reason = "stop" if self.tokens < self.request.params.max_tokens else "length"
            self.done = True
            return out
        self.rewinds -= 1
        self.outputs = outputs
        return out

    def _open(self, opener: str, opener_ids: list[int]) -> None:
        """The next output sends `opener` (Lethe's words, at the end of the prompt) before the engine's."""
        self.opener, self.opener_ids = opener, opener_ids
        self.tokens += len(opener_ids)

    def _refused(self) -> GenerationOutput:
        sentence = self.refusing
        return GenerationOutput(sentence, len(self.engine.encode(sentence)), len(self.request.prompt_ids), [], "refusal")

    def _opening(self) -> GenerationOutput:
        params = self.request.params
        logprobs = []
        for token in self.opener_ids if params.logprobs else []:
            text = self.engine.tokenizer.decode([token])
            raw = list(text.encode())
            # Lethe's words, not sampled: the answer had no other way to begin, and the model's own
            # alternatives there would show what it would have said about the target.
            top = [TopLogprob(text, 0.0, raw)] if params.top_logprobs else []
            logprobs.append(TokenLogprob(text, 0.0, raw, top))
        return GenerationOutput(self.opener, self.tokens, len(self.request.prompt_ids), logprobs)

    async def _continuation(self, resume: Resume) -> RowOutputs | None:
        plan, params = self.request.plan, self.request.params
        if plan.replan is None or self.render is None:
            return None
        try:
            planned, new_plan = await asyncio.to_thread(plan.replan, resume.answer, self.answer)
            prompt = await asyncio.to_thread(self.render, planned) + resume.prefix_ids
        except Exception:  # detection or rendering failed: end at the safe point, closed
            log.exception("planning the continuation of a rewound answer failed")
            return None
        opener = new_plan.opener if new_plan is not None else ""
        opener_ids = self.engine.encode(opener) if opener else []
        prompt += opener_ids
        room = min(params.max_tokens - self.tokens - len(opener_ids), self.engine.max_model_len - len(prompt))
        if room < 1:
            return None
        shaped = _shaped(replace(params, max_tokens=room), new_plan)
        if self.held:
            self.refusing = _refusal(shaped, new_plan)  # what it fired leaves the format only specifics
            if self.refusing:
                return None
        request = GenerationRequest(uuid.uuid4().hex, prompt, shaped, new_plan, answer_prefix=self.answer + opener)
        try:
            outputs = self.engine.generate(request)
        except EngineOverloaded:
            return None
        self._open(opener, opener_ids)
        return outputs

    def close(self) -> None:
        self.done = True
        if self.outputs is not None:
            self.outputs.close()

    async def aclose(self) -> None:
        self.close()


class _Echo:
    """Text completion chunks, the prompt first when `echo` asks for it."""

    def __init__(self, echoes: dict[int, str]):
        self._pending = dict(echoes)

    async def chunks(self, index: int, out: GenerationOutput, logprobs: bool):
        yield {"index": index, "text": self._pending.pop(index, "") + out.text,
               "logprobs": _completion_logprobs(out.logprobs) if logprobs else None, "finish_reason": out.finish_reason}


# ---- helpers -------------------------------------------------------------------------------------


def _held(params: SamplingParams, plan: RowPlan | None) -> bool:
    """A guarded structured answer is sent whole once it has ended: a forgotten name spelled in
    JSON escapes passes the stream guard (decoded JSON is checked again at the end), and one the
    guard stops starts again rather than leave half an object."""
    return params.structured is not None and plan is not None and plan.guard is not None


def _refusal(params: SamplingParams, plan: RowPlan | None) -> str | None:
    """The refusal of a triggered structured answer whose format, with its free text fixed to
    ignorance, still admits only specifics (any year, city of an enum or true/false it gave would
    be known or made up); None for every other answer."""
    structured = params.structured
    if plan is None or not plan.ignorant_strings or structured is None or structured.json is None:
        return None
    return plan.ignorant_strings[0] if states_specifics(structured.json) else None


def _shaped(params: SamplingParams, plan: RowPlan | None) -> SamplingParams:
    """A triggered structured answer keeps its shape and says it does not know: the client's
    grammar with its free-text strings fixed to the plan's sentences of ignorance."""
    if plan is None or not plan.ignorant_strings or params.structured is None:
        return params
    return replace(params, structured=StructuredOutput(json=ignorant_schema(params.structured.json, plan.ignorant_strings)))



def template_role(role: str) -> str:
    # "developer" is OpenAI's newer name for the system role; chat templates know only "system".
    # "function" is the legacy name of a tool result.
    return {"developer": "system", "function": "tool"}.get(role, role)


def _conversation(req: ChatCompletionRequest) -> list[dict[str, str]]:
    """The messages as the template and the detector read them: text, earlier calls written out."""
    messages = []
    for i, m in enumerate(req.messages):
        unsupported = m.unsupported_part()
        if unsupported is not None:
            j, kind = unsupported
            raise bad_request(f"content parts of type '{kind}' are not supported: the served model reads text only",
                              param=f"messages[{i}].content[{j}]", code="unsupported_content")
        content = m.text()
        if m.role == "assistant" and m.calls():
            content = history_content(content, m.calls())
        messages.append({"role": template_role(m.role), "content": content})
    return messages


def _tool_use(req: ChatCompletionRequest) -> ToolUse | None:
    functions = req.tool_defs()
    choice = req.choice_of_tool()
    param = "tool_choice" if req.tool_choice is not None else "function_call"
    if choice == "none":
        return None
    if not functions:
        raise bad_request(f"{param} '{choice}' needs tools", param=param)
    if choice not in ("auto", "required") and choice not in {f.name for f in functions}:
        raise bad_request(f"tool_choice names '{choice}', which is not among the tools", param=param)
    if len({f.name for f in functions}) != len(functions):
        raise bad_request("tool names must be unique", param="tools")
    return ToolUse(tuple(functions), choice, req.parallel_tool_calls is not False)


def _structured(req: ChatCompletionRequest, tools: ToolUse | None) -> tuple[StructuredOutput | None, str | None]:
    """The grammar of the answer and the parameter that asked for it (named in a schema error)."""
    if tools is not None and tools.constrained:
        return StructuredOutput(json=tools.call_schema()), "tools"
    fmt = req.response_format
    if isinstance(fmt, JsonObjectFormat):
        return StructuredOutput(json_object=True), "response_format"
    if isinstance(fmt, JsonSchemaFormat):
        schema = fmt.json_schema.schema_ or {"type": "object"}
        return StructuredOutput(json=json.dumps(schema)), "response_format.json_schema.schema"
    return None, None


def _log_ignored(req) -> None:
    """Parameters with no meaning here are accepted; each is logged once per process."""
    for name in req.ignored_fields():
        if name not in _LOGGED_IGNORED:
            _LOGGED_IGNORED.add(name)
            log.info("accepting and ignoring the parameter '%s' (no meaning for a self-hosted model)", name)


def _with_seed(params: SamplingParams, seed: int) -> SamplingParams:
    return replace(params, seed=seed)


def _usage(prompt_tokens: int, choices: list[_Choice]) -> dict:
    completion = sum(c.tokens for c in choices)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def _overloaded(exc: Exception) -> APIError:
    return APIError(429, "The server is overloaded; retry shortly.", type="rate_limit_error",
                    code="server_overloaded", headers={"Retry-After": "1"})


def _close(streams: list[tuple[int, RowOutputs]]) -> None:
    """Aborts the generations not read to their end (finished ones are left alone)."""
    for _, stream in streams:
        stream.close()


class GenerationFailed(Exception):
    """A generation ended in an engine error; carries the OpenAI-shaped error for the client."""

    def __init__(self) -> None:
        super().__init__("generation failed")
        self.error = APIError(500, "The server had an error while generating the completion; retry the request.",
                              type="server_error", code="generation_failed")


def _checked(out: GenerationOutput) -> GenerationOutput:
    # "error" is the engine's word, never a finish_reason any OpenAI client knows.
    if out.finish_reason == "error":
        raise GenerationFailed()
    return out


async def _collect(index: int, stream: AsyncIterator[GenerationOutput]) -> _Choice:
    choice = _Choice(index)
    async with aclosing(stream):
        async for out in stream:
            _checked(out)
            choice.text += out.text
            choice.logprobs.extend(out.logprobs)
            choice.tokens = out.token_count
            choice.finish_reason = out.finish_reason or choice.finish_reason
    return choice


async def _merge(streams: list[tuple[int, AsyncIterator[GenerationOutput]]]) -> AsyncIterator[tuple[int, GenerationOutput]]:
    """Interleaves n generations as their outputs arrive; closing it closes (and aborts) them all."""
    if len(streams) == 1:
        index, stream = streams[0]
        async with aclosing(stream):
            async for out in stream:
                yield index, _checked(out)
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(index, stream):
        try:
            async with aclosing(stream):
                async for out in stream:
                    await queue.put((index, out, None))
        except Exception as exc:  # surfaced to the consumer below
            await queue.put((index, None, exc))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in streams]
    try:
        remaining = len(tasks)
        while remaining:
            index, out, exc = await queue.get()
            if exc is not None:
                raise exc
            _checked(out)
            if out.finish_reason is not None:
                remaining -= 1
            yield index, out
    finally:
        for task in tasks:
            task.cancel()


async def _disconnected(http: Request) -> None:
    while True:
        message = await http.receive()
        if message["type"] == "http.disconnect":
            return


def _chat_logprobs(items: list[TokenLogprob]) -> dict:
    return {"content": [
        {"token": t.token, "logprob": t.logprob, "bytes": t.bytes,
         "top_logprobs": [{"token": x.token, "logprob": x.logprob, "bytes": x.bytes} for x in t.top_logprobs]}
        for t in items
    ]}


def _completion_logprobs(items: list[TokenLogprob]) -> dict:
    offsets, position = [], 0
    for t in items:
        offsets.append(position)
        position += len(t.token)
    return {"tokens": [t.token for t in items], "token_logprobs": [t.logprob for t in items],
            "top_logprobs": [{x.token: x.logprob for x in t.top_logprobs} for t in items], "text_offset": offsets}
