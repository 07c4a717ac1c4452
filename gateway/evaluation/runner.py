"""Runs a suite against a live gateway, as a user would: the official `openai` client, one tenant per column.

Columns are "base" (a tenant with no targets) and one tenant per response policy with the suite's
targets registered. Every item is asked of every column greedily, and the forget and attack items
chosen for sampling k more times at temperature 1 (the client SDK's default: suppression that only
holds greedily is not suppression), all concurrently (the gateway batches); each item is put to the
detect endpoint once (detection does not depend on the policy); then a short sequential pass times
what Lethe adds per request. A request that fails is kept as an Answer with its error and status:
the metrics count it as a failure, never as a non-leak.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field

import httpx
import openai
from tqdm import tqdm

from . import policies
from .suite import Item, Suite

log = logging.getLogger("lethe.eval")


@dataclass
class Column:
    label: str
    tenant_id: str
    api_key: str
    policy: list[str] | None  # interventions asked for; None: the server's default
    policy_applied: dict | None = None  # what the server reports it will use


@dataclass
class Answer:
    text: str  # the first choice, as the client got it (a prefill is not repeated)
    finish_reason: str | None
    latency_s: float
    tokens: int
    error: str | None = None
    status: int | None = None  # HTTP status of a failed request (None: no answer at all)
    choices: list[str] = field(default_factory=list)  # every choice of an n>1 request
    # For requests with logprobs: per position, the text generated before it and the alternatives the
    # server listed there. A fact among them leaks as surely as a fact in the text.
    alternatives: list[tuple[str, list[str]]] = field(default_factory=list)
    # For a request that fixes the answer's shape (a response format, a forced tool call): whether
    # the reply came back out of it (content that is no JSON, no call, arguments that do not parse).
    malformed: bool | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class RunResult:
    model: str
    columns: list[Column]
    answers: dict[str, dict[str, Answer]] = field(default_factory=dict)  # column label -> item id -> greedy answer
    # column label -> item id -> the k answers sampled at temperature 1 (leak@k)
    samples: dict[str, dict[str, list[Answer]]] = field(default_factory=dict)
    fired: dict[str, list[str]] = field(default_factory=dict)  # item id -> names of targets that fired
    latency: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # column -> kind -> added seconds


class Gateway:
    """Admin and tenant calls against one gateway."""

    def __init__(self, base_url: str, admin_key: str):
        self.base_url = base_url.rstrip("/")
        self.admin = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=120)

    def tenant_http(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120)

    def create_tenant(self, label: str, interventions: list[str] | None) -> Column:
        name = f"eval-{label.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
        body: dict = {"name": name}
        if interventions is not None:
            body["policy"] = {"interventions": interventions}
        reply = self.admin.post("/admin/tenants", json=body)
        if reply.status_code == 400 and interventions is not None:
            # A gateway without per-tenant policies: measure its default rather than fail.
            log.warning("the gateway refused a tenant policy (%s); using its default", reply.text[:200])
            reply = self.admin.post("/admin/tenants", json={"name": name})
            label, interventions = policies.SERVER_DEFAULT_LABEL, None
        reply.raise_for_status()
        data = reply.json()
        return Column(label, data["id"], data["api_key"], interventions, data.get("policy"))

    def register(self, column: Column, targets: list[dict], timeout: float = 600) -> None:
        fields = ("name", "aliases", "description", "examples", "forbidden", "negatives")
        with self.tenant_http(column.api_key) as http:
            for target in targets:
                http.post("/v1/forget-targets", json={k: target[k] for k in fields if k in target}).raise_for_status()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:  # steering vectors may be computed in the background
                pending = [t["name"] for t in http.get("/v1/forget-targets").json()["data"] if t["status"] == "pending"]
                if not pending:
                    return
                time.sleep(1)
        raise TimeoutError(f"targets still pending after {timeout:.0f} s: {pending}")

    def delete_tenant(self, column: Column) -> None:
        try:
            self.admin.delete(f"/admin/tenants/{column.tenant_id}")
        except httpx.HTTPError:
            pass

    def close(self) -> None:
        self.admin.close()


@dataclass(frozen=True)
class Sampling:
    """How one pass samples: greedy once, or `k` draws at `temperature` (seeded, so a rerun repeats)."""
    temperature: float
    k: int = 1
    top_p: float | None = None


GREEDY = Sampling(0.0)


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


async def _ask(client: openai.AsyncOpenAI, model: str, item: Item, max_tokens: int, sampling: Sampling = GREEDY,
               seed: int | None = None) -> Answer:
    """One request as the item says (chat or raw completion, its extra parameters); a failure is an
    Answer with `error` set, never an exception, so it is counted rather than lost."""
    params: dict = {"model": model, "temperature": sampling.temperature, "max_tokens": max_tokens, **item.params}
    if seed is not None:
        params["seed"] = seed
    if sampling.top_p is not None:
        params["top_p"] = sampling.top_p
    started = time.perf_counter()
    malformed = None
    try:
        if item.endpoint == "completions":
            if "top_logprobs" in params:
                params["logprobs"] = params.pop("top_logprobs")
            reply = await client.completions.create(prompt=item.prompt, **params)
            texts = [c.text or "" for c in reply.choices]
            alternatives = _completion_alternatives(reply.choices[0])
        else:
            if "top_logprobs" in params:
                params["logprobs"] = True
            reply = await client.chat.completions.create(messages=item.messages, **params)
            texts = [_said(c.message) for c in reply.choices]
            alternatives = _chat_alternatives(reply.choices[0])
            malformed = _malformed(params, reply.choices[0].message) if reply.choices else None
    except (openai.APIError, httpx.HTTPError) as exc:
        return Answer("", None, time.perf_counter() - started, 0, error=str(exc)[:300], status=_status(exc))
    if not reply.choices:
        return Answer("", None, time.perf_counter() - started, 0, error="no choices in the reply", status=200)
    return Answer(texts[0], reply.choices[0].finish_reason, time.perf_counter() - started,
                  reply.usage.completion_tokens if reply.usage else 0, choices=texts, alternatives=alternatives,
                  malformed=malformed)


def _said(message) -> str:
    """All a chat answer says: its text, its refusal and the arguments of any tool call it makes (a
    fact passed to a tool leaks as surely as one written out)."""
    calls = [c.function.arguments or "" for c in message.tool_calls or [] if getattr(c, "function", None)]
    return "\n".join(filter(None, [message.content or "", getattr(message, "refusal", None) or "", *calls]))


def _malformed(params: dict, message) -> bool | None:
    """Whether a chat answer whose shape the request fixed came back out of it; None where the
    answer may take any shape (a tool the model may call or not included). A refusal is a shape
    OpenAI's structured outputs have (`message.refusal`, which the SDKs' parse() reads)."""
    if getattr(message, "refusal", None):
        return False
    shape = (params.get("response_format") or {}).get("type")
    choice = params.get("tool_choice")
    if shape in ("json_object", "json_schema"):
        return not _parses(message.content)
    if isinstance(choice, dict) or choice == "required":
        calls = message.tool_calls or []
        return not calls or not all(_parses(c.function.arguments) for c in calls)
    return None


def _parses(text: str | None) -> bool:
    try:
        json.loads(text or "")
    except ValueError:
        return False
    return True


def _chat_alternatives(choice) -> list[tuple[str, list[str]]]:
    content = getattr(getattr(choice, "logprobs", None), "content", None) or []
    out, before = [], ""
    for position in content:
        out.append((before, [alt.token for alt in position.top_logprobs or []]))
        before += position.token
    return out


def _completion_alternatives(choice) -> list[tuple[str, list[str]]]:
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is None or not logprobs.tokens:
        return []
    out, before = [], ""
    for token, top in zip(logprobs.tokens, logprobs.top_logprobs or [{}] * len(logprobs.tokens)):
        out.append((before, list((top or {}).keys())))
        before += token
    return out


async def _detect(http: httpx.AsyncClient, item: Item) -> list[str]:
    reply = await http.post("/v1/forget-targets/detect", json={"messages": item.messages})
    reply.raise_for_status()
    return [d["name"] for d in reply.json()["data"]]


async def _collect(base_url: str, model: str, columns: list[Column], suite: Suite, max_tokens: int,
                   concurrency: int, result: RunResult, sampled: list[Item], sampling: Sampling | None,
                   base_k: int | None) -> None:
    limit = asyncio.Semaphore(concurrency)
    clients = {c.label: openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=c.api_key, max_retries=2, timeout=600)
               for c in columns}
    detector = next((c for c in columns if c.label != "base"), None)

    def draws(column: Column) -> int:
        return 0 if sampling is None else (base_k if column.label == "base" and base_k is not None else sampling.k)

    total = len(suite.items) * (len(columns) + (detector is not None)) + sum(len(sampled) * draws(c) for c in columns)
    bar = tqdm(total=total, desc="eval", unit="req")

    async def answer(column: Column, item: Item) -> None:
        async with limit:
            result.answers.setdefault(column.label, {})[item.id] = await _ask(clients[column.label], model, item, max_tokens)
        bar.update()

    async def sample(column: Column, item: Item, draw: int) -> None:
        async with limit:
            got = await _ask(clients[column.label], model, item, max_tokens, sampling, seed=draw)
        result.samples.setdefault(column.label, {}).setdefault(item.id, []).append(got)
        bar.update()

    async def detect(http: httpx.AsyncClient, item: Item) -> None:
        async with limit:
            result.fired[item.id] = await _detect(http, item)
        bar.update()

    try:
        # Item-major order: every column sees the same load while an item is in flight.
        jobs = [answer(c, i) for i in suite.items for c in columns]
        jobs += [sample(c, i, d) for i in sampled for c in columns for d in range(draws(c))]
        if detector is not None:
            async with httpx.AsyncClient(base_url=base_url, timeout=120,
                                         headers={"Authorization": f"Bearer {detector.api_key}"}) as http:
                await asyncio.gather(*jobs, *(detect(http, i) for i in suite.items))
        else:
            await asyncio.gather(*jobs)
    finally:
        bar.close()
        for client in clients.values():
            await client.close()


async def _time_overhead(base_url: str, model: str, columns: list[Column], items: list[Item], fired: dict,
                         result: RunResult) -> None:
    """Paired, sequential, one new token: what detection, planning and the extra prompt cost per request.
    Base and policy calls alternate, so drift of the (shared) machine hits both alike."""
    clients = {c.label: openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=c.api_key, max_retries=2, timeout=120)
               for c in columns}
    base, others = columns[0], columns[1:]
    try:
        await _ask(clients[base.label], model, items[0], 1)  # warm-up
        for k, item in enumerate(tqdm(items, desc="latency", unit="prompt")):
            kind = "triggered" if fired.get(item.id) else "untriggered"
            for column in others:
                if k % 2:  # alternate who goes first, so neither side gets a systematically warmer machine
                    p = await _ask(clients[column.label], model, item, 1)
                    b = await _ask(clients[base.label], model, item, 1)
                else:
                    b = await _ask(clients[base.label], model, item, 1)
                    p = await _ask(clients[column.label], model, item, 1)
                if b.error is None and p.error is None:
                    result.latency.setdefault(column.label, {}).setdefault(kind, []).append(p.latency_s - b.latency_s)
    finally:
        for client in clients.values():
            await client.close()


def run(base_url: str, admin_key: str, suite: Suite, policy_names: list[str], max_tokens: int, concurrency: int,
        latency_prompts: int, sampled: list[Item] = (), sampling: Sampling | None = None,
        base_k: int | None = None) -> RunResult:
    """Greedy answers to every item from every column, plus `sampling.k` draws of each `sampled` item
    (`base_k` of them for the base column, whose sampled answers are only a reference)."""
    gateway = Gateway(base_url, admin_key)
    columns: list[Column] = []
    try:
        columns.append(gateway.create_tenant("base", None))
        with gateway.tenant_http(columns[0].api_key) as http:
            model = http.get("/v1/models").json()["data"][0]["id"]
        for name in policy_names:
            column = gateway.create_tenant(policies.label(name), policies.PRESETS[name])
            if any(c.label == column.label for c in columns):  # a fallback can collapse two policies into one
                gateway.delete_tenant(column)
                continue
            gateway.register(column, suite.targets)
            columns.append(column)
        result = RunResult(model, columns)
        asyncio.run(_collect(base_url, model, columns, suite, max_tokens, concurrency, result, list(sampled), sampling,
                             base_k))
        if latency_prompts and len(columns) > 1:
            half = latency_prompts // 2
            pool = [i for pair in zip(suite.by_split("retain")[:half], suite.by_split("forget")[:half]) for i in pair]
            if pool:
                asyncio.run(_time_overhead(base_url, model, columns, pool, result.fired, result))
            else:  # a suite of attacks only (--suite)
                log.warning("no retain and forget questions to pair: added latency not measured")
        return result
    finally:
        for column in columns:
            gateway.delete_tenant(column)
        gateway.close()
