"""The application factory: builds a FastAPI app around an engine, so tests can make their own."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .auth import hash_key
from .config import Settings
from .engines.cores import one_core_by_default
from .engines.hf import EngineStats, HFEngine
from .errors import install_error_handlers
from .metrics import Metrics
from .middleware import GatewayMiddleware
from .model_loader import load_model, pick_device_and_dtype, resolve_model
from .planner import VERIFY_TOKENS, Planner
from .ratelimit import RateLimiter
from .registry import Registry
from .routers import admin, openai, ops, targets
from .selfcheck import SelfCheckFailed, refusal, self_check
from .steering_vectors import EngineAsker, SteeringVectorStore, greedy_text
from .store import GLOBAL, Store
from .serving import Serving

log = logging.getLogger("lethe")


async def _bring_up(app: FastAPI, engine, steering: SteeringVectorStore, steer: bool) -> None:
    """Loads the engine while /healthz answers 503 `loading`, proves the interventions act on it,
    then opens for traffic. A failure stops the server: never serve unprotected."""
    try:
        await engine.load()
        if steer and isinstance(engine, HFEngine):
            from steering import GatedSteering

            engine.steering = GatedSteering(engine.model)
        engine.start()
        log.info("self-check: %s", await self_check(engine, steer))
        loop = asyncio.get_running_loop()
        steering.start(engine.residual_source(loop), EngineAsker(engine, loop, rows=app.state.settings.probe_rows)
                       if app.state.settings.fact_terms else None)
        if app.state.settings.verify_semantic:
            app.state.planner.answer = lambda ids, enough: greedy_text(engine, ids, VERIFY_TOKENS, patient=False,
                                                                       enough=enough)
        app.state.serving.open = True
        app.state.status = "ok"
        log.info("ready")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        app.state.status = "failed"
        app.state.startup_error = str(exc)
        log.critical("refusing to serve: %s", exc, exc_info=not isinstance(exc, SelfCheckFailed))
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down; the CLI exits non-zero


def build_engine(settings: Settings, metrics: Metrics):
    reason = refusal(settings)
    if reason:
        raise SelfCheckFailed(reason)
    resolved = resolve_model(settings.model, settings.cache_dir)
    name = settings.served_model_name or resolved.served_name
    stats = EngineStats(on_step=metrics.on_engine_step)
    if settings.engine == "vllm":
        try:
            from .engines.vllm import VLLMEngine
        except ImportError as exc:
            raise RuntimeError(f"engine: vllm needs vLLM ({exc}); install it with `make serve ENGINE=vllm` "
                               "or pip install -e '.[vllm]'") from exc
        return VLLMEngine(resolved.path, name, settings, stats)
    device, dtype = pick_device_and_dtype(settings.device, settings.dtype)
    model, tokenizer = load_model(resolved, device, dtype)
    log.info("loaded %s on %s (%s)", resolved.served_name, device, dtype)
    return HFEngine(
        model, tokenizer, name,
        max_model_len=settings.max_model_len, max_batch_size=settings.max_batch_size,
        max_waiting=settings.max_waiting, stats=stats,
    )


def create_app(settings: Settings | None = None, engine: HFEngine | None = None) -> FastAPI:
    settings = settings or Settings.load()
    default_policy = settings.response_policy()  # a bad policy setting fails at start, not on the first trigger
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal engine
        from detectors.detector import Detector

        one_core_by_default()  # before the first embedding: the engine thread claims its cores itself

        engine = engine or build_engine(settings, metrics)
        store = Store(settings.db_path)
        registry = Registry(store, Detector())
        log.info("restored %d forget targets", registry.load(progress=True))

        def policy_for_owner(owner: str):
            tenant = store.get_tenant(owner) if owner != GLOBAL else None
            return default_policy.merged(tenant.policy) if tenant else default_policy

        steering = SteeringVectorStore(engine.tokenizer, registry, policy_for_owner, enabled=settings.steering,
                                       cache_dir=settings.cache_dir)
        if not settings.steering:
            log.warning("steering is off (steering: false): triggered rows get every other intervention")
        if not settings.fact_terms:
            log.warning("fact terms are off (fact_terms: false): triggered rows keep out the targets' names and "
                        "forbidden strings, not what the model knows about them")
        planner = Planner(registry, engine.tokenizer, default_policy, steering,
                          triggered_min_p=settings.triggered_min_p)
        app.state.engine, app.state.store, app.state.registry, app.state.planner = engine, store, registry, planner
        app.state.steering = steering
        app.state.serving = Serving(engine, settings, metrics, planner)
        app.state.status = "loading"
        bring_up = asyncio.create_task(_bring_up(app, engine, steering, settings.steering))
        try:
            yield
        finally:
            bring_up.cancel()
            steering.shutdown()  # first: its questions to the engine are given up, not waited for
            engine.shutdown()
            planner.shutdown()
            store.close()

    app = FastAPI(title="Lethe", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.default_policy = default_policy
    app.state.metrics = metrics
    app.state.rate_limits = {"generation": RateLimiter(settings.requests_per_minute),
                             "target_writes": RateLimiter(settings.target_writes_per_minute)}
    app.state.admin_key_hash = hash_key(settings.admin_key) if settings.admin_key else None
    install_error_handlers(app)
    app.include_router(openai.router)
    app.include_router(targets.router)
    app.include_router(admin.router)
    app.include_router(ops.router)
    app.add_middleware(GatewayMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    return app
