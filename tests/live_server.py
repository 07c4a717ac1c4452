"""A real uvicorn server on a free loopback port, serving the embedded model.

A module of its own (not conftest) so test files import it by a name no sub-folder conftest shadows."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.evaluation.launcher import free_port, launch, stop_process  # noqa: F401 (tests import free_port from here)

ROOT = Path(__file__).resolve().parents[1]
# Small limits keep the vLLM server light on a 2-core CI box, and make its queue easy to fill.
VLLM_ENV = {"LETHE_ENGINE": "vllm", "LETHE_MAX_MODEL_LEN": "1024", "LETHE_MAX_BATCH_SIZE": "8",
            "LETHE_MAX_WAITING": "8"}
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class Server:
    base_url: str
    api_key: str  # a tenant's key, created at start
    process: subprocess.Popen
    log_path: Path
    admin_key: str
    env: dict
    capacity: int = 0  # rows running + waiting before a 429, where a test set it
    health_seen: list = None  # the /healthz statuses answered while starting, in order

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=120)

    def new_tenant(self, name: str = "tenant") -> tuple[str, str]:
        with self.admin() as admin:
            reply = admin.post("/admin/tenants", json={"name": name})
            reply.raise_for_status()
            body = reply.json()
        return body["id"], body["api_key"]

    def tenant_with(self, policy: dict | None = None, targets=(), name: str = "tenant") -> str:
        """A new tenant's key, its policy overrides and forget targets set."""
        with self.admin() as admin:
            reply = admin.post("/admin/tenants", json={"name": name, **({"policy": policy} if policy else {})})
            assert reply.status_code == 201, reply.text
            key = reply.json()["api_key"]
        with self.http(key) as http:
            for target in targets:
                reply = http.post("/v1/forget-targets", json=target)
                assert reply.status_code == 201, reply.text
        return key

    @property
    def v1(self) -> str:
        return self.base_url + "/v1"

    def client(self, key: str | None = None):
        import openai

        return openai.OpenAI(base_url=self.v1, api_key=key or self.api_key, max_retries=0, timeout=120)

    def async_client(self, key: str | None = None):
        import openai

        return openai.AsyncOpenAI(base_url=self.v1, api_key=key or self.api_key, max_retries=0, timeout=120)

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key or self.api_key}"}, timeout=120)

    def settled(self, key: str, target_id: str, timeout: float = 300) -> dict:
        """The target once its background work (steering vectors, fact terms) is no longer pending."""
        deadline = time.monotonic() + timeout
        with self.http(key) as http:
            while time.monotonic() < deadline:
                target = http.get(f"/v1/forget-targets/{target_id}").json()
                if target["status"] != "pending":
                    return target
                time.sleep(0.5)
        raise AssertionError(f"target {target_id} still pending after {timeout:.0f} s")

    def stop(self) -> None:
        stop_process(self.process)


def detected_names(http: httpx.Client, text: str) -> list[str]:
    """The names of the targets /v1/forget-targets/detect fires on one user message."""
    reply = http.post("/v1/forget-targets/detect", json={"messages": [{"role": "user", "content": text}]})
    assert reply.status_code == 200, reply.text
    return [d["name"] for d in reply.json()["data"]]


def start_server(tmp_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 240) -> Server:
    launched = launch(tmp_dir, extra_env, timeout)
    server = Server(launched.base_url, "", launched.process, launched.log_path, launched.admin_key, launched.env,
                    health_seen=launched.health_seen)
    server.api_key = server.new_tenant("default")[1]
    return server
