"""The Engine interface on vLLM's AsyncLLM, in-process with the gateway.

vLLM schedules, batches and samples (paged attention, CUDA graphs where allowed, tensor and
pipeline parallelism). Lethe's per-row interventions ride along per request:

- token bans: `extra_args["lethe_ban"]` drives `vllm_worker.BanProcessor`, the V1 logits processor
  built on `filters.banned`;
- steering: the row's `{layer: vector}` is sent once to every worker (`collective_rpc`, keyed by its
  content) and named by `extra_args["lethe_steer"]`; `vllm_worker.LetheWorker` applies it to that
  request's tokens only;
- everything after the token (detokenization, stop strings, stream guard, logprob redaction, finish
  reasons) is `rows.RowStream`, the same code the HF engine runs, so both engines give the same
  bytes for the same tokens. A guard cut or a gone reader aborts the vLLM request.

The engine core and workers are separate processes (spawned: entry points need a main guard).
`load()` starts them without blocking the event loop; until it returns, the gateway answers
/healthz with 503 `loading`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from contextlib import aclosing
from dataclasses import fields
from pathlib import Path

import torch

from .base import EngineOverloaded, GenerationOutput, GenerationRequest, RowOutputs, SamplingParams
from .rows import RowStream, TokenCodec, collect_eos_ids
from .text import native_tools, render_chat
from .tokens import TokenBytes

log = logging.getLogger("lethe.engine.vllm")

WORKER = "gateway.engines.vllm_worker"

# How each field of our SamplingParams reaches vLLM: the vLLM SamplingParams argument it becomes
# (with a conversion where the shapes differ), or handled by the gateway itself. A field in neither
# makes `vllm_sampling` fail loudly instead of being dropped, so a new sampling parameter cannot
# silently do nothing on this engine.
def _structured(value):
    from vllm.sampling_params import StructuredOutputsParams

    return StructuredOutputsParams(json=value.json) if value.json is not None else \
        StructuredOutputsParams(json_object=value.json_object)


PASSED = {name: (name, None) for name in (
    "max_tokens", "temperature", "top_p", "seed", "top_k", "min_p", "presence_penalty", "frequency_penalty",
    "repetition_penalty")}
PASSED["logit_bias"] = ("logit_bias", lambda pairs: dict(pairs) or None)
PASSED["structured"] = ("structured_outputs", _structured)
IN_GATEWAY = {"stop", "logprobs", "top_logprobs"}  # stop strings and logprob shaping live in RowStream
CPU_KV_CACHE_BYTES = 1 << 30
LOGPROB_SLACK = 20  # extra candidates asked for, so top_logprobs stay full after redaction


def vllm_sampling(params: SamplingParams, extra_args: dict | None = None, redacting: bool = False):
    """Our SamplingParams as vLLM's (see PASSED / IN_GATEWAY)."""
    from vllm import SamplingParams as VLLMParams
    from vllm.sampling_params import RequestOutputKind

    kwargs = {}
    for f in fields(params):
        value = getattr(params, f.name)
        if f.name in PASSED:
            name, convert = PASSED[f.name]
            value = convert(value) if convert is not None and value is not None else value
            if value is not None:
                kwargs[name] = value
        elif f.name not in IN_GATEWAY:
            raise NotImplementedError(f"the vLLM engine does not map SamplingParams.{f.name} yet")
    if params.logprobs:
        kwargs["logprobs"] = params.top_logprobs + (LOGPROB_SLACK if redacting and params.top_logprobs else 0)
    return VLLMParams(**kwargs, detokenize=False, output_kind=RequestOutputKind.DELTA, extra_args=extra_args or None)


def steering_key(plan: dict) -> str:
    """Names a steering plan by its content, so each distinct plan is sent to the workers once."""
    from steering import Rotate

    digest = hashlib.sha256()
    for layer, value in sorted(plan.items()):
        for v in value if isinstance(value, (list, tuple)) else [value]:
            tensor = v.vector if isinstance(v, Rotate) else v
            digest.update(f"{layer}:{type(v).__name__}:".encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:32]


