"""Operations: health and Prometheus metrics (unauthenticated, as scrapers expect)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request):
    engine = request.app.state.engine
    status = getattr(request.app.state, "status", "loading")
    if status != "ok":  # loading the engine, or refusing to serve (see the log)
        return JSONResponse({"status": status, "model": engine.model_name}, status_code=503)
    return {"status": "ok", "model": engine.model_name, "running": engine.num_running, "waiting": engine.num_waiting}


@router.get("/metrics")
async def metrics(request: Request):
    state = request.app.state
    state.metrics.running.set(state.engine.num_running)
    state.metrics.waiting.set(state.engine.num_waiting)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
