"""Settings: defaults, overridden by a YAML file, overridden by LETHE_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .model_loader import default_cache_dir
from .policy import ResponsePolicy


@dataclass
class Settings:
    model: str = "embedded"  # "embedded", a .gguf file, or a transformers model directory
    served_model_name: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int = 4096
    max_batch_size: int = 32
    max_waiting: int = 256
    default_max_tokens: int = 512
    max_body_bytes: int = 4 * 1024 * 1024
    cache_dir: Path = field(default_factory=default_cache_dir)
    admin_key: str | None = None  # set LETHE_ADMIN_KEY; without it the admin API is closed
    db_path: Path | None = None  # SQLite file; default <cache_dir>/lethe.db
    max_targets_per_tenant: int = 100_000
    requests_per_minute: int = 1200  # per tenant: chat, completions and /detect (each buys model or detector time); 0 = unlimited
    target_writes_per_minute: int = 600  # per tenant, forget-target create/update/delete/toggle
    # The response policy tenants get unless they override it (gateway/policy.py).
    interventions: list[str] = field(default_factory=lambda: ResponsePolicy().as_dict()["interventions"])
    refusal: str = "sentence"
    on_detector_error: str = "closed"
    log_level: str = "info"

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **overrides) -> "Settings":
        values: dict = {}
        if path:
            with open(path) as fh:
                values.update(yaml.safe_load(fh) or {})
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        for name, f in known.items():
            env = os.environ.get(f"LETHE_{name.upper()}")
            if env is not None:
                values[name] = _parse_env(env, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.cache_dir = Path(settings.cache_dir).expanduser()
        settings.db_path = Path(settings.db_path).expanduser() if settings.db_path else settings.cache_dir / "lethe.db"
        return settings

    def response_policy(self) -> ResponsePolicy:
        """The default policy; raises ValueError naming the bad setting (checked in ResponsePolicy)."""
        return ResponsePolicy(frozenset(self.interventions), self.refusal, self.on_detector_error)


def _parse_env(raw: str, type_name) -> object:
    type_name = str(type_name)
    if type_name.startswith("int"):
        return int(raw)
    if type_name.startswith("list"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw
