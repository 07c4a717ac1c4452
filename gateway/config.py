"""Settings: defaults, overridden by a YAML file, overridden by LETHE_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .model_loader import default_cache_dir
from .policy import ResponsePolicy


ENGINES = ("hf", "vllm")


@dataclass
class Settings:
    model: str = "embedded"  # "embedded", a .gguf file, or a transformers model directory
    engine: str = "hf"  # "hf": the in-process transformers engine; "vllm": vLLM's AsyncLLM (pip install '.[vllm]')
    # vLLM only, passed through to its engine arguments (README: 1 GPU, tensor parallel, multi-node).
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    distributed_executor_backend: str | None = None  # "ray" across nodes; vLLM picks when unset
    enforce_eager: bool = True  # steering hooks only fire eagerly; a compiled engine needs steering: false
    engine_args: dict = field(default_factory=dict)  # any other vLLM engine argument, verbatim
    # Steering needs hooks inside the model; false turns it off server-wide (every other intervention stays).
    steering: bool = True
    # Fact terms (what the served model answers about each target, probed at registration: about
    # 10 s of CPU per target here); false: triggered rows keep out names and forbidden strings only.
    fact_terms: bool = True
    # Probe questions decoding at once. Each joins the batch every live stream steps with, so more
    # makes targets ready sooner and live streams' token gaps longer (bench/registration_bench.py).
    probe_rows: int = 32
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
    refusal: str = "rewind"
    on_detector_error: str = "closed"
    # A triggered row sampled at temperature > 0 draws only from tokens at least this likely relative
    # to the likeliest (vLLM's min_p; the client's own, if higher, stands). Steering flattens the
    # distribution, and plain sampling from its tail is word salad (bench/steering_sweep.py).
    triggered_min_p: float = 0.3
    # A plain question that fires a target only semantically (no name in it) is first answered by
    # the served model itself, greedily and unseen; the target stays fired only if that answer names
    # it ("Which planet has the Great Red Spot?" -> Jupiter: not Mars). The same answer decides
    # whether a target only earlier turns touched is still what the conversation is about ("What is
    # its capital city?") or in the background ("What is 2 plus 2?"). Off: both stay fired.
    # README "Near is not about" and "Earlier turns".
    verify_semantic: bool = True
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

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.probe_rows < 1:
            raise ValueError(f"probe_rows must be at least 1, not {self.probe_rows}")

    def response_policy(self) -> ResponsePolicy:
        """The default policy; raises ValueError naming the bad setting (checked in ResponsePolicy)."""
        return ResponsePolicy(frozenset(self.interventions), self.refusal, self.on_detector_error)


def _parse_env(raw: str, type_name) -> object:
    type_name = str(type_name)
    if type_name.startswith("int"):
        return int(raw)
    if type_name.startswith("float"):
        return float(raw)
    if type_name.startswith("bool"):
        if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"expected a boolean, got {raw!r}")
        return raw.lower() in ("1", "true", "yes", "on")
    if type_name.startswith("dict"):
        return yaml.safe_load(raw) or {}
    if type_name.startswith("list"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw
