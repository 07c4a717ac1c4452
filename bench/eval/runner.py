"""Runs a suite against a live gateway, as a user would: the official `openai` client, one tenant per column.

Columns are "base" (a tenant with no targets) and one tenant per response policy with the suite's
targets registered. Every item is asked of every column concurrently (the gateway batches), then
each item is put to the detect endpoint once (detection does not depend on the policy), then a
short sequential pass times what Lethe adds per request.
"""

from __future__ import annotations

import asyncio
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
    text: str
    finish_reason: str | None
    latency_s: float
    tokens: int
    error: str | None = None


@dataclass
class RunResult:
    model: str
    columns: list[Column]
    answers: dict[str, dict[str, Answer]] = field(default_factory=dict)  # column label -> item id -> answer
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


async def _ask(client: openai.AsyncOpenAI, model: str, item: Item, max_tokens: int) -> Answer:
    started = time.perf_counter()
    try:
        reply = await client.chat.completions.create(model=model, messages=item.messages, temperature=0,
                                                     max_tokens=max_tokens)
    except openai.APIError as exc:
        return Answer("", None, time.perf_counter() - started, 0, error=str(exc)[:300])
    choice = reply.choices[0]
    return Answer(choice.message.content or "", choice.finish_reason, time.perf_counter() - started,
                  reply.usage.completion_tokens if reply.usage else 0)


async def _detect(http: httpx.AsyncClient, item: Item) -> list[str]:
    reply = await http.post("/v1/forget-targets/detect", json={"messages": item.messages})
    reply.raise_for_status()
    return [d["name"] for d in reply.json()["data"]]


async def _collect(base_url: str, model: str, columns: list[Column], suite: Suite, max_tokens: int,
                   concurrency: int, result: RunResult) -> None:
    limit = asyncio.Semaphore(concurrency)
    clients = {c.label: openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=c.api_key, max_retries=2, timeout=600)
               for c in columns}
    detector = next((c for c in columns if c.label != "base"), None)
    total = len(suite.items) * (len(columns) + (detector is not None))
    bar = tqdm(total=total, desc="eval", unit="req")

    async def answer(column: Column, item: Item) -> None:
        async with limit:
            result.answers.setdefault(column.label, {})[item.id] = await _ask(clients[column.label], model, item, max_tokens)
        bar.update()

    async def detect(http: httpx.AsyncClient, item: Item) -> None:
        async with limit:
            result.fired[item.id] = await _detect(http, item)
        bar.update()

    try:
        # Item-major order: every column sees the same load while an item is in flight.
        jobs = [answer(c, i) for i in suite.items for c in columns]
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
        latency_prompts: int) -> RunResult:
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
        asyncio.run(_collect(base_url, model, columns, suite, max_tokens, concurrency, result))
        if latency_prompts and len(columns) > 1:
            half = latency_prompts // 2
            pool = [i for pair in zip(suite.by_split("retain")[:half], suite.by_split("forget")[:half]) for i in pair]
            asyncio.run(_time_overhead(base_url, model, columns, pool, result.fired, result))
        return result
    finally:
        for column in columns:
            gateway.delete_tenant(column)
        gateway.close()
