"""A gateway in a subprocess on a free loopback port: what `lethe eval` measures when given no --base-url.

The tests' live server (tests/live_server.py) starts its servers through this too, so the eval and
the tests always measure the same way of serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Launched:
    base_url: str
    admin_key: str
    process: subprocess.Popen
    log_path: Path
    env: dict
    health_seen: list = field(default_factory=list)  # the /healthz statuses answered while starting, in order

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen) -> None:
    """Asks the server to shut down, and kills it if it has not within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def launch(tmp_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 240,
           config: Path | None = None) -> Launched:
    """Start `lethe serve` with a fresh database and admin key; return once /healthz answers 200."""
    port = free_port()
    admin_key = "admin-" + os.urandom(8).hex()
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "LETHE_ADMIN_KEY": admin_key,
           "LETHE_DB_PATH": str(tmp_dir / "lethe.db"), "LETHE_LOG_LEVEL": "info", **(extra_env or {})}
    log_path = tmp_dir / f"server-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config or ROOT / "configs" / "default.yaml"),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout  # the first run converts the GGUF (about a minute)
    seen: list[tuple[int, str]] = []
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()[-3000:]}")
        try:
            health = httpx.get(base + "/healthz", timeout=2)
            status = (health.status_code, health.json().get("status"))
            if not seen or seen[-1] != status:
                seen.append(status)
            if health.status_code == 200:
                return Launched(base, env["LETHE_ADMIN_KEY"], process, log_path, env, seen)
        except (httpx.HTTPError, ValueError):  # not up yet, or not answering JSON yet
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"server did not become healthy:\n{log_path.read_text()[-3000:]}")
