"""The OpenAI-compatible surface: /v1/models, /v1/chat/completions, /v1/completions."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request

from ..auth import Tenant, require_tenant
from ..protocol import ChatCompletionRequest, CompletionRequest
from ..ratelimit import limit_generation

router = APIRouter(prefix="/v1")


@router.get("/models")
async def list_models(request: Request, tenant: Tenant = Depends(require_tenant)):
    engine = request.app.state.engine
    return {"object": "list", "data": [_model_card(engine.model_name)]}


@router.get("/models/{model_id}")
async def get_model(model_id: str, request: Request, tenant: Tenant = Depends(require_tenant)):
    request.app.state.serving._check_model(model_id)
    return _model_card(model_id)


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, tenant: Tenant = Depends(limit_generation)):
    return await request.app.state.serving.chat(body, tenant, request)


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request, tenant: Tenant = Depends(limit_generation)):
    return await request.app.state.serving.completions(body, tenant, request)


def _model_card(name: str) -> dict:
    return {"id": name, "object": "model", "created": int(time.time()), "owned_by": "lethe"}
