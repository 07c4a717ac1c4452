"""Chat and text completions: turns validated OpenAI requests into engine requests and back.

The only place that knows both the OpenAI wire format and the engine interface. Everything
about *what to do* with a request (detection, steering, bans) arrives as a RowPlan from the
planner, so this module never learns how unlearning works.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Awaitable, Callable, Protocol, Sequence

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from .config import Settings
from .engines.base import (Engine, EngineOverloaded, GenerationOutput, GenerationRequest, RowOutputs, RowPlan,
                           SamplingParams, TokenLogprob)
from .errors import APIError, bad_request
from .metrics import Metrics
from .protocol import ChatCompletionRequest, CompletionRequest


class Planner(Protocol):
    """Decides, per request, what Lethe does: may rewrite the messages and returns the row plan."""

    async def plan(self, tenant, messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], RowPlan | None]: ...


class NoPlanner:
    async def plan(self, tenant, messages):
        return messages, None


@dataclass
class _Choice:
    index: int
    text: str = ""
    finish_reason: str | None = None
    tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class _Job:
    """One prompt's worth of work: its token ids and the n generations it fans out to."""

    prompt_ids: list[int]
    plan: RowPlan | None
    first_index: int


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
        messages = [{"role": _template_role(m.role), "content": m.text()} for m in req.messages]
        messages, plan = await self.planner.plan(tenant, messages)
        prompt_ids = self.engine.render_chat(messages)
        top = req.top_logprobs or 0
        if top and not req.logprobs:
            raise bad_request("top_logprobs requires logprobs to be true", param="top_logprobs")
        params = self._sampling(req, len(prompt_ids), req.max_completion_tokens or req.max_tokens, bool(req.logprobs), top)
        jobs = [_Job(prompt_ids, plan, 0)]
        response_id = f"chatcmpl-{uuid.uuid4().hex}"
        if req.stream:
            return self._stream(http, response_id, "chat.completion.chunk", jobs, req, params, self._chat_chunk)
        choices, prompt_tokens = await self._collect_all(http, jobs, req.n, params)
        return JSONResponse(
            self._envelope(response_id, "chat.completion", [self._chat_choice(c, params.logprobs) for c in choices],
                           _usage(prompt_tokens, choices))
        )

    async def completions(self, req: CompletionRequest, tenant, http: Request):
        self._check_model(req.model)
        self._check_open()
        if req.echo:
            raise bad_request("echo is not supported", param="echo")
        jobs: list[_Job] = []
        params = None
        for i, prompt in enumerate(req.prompts()):
            messages, plan = await self.planner.plan(tenant, [{"role": "user", "content": prompt}])
            # The planner may add an instruction; a raw completion has nowhere to put it but before the text.
            prefix = "".join(m["content"] + "\n\n" for m in messages[:-1])
            ids = self.engine.encode(prefix + prompt)
            if not ids:
                raise bad_request("prompt must not be empty", param="prompt")
            job_params = self._sampling(req, len(ids), req.max_tokens, req.logprobs is not None, req.logprobs or 0, default_max=16)
            params = params or job_params
            jobs.append(_Job(ids, plan, i * req.n))
        response_id = f"cmpl-{uuid.uuid4().hex}"
        if req.stream:
            return self._stream(http, response_id, "text_completion", jobs, req, params, self._completion_chunk)
        choices, prompt_tokens = await self._collect_all(http, jobs, req.n, params)
        return JSONResponse(
            self._envelope(response_id, "text_completion", [self._completion_choice(c, params.logprobs) for c in choices],
                           _usage(prompt_tokens, choices))
        )

    # ---- request -> engine --------------------------------------------------------------------

    def _check_model(self, model: str) -> None:
        if model != self.engine.model_name:
            raise APIError(404, f"The model '{model}' does not exist.", param="model", code="model_not_found")

    def _sampling(self, req, prompt_len: int, max_tokens: int | None, logprobs: bool, top: int,
                  default_max: int | None = None) -> SamplingParams:
        limit = self.engine.max_model_len
        if prompt_len >= limit:
            raise bad_request(
                f"This model's maximum context length is {limit} tokens, but the prompt has {prompt_len} tokens.",
                param="messages", code="context_length_exceeded",
            )
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
        )

    def _generations(self, jobs: Sequence[_Job], n: int, params: SamplingParams) -> list[tuple[int, RowOutputs]]:
        streams = []
        for job in jobs:
            self.metrics.prompt_tokens.inc(len(job.prompt_ids))
            for j in range(n):
                # Distinct seeds per choice, so n seeded choices are reproducible yet not all alike.
                choice_params = params if params.seed is None or j == 0 else _with_seed(params, params.seed + j)
                request = GenerationRequest(uuid.uuid4().hex, job.prompt_ids, choice_params, job.plan)
                try:
                    streams.append((job.first_index + j, self.engine.generate(request)))
                except EngineOverloaded as exc:
                    # Queued now, before any response starts: a full queue is a plain 429.
                    _close(streams)
                    raise _overloaded(exc) from None
        return streams

    async def _collect_all(self, http: Request, jobs, n, params) -> tuple[list[_Choice], int]:
        streams = self._generations(jobs, n, params)
        work = asyncio.ensure_future(asyncio.gather(*(_collect(i, s) for i, s in streams)))
        gone = asyncio.ensure_future(_disconnected(http))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not work.done():  # the client left: stop generating for it
            work.cancel()
            _close(streams)
            raise asyncio.CancelledError()
        choices = work.result()
        return sorted(choices, key=lambda c: c.index), sum(len(j.prompt_ids) for j in jobs)

    # ---- streaming ----------------------------------------------------------------------------

    def _stream(self, http, response_id, object_name, jobs, req, params, chunk):
        streams = self._generations(jobs, req.n, params)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        prompt_tokens = sum(len(j.prompt_ids) for j in jobs)
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
                        yield sse([chunk(index, out, params.logprobs)])
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
        return {"index": c.index, "message": {"role": "assistant", "content": c.text},
                "logprobs": _chat_logprobs(c.logprobs) if logprobs else None, "finish_reason": c.finish_reason}

    @staticmethod
    def _completion_choice(c: _Choice, logprobs: bool) -> dict:
        return {"index": c.index, "text": c.text, "logprobs": _completion_logprobs(c.logprobs) if logprobs else None,
                "finish_reason": c.finish_reason}

    @staticmethod
    def _chat_chunk(index: int, out: GenerationOutput, logprobs: bool) -> dict:
        delta = {"content": out.text} if out.text else {}
        return {"index": index, "delta": delta, "logprobs": _chat_logprobs(out.logprobs) if logprobs else None,
                "finish_reason": out.finish_reason}

    @staticmethod
    def _completion_chunk(index: int, out: GenerationOutput, logprobs: bool) -> dict:
        return {"index": index, "text": out.text,
                "logprobs": _completion_logprobs(out.logprobs) if logprobs else None, "finish_reason": out.finish_reason}


# ---- helpers -------------------------------------------------------------------------------------


def _template_role(role: str) -> str:
    # "developer" is OpenAI's newer name for the system role; chat templates know only "system".
    return "system" if role == "developer" else role


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


async def _collect(index: int, stream: AsyncIterator[GenerationOutput]) -> _Choice:
    choice = _Choice(index)
    async with aclosing(stream):
        async for out in stream:
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
                yield index, out
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
