"""Forget targets: /v1/forget-targets (tenants, and the admin for global ones)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request, Response

from ..auth import Tenant, require_caller, require_tenant
from detectors.types import DetectionTooLarge

from ..errors import APIError, detection_too_large, detector_unavailable
from ..protocol import Activation, DetectRequest, ForgetTargetCreate, ForgetTargetPatch
from ..ratelimit import limit_generation, limit_target_writes, limit_tenant_target_writes
from ..registry import Caller, Registry, TargetForbidden, TargetNotFound
from ..serving import template_role
from ..store import GLOBAL, TargetRecord

router = APIRouter(prefix="/v1/forget-targets")


def _registry(request: Request) -> Registry:
    return request.app.state.registry


def _caller(tenant: Tenant | None) -> Caller:
    return Caller(tenant.id if tenant else None)


def target_view(target: TargetRecord, active: bool | None) -> dict:
    return {
        "id": target.id, "object": "forget_target", "name": target.name, "aliases": target.aliases,
        "description": target.description, "examples": target.examples, "forbidden": target.forbidden,
        "scope": "global" if target.owner == GLOBAL else "tenant",
        "mandatory": target.mandatory, "status": target.status, "active": active, "created_at": target.created_at,
    }


def not_found(target_id: str) -> APIError:
    return APIError(404, f"No forget target found with id '{target_id}'.", param="id", code="target_not_found")


def forbidden(exc: Exception) -> APIError:
    return APIError(403, str(exc), type="permission_error", code="forbidden")


def _active_for(registry: Registry, caller: Caller, target: TargetRecord) -> bool | None:
    return None if caller.is_admin else registry.is_active(caller.tenant_id, target)


@router.post("", status_code=201)
async def create_target(body: ForgetTargetCreate, request: Request, tenant: Tenant | None = Depends(limit_target_writes)):
    registry = _registry(request)
    if body.scope == "global" and tenant is not None:
        raise APIError(403, "Only the admin key can create global forget targets.", type="permission_error",
                       param="scope", code="forbidden")
    if tenant is None and body.scope != "global":
        raise APIError(400, "The admin key creates global targets only: set \"scope\": \"global\".", param="scope")
    if body.mandatory and body.scope != "global":
        raise APIError(400, "Only global targets can be mandatory.", param="mandatory")
    owner = GLOBAL if tenant is None else tenant.id
    limit = request.app.state.settings.max_targets_per_tenant
    if await asyncio.to_thread(registry.store.count_targets, owner) >= limit:
        raise APIError(400, f"At most {limit} forget targets per tenant.", code="target_limit_reached")
    fields = body.model_dump(exclude={"scope"})
    target = await asyncio.to_thread(_written, request, registry.create, owner, **fields)
    return target_view(target, _active_for(registry, _caller(tenant), target))


def _written(request: Request, write, *args, **kwargs) -> TargetRecord:
    """Runs a registry write and the steering bookkeeping that follows it (both touch SQLite: call
    it in a worker thread). Returns the live record, with its steering status."""
    target = write(*args, **kwargs)
    request.app.state.steering.on_target_changed(target)
    return request.app.state.registry.get_visible_unchecked(target.id) or target


@router.get("")
async def list_targets(request: Request, tenant: Tenant = Depends(require_tenant)):
    registry = _registry(request)
    caller = _caller(tenant)
    data = [target_view(t, registry.is_active(tenant.id, t)) for t in registry.visible(tenant.id)]
    return {"object": "list", "data": data}


@router.post("/detect")
async def detect(body: DetectRequest, request: Request, tenant: Tenant = Depends(limit_generation)):
    planner = request.app.state.planner
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    # A conversation that could not be served is not worth checking: the same bound as chat.
    serving = request.app.state.serving
    rendered = await asyncio.to_thread(serving.engine.render_chat, [{**m, "role": template_role(m["role"])} for m in messages])
    serving.check_context(len(rendered))
    snapshot = planner.registry.snapshot(tenant.id)
    try:
        result = await planner.detect_checked(snapshot, messages, rendered)
    except DetectionTooLarge as exc:
        raise detection_too_large(exc) from None
    except Exception:
        raise detector_unavailable() from None
    names = {t.id: t.name for t in [*result.targets, *result.background]}
    background = {t.id for t in result.background}
    return {"object": "list", "triggered": bool(result.detections), "data": [
        {"target_id": d.target_id, "name": names.get(d.target_id), "score": round(d.score, 4),
         "threshold": round(d.threshold, 4), "method": d.method, "background": d.target_id in background}
        for d in result.detections]}


@router.get("/{target_id}")
async def get_target(target_id: str, request: Request, tenant: Tenant | None = Depends(require_caller)):
    registry = _registry(request)
    caller = _caller(tenant)
    try:
        target = registry.get(caller, target_id)
    except TargetNotFound:
        raise not_found(target_id) from None
    view = target_view(target, _active_for(registry, caller, target))
    if target.owner == (caller.tenant_id or GLOBAL):
        # What the model knows about the target is its owner's to see: to anyone else (a tenant
        # reading a global target) the facts the registration did not state stay unsaid.
        view["fact_terms"] = list(target.knowledge.banned) if target.knowledge else None
        view["context_terms"] = list(target.knowledge.context) if target.knowledge else None
    return view


@router.patch("/{target_id}")
async def patch_target(target_id: str, body: ForgetTargetPatch, request: Request,
                       tenant: Tenant | None = Depends(limit_target_writes)):
    registry = _registry(request)
    caller = _caller(tenant)
    if body.mandatory is not None and not caller.is_admin:
        raise APIError(403, "Only the admin key can change 'mandatory'.", type="permission_error",
                       param="mandatory", code="forbidden")
    try:
        target = await asyncio.to_thread(_written, request, registry.update, caller, target_id,
                                         **body.model_dump(exclude_unset=True))
    except TargetNotFound:
        raise not_found(target_id) from None
    except TargetForbidden as exc:
        raise forbidden(exc) from None
    return target_view(target, _active_for(registry, caller, target))


@router.delete("/{target_id}")
async def delete_target(target_id: str, request: Request, tenant: Tenant | None = Depends(limit_target_writes)):
    try:
        await asyncio.to_thread(_registry(request).delete, _caller(tenant), target_id)
    except TargetNotFound:
        raise not_found(target_id) from None
    except TargetForbidden as exc:
        raise forbidden(exc) from None
    request.app.state.steering.forget(target_id)
    return {"id": target_id, "object": "forget_target.deleted", "deleted": True}


@router.put("/{target_id}/activation")
async def set_activation(target_id: str, body: Activation, request: Request,
                         tenant: Tenant = Depends(limit_tenant_target_writes)):
    return await set_activation_for(_registry(request), tenant.id, target_id, body.active)


async def set_activation_for(registry: Registry, tenant_id: str, target_id: str, active: bool) -> dict:
    try:
        target = await asyncio.to_thread(registry.set_active, tenant_id, Caller(tenant_id), target_id, active)
    except TargetNotFound:
        raise not_found(target_id) from None
    except TargetForbidden as exc:
        raise forbidden(exc) from None
    return target_view(target, registry.is_active(tenant_id, target))