class VLLMEngine:
    def __init__(self, path: Path, model_name: str, settings, stats=None):
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        self.path = Path(path)
        self.model_name = model_name
        self.settings = settings
        self.stats = stats
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        config = AutoConfig.from_pretrained(str(self.path))
        try:
            generation = GenerationConfig.from_pretrained(str(self.path))
        except OSError:  # no generation_config.json
            generation = None
        self.max_model_len = min(settings.max_model_len, getattr(config, "max_position_embeddings", settings.max_model_len))
        self.max_batch_size = settings.max_batch_size
        self.max_waiting = settings.max_waiting
        self.eos_ids = collect_eos_ids(generation, config, self.tokenizer)
        self.codec = TokenCodec(self.tokenizer, TokenBytes(self.tokenizer), self.eos_ids, self.max_model_len)
        self.native_tools = native_tools(self.tokenizer)
        self.llm = None
        self.info: dict = {}  # from the workers: layers, identity, runner
        self.ready = False
        self.steering = None  # the HF engine's hook object; here the workers hold the hooks
        self._rows: dict[str, RowStream] = {}
        self._tasks: set[asyncio.Task] = set()
        self._sent_vectors: dict[str, asyncio.Future] = {}

    # ---- start and stop -------------------------------------------------------------------------

    def engine_args(self):
        from vllm.engine.arg_utils import AsyncEngineArgs

        s = self.settings
        device = getattr(s, "device", "auto")
        args = dict(
            model=str(self.path),
            served_model_name=self.model_name,
            dtype="float32" if device == "cpu" or not torch.cuda.is_available() else (
                "auto" if s.dtype == "auto" else s.dtype),
            max_model_len=self.max_model_len,
            max_num_seqs=self.max_batch_size,
            tensor_parallel_size=s.tensor_parallel_size,
            pipeline_parallel_size=s.pipeline_parallel_size,
            gpu_memory_utilization=s.gpu_memory_utilization,
            enforce_eager=s.enforce_eager,
            distributed_executor_backend=s.distributed_executor_backend,
            logits_processors=[f"{WORKER}:BanProcessor"],
            worker_extension_cls=f"{WORKER}.LetheWorker",
            max_logprobs=20 + LOGPROB_SLACK,
            # The ban processor reads each row's output ids as it samples; async scheduling would hand
            # it placeholders for the token in flight.
            async_scheduling=False,
            disable_log_stats=True,
        )
        if not torch.cuda.is_available():
            # On CPU gpu_memory_utilization reserves that fraction of the machine's RAM, which fails on
            # a shared box; a fixed KV cache (room for many full-length rows of a small model) does not.
            args["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        args.update(s.engine_args)
        return AsyncEngineArgs(**args)

    async def load(self) -> None:
        """Starts vLLM (engine core, workers, weights, KV cache) off the event loop, then the hooks."""
        from vllm.v1.engine.async_llm import AsyncLLM

        started = time.monotonic()
        # Lethe's logits processor and worker extension are written for the V1 model runner; GPUs
        # default to Model Runner V2, whose processor interface differs. An operator's explicit
        # choice stands (and a runner where the interventions do not act fails the self-check).
        os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
        args = self.engine_args()
        log.info("starting vLLM for %s (tp=%d, pp=%d, eager=%s)", self.path, args.tensor_parallel_size,
                 args.pipeline_parallel_size, args.enforce_eager)
        build = asyncio.ensure_future(asyncio.to_thread(AsyncLLM.from_engine_args, args))
        while not build.done():
            await asyncio.wait({build}, timeout=10)
            if not build.done():
                log.info("vLLM still starting (%.0f s)", time.monotonic() - started)
        self.llm = build.result()
        infos = await self.llm.collective_rpc("lethe_install")
        self.info = infos[0]
        log.info("vLLM ready in %.0f s: %d layers, %s", time.monotonic() - started, self.info["num_layers"],
                 self.info["runner"])

    def start(self) -> None:
        self.ready = True

    def shutdown(self) -> None:
        self.ready = False
        for task in list(self._tasks):
            task.cancel()
        if self.llm is not None:
            self.llm.shutdown()
            self.llm = None

    # ---- the Engine interface -----------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return self.info["num_layers"]

    @property
    def hidden_size(self) -> int:
        return self.info["hidden_size"]

    @property
    def num_running(self) -> int:
        return min(len(self._rows), self.max_batch_size)

    @property
    def num_waiting(self) -> int:
        return max(0, len(self._rows) - self.max_batch_size)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        return render_chat(self.tokenizer, messages, tools if self.native_tools else None)

    def generate(self, request: GenerationRequest) -> RowOutputs:
        # A row that has finished (a guard cut, a rewind handing over to its continuation) still
        # has its abort in flight: it no longer takes a place.
        if sum(not r.finished for r in self._rows.values()) >= self.max_batch_size + self.max_waiting:
            raise EngineOverloaded(f"{self.max_waiting} requests are already waiting")
        outputs: asyncio.Queue[GenerationOutput] = asyncio.Queue()
        row = RowStream(request=request, emit=outputs.put_nowait, codec=self.codec)
        self._rows[request.request_id] = row
        task = asyncio.get_running_loop().create_task(self._run(row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return RowOutputs(outputs, task.cancel)

    async def _run(self, row: RowStream) -> None:
        request = row.request
        try:
            from .vllm_worker import BAN_KEY, PLAIN_KEY

            extra = {}
            if row.plan.banned is not None:
                extra[BAN_KEY] = row.plan.banned.pattern_strings()
                if row.plan.banned.plain:
                    extra[PLAIN_KEY] = True
            if row.plan.steering:
                extra["lethe_steer"] = await self._send_vectors(row.plan.steering)
            sampling = vllm_sampling(request.params, extra, redacting=row.redact_state is not None)
            prompt = {"prompt_token_ids": list(request.prompt_ids)}
            # Closing the generator early aborts the request in vLLM (a guard cut, a stop string).
            async with aclosing(self.llm.generate(prompt, sampling, request.request_id)) as outputs:
                async for out in outputs:
                    completion = out.outputs[0]
                    for k, token in enumerate(completion.token_ids):
                        row.accept(token, self._logprob_fn(completion.logprobs, k, token, request.params.top_logprobs))
                        if row.finished:
                            break
                    if self.stats is not None and completion.token_ids:
                        self.stats.on_step(self.num_running, len(completion.token_ids))
                    if row.finished:
                        break
                    if out.finished:
                        row.finish("length" if completion.finish_reason == "length" else "stop")
        except asyncio.CancelledError:
            row.finished = True  # the reader has gone; the generator's exit aborts the request
            raise
        except Exception as exc:
            log.exception("vLLM request %s failed", request.request_id)
            row.finish("error")
        finally:
            self._rows.pop(request.request_id, None)

    def _logprob_fn(self, logprobs, k: int, token: int, top_n: int):
        if logprobs is None:
            return None

        def entry(hidden: set[int], min_p: float):
            step = logprobs[k]
            ranked = sorted(((t, lp) for t, lp in step.items() if lp.rank is not None), key=lambda x: x[1].rank)
            candidates = [(t, lp.logprob) for t, lp in ranked]
            return self.codec.entry(token, step[token].logprob, candidates, hidden, top_n, min_p)

        return entry

    async def _send_vectors(self, plan: dict) -> str:
        from .vllm_worker import plan_to_wire

        key = steering_key(plan)
        sent = self._sent_vectors.get(key)
        if sent is None:
            sent = self._sent_vectors[key] = asyncio.ensure_future(
                self.llm.collective_rpc("lethe_put_vectors", args=(key, plan_to_wire(plan))))
        try:
            await asyncio.shield(sent)
        except Exception:
            self._sent_vectors.pop(key, None)
            raise
        return key

    # ---- steering vectors through the served engine ---------------------------------------------

    def residual_source(self, loop: asyncio.AbstractEventLoop) -> "EngineResiduals":
        return EngineResiduals(self, loop)

    async def capture(self, prompts: list[list[int]]) -> torch.Tensor:
        """The residual stream after every layer at each prompt's last token: [prompts, layers, hidden].
        Each prompt is a one-token generation whose worker captures it (batched with live traffic)."""
        from .vllm_worker import CAPTURE_KEY

        ids = [f"capture-{uuid.uuid4().hex}" for _ in prompts]

        async def one(prompt, cid):
            sampling = vllm_sampling(SamplingParams(max_tokens=1, temperature=0.0), {CAPTURE_KEY: cid})
            async for _ in self.llm.generate({"prompt_token_ids": list(prompt)}, sampling, cid):
                pass

        await asyncio.gather(*(one(p, c) for p, c in zip(prompts, ids)))
        merged: dict[str, dict[int, torch.Tensor]] = {c: {} for c in ids}
        for worker in await self.llm.collective_rpc("lethe_take_captures", args=(ids,)):
            for cid, layers in worker.items():  # pipeline stages each hold their own layers
                merged[cid].update({int(layer): torch.tensor(v) for layer, v in layers.items()})
        layers = self.info["num_layers"]
        missing = [c for c in ids if len(merged[c]) != layers]
        if missing:
            raise RuntimeError(f"{len(missing)} captures came back incomplete: the capture hooks did not fire")
        return torch.stack([torch.stack([merged[c][i] for i in range(layers)]) for c in ids])


class EngineResiduals:
    """What `steering.compute_steering_vectors` needs of a model, read through the vLLM engine.
    Called from the steering thread; the capture runs on the gateway's event loop."""

    def __init__(self, engine: VLLMEngine, loop: asyncio.AbstractEventLoop):
        self.engine, self.loop = engine, loop
        self.num_layers = engine.info["num_layers"]
        self.identity = engine.info["identity"]
        self.device, self.dtype = torch.device("cpu"), torch.float32  # plans travel to the workers from here

    def residuals(self, prompts, *, position: str = "last", upto: int | None = None) -> torch.Tensor:
        if position != "last":
            raise NotImplementedError("the vLLM engine captures the last prompt token only")
        # Every layer is captured: a worker's forward pass cannot be cut short.
        captured = asyncio.run_coroutine_threadsafe(self.engine.capture([list(p) for p in prompts]), self.loop).result()
        return captured if upto is None else captured[:, : upto + 1]
