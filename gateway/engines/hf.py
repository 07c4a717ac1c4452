"""In-process transformers engine with continuous batching.

One background thread owns the model. Each loop iteration it (1) prefills the requests that
arrived since the last step, as one left-padded batch, and merges their KV cache into the
running batch, then (2) runs one decode step for every running row. A request therefore joins
at the next step instead of waiting for the whole batch to finish. Rows leave as soon as they
finish or their client goes away, and padding columns no row needs are trimmed.

Each row carries its own sampling parameters, stop conditions and plan (steering vectors,
token bans, text guard), so one batch can mix requests that trigger nothing with requests
that do, and untriggered rows see exactly the computation they would see without Lethe.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import DynamicCache

from .base import EngineOverloaded, GenerationOutput, GenerationRequest, RowOutputs, TokenLogprob
from filters import mask_banned
from filters.grammar import Grammars, GrammarState, mask_grammar
from steering.vectors import model_identity, residuals

from ..failpoints import failpoint
from .cores import ENGINE_THREADS, claim_cores, one_core_by_default
from .rows import RowStream, TokenCodec, collect_eos_ids
from .text import native_tools, render_chat
from .tokens import TokenBytes

log = logging.getLogger("lethe.engine")


@dataclass
class EngineStats:
    """Hooks the engine calls so metrics live outside it."""

    on_step: Callable[[int, int], None] = lambda batch_size, new_tokens: None


@dataclass
class _Row(RowStream):
    """A row in the running batch: its output side (shared with every engine) plus sampling state."""

    generator: torch.Generator | None = None
    next_token: int = -1
    grammar: GrammarState | None = None
    penalties: "_Penalties | None" = None


class _Penalties:
    """One row's logit adjustments (bias, repetition, presence, frequency), as vLLM applies them.

    Each is a few vector ops over the row's vocabulary; rows that ask for none carry no state
    and their logits are never touched.
    """

    def __init__(self, params, prompt_ids, vocab_size: int, device):
        self.params = params
        self.counts = torch.zeros(vocab_size, device=device)  # output tokens so far
        self.seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)  # prompt and output
        if prompt_ids:
            self.seen[torch.tensor(list(prompt_ids), device=device).clamp(max=vocab_size - 1)] = True
        ids = [t for t, _ in params.logit_bias]
        self.bias_ids = torch.tensor(ids, dtype=torch.long, device=device)
        self.bias = torch.tensor([b for _, b in params.logit_bias], device=device)

    def apply(self, logits: torch.Tensor) -> None:
        p = self.params
        if p.logit_bias:
            logits.index_add_(0, self.bias_ids, self.bias.to(logits.dtype))
        if p.repetition_penalty != 1.0:
            scaled = torch.where(logits > 0, logits / p.repetition_penalty, logits * p.repetition_penalty)
            logits.copy_(torch.where(self.seen, scaled, logits))
        if p.frequency_penalty or p.presence_penalty:
            logits -= p.frequency_penalty * self.counts + p.presence_penalty * (self.counts > 0).to(logits.dtype)

    def advance(self, token: int) -> None:
        if token < self.counts.shape[0]:
            self.counts[token] += 1
            self.seen[token] = True


class HFEngine:
    def __init__(
        self,
        model,
        tokenizer,
        model_name: str,
        *,
        max_model_len: int = 4096,
        max_batch_size: int = 32,
        max_waiting: int = 256,
        max_prefill_tokens: int = 8192,
        live_prefill_tokens: int = 256,
        threads: int = ENGINE_THREADS,
        stats: EngineStats | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.device = next(model.parameters()).device
        self.max_model_len = min(max_model_len, getattr(model.config, "max_position_embeddings", max_model_len))
        self.max_batch_size = max_batch_size
        self.max_waiting = max_waiting
        self.max_prefill_tokens = max_prefill_tokens
        # While rows are decoding, a step admits only this many prompt tokens: a burst of arrivals
        # (a registration's 32 probe questions) joins over a few steps instead of stalling every
        # live stream for one long prefill.
        self.live_prefill_tokens = live_prefill_tokens
        self.stats = stats or EngineStats()
        self.threads = threads
        self.eos_ids = self._eos_ids()
        self.token_bytes = TokenBytes(tokenizer)
        self.codec = TokenCodec(tokenizer, self.token_bytes, self.eos_ids, self.max_model_len)
        self.steering = None  # steering.hooks.GatedSteering, installed by the pipeline when used
        self.ready = False
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        self.native_tools = native_tools(tokenizer)
        self._grammars: Grammars | None = None

        self._incoming: queue.Queue[_Row] = queue.Queue()
        # Model work beside serving (steering vectors' forward passes), run on this thread between
        # two steps: on every core, and never competing with a step for them.
        self._jobs: queue.Queue[tuple[Callable[[], object], Future]] = queue.Queue()
        self._jobs_resume = 0.0  # monotonic time before which no job runs while rows are live
        self._aborted: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cores_claimed = threading.Event()
        self._thread: threading.Thread | None = None
        self._finisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lethe-finish")

        self._rows: list[_Row] = []
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # [batch, cached positions], 0 = padding

    # ---- public interface -------------------------------------------------------------------

    async def load(self) -> None:
        """Nothing left to load: the model came in with the constructor."""

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def start(self) -> None:
        self.ready = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lethe-engine", daemon=True)
            self._thread.start()
            self._cores_claimed.wait()
            one_core_by_default()  # every other thread (embeddings, steering vectors, judges)

    def shutdown(self) -> None:
        self.ready = False
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._finisher.shutdown(wait=False, cancel_futures=True)
        while not self._jobs.empty():  # their callers must not wait for a loop that is gone
            _, future = self._jobs.get_nowait()
            future.cancel()

    def between_steps(self, job: Callable[[], object]) -> Future:
        """Runs `job` on the engine thread between two steps (one job per step, so live rows keep
        decoding); its result or exception comes back through the future."""
        future: Future = Future()
        if not self.ready:
            future.set_exception(RuntimeError("the engine is not running"))
            return future
        self._jobs.put((job, future))
        self._wake.set()
        return future

    def residual_source(self, loop: asyncio.AbstractEventLoop | None = None) -> "EngineResiduals":
        return EngineResiduals(self)

    @property
    def num_running(self) -> int:
        return len(self._rows)

    @property
    def num_waiting(self) -> int:
        return self._incoming.qsize()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        return render_chat(self.tokenizer, messages, tools if self.native_tools else None)

    def generate(self, request: GenerationRequest) -> RowOutputs:
        """Queues the request now (EngineOverloaded when the waiting queue is full, so a caller
        can still answer 429 before any response starts) and returns its outputs."""
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue[GenerationOutput] = asyncio.Queue()

        def emit(output: GenerationOutput) -> None:
            try:
                loop.call_soon_threadsafe(outputs.put_nowait, output)
            except RuntimeError:  # the event loop is gone (server shutting down)
                pass

        self._submit(self._new_row(request, emit))
        return RowOutputs(outputs, lambda: self.abort(request.request_id))

    def abort(self, request_id: str) -> None:
        with self._lock:
            self._aborted.add(request_id)
        self._wake.set()

    # ---- admission ----------------------------------------------------------------------------

    def _new_row(self, request: GenerationRequest, emit) -> _Row:
        params = request.params
        generator = None
        if not params.greedy:
            generator = torch.Generator(device=self.device)
            if params.seed is not None:
                generator.manual_seed(params.seed)
            else:
                generator.seed()
        structured = params.structured
        return _Row(
            request=request, emit=emit, codec=self.codec, generator=generator, defer=self._finisher.submit,
            grammar=self.grammars().matcher(structured.json) if structured is not None else None,
            penalties=_Penalties(params, request.prompt_ids, self.vocab_size, self.device) if params.penalized else None,
        )

    def grammars(self) -> Grammars:
        """The grammar compiler for this tokenizer, built on first use (GrammarError on a bad schema)."""
        if self._grammars is None:
            self._grammars = Grammars(self.tokenizer, self.vocab_size, self.eos_ids)
        return self._grammars

    def _submit(self, row: _Row) -> None:
        if self._incoming.qsize() >= self.max_waiting:
            raise EngineOverloaded(f"{self.max_waiting} requests are already waiting")
        self._incoming.put(row)
        self._wake.set()

    # ---- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        torch.set_grad_enabled(False)
        claim_cores(self.threads)
        self._cores_claimed.set()
        while not self._stop.is_set():
            if not self._rows and self._incoming.empty() and self._jobs.empty():
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            self._run_one_job()
            newcomers: list[_Row] = []
            try:
                self._drop_aborted()
                newcomers = self._take_newcomers()
                if newcomers:
                    self._prefill(newcomers)
                if self._rows:
                    self._decode_step()
            except Exception:  # a failed forward pass fails its rows, never the engine
                log.exception("engine step failed")
                # The rows being admitted too: a failed prefill never reached the running batch,
                # and a row nobody finishes leaves its client waiting forever.
                for row in {id(r): r for r in (*self._rows, *newcomers)}.values():
                    row.finish("error")
                self._reset_batch()

    def _run_one_job(self) -> None:
        # Live rows keep at least half of the engine's time: after a job, the next waits until the
        # rows have had as long again (an idle engine runs jobs back to back).
        if self._rows and time.monotonic() < self._jobs_resume:
            return
        try:
            job, future = self._jobs.get_nowait()
        except queue.Empty:
            return
        if not future.set_running_or_notify_cancel():
            return
        started = time.monotonic()
        try:
            future.set_result(job())
        except BaseException as exc:  # the caller's to handle; the engine goes on
            future.set_exception(exc)
        finished = time.monotonic()
        self._jobs_resume = finished + (finished - started)

    def _take_newcomers(self) -> list[_Row]:
        rows: list[_Row] = []
        tokens = 0
        room = self.max_batch_size - len(self._rows)
        budget = self.live_prefill_tokens if self._rows else self.max_prefill_tokens
        while len(rows) < room:
            try:
                row = self._incoming.get_nowait()
            except queue.Empty:
                break
            if self._is_aborted(row.request_id):
                continue
            rows.append(row)
            tokens += len(row.request.prompt_ids)
            if tokens >= budget:
                break
        return rows

    def _is_aborted(self, request_id: str) -> bool:
        with self._lock:
            if request_id in self._aborted:
                self._aborted.discard(request_id)
                return True
        return False

    def _drop_aborted(self) -> None:
        with self._lock:
            if not self._aborted:
                return
            gone = {r.request_id for r in self._rows} & self._aborted
            self._aborted -= gone
        if gone:
            for row in self._rows:
                if row.request_id in gone:
                    row.finished = True
            self._compact()

    # ---- model calls ------------------------------------------------------------------------

    def _forward(self, input_ids, attention_mask, position_ids, cache, rows: list[_Row]) -> torch.Tensor:
        if self.steering is not None:
            self.steering.set_rows([row.plan.steering for row in rows])
        try:
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        finally:
            if self.steering is not None:
                self.steering.clear()
        return out.logits[:, -1, :].float()

    def _prefill(self, rows: list[_Row]) -> None:
        failpoint("prefill", lambda: "".join(self.tokenizer.decode(r.request.prompt_ids) for r in rows))
        longest = max(len(r.request.prompt_ids) for r in rows)
        pad_id = self.eos_ids[0]
        ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            prompt = row.request.prompt_ids
            ids[i, longest - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, longest - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self._forward(ids, mask, positions, cache, rows)
        self._sample_and_emit(rows, logits)
        self._merge(rows, cache, mask)
        self._compact()

    def _decode_step(self) -> None:
        rows = self._rows
        ids = torch.tensor([[r.next_token] for r in rows], dtype=torch.long, device=self.device)
        positions = self._mask.sum(-1, keepdim=True)
        self._mask = torch.cat([self._mask, torch.ones_like(positions)], dim=-1)
        logits = self._forward(ids, self._mask, positions, self._cache, rows)
        self._sample_and_emit(rows, logits)
        self._compact()

    # ---- batch bookkeeping --------------------------------------------------------------------

    def _merge(self, rows: list[_Row], cache: DynamicCache, mask: torch.Tensor) -> None:
        if self._cache is None:
            self._rows, self._cache, self._mask = list(rows), cache, mask
            return
        width = max(self._mask.shape[1], mask.shape[1])
        for old, new in zip(self._cache.layers, cache.layers):
            old.keys = torch.cat([_pad_left(old.keys, width, -2), _pad_left(new.keys, width, -2)])
            old.values = torch.cat([_pad_left(old.values, width, -2), _pad_left(new.values, width, -2)])
        self._mask = torch.cat([_pad_left(self._mask, width, -1), _pad_left(mask, width, -1)])
        self._rows.extend(rows)

    def _compact(self) -> None:
        """Drops finished rows and the padding columns that no remaining row needs."""
        keep = [i for i, r in enumerate(self._rows) if not r.finished]
        if len(keep) == len(self._rows):
            return
        if not keep:
            self._reset_batch()
            return
        index = torch.tensor(keep, device=self.device)
        self._cache.batch_select_indices(index)
        self._mask = self._mask.index_select(0, index)
        self._rows = [self._rows[i] for i in keep]
        used = self._mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        if first > 0:
            for layer in self._cache.layers:
                layer.keys = layer.keys[:, :, first:]
                layer.values = layer.values[:, :, first:]
            self._mask = self._mask[:, first:]

    def _reset_batch(self) -> None:
        self._rows, self._cache, self._mask = [], None, None
        release_free_memory()

    # ---- sampling and output ------------------------------------------------------------------

    def _sample_and_emit(self, rows: list[_Row], logits: torch.Tensor) -> None:
        mask_banned(logits, [row.ban_state for row in rows], self.eos_ids[0])
        for i, row in enumerate(rows):
            if row.penalties is not None:
                row.penalties.apply(logits[i])
        mask_grammar(logits, [row.grammar for row in rows])
        greedy = logits.argmax(dim=-1).tolist()
        for i, row in enumerate(rows):
            try:
                # The best logit being -inf means none is left (a scalar read: a full-row
                # isfinite().any() costs tens of ms on a busy CPU).
                if row.grammar is not None and logits[i, greedy[i]].item() == float("-inf"):
                    # The grammar allows only what the bans forbid: a schema cannot force a banned name.
                    row.finish("content_filter")
                    continue
                token = greedy[i] if row.request.params.greedy else self._sample(logits[i], row)
                self._accept(row, token, logits[i])
            except Exception as exc:  # one row's failure (e.g. a bad plan) must not end the others
                log.exception("row %s failed", row.request_id)
                row.finish("error")
        self.stats.on_step(len(rows), len(rows))

    def _sample(self, logits: torch.Tensor, row: _Row) -> int:
        params = row.request.params
        scaled = logits / params.temperature
        if 0 < params.top_k < scaled.shape[-1]:
            kth = scaled.topk(params.top_k).values[-1]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        probs = torch.softmax(scaled, dim=-1)
        if params.min_p > 0.0:
            probs = probs.masked_fill(probs < params.min_p * probs.max(), 0.0)
        if params.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            outside = sorted_probs.cumsum(-1) - sorted_probs > params.top_p
            sorted_probs[outside] = 0.0
            probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=row.generator))

    def _accept(self, row: _Row, token: int, logits: torch.Tensor) -> None:
        row.next_token = token
        if row.penalties is not None:
            row.penalties.advance(token)
        if row.grammar is not None:
            row.grammar.advance(token)
        top_n = row.request.params.top_logprobs
        row.accept(token, lambda hidden, min_p: self._logprob(logits, token, top_n, hidden, min_p))

    def _logprob(self, logits: torch.Tensor, token: int, top_n: int, hidden: set[int], min_p: float) -> TokenLogprob:
        logp = torch.log_softmax(logits, dim=-1)
        candidates = []
        if top_n:
            # Ask for enough candidates that n remain once the hidden ones are taken out.
            values, ids = logp.topk(min(top_n + len(hidden), logp.shape[-1]))
            candidates = list(zip(ids.tolist(), values.tolist()))
        return self.codec.entry(token, float(logp[token]), candidates, hidden, top_n, min_p)

    def _eos_ids(self) -> list[int]:
        return collect_eos_ids(getattr(self.model, "generation_config", None), self.model.config, self.tokenizer)


class EngineResiduals:
    """What `steering.compute_steering_vectors` needs of the model, read on the engine's thread
    in chunks between decode steps. Read from a thread of its own, the same forward passes ran on
    one core (the others are the engine's: `cores`) and took ~8 s a target instead of ~3
    (bench/registration_bench.py)."""

    CHUNK = 4  # prompts per job: one job holds up the running rows for about two decode steps

    def __init__(self, engine: HFEngine):
        self.engine = engine
        self.num_layers = engine.num_layers
        self.identity = model_identity(engine.model)
        self.device, self.dtype = engine.device, next(engine.model.parameters()).dtype

    def residuals(self, prompts, *, position: str = "last", upto: int | None = None) -> torch.Tensor:
        model = self.engine.model
        chunks = [self.engine.between_steps(lambda part=prompts[i : i + self.CHUNK]: residuals(
                      model, part, position=position, batch_size=self.CHUNK, upto=upto))
                  for i in range(0, len(prompts), self.CHUNK)]
        return torch.cat([chunk.result() for chunk in chunks])


def _libc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _libc_trim()


def release_free_memory() -> None:
    """Hands freed heap back to the OS once the batch drains.

    A burst leaves a large KV cache freed but kept by glibc's arenas, so the process would stay at
    its peak size forever; trimming when idle brings it back near its baseline.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _pad_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)
